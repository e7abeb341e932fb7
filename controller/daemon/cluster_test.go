package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/controller/fsm"
)

// testRaft is the raft timing of the in-process cluster tests: raft's
// default 1 s heartbeat and election timeouts, and a leader lease as long as
// the heartbeat timeout. Every node of a test runs in one process, so a
// scheduling stall of that process (a loaded 2-core host under -race) is
// seen by the leader as silence of every follower: with 150 ms timeouts and
// a 100 ms lease the leader stepped down mid-test at load 37–53 (7 of 18
// runs of the three TestCluster* tests failed with "no leader known", a
// candidate follower, or rounds that stopped). A graceful shutdown hands
// leadership over at once (raft's TimeoutNow), so only a start (one
// election) and a stop without handover pay the longer timeouts.
func testRaft() *raft.Config {
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout = time.Second
	rc.ElectionTimeout = time.Second
	rc.LeaderLeaseTimeout = time.Second
	rc.CommitTimeout = 5 * time.Millisecond
	return rc
}

// eventually polls cond every 10 ms until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline, not waiting for time to pass
	}
}

// startCluster runs three clustered daemons on loopback (raft TCP on
// 127.0.0.1:0, raft-wal in temp dirs): n1 bootstraps alone, then adds n2
// and n3 as voters.
func startCluster(t testing.TB) []*Daemon { return startClusterWith(t, false) }

// startClusterWith optionally gives the nodes local controllers (n1 tokyo,
// n2 hong-kong, n3 london and houston) that the leader's round engine
// reaches over the HTTP protocol transport, with 2 s intervals.
func startClusterWith(t testing.TB, locals bool) []*Daemon {
	t.Helper()
	return startClusterConfig(t, locals, func(_ int, cfg *Config) { cfg.Traffic = nil })
}

// startClusterConfig runs three clustered daemons on loopback (raft TCP on
// 127.0.0.1:0, raft-wal in temp dirs) from the embedded default config,
// edited by mutate for node i before it starts: n1 bootstraps alone, then
// adds n2 and n3 as voters. With locals, the nodes run the local
// controllers of startClusterWith.
func startClusterConfig(t testing.TB, locals bool, mutate func(i int, cfg *Config)) []*Daemon {
	t.Helper()
	return startClusterOpts(t, locals, mutate, nil)
}

// startClusterOpts is startClusterConfig with opts editing node i's
// Options (nil: none).
func startClusterOpts(t testing.TB, locals bool, mutate func(i int, cfg *Config), opts func(i int, o *Options)) []*Daemon {
	t.Helper()
	return startClusterRaft(t, testRaft(), locals, mutate, opts)
}

// startClusterRaft is startClusterOpts with the nodes' raft configuration rc.
func startClusterRaft(t testing.TB, rc *raft.Config, locals bool, mutate func(i int, cfg *Config), opts func(i int, o *Options)) []*Daemon {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "protocol-token")
	if err := os.WriteFile(tokenFile, []byte("test-protocol-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dcsOf := [][]string{{"tokyo"}, {"hong-kong"}, {"london", "houston"}}
	ds := startNodesOpts(t, 3, rc, opts, func(i int, urls []string, cfg *Config) {
		if locals {
			cfg.Role.Locals, cfg.Role.ProtocolTokenFile = dcsOf[i], tokenFile
			cfg.Role.LocalEndpoints = map[string]string{}
			for j, dcs := range dcsOf {
				for _, dc := range dcs {
					cfg.Role.LocalEndpoints[dc] = urls[j]
				}
			}
			cfg.Policy.IntervalSeconds = 2
		}
		mutate(i, cfg)
	})
	eventually(t, 20*time.Second, "n1 to lead", func() bool { return ds[0].Node().Raft.State() == raft.Leader })
	for _, d := range ds[1:] {
		addVoter(t, ds, d)
	}
	for _, d := range ds {
		eventually(t, 20*time.Second, d.cfg.Node.ID+" to be ready", func() bool { return d.Backend().Ready(context.Background()) == nil })
	}
	return ds
}

// addVoter adds d as a voter through whichever node leads. A loaded
// machine can make the leader lose its lease while the configuration change
// commits ("leadership lost while committing log"): the
// change is then retried on the node that leads next, within a deadline.
func addVoter(t testing.TB, ds []*Daemon, d *Daemon) {
	t.Helper()
	var err error
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		leader, _ := leaderOf(ds)
		if leader == nil {
			time.Sleep(10 * time.Millisecond) // polling for an election with a deadline
			continue
		}
		err = leader.Node().Raft.AddVoter(raft.ServerID(d.cfg.Node.ID), raft.ServerAddress(d.Node().Addr()), 0, 5*time.Second).Error()
		if err == nil || !(errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout)) {
			break
		}
	}
	if err != nil {
		t.Fatalf("add voter %s: %v", d.cfg.Node.ID, err)
	}
}

