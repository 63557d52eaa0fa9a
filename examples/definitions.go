package examples

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/examples/demo"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// RoleParams are the params of add_default_role_to_users.
type RoleParams struct {
	Role string `json:"role" default:"member" enum:"member,admin,guest" help:"role given to users without one"`
}

// AddDefaultRole sets a role on every user without one.
var AddDefaultRole = backfills.MustRegister(backfills.Definition[User, RoleParams]{
	Name:        "add_default_role_to_users",
	Description: "Give every user without a role the default role.",
	Scope: func(db *gorm.DB, _ RoleParams) *gorm.DB {
		return db.Where("role IS NULL")
	},
	ProcessBatch: func(ctx context.Context, b *backfills.Batch[User, RoleParams]) error {
		res := b.DB.Model(&User{}).
			Where("id IN ? AND role IS NULL", b.Keys()).
			Updates(map[string]any{"role": b.Params.Role, "updated_at": time.Now().UTC()})
		b.Wrote(res.RowsAffected)
		return res.Error
	},
	Options: backfills.Options{BatchSize: 1000},
})

// FixUserEmails normalises unverified users' emails and marks them verified.
var FixUserEmails = backfills.MustRegister(backfills.Definition[User, struct{}]{
	Name:        "fix_user_emails",
	Description: "Lower-case and trim unverified emails, then mark them verified.",
	Scope: func(db *gorm.DB, _ struct{}) *gorm.DB {
		return db.Where("email_verified = ?", false)
	},
	ProcessElement: func(ctx context.Context, e *backfills.Element[User, struct{}]) error {
		return e.DB.Model(e.Record).Updates(map[string]any{
			"email":          demo.NormalizeEmail(e.Record.Email),
			"email_verified": true,
			"updated_at":     time.Now().UTC(),
		}).Error
	},
	Options: backfills.Options{BatchSize: 500},
})

// UserSync copies active users into user_backups, moving only what changed
// since the last run.
var UserSync = flows.MustRegister(flows.Flow{
	Name:        "user_sync",
	Description: "Copy active users into user_backups (upsert by user_id), incrementally.",
	Source: &sqlconn.Source{
		Table:   "users",
		Columns: []string{"id", "email", "email_verified", "role", "updated_at"},
		Where:   "active = ?",
		Args:    []any{true},
		Cursor:  []string{"updated_at", "id"},
	},
	Transforms: []flows.Transform{
		flows.Map("to_backup", func(r flows.Record) (flows.Record, error) {
			return flows.Record{
				"user_id":         r["id"],
				"email":           r["email"],
				"email_verified":  r["email_verified"],
				"role":            r["role"],
				"user_updated_at": r["updated_at"],
				"synced_at":       time.Now().UTC(),
			}, nil
		}),
	},
	Sink:    &sqlconn.Sink{Table: "user_backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}},
	Runtime: flows.Heartbeat{Interval: 30 * time.Second},
})
