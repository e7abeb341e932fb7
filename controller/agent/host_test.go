package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

var h0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/host/proc/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHostFiles(t *testing.T) {
	cpu, err := ParseCPUStat(readTestdata(t, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	if cpu.Total != 93550 || cpu.Busy != 13150 {
		t.Fatalf("cpu %+v, want total 93550 busy 13150", cpu)
	}
	mem, err := ParseMemInfo(readTestdata(t, "meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if mem.Total != 4028384*1024 || mem.Available != 1208515*1024 {
		t.Fatalf("mem %+v", mem)
	}
	nd, err := ParseNetDev(readTestdata(t, "net/dev"))
	if err != nil {
		t.Fatal(err)
	}
	if nd["ens3"] != (NetCounters{RxPackets: 500000, TxPackets: 480000}) || nd["lo"].RxPackets != 1000 || len(nd) != 2 {
		t.Fatalf("net/dev %+v", nd)
	}
	for _, tc := range []struct {
		name, in, want string
		parse          func([]byte) error
	}{
		{"stat without cpu line", "cpu0 1 2 3 4\n", "no aggregate", func(b []byte) error { _, err := ParseCPUStat(b); return err }},
		{"stat short cpu line", "cpu 1 2 3\n", "fields", func(b []byte) error { _, err := ParseCPUStat(b); return err }},
		{"stat bad counter", "cpu 1 2 x 4\n", "field 3", func(b []byte) error { _, err := ParseCPUStat(b); return err }},
		{"meminfo without total", "MemFree: 10 kB\n", "MemTotal", func(b []byte) error { _, err := ParseMemInfo(b); return err }},
		{"meminfo bad unit", "MemTotal: 10 MB\n", "MemTotal", func(b []byte) error { _, err := ParseMemInfo(b); return err }},
		{"net/dev short line", "h\nh\n eth0: 1 2 3\n", "eth0", func(b []byte) error { _, err := ParseNetDev(b); return err }},
		{"net/dev no colon", "h\nh\n eth0 1 2 3\n", "line 3", func(b []byte) error { _, err := ParseNetDev(b); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	// old kernels: MemFree + Buffers + Cached stands in for MemAvailable
	m, err := ParseMemInfo([]byte("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n"))
	if err != nil || m.Available != 35*1024 {
		t.Fatalf("%+v %v", m, err)
	}
}

// hostProc is a fake /proc of a 2-core VM whose counters the test moves on
// each second; it starts from testdata/host/proc.
type hostProc struct {
	fs                 fstest.MapFS
	user, idle         uint64
	rxEth, rxLo        uint64
	memTotal, memAvail int64
}

func newHostProc(t testing.TB) *hostProc {
	p := &hostProc{fs: fstest.MapFS{}, user: 10000, idle: 80000, rxEth: 500000, rxLo: 1000, memTotal: 4028384, memAvail: 1208515}
	p.fs["meminfo"] = &fstest.MapFile{Data: readTestdata(t, "meminfo")}
	p.render()
	return p
}

func (p *hostProc) render() {
	p.fs["stat"] = &fstest.MapFile{Data: fmt.Appendf(nil, "cpu  %d 50 3000 %d 400 0 100 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", p.user, p.idle)}
	p.fs["meminfo"] = &fstest.MapFile{Data: fmt.Appendf(nil, "MemTotal: %d kB\nMemFree: 1 kB\nMemAvailable: %d kB\n", p.memTotal, p.memAvail)}
	p.fs["net/dev"] = &fstest.MapFile{Data: fmt.Appendf(nil, "Inter-|   Receive  |  Transmit\n face |bytes packets ...\n"+
		"    lo: 1 %d 0 0 0 0 0 0 1 %d 0 0 0 0 0 0\n  ens3: 1 %d 0 0 0 0 0 0 1 7 0 0 0 0 0 0\n", p.rxLo, p.rxLo, p.rxEth)}
}

// second moves the counters by one second of a load: cpu percent busy of
// 2 cores × 100 ticks, pkt packets received on ens3 (and some on lo, which
// does not count).
func (p *hostProc) second(cpu float64, pkt uint64) {
	busy := uint64(cpu * 2)
	p.user += busy
	p.idle += 200 - busy
	p.rxEth += pkt
	p.rxLo += 777
	p.render()
}

type recSink struct {
	mu  sync.Mutex
	got []Sample
}

func (s *recSink) ReportStats(_ string, x Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, x)
	return nil
}

func TestHostAgentMeasures(t *testing.T) {
	clk := clock.NewVirtual(h0)
	p := newHostProc(t)
	s := &recSink{}
	a, err := NewHost(HostConfig{ID: "vm-1", Proc: p.fs, Sink: s, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	p.second(40, 1500)
	clk.Advance(time.Second)
	p.memAvail = p.memTotal / 4
	p.second(95, 40000)
	clk.Advance(time.Second)
	a.Stop()
	clk.Advance(10 * time.Second)
	if len(s.got) != 2 {
		t.Fatalf("%d samples, want 2 (none before the second reading, none after Stop)", len(s.got))
	}
	for i, want := range []struct{ cpu, mem, pkt float64 }{{40, 70.0, 1500}, {95, 75, 40000}} {
		g := s.got[i]
		if math.Abs(g.CPU-want.cpu) > 1e-9 || math.Abs(g.Mem-want.mem) > 0.01 || g.PktRate != want.pkt || g.At != h0.Add(time.Duration(i+1)*time.Second) {
			t.Fatalf("sample %d: %+v, want cpu %v mem %v pkt %v", i, g, want.cpu, want.mem, want.pkt)
		}
	}
	if _, err := NewHost(HostConfig{ID: "", Proc: p.fs, Clock: clk}); err == nil {
		t.Fatal("empty ID accepted")
	}
}

// On an S-CSCF the host agent sends its CP counters with every sample; a
// failed read sends the sample without them and says why.
func TestHostAgentCPCounters(t *testing.T) {
	clk := clock.NewVirtual(h0)
	p := newHostProc(t)
	s := &recSink{}
	var errs []error
	reads := []error{nil, errors.New("rpc timeout")}
	n := int64(0)
	a, err := NewHost(HostConfig{ID: "vm-s", Proc: p.fs, Sink: s, Clock: clk, OnError: func(err error) { errs = append(errs, err) },
		CP: func(context.Context) (map[string]int64, error) {
			err := reads[0]
			reads = reads[1:]
			n += 40
			return map[string]int64{"tokyo>london": n}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	for range 2 {
		p.second(10, 100)
		clk.Advance(time.Second)
	}
	a.Stop()
	if len(s.got) != 2 || fmt.Sprint(s.got[0].CP) != "map[tokyo>london:40]" || s.got[1].CP != nil {
		t.Fatalf("samples %+v, want the counters in the first and none in the second", s.got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "rpc timeout") {
		t.Fatalf("errors %v, want the failed read", errs)
	}
}

const agentToken = "agent-token-0123456789abcdef"

// controllerEnv is a DC's local controller on a fake cloud in virtual time,
// behind the stats endpoint on loopback.
type controllerEnv struct {
	clk *clock.Virtual
	c   *local.Controller
	srv *httptest.Server
	h   *StatsHandler
}

func newControllerEnv(t *testing.T) *controllerEnv {
	t.Helper()
	clk := clock.NewVirtual(h0)
	drv, err := fake.New(clk, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := local.New(local.Config{DC: "tokyo", Reactive: true, StatsTimeout: 3 * time.Second,
		VNFs: []local.VNFConfig{{Name: "firewall", Capacity: 35000, Image: "fw", Flavor: "m1", Min: 1,
			Thresholds: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 35000}}}}, drv, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	clk.Advance(0)
	h, err := NewStatsHandler(map[string]Intake{"tokyo": c}, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &controllerEnv{clk: clk, c: c, srv: srv, h: h}
}

// startHostAgent runs a host agent for instance id on a fake /proc,
// pushing to this controller over HTTP; the test stops it.
func (e *controllerEnv) startHostAgent(t *testing.T, id string, onError func(error)) (*hostProc, *HostAgent, *Pusher) {
	t.Helper()
	p := newHostProc(t)
	push, err := NewPusher(e.srv.URL, "tokyo", agentToken, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewHost(HostConfig{ID: id, Proc: p.fs, Sink: push, Clock: e.clk, OnError: onError})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	return p, a, push
}

func (e *controllerEnv) ids(st local.State) []string {
	var out []string
	for _, in := range e.c.Instances() {
		if in.State == st {
			out = append(out, in.ID)
		}
	}
	return out
}

// The agent of a VM pushes its /proc numbers to the local controller over
// HTTP; 5 s of CPU, memory and packet rate over the firewall's thresholds
// overload the instance and the controller scales out reactively.
func TestAgentDrivesReactiveScaling(t *testing.T) {
	e := newControllerEnv(t)
	ids := e.ids(local.StateNormal)
	if len(ids) != 1 {
		t.Fatalf("instances %+v, want one normal firewall", e.c.Instances())
	}
	var errs []error
	p, a, _ := e.startHostAgent(t, ids[0], func(err error) { errs = append(errs, err) })
	defer a.Stop()
	// 3 quiet seconds: normal, reports arrive
	for range 3 {
		p.second(20, 1000)
		e.clk.Advance(time.Second)
	}
	in := e.c.Instances()[0]
	if in.State != local.StateNormal || in.Last.At != h0.Add(3*time.Second) || math.Abs(in.Last.CPU-20) > 1e-9 || in.Last.PktRate != 1000 {
		t.Fatalf("after quiet seconds: %+v", in)
	}
	// hot: 95% CPU, 70% memory (testdata), 40000 pkt/s
	for range 5 {
		p.second(95, 40000)
		e.clk.Advance(time.Second)
	}
	e.clk.Advance(0)
	if len(errs) != 0 {
		t.Fatalf("agent errors: %v", errs)
	}
	counts := e.c.Counts()["firewall"]
	if counts.Overload != 1 || counts.Working() != 2 {
		t.Fatalf("counts %+v, want the instance overloaded and one reactive instance added", counts)
	}
	reactive := 0
	for _, act := range e.c.Actions() {
		if act.Reason == local.ReasonReactive {
			reactive++
		}
	}
	if reactive != 1 {
		t.Fatalf("actions %+v, want one reactive scale-out", e.c.Actions())
	}
	// the agent goes silent (VM hung): the statistics timeout fails it
	a.Stop()
	e.clk.Advance(4 * time.Second)
	failed := false
	for _, in := range e.c.Instances() {
		// the failed instance is destroyed and replaced
		failed = failed || strings.Contains(in.Why, "replaces "+ids[0]+" (no statistics")
	}
	if !failed {
		t.Fatalf("silent instance not failed: %+v", e.c.Instances())
	}
}

func TestStatsHandlerRefuses(t *testing.T) {
	e := newControllerEnv(t)
	id := e.ids(local.StateNormal)[0]
	var outcomes []string
	e.h.OnReport = func(dc, o string) { outcomes = append(outcomes, dc+":"+o) }
	var cps []string
	e.h.OnCP = func(dc, inst string, at time.Time, cp map[string]int64) {
		cps = append(cps, fmt.Sprintf("%s %s %s %v", dc, inst, at.Sub(h0), cp))
	}
	good := func(inst string, sec int) string {
		return fmt.Sprintf(`{"instance":%q,"at":%q,"cpu":10,"mem":20,"pktRate":5,"flows":0}`, inst,
			h0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339))
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		wantMsg                         string
	}{
		{"accepted", "POST", StatsPath("tokyo"), agentToken, good(id, 1), 204, ""},
		{"bad token", "POST", StatsPath("tokyo"), "wrong", good(id, 2), 401, "token"},
		{"no token", "POST", StatsPath("tokyo"), "", good(id, 2), 401, "token"},
		{"unknown instance", "POST", StatsPath("tokyo"), agentToken, good("tokyo-firewall-999", 2), 404, "tokyo-firewall-999"},
		{"DC not on this node", "POST", StatsPath("london"), agentToken, good(id, 2), 404, "datacenter"},
		{"GET", "GET", StatsPath("tokyo"), agentToken, "", 405, "POST"},
		{"unknown field", "POST", StatsPath("tokyo"), agentToken, `{"instance":"x","at":"2026-01-01T00:00:00Z","cpux":1}`, 400, "cpux"},
		{"cpu over 100", "POST", StatsPath("tokyo"), agentToken, `{"instance":"x","at":"2026-01-01T00:00:00Z","cpu":101}`, 400, "cpu"},
		{"no instance", "POST", StatsPath("tokyo"), agentToken, `{"at":"2026-01-01T00:00:00Z"}`, 400, "instance"},
		{"no time", "POST", StatsPath("tokyo"), agentToken, `{"instance":"x"}`, 400, "at:"},
		{"negative flows", "POST", StatsPath("tokyo"), agentToken, `{"instance":"x","at":"2026-01-01T00:00:00Z","flows":-1}`, 400, "flows"},
		{"flows with flowsUnknown", "POST", StatsPath("tokyo"), agentToken, `{"instance":"x","at":"2026-01-01T00:00:00Z","flows":3,"flowsUnknown":true}`, 400, "flowsUnknown"},
		{"too large", "POST", StatsPath("tokyo"), agentToken, `{"instance":"` + strings.Repeat("x", MaxStatsBytes) + `"}`, 413, ""},
		{"cp counters", "POST", StatsPath("tokyo"), agentToken, strings.Replace(good(id, 3), `"flows":0`, `"flows":0,"cp":{"tokyo>london":41,">london":2}`, 1), 204, ""},
		{"cp negative", "POST", StatsPath("tokyo"), agentToken, strings.Replace(good(id, 4), `"flows":0`, `"flows":0,"cp":{"tokyo>london":-1}`, 1), 400, "cp["},
		{"cp key without >", "POST", StatsPath("tokyo"), agentToken, strings.Replace(good(id, 4), `"flows":0`, `"flows":0,"cp":{"tokyo":1}`, 1), 400, "cp["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, err := e.srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.want || !strings.Contains(string(b), tc.wantMsg) {
				t.Fatalf("got %d %s, want %d containing %q", res.StatusCode, b, tc.want, tc.wantMsg)
			}
		})
	}
	if outcomes[0] != "tokyo:accepted" || len(outcomes) != 15 { // the unknown DC has no controller to count for
		t.Fatalf("outcomes %v", outcomes)
	}
	// only the accepted report with counters reaches the CP meter's store
	if want := []string{"tokyo " + id + " 3s map[>london:2 tokyo>london:41]"}; fmt.Sprint(cps) != fmt.Sprint(want) {
		t.Fatalf("OnCP heard %v, want %v", cps, want)
	}
	// a pusher with the wrong token sees the refusal
	p, err := NewPusher(strings.TrimPrefix(e.srv.URL, "http://"), "tokyo", "wrong", e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ReportStats(id, Sample{At: h0.Add(9 * time.Second)}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	for _, bad := range []struct{ base, dc, token string }{{"ftp://x", "tokyo", "t"}, {"http://x", "", "t"}, {"http://x", "a/b", "t"}, {"x:1", "tokyo", ""}} {
		if _, err := NewPusher(bad.base, bad.dc, bad.token, nil); err == nil {
			t.Fatalf("NewPusher%+v accepted", bad)
		}
	}
	if _, err := NewStatsHandler(map[string]Intake{"tokyo": e.c}, ""); err == nil {
		t.Fatal("empty token accepted")
	}
}

func FuzzParseStatsReport(f *testing.F) {
	f.Add([]byte(`{"instance":"tokyo-fw-1","at":"2026-01-01T00:00:00Z","cpu":10,"mem":20,"pktRate":5,"flows":3}`))
	f.Add([]byte(`{"instance":"","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"instance":"x","at":"2026-01-01T00:00:00Z","cpu":1e400}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"instance":"s1","at":"2026-01-01T00:00:00Z","cp":{"a>b":3,">b":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatsReport(bytes.NewReader(b))
		if err != nil {
			if s.Instance != "" || !s.At.IsZero() || s.CP != nil {
				t.Fatalf("error %v with a non-zero report", err)
			}
			return
		}
		if s.Instance == "" || s.CPU < 0 || s.CPU > 100 || s.Mem < 0 || s.Mem > 100 || s.PktRate < 0 || s.Flows < 0 || s.At.IsZero() {
			t.Fatalf("accepted %+v", s)
		}
		for k, v := range s.CP {
			if v < 0 || !strings.Contains(k, ">") {
				t.Fatalf("accepted cp[%q] = %d", k, v)
			}
		}
	})
}

func FuzzParseHostFiles(f *testing.F) {
	for _, n := range []string{"stat", "meminfo", "net/dev"} {
		b, err := os.ReadFile("testdata/host/proc/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("cpu 18446744073709551615 1 1 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCPUStat(b); err == nil && c.Busy > c.Total {
			t.Fatalf("busy %d > total %d", c.Busy, c.Total)
		}
		if m, err := ParseMemInfo(b); err == nil && (m.Total <= 0 || m.Available < 0 || m.Available > m.Total) {
			t.Fatalf("meminfo %+v", m)
		}
		_, _ = ParseNetDev(b)
	})
}

// A host agent measures the machine, not the calls on it: its samples say
// the flow count is unknown, on the wire and at the local controller, so a
// draining or trimmed instance on a VM is not destroyed as "0 flows" with
// calls pinned to it (the openstack deployment's agents).
func TestHostAgentFlowsAreUnknown(t *testing.T) {
	e := newControllerEnv(t)
	id := e.ids(local.StateNormal)[0]
	p, a, push := e.startHostAgent(t, id, nil)
	defer a.Stop()
	for range 2 {
		p.second(20, 1000)
		e.clk.Advance(time.Second)
	}
	in := e.c.Instances()[0]
	if in.Last.At != h0.Add(2*time.Second) || !in.Last.FlowsUnknown || in.Last.Flows != 0 {
		t.Fatalf("last statistics %+v: want a sample at 2 s whose flow count is unknown", in.Last)
	}
	// an agent that counts (a Kamailio Agent) still reports its count
	if err := push.ReportStats(id, Sample{At: h0.Add(2500 * time.Millisecond), ActiveDialogs: 4}); err != nil {
		t.Fatal(err)
	}
	if in := e.c.Instances()[0]; in.Last.FlowsUnknown || in.Last.Flows != 4 {
		t.Fatalf("last %+v: want a known count of 4", in.Last)
	}
}
