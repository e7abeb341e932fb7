// Package machinelocktest owns the machine locks of the real tests: the
// flock(2) files that every real test on this machine holds while it runs,
// so two runs (two `go test` of one `make test`, two engineers, CI) take
// turns test by test instead of loading the machine, or its fixed loopback
// addresses, together. OVS (/tmp/ims-orch-ovs.lock) serialises the real
// Open vSwitch and network-namespace tests, SIP (/tmp/ims-orch-sip.lock) the
// real Kamailio and SIPp tests on fixed loopback addresses, OpenStack
// (/tmp/ims-orch-openstack.lock) the tests against the one loopback
// OpenStack of deploy/openstack (its fixed ports, its project's servers,
// its fault proxies' rules); the docs' `flock PATH go test ...` takes the
// same files. The lock order is OpenStack, OVS, then SIP, in every process
// (the Nova tests run under `flock /tmp/ims-orch-openstack.lock`, and one
// of them takes the SIP lock inside it).
//
// Hold blocks in flock(2) until the lock is free (no polling) and keeps it
// until the test ends; the process takes each lock once for all its holders
// (a reference count per lock). A run under `flock PATH go test ...` holds
// the lock in an ancestor, whose descriptor the test binary inherits: Hold
// sees it in /proc/self/fdinfo and runs under it, and an ancestor's shared
// lock (`flock -s`) is refused with an error naming it (waiting would wait
// for the run's own ancestor). Every descriptor of a lock file the process
// inherited is made close-on-exec when the package is initialised, so no
// daemon a test starts keeps the lock after the run. Taking a lock while the
// process holds a lock that comes after it in the order (OVS while holding
// SIP, also an ancestor's SIP lock; OpenStack while holding either) fails
// naming both: two runs that take the locks in opposite orders wait for
// each other for ever.
//
// It imports nothing of this module: drivers/ovs's own tests use it, and so
// do the test helpers ovstest and sipptest.
package machinelocktest

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

// Lock is one machine lock: a file that the real tests of one kind flock(2)
// exclusively while they run.
type Lock struct {
	// Path is the lock file (never deleted: another run may hold it).
	Path string
	// What names the tests it serialises, for messages.
	What string
	// reserve is the time a test's deadline leaves after the wait for the
	// lock: the failure's report and the test's cleanups.
	reserve time.Duration
	// later are the locks a process takes after this one (the lock order).
	later []*Lock

	// guarded by mu: the process's holders of the lock, the descriptor
	// that holds it (nil while an ancestor does), and whether an ancestor
	// holds it (inherited: seen once, logged once).
	held      int
	f         *os.File
	inherited bool
}

// The machine locks, in the order a process takes them.
var (
	// OpenStack's tests clean their servers up after a failure (a sweep
	// of a few seconds): a 30 s reserve, as OVS.
	OpenStack = &Lock{Path: "/tmp/ims-orch-openstack.lock", What: "real OpenStack", reserve: 30 * time.Second}
	OVS       = &Lock{Path: "/tmp/ims-orch-ovs.lock", What: "real Open vSwitch", reserve: 30 * time.Second}
	// SIP's tests start Kamailio and SIPp processes whose cleanup a test
	// that runs into go test's -timeout skips (the binary panics): it
	// gives up waiting earlier.
	SIP = &Lock{Path: "/tmp/ims-orch-sip.lock", What: "real-SIP", reserve: 3 * time.Minute}
)

func init() {
	OpenStack.later = []*Lock{OVS, SIP}
	OVS.later = []*Lock{SIP}
	// every descriptor of a lock file the process inherited is made
	// close-on-exec, locked or not, before any Hold: nothing the test
	// binary starts, before its first Hold or in a binary whose tests never
	// call Hold, keeps an ancestor's (flock(1)'s) lock after the run
	for _, l := range []*Lock{OpenStack, OVS, SIP} {
		closeOnExec(l.Path)
	}
}

// closeOnExec makes every descriptor of path the process inherited
// close-on-exec (this process's only: an ancestor's stays as it is).
func closeOnExec(path string) {
	for _, fd := range startFDsOf(path) {
		unix.CloseOnExec(fd)
	}
}

// noDeadlineWait bounds the wait of a test without a deadline.
const noDeadlineWait = 30 * time.Minute

