package global

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// ar1 is a test-only AR(1) forecaster (paper eq. 1) over the last 10 values:
// û = μ + φ(u_t − μ), φ the lag-1 autocorrelation clipped to [-1, 1].
type ar1 struct {
	mu sync.Mutex
	h  map[string][]float64
}

func newAR1() *ar1 { return &ar1{h: map[string][]float64{}} }

func (a *ar1) Observe(avg map[string]float64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for k, x := range avg {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			errs = append(errs, fmt.Errorf("ar1 %s: non-finite observation", k))
			continue
		}
		h := append(a.h[k], x)
		if len(h) > 10 {
			h = h[len(h)-10:]
		}
		a.h[k] = h
	}
	return errors.Join(errs...)
}

func (a *ar1) Predict(keys []string) map[string]Forecast {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]Forecast{}
	for _, k := range keys {
		v := a.predict(k)
		out[k] = Forecast{Value: v, Mean: v, Model: "test-ar1"}
	}
	return out
}

func (a *ar1) predict(k string) float64 {
	h := a.h[k]
	if len(h) == 0 {
		return 0
	}
	mean := 0.0
	for _, x := range h {
		mean += x
	}
	mean /= float64(len(h))
	var num, den float64
	for i, x := range h {
		den += (x - mean) * (x - mean)
		if i > 0 {
			num += (x - mean) * (h[i-1] - mean)
		}
	}
	phi := 0.0
	if den > 0 {
		phi = max(-1, min(1, num/den))
	}
	return mean + phi*(h[len(h)-1]-mean)
}

// scripted is a test participant: it answers step 2 with its provisioning,
// applies step-4 targets, enters the interval at step 5, answers a repeated
// header with the cached answer without acting again, and counts what it did.
type scripted struct {
	dc string

	mu       sync.Mutex
	vnfs     map[string]*protocol.VNFProvision
	order    []string
	interval uint64
	paths    []protocol.PathEntry
	cache    map[protocol.Header]protocol.Response
	acted    map[[2]uint64]int // (round, step) → times acted
	calls    int
	dups     int
	onHandle func(protocol.Request) // runs before acting, outside the lock
	features []string               // advertised in the step-2 report
}

func newScripted(dc string, vnfs []string, working int) *scripted {
	s := &scripted{dc: dc, vnfs: map[string]*protocol.VNFProvision{}, cache: map[protocol.Header]protocol.Response{}, acted: map[[2]uint64]int{}}
	for _, v := range vnfs {
		s.vnfs[v] = &protocol.VNFProvision{VNF: v, Working: working}
		s.order = append(s.order, v)
	}
	return s
}

func (s *scripted) Handle(req protocol.Request) protocol.Response {
	s.mu.Lock()
	hook := s.onHandle
	s.mu.Unlock()
	if hook != nil {
		hook(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if r, ok := s.cache[req.Header]; ok {
		s.dups++
		return r
	}
	resp := protocol.Response{Header: req.Header}
	s.acted[[2]uint64{req.Round, uint64(req.Step)}]++
	switch req.Step {
	case protocol.StepAcquire:
		rep := &protocol.ProvisionReport{DC: s.dc, Features: s.features}
		for _, v := range s.order {
			rep.VNFs = append(rep.VNFs, *s.vnfs[v])
		}
		resp.Provision = rep
	case protocol.StepBroadcast:
		for _, t := range req.Decision.Targets {
			v := s.vnfs[t.VNF]
			if v == nil {
				v = &protocol.VNFProvision{VNF: t.VNF}
				s.vnfs[t.VNF] = v
				s.order = append(s.order, t.VNF)
			}
			v.Working = t.Working
			v.Buffered += t.ToBuffer - t.Reuse
			resp.Created += t.Create
			resp.Reused += t.Reuse
		}
		s.paths = req.Decision.Paths
	case protocol.StepEnter:
		s.interval = req.Round + 1
	}
	s.cache[req.Header] = resp
	return resp
}

func (s *scripted) actedCount(round uint64, step protocol.Step) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acted[[2]uint64{round, uint64(step)}]
}

func (s *scripted) maxActed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for _, n := range s.acted {
		m = max(m, n)
	}
	return m
}

func (s *scripted) state() (uint64, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interval, s.calls, s.dups
}

// testTopology is n DCs in groups of two with the paper's inter-group delays
// and Table 2's VNFs; the S-CSCF lives in dc0.
func testTopology(n int) fsm.Topology {
	g := [][]float64{{5, 10, 15, 50}, {10, 5, 20, 17}, {15, 20, 5, 15}, {50, 17, 15, 5}}
	t := fsm.Topology{
		SCSCFDC: "dc0",
		PCSCF:   fsm.VNF{Name: "pcscf", Capacity: 500, Min: 1},
		SCSCF:   fsm.VNF{Name: "scscf", Capacity: 200, Min: 1},
		Stages:  []fsm.VNF{{Name: "firewall", Capacity: 35000}, {Name: "ids", Capacity: 20000}, {Name: "transcoder", Capacity: 15000}},
	}
	for i := 0; i < n; i++ {
		t.DCs = append(t.DCs, fmt.Sprintf("dc%d", i))
	}
	t.DelayMs = make([][]float64, n)
	for i := range t.DelayMs {
		t.DelayMs[i] = make([]float64, n)
		for j := range t.DelayMs[i] {
			if i != j {
				t.DelayMs[i][j] = g[(i/2)%4][(j/2)%4]
			}
		}
	}
	return t
}

func vnfNames(t fsm.Topology) []string {
	out := []string{t.PCSCF.Name, t.SCSCF.Name}
	for _, s := range t.Stages {
		out = append(out, s.Name)
	}
	return out
}

func mustApply(t testing.TB, s Store, c fsm.Command) {
	t.Helper()
	if err := s.Apply(c); err != nil {
		t.Fatalf("apply %T: %v", c, err)
	}
}

func setup(t testing.TB, s Store, topo fsm.Topology) {
	t.Helper()
	mustApply(t, s, fsm.SetTopology{Topology: topo})
	mustApply(t, s, fsm.SetPolicy{Policy: fsm.Policy{DelayBoundMs: 250}})
}

// workloadReports is one second's reports of every DC: DP workload and
// delays, plus CP workload on every 5th tick.
func workloadReports(topo fsm.Topology, at time.Time, tick int, rate func(i, j int) float64) []protocol.WorkloadReport {
	var out []protocol.WorkloadReport
	for i, a := range topo.DCs {
		dp := protocol.WorkloadReport{DC: a, At: at, Kind: KindDP, DelaysMs: map[string]float64{}}
		cp := protocol.WorkloadReport{DC: a, At: at, Kind: KindCP}
		for j, b := range topo.DCs {
			if r := rate(i, j); r > 0 {
				dp.Pairs = append(dp.Pairs, protocol.PairLoad{Entry: a, Exit: b, Rate: r})
				cp.Pairs = append(cp.Pairs, protocol.PairLoad{Entry: a, Exit: b, Rate: r / 100})
			}
			if i != j {
				dp.DelaysMs[b] = topo.DelayMs[i][j]
			}
		}
		out = append(out, dp)
		if tick%5 == 0 {
			out = append(out, cp)
		}
	}
	return out
}
