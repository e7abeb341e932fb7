package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	ctllocal "github.com/ims-orch/ims-orch/controller/local"
	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// launchLog is the real side of a crash loop: a local.Starter that starts
// the real processes (local.ExecStarter) and records each one's pid, its
// listen address and how and when it exited, as the operating system
// reports it (Wait), not as the driver or the controller book it.
type launchLog struct {
	mu    sync.Mutex
	procs []*realProc
	ch    chan struct{}
}

type realProc struct {
	id      string     // instance ID (its run dir's name)
	pid     int        // the process's pid (a group leader)
	addr    netip.Addr // the address it was told to listen on (-l udp:ADDR:5060)
	dir     string
	started time.Time
	exited  chan struct{}
	exitAt  time.Time // after exited
	exitErr error     // after exited
}

func newLaunchLog() *launchLog { return &launchLog{ch: make(chan struct{}, 1)} }

func (l *launchLog) notify() {
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// Start implements local.Starter.
func (l *launchLog) Start(c local.Command) (local.Process, error) {
	p, err := local.ExecStarter{}.Start(c)
	if err != nil {
		return nil, err
	}
	r := &realProc{id: filepath.Base(c.Dir), pid: p.Pid(), dir: c.Dir, started: time.Now(), exited: make(chan struct{})}
	for i, a := range c.Args {
		if a == "-l" && i+1 < len(c.Args) && strings.HasPrefix(c.Args[i+1], "udp:") {
			if ap, err := netip.ParseAddrPort(strings.TrimPrefix(c.Args[i+1], "udp:")); err == nil {
				r.addr = ap.Addr()
			}
		}
	}
	l.mu.Lock()
	l.procs = append(l.procs, r)
	l.mu.Unlock()
	l.notify()
	return &loggedProc{Process: p, r: r, l: l}, nil
}

// all returns the processes started so far, in start order.
func (l *launchLog) all() []*realProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.procs)
}

type loggedProc struct {
	local.Process
	r *realProc
	l *launchLog
}

func (p *loggedProc) Wait() error {
	err := p.Process.Wait()
	p.l.mu.Lock()
	p.r.exitAt, p.r.exitErr = time.Now(), err
	p.l.mu.Unlock()
	close(p.r.exited)
	p.l.notify()
	return err
}

// GroupGone forwards the real process's check: the driver hands an address
// out again only once the whole group is gone.
func (p *loggedProc) GroupGone() bool {
	g, ok := p.Process.(interface{ GroupGone() bool })
	return !ok || g.GroupGone()
}

func (r *realProc) done() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// badRelease is a fault in the Kamailio config template: what it adds
// after an anchor line, and what the log of a Kamailio started from it
// says when it dies of it.
type badRelease struct {
	name           string
	anchor, insert string
	logSays        string
	// cameUp: its instances come up (the driver reports them active)
	// before they die (at least one of them on a loaded host); else none
	// does
	cameUp bool
	// readyTimeout, when set, is the driver's ReadyTimeout; errorSays, when
	// set, is the reason of the driver's error event for each instance
	// (one that never answers: the controller kills it)
	readyTimeout time.Duration
	errorSays    string
}

// The bad releases: one exits at start, one crashes after it came up.
var badReleases = []badRelease{
	{name: "exits at start", anchor: "loadmodule \"path.so\"\n",
		// a module this host does not have: Kamailio exits while parsing
		insert:  "loadmodule \"ims_orch_crashloop_missing.so\"\n",
		logSays: "ims_orch_crashloop_missing"},
	{name: "crashes after it came up", cameUp: true, anchor: "loadmodule \"path.so\"\n",
		// a timer process aborts 3 s after the start (SIGABRT, as a
		// crashing module would; no core file) and the main process stops
		insert: "disable_core_dump=yes\nloadmodule \"rtimer.so\"\n" +
			"modparam(\"rtimer\", \"timer\", \"name=crashloop;interval=3;mode=1;\")\n" +
			"modparam(\"rtimer\", \"exec\", \"timer=crashloop;route=CRASHLOOP\")\n" +
			"route[CRASHLOOP] {\n\tabort();\n}\n",
		logSays: "signal 6"},
	{name: "hangs at start", anchor: "loadmodule \"path.so\"\n",
		// it waits at initialisation (on a dependency, say) and never
		// answers: failed at the ready timeout, killed by the controller
		insert:       "event_route[htable:mod-init] {\n\tsleep(\"300\");\n}\n",
		readyTimeout: 4 * time.Second, errorSays: "not ready after 4s"},
}

