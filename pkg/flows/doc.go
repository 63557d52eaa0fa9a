// Package flows defines data flows, as ActiveDataFlow did: a Source, zero or
// more Transforms, a Sink, and a Runtime that says when the flow runs
// (Once, Heartbeat{Interval}, Cron{Spec}).
//
// # Connectors
//
// Sources and sinks are connectors, each a package under pkg/connectors
// registered by kind name (RegisterConnector). A flow names connector
// configurations — JSON-serialisable structs such as &sqlconn.Source{…} —
// which are validated when the flow is registered (a *FieldError names the
// failing field, "source.table") and built, with their connections, once per
// process that runs the flow (SourceConfig.Build gets the process's
// engine.Resources: the application database and the named connections of
// DRIPFLOW_CONNECTIONS). Because configurations are plain JSON, a flow is
// stored with its definition, shown in the UI and decoded again by any
// process (DecodeSource, DecodeSink).
//
// A Source has one of two shapes behind one contract. The scheduler plans a
// run as ranges of positions (Next, Flink's split enumeration) and any worker
// reads one range (Read), the same records on every attempt:
//
//   - Keyed sources (a table, a gorm model and named scope) read every
//     record in scope as of planning, or, with a cursor such as
//     (updated_at, id), every record after the flow's watermark.
//   - Offset sources (a Redis stream, a JetStream subject, a file that
//     grows) start each run at the flow's committed offset and take what
//     arrived since, up to MaxBatchesPerRun batches. Sources that
//     acknowledge deliveries (consumer groups) implement Acker and hear of a
//     batch only once its checkpoint has committed.
//
// A Sink declares its Guarantee. A TxSink on the store's own database writes
// inside the batch's checkpoint transaction (exactly once); elsewhere a sink
// is Idempotent (upsert by key, dedupe by message id: effectively once) or
// AtLeastOnce (a batch redelivered after a crash may be written twice). The
// UI shows it next to the flow.
//
// A flow's watermark — the last position a succeeded run delivered — moves
// only when the run succeeds, so a failed or cancelled run is read again by
// the next one.
//
// See the package examples, and docs/connectors.md for every connector.
package flows
