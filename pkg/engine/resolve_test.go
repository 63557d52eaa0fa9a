package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// stubJob is a job with a name and a version, enough to tell jobs apart.
type stubJob struct{ def store.Definition }

func (j stubJob) Definition() store.Definition { return j.def }
func (j stubJob) Defaults() store.RunOptions {
	return store.RunOptions{BatchSize: 10, MaxInFlight: 1, MaxAttempts: 1}
}
func (j stubJob) Params() params.Schema { return params.Schema{} }
func (j stubJob) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}
func (j stubJob) Open(context.Context, engine.Env, json.RawMessage) (engine.Pipeline, error) {
	return nil, errors.New("not runnable")
}

func TestResolve(t *testing.T) {
	reg := engine.NewRegistry()
	code := stubJob{store.Definition{Name: "code_flow", Kind: store.KindFlow, Origin: store.OriginCode}}
	if err := reg.Register(code); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := reg.Resolve(ctx, "spec_flow", 0); !errors.Is(err, engine.ErrUnknownDefinition) || !strings.Contains(err.Error(), `"spec_flow"`) {
		t.Errorf("without a loader: %v, want ErrUnknownDefinition naming the definition", err)
	}
	down := errors.New("store down")
	var asked []string
	reg.SetLoader(engine.LoaderFunc(func(_ context.Context, name string, version int64) (engine.Job, error) {
		asked = append(asked, fmt.Sprintf("%s@%d", name, version))
		switch {
		case name == "spec_flow":
			if version == 0 {
				version = 3
			}
			return stubJob{store.Definition{Name: name, Kind: store.KindFlow, Origin: store.OriginSpec, Version: version}}, nil
		case name == "broken":
			return nil, down
		}
		return nil, fmt.Errorf("definition %q: %w", name, engine.ErrUnknownDefinition)
	}))
	for _, tc := range []struct {
		name    string
		version int64
		want    string // origin@version, or the error wanted
	}{
		{"code_flow", 0, "code@0"},
		{"code_flow", 7, "code@0"}, // code comes first, whatever the version
		{"spec_flow", 0, "spec@3"},
		{"spec_flow", 2, "spec@2"},
		{"nope", 0, "unknown definition"},
		{"broken", 0, `load definition "broken": store down`},
		{"broken", 4, `load definition "broken" version 4: store down`},
	} {
		j, err := reg.Resolve(ctx, tc.name, tc.version)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%s@%d", j.Definition().Origin, j.Definition().Version)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("Resolve(%s, %d) = %s, want %s", tc.name, tc.version, got, tc.want)
		}
	}
	if strings.Join(asked, ",") != "spec_flow@0,spec_flow@2,nope@0,broken@0,broken@4" {
		t.Errorf("loader asked for %v; code definitions must not reach it", asked)
	}
	if _, err := reg.Resolve(ctx, "broken", 0); errors.Is(err, engine.ErrUnknownDefinition) || !errors.Is(err, down) {
		t.Errorf("a failing loader: %v, want its error, not unknown", err)
	}
	if js := reg.Jobs(); len(js) != 1 {
		t.Errorf("Jobs lists %d, want only the registered one", len(js))
	}
}
