package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// electingNode answers "not the leader" until the virtual clock reaches
// leaderAt, then accepts (and says so on accepted).
type electingNode struct {
	clk      *clock.Virtual
	leaderAt time.Time
	accepted chan<- struct{}
}

func (n *electingNode) SendReport(context.Context, protocol.WorkloadReport) error {
	if n.clk.Now().Before(n.leaderAt) {
		return fmt.Errorf("n2: %w", transport.ErrNotLeader)
	}
	n.accepted <- struct{}{}
	return nil
}

func (n *electingNode) String() string { return "n2" }

// armingClock is a virtual clock that says when a timer is armed (the
// reporter arms one for each retry).
type armingClock struct {
	*clock.Virtual
	armed chan<- struct{}
}

func (c armingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.Virtual.AfterFunc(d, f)
	c.armed <- struct{}{}
	return t
}

// electionRun sends one report through the daemon's workload reporter with
// raft timeouts rc (nil: raft's defaults) to a node that leads only after
// election, and steps the virtual clock pass by pass until the report is
// sent or given up: it returns whether it was sent and when it was settled.
// No wall-clock wait: each step follows the reporter's own doing, seen
// from outside it (a retry timer armed on the clock, the node accepting,
// the reporter's OnError giving the report up).
func electionRun(t *testing.T, rc *raft.Config, election time.Duration) (bool, time.Duration) {
	t.Helper()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	armed, accepted, failed := make(chan struct{}, 1), make(chan struct{}, 1), make(chan error, 1)
	node := &electingNode{clk: clk, leaderAt: t0.Add(election), accepted: accepted}
	cfg := reporterConfig([]transport.ReportTarget{node}, armingClock{clk, armed}, slog.New(slog.NewTextHandler(io.Discard, nil)), "n1", rc)
	cfg.OnError = func(err error) { failed <- err }
	r, err := transport.NewReporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(protocol.WorkloadReport{Kind: "dp", DC: "tokyo", At: t0,
		Pairs: []protocol.PairLoad{{Entry: "tokyo", Exit: "tokyo", Rate: 100}}}); err != nil {
		t.Fatal(err)
	}
	for passes := 1; ; passes++ {
		select {
		case <-accepted:
			return true, clk.Now().Sub(t0)
		case <-failed:
			return false, clk.Now().Sub(t0)
		case <-armed: // a retry timer armed: the pass is booked
		case <-time.After(time.Minute): // a guard only: a pass takes microseconds
			t.Fatalf("pass %d: neither settled nor a retry timer armed", passes)
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
