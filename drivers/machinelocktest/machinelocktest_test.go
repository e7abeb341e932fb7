package machinelocktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns an OVS-like and a SIP-like lock on files of t's temp dir, in
// the machine's order (the first before the second).
func pair(t *testing.T) (first, second *Lock) {
	t.Helper()
	dir := t.TempDir()
	second = &Lock{Path: filepath.Join(dir, "sip.lock"), What: "second", reserve: time.Second}
	first = &Lock{Path: filepath.Join(dir, "ovs.lock"), What: "first", reserve: time.Second, later: []*Lock{second}}
	return first, second
}

// pairFromEnv is pair's locks in a child (the files its parent made).
func pairFromEnv() (first, second *Lock) {
	second = &Lock{Path: os.Getenv("MACHINELOCK_SECOND"), What: "second", reserve: time.Second}
	first = &Lock{Path: os.Getenv("MACHINELOCK_FIRST"), What: "first", reserve: time.Second, later: []*Lock{second}}
	return first, second
}

// child runs this test binary's test name as a child: the command is
// prefix, then the binary, under env (the child's half of the test runs
// when MACHINELOCK_CHILD is set). With sh in prefix, the binary and its
// flags are "$@".
func child(t *testing.T, name string, prefix []string, env ...string) {
	t.Helper()
	runChild(t, name, prefix, nil, env...)
}

