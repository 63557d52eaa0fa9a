package e2edefs

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/notify"
)

// Notified is e2e_bump with hooks and a webhook of its own: each hook POSTs
// its name and RunInfo.Key to $E2E_HOOK_URL/hook/<name> (so a test counts
// the calls made in a scheduler process), and the definition's webhook is
// $E2E_DEF_WEBHOOK_URL (none when unset). Poisoned rows fail their batch.
var Notified = backfills.MustRegister(backfills.Definition[Item, BumpParams]{
	Name:        "e2e_notified",
	Description: "Increment counter of every item, telling a test's receiver when runs start and end.",
	ProcessBatch: func(ctx context.Context, b *backfills.Batch[Item, BumpParams]) error {
		for _, it := range b.Records {
			if it.Poison {
				return fmt.Errorf("poison row %d", it.ID)
			}
		}
		if b.Params.SleepMS > 0 {
			select {
			case <-time.After(time.Duration(b.Params.SleepMS) * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return b.DB.Model(&Item{}).Where("id IN ?", b.Keys()).Update("counter", gorm.Expr("counter + 1")).Error
	},
	OnStart:    reportHook("start"),
	OnComplete: reportHook("complete"),
	OnError:    reportHook("error"),
	Webhooks:   envWebhooks("E2E_DEF_WEBHOOK_URL"),
})

func reportHook(name string) notify.HookFunc {
	return func(ctx context.Context, info notify.RunInfo) error {
		base := os.Getenv("E2E_HOOK_URL")
		if base == "" {
			return nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/hook/"+name, bytes.NewBufferString(info.Key))
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("hook receiver: HTTP %d", resp.StatusCode)
		}
		return nil
	}
}

func envWebhooks(name string) []notify.Webhook {
	if u := os.Getenv(name); u != "" {
		return []notify.Webhook{{URL: u}}
	}
	return nil
}
