package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/keyset"
)

// dryRunFlags are `dripflow runs start`'s --dry-run and --dry-run-batches.
type dryRunFlags struct {
	on      bool
	batches int
}

func startDryRunFlags(fs *flag.FlagSet) *dryRunFlags {
	d := &dryRunFlags{}
	fs.BoolVar(&d.on, "dry-run", false, "try the run's first batches in transactions that are rolled back; create no run")
	fs.IntVar(&d.batches, "dry-run-batches", 3, "batches a dry run tries (1..20)")
	return d
}

// set reports whether a dry run was asked for (--dry-run-batches alone
// counts, and the server says it needs --dry-run's "dry_run").
func (d *dryRunFlags) set(fs *flag.FlagSet) bool {
	return d != nil && (d.on || flagSet(fs, "dry-run-batches"))
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func (d *dryRunFlags) run(ctx context.Context, c *client.Client, o out, req api.CreateRun, watch bool) int {
	if watch {
		fmt.Fprintln(o.Stderr, "dripflow runs start: --dry-run creates no run to --watch")
		return ExitUsage
	}
	if req.StartAt != nil {
		fmt.Fprintln(o.Stderr, "dripflow runs start: --dry-run runs now; leave out --start-at")
		return ExitUsage
	}
	req.DryRun = d.on
	n := d.batches
	req.DryRunBatches = &n
	var rep api.DryRun
	var err error
	if d.on {
		rep, err = c.DryRun(ctx, req)
	} else {
		// Let the server say that the batches need a dry run.
		_, err = c.CreateRun(ctx, req)
	}
	if err != nil {
		return o.fail("start", err)
	}
	o.dryRun(rep)
	return ExitOK
}

// dryRun prints a dry run's report: a table of its batches, then the
// sampled rows' changes.
func (o out) dryRun(r api.DryRun) {
	if o.json {
		o.print(r)
		return
	}
	fmt.Fprintf(o.Stdout, "Dry run of %s: nothing was changed and no run was created.\n", r.Definition)
	if len(r.Batches) == 0 {
		fmt.Fprintln(o.Stdout, "No record is in scope: a run would have nothing to do.")
		return
	}
	tw := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BATCH\tRANGE\tREAD\tWOULD CHANGE\tSKIPPED\tMS\tERROR")
	for _, b := range r.Batches {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", b.Seq, keyset.HumanRange(b.Lo, b.Hi), b.Rows.Read, b.Rows.Written, b.Rows.Skipped, b.DurationMS, oneLine(b.Error))
	}
	tw.Flush()
	for _, b := range r.Batches {
		if len(b.Sample) == 0 {
			continue
		}
		fmt.Fprintf(o.Stdout, "\nbatch %d, rows before → after:\n", b.Seq)
		for _, row := range b.Sample {
			if row.Deleted {
				fmt.Fprintf(o.Stdout, "  %s: deleted\n", row.Key)
				continue
			}
			cols := append([]string(nil), row.Changed...)
			sort.Strings(cols)
			parts := make([]string, len(cols))
			for i, c := range cols {
				parts[i] = fmt.Sprintf("%s %s → %s", c, showValue(row.Before[c]), showValue(row.After[c]))
			}
			fmt.Fprintf(o.Stdout, "  %s: %s\n", row.Key, strings.Join(parts, "; "))
		}
	}
	switch {
	case r.TimedOut:
		fmt.Fprintln(o.Stdout, "\nThe dry run's time limit cut it short.")
	case r.More:
		fmt.Fprintf(o.Stdout, "\nThe run would go on after these %d batches of %d.\n", len(r.Batches), r.BatchSize)
	default:
		fmt.Fprintln(o.Stdout, "\nThese are all the batches the run would have.")
	}
}

func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
