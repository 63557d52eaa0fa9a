// Package flows defines data flows, as ActiveDataFlow did: a Source, zero or
// more Transforms, a Sink, and a Runtime that says when the flow runs
// (Once, Heartbeat{Interval}, Cron{Spec}).
//
//	var _ = flows.MustRegister(flows.Flow{
//		Name:   "user_sync",
//		Source: &sqlconn.Source{Table: "users", Where: "active = ?", Args: []any{true}, Cursor: []string{"updated_at", "id"}},
//		Transforms: []flows.Transform{flows.Map("backup", func(r flows.Record) (flows.Record, error) {
//			return flows.Record{"user_id": r["id"], "email": r["email"]}, nil
//		})},
//		Sink:    &sqlconn.Sink{Table: "user_backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}},
//		Runtime: flows.Heartbeat{Interval: 30 * time.Second},
//	})
//
// An incremental source keeps a watermark — the last cursor value a
// succeeded run delivered — so each run moves only what changed since.
// Connectors register themselves by name (RegisterSource, RegisterSink), so a
// flow's configuration is stored as JSON, shown in the UI, and can be rebuilt
// by any worker (BuildSource, BuildSink).
package flows