var (
	// mu guards every lock's held, f and inherited; it is never held
	// while waiting for a lock file.
	mu sync.Mutex
	// taking (a one-slot channel: full while taken) serialises the
	// process's slow paths (a lock not yet held): the order check and the
	// lock taken after it are one step, and a second holder waits for the
	// first one's lock instead of taking it a second time. It serialises
	// both locks' slow paths (a parallel test's SIP wait holds up another
	// one's first OVS take): one step for the order check of every lock.
	// A holder waits for it under its own give-up time, the one its
	// flock(2) wait then keeps.
	taking = make(chan struct{}, 1)
)

// giveUp is when a holder that starts waiting at now gives up: the test's
// deadline (if it has one) less the lock's reserve, at least a second from
// now; noDeadlineWait from now without a deadline.
func giveUp(now, deadline time.Time, hasDeadline bool, reserve time.Duration) time.Time {
	if !hasDeadline {
		return now.Add(noDeadlineWait)
	}
	if until := deadline.Add(-reserve); until.After(now.Add(time.Second)) {
		return until
	}
	return now.Add(time.Second)
}

// Hold takes l for t until t ends, waiting while another process holds it
// (t fails if t's deadline, less the lock's reserve, comes first: the
// whole of Hold, a wait behind another holder of the process included, ends
// by then). The lock is released when the process's last holder ends.
func (l *Lock) Hold(t testing.TB) {
	t.Helper()
	var dl time.Time
	ok := false
	if dt, has := t.(interface{ Deadline() (time.Time, bool) }); has {
		dl, ok = dt.Deadline()
	}
	if err := l.acquire(giveUp(time.Now(), dl, ok, l.reserve), t); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.release)
}

// logger is the part of testing.TB the lock logs to.
type logger interface {
	Helper()
	Logf(format string, args ...any)
}

// acquire takes l for one more holder of the process, giving up at until.
func (l *Lock) acquire(until time.Time, log logger) error {
	log.Helper()
	mu.Lock()
	if l.held > 0 {
		l.held++
		mu.Unlock()
		return nil
	}
	mu.Unlock()
	start := time.Now()
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	select {
	case taking <- struct{}{}:
	case <-timer.C:
		return l.notTaken(start, "another holder of this process is taking it")
	}
	defer func() { <-taking }()
	mu.Lock()
	if l.held > 0 { // taken by another holder while this one waited for taking
		l.held++
		mu.Unlock()
		return nil
	}
	mu.Unlock()
	closeOnExec(l.Path) // done at init for the machine locks
	switch inheritedMode(l.Path) {
	case "READ":
		return fmt.Errorf("%s is held shared by an ancestor (flock -s): the %s tests need it exclusive, run them under `flock %s` without -s", l.Path, l.What, l.Path)
	case "WRITE":
		mu.Lock()
		defer mu.Unlock()
		if !l.inherited {
			log.Logf("%s is held by an ancestor (flock(1)): running under it", l.Path)
		}
		l.inherited, l.held = true, 1
		return nil
	}
	if err := l.orderErr(); err != nil {
		return err
	}
	f, err := l.lockFile(start, timer.C, log)
	if err != nil {
		return err
	}
	mu.Lock()
	l.f, l.held = f, 1
	mu.Unlock()
	return nil
}

// notTaken is the error of a holder that gave up waiting since start.
func (l *Lock) notTaken(start time.Time, why string) error {
	return fmt.Errorf("%s test lock %s not taken within %v: %s%s", l.What, l.Path,
		time.Since(start).Round(time.Millisecond), why, blindNote())
}

// blindNote says, when the process cannot list its inherited descriptors,
// what that means for a run under flock(1).
func blindNote() string {
	if startErr == nil {
		return ""
	}
	return fmt.Sprintf(" (cannot see inherited locks: %v; under `flock PATH go test ...` of this lock's file the test waits for its own ancestor)", startErr)
}

