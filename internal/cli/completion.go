package cli

import (
	"fmt"
	"sort"
	"strings"
)

// Commands are dripflow's top-level commands.
var Commands = []string{"dev", "migrate", "seed", "runs", "flows", "new", "init", "completion", "help"}

// subcommands are the words each command takes next.
var subcommands = map[string][]string{
	"runs":       runsCommands,
	"flows":      flowsCommands,
	"new":        {"backfill", "flow"},
	"completion": {"bash", "zsh", "fish"},
}

// flagsOf are the flags completion offers after a command (and its
// subcommand).
var flagsOf = map[string][]string{
	"dev":             {"--http-addr", "--seed-rows", "--data-dir", "--log-level"},
	"migrate":         {"--demo"},
	"seed":            {"--rows"},
	"init":            {"--dir", "--dripflow-path", "--dripflow-version"},
	"new backfill":    {"--element", "--range", "--dir"},
	"new flow":        {"--dir", "--yaml"},
	"runs list":       {"--status", "--definition", "--mine", "--limit", "--cursor"},
	"runs start":      {"--params", "--batch-size", "--max-in-flight", "--rows-per-second", "--sleep-ms", "--max-attempts", "--error-budget", "--batch-timeout", "--start-at", "--watch", "--dry-run", "--dry-run-batches"},
	"runs retry":      {"--batch"},
	"runs reschedule": {"--at"},
	"flows show":      {"--version"},
	"flows apply":     {"-f", "--dry-run"},
	"flows validate":  {"-f"},
}

// commonFlags are the flags of every runs and flows command.
var commonFlags = []string{"--url", "--token", "--output"}

// UnknownCommand says a top-level command is not known, with the nearest.
func UnknownCommand(cmd string) string { return unknownCommand("dripflow", cmd, Commands) }

// Completion runs `dripflow completion bash|zsh|fish`: it prints a script
// that completes dripflow's commands, subcommands and flags in that shell.
func Completion(args []string, env Env) int {
	if len(args) != 1 {
		fmt.Fprint(env.Stderr, "usage: dripflow completion bash|zsh|fish\n\n"+
			"  bash: source <(dripflow completion bash)            (or put it in /etc/bash_completion.d/dripflow)\n"+
			"  zsh:  source <(dripflow completion zsh)\n"+
			"  fish: dripflow completion fish > ~/.config/fish/completions/dripflow.fish\n")
		return ExitUsage
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(env.Stdout, bashCompletion())
	case "zsh":
		fmt.Fprint(env.Stdout, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion())
	case "fish":
		fmt.Fprint(env.Stdout, fishCompletion())
	default:
		fmt.Fprintf(env.Stderr, "%s\n", unknownCommand("dripflow completion", args[0], subcommands["completion"]))
		return ExitUsage
	}
	return ExitOK
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString("# dripflow completion for bash (dripflow completion bash)\n_dripflow() {\n")
	b.WriteString("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"${COMP_WORDS[1]}\" sub=\"${COMP_WORDS[2]}\" words=\"\"\n")
	fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then words=%q\n", strings.Join(Commands, " "))
	b.WriteString("  elif [ \"$COMP_CWORD\" -eq 2 ] && [[ \"$cur\" != -* ]]; then\n    case \"$cmd\" in\n")
	for _, c := range sortedKeys(subcommands) {
		fmt.Fprintf(&b, "      %s) words=%q ;;\n", c, strings.Join(subcommands[c], " "))
	}
	b.WriteString("    esac\n  else\n    case \"$cmd $sub\" in\n")
	for _, k := range sortedKeys(flagsOf) {
		flags := flagsOf[k]
		if strings.HasPrefix(k, "runs ") || strings.HasPrefix(k, "flows ") {
			flags = append(append([]string{}, flags...), commonFlags...)
		}
		// "runs start" matches exactly; "dev" matches "dev <anything>".
		pattern := fmt.Sprintf("%q", k)
		if !strings.Contains(k, " ") {
			pattern = fmt.Sprintf("%q*", k+" ")
		}
		fmt.Fprintf(&b, "      %s) words=%q ;;\n", pattern, strings.Join(flags, " "))
	}
	fmt.Fprintf(&b, "      \"runs \"*|\"flows \"*) words=%q ;;\n", strings.Join(commonFlags, " "))
	b.WriteString("    esac\n  fi\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -o default -F _dripflow dripflow\n")
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# dripflow completion for fish (dripflow completion fish)\ncomplete -c dripflow -f\n")
	fmt.Fprintf(&b, "complete -c dripflow -n __fish_use_subcommand -a %q\n", strings.Join(Commands, " "))
	for _, c := range sortedKeys(subcommands) {
		fmt.Fprintf(&b, "complete -c dripflow -n '__fish_seen_subcommand_from %s; and test (count (commandline -opc)) -eq 2' -a %q\n", c, strings.Join(subcommands[c], " "))
	}
	for _, k := range sortedKeys(flagsOf) {
		cond := "__fish_seen_subcommand_from " + strings.Fields(k)[0]
		if f := strings.Fields(k); len(f) == 2 {
			cond += "; and __fish_seen_subcommand_from " + f[1]
		}
		for _, f := range flagsOf[k] {
			if strings.HasPrefix(f, "--") {
				fmt.Fprintf(&b, "complete -c dripflow -n '%s' -l %s\n", cond, strings.TrimPrefix(f, "--"))
			} else {
				fmt.Fprintf(&b, "complete -c dripflow -n '%s' -o %s -r -F\n", cond, strings.TrimPrefix(f, "-"))
			}
		}
	}
	for _, c := range []string{"runs", "flows"} {
		for _, f := range commonFlags {
			fmt.Fprintf(&b, "complete -c dripflow -n '__fish_seen_subcommand_from %s' -l %s\n", c, strings.TrimPrefix(f, "--"))
		}
	}
	return b.String()
}
