package sipchaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// The test's configuration: every number the assertions depend on.
const (
	statsTimeout = 3 * time.Second // the local controller's default
	faultEvery   = 16 * time.Second
	firstFault   = 8 * time.Second
	loadFor      = firstFault + 4*faultEvery
	stopFor      = 4500 * time.Millisecond // SIGSTOP … SIGCONT, as in the issue
	maxFailShare = 0.005
	// maxFailPerFault bounds TestChaosMedia's failed calls (576 media
	// calls and keep-alives, 1 296 with the set-up probe since session
	// 17: a share of the 576 would be 2.9 calls at 0.5 %, one cut call
	// more or less decides): the calls a fault may cut, as many as TestChaos's
	// 0.5 % of its 1 872 calls allows per fault (9.4 over 4 faults); the
	// share is no yardstick here, the calls a fault cuts do not scale
	// with the rate.
	maxFailPerFault = 2
	promptSetup     = time.Second
	// poolFailover is how long a P-CSCF waits for an S-CSCF's 100 Trying
	// before it tries the next SRV target (drivers/local's default
	// TemplateData.PoolInviteFRMS): a call set up in at least that long
	// went to a silent S-CSCF first.
	poolFailover = 2 * time.Second
	// failoverWaited: a set-up this long waited poolFailover (SIPp measures
	// such calls at 1.98–2.4 s under load: the P-CSCF's timer starts after SIPp's send
	// and ticks in 62.5 ms steps; a prompt set-up takes < 0.5 s unloaded)
	failoverWaited = poolFailover - 200*time.Millisecond
)

// kind is one SIPp traffic kind per P-CSCF: scenario, callee AOR, rate
// (calls/s); media: the calls carry RTP (media_test.go); keys: extra
// SIPp -key pairs
type kind struct {
	kind, scen, service string
	rate                int
	media               bool
	keys                []string
}

// mix is TestChaos's traffic per P-CSCF (its first kind's set-up times
// give the first call after each fault).
var mix = []kind{
	{"call (hold/resume)", "uac_mix.xml", "mixee", 5, false, nil},
	{"cancel", "uac_cancel.xml", "cancelee", 2, false, nil},
	{"message", "uac_msg.xml", "msgee", 3, false, nil},
	{"keep-alive", "options.xml", "", 2, false, nil},
	{"register/refresh/unregister", "regmix.xml", "", 1, false, nil},
}

// mediaMix is TestChaosMedia's: calls with RTP, the keep-alives, and
// first, short plain calls at TestChaos's call rate that give the first
// new call after each fault. The media calls alone (2/s per P-CSCF, both
// SIPps on one 500 ms grid, a fault right after a grid point) start only
// two calls in the 1 s after a fault, at +0.5 s: when both go to the
// stopped S-CSCF (one run in four — each waits the P-CSCF's 2 s for a
// 100 before the next SRV target), the first new call is one of +1.0 s's,
// set up at ≈ 1.05 s (CI of stop 32: 1.047 s, a 1 s bound). The set-up
// probe's 5 calls/s per P-CSCF start ≈ 8 calls in that second, as
// TestChaos's first kind does.
var mediaMix = []kind{
	{"call (set-up probe)", "uac.xml", "probee", 5, false, []string{"caller", "prober"}},
	{"call (media)", "uac_rtp.xml", "mediaee", 2, true, nil},
	{"keep-alive", "options.xml", "", 2, false, nil},
}

// callees: AOR, scenario, address (uas_rtp.xml: media endpoints in the
// DC's users' namespace, media_test.go)
type callee struct{ aor, scen, addr string }

var callees = []callee{
	{"mixee", "uas_mix.xml", "127.0.0.91"},
	{"cancelee", "uas_cancel.xml", "127.0.0.92"},
	{"msgee", "uas_msg.xml", "127.0.0.93"},
	{"mediaee", "uas_rtp.xml", "127.0.0.95"},
	{"probee", "uas.xml", "127.0.0.96"},
}

type fault struct {
	name   string
	vnf    string
	stop   bool // SIGSTOP (then SIGCONT) instead of SIGKILL
	at     time.Time
	victim string
}

