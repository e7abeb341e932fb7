package local

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/instbound"
	"github.com/ims-orch/ims-orch/controller/local/bufferq"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
)

// MaxWorking bounds the working instances of any VNF (instbound.Sanity), so
// that a corrupt decision cannot make the controller register millions of
// instances; VNFConfig.Bound lowers it (a data-plane stage: what the routing
// table can address).
const MaxWorking = instbound.Sanity

// Handle answers one request of the interval protocol (paper 4.2, Fig. 3):
//
//   - StepAcquire: pause reactive scaling, report the provisioning.
//   - StepBroadcast: apply the DCDecision (per VNF: reach the target working
//     count by reusing from the buffer tail, then launching; or move the
//     least-loaded excess instances to the buffer tail) and store the next
//     path set. Launch failures (quota...) are reported in Created/Error and
//     never stop the other VNFs.
//   - StepEnter: set the interval to Round+1, switch path sets, expire the
//     buffer heads older than Tau (destroyed once idle), resume reactive
//     scaling.
//
// A repeated header (Round, Step, Seq) gets the stored response and nothing
// is done twice; a request of an older round is answered (with its stored
// response if it is still kept, else an error) and ignored.
func (c *Controller) Handle(req protocol.Request) protocol.Response {
	c.handleMu.Lock()
	defer c.handleMu.Unlock()
	hdr := req.Header
	resp := protocol.Response{Header: hdr}
	resp.DC = c.cfg.DC
	key := hdrKey{hdr.Round, hdr.Step, hdr.Seq}
	var quota map[string]int
	if hdr.Step == protocol.StepAcquire {
		c.mu.Lock()
		_, answered := c.responses[key] // a retried request: its kept answer, no cloud call
		c.mu.Unlock()
		if !answered {
			quota = c.quotaLeft() // a cloud call: before c.mu (handleMu keeps responses[key] as seen)
		}
	}

	c.mu.Lock()
	if r, ok := c.responses[key]; ok {
		c.mu.Unlock()
		return r
	}
	if hdr.DC != "" && hdr.DC != c.cfg.DC {
		c.mu.Unlock()
		resp.Error = fmt.Sprintf("header dc %q: this is %q", hdr.DC, c.cfg.DC)
		return resp
	}
	if c.haveRound && hdr.Round < c.lastRound {
		c.mu.Unlock()
		resp.Error = fmt.Sprintf("stale round %d: current round is %d; ignored", hdr.Round, c.lastRound)
		return resp
	}
	if why := c.closedLocked(req); why != "" {
		c.mu.Unlock()
		resp.Error = why
		c.log.Warn("protocol request dropped", "round", hdr.Round, "step", hdr.Step.String(), "why", why)
		return resp
	}
	if !c.haveRound || hdr.Round > c.lastRound {
		c.haveRound, c.lastRound = true, hdr.Round
		for k := range c.responses {
			if k.round+1 < hdr.Round {
				delete(c.responses, k)
			}
		}
	}
	if (hdr.Step == protocol.StepAcquire || hdr.Step == protocol.StepBroadcast) && hdr.Round > c.interval {
		// The round closes interval Round: catch up after a restart so that
		// buffer tags and expiry use the global controller's numbering.
		c.interval = hdr.Round
	}
	var ops []op
	switch hdr.Step {
	case protocol.StepAcquire:
		c.paused, c.pausedAt = true, c.clk.Now()
		c.acquiredLocked(hdr.Round, c.pausedAt)
		c.log.Info("proactive round: acquire; reactive scaling paused", "round", hdr.Round)
		resp.Provision = c.provisionLocked(quota)
	case protocol.StepBroadcast:
		var errs []string
		ops, resp.Reused, errs = c.applyLocked(hdr, req.Decision)
		if len(errs) > 0 {
			resp.Error = strings.Join(errs, "; ")
		}
	case protocol.StepEnter:
		ops = c.enterLocked(hdr.Round + 1)
	default:
		resp.Error = fmt.Sprintf("step %d (%s): not handled by a local controller", hdr.Step, hdr.Step)
	}
	c.mu.Unlock()

	created, errs := c.exec(ops)
	if hdr.Step == protocol.StepBroadcast {
		c.logApplied(hdr, req.Decision, ops, resp.Reused, resp.Error)
		resp.Created = created
		for _, err := range errs {
			if resp.Error != "" {
				resp.Error += "; "
			}
			resp.Error += err.Error()
		}
	}
	c.mu.Lock()
	c.responses[key] = resp
	c.mu.Unlock()
	return resp
}

