package local_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
)

// A new S-CSCF with DMQ peers answers a request for a callee it does not
// know with 503 + Retry-After only until its registrations are synced — the
// driver marks that over JSON-RPC when its readiness probe sees them caught
// up — not for a fixed time: real Kamailio, 100 registrations on the first
// S-CSCF. With the mark withheld the window stays open (503 "Registrations
// Syncing"), the mark closes it (404); with the driver's own mark an unknown
// callee gets 404 as soon as the S-CSCF is in service (it got 503 for 5 s
// after the start with the fixed window) and a registered one is found.
func TestSCSCFSyncWindowEndsWhenSynced(t *testing.T) {
	needRealSIP(t)
	const dcName, users = "dc48", 100 // 127.58.x.x; the UA on 127.0.0.131
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mark := func(ctx context.Context, rpc netip.AddrPort) error {
		c := kamrpc.New(rpc)
		c.Timeout = 3 * time.Second
		_, err := c.Call(ctx, "pv.shvSet", "synced", "int", 1)
		return err
	}
	var withhold atomic.Bool
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 2, ShmMB: 64, Grace: 2 * time.Second,
		MarkSynced: func(ctx context.Context, rpc netip.AddrPort) error {
			if withhold.Load() {
				return nil
			}
			return mark(ctx, rpc)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()
	evs := newEventLog(d)
	launch := func(id string) (local.Runtime, time.Duration, drivers.Event) {
		t.Helper()
		start := time.Now()
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dcName, VNF: "S-CSCF"}); err != nil {
			t.Fatal(err)
		}
		ev, at := evs.wait(t, id, drivers.StateActive, 15*time.Second)
		rt, _ := d.Runtime(id)
		return rt, at.Sub(start), ev
	}
	s1, _, _ := launch("s1")
	ua := newRawUA(t, "127.0.0.131:5090")
	host := s1.SIP.Addr().String()
	for i := range users {
		aor := fmt.Sprintf("<sip:sync%d@%s>", i, host)
		id := fmt.Sprintf("reg%d@sync", i)
		m := ua.mark()
		ua.send(s1.SIP.String(), sipReq("REGISTER", "sip:"+host, "UDP "+ua.local(), fmt.Sprintf("z9hG4bKsr%d", i), aor+";tag=r", aor, id, 1,
			fmt.Sprintf("Contact: <sip:sync%d@%s>", i, ua.local()), "Expires: 600")...)
		if r, _ := ua.wait(m, 5*time.Second, "200 to REGISTER "+id, final(id, "REGISTER")); r.Status() != 200 {
			t.Fatalf("REGISTER %s: %s", id, r.First)
		}
	}
	seq := 0
	invite := func(rt local.Runtime, user string) rawMsg {
		t.Helper()
		seq++
		id := fmt.Sprintf("inv%d@sync", seq)
		ruri := fmt.Sprintf("sip:%s@%s", user, rt.SIP.Addr())
		m := ua.mark()
		ua.send(rt.SIP.String(), sipReq("INVITE", ruri, "UDP "+ua.local(), fmt.Sprintf("z9hG4bKsi%d", seq), "<sip:caller@127.0.0.131>;tag=c", "<"+ruri+">", id, 1,
			"Contact: <sip:caller@"+ua.local()+">")...)
		r, _ := ua.wait(m, 5*time.Second, "answer to INVITE "+ruri, func(r rawMsg) bool {
			return r.Get("call-id") == id && (r.Status() >= 200 || r.Method() == "INVITE")
		})
		return r
	}
	registered := func(rt local.Runtime) int64 {
		c := kamrpc.New(rt.RPC)
		c.Timeout = 3 * time.Second
		st, err := c.Stats(ctx, "usrloc:registered_users")
		if err != nil {
			t.Fatal(err)
		}
		return st["usrloc:registered_users"]
	}

	// the mark withheld: synced and in service, yet the window stays open
	withhold.Store(true)
	s2, took, ev := launch("s2")
	if n := registered(s2); n != users {
		t.Fatalf("s2 in service (%s) with %d registrations, want %d", ev.Reason, n, users)
	}
	if r := invite(s2, "nobody"); r.Status() != 503 || r.Get("retry-after") == "" || r.First != "SIP/2.0 503 Registrations Syncing" {
		t.Fatalf("unknown callee at s2, sync not marked: %s (Retry-After %q), want 503 Registrations Syncing", r.First, r.Get("retry-after"))
	}
	if err := mark(ctx, s2.RPC); err != nil {
		t.Fatal(err)
	}
	if r := invite(s2, "nobody"); r.Status() != 404 {
		t.Fatalf("unknown callee at s2 after the mark: %s, want 404", r.First)
	}
	t.Logf("s2: Launch → in service (%d registrations synced) in %v; 503 until marked, then 404", users, took.Round(time.Millisecond))

	// the driver's mark: the window ends when the S-CSCF goes into service
	withhold.Store(false)
	s3, took, ev := launch("s3")
	sinceStart := time.Now()
	r := invite(s3, "nobody")
	if r.Status() != 404 {
		t.Fatalf("unknown callee at s3 %v after its launch (%s): %s, want 404 (the sync is marked done)", took+time.Since(sinceStart), ev.Reason, r.First)
	}
	if r := invite(s3, fmt.Sprintf("sync%d", users-1)); r.Method() != "INVITE" && (r.Status() == 404 || r.Status() == 503) {
		t.Fatalf("registered callee at s3: %s, want the INVITE forwarded to its contact", r.First)
	}
	t.Logf("s3: Launch → in service (%s) in %v, an unknown callee got 404 %v after the launch (fixed window: 503 for 5 s)",
		ev.Reason, took.Round(time.Millisecond), (took + time.Since(sinceStart)).Round(time.Millisecond))
}
