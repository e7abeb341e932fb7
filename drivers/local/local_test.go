package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/drivers"
	"pgregory.net/rapid"
)

func TestInstanceAddr(t *testing.T) {
	tests := []struct {
		name    string
		dc      int
		role    Role
		n       int
		want    string
		wantErr bool
	}{
		{"first pcscf dc0", 0, RolePCSCF, 1, "127.10.1.1", false},
		{"scscf dc3 n7", 3, RoleSCSCF, 7, "127.13.2.7", false},
		{"last dc", MaxDC, RolePCSCF, MaxPerVNF, "127.255.1.254", false},
		{"dc too big", MaxDC + 1, RolePCSCF, 1, "", true},
		{"negative dc", -1, RolePCSCF, 1, "", true},
		{"n zero", 0, RolePCSCF, 0, "", true},
		{"n too big", 0, RolePCSCF, MaxPerVNF + 1, "", true},
		{"unknown role", 0, Role("ids"), 1, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := InstanceAddr(tc.dc, tc.role, tc.n)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && a.String() != tc.want {
				t.Fatalf("addr = %v, want %s", a, tc.want)
			}
		})
	}
	if a, _ := DNSAddr(2); a.String() != "127.12.0.53:53" {
		t.Fatalf("DNSAddr(2) = %v", a)
	}
}

func TestParseRoleAndDC(t *testing.T) {
	for in, want := range map[string]Role{"P-CSCF": RolePCSCF, "pcscf": RolePCSCF, "S_CSCF": RoleSCSCF, "scscf": RoleSCSCF} {
		if r, err := ParseRole(in); err != nil || r != want {
			t.Errorf("ParseRole(%q) = %q, %v", in, r, err)
		}
	}
	if _, err := ParseRole("firewall"); err == nil || !strings.Contains(err.Error(), "VNF") {
		t.Errorf("ParseRole(firewall) err = %v", err)
	}
	for in, want := range map[string]int{"dc0": 0, "DC-3": 3, "7": 7, "tokyo12": 12} {
		if n, err := ParseDCIndex(in); err != nil || n != want {
			t.Errorf("ParseDCIndex(%q) = %d, %v", in, n, err)
		}
	}
	for _, bad := range []string{"", "tokyo", "dc999", "dc99999999999999999999"} {
		if _, err := ParseDCIndex(bad); err == nil || !strings.Contains(err.Error(), "DC") {
			t.Errorf("ParseDCIndex(%q) err = %v", bad, err)
		}
	}
}

// Property: allocated addresses are distinct, loopback, in their DC/role
// block, and the lowest free number is reused after a release.
func TestAddrPlanProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var p addrPlan
		live := map[netip.Addr]bool{}
		var order []netip.Addr
		for i, n := 0, rapid.IntRange(1, 200).Draw(t, "ops"); i < n; i++ {
			if len(order) > 0 && rapid.Bool().Draw(t, "release") {
				k := rapid.IntRange(0, len(order)-1).Draw(t, "which")
				a := order[k]
				order = append(order[:k], order[k+1:]...)
				delete(live, a)
				p.release(a)
				continue
			}
			dc := rapid.IntRange(0, 3).Draw(t, "dc")
			role := rapid.SampledFrom([]Role{RolePCSCF, RoleSCSCF}).Draw(t, "role")
			a, err := p.alloc(dc, role)
			if err != nil {
				t.Fatal(err)
			}
			if live[a] {
				t.Fatalf("address %v handed out twice", a)
			}
			b := a.As4()
			if b[0] != 127 || int(b[1]) != 10+dc || b[2] != role.code() || b[3] == 0 {
				t.Fatalf("address %v outside DC %d %s block", a, dc, role)
			}
			for m := 1; m < int(b[3]); m++ {
				lower, _ := InstanceAddr(dc, role, m)
				if !live[lower] {
					t.Fatalf("got %v while %v is free", a, lower)
				}
			}
			live[a] = true
			order = append(order, a)
		}
	})
}

func TestRender(t *testing.T) {
	addr := netip.MustParseAddr("127.10.1.1")
	base := TemplateData{ID: "p1", DC: "dc0", Addr: addr, Children: 2, CtlSock: "udp:127.10.1.1:2049", RPCSock: "udp:127.10.1.1:8090", DNSMaxTTL: 1, FRTimerMS: 2000}
	p := base
	p.Role, p.NextHop = RolePCSCF, "sip:scscf.dc0.ims.local"
	out, err := Render(kamfiles.Files, kamfiles.Template, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`$du = "sip:scscf.dc0.ims.local";`, `add_path("dc0")`, `"udp:127.10.1.1:8090"`, "dns_cache_max_ttl=1", "dns_srv_lb=on", "children=2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pcscf config lacks %q", want)
		}
	}
	if strings.Contains(string(out), "registrar.so") || strings.Contains(string(out), "{{") {
		t.Error("pcscf config loads the registrar or holds template markup")
	}
	if strings.Contains(string(out), "http_client") || strings.Contains(string(out), "fix_nated_sdp") {
		t.Error("pcscf config without MediaHook calls the media hook or rewrites SDP")
	}
	pm := p
	pm.MediaHook, pm.MediaEntryIP = "http://127.0.0.1:7000/media/v1/dc/3", netip.MustParseAddr("10.203.200.200")
	if out, err = Render(kamfiles.Files, kamfiles.Template, pm); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`http_client_query("http://127.0.0.1:7000/media/v1/dc/3/start"`, `http_client_query("http://127.0.0.1:7000/media/v1/dc/3/end"`,
		`fix_nated_sdp("2", "10.203.200.200")`, "route(MEDIA_ORIG)", "route(MEDIA_TERM)", "event_route[dialog:end]"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pcscf config with MediaHook lacks %q", want)
		}
	}
	s := base
	s.Role = RoleSCSCF
	out, err = Render(kamfiles.Files, kamfiles.Template, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`save("location")`, `lookup("location")`, `loadmodule "registrar.so"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("scscf config lacks %q", want)
		}
	}
	if strings.Contains(string(out), "$du =") {
		t.Error("scscf config forwards to a next hop")
	}
	for name, td := range map[string]TemplateData{
		"no role":          base,
		"pcscf no uri":     {Role: RolePCSCF, NextHop: "scscf"},
		"pcscf bad quote":  {Role: RolePCSCF, NextHop: `sip:a";exit;"`},
		"pcscf no dc":      {Role: RolePCSCF, NextHop: "sip:scscf.dc0.ims.local"},
		"pcscf bad dc":     {Role: RolePCSCF, DC: `dc0")`, NextHop: "sip:scscf.dc0.ims.local"},
		"scscf bad dc":     {Role: RoleSCSCF, DC: "a>b"},
		"media hook quote": {Role: RolePCSCF, DC: "dc0", NextHop: "sip:a", MediaHook: `http://a";exit;"`, MediaEntryIP: addr},
		"media no entry":   {Role: RolePCSCF, DC: "dc0", NextHop: "sip:a", MediaHook: "http://127.0.0.1:1/m"},
	} {
		if _, err := Render(kamfiles.Files, kamfiles.Template, td); err == nil {
			t.Errorf("%s: Render succeeded", name)
		}
	}
}

