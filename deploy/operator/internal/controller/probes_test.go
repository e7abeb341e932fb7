package controller

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/controller/daemon"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// startDaemons runs n real clustered daemons on loopback (plain HTTP, raft
// TCP on 127.0.0.1:0, raft logs in temp dirs) named p-0…: p-0 bootstraps,
// the others wait to be joined, as the StatefulSet's pods do.
func startDaemons(t *testing.T, n int) []*daemon.Daemon {
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
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	ds := make([]*daemon.Daemon, n)
	for i := range ds {
		cfg := *daemon.DefaultConfig()
		cfg.Traffic = nil
		cfg.Role = daemon.RoleConfig{Global: true}
		cfg.Node = daemon.NodeConfig{ID: podName("p", i), RaftBind: "127.0.0.1:0", RaftDir: t.TempDir(), Bootstrap: i == 0}
		for j := range n {
			if j != i {
				cfg.Node.Peers = append(cfg.Node.Peers, daemon.PeerConfig{ID: podName("p", j), API: urls[j]})
			}
		}
		cfg.API.URL = urls[i]
		if err := cfg.Normalize(); err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(&cfg, daemon.Options{Listener: lns[i], Raft: rc, Logger: slog.New(slog.DiscardHandler),
			ShutdownTimeout: 3 * time.Second, BootstrapProbeTimeout: 200 * time.Millisecond})
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

// within polls cond every 20 ms until it holds or d passes (real daemons:
// raft elects and replicates on the real clock).
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a real process's state with a deadline
	}
}

// The StatefulSet's probes, asked of real daemons as the kubelet asks them
// (HTTP GET on the probe's path; 200–399 passes): a daemon that waits to be
// joined passes the startup and liveness probes — the operator joins
// started pods — but fails the readiness probe, so the client Service does
// not send it requests it would answer with 503; once joined it passes the
// readiness probe too.
func TestProbesOfRealDaemons(t *testing.T) {
	in := &orchv1.ImsOrch{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: orchv1.ImsOrchSpec{Image: "x"}}
	c := statefulSet(in, 3, "h", "b").Spec.Template.Spec.Containers[0]
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal != "api" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Fatalf("%s probe %+v: want an HTTPS GET on the api port", name, p)
		}
	}
	ds := startDaemons(t, 2)
	// as the kubelet: a probe fails on a status outside 200–399, and on
	// no answer within its timeout
	hc := &http.Client{Timeout: time.Duration(c.ReadinessProbe.TimeoutSeconds) * time.Second}
	status := func(d *daemon.Daemon, p *corev1.Probe) int {
		resp, err := hc.Get(d.URL() + p.HTTPGet.Path)
		if err != nil {
			t.Logf("probe %s: %v", p.HTTPGet.Path, err)
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	passes := func(d *daemon.Daemon, p *corev1.Probe) bool {
		code := status(d, p)
		return code >= 200 && code < 400
	}
	within(t, 30*time.Second, "p-0 (bootstrap) passes its readiness probe", func() bool { return passes(ds[0], c.ReadinessProbe) })

	// p-1 waits to be joined: it serves, but holds no raft configuration
	within(t, 30*time.Second, "p-1, waiting to be joined, passes its startup and liveness probes (the operator joins started pods)",
		func() bool { return passes(ds[1], c.StartupProbe) && passes(ds[1], c.LivenessProbe) })
	code := 0
	within(t, 30*time.Second, "p-1 answers its readiness probe", func() bool { code = status(ds[1], c.ReadinessProbe); return code != 0 })
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a daemon waiting to be joined answers its readiness probe with %d, want 503 (not ready: the client Service must not route to it)", code)
	}
	if got := ds[1].Backend().RaftMembership(); got != api.RaftNone {
		t.Fatalf("p-1 raft membership %q before its join, want none", got)
	}

	cl, err := client.New(ds[0].URL(), client.WithTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	within(t, 30*time.Second, "p-0 accepts the join of p-1", func() bool {
		_, err := cl.Join(ctx, api.JoinRequest{ID: "p-1", RaftAddress: ds[1].Node().Addr()})
		if err != nil && !client.IsStatus(err, http.StatusServiceUnavailable) && !errors.Is(err, api.ErrNoLeader) {
			t.Fatalf("join p-1: %v", err)
		}
		return err == nil
	})
	within(t, 30*time.Second, "p-1 passes its readiness probe once joined", func() bool { return passes(ds[1], c.ReadinessProbe) })
	within(t, 30*time.Second, "p-1 passes its liveness probe once joined", func() bool { return passes(ds[1], c.LivenessProbe) })
}