// releaseFS serves deploy/kamailio's files; while broken is set, the
// template is that bad release.
type releaseFS struct {
	fault  badRelease
	broken atomic.Bool
}

func (r *releaseFS) Open(name string) (fs.File, error) {
	if name != kamfiles.Template || !r.broken.Load() {
		return kamfiles.Files.Open(name)
	}
	b, err := fs.ReadFile(kamfiles.Files, name)
	if err != nil {
		return nil, err
	}
	anchor := []byte(r.fault.anchor)
	if !bytes.Contains(b, anchor) {
		return nil, fmt.Errorf("releaseFS: %s has no %q to put the fault after", name, anchor)
	}
	b = bytes.Replace(b, anchor, append(anchor, r.fault.insert...), 1)
	return fstest.MapFS{name: {Data: b, Mode: 0o644}}.Open(name)
}

// TestCrashLoopBackoffRealKamailio runs real crash loops: the local
// controller (virtual clock) keeps two S-CSCFs of drivers/local (real
// Kamailio 5.6 processes) up; after a bad release one of them dies, and
// every replacement Kamailio started from the release dies soon after its
// start: of a module the host lacks, at once; of a crash 3 s after it came
// up; or it hangs at start and is killed at the ready timeout. Counted on
// the real processes: the 1st replacement starts at once, the 2nd exactly
// Initial after the failure it replaces, then 2·Initial, then Max, Max
// (none a nanosecond earlier), every one on its slot's address; the
// controller's state shows the loop while it holds; the other S-CSCF keeps
// its process all along and, killed while the loop's slot is held back, is
// replaced at once on its own address; once the release is mended the
// held-back replacement stays up, the loop is over Reset after it became
// active, and its next failure is replaced at once again. Every process is
// checked gone by pid at the end.
func TestCrashLoopBackoffRealKamailio(t *testing.T) {
	if err := local.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t) // real Kamailio processes on loopback
	for i, fault := range badReleases {
		// address blocks of their own: 127.59.x.x, 127.61.x.x, 127.63.x.x
		t.Run(fault.name, func(t *testing.T) { crashLoop(t, fmt.Sprintf("dc%d", 49+2*i), fault) })
	}
}