// The rendered configs parse with the real Kamailio (kamailio -c).
func TestRenderedConfigChecks(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip("kamailio not installed (scripts/ci-kamailio.sh installs it)")
	}
	for _, tc := range []struct {
		role  Role
		media bool
	}{{RolePCSCF, false}, {RoleSCSCF, false}, {RolePCSCF, true}, {RoleSCSCF, true}} {
		role := tc.role
		td := TemplateData{ID: "x", Role: role, DC: "dc0", Addr: netip.MustParseAddr("127.10.1.1"), Children: 1,
			CtlSock: "udp:127.10.1.1:2049", RPCSock: "udp:127.10.1.1:8090", NextHop: "sip:scscf.dc0.ims.local", DNSMaxTTL: 1, FRTimerMS: 2000}
		if tc.media { // issue 13: the P-CSCF's media hook (http_client, sdpops, nathelper)
			td.MediaHook, td.MediaEntryIP = "http://127.0.0.1:9/media/v1/dc/0", netip.MustParseAddr("10.200.200.200")
		}
		out, err := Render(kamfiles.Files, kamfiles.Template, td)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "k.cfg")
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("kamailio", "-c", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("%s: kamailio -c: %v\n%s", role, err, b)
		}
	}
}

// fakeProc is a process that exits when signalled (SIGTERM unless it
// ignores it; SIGKILL always) or when the test kills it.
type fakeProc struct {
	pid        int
	ignoreTerm bool
	sigs       chan syscall.Signal
	once       sync.Once
	exit       chan struct{}
	err        error
}

