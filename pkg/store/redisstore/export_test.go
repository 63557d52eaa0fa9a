package redisstore

import "context"

// SetStep sets how many batches one CancelRun or RetryBatches script moves.
func SetStep(s *Store, n int) { s.step = n }

// CancelStep runs one step of CancelRun, as if the caller stopped after it.
func CancelStep(ctx context.Context, s *Store, id int64) (done bool, err error) {
	code, _, err := s.eval(ctx, cancelRunScript, "cancel step", id, s.step)
	return code == "OK", err
}

// RetryStep runs one step of RetryBatches for every failed batch.
func RetryStep(ctx context.Context, s *Store, id int64) (moved int64, done bool, err error) {
	_, reply, err := s.eval(ctx, retryBatchesScript, "retry step", id, "", s.step)
	if err != nil {
		return 0, false, err
	}
	return reply[0].(int64), reply[1].(int64) == 1, nil
}

// SetMaxEvents sets how many events a run keeps.
func SetMaxEvents(s *Store, n int) { s.maxEvents = n }
