package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
)

// startMembers starts n daemons on loopback that know each other's API
// URLs (to forward writes) but not each other's raft addresses: n1
// bootstraps a cluster of itself, the others wait to be joined.
func startMembers(t *testing.T, n int) []*Daemon {
	t.Helper()
	ds := startNodes(t, n, testRaft(), func(_ int, _ []string, cfg *Config) { cfg.Traffic = nil })
	eventually(t, 10*time.Second, "n1 to lead", func() bool { return ds[0].Node().Raft.State() == raft.Leader })
	eventually(t, 10*time.Second, "n1 to be ready", func() bool { return ds[0].Backend().Ready(context.Background()) == nil })
	return ds
}

// retryUnavailable repeats call while it answers 503 (no leader known for
// a moment, e.g. an election on a loaded machine), for at most 10 s.
func retryUnavailable(t *testing.T, call func() error) error {
	t.Helper()
	var err error
	for end := time.Now().Add(10 * time.Second); ; {
		err = call()
		transient := client.IsStatus(err, http.StatusServiceUnavailable) || errors.Is(err, api.ErrNoLeader)
		if !transient || time.Now().After(end) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // the cluster elects a leader: poll with a deadline
	}
}

func apiClient(t *testing.T, d *Daemon) *client.Client {
	t.Helper()
	c, err := client.New(d.URL(), client.WithTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func voters(t *testing.T, d *Daemon) []string {
	t.Helper()
	c, err := d.Backend().Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range c.Members {
		if m.Suffrage == api.SuffrageVoter {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// The cluster grows 1 → 3 → 5 and shrinks back to 3 through the API's join
// and leave, each sent to a follower (which forwards it to the leader),
// while a writer commits policies through the API without pause: every
// write the API acknowledged is on every remaining node at the end.
func TestMembershipGrowShrinkNoWriteLost(t *testing.T) {
	ds := startMembers(t, 5)
	ctx := context.Background()
	join := func(via, who *Daemon) {
		t.Helper()
		var res api.MembershipResult
		err := retryUnavailable(t, func() (err error) {
			res, err = apiClient(t, via).Join(ctx, api.JoinRequest{ID: who.cfg.Node.ID, RaftAddress: who.Node().Addr()})
			return err
		})
		// a retry after an answer lost in an election may find the
		// join done already (changed false): membership is what counts
		if err != nil || !slices.ContainsFunc(res.Cluster.Members, func(m api.Member) bool { return m.ID == who.cfg.Node.ID }) {
			t.Fatalf("join %s via %s: %+v %v", who.cfg.Node.ID, via.cfg.Node.ID, res, err)
		}
		eventually(t, 10*time.Second, who.cfg.Node.ID+" to be ready", func() bool { return who.Backend().Ready(ctx) == nil })
	}
	join(ds[0], ds[1])
	join(ds[1], ds[2]) // through a follower: proxied to the leader
	if got := voters(t, ds[0]); len(got) != 3 {
		t.Fatalf("voters after 1 → 3: %v", got)
	}
	// joining again changes nothing
	if res, err := apiClient(t, ds[2]).Join(ctx, api.JoinRequest{ID: "n3", RaftAddress: ds[2].Node().Addr()}); err != nil || res.Changed {
		t.Fatalf("repeated join: %+v %v", res, err)
	}

	// the writer: policy w-1, w-2, ... through n1's API until stopped
	base, err := ds[0].Backend().Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		c, _ := client.New(ds[0].URL(), client.WithTimeout(15*time.Second))
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := base
			p.Name = fmt.Sprintf("w-%d", i)
			if _, err := c.PutPolicy(ctx, p); err != nil {
				continue // not acknowledged (e.g. during an election): may or may not be stored
			}
			mu.Lock()
			acked = append(acked, p.Name)
			mu.Unlock()
		}
	}()
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	progress := func(what string) {
		t.Helper()
		n := ackedN()
		eventually(t, 30*time.Second, "writes after "+what, func() bool { return ackedN() >= n+5 })
	}

	progress("start")
	join(ds[2], ds[3])
	progress("n4 joined")
	join(ds[1], ds[4])
	progress("n5 joined")
	if got := voters(t, ds[4]); len(got) != 5 {
		t.Fatalf("voters after 3 → 5: %v", got)
	}

	for i, id := range []string{"n5", "n4"} {
		var res api.MembershipResult
		err := retryUnavailable(t, func() (err error) {
			res, err = apiClient(t, ds[1]).Leave(ctx, id)
			return err
		})
		if err != nil || res.Cluster.Voters != 4-i {
			t.Fatalf("leave %s: %+v %v", id, res, err)
		}
		progress(id + " left")
	}
	close(stop)
	<-done
	if got := voters(t, ds[0]); len(got) != 3 {
		t.Fatalf("voters after 5 → 3: %v", got)
	}
	if _, err := apiClient(t, ds[0]).Leave(ctx, "n5"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("leave of a non-member: %v, want 404", err)
	}

	mu.Lock()
	all := append([]string(nil), acked...)
	mu.Unlock()
	if len(all) < 25 {
		t.Fatalf("only %d acknowledged writes", len(all))
	}
	leader, _ := leaderOf(ds[:3])
	if leader == nil {
		t.Fatal("no leader among n1..n3")
	}
	if err := leader.Node().Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds[:3] {
		eventually(t, 10*time.Second, d.cfg.Node.ID+" to hold every acknowledged write", func() bool {
			for _, name := range all {
				if _, err := d.Backend().Policy(ctx, name); err != nil {
					return false
				}
			}
			return true
		})
	}
	t.Logf("%d acknowledged writes, all on n1..n3", len(all))
}

// With one of three voters down, the leader refuses to remove a reachable
// voter (one voter would remain reachable of the two left: no quorum) but
// removes the unreachable one; then it refuses to remove another reachable
// one below the quorum of two.
func TestMembershipRefusesToLoseQuorum(t *testing.T) {
	ds := startMembers(t, 3)
	ctx := context.Background()
	lb := ds[0].Backend()
	leave := func(id string) (res api.MembershipResult, err error) {
		err = retryUnavailable(t, func() error { res, err = lb.Leave(ctx, id); return err })
		return res, err
	}
	for _, d := range ds[1:] {
		if err := retryUnavailable(t, func() error {
			_, err := lb.Join(ctx, api.JoinRequest{ID: d.cfg.Node.ID, RaftAddress: d.Node().Addr()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ds[2].Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "n3's heartbeats to fail", func() bool {
		c, err := lb.Cluster(ctx)
		if err != nil {
			return false
		}
		for _, m := range c.Members {
			if m.ID == "n3" {
				return m.Contact == api.ContactFailing
			}
		}
		return false
	})
	if _, err := leave("n2"); !errors.Is(err, api.ErrQuorum) {
		t.Fatalf("leave n2 with n3 down: %v, want a quorum refusal", err)
	}
	if err := retryUnavailable(t, func() error { _, err := apiClient(t, ds[1]).Leave(ctx, "n2"); return err }); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("leave n2 over HTTP: %v, want 409", err)
	}
	// joining while n3 is down: 2 reachable + the joiner are a quorum of 4,
	// but the joiner's address does not answer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	if err := retryUnavailable(t, func() error {
		_, err := lb.Join(ctx, api.JoinRequest{ID: "n9", RaftAddress: dead})
		return err
	}); !errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrQuorum) {
		t.Fatalf("join of a dead address: %v, want a conflict", err)
	}
	if res, err := leave("n3"); err != nil || res.Cluster.Voters != 2 {
		t.Fatalf("leave of the unreachable n3: %+v %v", res, err)
	}
	// two voters, both reachable: removing one leaves one, a quorum of one
	if _, err := leave("n2"); err != nil {
		t.Fatalf("leave n2 of two: %v", err)
	}
	if _, err := leave("n1"); !errors.Is(err, api.ErrQuorum) {
		t.Fatalf("leave of the last voter: %v, want a quorum refusal", err)
	}
}

func TestQuorumChecks(t *testing.T) {
	for _, c := range []struct {
		voters, reachable int
		ok                bool
	}{{1, 1, true}, {2, 2, true}, {3, 3, true}, {3, 2, true}, {4, 1, false}, {5, 3, true}, {5, 2, false}} {
		if err := api.CheckJoin(c.voters, c.reachable); (err == nil) != c.ok {
			t.Errorf("CheckJoin(%d, %d) = %v", c.voters, c.reachable, err)
		}
	}
	for _, c := range []struct {
		voters, reachable int
		leavingOK, ok     bool
	}{{1, 1, true, false}, {2, 2, true, true}, {3, 3, true, true}, {3, 2, true, false}, {3, 2, false, true},
		{5, 5, true, true}, {5, 4, true, true}, {5, 3, true, false}, {5, 3, false, true}} {
		if err := api.CheckLeave(c.voters, c.reachable, c.leavingOK); (err == nil) != c.ok {
			t.Errorf("CheckLeave(%d, %d, %v) = %v", c.voters, c.reachable, c.leavingOK, err)
		}
	}
}

// A node started the way the Kubernetes pods are — one shared config, its
// identity from flags, raft advertised under a DNS name — joins by that
// name and receives the cluster's writes.
func TestIdentityAndAdvertisedTransport(t *testing.T) {
	ds := startMembers(t, 1)
	ctx := context.Background()
	cfg := *DefaultConfig()
	cfg.Traffic = nil
	cfg.Role = RoleConfig{Global: true}
	cfg.Node = NodeConfig{ID: "shared", RaftBind: "127.0.0.1:0", RaftDir: t.TempDir(), Bootstrap: true,
		Peers: []PeerConfig{{ID: "n1", API: ds[0].URL()}, {ID: "pod-1", API: "http://127.0.0.1:1"}}}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ApplyIdentity(Identity{NodeID: "pod-1", APIURL: "http://pod-1.example:8080", BootstrapNode: "n1"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Node.ID != "pod-1" || cfg.Node.Bootstrap || len(cfg.Node.Peers) != 1 || cfg.API.URL != "http://pod-1.example:8080" {
		t.Fatalf("identity applied: %+v %s", cfg.Node, cfg.API.URL)
	}
	if _, err := NewAdvertisedTransport("127.0.0.1:0", "no-port", nil); err == nil {
		t.Fatal("advertise without a port accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(&cfg, Options{Listener: ln, Raft: testRaft(), RaftAdvertise: "localhost:0", Logger: slog.New(slog.DiscardHandler),
		ShutdownTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	})
	addr := d.Node().Addr()
	if host, _, _ := net.SplitHostPort(addr); host != "localhost" {
		t.Fatalf("advertised raft address %q, want localhost:port", addr)
	}
	if err := retryUnavailable(t, func() error {
		_, err := ds[0].Backend().Join(ctx, api.JoinRequest{ID: "pod-1", RaftAddress: addr})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod-1 to be ready", func() bool { return d.Backend().Ready(ctx) == nil })
	p, _ := ds[0].Backend().Policy(ctx, PolicyName)
	p.Name = "after-join"
	if _, err := ds[0].Backend().PutPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod-1 to receive the write", func() bool {
		_, err := d.Backend().Policy(ctx, "after-join")
		return err == nil
	})
}
