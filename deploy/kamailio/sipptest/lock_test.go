package sipptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdinfo's lock line: only an exclusive flock held through the descriptor
// counts (a shared flock, a POSIX lock or no lock is not the ancestor's
// lock).
func TestFlockWriteHeld(t *testing.T) {
	for _, c := range []struct {
		info string
		want bool
	}{
		{"pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t9977978\nlock:\t1: FLOCK  ADVISORY  WRITE 17779 fe:00:9977978 0 EOF\n", true},
		{"pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t9977978\n", false},
		{"lock:\t1: FLOCK  ADVISORY  READ 17779 fe:00:9977978 0 EOF\n", false},
		{"lock:\t1: POSIX  ADVISORY  WRITE 17779 fe:00:9977978 0 EOF\n", false},
	} {
		if got := flockWriteHeld(c.info); got != c.want {
			t.Errorf("flockWriteHeld(%q) = %v, want %v", c.info, got, c.want)
		}
	}
}

// The child half of TestInheritedLockOnlyWhenAnAncestorHoldsIt: this binary
// re-executed with SIPPTEST_LOCK_CHILD=<path>:<want>.
func inheritedLockChild(t *testing.T, spec string) {
	path, want, _ := strings.Cut(spec, ":")
	fd, ok := inheritedLock(path)
	if ok != (want == "held") {
		t.Fatalf("inheritedLock(%s) = %v, want %s", path, ok, want)
	}
	if ok {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Fatalf("the inherited lock's descriptor %d is not close-on-exec (flags %#x, %v): children would keep the lock", fd, flags, err)
		}
	}
}

// A run under flock(1) runs under its ancestor's lock (and its children do
// not inherit it); a descriptor of the lock file that holds no lock (a
// shell's `exec 9<>FILE`) is not an inherited lock, and the check does not
// take the lock on it: after the child the shell's descriptor holds
// nothing (the former flock(2) probe took the lock on the shell's open
// file and left it held).
func TestInheritedLockOnlyWhenAnAncestorHoldsIt(t *testing.T) {
	if spec := os.Getenv("SIPPTEST_LOCK_CHILD"); spec != "" {
		inheritedLockChild(t, spec)
		return
	}
	for _, tool := range []string{"flock", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := inheritedLock(path); ok {
		t.Fatal("a file this process never had open is not inherited")
	}
	child := os.Args[0] + " -test.run=^TestInheritedLockOnlyWhenAnAncestorHoldsIt$ -test.v"
	for _, c := range []struct{ name, script, want string }{
		{"under flock(1)", `flock "$P" ` + child, "held"},
		{"an unlocked descriptor", `exec 9<>"$P"; ` + child + ` || exit 1; flock -n "$P" true || { echo "LOCK LEFT HELD"; exit 1; }`, "free"},
	} {
		cmd := exec.Command("bash", "-c", c.script)
		cmd.Env = append(os.Environ(), "P="+path, "SIPPTEST_LOCK_CHILD="+path+":"+c.want)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Errorf("%s: %v\n%s", c.name, err, out)
		}
	}
}
