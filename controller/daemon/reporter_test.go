package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

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

// electionRun sends one report through the daemon's workload reporter with
// raft timeouts rc (nil: raft's defaults) to a node that leads only after
// election, and steps the virtual clock until the report is sent or given
// up: it returns whether it was sent and when it was settled.
func electionRun(t *testing.T, rc *raft.Config, election time.Duration) (bool, time.Duration) {
	t.Helper()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	node := &electingNode{clk: clk, leaderAt: t0.Add(election), passes: make(chan struct{}, 64)}
	r, err := transport.NewReporter(reporterConfig([]transport.ReportTarget{node}, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), "n1", rc))
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
		if s.Sent+s.Failed == 1 {
			return s.Sent == 1, clk.Now().Sub(t0)
		}
		clk.Step()
	}
}

// TestReporterOutlastsTheElectionAfterAFailover: the daemon's workload
// reporter keeps a report sent while the surviving nodes elect a new leader
// (2.3 s measured after a leader's kill on a loaded host) and delivers it to
// the new leader; with the reporter's bare defaults (3 attempts, 0.75 s) it
// was given up, and the new leader's first round missed that DC.
func TestReporterOutlastsTheElectionAfterAFailover(t *testing.T) {
	sent, at := electionRun(t, nil, 2300*time.Millisecond)
	if !sent {
		t.Fatalf("the report was given up at %v, during the election", at)
	}
	if at < 2300*time.Millisecond || at > 2500*time.Millisecond {
		t.Fatalf("delivered at %v, want within a backoff of the new leader (2.3 s)", at)
	}
}

// The reporter's wait for a leader grows with raft's timeouts: with 3 s
// heartbeat and election timeouts an election can take 20 s (two rounds of
// up to 2 × 3 + 2 × 3 s), and the report still reaches the new leader; the
// fixed 10 s wait gave it up. The floor keeps 10 s for short timeouts.
func TestReportNoLeaderWaitFollowsRaftTimeouts(t *testing.T) {
	timeouts := func(hb, el time.Duration) *raft.Config {
		rc := raft.DefaultConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = hb, el, hb/2
		return rc
	}
	for _, tc := range []struct {
		name string
		rc   *raft.Config
		want time.Duration
	}{
		{"raft's defaults", nil, 10 * time.Second},
		{"1 s, 1 s", timeouts(time.Second, time.Second), 10 * time.Second},
		{"short timeouts: the floor", timeouts(100*time.Millisecond, 200*time.Millisecond), 10 * time.Second},
		{"3 s, 3 s", timeouts(3*time.Second, 3*time.Second), 24 * time.Second},
		{"2 s, 5 s", timeouts(2*time.Second, 5*time.Second), 28 * time.Second},
	} {
		if got := reportNoLeaderWait(tc.rc); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	sent, at := electionRun(t, timeouts(3*time.Second, 3*time.Second), 20*time.Second)
	if !sent || at < 20*time.Second || at > 20250*time.Millisecond {
		t.Fatalf("3 s raft timeouts, a 20 s election: sent %v at %v, want sent within a backoff of 20 s", sent, at)
	}
	// beyond the wait the passes count as attempts again, and it is given up
	if sent, at := electionRun(t, timeouts(3*time.Second, 3*time.Second), time.Minute); sent || at > 25*time.Second {
		t.Fatalf("3 s raft timeouts, a 1 min election: sent %v at %v, want given up after 24 s and 3 attempts", sent, at)
	}
}