func (p *fakeProc) Pid() int { return p.pid }
func (p *fakeProc) Wait() error {
	<-p.exit
	return p.err
}
func (p *fakeProc) die(err error) {
	p.once.Do(func() { p.err = err; close(p.exit) })
}
func (p *fakeProc) Signal(sig syscall.Signal, group bool) error {
	select {
	case p.sigs <- sig:
	default:
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM && !p.ignoreTerm {
		p.die(fmt.Errorf("signal: %v", sig))
	}
	return nil
}

type fakeStarter struct {
	mu         sync.Mutex
	cmds       []Command
	procs      []*fakeProc
	ignoreTerm bool
	err        error
}

func (s *fakeStarter) Start(c Command) (Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	p := &fakeProc{pid: 1000 + len(s.procs), ignoreTerm: s.ignoreTerm, sigs: make(chan syscall.Signal, 16), exit: make(chan struct{})}
	s.cmds = append(s.cmds, c)
	s.procs = append(s.procs, p)
	return p, nil
}

type harness struct {
	d      *Driver
	clk    *clock.Virtual
	st     *fakeStarter
	events chan drivers.Event
	probe  func() error
	stats  func() (map[string]int64, error)
	mu     sync.Mutex
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{clk: clock.NewVirtual(time.Unix(1000, 0)), st: &fakeStarter{}, events: make(chan drivers.Event, 64)}
	h.probe = func() error { return nil }
	cfg := Config{
		BaseDir: t.TempDir(), Clock: h.clk, Starter: h.st,
		NextHop: func(string) string { return "sip:127.10.2.1:5060" },
		Probe: func(context.Context, netip.AddrPort) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.probe()
		},
		Stats: func(context.Context, netip.AddrPort, ...string) (map[string]int64, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.stats()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.plan.held = nil // fake processes hold no port; the real check would bind ports other tests' processes may hold
	h.d = d
	d.Subscribe(func(ev drivers.Event) { h.events <- ev })
	return h
}

func (h *harness) next(t *testing.T) drivers.Event {
	t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-time.After(5 * time.Second): // a safety net only: events are synchronous or follow a process exit
		t.Fatal("no event")
		return drivers.Event{}
	}
}

func (h *harness) expect(t *testing.T, id string, state drivers.State, reason string) drivers.Event {
	t.Helper()
	ev := h.next(t)
	if ev.ID != id || ev.State != state || !strings.Contains(ev.Reason, reason) {
		t.Fatalf("event = %+v, want %s %s (reason containing %q)", ev, id, state, reason)
	}
	return ev
}

var pcscf = drivers.Spec{ID: "p1", DC: "dc0", VNF: "pcscf"}

func TestLaunchActiveTerminate(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	in, err := h.d.Launch(ctx, pcscf)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != drivers.StateBooting || in.Address != "127.10.1.1:5060" || in.CloudID != "1000" || in.Metadata[drivers.MetaManagedBy] != "ims-orch" || in.Pool != "dc0/pcscf" {
		t.Fatalf("instance = %+v", in)
	}
	h.expect(t, "p1", drivers.StateBooting, "127.10.1.1:5060")
	h.clk.Advance(50 * time.Millisecond)
	h.expect(t, "p1", drivers.StateActive, "rpc answers")

	// the command: foreground kamailio on its own address and sockets
	c := h.st.cmds[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-DD -E", "-l udp:127.10.1.1:5060", "-Y " + c.Dir, "-P " + filepath.Join(c.Dir, "kamailio.pid")} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if c.Path != "kamailio" {
		t.Errorf("path = %q, want kamailio (NextHop set: no DNS namespace)", c.Path)
	}
	cfg, err := os.ReadFile(filepath.Join(c.Dir, "kamailio.cfg"))
	if err != nil || !strings.Contains(string(cfg), `$du = "sip:127.10.2.1:5060"`) {
		t.Fatalf("rendered config: %v\n%s", err, cfg)
	}

	// idempotent on ID
	again, err := h.d.Launch(ctx, pcscf)
	if err != nil || again.CloudID != in.CloudID || len(h.st.procs) != 1 {
		t.Fatalf("second Launch = %+v, %v (%d processes)", again, err, len(h.st.procs))
	}
	other := pcscf
	other.VNF = "scscf"
	if _, err := h.d.Launch(ctx, other); !errors.Is(err, drivers.ErrInvalid) {
		t.Fatalf("Launch same ID other VNF err = %v", err)
	}
	list, _ := h.d.List(ctx, "dc0")
	if len(list) != 1 || list[0].State != drivers.StateActive {
		t.Fatalf("List = %+v", list)
	}
	if l, _ := h.d.List(ctx, "dc1"); len(l) != 0 {
		t.Fatalf("List(dc1) = %+v", l)
	}
	if err := h.d.Terminate(ctx, "dc1", "p1"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("Terminate in the wrong DC err = %v", err)
	}
	if err := h.d.Terminate(ctx, "dc0", "p1"); err != nil {
		t.Fatal(err)
	}
	if sig := <-h.st.procs[0].sigs; sig != syscall.SIGTERM {
		t.Fatalf("first signal %v, want SIGTERM", sig)
	}
	h.expect(t, "p1", drivers.StateGone, "terminated")
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("run dir kept after Terminate: %v", err)
	}
	if err := h.d.Terminate(ctx, "dc0", "p1"); err != nil {
		t.Fatalf("Terminate of a gone instance: %v", err)
	}
	// the address is free again
	in2, err := h.d.Launch(ctx, drivers.Spec{ID: "p2", DC: "dc0", VNF: "P-CSCF"})
	if err != nil || in2.Address != "127.10.1.1:5060" {
		t.Fatalf("relaunch = %+v, %v", in2, err)
	}
}

func TestTerminateKillsAfterGrace(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Grace = 3 * time.Second })
	h.st.ignoreTerm = true
	ctx := context.Background()
	if _, err := h.d.Launch(ctx, pcscf); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "p1", drivers.StateBooting, "")
	done := make(chan error, 1)
	go func() { done <- h.d.Terminate(ctx, "dc0", "p1") }()
	if sig := <-h.st.procs[0].sigs; sig != syscall.SIGTERM {
		t.Fatalf("signal %v, want SIGTERM", sig)
	}
	_, _ = h.d.List(ctx, "") // Terminate holds the lock until its kill timer is set
	h.clk.Advance(2999 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Terminate returned before the grace period: %v", err)
	default:
	}
	h.clk.Advance(time.Millisecond)
	if sig := <-h.st.procs[0].sigs; sig != syscall.SIGKILL {
		t.Fatalf("signal %v, want SIGKILL", sig)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.expect(t, "p1", drivers.StateGone, "terminated")
}

func TestUnexpectedExitIsGoneAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.d.Launch(context.Background(), pcscf); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "p1", drivers.StateBooting, "")
	h.clk.Advance(50 * time.Millisecond)
	h.expect(t, "p1", drivers.StateActive, "")
	h.st.procs[0].die(errors.New("signal: killed"))
	ev := h.expect(t, "p1", drivers.StateGone, "unexpected exit: signal: killed")
	if !ev.At.Equal(h.clk.Now()) {
		t.Fatalf("event at %v, want %v (no clock time passes)", ev.At, h.clk.Now())
	}
	if sig := <-h.st.procs[0].sigs; sig != syscall.SIGKILL {
		t.Fatalf("process group not reaped: %v", sig)
	}
	if l, _ := h.d.List(context.Background(), ""); len(l) != 0 {
		t.Fatalf("gone instance still listed: %+v", l)
	}
	if _, err := os.Stat(h.st.cmds[0].Dir); err != nil {
		t.Fatalf("run dir of a crashed instance removed: %v", err)
	}
}

