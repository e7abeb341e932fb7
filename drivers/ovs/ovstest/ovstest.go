// Package ovstest holds the test helpers of the real data plane (imported by
// tests only): Require skips a test where Open vSwitch cannot run (and fails
// it with CI=true) or under -short, and otherwise holds the machine lock of
// the real tests for it (machinelocktest.OVS); Start (StartWith: with
// settings) gives a test private daemons under a name prefix of its own,
// which no other run on the machine shares; OfctlRuns counts the ovs-ofctl
// runs of a test.
package ovstest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// Lead is the first letter of every test prefix (ovs.ClaimFree): the
// daemon's own prefixes start with "i" (controller/daemon dpPrefix).
const Lead = 't'

// Require and Start are mirrored in drivers/ovs/real_test.go (that
// package's own tests cannot import this one: an import cycle): change both.

// Require skips t under -short (real tests take seconds to minutes and the
// machine lock) and when Open vSwitch or root is missing, and fails it
// instead when CI=true (a missing install step must not pass silently).
// Otherwise t holds the machine lock of the real tests (machinelocktest.OVS) until it
// ends: a second run on the machine waits for it.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real Open vSwitch test: skipped under -short")
	}
	err := ovs.Usable()
	if err == nil {
		machinelocktest.OVS.Hold(t)
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but the real data plane cannot run: %v", err)
	}
	t.Skipf("real data plane not available: %v", err)
}

// Start starts private daemons under a temporary run directory and a prefix
// claimed for this run (ovs.StartFree; d.Prefix() names everything the test
// makes), and stops them, deletes the prefix's namespaces and releases the
// prefix when t ends.
func Start(t testing.TB) *ovs.Daemon {
	t.Helper()
	return StartWith(t, ovs.Config{})
}

// StartWith is Start with the settings of cfg (e.g. its RulePath); Start
// fills its Dir and Prefix, which must be empty.
func StartWith(t testing.TB, cfg ovs.Config) *ovs.Daemon {
	t.Helper()
	Require(t)
	if cfg.Dir != "" {
		t.Fatalf("ovstest.StartWith: Dir %q given; it is the test's temporary directory", cfg.Dir)
	}
	cfg.Dir = t.TempDir()
	d, err := ovs.StartFree(context.Background(), cfg, Lead)
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

// OfctlRuns puts an ovs-ofctl first on the PATH of this test process that
// logs each run's arguments (one line) and runs the real one, and returns
// the lines logged so far: the ovs-ofctl runs a test's code made, counted
// where they happen. The test may not be parallel (t.Setenv).
func OfctlRuns(t *testing.T) func() []string {
	t.Helper()
	real, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Fatalf("ovs-ofctl: %v", err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "runs.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> '%s'\nexec '%s' \"$@\"\n", log, real)
	if err := os.WriteFile(filepath.Join(dir, "ovs-ofctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		b, err := os.ReadFile(log)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[:strings.Count(string(b), "\n")]
	}
}