func crashLoop(t *testing.T, dc string, fault badRelease) {
	const (
		vnf     = "S-CSCF"
		initial = 2 * time.Second
		maxWait = 8 * time.Second
		reset   = 3 * time.Second
		// bounds on real events (a process starting, dying, answering)
		realLimit = 20 * time.Second
	)
	began := time.Now()
	launches := newLaunchLog()
	var upThenDied atomic.Int32 // bad-release instances active before they died
	release := &releaseFS{fault: fault}
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 1, ShmMB: 64, Grace: 2 * time.Second,
		Starter: launches, Files: release, ReadyTimeout: fault.readyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkAllGone(t, d, launches) })
	evs := newEventLog(d)

	vclk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctl, err := ctllocal.New(ctllocal.Config{DC: dc, VNFs: []ctllocal.VNFConfig{{Name: vnf, Min: 2}},
		StatsTimeout: -1, // no statistics agents here: failures are the real exits
		CrashBackoff: ctllocal.CrashBackoff{Initial: initial, Max: maxWait, Reset: reset}}, d, vclk, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	defer func() {
		if t.Failed() {
			for _, a := range ctl.Actions() {
				t.Logf("action %s %s %s %s: %s", a.At.Format("15:04:05.000"), a.Kind, a.Reason, a.InstanceID, a.Detail)
			}
			for _, p := range launches.all() {
				t.Logf("process %s pid %d on %s exited %v (%v)", p.id, p.pid, p.addr, p.done(), p.exitErr)
			}
		}
	}()

	// pump waits (bounded, in real time) for cond, a real event or the
	// controller's answer to one, running the controller's due work at the
	// current virtual instant between polls.
	pump := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(realLimit)
		for {
			vclk.Advance(0)
			if cond() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, realLimit)
			}
			select {
			case <-launches.ch:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	routable := func(id string) bool {
		return slices.ContainsFunc(ctl.Routable(vnf), func(r ctllocal.RoutableInstance) bool { return r.ID == id })
	}
	// answers reports whether the real process p answers JSON-RPC.
	answers := func(p *realProc) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := kamrpc.New(netip.AddrPortFrom(p.addr, local.RPCPort)).Version(ctx)
		return err
	}
	nStarted := func() int { return len(launches.all()) }
	backoff := func() *ctllocal.Backoff { return ctl.Counts()[vnf].Backoff }

	if err := ctl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pump("the 2 first S-CSCFs active", func() bool { return len(ctl.Routable(vnf)) == 2 })
	first := launches.all()
	if len(first) != 2 {
		t.Fatalf("%d processes started for Min 2", len(first))
	}
	victim, healthy := first[0], first[1]
	for _, p := range first {
		if err := answers(p); err != nil {
			t.Fatalf("%s (pid %d) active but its RPC does not answer: %v", p.id, p.pid, err)
		}
	}
	t.Logf("%s pid %d on %s and %s pid %d on %s active after %v (real)", victim.id, victim.pid, victim.addr,
		healthy.id, healthy.pid, healthy.addr, time.Since(began).Round(time.Millisecond))

	// The bad release, then the victim's process dies.
	release.broken.Store(true)
	crash := func(p *realProc) time.Time {
		t.Helper()
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s pid %d: %v", p.id, p.pid, err)
		}
		select {
		case <-p.exited:
		case <-time.After(realLimit):
			t.Fatalf("%s pid %d: no exit within %v of its SIGKILL", p.id, p.pid, realLimit)
		}
		return vclk.Now()
	}
	failedAt := crash(victim)
	last := victim
	// waits: the real wait, in virtual time, before each replacement of the
	// victim's slot; the n-th quick failure in a row holds it back
	// Delay(n): 0, Initial, 2·Initial, Max (4·Initial = Max), Max.
	waits := []time.Duration{0, initial, 2 * initial, maxWait, maxWait}
	var lifetimes []time.Duration
	for n, wait := range waits {
		before := nStarted()
		// the controller's answer to the real exit: a backoff action for
		// the failed instance (n ≥ 1), or a replacement started at once
		if wait > 0 {
			pump(fmt.Sprintf("backoff action for %s", last.id), func() bool {
				if nStarted() > before {
					t.Fatalf("failure %d: a replacement started at once, want it held back %v", n+1, wait)
				}
				return slices.ContainsFunc(ctl.Actions(), func(a ctllocal.Action) bool {
					return a.Kind == ctllocal.KindBackoff && a.InstanceID == last.id
				})
			})
			b := backoff()
			if b == nil || b.Failures != n+1 || !b.Until.Equal(failedAt.Add(wait)) || b.Owed != 1 || !b.Holding(vclk.Now()) {
				t.Fatalf("after %d quick failures the controller's state shows %+v, want %d failures, held until %v, 1 owed", n+1, b, n+1, failedAt.Add(wait))
			}
			if !strings.Contains(b.LastFailure, last.id) {
				t.Fatalf("backoff's last failure %q does not name %s", b.LastFailure, last.id)
			}
			if n == len(waits)-1 {
				// The release is mended while the last backoff holds; the
				// healthy slot's instance dies now: its first failure.
				release.broken.Store(false)
				hb := nStarted()
				if at := crash(healthy); !at.Equal(failedAt) {
					t.Fatalf("virtual time moved")
				}
				pump("the healthy slot's replacement started at once", func() bool { return nStarted() > hb })
				h2 := launches.all()[hb]
				if h2.addr != healthy.addr {
					t.Fatalf("the healthy slot's replacement %s listens on %s, not on %s's %s", h2.id, h2.addr, healthy.id, healthy.addr)
				}
				pump("the healthy slot's replacement active", func() bool { return routable(h2.id) })
				if err := answers(h2); err != nil {
					t.Fatalf("%s active but its RPC does not answer: %v", h2.id, err)
				}
				if got := backoff(); got == nil || *got != *b {
					t.Fatalf("the healthy slot's failure changed the crash loop's state from %+v to %+v", b, got)
				}
				if got := nStarted(); got != hb+1 {
					t.Fatalf("%d processes started for the healthy slot's failure, want 1", got-hb)
				}
				healthy, before = h2, hb+1
			}
			vclk.RunUntil(failedAt.Add(wait - time.Nanosecond))
			if got := nStarted(); got != before {
				t.Fatalf("failure %d: a process started %v after the failure, before the backoff of %v ended", n+1, vclk.Now().Sub(failedAt), wait)
			}
			vclk.RunUntil(failedAt.Add(wait))
		} else {
			pump("the 1st replacement started at once", func() bool { return nStarted() > before })
		}
		if vclk.Now().Sub(failedAt) != wait {
			t.Fatalf("failure %d: waited %v, want %v", n+1, vclk.Now().Sub(failedAt), wait)
		}
		all := launches.all()
		if len(all) != before+1 {
			t.Fatalf("failure %d: %d processes started at the backoff's end, want 1", n+1, len(all)-before)
		}
		repl := all[before]
		if repl.addr != victim.addr {
			t.Fatalf("failure %d: %s listens on %s, not on its slot's address %s", n+1, repl.id, repl.addr, victim.addr)
		}
		if healthy.done() {
			t.Fatalf("the healthy S-CSCF %s pid %d exited during the crash loop: %v", healthy.id, healthy.pid, healthy.exitErr)
		}
		if !routable(healthy.id) {
			t.Fatalf("the healthy S-CSCF %s is not routable during the crash loop", healthy.id)
		}
		if n == len(waits)-1 {
			last = repl
			break // the release is mended before this one fails
		}
		// It dies of the bad release (on its own, or killed by the
		// controller when it never came up).
		pump(fmt.Sprintf("%s (pid %d, from the bad release) dead", repl.id, repl.pid), repl.done)
		lifetimes = append(lifetimes, repl.exitAt.Sub(repl.started))
		if evs.reached(repl.id, drivers.StateActive) {
			upThenDied.Add(1)
		}
		log, _ := os.ReadFile(filepath.Join(repl.dir, "kamailio.log"))
		if repl.exitErr == nil || !bytes.Contains(log, []byte(fault.logSays)) {
			t.Fatalf("%s pid %d exited (%v) but its log does not say %q:\n%s", repl.id, repl.pid, repl.exitErr, fault.logSays, log)
		}
		if fault.errorSays != "" && !evs.reachedWith(repl.id, drivers.StateError, fault.errorSays) {
			t.Fatalf("%s pid %d exited (%v) without the driver's error %q", repl.id, repl.pid, repl.exitErr, fault.errorSays)
		}
		failedAt, last = vclk.Now(), repl
	}
	t.Logf("bad-release Kamailio processes lived %v (real: start → exit), %d of them active before they died", lifetimes, upThenDied.Load())
	// one that comes up later than 3 s on a loaded host dies booting: a
	// quick failure all the same
	if up := upThenDied.Load(); fault.cameUp != (up > 0) {
		t.Fatalf("%d of the bad release's instances came up before they died (%s)", up, fault.name)
	}

	// The mended release: the held-back replacement comes up and stays up;
	// Reset after it became active its slot's loop is over.
	mended := last
	pump("the replacement from the mended release active", func() bool { return routable(mended.id) })
	if err := answers(mended); err != nil {
		t.Fatalf("%s active but its RPC does not answer: %v", mended.id, err)
	}
	if b := backoff(); b == nil || b.Failures != len(waits) || b.Holding(vclk.Now()) || b.Owed != 0 {
		t.Fatalf("with the replacement up the controller shows %+v, want %d failures in a row, nothing held or owed until Reset", b, len(waits))
	}
	activeAt, upReal := vclk.Now(), time.Now()
	over := func() (ctllocal.Action, bool) {
		for _, a := range ctl.Actions() {
			if a.Kind == ctllocal.KindBackoff && a.InstanceID == "" && strings.Contains(a.Detail, mended.id) {
				return a, true
			}
		}
		return ctllocal.Action{}, false
	}
	// The virtual clock runs at the real pace here: the loop may end only
	// once the real process has been up for Reset.
	deadline, prev := time.Now().Add(reset+realLimit), time.Now()
	for {
		select {
		case <-mended.exited:
			t.Fatalf("%s pid %d from the mended release exited after %v: %v", mended.id, mended.pid, time.Since(upReal), mended.exitErr)
		case <-time.After(50 * time.Millisecond):
		}
		now := time.Now()
		vclk.Advance(now.Sub(prev))
		prev = now
		if _, ok := over(); ok {
			break
		}
		if now.After(deadline) {
			t.Fatalf("no end of the crash loop within %v of %s's start", reset+realLimit, mended.id)
		}
	}
	a, _ := over()
	if up := a.At.Sub(activeAt); up < reset || up >= reset+ctllocal.TickPeriod {
		t.Fatalf("the crash loop ended %v after %s became active, want Reset %v (at the next tick)", up, mended.id, reset)
	}
	if b := backoff(); b != nil || len(ctl.Backoffs()) != 0 {
		t.Fatalf("the loop is over but the controller still shows %+v", b)
	}
	if mended.done() || answers(mended) != nil {
		t.Fatalf("%s pid %d not up after the loop ended (exited %v, %v)", mended.id, mended.pid, mended.done(), mended.exitErr)
	}
	t.Logf("%s pid %d up %v (real) when its slot's loop ended", mended.id, mended.pid, time.Since(upReal).Round(time.Millisecond))

	// Its next failure is the slot's first again: replaced at once.
	before := nStarted()
	failedAt = crash(mended)
	pump("the replacement after the reset started at once", func() bool { return nStarted() > before })
	again := launches.all()[before]
	if again.addr != victim.addr {
		t.Fatalf("%s listens on %s, not on its slot's address %s", again.id, again.addr, victim.addr)
	}
	pump("the replacement after the reset active", func() bool { return routable(again.id) })
	if !vclk.Now().Equal(failedAt) || backoff() != nil {
		t.Fatalf("the failure after the reset: replaced %v later, controller shows %+v", vclk.Now().Sub(failedAt), backoff())
	}
	if n := nStarted(); n != before+1 {
		t.Fatalf("%d processes started after the reset's failure, want 1", n-before)
	}
	if healthy.done() {
		t.Fatalf("the healthy slot's %s pid %d exited: %v", healthy.id, healthy.pid, healthy.exitErr)
	}
	t.Logf("crash loop done after %v (real)", time.Since(began).Round(time.Millisecond))
}

// checkAllGone stops the controller's instances and checks, by pid, that
// no process the test started is left (any left is killed with its group).
func checkAllGone(t *testing.T, d *local.Driver, l *launchLog) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Errorf("driver close: %v", err)
	}
	for _, p := range l.all() {
		select {
		case <-p.exited:
		case <-ctx.Done():
		}
		if err := syscall.Kill(-p.pid, 0); !errors.Is(err, syscall.ESRCH) {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			t.Errorf("%s: process group %d still there after the driver closed (killed now)", p.id, p.pid)
		}
	}
}
