package local

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

func TestConfigValidation(t *testing.T) {
	ok := func() Config { return fwConfig(1) }
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty dc", func(c *Config) { c.DC = " " }, "config dc"},
		{"no vnfs", func(c *Config) { c.VNFs = nil }, "config vnfs"},
		{"empty name", func(c *Config) { c.VNFs[0].Name = "" }, "vnfs[0].name"},
		{"duplicate name", func(c *Config) { c.VNFs = append(c.VNFs, c.VNFs[0]) }, "vnfs[1].name \"firewall\": duplicate"},
		{"negative min", func(c *Config) { c.VNFs[0].Min = -1 }, "vnfs[0].min"},
		{"min above max", func(c *Config) { c.VNFs[0].Min, c.VNFs[0].Max = 3, 2 }, "above max"},
		{"unknown vnf without thresholds", func(c *Config) { c.VNFs[0].Name = "nat" }, "vnfs[0].thresholds: required"},
		{"partial thresholds", func(c *Config) { c.VNFs[0].Thresholds = vnf.Thresholds{CPU: 80} }, "thresholds.mem"},
		{"nan threshold", func(c *Config) { c.VNFs[0].Thresholds = vnf.Thresholds{CPU: math.NaN(), Mem: 1, PktRate: 1} }, "thresholds.cpu"},
		{"nan capacity", func(c *Config) { c.VNFs[0].Capacity = math.NaN() }, "capacity"},
		{"negative window", func(c *Config) { c.OverloadWindow = -time.Second }, "overloadWindow"},
		{"negative history", func(c *Config) { c.History = -1 }, "history"},
	}
	clk := clock.NewVirtual(t0)
	drv, _ := fake.New(clk, fake.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mod(&c)
			_, err := New(c, drv, clk, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := New(ok(), nil, clk, nil); err == nil {
		t.Fatal("nil driver accepted")
	}
	if _, err := New(ok(), drv, nil, nil); err == nil {
		t.Fatal("nil clock accepted")
	}
	cfg, err := ok().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tau != 10 || cfg.OverloadWindow != 5*time.Second || cfg.StatsTimeout != 3*time.Second || cfg.VNFs[0].Thresholds != (vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 35000}) {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestReportStatsValidation(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	id := e.ids(StateNormal)[0]
	tests := []struct {
		name string
		id   string
		s    Stats
		want string
	}{
		{"unknown", "nope", idle, "unknown instance"},
		{"negative cpu", id, Stats{CPU: -1}, "cpu -1"},
		{"nan mem", id, Stats{Mem: math.NaN()}, "mem NaN"},
		{"inf pkt", id, Stats{PktRate: math.Inf(1)}, "pktRate +Inf"},
		{"negative flows", id, Stats{Flows: -2}, "flows -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.c.ReportStats(tc.id, tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if err := e.c.ReportStats("nope", idle); !errors.Is(err, ErrUnknownInstance) {
		t.Fatalf("err %v does not wrap ErrUnknownInstance", err)
	}
	// An older report is ignored, not an error.
	now := e.clk.Now()
	if err := e.c.ReportStats(id, Stats{At: now, CPU: 5}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.ReportStats(id, Stats{At: now.Add(-time.Second), CPU: 77}); err != nil {
		t.Fatal(err)
	}
	if got := e.c.Instances()[0].Last.CPU; got != 5 {
		t.Fatalf("older report overwrote the newer one: cpu %v", got)
	}
}

func TestActionHistoryBounded(t *testing.T) {
	cfg := fwConfig(0)
	cfg.History = 3
	e := newEnv(t, cfg, fake.Options{})
	e.round(0, map[string]int{"firewall": 5})
	a := e.c.Actions()
	if len(a) != 3 || a[0].InstanceID != "dc0-firewall-3" || a[2].InstanceID != "dc0-firewall-5" {
		t.Fatalf("history %+v, want the last 3 creates", a)
	}
	for _, x := range a {
		if x.Kind != KindCreate || x.Reason != ReasonProactive || x.DC != "dc0" || !strings.Contains(x.Detail, "round 0 target 5") {
			t.Fatalf("action %+v", x)
		}
	}
}

func TestSinkSeesOnlyRoutable(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{BootDelay: 10 * time.Second})
	e.round(0, map[string]int{"firewall": 2})
	if got := e.sink.last("firewall"); len(got) != 0 {
		t.Fatalf("booting instances sent to routing: %+v", got)
	}
	e.clk.Advance(10 * time.Second)
	e.report()
	if got := e.sink.last("firewall"); len(got) != 2 || got[0].Address == "" {
		t.Fatalf("active instances: %+v", got)
	}
	e.round(1, map[string]int{"firewall": 1})
	if got := e.sink.last("firewall"); len(got) != 1 {
		t.Fatalf("buffered instance still routable: %+v", got)
	}
	calls := len(e.sink.calls["firewall"])
	e.seconds(10)
	if len(e.sink.calls["firewall"]) != calls {
		t.Fatal("sink called although nothing changed")
	}
}

// TestConcurrentUse exercises the lock under the race detector: handlers
// report stats, read state and run protocol steps while the clock moves.
func TestConcurrentUse(t *testing.T) {
	cfg := reactiveCfg(4)
	cfg.StatsTimeout = -1
	e := newEnv(t, cfg, fake.Options{})
	ids := e.ids(StateNormal)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_ = e.c.ReportStats(ids[w], Stats{At: t0.Add(time.Duration(i+1) * time.Second), CPU: float64(i % 100), Mem: 60, PktRate: 10})
				_ = e.c.Instances()
				_ = e.c.Counts()
				_ = e.c.Actions()
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := uint64(0); r < 20; r++ {
			e.c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepAcquire, Seq: 3*r + 1}})
			e.c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepBroadcast, Seq: 3*r + 2}, Decision: decision(r, map[string]int{"firewall": 4 + int(r%3)})})
			e.c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepEnter, Seq: 3*r + 3}})
		}
	}()
	for i := 0; i < 100; i++ {
		e.clk.Advance(100 * time.Millisecond)
	}
	wg.Wait()
	e.clk.Advance(time.Second)
	if e.c.Interval() != 20 {
		t.Fatalf("interval %d", e.c.Interval())
	}
	if w := e.working("firewall"); w < 4 {
		t.Fatalf("working %d", w)
	}
}

