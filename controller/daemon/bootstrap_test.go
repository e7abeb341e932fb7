package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
)

// The bootstrap node of a three-node cluster loses its disk and restarts
// with node.bootstrap still set (a Kubernetes pod-0 on a new volume): it
// must not found a one-node cluster of its own (split brain: two leaders
// taking writes) but come back as a member of the running one, with the
// writes committed while it was away.
func TestBootstrapNodeThatLostItsDiskRejoins(t *testing.T) {
	ds := startMembers(t, 3)
	ctx := context.Background()
	for _, who := range ds[1:] {
		err := retryUnavailable(t, func() error {
			_, err := apiClient(t, ds[0]).Join(ctx, api.JoinRequest{ID: who.cfg.Node.ID, RaftAddress: who.Node().Addr()})
			return err
		})
		if err != nil {
			t.Fatalf("join %s: %v", who.cfg.Node.ID, err)
		}
		eventually(t, 10*time.Second, who.cfg.Node.ID+" to be ready", func() bool { return who.Backend().Ready(ctx) == nil })
	}
	for _, d := range ds {
		if got := d.Backend().RaftMembership(); got != api.RaftMember {
			t.Fatalf("%s: raft membership %q, want member", d.cfg.Node.ID, got)
		}
	}

	// n1 goes away and loses its raft directory
	cfg := *ds[0].cfg
	raftAddr, apiAddr := ds[0].Node().Addr(), strings.TrimPrefix(ds[0].URL(), "http://")
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := ds[0].Shutdown(sctx); err != nil {
		t.Logf("shutdown n1: %v", err)
	}
	cancel()
	if err := os.RemoveAll(cfg.Node.RaftDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.Node.RaftDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// the other two elect a leader and take a write n1 never saw
	eventually(t, 15*time.Second, "n2 or n3 to lead", func() bool {
		return ds[1].Node().Raft.State() == raft.Leader || ds[2].Node().Raft.State() == raft.Leader
	})
	base, err := ds[1].Backend().Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	base.Name = "while-n1-was-away"
	if err := retryUnavailable(t, func() error { _, err := apiClient(t, ds[1]).PutPolicy(ctx, base); return err }); err != nil {
		t.Fatal(err)
	}

	// n1 restarts on its old addresses, empty, still the bootstrap node
	cfg.Node.RaftBind = raftAddr
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedLog
	n1, err := New(&cfg, Options{Listener: ln, Raft: testRaft(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		ShutdownTimeout: 3 * time.Second, BootstrapProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n1.Shutdown(c)
	})
	eventually(t, 20*time.Second, "the restarted n1 to hold the write made while it was away", func() bool {
		_, err := n1.Backend().Policy(ctx, base.Name)
		return err == nil
	})
	// founding a cluster of itself, n1 would have elected itself at once
	// and acknowledged writes alone until the real leader reached it (raft
	// then overwrites its log, but its state machine applied them)
	if got := logs.String(); strings.Contains(got, "entering leader state") || !strings.Contains(got, "bootstrap skipped") {
		t.Fatalf("the restarted n1 founded a cluster of its own (or did not say it skipped the bootstrap):\n%s", got)
	}
	if got := len(n1.Node().Raft.GetConfiguration().Configuration().Servers); got != 3 {
		t.Fatalf("restarted n1's raft configuration has %d servers, want the cluster's 3", got)
	}
}

// lockedLog is a log sink safe for the daemon's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
