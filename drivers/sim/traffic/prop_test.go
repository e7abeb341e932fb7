package traffic

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestEngineInvariants runs small random experiments (DC count, fleet,
// schedule, seed) and checks the accounting every second.
func TestEngineInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 3).Draw(rt, "dcs")
		fl := fleet{}
		for _, v := range []string{"P-CSCF", "S-CSCF", "firewall", "ids", "transcoder"} {
			fl[v] = rapid.IntRange(0, 2).Draw(rt, v)
		}
		rates := rapid.SliceOfN(rapid.Float64Range(0, 30), 1, 4).Draw(rt, "rates")
		secs := rapid.IntRange(5, 90).Draw(rt, "seconds")
		w := newWorld(rt, n, fl, 0)
		router := &LocalRouter{Cloud: w.cloud, Chain: paperChain}
		e := w.engine(rt, Config{Schedule: Uniform(n, 10*time.Second, rates), Seed: rapid.Uint64().Draw(rt, "seed"),
			Duration: time.Duration(secs) * time.Second, Router: router})
		w.run(e, time.Duration(secs)*time.Second)
		r := e.Recorder()
		if !e.Done() || len(r.Seconds) != secs {
			rt.Fatalf("done %v after %d seconds", e.Done(), len(r.Seconds))
		}
		const eps = 1e-6
		calls := 0
		for _, s := range r.Seconds {
			if s.DPLost < -eps || s.DPLost > s.DPOffered+eps || s.DPLoss < 0 || s.DPLoss > 1+eps {
				rt.Fatalf("second %d: lost %v of %v", s.T, s.DPLost, s.DPOffered)
			}
			if s.DPOffered != 2*e.rate*float64(s.Calls) {
				rt.Fatalf("second %d: offered %v for %d calls", s.T, s.DPOffered, s.Calls)
			}
			if s.Flows > 2*s.Calls || s.CPFailed > s.CPTx+eps || s.CPFailed < -eps {
				rt.Fatalf("second %d: %+v", s.T, s)
			}
			if s.RTTMeanMs < 0 || s.RTTP95Ms < s.RTTP50Ms {
				rt.Fatalf("second %d: RTT mean %v p50 %v p95 %v", s.T, s.RTTMeanMs, s.RTTP50Ms, s.RTTP95Ms)
			}
			calls += s.NewFlows / 2
		}
		if r.FlowsTotal != 2*calls || r.FlowsDropped > r.FlowsTotal || r.FlowsTruncated > r.FlowsTotal {
			rt.Fatalf("flows %d dropped %d truncated %d for %d calls", r.FlowsTotal, r.FlowsDropped, r.FlowsTruncated, calls)
		}
		for _, x := range r.Instances {
			if x.Served > x.Offered+eps || x.Lost < -eps || x.Lost-(x.Offered-x.Served) > eps || x.MeanCPU > 100 {
				rt.Fatalf("instance row %+v", x)
			}
		}
		// Every routed flow was released, at its end or when the run ended.
		for id, c := range router.flows {
			rt.Fatalf("%s: %d flows still pinned", id, c)
		}
	})
}
