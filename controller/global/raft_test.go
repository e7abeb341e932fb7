package global

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// testRaft: raft's default 1 s heartbeat and election timeouts and a 1 s
// leader lease. The nodes share the test process, so its stalls on a loaded
// 2-core host under -race look like silent followers: with 50 ms timeouts
// leadership moved before the round's step 4 (3 of 10 runs at load 31).
func testRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = time.Second
	c.ElectionTimeout = time.Second
	c.LeaderLeaseTimeout = time.Second
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// inmemCluster starts n raft nodes on raft's in-memory transport, node 0
// bootstrapping the cluster.
func inmemCluster(t testing.TB, n int) []*fsm.Node {
	t.Helper()
	return raftCluster(t, n, false)
}

// raftCluster is inmemCluster with, when onDisk, each node's log and stable
// store in raft-wal under a temp dir (the daemon's stores: every commit
// syncs to disk).
func raftCluster(t testing.TB, n int, onDisk bool) []*fsm.Node {
	t.Helper()
	addrs := make([]raft.ServerAddress, n)
	trans := make([]*raft.InmemTransport, n)
	for i := range trans {
		addrs[i], trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	nodes := make([]*fsm.Node, n)
	for i := range nodes {
		cfg := fsm.NodeConfig{ID: fmt.Sprintf("node%d", i), Transport: trans[i], Raft: testRaft()}
		if onDisk {
			cfg.Dir = t.TempDir()
		}
		if i == 0 {
			cfg.Bootstrap = true
			for j := 1; j < n; j++ {
				cfg.Peers = append(cfg.Peers, fsm.Peer{ID: fmt.Sprintf("node%d", j), Addr: string(addrs[j])})
			}
		}
		nd, err := fsm.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	return nodes
}

func waitLeader(t testing.TB, nodes []*fsm.Node, skip int) int {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for i, n := range nodes {
			if i != skip && n.Raft.State() == raft.Leader {
				return i
			}
		}
		select {
		case <-deadline:
			t.Fatal("no raft leader within 20 s")
		case <-time.After(10 * time.Millisecond): // poll interval of the failure guard, not a wait for an effect
		}
	}
}

// Kill the raft leader after step 4 is committed and before step 5 is sent:
// the next leader's engine finishes round 0 (step 5 only), and every
// participant acted once on each step.
func TestLeaderKilledMidRoundNextLeaderFinishes(t *testing.T) {
	nodes := inmemCluster(t, 3)
	first := waitLeader(t, nodes, -1)
	topo := testTopology(3)
	setup(t, NewRaftStore(nodes[first], 0), topo)

	mem, err := transport.NewMem(clock.Real{}, transport.MemConfig{})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]*scripted{}
	for _, dc := range topo.DCs {
		parts[dc] = newScripted(dc, vnfNames(topo), 1)
		mem.Register(dc, parts[dc])
	}

	var (
		mu       sync.Mutex
		victim   = -1
		killed   = make(chan int, 1)
		finished = make(chan int, 3)
		engines  = make([]*Engine, 3)
	)
	cfg := Config{Interval: 300 * time.Millisecond, Retransmit: 50 * time.Millisecond, StepDeadline: 250 * time.Millisecond}
	for i := range engines {
		i := i
		hooks := Hooks{StepCommitted: func(round uint64, step protocol.Step) {
			mu.Lock()
			defer mu.Unlock()
			if round != 0 {
				return
			}
			switch {
			case step == protocol.StepBroadcast && victim < 0:
				// whichever engine leads when step 4 commits (the
				// leader of the start, unless leadership moved since)
				engines[i].Stop() // dies before sending step 5
				victim = i
				killed <- i
			case step == protocol.StepEnter:
				finished <- i
			}
		}}
		e, err := New(cfg, Deps{Clock: clock.Real{}, Transport: mem, Forecaster: newAR1(), Store: NewRaftStore(nodes[i], 2*time.Second), Hooks: hooks})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		engines[i] = e
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range engines {
		wg.Add(1)
		go func() { defer wg.Done(); FollowLeadership(ctx, nodes[i], engines[i]) }()
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, n := range nodes {
			_ = n.Shutdown()
		}
	}()

	var dead int
	select {
	case dead = <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("no leader committed step 4")
	}
	if err := nodes[dead].Shutdown(); err != nil {
		t.Fatalf("shutdown leader: %v", err)
	}
	var who int
	select {
	case who = <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("no other leader finished round 0")
	}
	if who == dead {
		t.Fatalf("the killed leader finished the round")
	}
	if !engines[who].Records()[0].Resumed || engines[who].Stats().Resumed != 1 {
		t.Fatalf("the new leader did not resume the round: %+v", engines[who].Stats())
	}
	steps := engines[who].Records()[0].Steps
	if len(steps) != 1 || steps[0].Step != protocol.StepEnter {
		t.Fatalf("the new leader ran steps %v, want only step 5", steps)
	}
	for dc, p := range parts {
		for _, step := range []protocol.Step{protocol.StepAcquire, protocol.StepBroadcast, protocol.StepEnter} {
			if n := p.actedCount(0, step); n != 1 {
				t.Errorf("%s acted %d times on round 0 step %v, want once", dc, n, step)
			}
		}
	}
	st := nodes[who].FSM.State()
	if st.Interval < 1 {
		t.Fatalf("interval %d after the round", st.Interval)
	}
	// The deposed leader's step cannot be applied again through the new one.
	err = NewRaftStore(nodes[who], time.Second).Apply(fsm.IntervalEntered{Round: 0})
	if !errors.Is(err, fsm.ErrStale) {
		t.Fatalf("re-applying round 0's step 5: err = %v, want ErrStale", err)
	}
}