func TestNotReadyIsError(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReadyTimeout = time.Second; c.ProbeInterval = 100 * time.Millisecond })
	probes := 0
	h.probe = func() error { probes++; return errors.New("connection refused") }
	if _, err := h.d.Launch(context.Background(), pcscf); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "p1", drivers.StateBooting, "")
	h.clk.Advance(900 * time.Millisecond)
	select {
	case ev := <-h.events:
		t.Fatalf("event before ReadyTimeout: %+v", ev)
	default:
	}
	h.clk.Advance(100 * time.Millisecond)
	h.expect(t, "p1", drivers.StateError, "not ready after 1s: connection refused")
	if probes != 10 {
		t.Fatalf("probes = %d, want 10", probes)
	}
	h.clk.Advance(time.Second)
	if probes != 10 {
		t.Fatalf("probing goes on after the error: %d", probes)
	}
}

func TestLaunchInvalid(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name  string
		spec  drivers.Spec
		field string
	}{
		{"empty id", drivers.Spec{DC: "dc0", VNF: "pcscf"}, "ID"},
		{"path id", drivers.Spec{ID: "../x", DC: "dc0", VNF: "pcscf"}, "ID"},
		{"data-plane vnf", drivers.Spec{ID: "f", DC: "dc0", VNF: "firewall"}, "VNF"},
		{"dc without index", drivers.Spec{ID: "f", DC: "tokyo", VNF: "pcscf"}, "DC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.d.Launch(context.Background(), tc.spec)
			if !errors.Is(err, drivers.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
	h.st.err = errors.New("exec: no such file")
	if _, err := h.d.Launch(context.Background(), pcscf); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("start failure err = %v", err)
	}
	h.st.err = nil
	if in, err := h.d.Launch(context.Background(), pcscf); err != nil || in.Address != "127.10.1.1:5060" {
		t.Fatalf("address leaked by the failed start: %+v %v", in, err)
	}
}

func TestDNSModeCommand(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NextHop = nil })
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "p3", DC: "dc2", VNF: "pcscf"}); err != nil {
		t.Fatal(err)
	}
	c := h.st.cmds[0]
	if c.Path != "unshare" || !strings.Contains(strings.Join(c.Args, " "), `mount --bind "$0" /etc/resolv.conf && exec "$@"`) {
		t.Fatalf("command = %s %q", c.Path, c.Args)
	}
	rc, err := os.ReadFile(filepath.Join(c.Dir, "resolv.conf"))
	if err != nil || !strings.Contains(string(rc), "nameserver 127.12.0.53\n") {
		t.Fatalf("resolv.conf = %q, %v", rc, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(c.Dir, "kamailio.cfg"))
	if !strings.Contains(string(cfg), `$du = "sip:scscf.dc2.ims.local";`) {
		t.Fatal("P-CSCF does not resolve the DC's S-CSCF pool")
	}
	// S-CSCFs resolve nothing: no namespace
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "s1", DC: "dc2", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	if h.st.cmds[1].Path != "kamailio" {
		t.Fatalf("S-CSCF started through %s", h.st.cmds[1].Path)
	}
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name     string
		busy     int // polls that see traffic
		timeout  time.Duration
		wantIdle bool
	}{
		{"idle at once", 0, 10 * time.Second, true},
		{"idle after three busy polls", 3, 10 * time.Second, true},
		{"busy between two idle polls", -1, 10 * time.Second, true},
		{"timeout cuts", 1000, time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.DrainPoll = 250 * time.Millisecond; c.ProbeInterval = time.Hour })
			polls := 0
			h.stats = func() (map[string]int64, error) {
				polls++
				if polls <= tc.busy || tc.busy < 0 && polls == 2 { // -1: idle, busy, idle, idle
					return map[string]int64{"tmx:active_transactions": 1, "dialog:active_dialogs": 2}, nil
				}
				return map[string]int64{"tmx:active_transactions": 0, "dialog:active_dialogs": 0}, nil
			}
			if _, err := h.d.Launch(context.Background(), pcscf); err != nil {
				t.Fatal(err)
			}
			h.expect(t, "p1", drivers.StateBooting, "")
			type out struct {
				r   drivers.DrainResult
				err error
			}
			done := make(chan out, 1)
			go func() {
				r, err := h.d.Drain(context.Background(), "dc0", "p1", tc.timeout)
				done <- out{r, err}
			}()
			var o out
			for finished := false; !finished; {
				select {
				case o = <-done:
					finished = true
				default:
					if h.clk.Pending() > 1 { // the probe timer plus Drain's poll timer
						h.clk.Advance(250 * time.Millisecond)
					} else {
						runtime.Gosched() // let Drain set its next poll timer; time itself is virtual
					}
				}
			}
			if o.err != nil || o.r.Idle != tc.wantIdle || !o.r.Finished {
				t.Fatalf("Drain = %+v, %v", o.r, o.err)
			}
			// idle needs two idle polls in a row, DrainPoll apart
			wantPolls := tc.busy + 2
			if tc.busy < 0 {
				wantPolls = 4
			}
			if tc.wantIdle && (polls != wantPolls || o.r.Waited != time.Duration(wantPolls-1)*250*time.Millisecond) {
				t.Fatalf("%d polls over %v, want %d polls", polls, o.r.Waited, wantPolls)
			}
			if !tc.wantIdle && (o.r.Waited < tc.timeout || o.r.Last.Sessions != 2) {
				t.Fatalf("timeout drain = %+v", o.r)
			}
			h.expect(t, "p1", drivers.StateGone, "terminated")
		})
	}
}

func TestLoadNeedsBothCounters(t *testing.T) {
	h := newHarness(t, nil)
	h.stats = func() (map[string]int64, error) { return map[string]int64{"tmx:active_transactions": 0}, nil }
	if _, err := h.d.Launch(context.Background(), pcscf); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Load(context.Background(), "p1"); err == nil || !strings.Contains(err.Error(), "dialog:active_dialogs") {
		t.Fatalf("Load err = %v", err)
	}
	if _, err := h.d.Load(context.Background(), "nope"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("Load of unknown err = %v", err)
	}
}

func TestAvailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Available()
	if err == nil || !strings.Contains(err.Error(), "kamailio") || !strings.Contains(err.Error(), "sipp") {
		t.Fatalf("Available with an empty PATH = %v", err)
	}
}

// A failed instance is killed at once (SIGKILL, no grace) and its replacement
// (Spec.Replaces) takes over its address, even under quarantine; a
// replacement launched while the failed process still runs (stopped) kills
// it first. With NoTakeover the replacement gets another address.
func TestKillAndAddressTakeover(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noTakeover bool
		killFirst  bool
	}{
		{"kill, then replacement takes the address", false, true},
		{"replacement kills the stopped instance and takes its address", false, false},
		{"NoTakeover: another address", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Quarantine = time.Hour; c.NoTakeover = tc.noTakeover })
			ctx := context.Background()
			old, err := h.d.Launch(ctx, pcscf)
			if err != nil {
				t.Fatal(err)
			}
			h.expect(t, "p1", drivers.StateBooting, "")
			h.clk.Advance(50 * time.Millisecond)
			h.expect(t, "p1", drivers.StateActive, "")
			h.st.procs[0].ignoreTerm = true // a stopped process does not act on SIGTERM
			if tc.killFirst {
				if err := h.d.Kill(ctx, "dc0", "p1"); err != nil {
					t.Fatal(err)
				}
				h.expect(t, "p1", drivers.StateGone, "killed (failed)")
			}
			repl, err := h.d.Launch(ctx, drivers.Spec{ID: "p2", DC: "dc0", VNF: "pcscf", Replaces: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.killFirst {
				h.expect(t, "p1", drivers.StateGone, "killed (failed)")
			}
			if sig := <-h.st.procs[0].sigs; sig != syscall.SIGKILL {
				t.Fatalf("failed instance got %v, want SIGKILL at once", sig)
			}
			if same := repl.Address == old.Address; same == tc.noTakeover {
				t.Fatalf("replacement on %s, failed one was on %s (NoTakeover %v)", repl.Address, old.Address, tc.noTakeover)
			}
		})
	}
}

// An address whose instance exited before it served is handed out again
// (by alloc or takeover) only once no other process holds a port of it, or
// when no other one is free.
func TestAddrPlanSuspect(t *testing.T) {
	held := map[netip.Addr]bool{}
	p := addrPlan{held: func(a netip.Addr) bool { return held[a] }}
	a1, _ := p.alloc(3, RoleSCSCF)
	a2, _ := p.alloc(3, RoleSCSCF)
	p.release(a1)
	p.distrust(a1)
	held[a1] = true
	if p.takeover(a1, 3, RoleSCSCF) {
		t.Fatalf("takeover of %v while another process holds it", a1)
	}
	if a, _ := p.alloc(3, RoleSCSCF); a == a1 {
		t.Fatalf("%v handed out while another process holds it and others are free", a)
	}
	if a, _ := p.alloc(3, RolePCSCF); a.As4()[3] != 1 {
		t.Fatalf("P-CSCF got %v, want its block's first address", a)
	}
	for n := 3; n < MaxPerVNF; n++ {
		if a, err := p.alloc(3, RoleSCSCF); err != nil || a == a1 {
			t.Fatalf("alloc %d: %v, %v", n, a, err)
		}
	}
	if a, err := p.alloc(3, RoleSCSCF); err != nil || a != a1 {
		t.Fatalf("the last free address: got %v, %v; want the held %v", a, err, a1)
	}
	// no longer held: handed out again, first by takeover, then by alloc
	for _, byTakeover := range []bool{true, false} {
		p.release(a1)
		p.distrust(a1)
		held[a1] = false
		if byTakeover && !p.takeover(a1, 3, RoleSCSCF) {
			t.Fatalf("no takeover of %v once its ports are free", a1)
		}
		if !byTakeover {
			p.release(a2)
			if a, _ := p.alloc(3, RoleSCSCF); a != a1 {
				t.Fatalf("got %v once the ports of %v are free, want it (the lowest free)", a, a1)
			}
		}
	}
	if len(p.suspect) != 0 {
		t.Fatalf("suspects left: %v", p.suspect)
	}
}

// A slot keeps its address through a crash loop: a replacement that took
// over its failed predecessor's address and died while booting hands it to
// its own replacement, though a lower address is free.
func TestAddressKeptThroughACrashLoop(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	spec := func(id, replaces string) drivers.Spec {
		return drivers.Spec{ID: id, DC: "dc0", VNF: "pcscf", Replaces: replaces}
	}
	addr := map[string]string{}
	for _, id := range []string{"p1", "p2", "p3"} {
		in, err := h.d.Launch(ctx, spec(id, ""))
		if err != nil {
			t.Fatal(err)
		}
		addr[id] = in.Address
		h.expect(t, id, drivers.StateBooting, "")
		h.clk.Advance(50 * time.Millisecond)
		h.expect(t, id, drivers.StateActive, "")
	}
	if err := h.d.Terminate(ctx, "dc0", "p1"); err != nil { // its address, the lowest, is free
		t.Fatal(err)
	}
	h.expect(t, "p1", drivers.StateGone, "terminated")
	h.st.procs[2].die(errors.New("signal: killed")) // p3 fails
	h.expect(t, "p3", drivers.StateGone, "unexpected exit")
	prev := "p3"
	for i, id := range []string{"p4", "p5", "p6"} {
		in, err := h.d.Launch(ctx, spec(id, prev))
		if err != nil {
			t.Fatal(err)
		}
		if in.Address != addr["p3"] {
			t.Fatalf("%s, replacing %s, on %s; its slot's address is %s (%s is free)", id, prev, in.Address, addr["p3"], addr["p1"])
		}
		h.expect(t, id, drivers.StateBooting, "")
		h.st.procs[3+i].die(errors.New("exit status 255")) // dies while booting
		h.expect(t, id, drivers.StateGone, "unexpected exit")
		prev = id
	}
}

