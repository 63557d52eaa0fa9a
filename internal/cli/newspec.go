package cli

import (
	"fmt"
	"path/filepath"
	"strings"
)

// flowSpecTmpl is the starter spec `dripflow new flow NAME --yaml` writes:
// it validates as it is (a table of the application database to JSONL
// files), and its comments show the other choices.
const flowSpecTmpl = `# Flow spec NAME: a flow defined as data, no Go needed.
#   check it:  dripflow flows validate -f FILE
#   store it:  dripflow flows apply -f FILE      (again after each change: a new version)
#   run it:    dripflow flows activate NAME      (or: dripflow flows trigger NAME)
# Connector kinds and their settings: dripflow's GET /api/v1/connectors and docs/connectors.md.
name: NAME
description: Copy the rows of users that changed since the last run to JSONL files.

source:
  kind: sql                  # also: file, redisstream, nats, amqp
  settings:
    table: users
    # connection: replica    # a name of DRIPFLOW_CONNECTIONS; default: the application database
    # columns: [id, email, updated_at]
    # where: active = ?
    # args: [true]
    cursor: [updated_at, id] # incremental: each run reads only what changed since the last one

# Applied in order, to each record. Built in: select, drop, rename, set,
# cast, filter, dedupe; or a Go transform registered with flows.RegisterTransform.
transforms:
  - type: select
    fields: [id, email, updated_at]
  - type: rename
    fields: {id: user_id}
  # - type: filter
  #   where: user_id > 100 and email != ""
  # - type: set
  #   field: source
  #   value: app
  # - type: cast
  #   fields: {user_id: string}
  # - type: dedupe
  #   key: [user_id]

sink:
  kind: file                 # also: sql (mode insert, upsert or update; key), redisstream, nats, amqp, http
  settings:
    dir: /var/lib/dripflow/NAME
    format: jsonl            # or csv

# once (the default: one run per activation), every <duration> such as
# every 5m, or cron <spec> such as cron */15 * * * * (UTC).
runtime: every 5m

options:
  batch_size: 1000
  # max_in_flight: 4
  # rows_per_second: 5000
  # sleep: 250ms
  # target_batch_time: 200ms   # adapt the batch size so a batch takes about this long
`

// newFlowSpec writes DIR/NAME.yaml, a commented starter flow spec.
func newFlowSpec(name, dir string, env Env) int {
	_, snake, err := names(name)
	if err != nil {
		fmt.Fprintln(env.Stderr, "dripflow new:", err)
		return ExitUsage
	}
	path := filepath.Join(dir, snake+".yaml")
	content := strings.ReplaceAll(flowSpecTmpl, "FILE", path)
	content = strings.ReplaceAll(content, "NAME", snake)
	if err := writeNew(path, []byte(content), false); err != nil {
		fmt.Fprintln(env.Stderr, "dripflow new:", err)
		return ExitError
	}
	fmt.Fprintf(env.Stdout, "wrote %s: flow spec %q; check it with dripflow flows validate -f %s, store it with dripflow flows apply -f %s\n", path, snake, path, path)
	return ExitOK
}
