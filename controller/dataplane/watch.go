package dataplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// Watch runs Check, until ctx ends, whenever the real components say
// something may have failed, and every period as a safety net:
//   - ovs-vswitchd's exit, read from its pidfd (ovs.Daemon.WaitVswitchd):
//     a dead ovs-vswitchd is restarted and every bridge's rules are
//     installed again; each instance of every DC is reported as a Failure
//     with reason "ovs-vswitchd died" (their namespaces survive and forward
//     again once the rules are back);
//   - a link deleted in the switch namespace (an rtnetlink RTM_DELLINK
//     event, ovs.WatchLinkDeletions): an instance whose ports vanished (its
//     namespace was deleted) is removed (its flows move to another instance
//     of the stage: removeState, then one rule update applied without the
//     plane's lock) and reported as a Failure.
//
// A forwarder's exit needs neither: the plane (watchExit) and the netns
// driver wait on the process. The periodic Check covers an event source
// that could not be set up (it is set up again after each Check) and costs
// one pid-file read and one netlink dump, no process.
func (p *Plane) Watch(ctx context.Context, period time.Duration) {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var exited <-chan error
	var links <-chan struct{}
	arm := func() {
		if exited == nil {
			exited = p.vswitchdExit(ctx)
		}
		if links == nil {
			l, err := ovs.WatchLinkDeletions(ctx, p.d.SwitchNS(), func(string) { poke() }, p.onError(ctx))
			if err != nil {
				p.onError(ctx)(err)
			} else {
				links = l
				p.markLinksWatched()
			}
		}
	}
	// the event sources are armed again after a Check that succeeded, and
	// every period: a restart that keeps failing is retried once a period,
	// not in a loop
	check := func() {
		if err := p.Check(ctx); err != nil {
			p.onError(ctx)(err)
			return
		}
		arm()
	}
	t := time.NewTicker(period)
	defer t.Stop()
	arm()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-exited:
			exited = nil // armed again after the Check restarted it, or at the next period
			if err == nil {
				check()
			}
		case <-links:
			links = nil // the subscription ended: subscribe again
			check()
		case <-kick:
			check()
		case <-t.C:
			check()
			arm()
		}
	}
}

// vswitchdExit returns a channel that yields nil when the ovs-vswitchd that
// runs now exits (at once when none runs), or the error when the wait
// cannot be set up (reported; Watch arms it again at the next period, the
// periodic Check covering the gap); nothing when ctx ends first.
func (p *Plane) vswitchdExit(ctx context.Context) <-chan error {
	ch := make(chan error, 1)
	go func() {
		err := p.d.WaitVswitchd(ctx)
		if err != nil && ctx.Err() != nil {
			return
		}
		if err != nil {
			p.onError(ctx)(err)
		}
		ch <- err
	}()
	return ch
}

// onError reports an error of the Watch loop unless ctx ended.
func (p *Plane) onError(ctx context.Context) func(error) {
	return func(err error) {
		if err != nil && ctx.Err() == nil && p.cfg.OnError != nil {
			p.cfg.OnError(err)
		}
	}
}

