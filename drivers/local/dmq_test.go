package local

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/drivers"
)

// S-CSCFs replicate usrloc over DMQ (a call routed to any S-CSCF finds the
// callee) and count CP transactions per entry>exit DC, each user's DC from
// its registration's Path (reg_fetch_contacts), in htable "cp".
func TestRenderSCSCFReplicationAndCounters(t *testing.T) {
	td := TemplateData{ID: "s2", Role: RoleSCSCF, DC: "dc0", Addr: netip.MustParseAddr("127.10.2.2"), Children: 1,
		CtlSock: "udp:127.10.2.2:2049", RPCSock: "udp:127.10.2.2:8090", DNSMaxTTL: 1, FRTimerMS: 2000,
		DMQPeers: []netip.Addr{netip.MustParseAddr("127.10.2.1"), netip.MustParseAddr("127.10.2.3")}}
	out, err := Render(kamfiles.Files, kamfiles.Template, td)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`loadmodule "dmq_usrloc.so"`, `modparam("dmq", "server_address", "sip:127.10.2.2:5060")`,
		`modparam("dmq", "notification_address", "sip:127.10.2.1:5060")`, `modparam("dmq", "notification_address", "sip:127.10.2.3:5060")`,
		`modparam("dmq_usrloc", "sync", 1)`, `dmq_handle_message()`, `$shtinc(cp=>$var(cpk))`, `reg_fetch_contacts("location", "$fu", "cpf")`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("scscf config lacks %q", want)
		}
	}
	td.DMQPeers = nil
	first, err := Render(kamfiles.Files, kamfiles.Template, td)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(first), "notification_address") {
		t.Error("the first S-CSCF has a notification peer")
	}
	p := td
	p.Role, p.NextHop = RolePCSCF, "sip:scscf.dc0.ims.local"
	pc, err := Render(kamfiles.Files, kamfiles.Template, p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pc), `loadmodule "dmq`) || strings.Contains(string(pc), `loadmodule "htable`) || strings.Contains(string(pc), "$shtinc") {
		t.Error("the P-CSCF loads dmq or htable")
	}
	if _, err := exec.LookPath("kamailio"); err != nil {
		return
	}
	for name, cfg := range map[string][]byte{"with peers": out, "first": first} {
		f := filepath.Join(t.TempDir(), "k.cfg")
		if err := os.WriteFile(f, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("kamailio", "-c", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("%s: kamailio -c: %v\n%s", name, err, b)
		}
	}
}

