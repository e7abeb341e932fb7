package ovslocktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The lock is the process's once for all its holders: a second holder does
// not wait for the first (Require then Start in one test), and the lock
// goes with the last holder; while the process holds it, another open
// file of it (another process) does not get it.
func TestHeldOnceForAllHoldersOfTheProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ovs.lock")
	logf := func(string, ...any) {}
	if err := acquire(path, time.Second, logf); err != nil {
		t.Fatal(err)
	}
	if err := acquire(path, time.Second, logf); err != nil {
		t.Fatalf("a second holder of the process: %v", err)
	}
	var waited []string
	if _, err := lockFile(path, 10*time.Millisecond, func(f string, a ...any) { waited = append(waited, f) }); err == nil ||
		!strings.Contains(err.Error(), "not taken within") || len(waited) != 1 {
		t.Fatalf("another open file while the process holds the lock: %v (logged %v), want it refused after waiting", err, waited)
	}
	release()
	if _, err := lockFile(path, 10*time.Millisecond, logf); err == nil {
		t.Fatal("the lock went with the first of two holders")
	}
	release()
	other, err := lockFile(path, time.Second, logf)
	if err != nil {
		t.Fatalf("after the last holder: %v", err)
	}
	other.Close()
}

// A run under `flock PATH go test ...` holds the lock in an ancestor, whose
// descriptor the test binary inherits: Hold runs under it instead of
// waiting for itself (the child below is this binary under flock(1)).
func TestRunsUnderAnAncestorsLock(t *testing.T) {
	if p := os.Getenv("OVSLOCK_TEST_CHILD"); p != "" {
		if !inheritedLock(p) {
			t.Fatal("the lock flock(1) holds is not seen as inherited")
		}
		if err := acquire(p, time.Second, t.Logf); err != nil {
			t.Fatalf("under flock(1): %v", err)
		}
		release()
		return
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	path := filepath.Join(t.TempDir(), "ovs.lock")
	if inheritedLock(path) {
		t.Fatal("no file: nothing inherited")
	}
	cmd := exec.Command("flock", path, os.Args[0], "-test.run=^TestRunsUnderAnAncestorsLock$", "-test.v")
	cmd.Env = append(os.Environ(), "OVSLOCK_TEST_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child under flock(1): %v\n%s", err, out)
	}
}
