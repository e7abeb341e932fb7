package sipglue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

var testDCs = []string{"dc0", "dc1", "dc2"}

func TestParsePairKey(t *testing.T) {
	for _, tc := range []struct {
		key, e, x string
		ok        bool
	}{
		{"dc0>dc1", "dc0", "dc1", true},
		{"dc2>dc2", "dc2", "dc2", true},
		{">dc1", "", "", false},    // caller not registered
		{"dc0>", "", "", false},    // callee not registered
		{"dc9>dc1", "", "", false}, // not a DC of the topology
		{"dc0", "", "", false},
		{"dc0>dc1>dc2", "", "", false},
		{"", "", "", false},
	} {
		e, x, ok := ParsePairKey(tc.key, testDCs)
		if e != tc.e || x != tc.x || ok != tc.ok {
			t.Errorf("ParsePairKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, e, x, ok, tc.e, tc.x, tc.ok)
		}
	}
}

const dumpOK = `[{"entry":184,"size":2,"slot":[{"name":"dc0>dc1","value":41,"type":"int"},{"name":"s","value":"text","type":"str"}]},{"entry":3,"size":1,"slot":[{"name":"k","value":2,"type":"int"}]}]`

func TestParseHTableDump(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]int64
		bad      bool
	}{
		{"items", dumpOK, map[string]int64{"dc0>dc1": 41, "k": 2}, false},
		{"empty table", `[]`, map[string]int64{}, false},
		{"not an array", `{"a":1}`, nil, true},
		{"int item with a string value", `[{"slot":[{"name":"a","value":"x","type":"int"}]}]`, nil, true},
		{"not json", `[`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHTableDump(json.RawMessage(tc.in))
			if tc.bad != (err != nil) {
				t.Fatalf("err %v", err)
			}
			if !tc.bad && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseHTableDump(f *testing.F) {
	f.Add([]byte(dumpOK))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"slot":[{"name":"a","value":1e30,"type":"int"}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseHTableDump(b)
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}

func FuzzParsePairKey(f *testing.F) {
	for _, s := range []string{"dc0>dc1", ">dc1", "dc0>", "a>b>c", ">", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, x, ok := ParsePairKey(s, testDCs)
		if ok != (e != "" && x != "") || ok && s != e+">"+x {
			t.Fatalf("ParsePairKey(%q) = %q, %q, %v", s, e, x, ok)
		}
	})
}

// fakeKam serves htable dumps per RPC address.
type fakeKam struct {
	mu   sync.Mutex
	tab  map[netip.AddrPort]map[string]int64
	fail map[netip.AddrPort]bool
}

func (k *fakeKam) call(_ context.Context, rpc netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if method != "htable.dump" || len(params) != 1 || params[0] != "cp" {
		return nil, fmt.Errorf("unexpected call %s %v", method, params)
	}
	if k.fail[rpc] {
		return nil, errors.New("timeout")
	}
	var slot []map[string]any
	for n, v := range k.tab[rpc] {
		slot = append(slot, map[string]any{"name": n, "value": v, "type": "int"})
	}
	return json.Marshal([]map[string]any{{"entry": 1, "size": len(slot), "slot": slot}})
}

type reports struct {
	mu  sync.Mutex
	got []protocol.WorkloadReport
	err error
}

func (r *reports) ReportWorkload(w protocol.WorkloadReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, w)
	return r.err
}

func rate(rep protocol.WorkloadReport, e, x string) float64 {
	for _, p := range rep.Pairs {
		if p.Entry == e && p.Exit == x {
			return p.Rate
		}
	}
	return 0
}

const (
	c0to1 = "dc0>dc1"
	c1to1 = "dc1>dc1"
	cUnk  = ">dc1" // a caller that never registered
)

func TestCPMeter(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(5000, 0))
	s1, s2 := netip.MustParseAddrPort("127.80.2.1:8090"), netip.MustParseAddrPort("127.80.2.2:8090")
	kam := &fakeKam{tab: map[netip.AddrPort]map[string]int64{s1: {c0to1: 100}}, fail: map[netip.AddrPort]bool{}}
	targets := []Target{{"s1", s1}}
	var tmu sync.Mutex
	rep := &reports{}
	var errs []error
	m, err := NewCPMeter(CPMeterConfig{DC: "dc0", DCs: testDCs, Call: kam.call, Report: rep, Clock: clk,
		Targets: func() []Target { tmu.Lock(); defer tmu.Unlock(); return append([]Target(nil), targets...) },
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Start() // baseline: no report
	if len(rep.got) != 0 {
		t.Fatalf("report on the baseline: %v", rep.got)
	}
	steps := []struct {
		name    string
		change  func()
		want01  float64
		want11  float64
		unknown int64
	}{
		{"deltas over 5 s", func() { kam.tab[s1][c0to1] = 150; kam.tab[s1][c1to1] = 5 }, 10, 1, 0},
		{"a new S-CSCF counts from 0", func() {
			kam.tab[s1][c0to1] = 175
			kam.tab[s2] = map[string]int64{c0to1: 25, cUnk: 7}
			targets = append(targets, Target{"s2", s2})
		}, 10, 0, 7},
		{"a restarted S-CSCF counts its new value", func() { kam.tab[s2] = map[string]int64{c0to1: 10} }, 2, 0, 7},
		{"an unreadable S-CSCF reports nothing this time", func() { kam.fail[s1] = true; kam.tab[s1][c0to1] = 200; kam.tab[s2][c0to1] = 20 }, 2, 0, 7},
		{"and its delta is spread over the time since its last read", func() { kam.fail[s1] = false }, 2.5, 0, 7},
		{"a gone S-CSCF is forgotten", func() { targets = targets[1:] }, 0, 0, 7},
	}
	for i, st := range steps {
		kam.mu.Lock()
		tmu.Lock()
		st.change()
		tmu.Unlock()
		kam.mu.Unlock()
		clk.Advance(5 * time.Second)
		if len(rep.got) != i+1 {
			t.Fatalf("%s: %d reports, want %d", st.name, len(rep.got), i+1)
		}
		r := rep.got[i]
		if r.Kind != "cp" || r.DC != "dc0" || !r.At.Equal(clk.Now()) {
			t.Fatalf("%s: header %+v", st.name, r)
		}
		if g := rate(r, "dc0", "dc1"); math.Abs(g-st.want01) > 1e-9 {
			t.Fatalf("%s: dc0→dc1 %v tx/s, want %v (%+v)", st.name, g, st.want01, r.Pairs)
		}
		if g := rate(r, "dc1", "dc1"); math.Abs(g-st.want11) > 1e-9 {
			t.Fatalf("%s: dc1→dc1 %v tx/s, want %v", st.name, g, st.want11)
		}
		if m.Unmapped() != st.unknown {
			t.Fatalf("%s: unmapped %d, want %d", st.name, m.Unmapped(), st.unknown)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("errors %v, want the one failed read", errs)
	}
	if len(m.Reports()) != len(steps) {
		t.Fatalf("Reports() has %d", len(m.Reports()))
	}
	m.Stop()
	clk.Advance(time.Minute)
	if len(rep.got) != len(steps) {
		t.Fatal("reports after Stop")
	}
	rep.err = errors.New("engine down")
	if _, ok := m.Step(context.Background()); !ok || len(errs) != 2 {
		t.Fatalf("report error not heard: %v", errs)
	}
}

func TestNewCPMeterErrors(t *testing.T) {
	ok := CPMeterConfig{DC: "dc0", DCs: testDCs, Targets: func() []Target { return nil }, Call: (&fakeKam{}).call, Report: &reports{}, Clock: clock.NewVirtual(time.Unix(0, 0))}
	for _, tc := range []struct {
		name string
		mod  func(c *CPMeterConfig)
	}{
		{"no DC", func(c *CPMeterConfig) { c.DC = "" }},
		{"DC not in DCs", func(c *CPMeterConfig) { c.DC = "dc7" }},
		{"no targets", func(c *CPMeterConfig) { c.Targets = nil }},
		{"no clock", func(c *CPMeterConfig) { c.Clock = nil }},
		{"negative period", func(c *CPMeterConfig) { c.Period = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if _, err := NewCPMeter(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// With driver openstack the S-CSCFs' agents push their counters; the meter
// reads the last pushed ones, and an instance whose agent went silent
// stops being a target.
func TestCPMeterPushedCounters(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(5000, 0))
	store := NewPushedCP(clk, 3*time.Second)
	rep := &reports{}
	m, err := NewCPMeter(CPMeterConfig{DC: "dc0", DCs: testDCs, Report: rep, Clock: clk, Period: time.Second,
		Targets: func() []Target { return store.Targets("dc0") }, Read: store.Read})
	if err != nil {
		t.Fatal(err)
	}
	store.Put("dc0", "s1", clk.Now(), map[string]int64{c0to1: 100})
	store.Put("dc1", "p1", clk.Now(), map[string]int64{c1to1: 7}) // another DC's instance: not a target
	m.Start()
	for i := 1; i <= 5; i++ {
		clk.Advance(500 * time.Millisecond)
		if i <= 2 {
			store.Put("dc0", "s1", clk.Now(), map[string]int64{c0to1: 100 + int64(i)*10}) // 10 tx/s
		}
		clk.Advance(500 * time.Millisecond)
	}
	var got []float64
	for _, r := range rep.got {
		got = append(got, rate(r, "dc0", "dc1"))
	}
	// two seconds at 10 tx/s, then the agent is silent: no change, and
	// after MaxAge no target at all
	if fmt.Sprint(got) != "[10 10 0 0 0]" {
		t.Fatalf("dc0→dc1 rates %v, want 10 tx/s for two seconds, then none", got)
	}
	if ts := store.Targets("dc0"); len(ts) != 0 {
		t.Fatalf("silent instance still a target: %v", ts)
	}
	if _, err := store.Read(context.Background(), Target{ID: "s1"}); err == nil {
		t.Fatal("read of a forgotten instance succeeded")
	}
}
