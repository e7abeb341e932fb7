package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sipLockPath is the lock every real-SIP run on the fixed loopback plan
// takes (scripts/ci-sip-chaos.sh: `flock /tmp/ims-orch-sip.lock go test`):
// the daemon's driver-local tests bring DC 0 up on 127.10.x.x and its DNS on
// 127.10.0.53:53, the addresses the SIP chaos serve test uses too.
const sipLockPath = "/tmp/ims-orch-sip.lock"

// sipLockWait bounds the wait for another real-SIP run (the SIP chaos
// script holds the lock ~2 min; the SIP end-to-end tests ~4 min), and
// sipLockReserve is what the test keeps of go test's -timeout for itself:
// a run that waited into the binary's timeout would panic without its
// cleanups and leave its Kamailio and Open vSwitch processes behind.
const (
	sipLockWait    = 8 * time.Minute
	sipLockReserve = 3 * time.Minute
)

// lockSIP takes the real-SIP lock for the rest of the test (released at
// cleanup, after every later cleanup has stopped the test's Kamailio
// processes): `make test` runs these tests without flock(1). The file is
// opened close-on-exec (os.OpenFile always is), so no Kamailio, SIPp or
// Open vSwitch child inherits the lock. A run already under `flock
// /tmp/ims-orch-sip.lock go test ...` holds the lock in an ancestor, which
// passes its descriptor down (flock(1) → go → the test binary): the test
// then runs under that lock instead of waiting for itself.
func lockSIP(t *testing.T) {
	t.Helper()
	if inheritedLock(t) {
		return
	}
	f, err := os.OpenFile(sipLockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("real-SIP lock: %v", err)
	}
	wait := sipLockWait
	if dl, ok := t.Deadline(); ok {
		wait = min(wait, time.Until(dl)-sipLockReserve)
	}
	for end := time.Now().Add(wait); ; {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(end) {
			f.Close()
			t.Fatalf("real-SIP lock %s not taken within %v: %v (another real-SIP run holds it)", sipLockPath, wait.Round(time.Second), err)
		}
		time.Sleep(200 * time.Millisecond) // another run holds the addresses: poll with a deadline
	}
	t.Cleanup(func() { f.Close() }) // closing the only descriptor releases the lock
}

// inheritedLock reports whether this process holds a descriptor of the
// real-SIP lock file that it did not open (inherited from flock(1)) and
// that holds the lock: flock(2) on the descriptor that holds a lock
// succeeds at once, on any other it would block.
func inheritedLock(t *testing.T) bool {
	t.Helper()
	want, err := os.Stat(sipLockPath)
	if err != nil {
		return false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false
	}
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !os.SameFile(fi, want) {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			t.Logf("real-SIP lock held by an ancestor (descriptor %d): running under it", fd)
			return true
		}
	}
	return false
}