// runChild is child with the binary's further flags; prefix may be empty.
func runChild(t *testing.T, name string, prefix, flags []string, env ...string) {
	t.Helper()
	for _, tool := range append(append([]string{}, prefix[:min(len(prefix), 1)]...), "flock") {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	args := append(append(append([]string{}, prefix...), os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1"), flags...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), "MACHINELOCK_CHILD=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("the child %v %v: %v\n%s", prefix, flags, err, out)
	}
}

// in is the give-up time d from now.
func in(d time.Duration) time.Time { return time.Now().Add(d) }

func inChild() bool { return os.Getenv("MACHINELOCK_CHILD") != "" }

// tryLock reports whether another open file of path gets the lock now (and
// lets it go again).
func tryLock(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666) // flock(2) needs no write access
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err != nil && !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return err == nil
}

// mustBeHeld fails t with msg unless path's lock is held (by an open file
// other than a new one of its own) as want says.
func mustBeHeld(t *testing.T, path string, want bool, msg string) {
	t.Helper()
	if tryLock(t, path) == want {
		t.Fatal(msg)
	}
}

// fdinfo's lock line: the mode of a flock held through the descriptor
// (a POSIX lock or no lock is none).
func TestFlockMode(t *testing.T) {
	for _, c := range []struct{ info, want string }{
		{"pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t9977978\nlock:\t1: FLOCK  ADVISORY  WRITE 17779 fe:00:9977978 0 EOF\n", "WRITE"},
		{"pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t9977978\n", ""},
		{"lock:\t1: FLOCK  ADVISORY  READ 17779 fe:00:9977978 0 EOF\n", "READ"},
		{"lock:\t1: POSIX  ADVISORY  WRITE 17779 fe:00:9977978 0 EOF\n", ""},
	} {
		if got := flockMode(c.info); got != c.want {
			t.Errorf("flockMode(%q) = %q, want %q", c.info, got, c.want)
		}
	}
}

// holdElsewhere locks path through an open file of its own (another
// process's, as far as the lock goes) until t ends or the file is unlocked.
func holdElsewhere(t *testing.T, path string) *os.File {
	t.Helper()
	other, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return other
}

// waitBlocked returns once /proc/locks lists a blocked flock(2) request
// ("->") on path's inode, failing t if done (the waiter's result) comes
// first: the condition, not a time, ends the wait; the bound only fails a
// waiter that never blocks.
func waitBlocked(t *testing.T, path string, done <-chan error) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range strings.Split(string(b), "\n") {
			f := strings.Fields(ln)
			if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && strings.HasSuffix(f[6], fmt.Sprintf(":%d", st.Ino)) {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Hold returned while another open file holds the lock: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("no blocked flock(2) request on the lock file in /proc/locks within 20 s: the wait does not block in flock(2)")
}

// A lock another open file holds is waited for blocked in flock(2): the
// kernel lists the wait as a blocked request ("->") on the file in
// /proc/locks, which a loop of non-blocking tries never shows; when the
// other open file lets go, Hold has the lock.
func TestWaitsBlockedInFlock(t *testing.T) {
	l, _ := pair(t)
	letGo, done := blockedHolder(t, l)
	letGo()
	takenAndReleased(t, l, done)
}

// blockedHolder has another open file hold l and a holder of the process
// wait for l blocked in flock(2) (giving up in a minute); letGo unlocks the
// other file, done is the holder's result.
func blockedHolder(t *testing.T, l *Lock) (letGo func(), done <-chan error) {
	t.Helper()
	other := holdElsewhere(t, l.Path)
	res := make(chan error, 1)
	go func() { res <- l.acquire(in(time.Minute), t) }()
	waitBlocked(t, l.Path, res)
	return func() {
		if err := unix.Flock(int(other.Fd()), unix.LOCK_UN); err != nil {
			t.Fatal(err)
		}
	}, res
}

// takenAndReleased checks that the blocked holder got l, and that l goes
// with its release (no other holder is left counted).
func takenAndReleased(t *testing.T, l *Lock, done <-chan error) {
	t.Helper()
	if err := <-done; err != nil {
		t.Fatalf("after the other open file let go: %v", err)
	}
	mustBeHeld(t, l.Path, true, "Hold returned without the lock")
	l.release()
	mustBeHeld(t, l.Path, false, "the lock stays after the last holder")
}

// The same run as a child without go test's -timeout (-test.timeout=0, as
// `go test -timeout 0` or the test binary run by hand): no runtime timer
// takes the number of the descriptor that listed /proc/self/fd before the
// test opens its lock file, which then gets it and must not count as an
// ancestor's.
func TestWaitsBlockedInFlockWithoutATimeout(t *testing.T) {
	if inChild() {
		t.Skip("the child runs TestWaitsBlockedInFlock")
	}
	runChild(t, "TestWaitsBlockedInFlock", nil, []string{"-test.timeout=0"})
}

// The descriptors listed at the start are open ones: the one that read
// /proc/self/fd, closed by then, is not among them; without /proc the
// reason is kept.
func TestOpenFDsLeavesOutItsOwnDescriptor(t *testing.T) {
	fds, err := openFDs("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Errorf("descriptor %d listed as open: %v", fd, err)
		}
	}
	if _, err := openFDs(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing descriptor directory gives no error")
	}
}

// A second holder of the process that finds the first one waiting for the
// lock gives up at its own give-up time, not after the first one's wait: the
// whole of Hold is bounded (a wait past go test's -timeout panics, with no
// cleanups).
func TestASecondHolderGivesUpAtItsOwnTime(t *testing.T) {
	l, _ := pair(t)
	letGo, done := blockedHolder(t, l)
	err := l.acquire(time.Now(), t) // its time is up: it must not wait for the first
	if err == nil || !strings.Contains(err.Error(), "not taken within") || !strings.Contains(err.Error(), "another holder of this process") {
		t.Fatalf("a second holder past its give-up time: %v, want not taken, behind this process's other holder", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the second holder returned only after the first gave up (%v)", err)
	default:
	}
	letGo()
	takenAndReleased(t, l, done)
}

// When a holder gives up: the test's deadline less the lock's reserve, at
// least a second from now; 30 minutes from now without a deadline.
func TestGiveUp(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		deadline time.Time
		has      bool
		reserve  time.Duration
		want     time.Time
	}{
		{"deadline less the reserve", now.Add(10 * time.Minute), true, 30 * time.Second, now.Add(9*time.Minute + 30*time.Second)},
		{"no deadline", now.Add(10 * time.Minute), false, 30 * time.Second, now.Add(noDeadlineWait)},
		{"deadline within the reserve", now.Add(20 * time.Second), true, 30 * time.Second, now.Add(time.Second)},
		{"deadline past", now.Add(-time.Minute), true, 3 * time.Minute, now.Add(time.Second)},
		{"exactly a second left", now.Add(31 * time.Second), true, 30 * time.Second, now.Add(time.Second)},
	} {
		if got := giveUp(now, c.deadline, c.has, c.reserve); !got.Equal(c.want) {
			t.Errorf("%s: giveUp = %v, want %v", c.name, got.Sub(now), c.want.Sub(now))
		}
	}
}

// deadlineT is a test with a given deadline whose Fatal ends only its
// goroutine and keeps the error.
type deadlineT struct {
	*testing.T
	dl    time.Time
	fatal []any
}

func (d *deadlineT) Deadline() (time.Time, bool) { return d.dl, true }
func (d *deadlineT) Fatal(args ...any)           { d.fatal = args; runtime.Goexit() }

// Hold gives up by its test's deadline less the lock's reserve (here at
// once: a deadline within the reserve leaves the 1 s minimum), failing the
// test; the bound below only fails a Hold that ignores the deadline (30 min
// without one).
func TestHoldGivesUpByTheTestsDeadline(t *testing.T) {
	l, _ := pair(t)
	holdElsewhere(t, l.Path)
	dt := &deadlineT{T: t, dl: time.Now()}
	ended := make(chan struct{})
	go func() { defer close(ended); l.Hold(dt) }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("Hold still waits 20 s after its test's deadline")
	}
	if len(dt.fatal) != 1 || !strings.Contains(fmt.Sprint(dt.fatal...), "not taken within") {
		t.Fatalf("Hold past its test's deadline failed the test with %v, want not taken", dt.fatal)
	}
}

