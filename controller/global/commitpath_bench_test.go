package global

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// Reports and reads on the raft leader while its rounds commit: a 3-node
// raft cluster in this process (raft's in-memory transport, each node's
// log in raft-wal on disk: every commit is a quorum write with fsyncs), the
// leader's round engine on a RaftStore running rounds back to back with 4
// scripted DCs (transport.Mem, 1 ms), while every DC's reporter hands it a
// DP report every 5 ms and a reader calls Records and Running every 5 ms.
// One op is one round (5 commits); reported: ReportWorkload's and the
// read's latency p50/p99/max over the run, and the mean commit time of a
// round's steps. While the engine held its lock across Store.Apply, a
// report or read that came during a commit waited for it.
//
//	go test -run xxx -bench BenchmarkReportsWhileRoundsCommit -benchtime 40x ./controller/global/
func BenchmarkReportsWhileRoundsCommit(b *testing.B) {
	nodes := raftCluster(b, 3, true)
	defer func() {
		for _, n := range nodes {
			_ = n.Shutdown()
		}
	}()
	store := NewRaftStore(nodes[waitLeader(b, nodes, -1)], 5*time.Second)
	topo := testTopology(4)
	setup(b, store, topo)
	mem, err := transport.NewMem(clock.Real{}, transport.MemConfig{Delay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	for _, dc := range topo.DCs {
		mem.Register(dc, newScripted(dc, vnfNames(topo), 1))
	}
	entered := make(chan struct{}, 1)
	hooks := Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
		if step == protocol.StepEnter {
			entered <- struct{}{}
		}
	}}
	e, err := New(Config{Interval: time.Minute, Retransmit: 200 * time.Millisecond, StepDeadline: 2 * time.Second},
		Deps{Clock: clock.Real{}, Transport: mem, Forecaster: newAR1(), Store: store, Hooks: hooks})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	defer e.Stop()

	var (
		mu          sync.Mutex
		reports     []time.Duration
		reads       []time.Duration
		wg          sync.WaitGroup
		stop        = make(chan struct{})
		reportErrMu sync.Mutex
		reportErr   error
	)
	every := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					f()
				}
			}
		}()
	}
	for i, dc := range topo.DCs {
		every(func() {
			r := protocol.WorkloadReport{DC: dc, At: time.Now(), Kind: KindDP,
				Pairs: []protocol.PairLoad{{Entry: dc, Exit: topo.DCs[(i+1)%len(topo.DCs)], Rate: 1000}}}
			t := time.Now()
			err := e.ReportWorkload(r)
			d := time.Since(t)
			if err != nil {
				reportErrMu.Lock()
				reportErr = err
				reportErrMu.Unlock()
			}
			mu.Lock()
			reports = append(reports, d)
			mu.Unlock()
		})
	}
	every(func() {
		t := time.Now()
		_ = e.Records()
		_ = e.Running()
		d := time.Since(t)
		mu.Lock()
		reads = append(reads, d)
		mu.Unlock()
	})
	for b.Loop() {
		if !e.Trigger() {
			b.Fatal("Trigger: the engine is stopped or a round is in progress")
		}
		select {
		case <-entered:
		case <-time.After(30 * time.Second): // failure guard
			b.Fatalf("round not finished within 30 s: %+v", e.Stats())
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if reportErr != nil {
		b.Fatal(reportErr)
	}
	var commit time.Duration
	steps := 0
	for _, r := range e.Records() {
		for _, s := range r.Steps {
			if s.Step == protocol.StepPredict || s.Step == protocol.StepCompute {
				commit += s.Duration // no exchange: the step's time is its commit
				steps++
			}
		}
	}
	q := func(lat []time.Duration, p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	slices.Sort(reports)
	slices.Sort(reads)
	if len(reports) == 0 || len(reads) == 0 || steps == 0 {
		b.Fatalf("nothing measured: %d reports, %d reads, %d steps", len(reports), len(reads), steps)
	}
	b.ReportMetric(q(reports, 0.5), "report-p50-µs")
	b.ReportMetric(q(reports, 0.99), "report-p99-µs")
	b.ReportMetric(float64(reports[len(reports)-1].Microseconds()), "report-max-µs")
	b.ReportMetric(q(reads, 0.99), "read-p99-µs")
	b.ReportMetric(float64(reads[len(reads)-1].Microseconds()), "read-max-µs")
	b.ReportMetric(float64((commit / time.Duration(steps)).Microseconds()), "step1+3-µs")
}