// provisionLocked is the acquire step's report; quota is the driver's
// answer of quotaLeft (nil: unknown).
func (c *Controller) provisionLocked(quota map[string]int) *protocol.ProvisionReport {
	rep := &protocol.ProvisionReport{DC: c.cfg.DC, Features: []string{protocol.FeatureKeepBuffered}}
	if c.cfg.Reactive && !c.cfg.NoRise.Off {
		rep.Features = append(rep.Features, protocol.FeatureNoRise)
	}
	for _, name := range c.order {
		n := c.countsLocked(name)
		v := protocol.VNFProvision{
			VNF: name, Working: n.Normal + n.Overload, Overloaded: n.Overload, Booting: n.Booting, Buffered: n.Buffered,
		}
		if q, ok := quota[name]; ok {
			v.QuotaLeft = new(q)
		}
		rep.VNFs = append(rep.VNFs, v)
	}
	return rep
}

// quotaTimeout bounds the quota question of an acquire step (at most
// Config.DriverTimeout): the global controller waits for the report.
const quotaTimeout = 5 * time.Second

// quotaLeft asks the driver, when it has the drivers.QuotaReporter
// capability, how many more instances of each VNF the cloud's quota allows
// here (negative: no limit). It returns nil when the driver cannot tell or
// the question fails (logged): the report then says nothing of the quota.
// It makes a cloud call, so the caller must not hold c.mu.
func (c *Controller) quotaLeft() map[string]int {
	qr, ok := c.drv.(drivers.QuotaReporter)
	if !ok {
		return nil
	}
	c.mu.Lock()
	specs := make([]drivers.Spec, 0, len(c.order))
	for _, name := range c.order {
		vs := c.vnfs[name]
		specs = append(specs, drivers.Spec{DC: c.cfg.DC, VNF: name, Image: vs.cfg.Image, Flavor: vs.cfg.Flavor})
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), min(quotaTimeout, c.cfg.DriverTimeout))
	defer cancel()
	left, err := qr.QuotaLeft(ctx, c.cfg.DC, specs)
	if err == nil && len(left) != len(specs) {
		err = fmt.Errorf("%d answers for %d VNFs", len(left), len(specs))
	}
	if err != nil {
		c.log.Warn("cloud quota unknown: not reported this round", "err", err)
		return nil
	}
	out := make(map[string]int, len(specs))
	for i, sp := range specs {
		out[sp.VNF] = max(left[i], drivers.Unlimited)
	}
	return out
}