// orderErr names a lock that comes after l in the lock order and that the
// process holds, itself or through an ancestor: waiting for l then could
// wait for ever for a run that holds l and waits for that one.
func (l *Lock) orderErr() error {
	for _, o := range l.later {
		mu.Lock()
		own := o.held > 0 && o.f != nil
		mu.Unlock()
		how := ""
		switch {
		case own:
			how = "this test process holds"
		case inheritedMode(o.Path) != "":
			how = "an ancestor (flock(1)) holds"
		default:
			continue
		}
		return fmt.Errorf("lock order: taking %s (the %s tests' lock) while %s %s (the %s tests'): take %s first, e.g. `flock %s flock %s go test ...`",
			l.Path, l.What, how, o.Path, o.What, l.Path, l.Path, o.Path)
	}
	return nil
}

func (l *Lock) release() {
	mu.Lock()
	defer mu.Unlock()
	if l.held--; l.held == 0 && l.f != nil {
		l.f.Close() // the only descriptor of its open file: the lock goes
		l.f = nil
	}
}

// lockFile opens l's file (close-on-exec: no daemon the test starts
// inherits the lock) and locks it, blocking in flock(2) until giveUp fires
// (the holder's wait began at start).
func (l *Lock) lockFile(start time.Time, giveUp <-chan time.Time, log logger) (*os.File, error) {
	log.Helper()
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE, 0o666)
	if errors.Is(err, os.ErrPermission) { // another user's lock file: flock(2) needs no write access
		f, err = os.Open(l.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s test lock: %w", l.What, err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("%s test lock %s: %w", l.What, l.Path, err)
	}
	log.Logf("waiting for %s: another run's %s test holds it%s", l.Path, l.What, blindNote())
	done := make(chan error, 1)
	go func() { done <- flockEINTR(int(f.Fd())) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s test lock %s: %w", l.What, l.Path, err)
		}
		log.Logf("took %s after waiting %v", l.Path, time.Since(start).Round(time.Millisecond))
		return f, nil
	case <-giveUp:
		// the lock taken after all is let go at once
		go func() { <-done; f.Close() }()
		return nil, l.notTaken(start, "another run's real tests hold it")
	}
}

// flockEINTR blocks in flock(2) until fd's open file holds the exclusive
// lock, again after a signal interrupts the call.
func flockEINTR(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// startFDs are the descriptors the process had when it started (before
// this package opened any): the only ones an ancestor can have passed down.
// startErr is why they could not be listed (no /proc): then no inherited
// lock is seen, and the messages say so.
var startFDs, startErr = openFDs("/proc/self/fd")

// openFDs lists the process's descriptors from dir (/proc/self/fd), less
// the one that reads dir: it is closed on return, and its number goes to
// the next file the process opens (the process's own lock file, which
// would then look inherited).
func openFDs(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	own := int(d.Fd())
	var out []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != own {
			out = append(out, fd)
		}
	}
	return out, nil
}

// inheritedMode returns the flock mode ("WRITE": exclusive, "READ":
// shared) in which a descriptor of path that the process had at its start
// holds the lock, or "" when none does (flock(1) → go → the test binary
// passes its descriptor down). It only looks (the lock shows as a "lock: …
// FLOCK ADVISORY WRITE" line of the descriptor's /proc/self/fdinfo): a
// flock(2) on a descriptor that holds no lock (a shell's `exec 9<>PATH`)
// would take the lock, for an ancestor that never lets it go.
func inheritedMode(path string) string {
	for _, fd := range startFDsOf(path) {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", strconv.Itoa(fd)))
		if err != nil {
			continue
		}
		if m := flockMode(string(b)); m != "" {
			return m
		}
	}
	return ""
}

// flockMode returns the mode of the flock(2) lock a /proc/<pid>/fdinfo/<fd>
// text lists ("WRITE" or "READ"), or "" (no lock, a POSIX lock).
func flockMode(fdinfo string) string {
	for _, l := range strings.Split(fdinfo, "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[0] == "lock:" && f[2] == "FLOCK" && (f[4] == "WRITE" || f[4] == "READ") {
			return f[4]
		}
	}
	return ""
}

// startFDsOf returns the descriptors of startFDs that are path.
func startFDsOf(path string) []int {
	want, err := os.Stat(path)
	if err != nil {
		return nil
	}
	var out []int
	for _, fd := range startFDs {
		if fi, err := os.Stat(filepath.Join("/proc/self/fd", strconv.Itoa(fd))); err == nil && os.SameFile(fi, want) {
			out = append(out, fd)
		}
	}
	return out
}