// The run dirs of failed instances are kept for their logs, the last
// MaxFailedRunDirs of them: a crash loop does not fill the disk.
func TestFailedRunDirsBounded(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ids := chainIDs(MaxFailedRunDirs + 3)
	dirs := h.failChain(t, "", ids...)
	prev := ids[len(ids)-1]
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "live", DC: "dc0", VNF: "scscf", Replaces: prev}); err != nil {
		t.Fatal(err)
	}
	for i, dir := range dirs {
		_, err := os.Stat(dir)
		if kept := err == nil; kept != (i >= 3) {
			t.Fatalf("run dir %d of %d failed instances kept: %v (%v), want only the last %d", i+1, len(dirs), kept, err, MaxFailedRunDirs)
		}
	}
}

// failChain launches ids one after the other, each replacing the one
// before (prev first), and makes each fail once it is active; it returns
// their run dirs. Each launch waits until the exit before it is dealt with
// (its address released, dropped run dirs removed).
func (h *harness) failChain(t *testing.T, prev string, ids ...string) []string {
	t.Helper()
	var dirs []string
	for _, id := range ids {
		if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: id, DC: "dc0", VNF: "scscf", Replaces: prev}); err != nil {
			t.Fatal(err)
		}
		h.expect(t, id, drivers.StateBooting, "")
		h.clk.Advance(50 * time.Millisecond)
		h.expect(t, id, drivers.StateActive, "")
		i := len(h.st.procs) - 1
		h.st.procs[i].die(errors.New("signal: aborted"))
		h.expect(t, id, drivers.StateGone, "unexpected exit")
		dirs = append(dirs, h.st.cmds[i].Dir)
		prev = id
	}
	return dirs
}

func chainIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d", i)
	}
	return ids
}

// An ID that fails, is launched again and fails again keeps both failures'
// logs, in two run dirs; when the older one is dropped from the kept
// MaxFailedRunDirs, the newer failure's log stays. (The dir was BaseDir/ID
// for both: the relaunch wiped the first log, and dropping the first entry
// deleted the second failure's.)
func TestRelaunchedIDKeepsEachFailureLog(t *testing.T) {
	h := newHarness(t, nil)
	var logs []string
	for n := range 2 {
		dir := h.failChain(t, "x", "x")[0]
		if err := os.WriteFile(filepath.Join(dir, "kamailio.log"), []byte(fmt.Sprintf("failure %d", n+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, dir)
	}
	if logs[0] == logs[1] {
		t.Fatalf("both launches of x ran in %s: the second failure overwrote the first's log", logs[0])
	}
	if b, err := os.ReadFile(filepath.Join(logs[0], "kamailio.log")); err != nil || string(b) != "failure 1" {
		t.Fatalf("x's first failure log after the relaunch: %q %v", b, err)
	}
	// MaxFailedRunDirs−1 more failures: x's first dir is the one dropped
	h.failChain(t, "x", chainIDs(MaxFailedRunDirs-1)...)
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "live", DC: "dc0", VNF: "scscf", Replaces: fmt.Sprintf("c%d", MaxFailedRunDirs-2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logs[0]); !os.IsNotExist(err) {
		t.Errorf("x's first run dir, the oldest of %d, kept: %v", MaxFailedRunDirs+1, err)
	}
	if b, err := os.ReadFile(filepath.Join(logs[1], "kamailio.log")); err != nil || string(b) != "failure 2" {
		t.Errorf("x's second failure log: %q %v; want it kept", b, err)
	}
}

// A dropped run dir of a failed instance is removed without the driver's
// lock: while its removal is held, List and a new launch are served.
func TestFailedRunDirRemovedWithoutTheLock(t *testing.T) {
	h := newHarness(t, nil)
	ids := chainIDs(MaxFailedRunDirs + 1)
	first := filepath.Join(h.d.cfg.BaseDir, ids[0])
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	h.d.removeAll = func(dir string) error {
		if dir == first {
			close(entered)
			<-release
		}
		return os.RemoveAll(dir)
	}
	h.failChain(t, "", ids...) // the last failure drops the first's dir
	select {
	case <-entered:
	case <-time.After(10 * time.Second): // a guard against a hang, not a wait for an effect
		t.Fatal("the oldest failed run dir was not removed after the last failure")
	}
	served := make(chan error, 1)
	go func() {
		if _, err := h.d.List(context.Background(), ""); err != nil {
			served <- err
			return
		}
		_, err := h.d.Launch(context.Background(), drivers.Spec{ID: "p1", DC: "dc0", VNF: "pcscf"})
		served <- err
	}()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a guard against a hang, not a wait for an effect
		t.Fatal("List and Launch wait while a failed instance's run dir is removed: the removal holds the driver's lock")
	}
	h.expect(t, "p1", drivers.StateBooting, "")
	once.Do(func() { close(release) })
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "live", DC: "dc0", VNF: "scscf", Replaces: ids[len(ids)-1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("the dropped run dir %s is still there: %v", first, err)
	}
}

// A launch whose process does not start leaves no run dir behind (before,
// each failed launch left its dir, written by prepare, on disk: unbounded
// with fresh IDs), and the ID's next launch gets the plain dir again.
func TestFailedLaunchRemovesItsRunDir(t *testing.T) {
	h := newHarness(t, nil)
	h.st.mu.Lock()
	h.st.err = errors.New("exec: no such file")
	h.st.mu.Unlock()
	for i := range 3 {
		id := fmt.Sprintf("f%d", i)
		if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: id, DC: "dc0", VNF: "scscf"}); err == nil {
			t.Fatalf("launch %s with a failing starter: no error", id)
		}
	}
	left, err := os.ReadDir(h.d.cfg.BaseDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("run dirs left by failed launches: %v", left)
	}
	h.st.mu.Lock()
	h.st.err = nil
	h.st.mu.Unlock()
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "f0", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "f0", drivers.StateBooting, "")
	if got, want := h.st.cmds[0].Dir, filepath.Join(h.d.cfg.BaseDir, "f0"); got != want {
		t.Errorf("f0 relaunched in %s, want %s (the failed launch's dir freed)", got, want)
	}
}