// applyLocked applies step 4's decision. It returns the launch ops, the
// number of instances reused from the buffer and the problems met.
func (c *Controller) applyLocked(hdr protocol.Header, d *protocol.DCDecision) (ops []op, reused int, errs []string) {
	if d == nil {
		return nil, 0, []string{"decision: missing in a broadcast request"}
	}
	if d.DC != c.cfg.DC {
		return nil, 0, []string{fmt.Sprintf("decision.dc %q: this is %q", d.DC, c.cfg.DC)}
	}
	if d.Interval != hdr.Round+1 {
		return nil, 0, []string{fmt.Sprintf("decision.interval %d: want round+1 = %d", d.Interval, hdr.Round+1)}
	}
	c.draining = d.Drain
	errs = append(errs, c.limitsLocked(d.Limits)...)
	for _, vs := range c.vnfs {
		// the rise flags are the round's: a VNF the decision does not name
		// keeps none of the last round's (revH L3)
		vs.dropRise()
	}
	seen := map[string]bool{}
	for i, t := range d.Targets {
		vs, ok := c.vnfs[t.VNF]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("decision.targets[%d].vnf %q: not hosted here", i, t.VNF))
			continue
		case seen[t.VNF]:
			errs = append(errs, fmt.Sprintf("decision.targets[%d].vnf %q: duplicate", i, t.VNF))
			continue
		case t.Working < 0:
			errs = append(errs, fmt.Sprintf("decision.targets[%d].working %d: negative", i, t.Working))
			continue
		case t.KeepBuffered < 0:
			errs = append(errs, fmt.Sprintf("decision.targets[%d].keepBuffered %d: negative", i, t.KeepBuffered))
			continue
		case t.Working > boundOf(vs.cfg):
			errs = append(errs, fmt.Sprintf("decision.targets[%d].working %d: refused, above the bound %d of working %s instances in one datacenter (instbound)", i, t.Working, boundOf(vs.cfg), t.VNF))
			continue
		}
		seen[t.VNF] = true
		vs.keep, vs.keepFor = t.KeepBuffered, d.Interval
		vs.noRise, vs.fast, vs.flagsAt = t.NoRise, t.Fast, c.clk.Now()
		want := t.Working
		detail := fmt.Sprintf("round %d target %d", hdr.Round, t.Working)
		if t.Reason != "" {
			detail += " (" + t.Reason + ")"
		}
		if vs.cfg.Max > 0 && want > vs.cfg.Max {
			errs = append(errs, fmt.Sprintf("%s: target %d capped at max %d", t.VNF, want, vs.cfg.Max))
			want = vs.cfg.Max
		}
		if m := c.minLocked(vs); want < m {
			detail += fmt.Sprintf(", kept at min %d", m)
			want = m
		}
		if c.draining {
			detail += ", datacenter draining"
		} else {
			var why string
			want, why = c.applyHoldLocked(vs, want, detail)
			detail += why
		}
		w := c.countsLocked(t.VNF).Working()
		want = c.deferLocked(vs, want, w)
		vs.target, vs.deferredFor = want, d.Interval
		if want > w {
			vs.raised, vs.raisedFor = want, d.Interval // the falling scale-in's step to one does not undo it
		}
		switch {
		case want > w:
			before := vs.buf.Len()
			ops = append(ops, c.fillLocked(vs, ReasonProactive, detail)...)
			reused += before - vs.buf.Len()
		case want < w:
			if c.cfg.ScaleInGuard && !c.draining {
				if need := c.loadNeedLocked(vs); need > want {
					keep := min(need, w)
					if h := c.holdLocked(vs); h != nil && h.Ceiling > 0 {
						keep = min(keep, max(want, h.Ceiling))
					}
					detail += fmt.Sprintf(", scale-in guard keeps %d (measured load needs %d)", keep, need)
					want = keep
				}
			}
			if want < w {
				c.bufferLocked(vs, w-want, ReasonProactive, detail)
			}
		}
	}
	c.cfg.Paths.StoreNext(d.Interval, slices.Clone(d.Paths))
	return ops, reused, errs
}

// limitsLocked applies a decision's instance limits: a VNF named in ls gets
// its Min and Max, the others their configured ones. An invalid limit is
// reported and skipped.
func (c *Controller) limitsLocked(ls []protocol.VNFLimit) (errs []string) {
	set := map[string]protocol.VNFLimit{}
	for i, l := range ls {
		switch _, ok := c.vnfs[l.VNF]; {
		case !ok:
			continue // a limit for a VNF this DC does not host
		case l.Min < 0 || l.Max < 0:
			errs = append(errs, fmt.Sprintf("decision.limits[%d] %s: negative min %d or max %d", i, l.VNF, l.Min, l.Max))
		case l.Max > 0 && l.Min > l.Max:
			errs = append(errs, fmt.Sprintf("decision.limits[%d] %s: min %d above max %d", i, l.VNF, l.Min, l.Max))
		case l.Min > boundOf(c.vnfs[l.VNF].base) || l.Max > boundOf(c.vnfs[l.VNF].base):
			errs = append(errs, fmt.Sprintf("decision.limits[%d] %s: refused, min %d or max %d above the bound %d of working instances in one datacenter (instbound)",
				i, l.VNF, l.Min, l.Max, boundOf(c.vnfs[l.VNF].base)))
		default:
			set[l.VNF] = l
		}
	}
	for _, name := range c.order {
		vs := c.vnfs[name]
		mn, mx := vs.base.Min, vs.base.Max
		if l, ok := set[name]; ok {
			mn, mx = l.Min, l.Max
		}
		if mn != vs.cfg.Min || mx != vs.cfg.Max {
			c.log.Info("instance limits changed", "vnf", name, "min", mn, "max", mx, "was_min", vs.cfg.Min, "was_max", vs.cfg.Max)
			vs.cfg.Min, vs.cfg.Max = mn, mx
		}
	}
	return errs
}