// startNodes starts n global daemons on loopback (raft TCP on 127.0.0.1:0,
// raft-wal in temp dirs) from the embedded default config: node i is
// "n<i+1>", n1 bootstraps, every node knows the others' API URLs; mutate
// edits node i's config (urls are every node's API URL) before it starts.
func startNodes(t testing.TB, n int, rc *raft.Config, mutate func(i int, urls []string, cfg *Config)) []*Daemon {
	t.Helper()
	return startNodesOpts(t, n, rc, nil, mutate)
}

// startNodesOpts is startNodes with opts editing node i's Options (nil: none).
func startNodesOpts(t testing.TB, n int, rc *raft.Config, opts func(i int, o *Options), mutate func(i int, urls []string, cfg *Config)) []*Daemon {
	t.Helper()
	lns := make([]net.Listener, n)
	urls := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], urls[i] = ln, "http://"+ln.Addr().String()
	}
	ds := make([]*Daemon, n)
	for i := range ds {
		cfg := *DefaultConfig()
		cfg.Node = NodeConfig{ID: fmt.Sprintf("n%d", i+1), RaftBind: "127.0.0.1:0", RaftDir: t.TempDir(), Bootstrap: i == 0}
		for j := range n {
			if j != i {
				cfg.Node.Peers = append(cfg.Node.Peers, PeerConfig{ID: fmt.Sprintf("n%d", j+1), API: urls[j]})
			}
		}
		cfg.API.URL = urls[i]
		cfg.Role = RoleConfig{Global: true}
		mutate(i, urls, &cfg)
		if err := cfg.Normalize(); err != nil {
			t.Fatal(err)
		}
		// the peers' listeners accept but serve nothing yet: n1's bootstrap
		// probe (bootstrap.go) finds no cluster once this bound passes
		o := Options{Listener: lns[i], Raft: rc, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 3 * time.Second,
			BootstrapProbeTimeout: 200 * time.Millisecond}
		if opts != nil {
			opts(i, &o)
		}
		d, err := New(&cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ds[i] = d
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = d.Shutdown(ctx)
		})
	}
	return ds
}

func leaderOf(ds []*Daemon) (leader *Daemon, followers []*Daemon) {
	for _, d := range ds {
		if d.Node().Raft.State() == raft.Leader {
			leader = d
		} else {
			followers = append(followers, d)
		}
	}
	return leader, followers
}

