package config

import (
	"sort"
	"strings"
	"testing"
)

// FuzzParseConnections: whatever DRIPFLOW_CONNECTIONS holds, parsing does
// not panic; what it accepts has valid names (never "default") and URLs
// with a scheme-like ":", and writing it back one name=url a line parses to
// the same connections.
func FuzzParseConnections(f *testing.F) {
	for _, s := range []string{
		"", "replica=postgres://u:p@db2:5432/app", "a=redis://r:6379/1,b=nats://n:4222",
		"pg=postgres://u@h1:5432,h2:5432/app?target_session_attrs=read-write,mq=amqp://g:g@q:5672/",
		"a=x:1\nb=y:2\r\nc=z:3", "default=postgres://x", "a=x:1,a=y:2", "1a=x:1", "just text", ",,=,", "a=", "a==b:c",
		"a=mysql://u@tcp(h:3306)/db?x=1,y=2", " a = x:1 , , b=y:2 ", "é=x:1", "a-b_c=x:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := ParseConnections(raw)
		if err != nil {
			if got != nil {
				t.Fatalf("an error (%v) with connections %v", err, got)
			}
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		names := make([]string, 0, len(got))
		for name, url := range got {
			if !connName(name) || name == "default" {
				t.Fatalf("accepted the name %q", name)
			}
			if !strings.Contains(url, ":") || url != strings.TrimSpace(url) || strings.ContainsAny(url, "\r\n") {
				t.Fatalf("accepted %s=%q", name, url)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		var lines []string
		for _, name := range names {
			lines = append(lines, name+"="+got[name])
		}
		again, err := ParseConnections(strings.Join(lines, "\n"))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", lines, err)
		}
		if len(again) != len(got) {
			t.Fatalf("round trip: %v, then %v", got, again)
		}
		for name, url := range got {
			if again[name] != url {
				t.Fatalf("round trip: %s=%q became %q", name, url, again[name])
			}
		}
	})
}
