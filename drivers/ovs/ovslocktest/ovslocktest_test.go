package ovslocktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
		// a child this test starts (ovs-vswitchd, a forwarder) does not
		// inherit it
		want, _ := os.Stat(p)
		for fd := range startFDs {
			if fi, err := os.Stat(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil && os.SameFile(fi, want) {
				if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
					t.Fatalf("the inherited descriptor %d is not close-on-exec (flags %#x, %v)", fd, fl, err)
				}
			}
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

// A descriptor of the lock file that an ancestor opened but does not lock
// (a shell's `exec 9<>PATH`) is not an inherited lock: Hold neither runs
// under it nor takes the lock through it, and after the run the lock is
// free. Before (revO M3), the check itself took the lock with flock(2) on
// that descriptor and reported it inherited, and the lock stayed with the
// ancestor's descriptor after the run: every later run waited for it.
func TestAnUnlockedInheritedDescriptorIsNoLock(t *testing.T) {
	if p := os.Getenv("OVSLOCK_TEST_UNLOCKED"); p != "" {
		if inheritedLock(p) {
			t.Fatal("an unlocked descriptor of the lock file is taken for an inherited lock")
		}
		return
	}
	path := filepath.Join(t.TempDir(), "ovs.lock")
	// the shell keeps its descriptor 9 while the test binary runs as its
	// child (no exec: the descriptor outlives the binary)
	cmd := exec.Command("sh", "-c", `exec 9<>"$0"; "$1" -test.run='^TestAnUnlockedInheritedDescriptorIsNoLock$' -test.v; rc=$?; flock -n "$0" true || { echo "lock still held after the run"; exit 3; }; exit $rc`,
		path, os.Args[0])
	cmd.Env = append(os.Environ(), "OVSLOCK_TEST_UNLOCKED="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child with an unlocked descriptor 9: %v\n%s", err, out)
	}
}

// Every descriptor of the lock file the test binary inherited is
// close-on-exec from the package's initialisation, before any Hold (a
// binary whose tests start a daemon before their first Hold, or never call
// Hold, passes no lock on): the child below is this binary with the real
// lock file open as its descriptor 9 (opened, not locked: the test takes
// no lock). Before (revC L2), only the first Hold marked it, and only a
// locked one.
func TestTheLockFileIsCloseOnExecFromTheStart(t *testing.T) {
	if os.Getenv("OVSLOCK_TEST_INIT") != "" {
		want, err := os.Stat(Path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat("/proc/self/fd/9")
		if err != nil || !os.SameFile(fi, want) {
			t.Fatalf("descriptor 9 is not %s: %v", Path, err)
		}
		if fl, err := unix.FcntlInt(9, unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Fatalf("the inherited descriptor 9 of %s is not close-on-exec at the start (flags %#x, %v)", Path, fl, err)
		}
		return
	}
	cmd := exec.Command("sh", "-c", `exec 9>>"$0"; exec "$1" -test.run='^TestTheLockFileIsCloseOnExecFromTheStart$' -test.v`, Path, os.Args[0])
	cmd.Env = append(os.Environ(), "OVSLOCK_TEST_INIT=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child with %s open as descriptor 9: %v\n%s", Path, err, out)
	}
}

// A run under `flock -s PATH` (a shared lock of an ancestor) fails at once
// naming it, instead of waiting for its own ancestor to let the lock go
// until the test's deadline.
func TestAnAncestorsSharedLockIsNamed(t *testing.T) {
	if p := os.Getenv("OVSLOCK_TEST_SHARED"); p != "" {
		err := acquire(p, time.Minute, t.Logf)
		if err == nil || !strings.Contains(err.Error(), "flock -s") {
			t.Fatalf("under flock -s: %v, want an error naming the shared lock", err)
		}
		return
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	path := filepath.Join(t.TempDir(), "ovs.lock")
	cmd := exec.Command("flock", "-s", path, os.Args[0], "-test.run=^TestAnAncestorsSharedLockIsNamed$", "-test.v")
	cmd.Env = append(os.Environ(), "OVSLOCK_TEST_SHARED="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child under flock -s: %v\n%s", err, out)
	}
}
