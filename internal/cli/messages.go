package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// parseArgs parses rest with fs, allowing positional arguments before and
// after the flags. Errors are said the way the usage text writes flags
// (--name, not Go's -name) with a pointer to the help, instead of Go's
// dump of every flag; -h/--help prints usage and ok is false with code
// ExitOK.
func parseArgs(fs *flag.FlagSet, rest []string, stderr io.Writer, prefix, helpCmd, usage string) (pos []string, code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, usage)
				return nil, ExitOK, false
			}
			fmt.Fprintf(stderr, "%s: %s\n(run %q for the flags)\n", prefix, flagError(err, fs), helpCmd)
			return nil, ExitUsage, false
		}
		if fs.NArg() == 0 {
			return pos, ExitOK, true
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

var (
	undefinedRE = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	needsArgRE  = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	invalidRE   = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -+([^:]+): (.*)$`)
)

// flagError rewrites the flag package's messages.
func flagError(err error, fs *flag.FlagSet) string {
	msg := err.Error()
	if m := undefinedRE.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		s := fmt.Sprintf("unknown flag --%s", m[1])
		if near := closest(m[1], names); near != "" {
			s += fmt.Sprintf(" (did you mean --%s?)", near)
		}
		return s
	}
	if m := needsArgRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	if m := invalidRE.FindStringSubmatch(msg); m != nil {
		what := "a valid value"
		if f := fs.Lookup(m[2]); f != nil {
			g, ok := f.Value.(flag.Getter)
			if !ok { // a flag of our own type says what it wants
				return fmt.Sprintf("--%s %q: %s", m[2], m[1], m[3])
			}
			switch g.Get().(type) {
			case int, int64, uint, uint64:
				what = "a whole number"
			case float64:
				what = "a number"
			case bool:
				what = "true or false"
			default:
				if strings.HasSuffix(fmt.Sprintf("%T", f.Value), "durationValue") {
					what = "a duration such as 500ms, 30s or 2m"
				}
			}
		}
		return fmt.Sprintf("--%s %q: must be %s", m[2], m[1], what)
	}
	return msg
}

// closest returns the candidate nearest to s (at most 2 edits, or a
// prefix), or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(s, c)
		if strings.HasPrefix(c, s) && len(s) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (adjacent swaps count
// one), so "strat" is one edit from "start".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// unknownCommand says a command is not known, with the nearest one.
func unknownCommand(prefix, cmd string, commands []string) string {
	s := fmt.Sprintf("%s: unknown command %q", prefix, cmd)
	if near := closest(cmd, commands); near != "" {
		s += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return s
}

// checkRunID refuses a run id that is not a positive number before any
// request is made.
func checkRunID(id string) error {
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n < 1 {
		return fmt.Errorf("invalid run id %q: run ids are positive numbers such as 7", id)
	}
	return nil
}

// unreachable says the server could not be reached, and how to point the
// CLI elsewhere, when err is a network error.
func unreachable(err error, url string) (string, bool) {
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) {
		return fmt.Sprintf("cannot reach the dripflow web server at %s (%v); set --url or DRIPFLOW_URL to where `web` listens", url, rootCause(err)), true
	}
	return "", false
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// thousands writes n with thousands separators: 1234567 → 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
