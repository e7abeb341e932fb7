package routing

import (
	"fmt"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
	"pgregory.net/rapid"
)

// genPath draws a loopless path e → x of m stages: every stage stays in the
// current DC or moves to a DC the path has not visited; once at the exit it
// stays there.
func genPath(t *rapid.T, n, m, e, x int, label string) placement.Path {
	p := placement.Path{e}
	visited := map[int]bool{e: true}
	cur := e
	for s := 1; s <= m; s++ {
		if cur != x {
			var cands []int
			for d := 0; d < n; d++ {
				if !visited[d] {
					cands = append(cands, d)
				}
			}
			if i := rapid.IntRange(0, len(cands)).Draw(t, fmt.Sprintf("%s-s%d", label, s)); i > 0 {
				cur = cands[i-1]
				visited[cur] = true
			}
		}
		p = append(p, cur)
	}
	p = append(p, x)
	if !p.Loopless() {
		t.Fatalf("generator made a looping path %v", p)
	}
	return p
}

func genPaths(t *rapid.T, n, m int, label string) pathMap {
	out := pathMap{}
	for e := 0; e < n; e++ {
		for x := 0; x < n; x++ {
			out[pr(e, x)] = genPath(t, n, m, e, x, fmt.Sprintf("%s-%d-%d", label, e, x))
		}
	}
	return out
}

type inFlight struct {
	dc    int
	p     Packet
	first Decision
	call  Call
}

// TestTaggedFlowsNeverDroppedProperty: whatever the order in which DCs enter
// the next interval, and however flows interleave with it, a flow tagged at
// its entry is never dropped and follows exactly the path of its tag's
// interval, provided no DC gets two intervals ahead of a flow in flight (the
// protocol's skew: every DC acknowledges interval k before any enters k+1).
func TestTaggedFlowsNeverDroppedProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "n")
		m := rapid.IntRange(1, MaxStages).Draw(t, "m")
		sets := map[uint64]pathMap{0: genPaths(t, n, m, "paths0")}
		tables := newTables(t, n, m, 2, sets[0], false)
		round := uint64(0) // every DC is in round or round+1
		stored := false
		var flows []inFlight
		calls := 0
		delivered := 0

		route := func(t *rapid.T, f *inFlight) (Decision, bool) {
			d := tables[f.dc].Route(f.p)
			if d.Verdict != Forward {
				t.Fatalf("flow %v tagged %v dropped at dc%d (local interval %d): %v",
					f.first.PathDCs(), f.first.Tag, f.dc, tables[f.dc].Interval(), d)
			}
			if d.Tag != f.first.Tag || d.Interval != f.first.Interval || d.Path != f.first.Path {
				t.Fatalf("dc%d routed by %v interval %d, the entry by %v interval %d", f.dc, d.PathDCs(), d.Interval, f.first.PathDCs(), f.first.Interval)
			}
			if d.Exit {
				want, _ := tables[f.dc].ExitMapping(Endpoint{f.call.CallerIP, f.call.CallerSendPort})
				if d.Translation != want || want.DstIP != f.call.CalleeIP || f.dc != f.call.CalleeDC {
					t.Fatalf("exit at dc%d translation %v, want mapping 4 to %s", f.dc, d.Translation, f.call.CalleeIP)
				}
				delivered++
				return d, true
			}
			if int(d.Path[d.Last+1]) != d.Next || d.Next == f.dc {
				t.Fatalf("next hop %d does not follow path %v after stage %d", d.Next, d.PathDCs(), d.Last)
			}
			f.dc, f.p = d.Next, tunnelled(d)
			return d, false
		}

		t.Repeat(map[string]func(*rapid.T){
			"newFlow": func(t *rapid.T) {
				e := rapid.IntRange(0, n-1).Draw(t, "entry")
				x := rapid.IntRange(0, n-1).Draw(t, "exit")
				c := callBetween(e, x, calls)
				calls++
				for _, tb := range tables {
					if err := tb.AddCall(c); err != nil {
						t.Fatal(err)
					}
				}
				f := inFlight{dc: e, p: callerPacket(c), call: c}
				f.first = tables[e].Route(f.p)
				if f.first.Verdict != Forward || !f.first.Entry || f.first.Interval != tables[e].Interval() {
					t.Fatalf("entry decision %v", f.first)
				}
				if want := sets[f.first.Interval][pr(e, x)]; !want.Equal(f.first.PathDCs()) {
					t.Fatalf("entry used %v, interval %d's path is %v", f.first.PathDCs(), f.first.Interval, want)
				}
				if f.first.Exit {
					delivered++
					return
				}
				f.dc, f.p = f.first.Next, tunnelled(f.first)
				flows = append(flows, f)
			},
			"hop": func(t *rapid.T) {
				if len(flows) == 0 {
					t.Skip("no flow in flight")
				}
				i := rapid.IntRange(0, len(flows)-1).Draw(t, "flow")
				if _, done := route(t, &flows[i]); done {
					flows = append(flows[:i], flows[i+1:]...)
				}
			},
			"store": func(t *rapid.T) { // step 4 at every DC
				if stored {
					t.Skip("next path set already stored")
				}
				sets[round+1] = genPaths(t, n, m, fmt.Sprintf("paths%d", round+1))
				for _, tb := range tables {
					if err := tb.StoreNext(round+1, sets[round+1]); err != nil {
						t.Fatal(err)
					}
				}
				stored = true
			},
			"enter": func(t *rapid.T) { // step 5 reaching one DC
				if !stored {
					t.Skip("step 4 first")
				}
				for _, f := range flows {
					if f.first.Interval < round {
						t.Skip("a flow tagged two intervals back is in flight")
					}
				}
				var behind []int
				for dc, tb := range tables {
					if tb.Interval() == round {
						behind = append(behind, dc)
					}
				}
				dc := rapid.SampledFrom(behind).Draw(t, "enterDC")
				if err := tables[dc].Enter(round + 1); err != nil {
					t.Fatal(err)
				}
				if len(behind) == 1 { // the last DC entered: the round is over
					round++
					stored = false
				}
			},
			"": func(t *rapid.T) {
				for dc, tb := range tables {
					if c := tb.Counters(); c.TotalDropped() != 0 {
						t.Fatalf("dc%d dropped %v", dc, c.Dropped)
					}
				}
			},
		})
		// Drain: every flow still in flight reaches its exit.
		for len(flows) > 0 {
			if _, done := route(t, &flows[0]); done {
				flows = flows[1:]
			}
		}
		var exited uint64
		for _, tb := range tables {
			exited += tb.Counters().Exited
		}
		if exited != uint64(delivered) || delivered != calls {
			t.Fatalf("%d calls, %d delivered, %d exits counted", calls, delivered, exited)
		}
	})
}
