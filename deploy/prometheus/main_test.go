package prometheus

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the chargeguard started by TestPromtoolCheckMetrics
// leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
