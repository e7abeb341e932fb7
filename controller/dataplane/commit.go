package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// A DC's rule update is two steps with two locks:
//   - compile (compileRules, under the plane's mu): the DC's rules from its
//     state now become its newest compiled set, numbered in compile order;
//   - apply (applyNewest, under the DC's applyMu, never mu): the newest
//     compiled set goes to the switch (one bundle, one ovs-ofctl run), unless
//     it is there already.
//
// The ovs-ofctl run (≈ 0.1–0.3 s, docs/dataplane.md "What one bundle
// costs"; seconds at load 20+) is never under mu, whatever asked for the
// update: a call's commit (the media hook's /start and /end: commitDC) or
// a sync-path update (interval steps, instance changes, departures,
// retries: syncCompile, syncWait). A call's state change, another DC's
// update and the readers (FlowCounts, Calls, the media hook's checks) do
// not wait for it. Each update compiles once under mu, then waits for
// applyMu: the apply that runs when it gets
// it carries every change compiled meanwhile, so the updates asked for
// during one ovs-ofctl run share the next one (group commit); an update
// waits for two runs of its DC at most (the one in flight, the one
// carrying it) once it has mu, plus the kill of the switch's delayed
// delete of ended entry rules if its bundle is in flight (it gives way to
// a caller: drivers/ovs, sweep). Once its set (or a newer one) is on the
// switch, an update no longer takes mu: its outcome is noted by the next
// holder of mu that reads it (noteApplied first). Before, mu was held
// across every run: each call's state change and its commit queued behind
// the running one (session 15 moved the calls' runs out: under load the
// commits covered a change or two each, the queue grew and /start timed
// out, the P-CSCF's 1 s; the caller then sent media before its rules
// existed: TestChaosMedia's late rules), and until session 16 the
// sync-path updates still held mu across their own run, so a /start
// queued behind every interval step or instance change of any DC.
//
// Lock order: mu before applyMu (New, ReplaceTables and the Reset after a
// vswitchd restart apply under mu); applyMu before rulePipe.slotMu (a
// leaf). Nothing takes mu while holding applyMu.

// compiled is one compiled rule set of a DC.
type compiled struct {
	want   []ovs.Flow
	forget []int        // ports whose learned rules go (departed instances)
	ports  map[int]bool // the live instances' ports it was made for
	tags   bool         // want has tag rules
	covers uint64       // the call-change generation (dcState.gen) it includes
	seq    uint64       // compile order
}

// applied is one apply's outcome, noted under mu by noteApplied (by the
// next holder of mu that reads what it changes: okGen, failed, ports,
// countsLost, last).
type applied struct {
	set compiled
	c   ovs.Changes
	err error
	dur time.Duration
}

// rulePipe is a DC's compile→apply hand-over.
type rulePipe struct {
	// applyMu: one apply (or Reset) of the DC at a time; guards
	// appliedSeq and appliedCovers: the newest set on the switch
	applyMu                   sync.Mutex
	appliedSeq, appliedCovers uint64
	// closed: the plane is closed (Close, under applyMu): no apply or
	// Reset runs any more (the bridges go)
	closed bool

	slotMu sync.Mutex // a leaf: guards newest, seq, done
	newest compiled
	seq    uint64
	// done: the applies not noted yet, in apply order
	done []applied
}

// publish makes set the newest compiled set (under the plane's mu, so
// compile order is state order).
func (r *rulePipe) publish(set compiled) compiled {
	r.slotMu.Lock()
	defer r.slotMu.Unlock()
	r.seq++
	set.seq = r.seq
	r.newest = set
	return set
}

// newestCovers is the generation the newest compiled set includes.
func (r *rulePipe) newestCovers() uint64 {
	r.slotMu.Lock()
	defer r.slotMu.Unlock()
	return r.newest.covers
}

// applyNewest puts the newest compiled set on the switch unless it is
// there (under applyMu). A failed apply's outcome is unknown (the bundle
// may have committed; drivers/ovs marks its rules dirty and the next
// bundle rewrites them): appliedSeq stays, the set stays the newest (the
// next apply tries it again) and its ports stay unnoted (mayHave).
func (r *rulePipe) applyNewest(ctx context.Context, sw ruleSwitch) error {
	if r.closed {
		return errClosed
	}
	r.slotMu.Lock()
	set := r.newest
	r.slotMu.Unlock()
	if set.seq <= r.appliedSeq {
		return nil
	}
	start := time.Now()
	c, err := sw.Apply(ctx, set.want, set.forget...)
	if err == nil {
		r.appliedSeq, r.appliedCovers = set.seq, set.covers
	}
	r.record(applied{set: set, c: c, err: err, dur: time.Since(start)})
	return err
}

// errClosed is an apply's error once the plane is closed.
var errClosed = errors.New("dataplane: closed")

// stopApplies waits for the apply running (a call's commit applies without
// mu) and makes every later apply fail with errClosed (under mu: Close,
// before the bridges go).
func (p *Plane) stopApplies() {
	for _, st := range p.dcs {
		if st != nil {
			st.applyMu.Lock()
			st.closed = true
			st.applyMu.Unlock()
		}
	}
}

