package global

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// acceptClock records when the engine took each report (by DC and time).
type acceptClock struct {
	e    *Engine
	mu   sync.Mutex
	at   map[string]time.Time
	done chan struct{}
}

func (a *acceptClock) ReportWorkload(r protocol.WorkloadReport) error {
	if err := a.e.ReportWorkload(r); err != nil {
		return err
	}
	now := time.Now()
	a.mu.Lock()
	a.at[r.DC+"@"+r.At.Format(time.RFC3339Nano)] = now
	a.mu.Unlock()
	a.done <- struct{}{}
	return nil
}

// The report path from the local controllers to the leader under load: n
// DCs, each with its own transport.Reporter and HTTP connection (a node of
// its own), all report at the same instant (the 1 s tick every local side
// shares) one DP report with a pair per exit DC; the leader's HTTP handler
// hands them to a real round engine's intake. The latency of a report is
// from ReportWorkload at the local side to the engine's acceptance (queue,
// HTTP over loopback, parse, checks, intake). One op is one tick of all n
// DCs; p50/p99/max over every report of the run.
//
//	go test -run xxx -bench BenchmarkReportPathUnderLoad -benchtime 50x ./controller/global/
func BenchmarkReportPathUnderLoad(b *testing.B) {
	for _, n := range []int{4, 50, 200} {
		b.Run(fmt.Sprintf("dcs=%d", n), func(b *testing.B) { benchReportPath(b, n) })
	}
}

func benchReportPath(b *testing.B, n int) {
	top := fsm.Topology{SCSCFDC: "dc0", PCSCF: fsm.VNF{Name: "pcscf", Capacity: 500}, SCSCF: fsm.VNF{Name: "scscf", Capacity: 200},
		Stages: []fsm.VNF{{Name: "firewall", Capacity: 35000}}}
	for i := range n {
		top.DCs = append(top.DCs, fmt.Sprintf("dc%d", i))
		row := make([]float64, n)
		for j := range row {
			if j != i {
				row[j] = 10
			}
		}
		top.DelayMs = append(top.DelayMs, row)
	}
	store := NewMemStore()
	if err := store.Apply(fsm.SetTopology{Topology: top}); err != nil {
		b.Fatal(err)
	}
	mem, err := transport.NewMem(clock.Real{}, transport.MemConfig{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(Config{Interval: time.Minute}, Deps{Clock: clock.Real{}, Transport: mem, Forecaster: newAR1(), Store: store})
	if err != nil {
		b.Fatal(err)
	}
	in := &acceptClock{e: e, at: map[string]time.Time{}, done: make(chan struct{}, n)}
	const token = "bench-token-0123456789abcdef"
	h, err := transport.NewWorkloadHandler(in, token)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	reps := make([]*transport.Reporter, n)
	for i := range reps {
		tg, err := transport.NewHTTPReportTarget(srv.URL, token, &http.Client{Transport: &http.Transport{}})
		if err != nil {
			b.Fatal(err)
		}
		if reps[i], err = transport.NewReporter(transport.ReporterConfig{Targets: []transport.ReportTarget{tg}}); err != nil {
			b.Fatal(err)
		}
		defer reps[i].Close()
	}
	report := func(i int, at time.Time) protocol.WorkloadReport {
		r := protocol.WorkloadReport{DC: top.DCs[i], At: at, Kind: KindDP}
		for _, x := range top.DCs {
			r.Pairs = append(r.Pairs, protocol.PairLoad{Entry: top.DCs[i], Exit: x, Rate: 1234.5})
		}
		return r
	}
	var lat []time.Duration
	sent := map[string]time.Time{}
	for b.Loop() {
		at := time.Now()
		for i, r := range reps {
			if err := r.ReportWorkload(report(i, at)); err != nil {
				b.Fatal(err)
			}
			sent[top.DCs[i]+"@"+at.Format(time.RFC3339Nano)] = at
		}
		for range n {
			<-in.done
		}
	}
	b.StopTimer()
	in.mu.Lock()
	for k, t0 := range sent {
		lat = append(lat, in.at[k].Sub(t0))
	}
	in.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
