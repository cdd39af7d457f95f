package actors

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
//
// Ignored: protoactor's dead-letter throttle, a goroutine of the library
// that a dead letter (a message to an actor that just stopped) starts and
// that ends by itself one throttle period later; whether one is still
// sleeping when the last test ends depends only on timing.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