func ready(t *testing.T) {
	t.Helper()
	if os.Getenv("IMS_SIP_CHAOS") != "1" {
		t.Skip("IMS_SIP_CHAOS=1 not set: this ~2 min real-SIP chaos test runs from scripts/ci-sip-chaos.sh")
	}
	err := localdrv.Available()
	if err == nil {
		err = localdrv.DNSAvailable()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
}

// readyMedia skips the media test when the real data plane's parts are
// absent (Fatal under CI=true, like ready): the media calls' RTP needs the
// daemon's real data plane, Open vSwitch and root.
func readyMedia(t *testing.T) {
	t.Helper()
	if err := ovs.Usable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real data plane's parts are missing: %v", err)
		}
		t.Skipf("the media calls need the real data plane (Open vSwitch, scripts/ci-ovs.sh): %v", err)
	}
}

// TestChaos runs `ims-orch serve --driver local` (the real binary, built
// here) with one DC of 2 P-CSCFs and 2 S-CSCFs (real Kamailio, the local
// controller, DNS discovery, statistics agents) under a steady SIPp mix —
// calls with hold/resume re-INVITEs, CANCELled calls, MESSAGEs, OPTIONS
// keep-alives to the P-CSCFs, REGISTER/refresh/un-REGISTER — and SIGKILLs a
// P-CSCF, SIGKILLs an S-CSCF, SIGSTOPs a P-CSCF, SIGSTOPs an S-CSCF (4.5 s,
// then SIGCONT), 16 s apart, each by the PID of the Kamailio the daemon
// launched (its pid file). Asserted: ≤ 0.5 % of all SIPp calls fail, no
// keep-alive fails, after each fault a new call is set up within 1 s, every
// victim is failed and replaced in the decisions API (GET over HTTP), and
// the callees, registered once before the load, are still reached after
// every fault (nobody re-registers), and the daemon logged no rule conflict
// (SIPp's calls reuse one media 5-tuple: session 12's rehearsal failed on
// those). IMS_SIP_CHAOS_KEEP_LOG=<file> keeps a copy of the daemon's log.
func TestChaos(t *testing.T) { runChaos(t, mix) }

// TestChaosMedia runs TestChaos's faults and checks under calls that carry
// media (media_test.go): each call has a media endpoint of its own at both
// ends in the DC's users' namespace of the daemon's real data plane (Open
// vSwitch), its caller sends 2 s of RTP (50 packets/s) through the rules
// the P-CSCFs' media hook installed (entry address → firewall instance →
// exit translation), and the callee's sockets count what arrives per call.
// Asserted besides TestChaos's: ≥ 99 % of the RTP sent arrives, every
// packet from the entry address (through the chain, never around it).
func TestChaosMedia(t *testing.T) { runChaos(t, mediaMix) }

