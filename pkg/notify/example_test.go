package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/notify"
)

// A receiver checks each delivery's signature and drops the ones it has
// seen (same X-Dripflow-Delivery).
func ExampleVerify() {
	const secret = "shared-secret" // DRIPFLOW_WEBHOOK_SECRET
	seen := map[string]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := notify.Verify(secret, r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), body, 5*time.Minute, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if id := r.Header.Get(notify.HeaderDelivery); !seen[id] {
			seen[id] = true
			fmt.Println("run event:", r.Header.Get(notify.HeaderEvent), strings.Contains(string(body), `"run_id":"42"`))
		}
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	// What the scheduler does when run 42 succeeds.
	s, _ := notify.NewSender(notify.Config{Secret: secret})
	p := notify.NewPayload(notify.NewRunInfo(sampleRun(), notify.Succeeded, ""), "")
	s.Deliver(context.Background(), notify.Webhook{URL: srv.URL}, p)
	s.Deliver(context.Background(), notify.Webhook{URL: srv.URL}, p) // a duplicate
	// Output: run event: succeeded true
}
