package local

import "fmt"

// Scale changes a VNF's working count by delta on an operator's request, in
// the spirit of ETSI SOL003 ScaleVnf: scaling out reuses instances from the
// buffer tail first and launches the rest; scaling in moves the least-loaded
// working instances to the buffer tail (their flows keep running, they get
// no new ones). The result stays within [Min, Max]; the next proactive round
// may change it again (its plan sees the new provisioning). Every action is
// recorded with reason "manual". It returns the new target.
func (c *Controller) Scale(vnf string, delta int, detail string) (int, error) {
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
	detail = fmt.Sprintf("%s: %d → %d working", detail, w, want)
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