func runChaos(t *testing.T, mix []kind) {
	ready(t)
	if slices.ContainsFunc(mix, func(m kind) bool { return m.media }) {
		readyMedia(t)
	}
	// the daemon runs the real data plane (Open vSwitch) and Kamailio on
	// fixed addresses: the machine's OVS lock, then its SIP lock (the order
	// everywhere; scripts/ci-sip-chaos.sh holds both, and the test runs under them)
	machinelocktest.OVS.Hold(t)
	machinelocktest.SIP.Hold(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	scen := sipptest.Scenarios(t)
	d := startServe(t, ctx)
	logPath := d.log
	c := d.client

	// the daemon's view over HTTP: working instances of a VNF, sorted by ID
	routable := func(vnf string) []api.Instance {
		st, err := c.State(ctx)
		if err != nil {
			return nil
		}
		var out []api.Instance
		for _, in := range st.Instances {
			if in.VNF == vnfName[vnf] && (in.State == "normal" || in.State == "overload") && in.Address != "" {
				out = append(out, in)
			}
		}
		slices.SortFunc(out, func(a, b api.Instance) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
	dump := func() string {
		b, _ := os.ReadFile(logPath)
		var warn []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				warn = append(warn, l)
			}
		}
		return "daemon warnings:\n" + strings.Join(warn, "\n")
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %v\n%s", what, limit, dump())
			}
			time.Sleep(50 * time.Millisecond) // polling real processes
		}
		return time.Since(start)
	}
	waitFor("2 P-CSCFs and 2 S-CSCFs routable", 30*time.Second, func() bool {
		return len(routable("pcscf")) == 2 && len(routable("scscf")) == 2
	})
	var pcscfs []string
	for _, in := range routable("pcscf") {
		pcscfs = append(pcscfs, in.Address)
	}
	t.Logf("P-CSCFs %v, S-CSCFs %v", pcscfs, routable("scscf"))

	// the callees of the mix
	var called []callee
	for _, c := range callees {
		if slices.ContainsFunc(mix, func(m kind) bool { return m.service == c.aor }) {
			called = append(called, c)
		}
	}
	// the media calls' RTP, in the real data plane's users' namespace:
	// the callee's media ports (half as many again as the calls: SIPp takes
	// a line per new call, and a retransmitted INVITE that comes after the
	// callee's end of its call starts another)
	mediaCalls := 0
	for _, m := range mix {
		if m.media {
			mediaCalls += len(pcscfs) * m.rate * int(loadFor/time.Second)
		}
	}
	var media *mediaRig
	ports := calleePorts(mediaCalls * 3 / 2)
	if mediaCalls > 0 {
		ns, err := usersNS(logPath)
		if err != nil {
			t.Fatal(err) // readyMedia found Open vSwitch: the daemon should have used it
		}
		media = startMedia(t, ns, len(pcscfs), ports)
	}

	// callees register once, through the first P-CSCF (Path = its address)
	for _, c := range called {
		args := []string{"-sf", filepath.Join(scen, c.scen), "-i", c.addr, "-p", "5080"}
		if c.scen == "uas_rtp.xml" {
			args = append(args, "-inf", portsFile(t, ports), "-key", "mip", calleeMediaIP)
		}
		startSIPp(t, "uas "+c.aor, args...)
		inf := filepath.Join(t.TempDir(), "reg.csv")
		if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+c.aor+";"+c.addr+":5080\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// as a UE does, a 503 + Retry-After (the P-CSCF found no S-CSCF yet) is retried
		for try := 1; ; try++ {
			reg := startSIPp(t, "register "+c.aor, pcscfs[0], "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf,
				"-i", "127.0.0.90", "-p", "5090", "-m", "1", "-timeout", "8")
			r, err := reg.wait(ctx)
			if err == nil && r.OK == 1 {
				break
			}
			if try == 3 {
				t.Fatalf("register %s: %+v %v", c.aor, r, err)
			}
			t.Logf("register %s, try %d: %s; retrying after 1 s", c.aor, try, r.Errors)
			time.Sleep(time.Second) // Retry-After
		}
	}
	regUsers := func(in api.Instance) int64 {
		a, err := netip.ParseAddrPort(in.Address)
		if err != nil {
			return -1
		}
		c := kamrpc.New(netip.AddrPortFrom(a.Addr(), localdrv.RPCPort))
		c.Timeout = 3 * time.Second // the machine is shared: be patient
		for try := 0; try < 3; try++ {
			if st, err := c.Stats(ctx, "usrloc:registered_users"); err == nil {
				return st["usrloc:registered_users"]
			}
		}
		return -1
	}
	waitFor(fmt.Sprintf("both S-CSCFs hold the %d callees (DMQ)", len(called)), 10*time.Second, func() bool {
		for _, in := range routable("scscf") {
			if regUsers(in) < int64(len(called)) {
				return false
			}
		}
		return true
	})

	// the steady mix, one SIPp per kind and P-CSCF
	type caller struct {
		kind string
		p    *sippProc
	}
	var callers []caller
	n := 0
	for pi, p := range pcscfs {
		for _, m := range mix {
			n++
			args := []string{p, "-sf", filepath.Join(scen, m.scen), "-i", "127.0.0.1" + fmt.Sprintf("%02d", n), "-p", "5070",
				"-r", strconv.Itoa(m.rate), "-m", strconv.Itoa(m.rate * int(loadFor/time.Second)),
				"-timeout", strconv.Itoa(int(loadFor/time.Second) + 40), "-recv_timeout", "12000"}
			if m.service != "" {
				args = append(args, "-s", m.service)
			}
			for i := 0; i+1 < len(m.keys); i += 2 {
				args = append(args, "-key", m.keys[i], m.keys[i+1])
			}
			if m.media {
				inf := portsFile(t, callerPorts(pi, m.rate*int(loadFor/time.Second)))
				args = append(args, "-inf", inf, "-d", strconv.Itoa(int(mediaHold/time.Millisecond)),
					"-key", "mip", callerMediaIP(pi), "-key", "notify", media.fifo)
			}
			callers = append(callers, caller{m.kind, startSIPp(t, fmt.Sprintf("%s via P-CSCF %d", m.kind, pi+1), args...)})
		}
	}
	loadStart := time.Now()

	faults := []*fault{
		{name: "SIGKILL P-CSCF", vnf: "pcscf"},
		{name: "SIGKILL S-CSCF", vnf: "scscf"},
		{name: "SIGSTOP P-CSCF", vnf: "pcscf", stop: true},
		{name: "SIGSTOP S-CSCF", vnf: "scscf", stop: true},
	}
	for i, f := range faults {
		time.Sleep(time.Until(loadStart.Add(firstFault + time.Duration(i)*faultEvery))) // the fault schedule
		waitFor(f.name+": 2 routable before the fault", 10*time.Second, func() bool { return len(routable(f.vnf)) == 2 })
		r := routable(f.vnf)
		f.victim = r[len(r)-1].ID
		pid := d.pid(t, f.victim)
		sig := syscall.SIGKILL
		if f.stop {
			sig = syscall.SIGSTOP
		}
		f.at = time.Now()
		// the whole instance: Kamailio's main process and its workers (its group)
		if err := syscall.Kill(-pid, sig); err != nil {
			t.Fatal(err)
		}
		if f.stop {
			pgid := pid
			time.AfterFunc(stopFor, func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) }) // ESRCH once killed: harmless
		}
		took := waitFor(f.name+": replaced and routable again", 12*time.Second, func() bool {
			r := routable(f.vnf)
			if len(r) != 2 {
				return false
			}
			for _, in := range r {
				if in.ID == f.victim {
					return false
				}
			}
			return true
		})
		t.Logf("%s %s at +%.1fs: 2 routable again (victim out, replacement active) after %v",
			f.name, f.victim, f.at.Sub(loadStart).Seconds(), took.Round(10*time.Millisecond))
	}

	// results
	wctx, wcancel := context.WithTimeout(ctx, loadFor+60*time.Second)
	defer wcancel()
	var all []callTiming // successful INVITE calls (hold/resume): setup times
	total, failed := 0, 0
	perKind := map[string][3]int{}
	for _, c := range callers {
		r, err := c.p.wait(wctx)
		if err != nil {
			t.Fatal(err)
		}
		k := perKind[c.kind]
		perKind[c.kind] = [3]int{k[0] + r.Created, k[1] + r.OK, k[2] + r.Failed}
		total += r.Created
		failed += r.Failed
		if r.Failed > 0 {
			t.Logf("%s: %d of %d failed:\n%s", r.Name, r.Failed, r.Created, r.Errors)
		}
		if c.kind == mix[0].kind { // the first kind's calls (both mixes: INVITE set-up)
			all = append(all, r.Calls...)
		}
	}
	for _, m := range mix {
		k := perKind[m.kind]
		t.Logf("%-28s %5d placed, %5d ok, %3d failed", m.kind, k[0], k[1], k[2])
	}
	t.Logf("all kinds: %d placed, %d failed (%.2f %%)", total, failed, 100*float64(failed)/float64(max(total, 1)))
	// every caller is done: the media calls' packets, counted at the callee
	if media != nil {
		media.finish()
		var placed, ok int
		for _, m := range mix {
			if m.media {
				placed, ok = placed+perKind[m.kind][0], ok+perKind[m.kind][1]
			}
		}
		media.check(loadStart, faults, placed, ok)
	}

	// recovery per fault: the first new call (the mix's first kind) set up after it,
	// and how many of the calls started in its window took more than 1 s to
	// be set up (the shared 2-core machine adds some of those by itself)
	type rec struct {
		first       time.Duration
		calls, slow int
	}
	recs := make([]rec, len(faults))
	for i, f := range faults {
		end := loadStart.Add(loadFor)
		if i+1 < len(faults) {
			end = faults[i+1].at
		}
		recs[i].first = -1
		for _, c := range all {
			if c.Start.Before(f.at) || !c.Start.Before(end) {
				continue
			}
			recs[i].calls++
			if done := c.Start.Add(c.Took).Sub(f.at); recs[i].first < 0 || done < recs[i].first {
				recs[i].first = done
			}
			if c.Took > promptSetup {
				recs[i].slow++
			}
		}
		t.Logf("%s: first new call set up %v after the fault; %d calls started in the next %v, %d of them set up in more than %v",
			f.name, recs[i].first.Round(time.Millisecond), recs[i].calls, end.Sub(f.at).Round(time.Second), recs[i].slow, promptSetup)
		// a slow set-up is the P-CSCF's S-CSCF failover only when an
		// S-CSCF failed; after a P-CSCF fault it is SIPp retransmitting to
		// that P-CSCF (revRC LOW-5)
		why := "slow, not the S-CSCF failover: SIPp retransmits to the P-CSCF"
		if f.vnf == "scscf" {
			why = fmt.Sprintf("waited the P-CSCF's %v failover", poolFailover)
		}
		t.Logf("%s: set-up by start second after the fault (calls, set up in ≥ %v: %s, slowest): %s",
			f.name, failoverWaited, why, setupBySecond(all, f.at, end))
	}

	// the decisions API (GET over HTTP): failed → replaced, for every victim
	ds, err := c.AllDecisions(ctx, api.DecisionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range faults {
		var why string
		for _, dd := range ds.Decisions {
			if dd.Kind == api.DecisionReplacement && strings.Contains(dd.Reason, "replaces "+f.victim+" (") {
				why = dd.Reason
			}
		}
		if why == "" {
			t.Errorf("%s: no replacement of %s in the decisions API: %+v", f.name, f.victim, ds.Decisions)
		} else {
			t.Logf("%s: decision %q", f.name, why)
		}
	}
	// per S-CSCF (one look at the daemon's view): where the INVITEs went
	// (logged; a replacement takes its failed S-CSCF's address), and that
	// it still holds the callees registered before the load
	for _, in := range routable("scscf") {
		if a, err := netip.ParseAddrPort(in.Address); err == nil {
			kc := kamrpc.New(netip.AddrPortFrom(a.Addr(), localdrv.RPCPort))
			kc.Timeout = 3 * time.Second
			st, err := kc.Stats(ctx, "core:rcv_requests_invite")
			t.Logf("S-CSCF %s (%s): %d INVITEs received (%v)", in.ID, in.Address, st["core:rcv_requests_invite"], err)
		}
		if n := regUsers(in); n < int64(len(called)) {
			t.Errorf("S-CSCF %s holds %d registrations, want ≥ %d (the callees, never re-registered)", in.ID, n, len(called))
		}
	}

	if media == nil {
		if share := float64(failed) / float64(max(total, 1)); share > maxFailShare {
			t.Errorf("%d of %d SIPp calls failed (%.2f %%), want ≤ %.1f %%", failed, total, 100*share, 100*maxFailShare)
		}
	} else if bound := maxFailPerFault * len(faults); failed > bound {
		t.Errorf("%d of %d SIPp calls failed, want ≤ %d (%d per fault)", failed, total, bound, maxFailPerFault)
	}
	if k := perKind["keep-alive"]; k[2] != 0 || k[1] == 0 {
		t.Errorf("keep-alives: %d ok, %d failed; want all answered 200", k[1], k[2])
	}
	for i, f := range faults {
		if recs[i].first < 0 || recs[i].first > promptSetup {
			t.Errorf("%s: first new call set up after %v, want ≤ %v; the first calls after it: %s",
				f.name, recs[i].first, promptSetup, firstCalls(all, f.at, 8))
		}
	}
	// the data plane's rule updates: a call's media rules that the switch
	// refused (or a whole DC's update refused for one call) are counted here
	if keep := os.Getenv("IMS_SIP_CHAOS_KEEP_LOG"); keep != "" {
		if b, err := os.ReadFile(logPath); err == nil {
			_ = os.WriteFile(keep, b, 0o644) // a copy for the one who runs it; the temp dir goes
		}
	}
	// the rule conflicts are counted exactly by the metric (the log's
	// warnings are rate-limited: 10 per 10 s)
	series, conflicts, err := dataplaneSeries(ctx)
	t.Logf("daemon log: %d media hook warnings; metrics: %s", mediaWarnings(logPath), series)
	switch {
	case err != nil:
		t.Errorf("the data plane's metrics: %v", err)
	case conflicts > 0:
		// SIPp's calls reuse one media 5-tuple: the newer call's rule
		// replaces the older one's (controller/dataplane takeover.go)
		t.Errorf("ims_orch_dataplane_rule_conflicts_total: %v rule conflicts, want none", conflicts)
	}
	if t.Failed() {
		t.Log(dump())
	}
}

