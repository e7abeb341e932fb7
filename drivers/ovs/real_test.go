package ovs

import (
	"context"
	"os"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// The package's own tests cannot import drivers/ovs/ovstest: ovstest
// imports this package, so an in-package test importing it is an import
// cycle (and an external test package cannot reach the unexported parts
// these tests check). requireReal and startReal therefore mirror
// ovstest.Require and ovstest.Start (≈ 15 lines, on purpose); a change to
// one belongs in the other.

func requireReal(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real Open vSwitch test: skipped under -short")
	}
	if err := Usable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real data plane cannot run: %v", err)
		}
		t.Skipf("real data plane not available: %v", err)
	}
	machinelocktest.OVS.Hold(t)
}

// startReal starts daemons under a prefix of this run (ClaimFree); Stop
// runs when t ends.
func startReal(t testing.TB) *Daemon {
	t.Helper()
	requireReal(t)
	d, err := StartFree(context.Background(), Config{Dir: t.TempDir()}, 't')
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
	return claimFreeReal(t).Prefix()
}

// claimFreeReal is claimReal's claim itself.
func claimFreeReal(t testing.TB) *Claim {
	t.Helper()
	requireReal(t)
	c, err := ClaimFree('t')
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c
}