// A lock file this user may not write (the CI scripts' root made it) is
// locked read-only: flock(2) needs no write access. Root writes any file:
// only a non-root run shows it.
func TestALockFileOfAnotherUserIsTaken(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write any file")
	}
	l, _ := pair(t)
	if err := os.WriteFile(l.Path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire(in(time.Second), t); err != nil {
		t.Fatalf("a read-only lock file: %v", err)
	}
	mustBeHeld(t, l.Path, true, "no lock taken")
	l.release()
}

// Without /proc the process cannot see an ancestor's lock: a wait says so
// (under flock(1) of the file it waits for its own ancestor).
func TestNotTakenSaysWhenInheritedLocksAreUnseen(t *testing.T) {
	l, _ := pair(t)
	holdElsewhere(t, l.Path)
	defer func(err error) { startErr = err }(startErr)
	startErr = errors.New("open /proc/self/fd: no such file or directory")
	err := l.acquire(time.Now(), t)
	if err == nil || !strings.Contains(err.Error(), "cannot see inherited locks: open /proc/self/fd") || !strings.Contains(err.Error(), "its own ancestor") {
		t.Fatalf("not taken without /proc: %v, want the reason named", err)
	}
}

// The lock is the process's once for all its holders: a second holder does
// not wait for the first (Require then Start in one test), and the lock
// goes with the last holder; while the process holds it, another open file
// of it (another process) does not get it.
func TestHeldOnceForAllHoldersOfTheProcess(t *testing.T) {
	l, _ := pair(t)
	if err := l.acquire(in(time.Second), t); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire(in(time.Second), t); err != nil {
		t.Fatalf("a second holder of the process: %v", err)
	}
	mustBeHeld(t, l.Path, true, "another open file gets the lock while the process holds it")
	l.release()
	mustBeHeld(t, l.Path, true, "the lock went with the first of two holders")
	l.release()
	mustBeHeld(t, l.Path, false, "the lock stays after the last holder")
}

// Taking the first lock while the process holds the second fails naming
// both (two runs taking them in opposite orders would wait for each other
// for ever); in order, and a second holder of the first lock while the
// second is held, are fine.
func TestTheFirstLockWhileHoldingTheSecondIsAnError(t *testing.T) {
	first, second := pair(t)
	if err := second.acquire(in(time.Second), t); err != nil {
		t.Fatal(err)
	}
	err := first.acquire(in(time.Second), t)
	if err == nil || !strings.Contains(err.Error(), "lock order") ||
		!strings.Contains(err.Error(), first.Path) || !strings.Contains(err.Error(), second.Path) {
		t.Fatalf("the first lock while holding the second: %v, want a lock-order error naming both", err)
	}
	mustBeHeld(t, first.Path, false, "the refused lock was taken")
	second.release()
	for _, l := range []*Lock{first, second, first} {
		if err := l.acquire(in(time.Second), t); err != nil {
			t.Fatalf("in order: %s: %v", l.What, err)
		}
	}
	first.release()
	first.release()
	second.release()
}

