package local

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

var t0 = time.Unix(1_700_000_000, 0).UTC()

// Loads used by the tests (firewall thresholds: CPU 90, mem 50, pkt 35000).
var (
	idle    = Stats{CPU: 10, Mem: 20, PktRate: 100}
	hot2    = Stats{CPU: 95, Mem: 60, PktRate: 100}   // two metrics over
	hot3    = Stats{CPU: 95, Mem: 60, PktRate: 40000} // three metrics over
	hotCPU  = Stats{CPU: 99, Mem: 20, PktRate: 100}   // one metric over
	hotMemP = Stats{CPU: 10, Mem: 60, PktRate: 40000} // mem + pkt over
)

type recSink struct {
	calls map[string][][]RoutableInstance
}

func (s *recSink) SetInstances(vnf string, insts []RoutableInstance) {
	if s.calls == nil {
		s.calls = map[string][][]RoutableInstance{}
	}
	s.calls[vnf] = append(s.calls[vnf], insts)
}

func (s *recSink) last(vnf string) []RoutableInstance {
	c := s.calls[vnf]
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1]
}

type recPaths struct {
	log []string
}

func (p *recPaths) StoreNext(interval uint64, paths []protocol.PathEntry) {
	p.log = append(p.log, fmt.Sprintf("next %d (%d paths)", interval, len(paths)))
}
func (p *recPaths) Enter(interval uint64) { p.log = append(p.log, fmt.Sprintf("enter %d", interval)) }

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

type env struct {
	t     tb
	clk   *clock.Virtual
	drv   *fake.Driver
	c     *Controller
	sink  *recSink
	paths *recPaths
	// load gives the stats an instance reports each second (default idle).
	load map[string]Stats
	// silent instances stop reporting.
	silent map[string]bool
	seq    uint64
}

func fwConfig(min int) Config {
	return Config{DC: "dc0", VNFs: []VNFConfig{{Name: "firewall", Capacity: 35000, Image: "fw", Flavor: "m1", Min: min}}}
}

func newEnv(t *testing.T, cfg Config, opts fake.Options) *env {
	t.Helper()
	e := newEnvTB(t, cfg, opts)
	t.Cleanup(e.c.Stop)
	return e
}

func newEnvTB(t tb, cfg Config, opts fake.Options) *env {
	t.Helper()
	clk := clock.NewVirtual(t0)
	drv, err := fake.New(clk, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	e := &env{t: t, clk: clk, drv: drv, sink: &recSink{}, paths: &recPaths{}, load: map[string]Stats{}, silent: map[string]bool{}}
	cfg.Sink, cfg.Paths = e.sink, e.paths
	e.c, err = New(cfg, drv, clk, nil)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := e.c.Start(context.Background()); err != nil {
		t.Fatalf("%v", err)
	}
	e.clk.Advance(0) // deliver the boot events of a zero boot delay
	return e
}

// second advances the clock by 1 s, then every live, cloud-active instance
// reports its load.
func (e *env) second() {
	e.t.Helper()
	e.clk.Advance(time.Second)
	e.report()
}

func (e *env) report() {
	e.t.Helper()
	for _, in := range e.c.Instances() {
		if in.CloudState != drivers.StateActive || in.State == StateFailed || e.silent[in.ID] {
			continue
		}
		s, ok := e.load[in.ID]
		if !ok {
			s = idle
		}
		s.At = e.clk.Now()
		if err := e.c.ReportStats(in.ID, s); err != nil {
			e.t.Fatalf("ReportStats(%s): %v", in.ID, err)
		}
	}
	e.clk.Advance(0) // run what the reports dispatched
}

func (e *env) seconds(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		e.second()
	}
}

func (e *env) ids(st State) []string {
	var out []string
	for _, in := range e.c.Instances() {
		if in.State == st {
			out = append(out, in.ID)
		}
	}
	return out
}

func (e *env) state(id string) State {
	for _, in := range e.c.Instances() {
		if in.ID == id {
			return in.State
		}
	}
	return ""
}

func (e *env) actions(kind ActionKind, reason Reason) []Action {
	var out []Action
	for _, a := range e.c.Actions() {
		if a.Kind == kind && a.Reason == reason {
			out = append(out, a)
		}
	}
	return out
}

func (e *env) req(round uint64, step protocol.Step, d *protocol.DCDecision) protocol.Response {
	e.seq++
	return e.c.Handle(protocol.Request{Header: protocol.Header{Round: round, Step: step, Seq: e.seq, DC: "dc0"}, Decision: d})
}

// round runs steps 2, 4 and 5 of round r with the given working targets and
// fails the test on any error in the responses.
func (e *env) round(r uint64, targets map[string]int) protocol.Response {
	e.t.Helper()
	return e.roundDecision(r, decision(r, targets))
}

// roundDecision is round with the decision d.
func (e *env) roundDecision(r uint64, d *protocol.DCDecision) protocol.Response {
	e.t.Helper()
	e.req(r, protocol.StepAcquire, nil)
	resp := e.req(r, protocol.StepBroadcast, d)
	if resp.Error != "" {
		e.t.Fatalf("round %d broadcast: %s", r, resp.Error)
	}
	if er := e.req(r, protocol.StepEnter, nil); er.Error != "" {
		e.t.Fatalf("round %d enter: %s", r, er.Error)
	}
	e.clk.Advance(0)
	return resp
}

func decision(r uint64, targets map[string]int) *protocol.DCDecision {
	d := &protocol.DCDecision{DC: "dc0", Interval: r + 1,
		Paths: []protocol.PathEntry{{Entry: "dc0", Exit: "dc1", Hops: []string{"dc0", "dc0", "dc1", "dc1", "dc1"}}}}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		d.Targets = append(d.Targets, protocol.VNFTarget{VNF: n, Working: targets[n], Reason: "test"})
	}
	return d
}

func (e *env) working(vnf string) int { return e.c.Counts()[vnf].Working() }
