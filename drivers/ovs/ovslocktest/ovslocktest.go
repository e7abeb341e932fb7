// Package ovslocktest owns the machine lock of the real Open vSwitch and
// network-namespace tests (Path, the file the docs' `flock
// /tmp/ims-orch-ovs.lock go test ...` takes): every real test holds it
// while it runs (ovstest.Require and drivers/ovs's own requireReal call
// Hold), so two runs on one machine take turns test by test instead of
// loading it together, also when someone runs `go test` by hand without
// flock(1). A run under flock(1) already holds the lock in an ancestor and
// runs under it. A test that also takes the SIP lock (controller/daemon's
// real-DP serve tests) takes this one first. It imports nothing of this
// module: drivers/ovs's own tests use it too (they cannot import ovstest).
package ovslocktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Path is the lock file.
const Path = "/tmp/ims-orch-ovs.lock"

// reserve is the time a test's deadline leaves after the wait for the lock
// (the failure's report and the cleanups of the tests before).
const reserve = 30 * time.Second

// noDeadlineWait bounds the wait of a test without a deadline.
const noDeadlineWait = 30 * time.Minute

// The process holds the lock once for all its holders (a test that calls
// Require and then Start, parallel tests): held counts them, f is the
// descriptor that holds it (nil when an ancestor does: inherited).
var (
	mu        sync.Mutex
	held      int
	f         *os.File
	inherited bool
)

// Hold takes the lock for t, waiting while another process holds it, until
// t ends (t fails when t's deadline comes first). The lock is released when
// the process's last holder ends.
func Hold(t testing.TB) {
	t.Helper()
	wait := noDeadlineWait
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := dt.Deadline(); ok {
			wait = max(time.Until(dl)-reserve, time.Second)
		}
	}
	if err := acquire(Path, wait, t.Logf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
}

func acquire(path string, wait time.Duration, logf func(string, ...any)) error {
	mu.Lock()
	defer mu.Unlock()
	if held > 0 {
		held++
		return nil
	}
	if inheritedShared(path) {
		return fmt.Errorf("%s is held shared by an ancestor (flock -s): the real Open vSwitch tests need it exclusive, run them under `flock %s` without -s", path, path)
	}
	if inheritedLock(path) {
		if !inherited {
			logf("%s is held by an ancestor (flock(1)): running under it", path)
		}
		inherited = true
		held++
		return nil
	}
	lf, err := lockFile(path, wait, logf)
	if err != nil {
		return err
	}
	f, held = lf, 1
	return nil
}

func release() {
	mu.Lock()
	defer mu.Unlock()
	if held--; held == 0 && f != nil {
		f.Close() // the only descriptor of its open file: the lock goes
		f = nil
	}
}

// lockFile opens path (close-on-exec: no Open vSwitch or forwarder child
// inherits the lock) and locks it, waiting at most wait.
func lockFile(path string, wait time.Duration, logf func(string, ...any)) (*os.File, error) {
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("real-OVS test lock: %w", err)
	}
	err = unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return lf, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		lf.Close()
		return nil, fmt.Errorf("real-OVS test lock %s: %w", path, err)
	}
	logf("waiting for %s: another run's real Open vSwitch test holds it", path)
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(lf.Fd()), unix.LOCK_EX) }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			lf.Close()
			return nil, fmt.Errorf("real-OVS test lock %s: %w", path, err)
		}
		return lf, nil
	case <-timer.C:
		// the lock taken after all is let go at once
		go func() { <-done; lf.Close() }()
		return nil, fmt.Errorf("real-OVS test lock %s not taken within %v: another run's real tests hold it", path, wait.Round(time.Second))
	}
}

// startFDs are the descriptors the process had when it started (before
// this package opened any): the only ones an ancestor can have passed down.
var startFDs = openFDs()

// At the package's initialisation, every descriptor of the lock file the
// process inherited is made close-on-exec, locked or not, so nothing the
// test binary starts, before its first Hold or in a binary whose tests
// never call Hold, keeps an ancestor's (flock(1)'s) lock after the run
// (revC L2: it was done at the first Hold only).
func init() {
	for _, fd := range startFDsOf(Path) {
		unix.CloseOnExec(fd)
	}
}

func openFDs() map[int]bool {
	out := map[int]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			out[fd] = true
		}
	}
	return out
}

// inheritedLock reports whether this process has a descriptor of path that
// it had at its start and that holds the lock exclusively (flock(1) → go →
// the test binary passes its descriptor down). It only looks (the lock
// shows as a "lock: … FLOCK ADVISORY WRITE" line of the descriptor's
// /proc/self/fdinfo): a flock(2) on a descriptor that holds no lock would
// take it, for an ancestor that never lets it go (revO M3). The inherited
// descriptor is made close-on-exec: an Open vSwitch daemon or a forwarder
// the test starts does not hold the lock after the run.
func inheritedLock(path string) bool {
	for _, fd := range startFDsOf(path) {
		if holdsFlock(fd, "WRITE") {
			unix.CloseOnExec(fd)
			return true
		}
	}
	return false
}

// inheritedShared reports whether a descriptor of path the process had at
// its start holds a shared lock (flock -s): waiting for the exclusive lock
// would wait for the process's own ancestor.
func inheritedShared(path string) bool {
	for _, fd := range startFDsOf(path) {
		if holdsFlock(fd, "READ") {
			return true
		}
	}
	return false
}

// startFDsOf returns the descriptors of startFDs that are path.
func startFDsOf(path string) []int {
	want, err := os.Stat(path)
	if err != nil {
		return nil
	}
	var out []int
	for fd := range startFDs {
		if fi, err := os.Stat(filepath.Join("/proc/self/fd", strconv.Itoa(fd))); err == nil && os.SameFile(fi, want) {
			out = append(out, fd)
		}
	}
	return out
}

// holdsFlock reports whether descriptor fd's open file holds a flock(2)
// lock of mode ("WRITE": exclusive, "READ": shared), as
// /proc/self/fdinfo/<fd> shows it.
func holdsFlock(fd int, mode string) bool {
	b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", strconv.Itoa(fd)))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[0] == "lock:" && f[2] == "FLOCK" && f[4] == mode {
			return true
		}
	}
	return false
}
