package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that only talks to the API links package client and package api
// and nothing of the server: no store, no gorm, go-redis, zap or asynq.
func TestClientDependsOnNoServerPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	forbidden := []string{
		"gorm.io/",
		"github.com/redis/go-redis",
		"go.uber.org/zap",
		"github.com/hibiken/asynq",
		"github.com/dripflow/dripflow/pkg/engine",
		"github.com/dripflow/dripflow/pkg/keyset",
		"github.com/dripflow/dripflow/pkg/events",
		"github.com/dripflow/dripflow/pkg/store",
		"github.com/dripflow/dripflow/pkg/control",
		"github.com/dripflow/dripflow/internal/",
	}
	for _, pkg := range []string{"github.com/dripflow/dripflow/pkg/client", "github.com/dripflow/dripflow/pkg/api"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
