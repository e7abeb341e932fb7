package sipglue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/drivers"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
)

type intakeRec struct {
	mu  sync.Mutex
	got map[string][]local.Stats
	err error
}

func (r *intakeRec) ReportStats(id string, s local.Stats) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]local.Stats{}
	}
	r.got[id] = append(r.got[id], s)
	return r.err
}

func TestStatsSink(t *testing.T) {
	at := time.Unix(100, 0)
	a, b := &intakeRec{}, &intakeRec{err: errors.New("refused")}
	s := NewStatsSink(map[string]StatsIntake{"dc0": a, "dc1": b})
	s.Bind("p0", "dc0")
	s.Bind("p1", "dc1")
	s.Bind("px", "dc9")
	sample := agent.Sample{At: at, CPU: 12.5, Mem: 3, PktRate: 140, TxnRate: 20, ActiveTransactions: 2, ActiveDialogs: 5}
	for _, tc := range []struct {
		name, id string
		wantErr  string
	}{
		{"forwarded to its DC", "p0", ""},
		{"the controller's error comes back", "p1", "refused"},
		{"unbound instance", "nobody", "not bound"},
		{"DC without a controller", "px", "no local controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.ReportStats(tc.id, sample)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
	want := local.Stats{At: at, CPU: 12.5, Mem: 3, PktRate: 140, Flows: 7}
	if got := a.got["p0"]; len(got) != 1 || got[0] != want {
		t.Fatalf("dc0 got %+v, want [%+v]", got, want)
	}
	if len(b.got["p1"]) != 1 || len(a.got["p1"]) != 0 {
		t.Fatalf("p1 went to the wrong DC: dc0 %v dc1 %v", a.got, b.got)
	}
	s.Unbind("p0")
	if err := s.ReportStats("p0", sample); err == nil {
		t.Fatal("unbound instance still forwarded")
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// fakeRuntimes emits driver events to the Agents and knows one instance.
type fakeRuntimes struct {
	mu sync.Mutex
	h  []drivers.EventHandler
	rt map[string]localdrv.Runtime
}

func (f *fakeRuntimes) Subscribe(h drivers.EventHandler) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h = append(f.h, h)
	return func() {}
}

func (f *fakeRuntimes) Runtime(id string) (localdrv.Runtime, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt, ok := f.rt[id]
	return rt, ok
}

func (f *fakeRuntimes) emit(ev drivers.Event) {
	f.mu.Lock()
	hs := append([]drivers.EventHandler(nil), f.h...)
	f.mu.Unlock()
	for _, h := range hs {
		h(ev)
	}
}

type counters struct{ vals map[string]int64 }

func (c *counters) Stats(_ context.Context, names ...string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, n := range names {
		out[n] = c.vals[n]
	}
	return out, nil
}

func statLine(pid, ppid int, utime, stime uint64) string {
	return fmt.Sprintf("%d (kamailio) S %d %d %d 0 -1 4194560 1 0 0 0 %d %d 0 0 20 0 1 0 100 1000 200 18446744073709551615\n", pid, ppid, pid, pid, utime, stime)
}

// An active event starts an agent whose samples reach the DC's controller
// every second; a gone event stops it.
func TestAgentsFollowDriverEvents(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1000, 0))
	proc := fstest.MapFS{
		"42/stat":   {Data: []byte(statLine(42, 1, 10, 10))},
		"42/status": {Data: []byte("VmRSS: 4000 kB\nRssAnon: 1000 kB\nRssShmem: 3000 kB\n")},
	}
	cnt := &counters{vals: map[string]int64{"core:rcv_requests": 0, "shmem:total_size": 100, "dialog:active_dialogs": 3}}
	rts := &fakeRuntimes{rt: map[string]localdrv.Runtime{"p1": {Pid: 42}}}
	in := &intakeRec{}
	sink := NewStatsSink(map[string]StatsIntake{"dc0": in})
	ag, err := StartAgents(AgentsConfig{Driver: rts, Sink: sink, Clock: clk, Proc: proc, ClkTck: 100,
		Counters: func(localdrv.Runtime) agent.Counters { return cnt }, OnError: func(id string, err error) { t.Logf("agent %s: %v", id, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	rts.emit(drivers.Event{ID: "unknown", DC: "dc0", State: drivers.StateActive}) // no runtime: ignored
	rts.emit(drivers.Event{ID: "p1", DC: "dc0", State: drivers.StateBooting})
	if r := ag.Running(); len(r) != 0 {
		t.Fatalf("agents before active: %v", r)
	}
	rts.emit(drivers.Event{ID: "p1", DC: "dc0", State: drivers.StateActive})
	rts.emit(drivers.Event{ID: "p1", DC: "dc0", State: drivers.StateActive}) // duplicate: one agent
	if r := ag.Running(); len(r) != 1 || r[0] != "p1" {
		t.Fatalf("running %v, want [p1]", r)
	}
	cnt.vals["core:rcv_requests"] = 50
	proc["42/stat"] = &fstest.MapFile{Data: []byte(statLine(42, 1, 30, 10))}
	clk.Advance(time.Second)
	in.mu.Lock()
	got := in.got["p1"]
	in.mu.Unlock()
	if len(got) != 1 || got[0].PktRate != 50 || got[0].Flows != 3 || got[0].CPU != 20 {
		t.Fatalf("samples %+v, want one with 50 pkt/s, 3 flows, 20%% CPU", got)
	}
	rts.emit(drivers.Event{ID: "p1", DC: "dc0", State: drivers.StateGone})
	if r := ag.Running(); len(r) != 0 {
		t.Fatalf("running after gone: %v", r)
	}
	clk.Advance(3 * time.Second)
	in.mu.Lock()
	n := len(in.got["p1"])
	in.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d samples after the instance was gone, want none more", n-1)
	}
	if _, err := StartAgents(AgentsConfig{}); err == nil {
		t.Fatal("empty config accepted")
	}
}