// The same with the second lock held by an ancestor (`flock SIP go test`
// of a test that takes OVS): the child below is this binary under
// flock(1) of the second lock.
func TestTheFirstLockUnderAnAncestorsSecondIsAnError(t *testing.T) {
	if inChild() {
		first, second := pairFromEnv()
		err := first.acquire(in(time.Second), t)
		if err == nil || !strings.Contains(err.Error(), "lock order") || !strings.Contains(err.Error(), "an ancestor") ||
			!strings.Contains(err.Error(), first.Path) || !strings.Contains(err.Error(), second.Path) {
			t.Fatalf("the first lock under an ancestor's second: %v, want a lock-order error naming both", err)
		}
		return
	}
	first, second := pair(t)
	child(t, t.Name(), []string{"flock", second.Path}, "MACHINELOCK_FIRST="+first.Path, "MACHINELOCK_SECOND="+second.Path)
}

// A run under `flock PATH go test ...` holds the lock in an ancestor, whose
// descriptor the test binary inherits: Hold runs under it instead of
// waiting for itself, and the descriptor is close-on-exec (a daemon the
// test starts does not keep the lock after the run). The child below is
// this binary under flock(1).
func TestRunsUnderAnAncestorsLock(t *testing.T) {
	if inChild() {
		l, _ := pairFromEnv()
		if err := l.acquire(in(time.Second), t); err != nil {
			t.Fatalf("under flock(1): %v", err)
		}
		l.release()
		fds := startFDsOf(l.Path)
		if len(fds) == 0 {
			t.Fatal("flock(1)'s descriptor of the lock file is not among the inherited ones")
		}
		for _, fd := range fds {
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
				t.Fatalf("the inherited descriptor %d is not close-on-exec (flags %#x, %v)", fd, fl, err)
			}
		}
		return
	}
	first, second := pair(t)
	if inheritedMode(first.Path) != "" {
		t.Fatal("no file: nothing inherited")
	}
	child(t, t.Name(), []string{"flock", first.Path}, "MACHINELOCK_FIRST="+first.Path, "MACHINELOCK_SECOND="+second.Path)
}

// A descriptor of the lock file that an ancestor opened but does not lock
// (a shell's `exec 9<>PATH`) is not an inherited lock: Hold neither runs
// under it nor takes the lock through it, and after the run the lock is
// free (a flock(2) probe on that descriptor would take the lock on the
// shell's open file and keep it after the run).
func TestAnUnlockedInheritedDescriptorIsNoLock(t *testing.T) {
	if inChild() {
		l, _ := pairFromEnv()
		if m := inheritedMode(l.Path); m != "" {
			t.Fatalf("an unlocked descriptor of the lock file is taken for an inherited %s lock", m)
		}
		if err := l.acquire(in(time.Second), t); err != nil {
			t.Fatal(err)
		}
		l.release()
		return
	}
	first, second := pair(t)
	// the shell keeps its descriptor 9 while the test binary runs as its
	// child (no exec: the descriptor outlives the binary)
	child(t, t.Name(), []string{"sh", "-c", `exec 9<>"$P"; "$@" || exit 1; flock -n "$P" true || { echo "lock still held after the run"; exit 3; }`, "sh"},
		"P="+first.Path, "MACHINELOCK_FIRST="+first.Path, "MACHINELOCK_SECOND="+second.Path)
}