// A new S-CSCF gets the live S-CSCFs of its DC (not other DCs', not
// terminating ones) as DMQ peers.
func TestSCSCFDMQPeers(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, s := range []drivers.Spec{{ID: "s1", DC: "dc0", VNF: "scscf"}, {ID: "x1", DC: "dc1", VNF: "scscf"}, {ID: "s2", DC: "dc0", VNF: "scscf"}} {
		if _, err := h.d.Launch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cfg := func(id string) string {
		b, err := os.ReadFile(filepath.Join(h.d.cfg.BaseDir, id, "kamailio.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if strings.Contains(cfg("s1"), "notification_address") {
		t.Error("s1 was first in dc0 but has a peer")
	}
	if c := cfg("s2"); !strings.Contains(c, `"notification_address", "sip:127.10.2.1:5060"`) || strings.Contains(c, "127.11.2.1") {
		t.Errorf("s2 peers wrong:\n%s", c)
	}
}

// With a quarantine, a released address is handed out again only after it,
// or when no other address is free.
func TestAddrQuarantine(t *testing.T) {
	now := time.Unix(0, 0)
	p := addrPlan{quarantine: 10 * time.Second, now: func() time.Time { return now }}
	a1, _ := p.alloc(0, RoleSCSCF)
	a2, _ := p.alloc(0, RoleSCSCF)
	p.release(a1)
	a3, _ := p.alloc(0, RoleSCSCF)
	if a3 == a1 || a3.String() != "127.10.2.3" {
		t.Fatalf("quarantined %v handed out again at once (got %v)", a1, a3)
	}
	now = now.Add(10 * time.Second)
	if a, _ := p.alloc(0, RoleSCSCF); a != a1 {
		t.Fatalf("after the quarantine got %v, want %v", a, a1)
	}
	for i := 0; i < MaxPerVNF-3; i++ {
		if _, err := p.alloc(0, RoleSCSCF); err != nil {
			t.Fatal(err)
		}
	}
	p.release(a2)
	if a, err := p.alloc(0, RoleSCSCF); err != nil || a != a2 {
		t.Fatalf("the only free address is quarantined: got %v, %v; want %v", a, err, a2)
	}
	q := addrPlan{}
	b1, _ := q.alloc(0, RolePCSCF)
	q.release(b1)
	if b, _ := q.alloc(0, RolePCSCF); b != b1 {
		t.Fatalf("without a quarantine the lowest free address is reused: got %v", b)
	}
}

// A new S-CSCF with peers becomes active only once its replicated
// registrations caught up with its peers' (else a call routed to it gets 404);
// at the ready timeout it goes active anyway, saying why.
func TestSCSCFReadyWhenRegistrationsSynced(t *testing.T) {
	var mu sync.Mutex
	users := map[string]int64{"127.10.2.1": 5, "127.10.2.2": 0, "127.10.2.3": 0}
	var marked []string // the S-CSCFs told their sync is done (the 503 window ends)
	h := newHarness(t, func(c *Config) {
		c.ReadyTimeout, c.ProbeInterval = time.Second, 100*time.Millisecond
		c.MarkSynced = func(_ context.Context, rpc netip.AddrPort) error {
			mu.Lock()
			defer mu.Unlock()
			marked = append(marked, rpc.Addr().String())
			return nil
		}
		c.Stats = func(_ context.Context, rpc netip.AddrPort, _ ...string) (map[string]int64, error) {
			mu.Lock()
			defer mu.Unlock()
			return map[string]int64{"usrloc:registered_users": users[rpc.Addr().String()]}, nil
		}
	})
	ctx := context.Background()
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "s1", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s1", drivers.StateBooting, "")
	h.clk.Advance(100 * time.Millisecond)
	h.expect(t, "s1", drivers.StateActive, "rpc answers") // no peer: no sync to wait for
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "s2", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s2", drivers.StateBooting, "")
	h.clk.Advance(500 * time.Millisecond)
	select {
	case ev := <-h.events:
		t.Fatalf("s2 changed state before its registrations synced: %+v", ev)
	default:
	}
	mu.Lock()
	users["127.10.2.2"] = 5
	mu.Unlock()
	h.clk.Advance(100 * time.Millisecond)
	h.expect(t, "s2", drivers.StateActive, "registrations synced")
	mu.Lock()
	if !slices.Equal(marked, []string{"127.10.2.2"}) {
		t.Fatalf("marked synced: %v, want s2 alone (s1 has no peer, no window)", marked)
	}
	mu.Unlock()

	// a third one that never catches up is put in service at the timeout
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "s3", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s3", drivers.StateBooting, "")
	h.clk.Advance(1100 * time.Millisecond)
	h.expect(t, "s3", drivers.StateActive, "not synced yet")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(marked, []string{"127.10.2.2", "127.10.2.3"}) {
		t.Fatalf("marked synced: %v: s3 is put in service at the timeout, its window ends too", marked)
	}
}

// syncHarness launches S-CSCF s1 (active) and then s2 in dc0 with probes
// every interval; s2's probe reads s1's registrations (5) through peer, which
// returns the error set by setPeer (nil: they are read); s2 holds none.
func syncHarness(t *testing.T, ready, every time.Duration) (h *harness, setPeer func(error)) {
	t.Helper()
	var mu sync.Mutex
	var peerErr error
	h = newHarness(t, func(c *Config) {
		c.ReadyTimeout, c.ProbeInterval = ready, every
		c.MarkSynced = func(context.Context, netip.AddrPort) error { return nil }
		c.Stats = func(_ context.Context, rpc netip.AddrPort, _ ...string) (map[string]int64, error) {
			mu.Lock()
			defer mu.Unlock()
			if rpc.Addr().String() != "127.10.2.1" {
				return map[string]int64{"usrloc:registered_users": 0}, nil
			}
			if peerErr != nil {
				return nil, fmt.Errorf("kamrpc: stats.fetch to %v: %w", rpc, peerErr)
			}
			return map[string]int64{"usrloc:registered_users": 5}, nil
		}
	})
	ctx := context.Background()
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "s1", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s1", drivers.StateBooting, "")
	h.clk.Advance(every)
	h.expect(t, "s1", drivers.StateActive, "rpc answers")
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "s2", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s2", drivers.StateBooting, "")
	return h, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		peerErr = err
	}
}

// probeHolds runs s2's next probe and fails the test if s2 changed state.
func (h *harness) probeHolds(t *testing.T, why string) {
	t.Helper()
	h.clk.Advance(h.d.cfg.ProbeInterval)
	select {
	case ev := <-h.events:
		t.Fatalf("s2 changed state while %s: %+v", why, ev)
	default:
	}
}

var (
	lateRead    = &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}
	refusedRead = &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", syscall.ECONNREFUSED)}
)

// A peer whose registrations could not be read in time holds a new S-CSCF
// back until the next probe: on a loaded host the probe itself may be the
// late one, and before, such a peer was skipped, so the S-CSCF went into
// service without the registrations and answered 404 for a registered user
// (TestSCSCFSyncWindowEndsWhenSynced at load 25–31). A peer that refuses the
// read (its process is gone) still does not hold it back.
func TestSCSCFSyncWaitsForALatePeer(t *testing.T) {
	h, setPeer := syncHarness(t, time.Second, 100*time.Millisecond)
	for _, late := range []error{context.DeadlineExceeded, lateRead} { // maxLateReads-1 probes
		setPeer(late)
		h.probeHolds(t, fmt.Sprintf("its peer's registrations were not read in time (%v)", late))
	}
	setPeer(refusedRead)
	h.clk.Advance(100 * time.Millisecond)
	h.expect(t, "s2", drivers.StateActive, "registrations synced")
}

// A hung peer (SIGSTOPped: its port stays bound, every read of it times
// out) holds a new S-CSCF back only until it has been late on maxLateReads
// probes in a row over hungPeerAfter (3 s), then it is skipped like a
// refusing one; before any bound, every S-CSCF launched meanwhile in its DC
// stayed booting until the ready timeout (10 s). The bound is time on the
// driver's clock: with probes every 100 ms, a peer late on 3 probes in a row
// (0.3 s) is not hung yet — session 8's bound counted probes only and
// skipped it there, so on a very loaded host a live peer could be skipped
// and the S-CSCF put in service without its registrations. An answer in
// between starts the run again.
func TestSCSCFSyncSkipsAHungPeer(t *testing.T) {
	h, setPeer := syncHarness(t, 10*time.Second, 100*time.Millisecond)
	setPeer(lateRead)
	h.probeHolds(t, "its peer was late once")
	h.probeHolds(t, "its peer was late twice")
	setPeer(nil) // it answers: 5 registrations, s2 has none
	h.probeHolds(t, "its registrations lag its peer's")
	setPeer(lateRead)
	h.probeHolds(t, "its peer was late again, once")
	first := h.clk.Now() // the late run's first probe
	for h.clk.Now().Sub(first) < hungPeerAfter-h.d.cfg.ProbeInterval {
		h.probeHolds(t, fmt.Sprintf("its peer was late for %v only (less than hungPeerAfter)", h.clk.Now().Sub(first)))
	}
	h.clk.Advance(h.d.cfg.ProbeInterval)
	ev := h.expect(t, "s2", drivers.StateActive, "registrations synced")
	if late := ev.At.Sub(first); late != hungPeerAfter {
		t.Fatalf("s2 went active %v after its peer's first late read, want hungPeerAfter (%v)", late, hungPeerAfter)
	}
	if strings.Contains(ev.Reason, "ready timeout") {
		t.Fatalf("s2 went active at the ready timeout (%q): a hung peer held it there", ev.Reason)
	}
}

// A few late probes far apart (the probe itself delayed, e.g. on a loaded
// host) do not make a peer hung, however long they span: it takes
// maxLateReads probes in a row too.
func TestSCSCFSyncHungPeerNeedsLateProbes(t *testing.T) {
	h, setPeer := syncHarness(t, 20*time.Second, 2*hungPeerAfter)
	setPeer(lateRead)
	for i := 1; i < maxLateReads; i++ {
		h.probeHolds(t, fmt.Sprintf("its peer was late on %d probes over %v", i, time.Duration(i-1)*h.d.cfg.ProbeInterval))
	}
	h.clk.Advance(h.d.cfg.ProbeInterval)
	h.expect(t, "s2", drivers.StateActive, "registrations synced")
}

// The time bound is capped at a third of the ready timeout: with a
// ReadyTimeout of 1.5 s (below hungPeerAfter, 3 s) a hung peer is skipped
// 500 ms after its first late read, not at the ready timeout. A constant
// 3 s bound held s2 to the timeout ("... at the ready timeout").
func TestSCSCFSyncHungPeerBoundFollowsReadyTimeout(t *testing.T) {
	const ready, every = 1500 * time.Millisecond, 100 * time.Millisecond
	h, setPeer := syncHarness(t, ready, every)
	setPeer(lateRead)
	h.probeHolds(t, "its peer was late once")
	first := h.clk.Now()
	for h.clk.Now().Sub(first) < ready/3-every {
		h.probeHolds(t, fmt.Sprintf("its peer was late for %v only (less than a third of the ready timeout)", h.clk.Now().Sub(first)))
	}
	h.clk.Advance(every)
	ev := h.expect(t, "s2", drivers.StateActive, "registrations synced")
	if late := ev.At.Sub(first); late != ready/3 {
		t.Fatalf("s2 went active %v after its peer's first late read, want a third of the ready timeout (%v)", late, ready/3)
	}
	if strings.Contains(ev.Reason, "ready timeout") {
		t.Fatalf("s2 went active at the ready timeout (%q): a hung peer held it there", ev.Reason)
	}
}
