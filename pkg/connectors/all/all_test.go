package all_test

import (
	"testing"

	"github.com/dripflow/dripflow/pkg/flows"

	_ "github.com/dripflow/dripflow/pkg/connectors/all"
)

// TestEveryKindRegistered: importing the package registers every shipped
// connector kind, each with a source and a sink.
func TestEveryKindRegistered(t *testing.T) {
	got := map[string]flows.Connector{}
	for _, c := range flows.Connectors() {
		got[c.Kind] = c
	}
	for _, kind := range []string{"amqp", "file", "http", "nats", "redisstream", "sql"} {
		c, ok := got[kind]
		if !ok {
			t.Errorf("kind %q is not registered", kind)
			continue
		}
		// The http connector is a sink only.
		if (c.Source == nil && kind != "http") || c.Sink == nil || c.Description == "" || c.Delivery == "" {
			t.Errorf("kind %q: source %v, sink %v, description %q; want both and a description", kind, c.Source != nil, c.Sink != nil, c.Description)
		}
		for _, s := range flows.Schema(c.Sink()) {
			if s.Help == "" {
				t.Errorf("kind %q sink setting %s has no help", kind, s.Name)
			}
		}
		if c.Source != nil {
			for _, s := range flows.Schema(c.Source()) {
				if s.Help == "" {
					t.Errorf("kind %q source setting %s has no help", kind, s.Name)
				}
			}
		}
	}
}
