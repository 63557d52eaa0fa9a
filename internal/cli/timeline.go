package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
)

// cliUserAgent names the CLI to the server, which says "(CLI)" on the
// timeline of the runs it changes.
const cliUserAgent = "dripflow-cli/1"

// runTimeline is `runs show --timeline --output json`.
type runTimeline struct {
	Run      api.Run        `json:"run"`
	Timeline []api.RunEvent `json:"timeline"`
}

// runWithTimeline prints the run as show does, then its timeline oldest
// first: time, kind, actor, batch and message (continuation lines
// indented).
func (o out) runWithTimeline(ctx context.Context, c *client.Client, r api.Run, failed []api.Batch) error {
	events, err := c.AllTimeline(ctx, r.ID)
	if err != nil {
		return err
	}
	if o.json {
		if events == nil {
			events = []api.RunEvent{}
		}
		o.print(runTimeline{Run: r, Timeline: events})
		return nil
	}
	o.run(r, failed...)
	fmt.Fprintln(o.Stdout, "timeline:")
	if len(events) == 0 {
		fmt.Fprintln(o.Stdout, "  (no events)")
		return nil
	}
	tw := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	for _, e := range events {
		who := e.Actor
		if e.Batch != "" {
			who += " #" + e.Batch
		}
		msg := strings.ReplaceAll(strings.TrimRight(e.Message, "\n"), "\n", "\n      ")
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cliTime(e.At), e.Kind, who, msg)
	}
	return tw.Flush()
}
