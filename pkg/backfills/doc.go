// Package backfills defines backfills: batched changes to the rows of a gorm
// model, in place, as DataDrip did.
//
// A backfill is a scope — a gorm query over the model, with typed params —
// plus exactly one of ProcessBatch (gets the batch's records),
// ProcessElement (gets them one at a time) or ProcessRange (gets the batch
// as a query, for set-based changes, and loads no record). An application
// registers its backfills in package-level vars with MustRegister, and its
// worker, scheduler and web mains import that package. The examples show
// each form run over SQLite batch by batch:
//
//   - ExampleDefinition_processBatch: set a default role, one UPDATE … WHERE
//     id IN (…) per batch;
//   - ExampleBatch_Save: change the loaded records in Go and write the
//     changed ones back with Batch.Save, one statement per batch;
//   - ExampleDefinition_processElement: lower-case e-mail addresses one
//     record at a time, skipping those already lower case (ErrSkip);
//   - ExampleDefinition_processRange: the same default role as one UPDATE per
//     batch over its key range, what a hand-written loop would run;
//   - ExampleNew_errors: what registration and run creation refuse.
//
// The records of a batch are those of the scope whose key lies in the batch's
// range when the batch runs; writes go through Batch.DB (or Element.DB,
// Range.DB), a transaction that commits together with the batch's checkpoint
// when the store lives in the same database.
package backfills
