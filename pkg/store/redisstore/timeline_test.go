package redisstore_test

import (
	"testing"

	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/storetest"
)

// A run keeps its newest events: beyond the cap the oldest are dropped and
// their keys can be written again.
func TestRunEventsCap(t *testing.T) {
	s := newStore(t, redisstore.Config{})
	redisstore.SetMaxEvents(s, 3)
	storetest.CheckEventsCap(t, s)
}
