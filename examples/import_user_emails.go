package examples

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/params"
)

// ImportEmailsParams are the params of import_user_emails.
type ImportEmailsParams struct {
	Emails params.CSV `json:"emails" required:"true" headers:"id,email" help:"CSV file with columns id and email: each user's new address"`
}

// ImportUserEmails sets users' emails from an uploaded CSV (id,email per
// row) and marks them unverified; a row whose user does not exist is
// skipped, a row with a malformed id or email fails its batch naming the
// row.
var ImportUserEmails = backfills.MustRegisterCSV(backfills.CSVDefinition[ImportEmailsParams]{
	Name:        "import_user_emails",
	Description: "Set users' emails from an uploaded CSV (columns id, email); unknown ids are skipped.",
	CSV:         func(p ImportEmailsParams) params.CSV { return p.Emails },
	ProcessRows: func(ctx context.Context, r *backfills.Rows[ImportEmailsParams]) error {
		now := time.Now().UTC()
		var written int64
		for i, rec := range r.Records {
			id, err := strconv.ParseInt(strings.TrimSpace(rec["id"]), 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("row %d: id %q is not a user id", r.First+i, rec["id"])
			}
			email := NormalizeEmail(rec["email"])
			if !strings.Contains(email, "@") || len(email) > 320 {
				return fmt.Errorf("row %d: %q is not an email address", r.First+i, rec["email"])
			}
			res := r.DB.Model(&User{}).Where("id = ?", id).
				Updates(map[string]any{"email": email, "email_verified": false, "updated_at": now})
			if res.Error != nil {
				return fmt.Errorf("row %d: %w", r.First+i, res.Error)
			}
			if res.RowsAffected == 0 {
				r.Skipped(1)
				continue
			}
			written += res.RowsAffected
		}
		r.Wrote(written)
		return nil
	},
	Options: backfills.Options{BatchSize: 500},
})