// loadNeedLocked is how many working instances the VNF's measured load
// needs: ⌈Σ load / threshold⌉ over the last samples of its active
// working instances (Config.ScaleInGuard; vnfState.load and
// loadThreshold: a DP stage's carried share, in percent of an instance's
// capacity, against its LoadThreshold, else CPU against the CPU
// threshold).
func (c *Controller) loadNeedLocked(vs *vnfState) int {
	sum := c.workingLoadLocked(vs)
	if sum <= 0 {
		return 0
	}
	return int(math.Ceil(sum/c.guardThreshold(vs) - 1e-9))
}

// loadSumLocked is Σ load (vnfState.load) over the last samples of the
// VNF's instances that keep accepts, added in a fixed order (fixedSum: the
// same samples give the same bits whatever the registry map's order; a
// comparison with a bar or a past sum must not flip by an ulp).
func (c *Controller) loadSumLocked(vs *vnfState, keep func(*inst) bool) float64 {
	var xs []float64
	for _, in := range c.insts {
		if in.VNF == vs.cfg.Name && keep(in) {
			xs = append(xs, vs.load(in.Last))
		}
	}
	return fixedSum(xs)
}

// isWorkingActive: an active working instance (normal or overloaded, not
// terminating), whose samples are the VNF's measured load.
func isWorkingActive(in *inst) bool {
	return (in.State == StateNormal || in.State == StateOverload) && in.CloudState == drivers.StateActive && !in.terminating
}

// workingLoadLocked is Σ load over the last samples of the VNF's active
// working instances: its measured load in this datacenter.
func (c *Controller) workingLoadLocked(vs *vnfState) float64 {
	return c.loadSumLocked(vs, isWorkingActive)
}

// totalLoadLocked is Σ load over the last samples of all the VNF's active
// instances, buffered and draining ones included (they carry pinned
// flows): its total load in this datacenter, which a change of the working
// set does not move (trend.go). joined is the part of it from instances
// whose sample counts for the first time (inst.counted; called once per
// tick, by recordLoadLocked).
func (c *Controller) totalLoadLocked(vs *vnfState) (total, joined float64) {
	var first []float64
	total = c.loadSumLocked(vs, func(in *inst) bool {
		if in.State == StateBooting || in.State == StateFailed || in.CloudState != drivers.StateActive {
			in.counted = false
			return false
		}
		if !in.counted && !in.Last.At.IsZero() {
			in.counted = true
			first = append(first, vs.load(in.Last))
		}
		return true
	})
	return total, fixedSum(first)
}