// everyTick calls f every period (wall clock: the real switch and
// processes are watched) until ctx ends.
func everyTick(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Check runs one round of Watch.
func (p *Plane) Check(ctx context.Context) error {
	if !p.d.VswitchdAlive() {
		return p.recoverSwitch(ctx)
	}
	retried := p.retryFailed(ctx)
	if p.cfg.Driver != nil {
		// attached: the driver reports vanished instances as gone; the
		// local controller fails them and the routers' new instance sets
		// and the gone instances come back through InstanceSink (SetInstances,
		// Forget → departed)
		return errors.Join(retried, p.cfg.Driver.Check(ctx))
	}
	return errors.Join(retried, p.removeVanished(ctx))
}

// linkNames reads the link names of the switch namespace.
func (p *Plane) linkNames(ctx context.Context) (map[string]bool, error) {
	if p.links != nil {
		return p.links(ctx)
	}
	return ovs.LinkNames(ctx, p.d.SwitchNS())
}

// removeVanished removes the standalone instances whose ports vanished
// (their namespace was deleted), one rule update per DC applied without
// the lock, deletes what is left of them and reports them as Failures
// (Moved zero when their DC's update failed).
func (p *Plane) removeVanished(ctx context.Context) error {
	type vanished struct {
		f  Failure
		in *netns.Instance
		r  *removal // nil: not live
	}
	var gone []vanished
	var ups []syncing
	var errs []error
	p.mu.Lock()
	// the links are read under the lock (one netlink dump, no process): an
	// instance added between the read and the lock would look vanished
	have, err := p.linkNames(ctx)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		touched := false
		for s := range st.insts {
			for idx, in := range st.insts[s] {
				if have[in.InName] && have[in.OutName] {
					continue
				}
				now := time.Now()
				r, err := p.removeState(k, s+1, idx)
				errs = append(errs, err)
				touched = true
				gone = append(gone, vanished{Failure{DC: k, Stage: s + 1, Index: idx, Reason: "instance ports vanished", At: now}, in, r})
			}
		}
		if touched {
			// one update per DC, applied below without the lock
			u, err := p.syncCompile(k)
			if err == nil {
				ups = append(ups, u)
			}
			errs = append(errs, err)
		}
	}
	p.mu.Unlock()
	moved := map[int]time.Time{}
	for _, u := range ups {
		err := p.syncWait(ctx, u)
		if err == nil {
			moved[u.k] = time.Now()
		}
		errs = append(errs, err)
	}
	fails := make([]Failure, 0, len(gone))
	for _, g := range gone {
		// its database ports and what is left of it (all deleted before
		// the lock is taken again: Close waits for each under it)
		if g.r != nil {
			_ = p.endRemoval(ctx, g.r)
		} else {
			_ = p.deleteInstance(ctx, g.in)
		}
	}
	p.mu.Lock()
	for _, g := range gone {
		if g.r != nil {
			p.dropRemoval(g.f.DC, g.f.Stage, g.f.Index, g.r)
		}
	}
	p.mu.Unlock()
	for _, g := range gone {
		g.f.Moved = moved[g.f.DC] // zero when its DC's update failed
		fails = append(fails, g.f)
	}
	p.report(fails)
	return errors.Join(errs...)
}

// departed brings attached datacenter k's rules in line after instance id
// of vnf is gone (its gone event reached the local controller, whose sink's
// Forget calls this: Hooks, Lazy), when the rules still send to a port the
// driver no longer has. An instance destroyed out of routing (a draining
// instance at its drain timeout) changes no routable set, so no
// SetInstances call would resync, and the flows still pinned to it would go
// to a port that is gone until the DC's next rule update; the sync moves
// them to the instance Route would pick (repairFlows). An instance the
// router still routes (a working instance that crashed) is left to the
// SetInstances that follows in the same event (the controller fails it):
// a sync now would run on a table that still routes it, so repairFlows
// could pin the moved flows onto the gone instance itself, and the
// SetInstances' sync would apply the rules a second time.
func (p *Plane) departed(ctx context.Context, k int, vnf, id string) error {
	p.mu.Lock()
	u, stale, err := p.departedLocked(k, vnf, id)
	p.mu.Unlock()
	if err != nil || !stale {
		return err
	}
	return p.syncWait(ctx, u)
}

// departedLocked is departed's check and, when the rules may still send
// to a gone port, its compile (under mu).
func (p *Plane) departedLocked(k int, vnf, id string) (syncing, bool, error) {
	st, err := p.dc(k)
	if err != nil || st.router == nil || p.cfg.Driver == nil {
		return syncing{}, false, err
	}
	if st.router.Routed(vnf, id) {
		return syncing{}, false, nil
	}
	p.noteApplied(k, st)
	have := map[int]bool{}
	for _, pp := range p.activeIn(st.name) {
		have[pp.In] = true
	}
	for _, port := range st.mayHave() {
		if !have[port] {
			u, err := p.syncCompile(k)
			return u, err == nil, err
		}
	}
	return syncing{}, false, nil
}

