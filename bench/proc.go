package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/run"
)

// processEnv names the environment variable that makes the benchmark's
// binary (or test binary) run as a dripflow process instead: "worker" or
// "scheduler", configured by the usual DRIPFLOW_* variables, with the
// benchmark's definitions registered.
const processEnv = "DRIPFLOW_BENCH_PROCESS"

// processProfileEnv, when set, is a directory where each process writes a
// CPU profile of itself (set from --cpuprofile).
const processProfileEnv = "DRIPFLOW_BENCH_PROCESS_PROFILES"

// IsProcess reports whether this process was started by the benchmark as a
// dripflow worker or scheduler; main then calls ProcessMain.
func IsProcess() bool { return os.Getenv(processEnv) != "" }

// ProcessMain runs this process as the dripflow worker or scheduler the
// benchmark asked for, until SIGTERM, and returns the exit code.
func ProcessMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode := os.Getenv(processEnv)
	if dir := os.Getenv(processProfileEnv); dir != "" {
		// --cpuprofile: each process writes its own profile, named after
		// its mode and pid, next to the benchmark's.
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", mode, os.Getpid())))
		if err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	if err := registerDefs(engine.DefaultRegistry); err != nil {
		fmt.Fprintln(os.Stderr, mode+":", err)
		return 1
	}
	var err error
	switch mode {
	case "worker":
		err = run.Worker(ctx, nil)
	case "scheduler":
		err = run.Scheduler(ctx, nil)
	default:
		err = fmt.Errorf("%s must be worker or scheduler, got %q", processEnv, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, mode+":", err)
		return 1
	}
	return 0
}

// process is a dripflow worker or scheduler the benchmark started.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProcess starts this executable as a dripflow process of mode with
// the given extra environment; its output goes to a log file in dir.
func startProcess(mode, dir string, env ...string) (*process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, mode+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{processEnv + "=" + mode}, env...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", mode, err)
	}
	p := &process{name: mode, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the process, killing it after 30s.
func (p *process) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// memory returns the process's peak and current resident set size, in
// bytes (VmHWM and VmRSS of /proc/<pid>/status).
func (p *process) memory() (peak, current int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	hwm, ok1 := procField(path, "VmHWM")
	rss, ok2 := procField(path, "VmRSS")
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("read VmHWM and VmRSS of %s (pid %d) from %s", p.name, p.cmd.Process.Pid, path)
	}
	return hwm * 1024, rss * 1024, nil
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
