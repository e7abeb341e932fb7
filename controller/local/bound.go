package local

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// DefaultLaunchBatch is Config.LaunchBatch's default.
const DefaultLaunchBatch = 32

// boundOf is the most working instances of a VNF here: its VNFConfig.Bound
// (instbound.PerDC of the topology, set by whoever builds the controller),
// at most the sanity limit MaxWorking.
func boundOf(v VNFConfig) int {
	if v.Bound > 0 && v.Bound < MaxWorking {
		return v.Bound
	}
	return MaxWorking
}

// launchRoomLocked is how many more launches of a VNF may start now: at most
// Config.LaunchBatch are in flight per VNF (as cluster-autoscaler bounds a
// scale-up), the rest of a shortfall is launched by the next ticks.
func (c *Controller) launchRoomLocked(vnf string) int {
	inFlight := 0
	for _, in := range c.insts {
		if in.VNF == vnf && in.launching {
			inFlight++
		}
	}
	return max(0, c.cfg.LaunchBatch-inFlight)
}

// logApplied logs one line per step-4 decision handled (not for a re-sent
// copy answered from the cache): the round, each VNF's target and the
// launches it started, the instances reused, and what was refused. The
// cluster chaos test (e2e/chaos) checks from these lines that no decision
// was applied twice.
func (c *Controller) logApplied(hdr protocol.Header, d *protocol.DCDecision, ops []op, reused int, refused string) {
	if d == nil {
		return
	}
	targets := make([]string, 0, len(d.Targets))
	for _, t := range d.Targets {
		targets = append(targets, fmt.Sprintf("%s=%d", t.VNF, t.Working))
	}
	launched := map[string]int{}
	for _, o := range ops {
		if o.kind == opLaunch {
			launched[o.spec.VNF]++
		}
	}
	ls := make([]string, 0, len(launched))
	for _, v := range slices.Sorted(maps.Keys(launched)) {
		ls = append(ls, fmt.Sprintf("%s=%d", v, launched[v]))
	}
	args := []any{"round", hdr.Round, "seq", hdr.Seq, "targets", strings.Join(targets, ","), "launched", strings.Join(ls, ","), "reused", reused}
	if refused != "" {
		c.log.Warn("proactive decision applied with refusals", append(args, "refused", refused)...)
		return
	}
	c.log.Info("proactive decision applied", args...)
}

// ExpirySkew is how far past a request's Expires (the global controller's
// clock) this controller still handles it: clocks of the nodes differ.
const ExpirySkew = 2 * time.Second

// closedLocked says why an acquire or broadcast request belongs to a round
// that has closed for this DC ("" when it does not): its round is older
// than the interval this controller already entered, or it expired (the
// global controller gave the DC up for the step; a request queued while
// this process was stopped). Such a request is dropped: run late, an
// acquire would pause reactive scaling for a round that is over.
func (c *Controller) closedLocked(req protocol.Request) string {
	if req.Step != protocol.StepAcquire && req.Step != protocol.StepBroadcast {
		return ""
	}
	if req.Round < c.interval {
		return fmt.Sprintf("round %d is closed here: interval %d already entered; dropped", req.Round, c.interval)
	}
	if now := c.clk.Now(); !req.Expires.IsZero() && now.After(req.Expires.Add(ExpirySkew)) {
		return fmt.Sprintf("round %d %s expired at %s (%v ago): the round moved on without this DC; dropped",
			req.Round, req.Step, req.Expires.UTC().Format(time.RFC3339Nano), now.Sub(req.Expires).Round(time.Millisecond))
	}
	return ""
}
