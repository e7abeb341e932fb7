package local

import (
	"fmt"
	"time"
)

// Hold is an operator's standing bound on a VNF's working instances, set by
// a manual scale (Scale, ScaleHold): scaling out sets a floor, scaling in a
// ceiling, at the new working count. Later proactive rounds honour it (a
// round target below the floor is raised to it, one above the ceiling is
// lowered to it, and reactive scale-out stops at the ceiling) until the
// operator releases it (Release) or Until passes (zero: no expiry).
type Hold struct {
	Floor   int       `json:"floor,omitempty"`   // at least this many working (0: none)
	Ceiling int       `json:"ceiling,omitempty"` // at most this many working (0: none)
	Until   time.Time `json:"until,omitzero"`    // expiry (zero: until released)
	Detail  string    `json:"detail,omitempty"`  // the request that set it
}

// Scale changes a VNF's working count by delta on an operator's request, in
// the spirit of ETSI SOL003 ScaleVnf, and keeps it there: see ScaleHold with
// no expiry.
func (c *Controller) Scale(vnf string, delta int, detail string) (int, error) {
	return c.ScaleHold(vnf, delta, detail, time.Time{})
}

// ScaleHold changes a VNF's working count by delta on an operator's
// request: scaling out reuses instances from the buffer tail first and
// launches the rest; scaling in moves the least-loaded working instances to
// the buffer tail (their flows keep running, they get no new ones). The
// result stays within [Min, Max]. The new count becomes a Hold (a floor
// when scaling out, a ceiling when scaling in; delta 0 holds the current
// count both ways) that later rounds honour until Release or until (zero:
// no expiry). Every action is recorded with reason "manual". It returns the
// new target.
func (c *Controller) ScaleHold(vnf string, delta int, detail string, until time.Time) (int, error) {
	c.mu.Lock()
	vs := c.vnfs[vnf]
	if vs == nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("local: scale %s in %s: not a VNF of this datacenter", vnf, c.cfg.DC)
	}
	if c.stopped {
		c.mu.Unlock()
		return 0, fmt.Errorf("local: scale %s in %s: controller stopped", vnf, c.cfg.DC)
	}
	if !until.IsZero() && !until.After(c.clk.Now()) {
		c.mu.Unlock()
		return 0, fmt.Errorf("local: scale %s in %s: hold expiry %s is not in the future", vnf, c.cfg.DC, until.Format(time.RFC3339))
	}
	w := c.countsLocked(vnf).Working()
	if c.draining && delta > 0 {
		c.mu.Unlock()
		return 0, fmt.Errorf("local: scale %s out in %s: the datacenter is being drained", vnf, c.cfg.DC)
	}
	want := max(c.minLocked(vs), w+delta)
	if vs.cfg.Max > 0 {
		want = min(want, vs.cfg.Max)
	}
	if b := boundOf(vs.cfg); want > b {
		c.mu.Unlock()
		return 0, fmt.Errorf("local: scale %s in %s: %d working instances is above the bound %d of one datacenter (instbound)", vnf, c.cfg.DC, want, b)
	}
	if detail == "" {
		detail = "operator request"
	}
	h := Hold{Until: until, Detail: detail}
	switch {
	case delta > 0:
		h.Floor = want
	case delta < 0:
		h.Ceiling = want
	default:
		h.Floor, h.Ceiling = want, want
	}
	vs.hold = &h
	detail = fmt.Sprintf("%s: %d → %d working; %s", detail, w, want, h.describe())
	vs.target = want
	var ops []op
	switch {
	case want > w:
		ops = c.fillLocked(vs, ReasonManual, detail)
	case want < w:
		c.bufferLocked(vs, w-want, ReasonManual, detail)
	}
	c.mu.Unlock()
	c.dispatch(ops)
	return want, nil
}

// ScaleFor is ScaleHold with the hold expiring holdFor from now on the
// controller's clock (0: until released).
func (c *Controller) ScaleFor(vnf string, delta int, detail string, holdFor time.Duration) (int, error) {
	if holdFor < 0 {
		return 0, fmt.Errorf("local: scale %s in %s: hold duration %v is negative", vnf, c.cfg.DC, holdFor)
	}
	var until time.Time
	if holdFor > 0 {
		until = c.clk.Now().Add(holdFor)
	}
	return c.ScaleHold(vnf, delta, detail, until)
}

// Release ends a VNF's manual hold; the next round's target applies again.
// It reports whether there was one.
func (c *Controller) Release(vnf, detail string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := c.vnfs[vnf]
	if vs == nil {
		return false, fmt.Errorf("local: release %s in %s: not a VNF of this datacenter", vnf, c.cfg.DC)
	}
	if c.holdLocked(vs) == nil {
		return false, nil
	}
	if detail == "" {
		detail = "operator request"
	}
	c.log.Info("manual hold released", "vnf", vnf, "hold", vs.hold.describe(), "by", detail)
	vs.hold = nil
	return true, nil
}

// Holds returns the VNFs' manual holds in force.
func (c *Controller) Holds() map[string]Hold {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Hold{}
	for _, name := range c.order {
		if h := c.holdLocked(c.vnfs[name]); h != nil {
			out[name] = *h
		}
	}
	return out
}

// holdLocked returns the VNF's hold in force, dropping an expired one.
func (c *Controller) holdLocked(vs *vnfState) *Hold {
	if vs.hold == nil {
		return nil
	}
	if !vs.hold.Until.IsZero() && !c.clk.Now().Before(vs.hold.Until) {
		c.log.Info("manual hold expired", "vnf", vs.cfg.Name, "hold", vs.hold.describe())
		vs.hold = nil
	}
	return vs.hold
}

// applyHoldLocked bounds a round's target by the VNF's hold, records a
// KindHold action when the hold changed it (so the decisions API shows why
// the round did not get its way), and says why.
func (c *Controller) applyHoldLocked(vs *vnfState, want int, detail string) (int, string) {
	h := c.holdLocked(vs)
	why := ""
	switch {
	case h == nil:
		return want, ""
	case h.Floor > 0 && want < h.Floor:
		why = fmt.Sprintf(", raised to the manual floor %d (%s; %s)", h.Floor, h.Detail, h.describe())
		want = h.Floor
	case h.Ceiling > 0 && want > h.Ceiling:
		why = fmt.Sprintf(", lowered to the manual ceiling %d (%s; %s)", h.Ceiling, h.Detail, h.describe())
		want = h.Ceiling
	default:
		return want, ""
	}
	c.record(vs.cfg.Name, KindHold, ReasonManual, "", detail+why)
	return want, why
}

func (h *Hold) describe() string {
	s := ""
	switch {
	case h.Floor > 0 && h.Floor == h.Ceiling:
		s = fmt.Sprintf("held at %d", h.Floor)
	case h.Floor > 0:
		s = fmt.Sprintf("floor %d", h.Floor)
	default:
		s = fmt.Sprintf("ceiling %d", h.Ceiling)
	}
	if h.Until.IsZero() {
		return s + " until released"
	}
	return s + " until " + h.Until.UTC().Format(time.RFC3339)
}
