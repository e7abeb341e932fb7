package sip

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// The rounds test's configuration: every number its assertions depend on.
// Loads are SIP transactions/s at the S-CSCF (INVITE and BYE of a call; ACK
// is not a transaction of its own); the planner sizes a DC's P-CSCFs by
// the pairs entering or leaving it and the S-CSCFs by all pairs.
const (
	rInterval     = 8 * time.Second
	rPCSCFCap     = 20.0                   // tx/s of one P-CSCF
	rSCSCFCap     = 10.0                   // tx/s of one S-CSCF
	rTarget       = 0.8                    // policy target utilization: the rounds plan at 16 / 8 tx/s per instance
	rHold         = 250 * time.Millisecond // call duration: the BYE follows the INVITE closely
	rSteadyCross  = 8.0                    // dc0 → dc1 calls/s while steady: 16 tx/s
	rPeakCross    = 18.0                   // dc0 → dc1 calls/s at the end of the ramp: 36 tx/s
	rBack         = 2.0                    // dc1 → dc0 calls/s throughout: 4 tx/s
	rSteadyRounds = 3                      // intervals at the steady rate
	rRampRounds   = 4                      // intervals of the ramp (linear)
	rCallees      = 4                      // callees per DC, spread over the DC's P-CSCFs
	// Reactive thresholds a little over each instance's capacity: a P-CSCF
	// or S-CSCF receives about 3.5 SIP messages per transaction (INVITE,
	// ACK, BYE and 100/180/200/200 per call), so 80 pkt/s ≈ 23 tx/s and
	// 40 pkt/s ≈ 11.4 tx/s. CPU 1 % of a core: the packet rate decides.
	rPCSCFPkt = 80.0
	rSCSCFPkt = 40.0
)

// rCrossRate is the dc0 → dc1 call rate t after the aligned start.
func rCrossRate(t time.Duration) float64 {
	ramp0 := rSteadyRounds * rInterval
	switch {
	case t < ramp0:
		return rSteadyCross
	case t < ramp0+rRampRounds*rInterval:
		return rSteadyCross + (rPeakCross-rSteadyCross)*float64(t-ramp0)/float64(rRampRounds*rInterval)
	}
	return rPeakCross
}

