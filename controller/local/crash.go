package local

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// Crash-loop backoff (Config.CrashBackoff), per slot as Kubernetes restarts
// a container: a working instance that fails leaves a slot its replacement
// fills. The failure is quick when the instance had not been active for
// Reset; then the slot's count of quick failures in a row grows by one
// (inst.crashes: those of the instances the failed one replaced), else it
// starts at 1. With n quick failures in a row the replacement waits
// Delay(n). Failures of different instances at once (a host, a switch) are
// different slots: each is replaced at once.

// owed is a failed working instance whose replacement is still to come.
type owed struct {
	failed string      // the failed instance (Spec.Replaces of the replacement)
	why    string      // why it failed
	n      int         // quick failures in a row in its slot, its own included
	until  time.Time   // the replacement waits until then (zero: not held)
	timer  clock.Timer // launches it at until
}

// Backoff is a VNF's crash loop as the API and the metrics show it
// (Controller.Backoffs): its slots with 2 or more quick failures in a row.
type Backoff struct {
	VNF string `json:"vnf"`
	// Failures is the longest row of quick failures of one slot (instances
	// that failed before they had been active for CrashBackoff.Reset).
	Failures int `json:"failures"`
	// Until is when the last held-back replacement may launch (zero: none
	// held back now).
	Until time.Time `json:"until"`
	// LastFailure names the last failed instance of the loop and why.
	LastFailure string `json:"lastFailure"`
	// Owed is the number of replacements not launched yet (held back or
	// not).
	Owed int `json:"owed"`
}

// Holding reports whether a replacement is held back at now.
func (b Backoff) Holding(now time.Time) bool { return now.Before(b.Until) }

// String is the one-line state: "replacements held back until T after N
// failure(s) in a row, the last ID (why)" or "N failure(s) in a row, …".
func (b Backoff) String() string {
	s := fmt.Sprintf("%d failure(s) in a row, the last %s", b.Failures, b.LastFailure)
	if !b.Until.IsZero() {
		s = fmt.Sprintf("replacements held back until %s after %s", b.Until.UTC().Format(time.RFC3339), s)
	}
	return s
}

// oweLocked records that the working instance in failed (why) and is owed
// a replacement; from the second quick failure in a row of its slot on the
// replacement is held back (a backoff action: the replacement decision,
// deferred) and a timer launches it at the backoff's end.
func (c *Controller) oweLocked(vs *vnfState, in *inst, why string) {
	now := c.clk.Now()
	cb := c.cfg.CrashBackoff
	o := owed{failed: in.ID, why: why, n: 1}
	if !cb.Off() && (in.activeSince.IsZero() || now.Sub(in.activeSince) < cb.Reset) {
		o.n = in.crashes + 1
	}
	if o.n > 1 {
		vs.lastCrash = fmt.Sprintf("%s (%s)", in.ID, why)
	}
	if d := cb.Delay(o.n); d > 0 {
		o.until = now.Add(d)
		o.timer = c.clk.AfterFunc(d, func() { c.onCrashTimer(vs) })
		c.record(vs.cfg.Name, KindBackoff, ReasonReplacement, in.ID,
			fmt.Sprintf("replacement of %s held back %v, until %s: %d quick failures in a row (crash-loop backoff; the last: %s)",
				in.ID, d, o.until.UTC().Format(time.RFC3339), o.n, why))
	}
	vs.owed = append(vs.owed, o)
}

// heldLocked counts the owed replacements still held back.
func (c *Controller) heldLocked(vs *vnfState) int {
	n, now := 0, c.clk.Now()
	for _, o := range vs.owed {
		if now.Before(o.until) {
			n++
		}
	}
	return n
}

// payOwedLocked takes the oldest owed replacement that may launch now (a
// reuse, reused true, may take a held-back one too, those first), ok false
// if there is none.
func (c *Controller) payOwedLocked(vs *vnfState, reuse bool) (o owed, ok bool) {
	now := c.clk.Now()
	pick := -1
	for i, x := range vs.owed {
		held := now.Before(x.until)
		if held && reuse {
			pick = i
			break
		}
		if !held && pick < 0 {
			pick = i
			if !reuse {
				break
			}
		}
	}
	if pick < 0 {
		return owed{}, false
	}
	o = vs.owed[pick]
	vs.owed = append(vs.owed[:pick:pick], vs.owed[pick+1:]...)
	if o.timer != nil && now.Before(o.until) {
		o.timer.Stop()
	}
	return o, true
}

// onCrashTimer launches what a backoff held back, at its end.
func (c *Controller) onCrashTimer(vs *vnfState) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	var ops []op
	if !(c.paused && vs.deficitReason == ReasonReactive) {
		ops = c.fillLocked(vs, vs.deficitReason, vs.deficitDetail)
	}
	c.mu.Unlock()
	c.exec(ops)
}

// crashResetLocked ends the crash loop of each slot whose instance has been
// active for Reset (the tick); a backoff action says so when the slot had
// been held back.
func (c *Controller) crashResetLocked() {
	now, reset := c.clk.Now(), c.cfg.CrashBackoff.Reset
	// by ID: loops that end on one tick are recorded in the same order every run
	for _, id := range slices.Sorted(maps.Keys(c.insts)) {
		in := c.insts[id]
		if in.crashes == 0 || !working(in.State) || in.CloudState != drivers.StateActive || in.activeSince.IsZero() ||
			now.Sub(later(in.activeSince, in.replacedAt)) < reset {
			continue
		}
		if in.crashes > 1 {
			c.record(in.VNF, KindBackoff, ReasonReplacement, "",
				fmt.Sprintf("crash loop over after %d quick failures in a row: %s has been up for %v", in.crashes, in.ID, reset))
		}
		in.crashes = 0
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// crashesLocked is, per VNF, the most quick failures in a row of one of its
// working instances: one pass over the registry for every VNF (a caller
// that visits every VNF does not scan the registry once per VNF).
func (c *Controller) crashesLocked() map[string]int {
	var m map[string]int
	for _, in := range c.insts {
		if in.crashes > 0 && working(in.State) {
			if m == nil {
				m = map[string]int{}
			}
			m[in.VNF] = max(m[in.VNF], in.crashes)
		}
	}
	return m
}

// backoffWith is vs's crash loop, ok false when no slot has 2 or more
// quick failures in a row; crashes is crashesLocked's value for vs.
func (c *Controller) backoffWith(vs *vnfState, crashes int) (Backoff, bool) {
	b := Backoff{VNF: vs.cfg.Name, Owed: len(vs.owed), Failures: crashes}
	now := c.clk.Now()
	for _, o := range vs.owed {
		b.Failures = max(b.Failures, o.n)
		if now.Before(o.until) && o.until.After(b.Until) {
			b.Until = o.until
		}
	}
	if b.Failures < 2 {
		return Backoff{}, false
	}
	b.LastFailure = vs.lastCrash
	return b, true
}

// Backoffs returns the VNFs in a crash loop (a slot with 2 or more quick
// failures in a row, not yet reset), in configuration order.
func (c *Controller) Backoffs() []Backoff {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Backoff
	crashes := c.crashesLocked()
	for _, name := range c.order {
		if b, ok := c.backoffWith(c.vnfs[name], crashes[name]); ok {
			out = append(out, b)
		}
	}
	return out
}
