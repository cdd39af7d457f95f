package tracing_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them (span
// processors and exporters run their own).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