func TestStopStopsTimers(t *testing.T) {
	clk := clock.NewVirtual(t0)
	drv, _ := fake.New(clk, fake.Options{})
	c, err := New(fwConfig(2), drv, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	c.Stop()
	clk.Advance(time.Minute)
	if clk.Pending() != 0 {
		t.Fatalf("%d timers pending after Stop", clk.Pending())
	}
	if n := len(c.Instances()); n != 2 {
		t.Fatalf("Stop changed the registry: %d instances", n)
	}
}

// FuzzHandle feeds arbitrary protocol requests (as a transport would decode
// them) and checks the controller answers without panicking and keeps its
// counts consistent.
func FuzzHandle(f *testing.F) {
	f.Add(uint64(0), uint8(2), uint64(1), "dc0", "firewall", 3, uint64(1), true)
	f.Add(uint64(7), uint8(4), uint64(2), "dc0", "firewall", -4, uint64(8), true)
	f.Add(uint64(1), uint8(9), uint64(3), "x", "", 1<<20, uint64(0), false)
	f.Fuzz(func(t *testing.T, round uint64, step uint8, seq uint64, dc, vnf string, working int, interval uint64, withDecision bool) {
		clk := clock.NewVirtual(t0)
		drv, _ := fake.New(clk, fake.Options{Quota: fake.Quota{Total: 50}})
		c, err := New(fwConfig(1), drv, clk, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		req := protocol.Request{Header: protocol.Header{Round: round, Step: protocol.Step(step), Seq: seq, DC: dc}}
		if withDecision {
			req.Decision = &protocol.DCDecision{DC: dc, Interval: interval, Targets: []protocol.VNFTarget{{VNF: vnf, Working: working}}}
		}
		r1 := c.Handle(req)
		r2 := c.Handle(req)
		if r1.Round != round || r1.Step != protocol.Step(step) || r1.Created != r2.Created || r1.Error != r2.Error {
			t.Fatalf("responses %+v / %+v", r1, r2)
		}
		clk.Advance(time.Second)
		n := c.Counts()["firewall"]
		if n.Working() < 1 || n.Working() > 50 {
			t.Fatalf("counts %+v", n)
		}
	})
}
