package app

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// idleTxParam is PostgreSQL's limit on a session idle inside a transaction.
const idleTxParam = "idle_in_transaction_session_timeout"

// minIdleTxTimeout keeps the limit above any pause a healthy process makes
// between two statements of one transaction.
const minIdleTxTimeout = 10 * time.Second

// withIdleTxTimeout returns a PostgreSQL URL whose sessions end a
// transaction left idle for longer than lease (at least 10 s), unless the
// URL sets the limit itself; other URLs come back unchanged.
//
// A process frozen (SIGSTOP, a stalled VM) in the middle of a batch's
// transaction holds row locks on its batch and run; PostgreSQL would wait
// for it forever, and every other worker's checkpoint of that run and the
// rescue of the frozen worker's claims would wait with it. Past its lease
// the attempt is lost anyway (another attempt takes the batch over), so
// PostgreSQL may end the session, which rolls the transaction back and
// frees the locks. A healthy transaction is never idle that long: a
// statement running is not idle.
func withIdleTxTimeout(rawURL string, lease time.Duration) string {
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL // opening it reports the error
	}
	q := u.Query()
	if q.Has(idleTxParam) {
		return rawURL
	}
	q.Set(idleTxParam, strconv.FormatInt(max(lease, minIdleTxTimeout).Milliseconds(), 10))
	u.RawQuery = q.Encode()
	return u.String()
}
