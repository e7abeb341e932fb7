package local

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"pgregory.net/rapid"
)

// TestControllerInvariants drives the controller with random rounds,
// loads, flow counts, deaths and time steps, and checks after every step:
//   - the buffer queue holds exactly the buffered instances, tags never
//     decreasing head → tail;
//   - routable = the cloud-active normal/overload instances, and the sink
//     saw exactly that set last;
//   - right after a broadcast the working count equals the target (no quota),
//     or is at most the target while a crash-loop backoff holds launches back;
//   - an instance destroyed for expiry had no active flows;
//   - the interval equals the number of completed rounds;
//   - a between-round scale-in (ScaleIn) leaves at least max(Min, 1)
//     working instances.
func TestControllerInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var e *env
		var violations []string
		opts := fake.Options{
			BootDelay: time.Duration(rapid.IntRange(0, 3).Draw(rt, "boot")) * time.Second,
			OnTerminate: func(dc, id string) {
				for _, in := range e.c.Instances() {
					if in.ID == id && in.State == StateDraining && in.Last.Flows > 0 {
						violations = append(violations, fmt.Sprintf("%s destroyed with %d flows", id, in.Last.Flows))
					}
				}
			},
		}
		cfg := fwConfig(rapid.IntRange(0, 2).Draw(rt, "min"))
		cfg.Reactive = rapid.Bool().Draw(rt, "reactive")
		cfg.Tau = uint64(rapid.IntRange(1, 3).Draw(rt, "tau"))
		cfg.ScaleIn = ScaleIn{On: rapid.Bool().Draw(rt, "scaleIn"), Window: time.Duration(rapid.IntRange(1, 5).Draw(rt, "scaleInWindow")) * time.Second}
		cfg.TrimBuffer, cfg.TrimEmpty = rapid.Bool().Draw(rt, "trim"), rapid.Bool().Draw(rt, "trimEmpty")
		e = newEnvTB(rt, cfg, opts)
		defer e.c.Stop()
		var round uint64
		rt.Repeat(map[string]func(*rapid.T){
			"round": func(rt *rapid.T) {
				want := rapid.IntRange(0, 6).Draw(rt, "target")
				e.req(round, 2, nil)
				r := e.req(round, 4, decision(round, map[string]int{"firewall": want}))
				if r.Error != "" {
					rt.Fatalf("broadcast: %s", r.Error)
				}
				got, exp := e.working("firewall"), max(want, cfg.VNFs[0].Min)
				if b := e.c.Backoffs(); len(b) > 0 && b[0].Holding(e.clk.Now()) {
					// a crash loop holds launches back: only reuses happen
					if got > exp {
						rt.Fatalf("working %d after broadcast in a crash-loop backoff, want at most %d", got, exp)
					}
				} else if got != exp {
					rt.Fatalf("working %d after broadcast, want %d", got, exp)
				}
				e.req(round, 5, nil)
				round++
				e.clk.Advance(0)
			},
			"load": func(rt *rapid.T) {
				ins := e.c.Instances()
				if len(ins) == 0 {
					return
				}
				in := ins[rapid.IntRange(0, len(ins)-1).Draw(rt, "inst")]
				s := []Stats{idle, hot2, hot3, hotCPU}[rapid.IntRange(0, 3).Draw(rt, "load")]
				s.Flows = rapid.IntRange(0, 3).Draw(rt, "flows")
				e.load[in.ID] = s
			},
			"die": func(rt *rapid.T) {
				l, _ := e.drv.List(t.Context(), "dc0")
				if len(l) == 0 {
					return
				}
				id := l[rapid.IntRange(0, len(l)-1).Draw(rt, "victim")].ID
				switch rapid.IntRange(0, 2).Draw(rt, "how") {
				case 0:
					e.drv.Kill(id)
				case 1:
					e.drv.Fail(id)
				default:
					e.silent[id] = true
				}
				e.clk.Advance(0)
			},
			"time": func(rt *rapid.T) {
				e.seconds(rapid.IntRange(1, 6).Draw(rt, "secs"))
			},
			"": func(rt *rapid.T) {
				if len(violations) > 0 {
					rt.Fatalf("%v", violations)
				}
				for _, a := range e.actions(KindBuffer, ReasonUnderload) {
					var left int
					if _, err := fmt.Sscanf(a.Detail[strings.Index(a.Detail, "fits on ")+len("fits on "):], "%d", &left); err != nil || left < max(cfg.VNFs[0].Min, 1) {
						rt.Fatalf("underload scale-in %q: leaves %d (%v), Min %d", a.Detail, left, err, cfg.VNFs[0].Min)
					}
				}
				if e.c.Interval() != round {
					rt.Fatalf("interval %d after %d rounds", e.c.Interval(), round)
				}
				ins := e.c.Instances()
				var buffered, routable []string
				for _, in := range ins {
					if in.State == StateBuffered {
						buffered = append(buffered, in.ID)
					}
					if (in.State == StateNormal || in.State == StateOverload) && in.CloudState == drivers.StateActive {
						routable = append(routable, in.ID)
					}
				}
				q := e.c.Buffer("firewall")
				var qids []string
				for i, x := range q {
					qids = append(qids, x.ID)
					if i > 0 && x.Interval < q[i-1].Interval {
						rt.Fatalf("buffer tags decrease: %+v", q)
					}
				}
				slices.Sort(qids)
				if !slices.Equal(qids, buffered) {
					rt.Fatalf("buffer queue %v, buffered instances %v", qids, buffered)
				}
				var got, sunk []string
				for _, r := range e.c.Routable("firewall") {
					got = append(got, r.ID)
				}
				for _, r := range e.sink.last("firewall") {
					sunk = append(sunk, r.ID)
				}
				if !slices.Equal(got, routable) || !slices.Equal(sunk, routable) {
					rt.Fatalf("routable %v, sink %v, want %v", got, sunk, routable)
				}
			},
		})
	})
}