// Every descriptor of a machine lock file the test binary inherited is
// close-on-exec from the package's initialisation, before any Hold (a
// binary whose tests start a daemon before their first Hold, or never call
// Hold, passes no lock on): the child below is this binary with each real
// lock file that exists on the machine (OpenStack, OVS, SIP as descriptors
// 7, 8, 9) open read-only (opened, not locked: the test takes no lock;
// read-only, as flock(2) needs, since the CI scripts' root owns the files).
// The test creates no machine lock file: it checks the ones a real run
// made (a fresh CI machine's `make test` makes OVS's and SIP's, the
// OpenStack one only a real-Nova run makes) and skips only when none
// exists.
func TestTheLockFilesAreCloseOnExecFromTheStart(t *testing.T) {
	fds := map[int]*Lock{7: OpenStack, 8: OVS, 9: SIP}
	if inChild() {
		checked := 0
		for _, f := range strings.Fields(os.Getenv("MACHINELOCK_FDS")) {
			var fd int
			if _, err := fmt.Sscan(f, &fd); err != nil || fds[fd] == nil {
				t.Fatalf("MACHINELOCK_FDS %q: %q is not one of the descriptors 7, 8, 9", os.Getenv("MACHINELOCK_FDS"), f)
			}
			l := fds[fd]
			want, err := os.Stat(l.Path)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(fmt.Sprintf("/proc/self/fd/%d", fd))
			if err != nil || !os.SameFile(fi, want) {
				t.Fatalf("descriptor %d is not %s: %v", fd, l.Path, err)
			}
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
				t.Fatalf("the inherited descriptor %d of %s is not close-on-exec at the start (flags %#x, %v)", fd, l.Path, fl, err)
			}
			checked++
		}
		if checked == 0 {
			t.Fatal("no descriptor to check (MACHINELOCK_FDS is empty)")
		}
		return
	}
	var redirs, list, env []string
	for _, fd := range []int{7, 8, 9} {
		l := fds[fd]
		if _, err := os.Stat(l.Path); errors.Is(err, os.ErrNotExist) {
			t.Logf("no %s on this machine (no real run made it): descriptor %d not checked", l.Path, fd)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		redirs = append(redirs, fmt.Sprintf(`%d<"$LOCK%d"`, fd, fd))
		list = append(list, fmt.Sprint(fd))
		env = append(env, fmt.Sprintf("LOCK%d=%s", fd, l.Path))
	}
	if len(list) == 0 {
		t.Skip("none of the machine lock files exists here (no real run made one)")
	}
	t.Logf("checking descriptors %v", list)
	child(t, t.Name(), []string{"sh", "-c", "exec " + strings.Join(redirs, " ") + `; exec "$@"`, "sh"}, append(env, "MACHINELOCK_FDS="+strings.Join(list, " "))...)
}

// A run under `flock -s PATH` (a shared lock of an ancestor) fails at once
// naming it, instead of waiting for its own ancestor to let the lock go
// until the test's deadline.
func TestAnAncestorsSharedLockIsNamed(t *testing.T) {
	if inChild() {
		l, _ := pairFromEnv()
		err := l.acquire(in(time.Minute), t)
		if err == nil || !strings.Contains(err.Error(), "flock -s") || !strings.Contains(err.Error(), l.Path) {
			t.Fatalf("under flock -s: %v, want an error naming the shared lock", err)
		}
		return
	}
	first, second := pair(t)
	child(t, t.Name(), []string{"flock", "-s", first.Path}, "MACHINELOCK_FIRST="+first.Path, "MACHINELOCK_SECOND="+second.Path)
}

// The machine locks' order is OpenStack, OVS, SIP (the Nova tests run
// under `flock /tmp/ims-orch-openstack.lock` and one takes SIP inside):
// with the machine's lock graph on files of the test's temp dir, a lock
// taken while a later one is held fails naming both (OVS while SIP is
// held, as before; OpenStack while OVS or SIP is held), and the three in
// order are taken.
func TestTheMachineLockOrder(t *testing.T) {
	dir := t.TempDir()
	real := []*Lock{OpenStack, OVS, SIP}
	copies := map[*Lock]*Lock{}
	for _, l := range real {
		copies[l] = &Lock{Path: filepath.Join(dir, filepath.Base(l.Path)), What: l.What, reserve: time.Second}
	}
	for _, l := range real {
		for _, o := range l.later {
			copies[l].later = append(copies[l].later, copies[o])
		}
	}
	stack, ovs, sip := copies[OpenStack], copies[OVS], copies[SIP]
	for _, c := range []struct{ held, take *Lock }{{sip, ovs}, {sip, stack}, {ovs, stack}} {
		if err := c.held.acquire(in(time.Second), t); err != nil {
			t.Fatal(err)
		}
		err := c.take.acquire(in(time.Second), t)
		if err == nil || !strings.Contains(err.Error(), "lock order") || !strings.Contains(err.Error(), c.take.Path) || !strings.Contains(err.Error(), c.held.Path) {
			t.Errorf("%s while holding %s: %v, want a lock-order error naming both", c.take.What, c.held.What, err)
		}
		if err == nil {
			c.take.release()
		}
		c.held.release()
	}
	for _, l := range []*Lock{stack, ovs, sip} {
		if err := l.acquire(in(time.Second), t); err != nil {
			t.Fatalf("in order: %s: %v", l.What, err)
		}
	}
	for _, l := range []*Lock{sip, ovs, stack} {
		l.release()
	}
	for _, l := range []*Lock{stack, ovs, sip} {
		mustBeHeld(t, l.Path, false, "a lock stays after its last holder")
	}
}
