// Package backfills defines backfills: batched changes to the rows of a gorm
// model, in place, as DataDrip did.
//
// A backfill is a scope — a gorm query over the model, with typed params —
// plus exactly one of ProcessBatch (gets the batch's records),
// ProcessElement (gets them one at a time) or ProcessRange (gets the batch
// as a query, for set-based changes, and loads no record):
//
//	type RoleParams struct {
//		Role string `json:"role" default:"member" enum:"member,admin"`
//	}
//
//	var _ = backfills.MustRegister(backfills.Definition[User, RoleParams]{
//		Name:  "add_default_role_to_users",
//		Scope: func(db *gorm.DB, p RoleParams) *gorm.DB { return db.Where("role IS NULL") },
//		ProcessBatch: func(ctx context.Context, b *backfills.Batch[User, RoleParams]) error {
//			return b.DB.Model(&User{}).Where("id IN ?", b.Keys()).Update("role", b.Params.Role).Error
//		},
//	})
//
// The same as one UPDATE per batch, which is what a hand-written loop would
// run:
//
//	ProcessRange: func(ctx context.Context, r *backfills.Range[User, RoleParams]) error {
//		return r.Update("role", r.Params.Role)
//	},
//
// The records of a batch are those of the scope whose key lies in the batch's
// range when the batch runs; writes go through Batch.DB (or Element.DB,
// Range.DB), a transaction that commits together with the batch's checkpoint
// when the store lives in the same database.
package backfills