// mediaWarnings counts the media hook's warnings in the daemon's log
// (rate-limited: a sample, for the log).
func mediaWarnings(path string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) && strings.Contains(l, "media hook") {
			n++
		}
	}
	return n
}

// dataplaneSeries returns the daemon's flow-takeover and rule-conflict
// series (GET /metrics) and the sum of the rule-conflict series (exact,
// unlike the log); an error when the daemon exports no rule-conflict series.
func dataplaneSeries(ctx context.Context) (series string, conflicts float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+serveAPI+"/metrics", nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	var out []string
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "ims_orch_dataplane_flow_takeovers_total") {
			out = append(out, l)
		}
		if rest, ok := strings.CutPrefix(l, "ims_orch_dataplane_rule_conflicts_total"); ok {
			out = append(out, l)
			f := strings.Fields(rest)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return "", 0, fmt.Errorf("metrics line %q: %w", l, err)
			}
			conflicts += v
			found = true
		}
	}
	if !found {
		return strings.Join(out, "; "), 0, fmt.Errorf("no ims_orch_dataplane_rule_conflicts_total series in GET /metrics")
	}
	return strings.Join(out, "; "), conflicts, nil
}

// firstCalls lists the first n calls started after at (start offset →
// set-up time), for a failed recovery bound: were the calls slow
// everywhere, or did only the ones sent to the stopped instance wait?
func firstCalls(all []callTiming, at time.Time, n int) string {
	var after []callTiming
	for _, c := range all {
		if !c.Start.Before(at) {
			after = append(after, c)
		}
	}
	slices.SortFunc(after, func(a, b callTiming) int { return a.Start.Compare(b.Start) })
	var out []string
	for _, c := range after[:min(n, len(after))] {
		out = append(out, fmt.Sprintf("+%v→%v", c.Start.Sub(at).Round(time.Millisecond), c.Took.Round(time.Millisecond)))
	}
	return strings.Join(out, " ")
}

// setupBySecond sums the calls started in each second after at (until
// end, 8 s at most): how many, how many took ≥ failoverWaited to be set up
// (after an S-CSCF fault: their INVITE went to the silent S-CSCF first and
// waited the P-CSCF's timer before the next SRV target; after a P-CSCF
// fault: SIPp retransmitting) and the slowest set-up.
func setupBySecond(all []callTiming, at, end time.Time) string {
	var out []string
	for s := time.Duration(0); s < 8*time.Second && at.Add(s).Before(end); s += time.Second {
		n, waited, slowest := 0, 0, time.Duration(0)
		for _, c := range all {
			if off := c.Start.Sub(at); off < s || off >= s+time.Second || !c.Start.Before(end) {
				continue
			}
			n++
			if c.Took >= failoverWaited {
				waited++
			}
			slowest = max(slowest, c.Took)
		}
		out = append(out, fmt.Sprintf("+%ds %d/%d/%v", s/time.Second, n, waited, slowest.Round(time.Millisecond)))
	}
	return strings.Join(out, " ")
}