func (r *rulePipe) record(a applied) {
	r.slotMu.Lock()
	r.done = append(r.done, a)
	r.slotMu.Unlock()
}

// takeDone returns the applies not noted yet, in apply order.
func (r *rulePipe) takeDone() []applied {
	r.slotMu.Lock()
	defer r.slotMu.Unlock()
	d := r.done
	r.done = nil
	return d
}

// applyNewest is rulePipe.applyNewest on DC k's switch, its error naming
// the DC.
func (st *dcState) applyNewest(ctx context.Context, k int) error {
	if err := st.rulePipe.applyNewest(ctx, st.sw); err != nil {
		return errWithDC(k, err)
	}
	return nil
}

func errWithDC(k int, err error) error { return fmt.Errorf("dc%d: %w", k, err) }

// noteApplied brings DC k's state in line with the applies done since the
// last call (under mu), in apply order: a success covers its generation
// (okGen), clears the failed mark and makes its ports the set the switch's
// rules were made for; a failure marks the DC failed (retryFailed).
func (p *Plane) noteApplied(k int, st *dcState) {
	for _, a := range st.takeDone() {
		p.last = a.dur
		if a.err != nil {
			st.failed = true
			continue
		}
		st.failed = false
		st.okGen = max(st.okGen, a.set.covers)
		st.madeFor(a.set)
		p.noteCountsUnread(k, st, a.c)
		p.takeCoveredRemovals(k, st, a.set.seq)
	}
}

// commit brings the rules of each DC in gens up to the call change of that
// generation (group commit): a DC whose rules a later successful update
// already covered is not updated again. An update that failed answers
// only its own caller (its error may be that caller's context): every other
// caller whose change it covered updates again with its own context.
func (p *Plane) commit(ctx context.Context, gens map[int]uint64) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(gens)) {
		errs = append(errs, p.commitDC(ctx, k, gens[k]))
	}
	return errors.Join(errs...)
}

// commitDC is commit of one DC: compile (under mu) unless a compiled set
// already includes the change, then apply the newest set (under applyMu,
// without mu) unless the switch has a set that includes it.
func (p *Plane) commitDC(ctx context.Context, k int, gen uint64) error {
	p.mu.Lock()
	st := p.dcs[k]
	p.noteApplied(k, st)
	if st.okGen >= gen {
		p.mu.Unlock()
		return nil
	}
	if st.newestCovers() < gen {
		if err := p.compileRules(k, st); err != nil {
			st.failed = true
			p.mu.Unlock()
			return err
		}
	}
	p.mu.Unlock()
	return p.applyUnless(ctx, k, func(r *rulePipe) bool { return r.appliedCovers >= gen })
}

// syncing is a sync-path update of DC k compiled under mu (syncCompile):
// seq is its set's compile order.
type syncing struct {
	k   int
	seq uint64
}

// syncCompile is the first step of a sync-path update of DC k (an
// interval step, an instance change, a departure, a retry; under mu): the
// DC's rules from its state now become its newest compiled set. A compile
// error marks the DC failed (retryFailed).
func (p *Plane) syncCompile(k int) (syncing, error) {
	st := p.dcs[k]
	if err := p.compileRules(k, st); err != nil {
		st.failed = true
		return syncing{}, err
	}
	st.slotMu.Lock()
	defer st.slotMu.Unlock()
	return syncing{k: k, seq: st.seq}, nil
}

// syncWait is the second step (without mu): it returns once u's set or a
// newer one (which includes u's change: a compile reads the whole state)
// is on the switch, applying the newest set itself unless an apply that
// ran while it waited for applyMu put one there.
func (p *Plane) syncWait(ctx context.Context, u syncing) error {
	return p.applyUnless(ctx, u.k, func(r *rulePipe) bool { return r.appliedSeq >= u.seq })
}

// syncAfter runs change of DC k (nil: none) and compiles under mu, then
// applies without it (syncWait): a sync-path update whose state change is
// change. An invalid DC or change's error updates nothing.
func (p *Plane) syncAfter(ctx context.Context, k int, change func(st *dcState) error) error {
	p.mu.Lock()
	st, err := p.dc(k)
	if err == nil && change != nil {
		err = change(st)
	}
	var u syncing
	if err == nil {
		u, err = p.syncCompile(k)
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.syncWait(ctx, u)
}

// applyUnless applies DC k's newest compiled set under applyMu (without
// mu) unless on says the switch has what the caller waits for. The
// outcome is noted now if mu is free, else by the next holder that reads
// what it changes (noteApplied first): an update whose rules are on the
// switch does not wait for mu.
func (p *Plane) applyUnless(ctx context.Context, k int, on func(*rulePipe) bool) error {
	st := p.dcs[k]
	st.applyMu.Lock()
	var err error
	if !on(&st.rulePipe) {
		err = st.applyNewest(ctx, k)
	}
	st.applyMu.Unlock()
	if p.mu.TryLock() {
		p.noteApplied(k, st)
		p.mu.Unlock()
	}
	return err
}