// A BaseDir that does not exist yet is created by the first launch (the
// daemon's openstack CP test gives <tmp>/kam; session 8's makeRunDir used a
// plain Mkdir and failed with "no such file or directory").
func TestLaunchCreatesAMissingBaseDir(t *testing.T) {
	var base string
	h := newHarness(t, func(c *Config) {
		base = filepath.Join(t.TempDir(), "not", "yet")
		c.BaseDir = base
	})
	if _, err := h.d.Launch(context.Background(), drivers.Spec{ID: "b0", DC: "dc0", VNF: "scscf"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(base, "b0")); err != nil || !fi.IsDir() {
		t.Fatalf("run dir of b0 under a new BaseDir: %v", err)
	}
}

// heldStarter holds the start of the instance whose run dir is named id
// until release is closed (entered is closed when it got there).
type heldStarter struct {
	*fakeStarter
	id               string
	entered, release chan struct{}
}

func (s heldStarter) Start(c Command) (Process, error) {
	if filepath.Base(c.Dir) == s.id {
		close(s.entered)
		<-s.release
	}
	return s.fakeStarter.Start(c)
}

// holdStart makes the launch of id hang in its process start until the
// returned release is called (also at the test's end).
func (h *harness) holdStart(t *testing.T, id string) (entered <-chan struct{}, release func()) {
	t.Helper()
	hs := heldStarter{fakeStarter: h.st, id: id, entered: make(chan struct{}), release: make(chan struct{})}
	h.d.cfg.Starter = hs
	var once sync.Once
	release = func() { once.Do(func() { close(hs.release) }) }
	t.Cleanup(release)
	return hs.entered, release
}

// waitFor is a guard against a hang, not a wait for an effect: the effect
// is a goroutine that is not held.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
		var zero T
		return zero
	}
}

// A launch writes its run dir and starts its process without the driver's
// lock: while one start hangs, List, another launch, the same ID's launch
// (it waits for the first and returns its instance), Terminate, Kill and
// Close (each waits, then stops it) are served or wait for that launch
// only; an S-CSCF launched meanwhile in the same DC has the hanging one as
// its DMQ peer. Before, the start ran under the lock and everything waited.
func TestLaunchStartsWithoutTheLock(t *testing.T) {
	h := newHarness(t, nil)
	entered, release := h.holdStart(t, "s1")
	type result struct {
		info drivers.Instance
		err  error
	}
	first := make(chan result, 1)
	go func() {
		info, err := h.d.Launch(context.Background(), drivers.Spec{ID: "s1", DC: "dc0", VNF: "scscf"})
		first <- result{info, err}
	}()
	waitFor(t, entered, "s1's process start")
	served := make(chan error, 1)
	go func() {
		if l, err := h.d.List(context.Background(), ""); err != nil || len(l) != 0 {
			served <- fmt.Errorf("List during s1's start: %v %v", l, err)
			return
		}
		_, err := h.d.Launch(context.Background(), drivers.Spec{ID: "s2", DC: "dc0", VNF: "scscf"})
		served <- err
	}()
	if err := waitFor(t, served, "List and another launch while s1's start hangs (the start holds the driver's lock)"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "s2", drivers.StateBooting, "")
	h.d.mu.Lock()
	s2 := h.d.insts["s2"]
	peers, s1Addr := s2.peers, h.d.launching["s1"].addr
	h.d.mu.Unlock()
	if !slices.Equal(peers, []netip.Addr{s1Addr}) {
		t.Fatalf("s2's DMQ peers %v, want s1 (%v), which is being launched", peers, s1Addr)
	}
	waiting := make(chan string, 2)
	h.d.mu.Lock()
	h.d.onSettle = func(id string) { waiting <- id }
	h.d.mu.Unlock()
	// waited returns once a caller waits for id's launch
	waited := func(id string) {
		t.Helper()
		if got := waitFor(t, waiting, "a wait for "+id+"'s launch"); got != id {
			t.Fatalf("a wait for %s, want %s", got, id)
		}
	}
	again := make(chan result, 1)
	go func() {
		info, err := h.d.Launch(context.Background(), drivers.Spec{ID: "s1", DC: "dc0", VNF: "scscf"})
		again <- result{info, err}
	}()
	waited("s1")
	release()
	r1 := waitFor(t, first, "s1's launch")
	r2 := waitFor(t, again, "s1's second launch")
	if r1.err != nil || r2.err != nil || r1.info.CloudID != r2.info.CloudID {
		t.Fatalf("s1 launched twice at once: %+v and %+v", r1, r2)
	}

	// Terminate, Kill (also Launch's Spec.Replaces) and Close during a
	// launch wait for it, then stop the instance
	stopDuring := func(id, what string, stop func() error) {
		t.Helper()
		entered, release := h.holdStart(t, id)
		launched := make(chan error, 1)
		go func() {
			_, err := h.d.Launch(context.Background(), drivers.Spec{ID: id, DC: "dc0", VNF: "scscf"})
			launched <- err
		}()
		waitFor(t, entered, id+"'s process start")
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		waited(id)
		release()
		if err := waitFor(t, launched, id+"'s launch"); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(t, stopped, what); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.d.Runtime(id); ok {
			t.Fatalf("%s still runs after %s returned: it did not wait for its launch", id, what)
		}
	}
	stopDuring("s3", "Terminate(s3)", func() error { return h.d.Terminate(context.Background(), "dc0", "s3") })
	stopDuring("s4", "Kill(s4)", func() error { return h.d.Kill(context.Background(), "dc0", "s4") })
	stopDuring("s5", "Close", func() error { return h.d.Close(context.Background()) })
	if l, _ := h.d.List(context.Background(), ""); len(l) != 0 {
		t.Fatalf("%d instances run after Close returned: %v", len(l), l)
	}
}

