package gitsource_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them (the
// registry watcher, git fetches).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
