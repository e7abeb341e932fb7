package ovs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// EndHold is how long an ended entry rule stays on the switch as a
// count-then-drop rule (a tombstone) before a delayed delete removes it:
// three revalidator periods (max-revalidator is 100 ms, Start sets it).
// Open vSwitch credits a datapath flow's packets not yet pulled to the
// rules of its translation after the bundle (revalidate_ukey): while the
// tombstone is there, that translation still goes through the pair's
// counter rule, so the packets a still-sending flow matched before and
// just after its call's end count on its pair, not on table 1's miss rule.
// The revalidator pulls each datapath flow at least once a period, so two
// periods are enough; the third is margin for a loaded switch.
const EndHold = 3 * MaxRevalidator

// MaxRevalidator is the longest period of Open vSwitch's revalidator
// (other_config:max-revalidator, which Start sets): each datapath flow's
// packets are pulled to its rules' counters at least that often.
const MaxRevalidator = 100 * time.Millisecond

// tombstone is an ended entry rule kept as CountPair(pair, "drop").
type tombstone struct {
	pair  Pair
	since time.Time
}

// withTombsLocked returns want (resolved) with the Switch's tombstones
// added (s.mu held): an entry rule of have that want ends becomes a
// tombstone now (same identity and cookie, actions CountPair(pair,
// "drop"): Diff modifies it in place, no counter is read), a tombstone
// that want names again is taken over by want's rule (a newer call with
// the 5-tuple: Diff replaces it, or modifies it back when the cookie is
// the same), the other tombstones stay as they are, and so does the
// counter rule of each tombstone's pair. Only the delayed delete (sweep)
// removes a tombstone: gone are the identities it deletes. want is by
// identity (the Apply's own: it is modified).
func (s *Switch) withTombsLocked(want map[string]Flow, gone map[string]bool) {
	if s.hold <= 0 {
		return
	}
	for k := range s.tombs {
		if _, ok := want[k]; ok {
			delete(s.tombs, k) // taken over by a newer call's rule
		}
	}
	now := s.clock().Now()
	for k, g := range s.have {
		p, ok := PairOf(g.Cookie)
		if !ok || gone[k] {
			continue
		}
		if _, ok := want[k]; ok {
			continue
		}
		if _, ok := s.tombs[k]; !ok {
			// a call's end: count, then drop
			s.tombs[k] = tombstone{pair: p, since: now}
			g.Actions = CountPair(p, "drop")
		}
		want[k] = g
		if c := PairCounter(p); !has(want, c.Key()) {
			want[c.Key()] = c
		}
	}
}

func has(m map[string]Flow, k string) bool {
	_, ok := m[k]
	return ok
}

// dueLocked returns the tombstones at least EndHold old whose pair's
// counter rule want keeps (s.mu held): a caller's rule update deletes them
// with no counter read.
func (s *Switch) dueLocked(want map[string]Flow) map[string]bool {
	if len(s.tombs) == 0 {
		return nil
	}
	now := s.clock().Now()
	due := map[string]bool{}
	for k, tb := range s.tombs {
		if now.Sub(tb.since) >= s.hold && has(want, PairCounter(tb.pair).Key()) {
			due[k] = true
		}
	}
	return due
}

// armLocked sets the delayed delete when tombstones wait and none is set
// (s.mu held): one sweep per EndHold at most, however many calls end.
func (s *Switch) armLocked() {
	if len(s.tombs) == 0 || s.timer != nil || s.closed {
		return
	}
	s.timer = s.clock().AfterFunc(max(s.hold, s.retryIn), s.sweep)
}

// maxSweepRetry caps the wait before a delayed delete retries after
// failures in a row.
const maxSweepRetry = 5 * time.Second

// ReportTo gives the Switch where its delayed deletes' failures go (nil:
// nowhere): the 1st, 2nd, 4th, 8th… of a run, each with the run's length;
// and, once per cause, a bundle that went through ovs-ofctl instead of the
// OpenFlow connection (bundleFellBackLocked). onErr is called with the
// Switch's lock held (and its caller's, e.g. a dataplane.Plane's, when the
// report comes from an Apply or Reset): it must return promptly and must
// not call the Switch, which would deadlock.
func (s *Switch) ReportTo(onErr func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onErr = onErr
}

// DelayedDeleteFailures is how many delayed deletes failed in a row (0
// after one succeeds).
func (s *Switch) DelayedDeleteFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweepFails
}

