package ovs

import (
	"context"
	"os"
	"testing"
)

// The package's own tests cannot import ovstest (it imports this package):
// these are its Require and Start.

func requireReal(t testing.TB) {
	t.Helper()
	if err := Usable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real data plane cannot run: %v", err)
		}
		t.Skipf("real data plane not available: %v", err)
	}
}

// startReal starts daemons under a prefix of this run (ClaimFree); Stop
// runs when t ends.
func startReal(t testing.TB) *Daemon {
	t.Helper()
	requireReal(t)
	d, err := StartFree(context.Background(), t.TempDir(), 't')
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

// claimReal claims a prefix of this run for objects a test makes without
// daemons (namespaces, veths), released when t ends.
func claimReal(t testing.TB) string {
	t.Helper()
	requireReal(t)
	c, err := ClaimFree('t')
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c.Prefix()
}