// The measured CP inputs of the proactive rounds over real SIP (issue 14):
// two DCs of real Kamailio P-CSCFs and S-CSCFs, SIPp callers and callees
// registered through their DC's P-CSCFs, cross-DC calls both ways, the real
// round engine and local controllers (controller/system), the CP meter
// reading the S-CSCFs' per-pair counters (each user's DC from its
// registration). The calls start at a round; after rSteadyRounds intervals
// at a steady rate the predicted CP workload of each pair is within 10 % of
// what the callers sent (SIPp's own counts of created calls, 2 transactions
// each), and nothing churned (no instance buffered and reused again); then
// the dc0 → dc1 rate ramps up over rRampRounds intervals and the proactive
// rounds add P-CSCFs and S-CSCFs before any reactive scale-out of the same
// VNF in the same DC.
func TestSIPRounds(t *testing.T) {
	skipUnlessReady(t)
	began := time.Now()
	thr := func(pkt float64) vnf.Thresholds { return vnf.Thresholds{CPU: 1, Mem: 90, PktRate: pkt} }
	top := fsm.Topology{DCs: []string{"dc0", "dc1"}, SCSCFDC: "dc0",
		PCSCF:   fsm.VNF{Name: "pcscf", Capacity: rPCSCFCap, Min: 1},
		SCSCF:   fsm.VNF{Name: "scscf", Capacity: rSCSCFCap, Min: 2},
		Stages:  []fsm.VNF{{Name: "firewall", Capacity: 1000}},
		DelayMs: [][]float64{{0, 5}, {5, 0}}}
	r := startRig(t, rigConfig{top: top, policy: fsm.Policy{DelayBoundMs: 100, TargetUtilization: rTarget},
		interval: rInterval, meterPeriod: time.Second, overloadWindow: 3 * time.Second,
		vnfs: map[string]local.VNFConfig{
			"pcscf":    {Min: 1, Max: 4, Thresholds: thr(rPCSCFPkt)},
			"scscf":    {Min: 2, Max: 6, Thresholds: thr(rSCSCFPkt)},
			"firewall": {Min: 0, Thresholds: vnf.Thresholds{CPU: 90, Mem: 90, PktRate: 1e9}},
		}})
	r.waitMinimum(t, 1, 2)

	// the UEs: rCallees callees per DC spread over its P-CSCFs, one caller
	// user per DC calling the other DC's callees in turn
	scen := scenarios(t)
	var callees []*callee
	names := map[string][]string{}
	for dc, ip := range map[string]string{"dc0": "127.0.0.40", "dc1": "127.0.0.41"} {
		for i := range rCallees {
			c := startCallee(t, scen, fmt.Sprintf("%s-callee-%d", dc, i), ip, 5080+i, r.dnsAddr[dc], r.zone(dc))
			c.idx, c.spread = i, true
			callees = append(callees, c)
			names[dc] = append(names[dc], c.aor)
		}
	}
	for _, c := range callees {
		if !c.ready(15 * time.Second) {
			c.mu.Lock()
			t.Fatalf("callee %s never registered: %v", c.aor, c.errs)
		}
	}
	var t0 time.Time
	var t0Mu sync.Mutex
	since := func(now time.Time) time.Duration { t0Mu.Lock(); defer t0Mu.Unlock(); return now.Sub(t0) }
	var ports int
	var portsMu sync.Mutex
	pools := []*callerPool{
		{t: t, name: "dc0→dc1", dns: r.dnsAddr["dc0"], zone: r.zone("dc0"), ip: "127.0.0.17", user: "dc0-caller", callees: names["dc1"],
			scen: scen, hold: rHold, next: &ports, nextMu: &portsMu, rate: func(now time.Time) float64 { return rCrossRate(since(now)) }},
		{t: t, name: "dc1→dc0", dns: r.dnsAddr["dc1"], zone: r.zone("dc1"), ip: "127.0.0.33", user: "dc1-caller", callees: names["dc0"],
			scen: scen, hold: rHold, next: &ports, nextMu: &portsMu, rate: func(time.Time) float64 { return rBack }},
	}
	for _, p := range pools {
		p.register()
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, p := range pools {
			if p.done != nil {
				p.stop(20 * time.Second)
			}
		}
		for _, c := range callees {
			c.stop()
		}
	}
	t.Cleanup(stopAll)

	// start the calls at a round
	eng := r.sys.Engine
	n0 := len(eng.Records())
	waitFor(t, 2*rInterval, "a round", func() bool { return len(eng.Records()) > n0 })
	aligned := len(eng.Records()) - 1
	t0Mu.Lock()
	t0 = time.Now()
	t0Mu.Unlock()
	for _, p := range pools {
		p.start()
	}
	// under load the SIPps start seconds late (seen at load ≈ 8: the first
	// interval held half the steady rate, and a forecast over [7, 16, 16]
	// is no forecast of a steady rate): the steady intervals are counted
	// from the first round after every pool has created calls, so each of
	// them is whole at the steady rate
	waitFor(t, 2*rInterval, "the callers' first calls", func() bool {
		for _, p := range pools {
			if p.created() == 0 {
				return false
			}
		}
		return true
	})
	n1 := len(eng.Records())
	waitFor(t, 2*rInterval, "a round after the first calls", func() bool { return len(eng.Records()) > n1 })
	// the interval the calls began in is partial and stays in the
	// predictor's window: with it at a fraction f of the steady rate, AR(1)
	// (global.BankForecaster "ar1") is off after three steady intervals by
	// −3.4 % at f = 7/8 and −10.2 % at f = 5/8, after four by −2.6 % and
	// −7.9 %. Measured over 17 runs at load 15–55 (session 5): −0.0…−4.5 %
	// in 16, −10.0 % / −11.6 % in one (by the model its first interval held
	// about 5/8 of the rate: SIPp's first calls ~3 s late). So one whole
	// steady interval more passes before the three counted.
	n2 := len(eng.Records())
	waitFor(t, 2*rInterval, "a second round after the first calls", func() bool { return len(eng.Records()) > n2 })
	aligned = len(eng.Records()) - 1
	t0Mu.Lock()
	t0 = time.Now()
	t0Mu.Unlock()
	churn := func() int {
		n := 0
		for _, lc := range r.sys.Locals {
			for _, c := range lc.Counts() {
				n += c.Churn
			}
		}
		return n
	}
	churn0 := churn()
	// the round closing interval k after the aligned one is record aligned+k
	roundAt := func(k int) global.RoundRecord {
		waitFor(t, time.Until(t0.Add(time.Duration(k)*rInterval+15*time.Second)), fmt.Sprintf("round %d after the calls started", k), func() bool { return len(eng.Records()) > aligned+k })
		return eng.Records()[aligned+k]
	}
	steadyEnd := roundAt(rSteadyRounds)
	churnSteady := churn() - churn0
	last := roundAt(rSteadyRounds + rRampRounds + 1)
	churnAll := churn() - churn0
	stopAll()

	// ---- what the callers sent, by SIPp's own counts ----
	// sentRate is 2 × the calls a pool created per second in [from, to).
	sentRate := func(p *callerPool, from, to time.Time) float64 {
		n := 0
		for _, c := range p.all {
			st, err := c.stats()
			if err != nil {
				t.Errorf("%s: %v", p.name, err)
				continue
			}
			for _, row := range st.Rows {
				// a row closes its one-second period at row.At
				if !row.At.Before(from.Add(time.Second/2)) && row.At.Before(to.Add(time.Second/2)) {
					n += row.Created
				}
			}
		}
		return 2 * float64(n) / to.Sub(from).Seconds()
	}
	var okCalls, failedCalls int
	for _, p := range pools {
		for _, c := range p.all {
			if st, err := c.stats(); err == nil {
				okCalls += st.OK
				failedCalls += st.Failed
				if st.Failed > 0 {
					var at []string
					for _, row := range st.Rows {
						if row.Failed > 0 {
							at = append(at, fmt.Sprintf("%d at t=%.0fs", row.Failed, row.At.Sub(t0).Seconds()))
						}
					}
					t.Logf("%s caller to %s: %d failed (%v)\n%s", p.name, st.pcscf, st.Failed, at, st.errs)
				}
			}
		}
	}
	recs := eng.Records()
	var tl strings.Builder
	for k := 1; aligned+k < len(recs); k++ {
		rec, prev := recs[aligned+k], recs[aligned+k-1]
		fmt.Fprintf(&tl, " round %d t=%5.1fs sent cp dc0→dc1 %5.1f dc1→dc0 %4.1f | measured %5.1f %4.1f | predicted %5.1f %4.1f | P-CSCF %v S-CSCF %v\n", rec.Round,
			rec.Started.Sub(t0).Seconds(), sentRate(pools[0], prev.Started, rec.Started), sentRate(pools[1], prev.Started, rec.Started),
			rec.Actual["cp/dc0/dc1"], rec.Actual["cp/dc1/dc0"], rec.Predicted["cp/dc0/dc1"], rec.Predicted["cp/dc1/dc0"],
			cpTargets(rec, "pcscf"), cpTargets(rec, "scscf"))
	}
	t.Logf("rounds after the calls started (t0 = a round start):\n%s", tl.String())

	// ---- 1. predictions after the steady intervals ----
	from := recs[aligned].Started
	for _, pc := range []struct {
		key  string
		pool *callerPool
	}{{"cp/dc0/dc1", pools[0]}, {"cp/dc1/dc0", pools[1]}} {
		sent := sentRate(pc.pool, from, steadyEnd.Started)
		got := steadyEnd.Predicted[pc.key]
		t.Logf("after %d steady intervals: predicted %s %.2f tx/s, the callers sent %.2f tx/s (%+.1f %%); measured per interval %v",
			rSteadyRounds, pc.key, got, sent, 100*(got-sent)/sent, actuals(recs[aligned+1:aligned+rSteadyRounds+1], pc.key))
		if math.Abs(got-sent) > 0.1*sent {
			t.Errorf("predicted %s %.2f tx/s after %d steady intervals, callers sent %.2f tx/s: off by more than 10 %%", pc.key, got, rSteadyRounds, sent)
		}
	}

	// ---- 2. zero churn at the steady rate ----
	t.Logf("churn (instances buffered and reused within two intervals): %d while steady, %d over the whole run", churnSteady, churnAll)
	if churnSteady != 0 {
		t.Errorf("churn %d at a steady rate, want 0", churnSteady)
	}

	// ---- 3. on the ramp the rounds scale out before reactive scaling must ----
	rampFrom := steadyEnd.Started
	type key struct{ dc, vnf string }
	proFirst := map[key]time.Time{}
	var pro, rea = map[string]int{}, map[string]int{}
	var early []string
	acts := append(r.sys.Locals["dc0"].Actions(), r.sys.Locals["dc1"].Actions()...)
	slices.SortFunc(acts, func(a, b local.Action) int { return a.At.Compare(b.At) })
	for _, a := range acts {
		if a.At.Before(t0) || a.At.After(last.Started) {
			continue
		}
		if a.Reason != local.ReasonProactive || !strings.HasPrefix(a.Detail, "minimum") {
			t.Logf("action t=%5.1fs %s %s %s %s %s: %s", a.At.Sub(t0).Seconds(), a.DC, a.VNF, a.Kind, a.Reason, a.InstanceID, a.Detail)
		}
		if a.At.Before(rampFrom) || (a.Kind != local.KindCreate && a.Kind != local.KindReuse) {
			continue
		}
		k := key{a.DC, a.VNF}
		switch a.Reason {
		case local.ReasonProactive:
			pro[a.VNF]++
			if _, ok := proFirst[k]; !ok {
				proFirst[k] = a.At
			}
		case local.ReasonReactive:
			rea[a.VNF]++
			if first, ok := proFirst[k]; !ok || first.After(a.At) {
				early = append(early, fmt.Sprintf("%s %s at t=%.1fs (%s)", a.DC, a.VNF, a.At.Sub(t0).Seconds(), a.Detail))
			}
		}
	}
	t.Logf("on the ramp: proactive scale-outs P-CSCF %d S-CSCF %d, reactive P-CSCF %d S-CSCF %d", pro["pcscf"], pro["scscf"], rea["pcscf"], rea["scscf"])
	if pro["pcscf"] == 0 || pro["scscf"] == 0 {
		t.Errorf("the rounds added no P-CSCF (%d) or no S-CSCF (%d) on the ramp", pro["pcscf"], pro["scscf"])
	}
	if len(early) > 0 {
		t.Errorf("reactive scale-out before any proactive one of the same VNF and DC on the ramp: %v", early)
	}

	r.rec.mu.Lock()
	for _, id := range slices.Sorted(maps.Keys(r.rec.peak)) {
		p := r.rec.peak[id]
		t.Logf("agent peaks %s: CPU %.1f%% of a core, %.0f pkt/s, flows %d; longest time between two statistics %v", id, p.CPU, p.PktRate, p.Flows, r.rec.maxGap[id].Round(time.Millisecond))
	}
	r.rec.mu.Unlock()
	t.Logf("calls: %d ok, %d failed; CP transactions unmapped %d; test time %v", okCalls, failedCalls, r.meter.Unmapped(), time.Since(began).Round(time.Second))
	if okCalls == 0 || float64(failedCalls) > 0.01*float64(okCalls+failedCalls) {
		t.Errorf("%d of %d calls failed, want ≤ 1 %%", failedCalls, okCalls+failedCalls)
	}
	// every user registered through a P-CSCF; a request can still reach a
	// new S-CSCF before DMQ has copied a registration to it
	if u := r.meter.Unmapped(); float64(u) > 0.01*float64(2*okCalls) {
		t.Errorf("%d CP transactions unmapped (of about %d): every user registered through a P-CSCF", u, 2*okCalls)
	}
}

// cpTargets lists a round's target of a CP VNF per DC.
func cpTargets(rec global.RoundRecord, name string) []string {
	var out []string
	for _, d := range rec.Decision {
		for _, v := range d.Targets {
			if v.VNF == name {
				out = append(out, fmt.Sprintf("%s:%d", d.DC, v.Working))
			}
		}
	}
	return out
}

func actuals(recs []global.RoundRecord, key string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%.2f", r.Actual[key]))
	}
	return out
}