// KeepRunDirs keeps every run dir on disk, a terminated instance's and a
// failed launch's alike, and the driver forgets them (before, d.dirs grew by
// one per terminated instance): a later launch of the same ID finds its dir
// on disk and takes the next name, so no kept log is wiped.
func TestKeepRunDirsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeepRunDirs = true })
	ctx := context.Background()
	var dirs []string
	for i := range 3 {
		if _, err := h.d.Launch(ctx, drivers.Spec{ID: "x", DC: "dc0", VNF: "scscf"}); err != nil {
			t.Fatal(err)
		}
		h.expect(t, "x", drivers.StateBooting, "")
		rt, _ := h.d.Runtime("x")
		if err := os.WriteFile(filepath.Join(rt.Dir, "kamailio.log"), []byte(fmt.Sprintf("run %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, rt.Dir)
		if err := h.d.Terminate(ctx, "dc0", "x"); err != nil {
			t.Fatal(err)
		}
		h.expect(t, "x", drivers.StateGone, "terminated")
	}
	h.st.mu.Lock()
	h.st.err = errors.New("exec: no such file")
	h.st.mu.Unlock()
	if _, err := h.d.Launch(ctx, drivers.Spec{ID: "x", DC: "dc0", VNF: "scscf"}); err == nil {
		t.Fatal("a launch with a failing starter: no error")
	}
	for i, dir := range dirs {
		if b, err := os.ReadFile(filepath.Join(dir, "kamailio.log")); err != nil || string(b) != fmt.Sprintf("run %d", i) {
			t.Errorf("run %d's log in %s: %q %v, want it kept", i, dir, b, err)
		}
	}
	if !slices.Equal(dirs, []string{filepath.Join(h.d.cfg.BaseDir, "x"), filepath.Join(h.d.cfg.BaseDir, "x.2"), filepath.Join(h.d.cfg.BaseDir, "x.3")}) {
		t.Errorf("run dirs %v, want x, x.2, x.3", dirs)
	}
	if left, _ := os.ReadDir(h.d.cfg.BaseDir); len(left) != 4 {
		t.Errorf("run dirs on disk %v: want the three runs' and the failed launch's", left)
	}
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if len(h.d.dirs) != 0 || len(h.d.failedDirs) != 0 {
		t.Errorf("the driver still tracks %d run dirs (%d failed) with nothing running", len(h.d.dirs), len(h.d.failedDirs))
	}
}

// From the moment Close is called, a Launch fails with ErrClosed and starts
// nothing (no process, no run dir): one while Close waits for a launch under
// way, and one after Close returned. Before, Close stopped only what it found
// after its wait, and a later Launch ran an instance nobody would stop.
func TestLaunchAfterCloseFails(t *testing.T) {
	h := newHarness(t, nil)
	entered, release := h.holdStart(t, "s1")
	launched := make(chan error, 1)
	go func() {
		_, err := h.d.Launch(context.Background(), drivers.Spec{ID: "s1", DC: "dc0", VNF: "scscf"})
		launched <- err
	}()
	waitFor(t, entered, "s1's process start")
	waiting := make(chan string, 1)
	h.d.mu.Lock()
	h.d.onSettle = func(id string) { waiting <- id }
	h.d.mu.Unlock()
	closed := make(chan error, 1)
	go func() { closed <- h.d.Close(context.Background()) }()
	if id := waitFor(t, waiting, "Close's wait for s1's launch"); id != "s1" {
		t.Fatalf("Close waits for %s, want s1", id)
	}
	starts := func() int {
		h.st.mu.Lock()
		defer h.st.mu.Unlock()
		return len(h.st.cmds)
	}
	before := starts()
	launchFails := func(id, when string) {
		t.Helper()
		_, err := h.d.Launch(context.Background(), drivers.Spec{ID: id, DC: "dc0", VNF: "pcscf"})
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), id) {
			t.Fatalf("Launch(%s) %s: %v, want ErrClosed naming %s", id, when, err, id)
		}
		if _, err := os.Stat(filepath.Join(h.d.cfg.BaseDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Launch(%s) %s left a run dir (stat: %v)", id, when, err)
		}
		if n := starts(); n != before {
			t.Fatalf("Launch(%s) %s started a process (%d starts, want %d)", id, when, n, before)
		}
	}
	launchFails("p1", "while Close waits for s1's launch")
	release()
	if err := waitFor(t, launched, "s1's launch"); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	before = starts()
	launchFails("p2", "after Close returned")
	if l, _ := h.d.List(context.Background(), ""); len(l) != 0 {
		t.Fatalf("%d instances run after Close returned: %v", len(l), l)
	}
}
