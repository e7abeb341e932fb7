package global

import (
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/instbound"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Intake bounds (issue 19): a workload report is believed only when it is
// plausible. Its time must lie within the skew window of the leader's clock
// (Config.MaxReportSkew ahead; one interval plus that window behind: a
// report queued while the reporter looked for the leader is still
// counted), and no pair may carry more than Config.RateFactor times what the
// whole system could serve for that kind: DP, every DC running the bound of
// instances (instbound.PerDC) of the chain's smallest-capacity stage; CP,
// every DC running the sanity limit of the smaller of the P-CSCF and S-CSCF
// capacities. A report of 10¹² pkt/s, or one stamped 2099, is refused
// (422) and changes nothing.

// Defaults of the intake bounds.
const (
	DefaultRateFactor    = 1.0
	DefaultMaxReportSkew = 10 * time.Second
)

// intakeBounds are the plausibility limits of the topology in force.
type intakeBounds struct {
	maxRate map[string]float64 // kind → most pkt/s (DP) or tx/s (CP) of one pair
}

// boundsFor computes the limits of a topology.
func boundsFor(t *fsm.Topology, factor float64) intakeBounds {
	n := len(t.DCs)
	minCap := func(vs ...fsm.VNF) float64 {
		m := 0.0
		for i, v := range vs {
			if i == 0 || v.Capacity < m {
				m = v.Capacity
			}
		}
		return m
	}
	return intakeBounds{maxRate: map[string]float64{
		KindDP: factor * float64(n*instbound.PerDC(n, true)) * minCap(t.Stages...),
		KindCP: factor * float64(n*instbound.PerDC(n, false)) * minCap(t.PCSCF, t.SCSCF),
	}}
}

// checkPlausible refuses a report whose time is outside the skew window of
// now or whose rates are above the bound; the error names the field.
// A zero time (an in-process source; the HTTP intake refuses it) is not
// checked.
func (b intakeBounds) checkPlausible(r protocol.WorkloadReport, now time.Time, interval, skew time.Duration) error {
	if r.At.IsZero() {
		return b.checkRates(r)
	}
	if r.At.After(now.Add(skew)) {
		return fmt.Errorf("workload report at: %s is %v ahead of the leader's clock (%s), more than the skew window %v",
			r.At.UTC().Format(time.RFC3339Nano), r.At.Sub(now).Round(time.Millisecond), now.UTC().Format(time.RFC3339Nano), skew)
	}
	if old := interval + skew; r.At.Before(now.Add(-old)) {
		return fmt.Errorf("workload report at: %s is %v behind the leader's clock (%s), more than one interval plus the skew window (%v)",
			r.At.UTC().Format(time.RFC3339Nano), now.Sub(r.At).Round(time.Millisecond), now.UTC().Format(time.RFC3339Nano), old)
	}
	return b.checkRates(r)
}

func (b intakeBounds) checkRates(r protocol.WorkloadReport) error {
	limit, ok := b.maxRate[r.Kind]
	if !ok {
		return nil
	}
	for i, p := range r.Pairs {
		if p.Rate > limit {
			return fmt.Errorf("workload report pairs[%d].rate: %g is implausible, above %g (rate factor × what every DC could serve at its instance bound)", i, p.Rate, limit)
		}
	}
	return nil
}
