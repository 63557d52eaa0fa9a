package flows

import (
	"fmt"

	"github.com/dripflow/dripflow/pkg/engine"
)

var _ engine.DryRunChecker = (*pipeline)(nil)

// DryRunCheck allows a dry run only of a flow whose writes can be rolled
// back and whose reads change nothing: a keyed source (a table, a model)
// into a transactional sink (TxSink, in a SQL database). A sink outside a
// database (a stream, a broker, a file, an HTTP endpoint) cannot take its
// writes back, and an offset source's reads move its position (a consumer
// group's pending entries, a broker's deliveries), so both are refused.
// Transforms are expected to be pure functions of their records.
func (p *pipeline) DryRunCheck() error {
	if _, ok := p.sink.(TxSink); !ok {
		return fmt.Errorf("%w: flow %q writes to a %s sink, outside a database transaction, so what it writes could not be rolled back", engine.ErrDryRunUnsupported, p.f.Name, p.f.Sink.Kind())
	}
	if p.src.Shape() != Keyed {
		return fmt.Errorf("%w: flow %q reads a %s source, whose reads move its position (they are acknowledged or consumed), so reading a sample would change it", engine.ErrDryRunUnsupported, p.f.Name, p.f.Source.Kind())
	}
	return nil
}
