package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readGoMod(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dripflow init writes a dependency `go mod tidy` can resolve: the version
// asked for, or the checkout the command was built from, never v0.0.0
// without a replace.
func TestInitDependency(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		dir := t.TempDir()
		var out, errb bytes.Buffer
		if code := Init([]string{"example.com/shop", "--dir", dir, "--dripflow-version", "v1.4.2"}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
			t.Fatalf("init: %d %s", code, errb.String())
		}
		mod := readGoMod(t, dir)
		if !strings.Contains(mod, "require github.com/dripflow/dripflow v1.4.2\n") || strings.Contains(mod, "replace") {
			t.Fatalf("go.mod:\n%s\nwant require v1.4.2 and no replace", mod)
		}
	})
	t.Run("built from a checkout", func(t *testing.T) {
		// A test binary is built from this checkout, as `go build
		// ./cmd/dripflow` is: its go.mod replaces dripflow by the checkout.
		dir := t.TempDir()
		var out, errb bytes.Buffer
		if code := Init([]string{"example.com/shop", "--dir", dir}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
			t.Fatalf("init: %d %s", code, errb.String())
		}
		mod := readGoMod(t, dir)
		if !strings.Contains(mod, "replace github.com/dripflow/dripflow => "+repoRoot(t)+"\n") ||
			!strings.Contains(mod, "// dripflow from the checkout this dripflow command was built from.") {
			t.Fatalf("go.mod:\n%s\nwant a commented replace by %s", mod, repoRoot(t))
		}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dripflow-version", "1.2"}, `"1.2" is not a version such as v1.2.3`},
		{[]string{"--dripflow-version", "v1.2.3", "--dripflow-path", "."}, "exclude each other"},
		{[]string{"--dripflow-path", os.TempDir()}, "no go.mod of module github.com/dripflow/dripflow"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			code := Init(append([]string{"example.com/shop", "--dir", dir}, tc.args...), Env{Stdout: &out, Stderr: &errb})
			if code != ExitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), ExitUsage, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused init wrote %d files", len(entries))
			}
		})
	}
}
