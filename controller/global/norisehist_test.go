package global

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// stepHarness is a two-DC harness, every pair's DP load stepping ×10 at
// 110 s (round 2), then flat.
func stepHarness(t *testing.T) *harness {
	t.Helper()
	var h *harness
	h = newHarness(t, 2, transportCfgNone, Hooks{}, func(i, j int) float64 {
		if h.clk.Now().Sub(t0) < 110*time.Second {
			return 5000
		}
		return 50000
	})
	return h
}

// advertiseNoRise makes the harness's DCs advertise protocol.FeatureNoRise
// (and keepBuffered) at step 2, as a local controller scaling reactively.
func advertiseNoRise(h *harness) {
	for _, p := range h.parts {
		p.features = []string{protocol.FeatureKeepBuffered, protocol.FeatureNoRise}
	}
}

// riseHarness is stepHarness with its DCs advertising noRise.
func riseHarness(t *testing.T) *harness {
	t.Helper()
	h := stepHarness(t)
	advertiseNoRise(h)
	return h
}

// roundFlags lists the flagged DP targets of each round the engines ran
// (round → "dc/vnf:noRise,fast" sorted), from their records.
func roundFlags(es ...*Engine) map[uint64][]string {
	out := map[uint64][]string{}
	for _, e := range es {
		for _, r := range e.Records() {
			var fl []string
			for _, d := range r.Decision {
				for _, tg := range d.Targets {
					if tg.NoRise || tg.Fast {
						fl = append(fl, fmt.Sprintf("%s/%s:%v,%v", d.DC, tg.VNF, tg.NoRise, tg.Fast))
					}
				}
			}
			slices.Sort(fl)
			out[r.Round] = fl
		}
	}
	return out
}

// The flags are a function of the committed state (review revH MED-1): a
// leader stopped after round n and a new engine on the same store (a new
// leader, replaying the replicated history) flag round n+1 as the engine
// that kept leading, for every n: the flags of a steep rise (Fast) and of
// the flat load after it (NoRise) alike.
func TestNewLeaderFlagsAsTheOldOne(t *testing.T) {
	const rounds = 8
	h := riseHarness(t)
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.eng.Stop)
	h.runRounds(t, rounds+1)
	want := roundFlags(h.eng)
	var noRise, fast bool
	for _, fl := range want {
		for _, f := range fl {
			noRise, fast = noRise || strings.HasSuffix(f, ":true,false") || strings.HasSuffix(f, ":true,true"), fast || strings.HasSuffix(f, ",true")
		}
	}
	if !noRise || !fast {
		t.Fatalf("the uninterrupted engine flagged %v: want NoRise and Fast in some round, or the test shows nothing", want)
	}
	for n := uint64(1); n < rounds; n++ {
		h := riseHarness(t)
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, n+1) // round n entered
		h.eng.Stop()
		old := h.eng
		h.eng = engineOn(t, h, h.cfg, nil)
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.eng.Stop)
		h.runRounds(t, n+2)
		got := roundFlags(old, h.eng)
		if !slices.Equal(got[n+1], want[n+1]) {
			t.Errorf("round %d after a new leader: %v, the old leader's: %v", n+1, got[n+1], want[n+1])
		}
	}
}

// A re-route alone is no rise (review revH MED-0): pairs dc0→dc0 (10000)
// and dc1→dc0 (30000) flat all along, dc1→dc0 run through dc1's stages
// until round 5 and through dc0's from round 6 (a drain, a new
// placement): dc0 gets no Fast, though its stages' sums along each
// round's own paths rose by 30000 (more than 0.5 capacities of every
// stage). The same move of load measured on the pairs (dc1→dc0 starting
// in round 6, on dc0's stages) does get Fast.
func TestEngineRerouteIsNoRise(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from     uint64 // dc1→dc0's load: 0 before this round's interval
		wantFast bool
	}{{"re-route", 0, false}, {"measured rise", 6, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var h *harness
			h = newHarness(t, 2, transportCfgNone, Hooks{}, func(i, j int) float64 {
				switch {
				case i == 0 && j == 0:
					return 10000
				case i == 1 && j == 0 && h.store.State().Interval >= tc.from:
					return 30000
				}
				return 0
			})
			advertiseNoRise(h)
			h.eng.plan = func(ctx context.Context, s *placement.Snapshot, o placement.Options) (*placement.Decision, error) {
				d, err := placement.PlanContext(ctx, s, o)
				if err != nil {
					return d, err
				}
				round := h.store.State().Round.Round
				for i, pp := range d.Pairs {
					switch pp.Pair {
					case placement.Pair{Entry: 1, Exit: 0}:
						d.Pairs[i].Path = placement.Path{1, 1, 1, 1, 0}
						if round >= 6 {
							d.Pairs[i].Path = placement.Path{1, 0, 0, 0, 0}
						}
					case placement.Pair{Entry: 0, Exit: 0}:
						d.Pairs[i].Path = placement.Path{0, 0, 0, 0, 0}
					}
				}
				return d, nil
			}
			if err := h.eng.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(h.eng.Stop)
			h.runRounds(t, 9)
			fl := roundFlags(h.eng)
			fast := false
			for r := uint64(6); r <= 8; r++ {
				for _, f := range fl[r] {
					fast = fast || strings.HasPrefix(f, "dc0/") && strings.HasSuffix(f, ",true")
				}
			}
			if fast != tc.wantFast {
				t.Fatalf("dc0 flagged Fast in rounds 6–8: %v, want %v (flags by round %v)", fast, tc.wantFast, fl)
			}
		})
	}
}