// retryFailed syncs again every DC whose last rule update failed (Compile,
// or Apply: ovs-ofctl failed or timed out), one DC at a time (compiled
// under the lock, applied without it): until one succeeds, the switch
// holds the rules of an older state (a departed instance's port, a call's
// missing rules). Nothing runs while every update succeeded.
func (p *Plane) retryFailed(ctx context.Context) error {
	var errs []error
	for k := range p.dcs {
		p.mu.Lock()
		st := p.dcs[k]
		if st != nil {
			p.noteApplied(k, st)
		}
		retry := st != nil && (st.failed || st.compileFailed)
		var u syncing
		var err error
		if retry {
			u, err = p.syncCompile(k)
		}
		p.mu.Unlock()
		if retry && err == nil {
			err = p.syncWait(ctx, u)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// watchExit removes instance idx of stage the moment its forwarder exits
// (killed, crashed) and reports the Failure: event-driven, the time from
// the death to the rule change is one bundle.
func (p *Plane) watchExit(dc, stage int, idx uint8, in *netns.Instance) {
	<-in.Done()
	p.instanceExited(dc, stage, idx, in, time.Now())
}

// instanceExited is watchExit once the forwarder exited (at now).
func (p *Plane) instanceExited(dc, stage int, idx uint8, in *netns.Instance, now time.Time) {
	p.mu.Lock()
	if p.dcs[dc].insts[stage-1][idx] != in {
		p.mu.Unlock()
		return // removed or deleted by the plane itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), removalTimeout)
	defer cancel()
	r, err := p.removeState(dc, stage, idx)
	err = p.removalUpdateUnlock(ctx, dc, r, err)
	moved := time.Now()
	// a plane closed meanwhile is no error (Close deletes the bridges)
	if err != nil && !errors.Is(err, errClosed) && p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
	p.report([]Failure{{DC: dc, Stage: stage, Index: idx, Reason: in.ExitReason(), At: now, Moved: moved}})
	if r != nil {
		_ = p.finishRemoval(ctx, dc, stage, idx, r) // its forwarder is gone: deleted even when the update failed
	} else {
		_ = p.deleteInstance(ctx, in)
	}
}

func (p *Plane) report(fails []Failure) {
	if p.cfg.OnFailure == nil {
		return
	}
	for _, f := range fails {
		p.cfg.OnFailure(f)
	}
}

func (p *Plane) recoverSwitch(ctx context.Context) error {
	now := time.Now()
	if p.cfg.Driver != nil {
		// before taking the lock: the failure events reach the local
		// controllers, whose instance sinks sync this plane
		p.cfg.Driver.FailAll("ovs-vswitchd died")
	}
	var fails []Failure
	p.mu.Lock()
	defer func() {
		p.mu.Unlock()
		p.report(fails)
	}()
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		for s := range st.insts {
			for idx := range st.insts[s] {
				fails = append(fails, Failure{DC: k, Stage: s + 1, Index: idx, Reason: "ovs-vswitchd died", At: now})
			}
		}
	}
	if err := p.d.RestartVswitchd(ctx); err != nil {
		return err
	}
	return p.resetAllLocked(ctx)
}

// resetAllLocked reinstalls every DC's rules on the restarted switch
// (p.mu held): each DC is reset whatever the others' Reset did, a DC
// whose Reset failed is marked failed (retryFailed applies its set again,
// which rewrites every rule: Switch.Reset's failure left them dirty),
// and the errors are joined. Before (final MED-1), the first failure
// ended the loop: the DCs after it kept the record of their rules from
// before the restart on an empty bridge, not marked failed.
//
// The wait for the bridges' management sockets has one deadline for all
// DCs (socketWait from the start: the sockets come back together, once
// vswitchd has read the database) and ends with ctx. Before (revRR
// LOW-5), each DC waited its own 2 s and the wait did not look at ctx:
// N × 2 s under the plane's lock, even for a closing caller.
func (p *Plane) resetAllLocked(ctx context.Context) error {
	deadline := p.socketClk().Now().Add(socketWait)
	var errs []error
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		errs = append(errs, p.resetLocked(ctx, k, st, deadline))
	}
	return errors.Join(errs...)
}

func (p *Plane) socketClk() clock.Clock {
	if p.socketClock == nil {
		return clock.Real{}
	}
	return p.socketClock
}

// socketWait bounds the wait after a restart for the bridges' management
// sockets (all of them: one deadline); socketPoll is the pause between
// two looks.
const (
	socketWait = 2 * time.Second
	socketPoll = 10 * time.Millisecond
)

// awaitSocket waits until sw answers on its management socket (nil), or
// deadline passes or ctx ends (the last look's error, with ctx's).
func awaitSocket(ctx context.Context, clk clock.Clock, sw ruleSwitch, deadline time.Time) error {
	for {
		_, err := sw.Ofctl(ctx, "show")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		left := deadline.Sub(clk.Now())
		if left <= 0 {
			return err
		}
		if serr := clock.Sleep(ctx, clk, min(socketPoll, left)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// resetLocked reinstalls DC k's rules on a restarted switch (Switch.Reset:
// delete all + install) once its bridge's management socket is back, or
// deadline passed (awaitSocket). A success leaves the DC as a successful
// sync does: not failed (nothing for retryFailed to redo), its port set
// the live instances'; a failure marks it failed.
func (p *Plane) resetLocked(ctx context.Context, k int, st *dcState, deadline time.Time) error {
	// the bridge's management socket comes back once vswitchd has read
	// the database; Reset (delete all + install) needs it
	err := awaitSocket(ctx, p.socketClk(), st.sw, deadline)
	st.failed = true
	if err != nil {
		// the Reset below runs all the same: it fails too, and its
		// failure leaves the Switch's record unknown (every rule dirty),
		// so retryFailed's update rewrites them all once the socket is back
		err = fmt.Errorf("dc%d after restart: the management socket: %w", k, err)
	}
	unready := err
	var want []ovs.Flow
	var ports map[int]bool
	p.withLive(st, func(t *routing.Table, live [routing.MaxStages]map[uint8]Ports, _ func(int, uint8) string) {
		ports = livePorts(live)
		want, err = Compile(Inputs{Table: t, Live: live, Flows: flowList(st), Calls: st.calls,
			UsersMAC: UsersMAC(k), LearnIdle: p.cfg.LearnIdle})
	})
	if err != nil {
		return fmt.Errorf("dc%d after restart: %w", k, err)
	}
	want = p.resolve(k, st, want)
	// the reset set is the newest compiled one: an apply of an older set
	// compiled before it (a call's commit waiting for applyMu) finds it
	// on the switch and applies nothing
	set := st.publish(compiled{want: want, ports: ports, covers: st.gen, tags: hasTagRules(want)})
	st.compiledTags(set)
	st.applyMu.Lock()
	err = errClosed
	if !st.closed {
		err = st.sw.Reset(ctx, want)
	}
	if err == nil {
		st.appliedSeq, st.appliedCovers = set.seq, set.covers
	}
	st.applyMu.Unlock()
	p.noteApplied(k, st) // the applies before the reset: the reset's outcome below is the newer
	if err != nil {
		st.failed = true
		return errors.Join(unready, fmt.Errorf("dc%d after restart: %w", k, err))
	}
	st.failed = false
	st.madeFor(set)
	st.okGen = st.gen // every call change is on the switch
	return nil
}

// flowList returns the flows that entered here in serial order (a fixed
// order, so one state compiles to one rule list; byKey keeps one flow per
// 5-tuple, so their arrival rules never share an identity: a flow that
// took a 5-tuple over may keep the older flow's serial, addFlow).
func flowList(st *dcState) []Flow {
	out := make([]Flow, 0, len(st.flows))
	for _, f := range st.flows {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Flow) int { return cmp.Compare(a.Serial, b.Serial) })
	return out
}

// ReplaceTables gives the plane new routing tables (same number of DCs):
// every live instance becomes a working instance of the new table, flows and
// calls are forgotten, rules re-applied. Tests use it to run a second
// experiment on the same bridges and instances.
func (p *Plane) ReplaceTables(ctx context.Context, tables []*routing.Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(tables) != len(p.dcs) {
		return fmt.Errorf("tables: %d, the plane has %d datacenters", len(tables), len(p.dcs))
	}
	for k, st := range p.dcs {
		t := tables[k]
		if t.DC() != k || t.N() != len(p.dcs) || t.Stages() != st.t.Stages() {
			return fmt.Errorf("tables[%d]: does not match datacenter %d", k, k)
		}
		for s := 1; s <= t.Stages(); s++ {
			var work []routing.InstanceLoad
			for _, idx := range sortedKeys(st.live[s-1]) {
				work = append(work, routing.InstanceLoad{Index: idx})
			}
			if err := t.SetInstances(s, work); err != nil {
				return err
			}
		}
		st.t = t
		st.flows = map[uint32]Flow{}
		st.calls = nil
		st.byCall = map[routing.Call][]uint32{}
		st.callOf, st.byKey, st.starts = nil, nil, nil
		if err := p.sync(ctx, k); err != nil {
			return err
		}
		if err := st.sw.ForgetLearned(ctx); err != nil {
			return err
		}
	}
	return nil
}
