package runner

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Re-executed as a step supervisor (every ShellRunner step in these
	// tests runs under the real supervisor) or as a worker to be killed.
	SupervisorMain()
	if os.Getenv(testWorkerEnv) != "" {
		os.Exit(testWorkerMain())
	}
	// Idle keep-alive connections of HTTP transports are not leaks.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"))
}
