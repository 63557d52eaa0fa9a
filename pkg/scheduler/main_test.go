package scheduler

import (
	"testing"

	"github.com/dripflow/dripflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }
