package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The bash script completes commands, subcommands and flags, as bash
// itself runs it.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	var out, errb bytes.Buffer
	if code := Completion([]string{"bash"}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
		t.Fatalf("completion bash: %d %s", code, errb.String())
	}
	script := filepath.Join(t.TempDir(), "dripflow.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string // the words typed; the last is being completed
		want string
	}{
		{"dripflow ru", "runs"},
		{"dripflow fl", "flows"},
		{"dripflow runs st", "start start-now"},
		{"dripflow flows ap", "apply"},
		{"dripflow runs start x --max", "--max-in-flight --max-attempts"},
		{"dripflow runs start x --u", "--url"},
		{"dripflow new backfill X --r", "--range"},
		{"dripflow init m --dripflow-v", "--dripflow-version"},
		{"dripflow completion f", "fish"},
		{"dripflow dev --data", "--data-dir"},
	} {
		words := strings.Fields(tc.line)
		var arr strings.Builder
		for _, w := range words {
			arr.WriteString(" '" + w + "'")
		}
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c",
			". "+script+"; COMP_WORDS=("+arr.String()+"); COMP_CWORD="+strconv.Itoa(len(words)-1)+"; _dripflow; echo \"${COMPREPLY[*]}\"")
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, got)
		}
		if strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.line, strings.TrimSpace(string(got)), tc.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		var out bytes.Buffer
		if code := Completion([]string{shell}, Env{Stdout: &out, Stderr: &out}); code != ExitOK || !strings.Contains(out.String(), "runs") {
			t.Errorf("completion %s: %d %q", shell, code, out.String())
		}
	}
	if fish, err := exec.LookPath("fish"); err == nil {
		var out bytes.Buffer
		Completion([]string{"fish"}, Env{Stdout: &out, Stderr: &out})
		if got, err := exec.Command(fish, "-n", "-c", out.String()).CombinedOutput(); err != nil {
			t.Errorf("fish does not parse the script: %v\n%s", err, got)
		}
	}
	var errb bytes.Buffer
	if code := Completion([]string{"tcsh"}, Env{Stdout: &errb, Stderr: &errb}); code != ExitUsage || !strings.Contains(errb.String(), `unknown command "tcsh"`) {
		t.Errorf("completion tcsh: %d %q", code, errb.String())
	}
}