// A write sent to a follower is forwarded to the leader, committed through
// raft and read back on every node; the follower's Backend itself answers
// NotLeaderError with the leader's API address.
func TestClusterLeaderForwarding(t *testing.T) {
	ds := startCluster(t)
	leader, followers := leaderOf(ds)
	if leader == nil || len(followers) != 2 {
		t.Fatal("no single leader")
	}
	ctx := context.Background()
	_, err := followers[0].Backend().PutPolicy(ctx, api.Policy{Name: PolicyName})
	var nl *api.NotLeaderError
	if !errors.As(err, &nl) || nl.LeaderID != leader.cfg.Node.ID || nl.LeaderAddr != leader.cfg.API.URL {
		t.Fatalf("follower write: %v, want NotLeaderError naming %s at %s", err, leader.cfg.Node.ID, leader.cfg.API.URL)
	}
	c, err := client.New(followers[0].URL(), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	p.DelayBoundMs = 321
	res, err := c.PutPolicy(ctx, p)
	if err != nil || res.Outcome != api.OutcomeUpdated {
		t.Fatalf("write through a follower: %+v %v", res, err)
	}
	for _, d := range ds {
		eventually(t, 20*time.Second, d.cfg.Node.ID+" to apply the policy", func() bool {
			return d.store.State().Policy.DelayBoundMs == 321
		})
		got, err := d.Backend().Policy(ctx, PolicyName)
		if err != nil || got.DelayBoundMs != 321 {
			t.Fatalf("%s reads %+v %v", d.cfg.Node.ID, got, err)
		}
	}
	st, err := c.State(ctx)
	if err != nil || st.Leader != leader.cfg.Node.ID {
		t.Fatalf("state on a follower: leader %q %v", st.Leader, err)
	}
	m := followers[1].Backend().MetricsSnapshot()
	if m.RaftRole != "follower" || m.CommitIndex == 0 {
		t.Fatalf("follower metrics: role %q commit %d", m.RaftRole, m.CommitIndex)
	}

	// graceful shutdown of the leader hands leadership over; writes go on
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := leader.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	var next *Daemon
	eventually(t, 20*time.Second, "a new leader", func() bool {
		next, _ = leaderOf(followers)
		return next != nil
	})
	other := followers[0]
	if other == next {
		other = followers[1]
	}
	eventually(t, 20*time.Second, other.cfg.Node.ID+" to know the new leader", func() bool {
		id, _ := other.Backend().leader()
		return id == next.cfg.Node.ID
	})
	c2, err := client.New(other.URL(), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.DelayBoundMs = 222
	if res, err := c2.PutPolicy(ctx, p); err != nil || res.Outcome != api.OutcomeUpdated {
		t.Fatalf("write after failover: %+v %v", res, err)
	}
	eventually(t, 20*time.Second, "the write to reach "+other.cfg.Node.ID, func() bool {
		return other.store.State().Policy.DelayBoundMs == 222
	})
}

// The leader's round engine runs the 5-step protocol with local controllers
// in the three processes over HTTP: every DC enters new intervals, and after
// the leader stops the next leader goes on.
func TestClusterRoundsOverHTTP(t *testing.T) {
	ds := startClusterWith(t, true)
	leader, followers := leaderOf(ds)
	entered := func(min uint64) bool {
		for _, d := range ds {
			for _, lc := range d.locals {
				if lc.Interval() < min {
					return false
				}
			}
		}
		return true
	}
	eventually(t, 60*time.Second, "every DC to enter interval 2", func() bool { return entered(2) })
	if st := leader.store.State(); st.Topology == nil || len(st.Paths) == 0 {
		t.Fatal("no committed paths after two rounds")
	}
	if es := leader.engine.Stats(); es.Unreachable != 0 {
		t.Fatalf("DCs given up: %+v", es)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a new leader", func() bool { l, _ := leaderOf(followers); return l != nil })
	next, _ := leaderOf(followers)
	start := next.store.State().Interval
	eventually(t, 60*time.Second, "rounds under the new leader", func() bool {
		return next.store.State().Interval >= start+2
	})
}

// A saved policy, datacenter labels, the limits of the policy in force and a
// drain written on the leader are read on the followers, and survive a
// leader change; the new leader goes on numbering operations.
func TestClusterReplicatesOperatorState(t *testing.T) {
	ds := startCluster(t)
	leader, followers := leaderOf(ds)
	if leader == nil {
		t.Fatal("no leader")
	}
	ctx := context.Background()
	lb := leader.Backend()
	def, err := lb.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	night := def
	night.Name, night.Tau = "night", 4
	if _, err := lb.PutPolicy(ctx, night); err != nil {
		t.Fatal(err)
	}
	def.Limits = []api.Limit{{DC: "london", VNF: "ids", Min: 1, Max: 2}}
	if _, err := lb.PutPolicy(ctx, def); err != nil {
		t.Fatal(err)
	}
	dcs, _ := lb.Datacenters(ctx)
	dcs[1].Region, dcs[1].AZ = "ap-east-1", "ap-east-1b"
	if _, err := lb.SetDatacenters(ctx, dcs); err != nil {
		t.Fatal(err)
	}
	op, err := lb.Drain(ctx, api.DrainRequest{DC: "london"})
	if err != nil {
		t.Fatal(err)
	}
	// what every node must answer alike
	check := func(d *Daemon) bool {
		b := d.Backend()
		p, err := b.Policy(ctx, "night")
		if err != nil || p.Tau != 4 {
			return false
		}
		if p, _ := b.Policy(ctx, PolicyName); !slices.Equal(p.Limits, def.Limits) {
			return false
		}
		if got, _ := b.Datacenters(ctx); !reflect.DeepEqual(got, dcs) {
			return false
		}
		o, err := b.Operation(ctx, op.ID)
		return err == nil && o.Kind == api.OpDrain && o.Drain.DC == "london" && slices.Equal(d.store.State().Drained, []string{"london"})
	}
	for _, f := range followers {
		eventually(t, 20*time.Second, f.cfg.Node.ID+" to read the leader's writes", func() bool { return check(f) })
	}
	if _, err := followers[0].Backend().Undrain(ctx, api.DrainRequest{DC: "london"}); !errors.As(err, new(*api.NotLeaderError)) {
		t.Fatalf("undrain on a follower: %v, want NotLeaderError", err)
	}

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := leader.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	var next *Daemon
	eventually(t, 20*time.Second, "a new leader", func() bool {
		next, _ = leaderOf(followers)
		return next != nil
	})
	for _, d := range followers {
		if !check(d) {
			t.Fatalf("%s lost the replicated writes after the leader change", d.cfg.Node.ID)
		}
	}
	nb := next.Backend()
	eventually(t, 20*time.Second, next.cfg.Node.ID+" to accept writes", func() bool { return nb.writable() == nil })
	un, err := nb.Undrain(ctx, api.DrainRequest{DC: "london"})
	if err != nil || un.ID == op.ID || fsm.OpSeq(un.ID) <= fsm.OpSeq(op.ID) {
		t.Fatalf("undrain on the new leader: %+v %v (after %s)", un, err, op.ID)
	}
	if err := nb.DeletePolicy(ctx, "night"); err != nil {
		t.Fatal(err)
	}
	other := followers[0]
	if other == next {
		other = followers[1]
	}
	eventually(t, 20*time.Second, other.cfg.Node.ID+" to read the new leader's writes", func() bool {
		b := other.Backend()
		_, gone := b.Policy(ctx, "night")
		o, err := b.Operation(ctx, un.ID)
		d, _ := b.Operation(ctx, op.ID)
		return errors.Is(gone, api.ErrNotFound) && err == nil && o.Kind == api.OpUndrain && d.State == api.OpFailed &&
			other.store.State().Drained == nil
	})
}
