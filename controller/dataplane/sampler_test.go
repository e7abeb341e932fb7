package dataplane

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
)

type fakeCounters struct {
	rcv map[string]uint64
	pid int
}

func (f *fakeCounters) InPackets(context.Context, string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for k, v := range f.rcv {
		out[k] = v
	}
	return out, nil
}

func (f *fakeCounters) Pid(string) int { return f.pid }

type statsLog map[string][]local.Stats

func (l statsLog) ReportStats(id string, s local.Stats) error {
	l[id] = append(l[id], s)
	return nil
}

// newTestSampler samples this process's /proc as the forwarder of every
// instance, on a fake clock advanced by the test (and by the flow dump).
func newTestSampler(flowsOf func(context.Context) (map[string]int, error), clk *time.Time) (*statsSampler, *fakeCounters, statsLog) {
	c := &fakeCounters{rcv: map[string]uint64{}, pid: os.Getpid()}
	log := statsLog{}
	return &statsSampler{drv: c, proc: os.DirFS("/proc"), clkTck: 100, dc: "a", flowsOf: flowsOf, sink: log,
		period: time.Second, now: func() time.Time { return *clk }, prev: map[string]lastReading{}}, c, log
}

// The rate's interval is the one between the two counter reads: a flow
// dump that takes 10 ms on one tick and 110 ms on the next does not change
// a steady 1000 packets/s. Before, the time was taken after the dump
// (1000 packets over 1.1 s: 909/s).
func TestSampleRateIgnoresTheFlowDumpTime(t *testing.T) {
	clk := time.Unix(1_700_000_000, 0)
	dump := []time.Duration{10 * time.Millisecond, 110 * time.Millisecond}
	n := 0
	flowsOf := func(context.Context) (map[string]int, error) {
		clk = clk.Add(dump[n%2])
		n++
		return map[string]int{"x": 3}, nil
	}
	s, c, log := newTestSampler(flowsOf, &clk)
	start := clk
	for k := 0; k < 2; k++ {
		c.rcv["x"] = uint64(1000 * k)
		clk = start.Add(time.Duration(k) * time.Second) // the tick
		s.tick(context.Background())
	}
	got := log["x"]
	if len(got) != 1 {
		t.Fatalf("samples %v, want 1", got)
	}
	if math.Abs(got[0].PktRate-1000) > 1e-9 || got[0].Flows != 3 || got[0].FlowsUnknown {
		t.Errorf("sample %+v, want 1000 packets/s, 3 flows known", got[0])
	}
}

// A flow dump that does not return (a hung ovs-vswitchd) is cut at half a
// period: the CPU and packet samples go on, with the flows unknown.
func TestSampleBoundsTheFlowDump(t *testing.T) {
	clk := time.Unix(1_700_000_000, 0)
	hung := func(ctx context.Context) (map[string]int, error) {
		<-ctx.Done() // a switch that never answers: only the bound ends it
		return nil, ctx.Err()
	}
	s, c, log := newTestSampler(hung, &clk)
	s.period = 20 * time.Millisecond
	for k := 0; k < 2; k++ {
		c.rcv["x"] = uint64(10 * k)
		clk = clk.Add(time.Second)
		done := make(chan struct{})
		go func() { s.tick(context.Background()); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a tick with a hung flow dump did not return")
		}
	}
	if got := log["x"]; len(got) != 1 || !got[0].FlowsUnknown || got[0].PktRate != 10 {
		t.Errorf("samples %+v, want one with 10 packets/s and flows unknown", got)
	}
}

// An instance the driver runs but the plane's live view lacks (booting, or
// its routing index lost) is reported with its flows unknown: learned rules
// may still send to it, and a 0 would let the draining and trim rules
// destroy it with calls running. Before, it was reported with 0 flows.
func TestSampleOutsideTheLiveViewIsUnknown(t *testing.T) {
	clk := time.Unix(1_700_000_000, 0)
	flowsOf := func(context.Context) (map[string]int, error) { return map[string]int{"in": 0}, nil }
	s, c, log := newTestSampler(flowsOf, &clk)
	for k := 0; k < 2; k++ {
		c.rcv["in"], c.rcv["out"] = uint64(k), uint64(k)
		clk = clk.Add(time.Second)
		s.tick(context.Background())
	}
	if got := log["in"]; len(got) != 1 || got[0].FlowsUnknown || got[0].Flows != 0 {
		t.Errorf("instance in the live view: %+v, want 0 flows known", got)
	}
	if got := log["out"]; len(got) != 1 || !got[0].FlowsUnknown {
		t.Errorf("instance outside the live view: %+v, want flows unknown", got)
	}
}
