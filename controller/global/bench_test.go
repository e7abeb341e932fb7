package global

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// benchRound runs full rounds (steps 1-5) against n participants, each
// behind its own HTTP server on 127.0.0.1, real clock, and reports the p50
// and p90 of a round. loss > 0 drops that fraction of requests before they
// are sent (the engine's 500 ms re-send timer recovers them).
func benchRound(b *testing.B, n int, loss float64) {
	topo := testTopology(n)
	store := NewMemStore()
	setup(b, store, topo)
	endpoints := map[string]string{}
	for _, dc := range topo.DCs {
		h, err := transport.NewHandler(newScripted(dc, vnfNames(topo), 1), "bench-token")
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		endpoints[dc] = srv.URL
	}
	ht, err := transport.NewHTTP(transport.HTTPConfig{Endpoints: endpoints, Token: "bench-token", Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ht.Close)
	var tr transport.Transport = ht
	if loss > 0 {
		tr = transport.NewLossy(ht, loss, 1)
	}
	done := make(chan uint64, 1)
	eng, err := New(Config{Interval: time.Hour}, Deps{Clock: clock.Real{}, Transport: tr, Forecaster: newAR1(), Store: store,
		Hooks: Hooks{StepCommitted: func(r uint64, s protocol.Step) {
			if s == protocol.StepEnter {
				done <- r
			}
		}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Stop)
	// Sparse traffic: every DC sends to the next one.
	rate := func(i, j int) float64 {
		if j == (i+1)%n {
			return float64(10000 + 1000*(i%7))
		}
		return 0
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, r := range workloadReports(topo, time.Now(), 5, rate) {
			if err := eng.ReportWorkload(r); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if !eng.Trigger() {
			b.Fatal("round did not start")
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatal("round did not finish in 30 s")
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
	st := eng.Stats()
	b.ReportMetric(float64(st.Retransmissions)/float64(b.N), "resends/round")
	if st.Unreachable > 0 {
		b.Fatalf("%d DCs given up", st.Unreachable)
	}
	recs := eng.Records()
	var steps [6]time.Duration
	for _, r := range recs {
		for _, s := range r.Steps {
			steps[s.Step] += s.Duration
		}
	}
	for s := protocol.StepPredict; s <= protocol.StepEnter; s++ {
		b.ReportMetric(float64(steps[s].Microseconds())/1000/float64(len(recs)), "step"+string(rune('0'+s))+"-ms")
	}
}

func BenchmarkRound50HTTP(b *testing.B)       { benchRound(b, 50, 0) }
func BenchmarkRound50HTTPLoss20(b *testing.B) { benchRound(b, 50, 0.2) }
