package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// electingNode answers "not the leader" until the virtual clock reaches
// leaderAt, then accepts; every answer is signalled on passes.
type electingNode struct {
	clk      *clock.Virtual
	leaderAt time.Time
	mu       sync.Mutex
	got      int
	passes   chan struct{}
}

func (n *electingNode) SendReport(context.Context, protocol.WorkloadReport) error {
	defer func() { n.passes <- struct{}{} }()
	if n.clk.Now().Before(n.leaderAt) {
		return fmt.Errorf("n2: %w", transport.ErrNotLeader)
	}
	n.mu.Lock()
	n.got++
	n.mu.Unlock()
	return nil
}

func (n *electingNode) String() string { return "n2" }

// TestReporterOutlastsTheElectionAfterAFailover: the daemon's workload
// reporter keeps a report sent while the surviving nodes elect a new leader
// (2.3 s measured after a leader's kill on a loaded host) and delivers it to
// the new leader; with the reporter's bare defaults (3 attempts, 0.75 s) it
// was given up, and the new leader's first round missed that DC.
func TestReporterOutlastsTheElectionAfterAFailover(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	node := &electingNode{clk: clk, leaderAt: t0.Add(2300 * time.Millisecond), passes: make(chan struct{}, 64)}
	r, err := transport.NewReporter(reporterConfig([]transport.ReportTarget{node}, clk, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(protocol.WorkloadReport{Kind: "dp", DC: "tokyo", At: t0,
		Pairs: []protocol.PairLoad{{Entry: "tokyo", Exit: "tokyo", Rate: 100}}}); err != nil {
		t.Fatal(err)
	}
	for {
		<-node.passes
		var s transport.ReporterStats
		for end := time.Now().Add(5 * time.Second); ; { // the pass's outcome is booked or a retry timer comes
			if s = r.Stats(); s.Sent+s.Failed == 1 || clk.Pending() == 1 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the reporter neither booked the pass nor armed a retry")
			}
			time.Sleep(time.Millisecond) // polling a condition another goroutine sets
		}
		if s.Failed == 1 {
			t.Fatalf("the report was given up at %v, during the election (stats %+v)", clk.Now().Sub(t0), s)
		}
		if s.Sent == 1 {
			if at := clk.Now().Sub(t0); at < 2300*time.Millisecond || at > 2500*time.Millisecond {
				t.Fatalf("delivered at %v, want within a backoff of the new leader (2.3 s)", at)
			}
			return
		}
		clk.Step()
	}
}
