package local

import (
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// crashLoop is one VNF's crash-loop backoff state (Config.CrashBackoff).
type crashLoop struct {
	failures int         // quick failures in a row
	last     time.Time   // the last failure counted
	until    time.Time   // launches of the VNF wait until then
	why      string      // the last failure: instance and reason
	timer    clock.Timer // launches the owed replacements at until
}

// Backoff is a VNF's crash-loop backoff as the API and the metrics show
// it (Controller.Backoffs).
type Backoff struct {
	VNF string `json:"vnf"`
	// Failures is the number of quick failures in a row (an instance that
	// failed before it had been active for CrashBackoff.Reset).
	Failures int `json:"failures"`
	// Until is when launches of the VNF may start again (zero or past: not
	// holding back).
	Until time.Time `json:"until"`
	// LastFailure names the last failed instance and why it failed.
	LastFailure string `json:"lastFailure"`
	// Owed is the number of replacements not launched yet.
	Owed int `json:"owed"`
}

// Holding reports whether launches are held back at now.
func (b Backoff) Holding(now time.Time) bool { return now.Before(b.Until) }

// String is the one-line state: "launches held back until T after N
// failure(s) in a row, the last ID (why)" or "N failure(s) in a row, …".
func (b Backoff) String() string {
	s := fmt.Sprintf("%d failure(s) in a row, the last %s", b.Failures, b.LastFailure)
	if !b.Until.IsZero() {
		s = fmt.Sprintf("launches held back until %s after %s", b.Until.UTC().Format(time.RFC3339), s)
	}
	return s
}

// crashLocked counts the failure of the working instance in (why) in its
// VNF's crash loop and, from the second quick failure in a row on, holds
// the VNF's launches back (recorded as a backoff action: the replacement
// decision, deferred).
func (c *Controller) crashLocked(vs *vnfState, in *inst, why string) {
	cb := c.cfg.CrashBackoff
	if cb.Off() {
		return
	}
	now := c.clk.Now()
	cl := &vs.crash
	if in.activeSince.IsZero() || now.Sub(in.activeSince) < cb.Reset {
		cl.failures++
	} else {
		cl.failures = 1 // it had been stable: a new series starts
	}
	cl.last, cl.why = now, fmt.Sprintf("%s (%s)", in.ID, why)
	d := cb.Delay(cl.failures)
	if d <= 0 {
		return
	}
	if until := now.Add(d); until.After(cl.until) {
		cl.until = until
		if cl.timer != nil {
			cl.timer.Stop()
		}
		cl.timer = c.clk.AfterFunc(d, func() { c.onCrashTimer(vs) })
	}
	c.record(vs.cfg.Name, KindBackoff, ReasonReplacement, in.ID,
		fmt.Sprintf("replacement of %s held back %v, until %s: %d quick failures in a row (crash-loop backoff; the last: %s)",
			in.ID, cl.until.Sub(now), cl.until.UTC().Format(time.RFC3339), cl.failures, why))
}

// onCrashTimer launches what the backoff held back, at its end.
func (c *Controller) onCrashTimer(vs *vnfState) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	vs.crash.timer = nil
	var ops []op
	if !(c.paused && vs.deficitReason == ReasonReactive) {
		ops = c.fillLocked(vs, vs.deficitReason, vs.deficitDetail)
	}
	c.mu.Unlock()
	c.exec(ops)
}

// crashResetLocked ends a crash loop (the tick): when the backoff is over,
// no replacement is owed and every instance put in as a replacement since
// the last quick failure has been active for Reset (with none, Reset after
// that failure).
func (c *Controller) crashResetLocked(vs *vnfState) {
	cl := &vs.crash
	now := c.clk.Now()
	reset := c.cfg.CrashBackoff.Reset
	if cl.failures == 0 || now.Before(cl.until) || len(vs.owed) > 0 || now.Sub(cl.last) < reset {
		return
	}
	for _, in := range c.insts {
		if in.VNF != vs.cfg.Name || !working(in.State) || in.terminating || in.replacedAt.Before(cl.last) {
			continue
		}
		if in.CloudState != drivers.StateActive || in.activeSince.IsZero() || now.Sub(later(in.activeSince, in.replacedAt)) < reset {
			return
		}
	}
	if cl.failures > 1 { // a backoff was in force: say it ended
		c.record(vs.cfg.Name, KindBackoff, ReasonReplacement, "",
			fmt.Sprintf("crash loop over after %d quick failures in a row: the replacements have been up for %v", cl.failures, reset))
	}
	*cl = crashLoop{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// payOwedLocked takes the oldest failed instance still owed a replacement
// ("" if none).
func (c *Controller) payOwedLocked(vs *vnfState) string {
	if len(vs.owed) == 0 {
		return ""
	}
	id := vs.owed[0]
	vs.owed = vs.owed[1:]
	return id
}

// backoffLocked is vs's crash-loop state, ok false when it has none.
func (c *Controller) backoffLocked(vs *vnfState) (Backoff, bool) {
	cl := vs.crash
	if cl.failures == 0 {
		return Backoff{}, false
	}
	b := Backoff{VNF: vs.cfg.Name, Failures: cl.failures, LastFailure: cl.why, Owed: len(vs.owed)}
	if c.clk.Now().Before(cl.until) {
		b.Until = cl.until
	}
	return b, true
}

// Backoffs returns the VNFs in a crash loop (at least one quick failure
// not yet reset), in configuration order.
func (c *Controller) Backoffs() []Backoff {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Backoff
	for _, name := range c.order {
		if b, ok := c.backoffLocked(c.vnfs[name]); ok {
			out = append(out, b)
		}
	}
	return out
}
