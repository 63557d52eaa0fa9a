package web

import (
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// fakeStore satisfies store.Store; validation never calls it.
type fakeStore struct{ store.Store }

func TestOptionsWithDefaults(t *testing.T) {
	got := Options{}.WithDefaults()
	if got.Registry != engine.DefaultRegistry || got.MaxBodyBytes != MaxBodyBytesDefault || got.Queue != tasks.DefaultQueue || got.Logger == nil {
		t.Errorf("WithDefaults() = %+v, want every default set", got)
	}
	if set := (Options{MaxBodyBytes: 10, Queue: "q"}).WithDefaults(); set.MaxBodyBytes != 10 || set.Queue != "q" {
		t.Errorf("WithDefaults changed set fields: %+v", set)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", Options{Store: fakeStore{}}, ""},
		{"no store", Options{}, "Store is required"},
		{"negative body limit", Options{Store: fakeStore{}, MaxBodyBytes: -1}, "MaxBodyBytes must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.WithDefaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