// bufferLocked moves the k least-loaded working instances to the buffer
// tail: booting ones first (they carry nothing yet), then by flows, packet
// rate, CPU and ID. Their flows keep running; they get no new ones.
func (c *Controller) bufferLocked(vs *vnfState, k int, reason Reason, detail string) {
	var cand []*inst
	for _, in := range c.insts {
		if in.VNF == vs.cfg.Name && working(in.State) && !in.terminating {
			cand = append(cand, in)
		}
	}
	slices.SortFunc(cand, func(a, b *inst) int {
		ab, bb := a.State == StateBooting, b.State == StateBooting
		switch {
		case ab != bb:
			if ab {
				return -1
			}
			return 1
		case a.Last.Flows != b.Last.Flows:
			return a.Last.Flows - b.Last.Flows
		case a.Last.PktRate != b.Last.PktRate:
			if a.Last.PktRate < b.Last.PktRate {
				return -1
			}
			return 1
		case a.Last.CPU != b.Last.CPU:
			if a.Last.CPU < b.Last.CPU {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, in := range cand[:min(k, len(cand))] {
		in.State = StateBuffered
		in.BufferedIn, in.bufferedAt, in.underload = c.interval, c.clk.Now(), reason == ReasonUnderload
		vs.buf.PushTail(in.ID, c.interval)
		c.record(vs.cfg.Name, KindBuffer, reason, in.ID,
			fmt.Sprintf("%s; to buffer tail with %d active flows", detail, in.Last.Flows))
	}
	c.syncSinkLocked(vs)
}

// trimHeldLocked: TrimBuffer leaves the VNF's buffer as it is at this
// enter while its total load in the DC is rising (risingLocked, TrimEmpty's
// rise rule) and its working instances are busy (busyLocked, TrimEmpty's
// busy rule); τ still applies, and the next enter looks again. A trimmed
// instance drains and is destroyed, and the reactive or anticipated
// scale-out the rise then asks for is a 30 s boot where the buffer tail
// was a reuse without one: measured on seed-3 daily-audio, the Tokyo IDS
// at 1 965 s (trimmed on a rise at 1.83 of an instance on two working
// ones, a launch the next second, 14 000 packets lost at 1 990 s before it
// was active) once the reactive bar is 0.99 (docs/reproduction.md
// "Session 11: reactive bar 0.99 and the held trim"). Rising and busy
// both: on a flat load, or a rise the working instances have room for, the
// trim goes on (the steady-state IDS of the simultaneous experiments
// would keep its buffered second instance on every noise rise). Only a VNF
// with PinnedFlows (a DP stage) is held: a CP VNF's buffered instance has
// no pinned calls to keep, and the reason above is the data plane's.
func (c *Controller) trimHeldLocked(vs *vnfState) bool {
	return vs.cfg.PinnedFlows && c.risingLocked(vs) && c.busyLocked(vs)
}

// enterLocked handles step 5.
func (c *Controller) enterLocked(next uint64) []op {
	var ops []op
	if next > c.interval {
		c.interval = next
		c.cfg.Paths.Enter(next)
		for _, name := range c.order {
			vs := c.vnfs[name]
			// PopDue, not a head pop that stops at the first young
			// entry: an entry of the falling scale-in, tagged the next
			// interval (fallscale.go), may sit ahead of a later one tagged
			// this interval, which must not wait behind it; with
			// non-decreasing tags the two agree
			// the round's hold (roundKeepLocked) outlasts τ too
			expired := vs.buf.PopDue(max(0, vs.buf.Len()-c.roundKeepLocked(vs)), func(e bufferq.Entry) bool {
				return e.Interval <= next && next-e.Interval >= c.cfg.Tau
			})
			trimmed := len(expired)
			// trimming takes the oldest that have had a whole interval in
			// the buffer (reactive scale-out could reuse them without a
			// boot), unless the load is rising onto busy working instances
			// (trimHeldLocked; checked only when the buffer holds more
			// than the spare, like trimEmptyLocked, to skip its scans)
			if c.cfg.TrimBuffer && vs.buf.Len() > c.keepLocked(vs) && !c.trimHeldLocked(vs) {
				expired = append(expired, vs.buf.PopDue(vs.buf.Len()-c.keepLocked(vs), func(e bufferq.Entry) bool {
					return e.Interval+2 <= next
				})...)
			}
			for i, e := range expired {
				in := c.insts[e.ID]
				if in == nil {
					continue
				}
				in.State = StateDraining
				in.drainSince = c.clk.Now()
				detail := fmt.Sprintf("buffered in interval %d, τ=%d reached", e.Interval, c.cfg.Tau)
				if i >= trimmed {
					detail = fmt.Sprintf("buffered in interval %d, beyond the %d spare buffered instances the plan's forecast leaves (buffer trimmed)", e.Interval, c.keepLocked(vs))
					if c.roundKeepLocked(vs) > c.spare() {
						detail = fmt.Sprintf("buffered in interval %d, beyond the %d buffered instances the round's hold keeps (buffer trimmed)", e.Interval, c.keepLocked(vs))
					}
				}
				if (in.Last.Flows == 0 && !in.Last.FlowsUnknown) || in.CloudState != drivers.StateActive {
					ops = append(ops, c.destroyLocked(in, detail)...)
				} else {
					c.log.Info("buffer head expired; draining", "vnf", name, "instance", in.ID, "flows", in.Last.Flows)
				}
			}
		}
	}
	c.paused = false
	c.log.Info("proactive round: enter interval; reactive scaling resumed", "interval", c.interval)
	for _, name := range c.order {
		ops = append(ops, c.reactiveLocked(c.vnfs[name])...)
	}
	return ops
}
