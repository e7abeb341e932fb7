package ovs

import (
	"context"
	"os"
	"testing"
)

// Require skips t when Open vSwitch or root is missing, and fails it instead
// when CI=true (a missing install step must not pass silently).
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if err := Available(); err != nil {
		why = err.Error()
	} else if os.Geteuid() != 0 {
		why = "needs root (network namespaces, veths)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but the real data plane cannot run: %s", why)
	}
	t.Skipf("real data plane not available: %s", why)
}

// StartForTest starts private daemons under a temporary run directory with
// prefix and stops them (and deletes the prefix's namespaces) when t ends.
func StartForTest(t testing.TB, prefix string) *Daemon {
	t.Helper()
	Require(t)
	d, err := Start(context.Background(), Config{Dir: t.TempDir(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}