// sweptLocked notes a delayed delete's outcome (s.mu held): a failure
// makes the next one wait longer and is reported thinned; a success
// resets both. Counts it ended unread are reported too (PairPackets says
// ErrCountsLost as for any update).
func (s *Switch) sweptLocked(n int, c Changes, err error) {
	if err == nil {
		s.sweepFails, s.retryIn, s.retry.streak = 0, 0, 0
		if c.CountsUnread != nil && s.onErr != nil {
			s.onErr(fmt.Errorf("ovs: %s: the delayed delete of %d ended entry rules: %w", s.bridge, n, c.CountsUnread))
		}
		return
	}
	s.sweepFails++
	s.retryIn = s.retry.next(0)
	if s.onErr != nil && s.sweepFails&(s.sweepFails-1) == 0 {
		s.onErr(fmt.Errorf("ovs: %s: the delayed delete of %d ended entry rules failed (%d in a row; next try in %v): %w",
			s.bridge, n, s.sweepFails, s.retryIn, err))
	}
}

// sweepBound bounds the delayed delete's own ovs-ofctl run: a killed
// bundle committed all of it or nothing (it is atomic): the tombstones stay
// in the record, the rules it changed are dirty and the next bundle
// rewrites them (uncertainLocked), the next sweep tries again.
const sweepBound = 2 * time.Second

// callerIn notes an Apply that is about to take s.mu (s.mu not held) and
// stops the delayed delete's bundle in flight, so that the caller waits
// for no delayed delete; the caller's own bundle deletes the due
// tombstones instead (dueLocked). It returns the caller's exit.
func (s *Switch) callerIn() (out func()) {
	s.yield.Lock()
	defer s.yield.Unlock()
	s.yield.callers++
	if s.yield.sweepStop != nil {
		s.yield.sweepStop()
	}
	return func() {
		s.yield.Lock()
		defer s.yield.Unlock()
		s.yield.callers--
	}
}

// sweep is the delayed delete: it applies the caller's last rule set
// without the tombstones at least EndHold old (one bundle; a counter rule
// kept for them alone goes too, read first as Apply reads it) and sets
// itself again while younger ones wait. A failed bundle keeps them in the
// record (one the switch refused changed nothing; a killed one's rules are
// dirty: the next bundle rewrites them), and the next sweep tries again,
// later after each failure in a row (sweptLocked). It gives way to callers: it sets itself again without a
// bundle when s.mu is held or an Apply waits, an Apply that comes while
// its bundle runs stops it (callerIn; not a failure: it keeps the
// tombstones, the caller's bundle deletes those due and rewrites what the
// stopped one changed), and its run is bounded (sweepBound). It applies
// s.asked: the caller's last set that committed or may have (a killed
// caller's bundle: applyLocked), never an older one.
func (s *Switch) sweep() {
	if !s.mu.TryLock() {
		// a caller (or a counter read) holds the switch: its update
		// deletes the due tombstones; try again later. s.timer stays
		// set (a sweep is pending), so nothing arms a second one; Close
		// stops this one (yield.again) unless it came first.
		s.yield.Lock()
		defer s.yield.Unlock()
		if !s.yield.closed {
			s.yield.again = s.clock().AfterFunc(s.hold, s.sweep)
		}
		return
	}
	defer s.mu.Unlock()
	s.timer = nil
	if s.closed {
		return
	}
	now := s.clock().Now()
	gone := map[string]bool{}
	for k, tb := range s.tombs {
		if now.Sub(tb.since) >= s.hold {
			gone[k] = true
		}
	}
	if len(gone) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), sweepBound)
		defer cancel()
		s.yield.Lock()
		busy := s.yield.callers > 0
		if !busy {
			s.yield.sweepStop = cancel
		}
		s.yield.Unlock()
		if !busy {
			// a failed bundle (the switch refused it, or it was killed;
			// a rule update of the caller fails alike and says so)
			// keeps them in the record: the next sweep tries again
			c, err := s.applyLocked(ctx, s.asked, keyed(s.asked), nil, gone)
			s.yield.Lock()
			s.yield.sweepStop = nil
			s.yield.Unlock()
			// stopped by a caller: not a failure (a bundle that
			// succeeded before the stop is a success all the same)
			if err == nil || !errors.Is(ctx.Err(), context.Canceled) {
				s.sweptLocked(len(gone), c, err)
			}
		}
	}
	s.armLocked()
}

// Close stops the delayed delete, its bundle in flight and its next try
// (the tombstones stay on the bridge: a Reset, or the bridge's deletion,
// removes them). Apply still works (through ovs-ofctl: the OpenFlow
// connection is closed for good).
func (s *Switch) Close() {
	defer s.callerIn()() // a delayed delete's bundle in flight stops
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.close()
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.yield.Lock()
	defer s.yield.Unlock()
	s.yield.closed = true
	if s.yield.again != nil {
		s.yield.again.Stop()
	}
}

// Tombstones returns how many ended entry rules wait for their delayed
// delete.
func (s *Switch) Tombstones() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tombs)
}

func (s *Switch) clock() clock.Clock {
	if s.clk == nil {
		return clock.Real{}
	}
	return s.clk
}
