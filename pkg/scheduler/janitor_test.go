package scheduler

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dripflow/dripflow/pkg/tasks"
)

type fakeCleaner []tasks.BadEntry

func (c fakeCleaner) CleanQueue(context.Context) ([]tasks.BadEntry, error) { return c, nil }
func (c fakeCleaner) Queue() string                                        { return "q" }

// Every undecodable entry removed is logged with where it was.
func TestJanitorLogsRemovedEntries(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	j := &janitor{queue: fakeCleaner{{List: "active", ID: "x", Reason: "not a task"}, {List: "pending", ID: "y", Reason: "bad"}}, log: zap.New(core)}
	j.clean(context.Background())
	got := logs.FilterMessage("removed an undecodable queue entry").All()
	if len(got) != 2 || got[0].ContextMap()["entry"] != "x" || got[1].ContextMap()["list"] != "pending" {
		t.Fatalf("logged %+v, want both entries", got)
	}
}
