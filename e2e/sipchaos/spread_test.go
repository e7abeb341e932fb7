package sipchaos

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// spreading test's configuration
const (
	spreadDC, spreadIdx = "dc1", 47 // 127.57.x.x, DNS 127.57.0.53; SIPp on 127.0.0.7x
	keepAliveRate       = 120       // OPTIONS/s loading the first P-CSCF
	firstBatch          = 200       // registrations resolved with both P-CSCFs in DNS
	callBatch           = 100       // calls of new UAs, both in DNS
	secondBatch         = 100       // registrations with the second one buffered
)

// TestPCSCFSpread: user agents find P-CSCFs through the DC's discovery DNS
// (SRV, RFC 2782 weighted choice) and the weights follow the P-CSCFs'
// measured load. One DC, real Kamailio, the real local controller, the
// statistics agents and the weight updater the daemon runs
// (Discovery.StartPCSCFWeights). The P-CSCF pool is scaled out to 2 while
// the first P-CSCF carries a keep-alive load; each new registration's UA
// asks the real DNS server and picks a target as RFC 2782 says (seeded
// random numbers), SIPp then registers it there, and the REGISTERs are
// counted at each Kamailio (core:rcv_requests_register over JSON-RPC).
// Asserted: both P-CSCFs get registrations, the loaded one fewer (its
// weight is lower), the split matches the published weights; after one
// P-CSCF is buffered it leaves the record set and gets no new registration.
func TestPCSCFSpread(t *testing.T) {
	ready(t)
	machinelocktest.SIP.Hold(t) // fixed addresses; no data plane of its own
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	scen := sipptest.Scenarios(t)
	logPath := filepath.Join(t.TempDir(), "controller.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	zone := localdrv.Zone(spreadIdx, "ims.local")
	srv, err := discovery.New(discovery.Options{Zone: zone})
	if err != nil {
		t.Fatal(err)
	}
	nsAddr, _ := localdrv.DNSAddr(spreadIdx)
	if _, err := srv.ListenAndServe(nsAddr.String()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	kam, err := localdrv.New(localdrv.Config{BaseDir: filepath.Join(os.TempDir(), "ims-orch-spread-kamailio"), Grace: 2 * time.Second,
		Children: 2, ShmMB: 64, DCIndex: func(string) (int, error) { return spreadIdx, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = kam.Close(c)
	}()
	disc, err := sipglue.NewDiscovery("pcscf", "scscf", map[string]sipglue.Zone{spreadDC: srv}, func(err error) { t.Logf("dns: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	// the P-CSCF's overload threshold is what a weight is relative to;
	// the keep-alive load stays below it (no overload, no reactive scaling)
	pth := vnf.Thresholds{CPU: 95, Mem: 95, PktRate: 250}
	ctl, err := local.New(local.Config{DC: spreadDC, DriverTimeout: 30 * time.Second,
		VNFs: []local.VNFConfig{
			{Name: "pcscf", Capacity: 1000, Min: 1, Thresholds: pth},
			{Name: "scscf", Capacity: 1000, Min: 1, Thresholds: vnf.Thresholds{CPU: 95, Mem: 95, PktRate: 1e6}},
		}, Sink: disc.Sink(spreadDC, nil)}, kam, clock.Real{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := sipglue.StartAgents(sipglue.AgentsConfig{Driver: kam, Clock: clock.Real{}, Cores: 1,
		Sink: sipglue.NewStatsSink(map[string]sipglue.StatsIntake{spreadDC: ctl})})
	if err != nil {
		t.Fatal(err)
	}
	defer agents.Close()
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ctl.Stop()
	stopWeights := disc.StartPCSCFWeights(clock.Real{}, time.Second, pth, map[string]sipglue.WeightSource{spreadDC: ctl.Instances})
	defer stopWeights()

	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > limit {
				b, _ := os.ReadFile(logPath)
				t.Fatalf("%s: not within %v\ncontroller log:\n%s", what, limit, b)
			}
			time.Sleep(100 * time.Millisecond) // polling real processes
		}
	}
	// srvAnswer asks the DC's DNS server, as a UE's resolver does
	dnsc := &dns.Client{Timeout: 2 * time.Second}
	srvAnswer := func() (*dns.Msg, error) {
		q := new(dns.Msg)
		q.SetQuestion(srv.SRVName(sipglue.ServicePCSCF), dns.TypeSRV)
		r, _, err := dnsc.ExchangeContext(ctx, q, nsAddr.String())
		return r, err
	}
	// weights by P-CSCF address, from the real answer
	weights := func() map[netip.AddrPort]uint16 {
		r, err := srvAnswer()
		if err != nil {
			return nil
		}
		out := map[netip.AddrPort]uint16{}
		for _, rr := range r.Answer {
			s := rr.(*dns.SRV)
			out[targetAddr(r, s)] = s.Weight
		}
		return out
	}
	waitFor("a P-CSCF and an S-CSCF routable", 30*time.Second, func() bool {
		return len(ctl.Routable("pcscf")) == 1 && len(ctl.Routable("scscf")) == 1
	})
	p1 := netip.MustParseAddrPort(ctl.Routable("pcscf")[0].Address)

	// the first P-CSCF carries keep-alives; then the pool scales out
	startSIPp(t, "keep-alives to P-CSCF 1", p1.String(), "-sf", filepath.Join(scen, "options.xml"), "-i", "127.0.0.71", "-p", "5070",
		"-r", strconv.Itoa(keepAliveRate), "-timeout", "170")
	if _, err := ctl.Scale("pcscf", 1, "spreading test: scale out"); err != nil {
		t.Fatal(err)
	}
	waitFor("2 P-CSCFs routable", 30*time.Second, func() bool { return len(ctl.Routable("pcscf")) == 2 })
	var p2 netip.AddrPort
	ids := map[netip.AddrPort]string{}
	for _, in := range ctl.Routable("pcscf") {
		a := netip.MustParseAddrPort(in.Address)
		ids[a] = in.ID
		if a != p1 {
			p2 = a
		}
	}
	var w map[netip.AddrPort]uint16
	waitFor("both P-CSCFs in DNS, the loaded one with the lower weight", 20*time.Second, func() bool {
		w = weights()
		return len(w) == 2 && w[p1] > 0 && w[p2] > 0 && float64(w[p1]) < 0.8*float64(w[p2])
	})
	t.Logf("SRV weights: P-CSCF 1 %s (keep-alive load) %d, P-CSCF 2 %s %d", p1, w[p1], p2, w[p2])

	requests := func(a netip.AddrPort, stat string) int64 {
		rt, ok := kam.Runtime(ids[a])
		if !ok {
			t.Fatalf("no runtime for %s", a)
		}
		c := kamrpc.New(rt.RPC)
		c.Timeout = 3 * time.Second
		for try := 0; try < 3; try++ {
			if st, err := c.Stats(ctx, stat); err == nil {
				return st[stat]
			}
		}
		t.Fatalf("stats of %s: unreachable", a)
		return 0
	}
	// the callee of the new calls, registered straight at the S-CSCF (no
	// Path): a call's INVITE then passes only the caller's P-CSCF
	startSIPp(t, "callee", "-sf", filepath.Join(scen, "uas.xml"), "-i", "127.0.0.74", "-p", "5080")
	calleeInf := filepath.Join(t.TempDir(), "callee.csv")
	if err := os.WriteFile(calleeInf, []byte("SEQUENTIAL\nspreadee;127.0.0.74:5080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := startSIPp(t, "register the callee", ctl.Routable("scscf")[0].Address, "-sf", filepath.Join(scen, "reg.xml"),
		"-inf", calleeInf, "-i", "127.0.0.75", "-p", "5090", "-m", "1", "-timeout", "10").wait(ctx); err != nil || res.OK != 1 {
		t.Fatalf("register the callee: %+v %v", res, err)
	}
	rnd := rand.New(rand.NewPCG(15, 7))
	// batch resolves n new UAs through DNS (one query each, the answer's
	// weights recorded), registers each at its chosen P-CSCF with SIPp, and
	// returns the picks, the REGISTERs each Kamailio received meanwhile, and
	// the weights the answers carried
	batch := func(name string, n int, calls bool) (picks, got map[netip.AddrPort]int, seen map[netip.AddrPort]uint16) {
		picks, got, seen = map[netip.AddrPort]int{}, map[netip.AddrPort]int{}, map[netip.AddrPort]uint16{}
		users := map[netip.AddrPort][]string{}
		for i := range n {
			r, err := srvAnswer()
			if err != nil {
				t.Fatalf("%s: DNS: %v", name, err)
			}
			s := discovery.PickSRV(r.Answer, rnd.Uint32N)
			if s == nil {
				t.Fatalf("%s: no SRV record: %v", name, r)
			}
			for _, rr := range r.Answer {
				seen[targetAddr(r, rr.(*dns.SRV))] = rr.(*dns.SRV).Weight
			}
			a := targetAddr(r, s)
			picks[a]++
			users[a] = append(users[a], fmt.Sprintf("%s-ue%d;127.0.0.72:%d", name, i, 6000+i))
		}
		stat := "core:rcv_requests_register"
		if calls {
			stat = "core:rcv_requests_invite"
		}
		before := map[netip.AddrPort]int64{p1: requests(p1, stat), p2: requests(p2, stat)}
		for a, us := range users {
			args := []string{a.String(), "-sf", filepath.Join(scen, "reg.xml"), "-i", "127.0.0.73", "-p", "5071", "-r", "50",
				"-m", strconv.Itoa(len(us)), "-timeout", "60"}
			if calls { // one call per new UA: INVITE, 200, ACK, BYE to the callee
				args = []string{a.String(), "-sf", filepath.Join(scen, "uac.xml"), "-s", "spreadee", "-key", "caller", "spreader", "-i", "127.0.0.73", "-p", "5071",
					"-r", "40", "-d", "100", "-m", strconv.Itoa(len(us)), "-timeout", "60"}
			} else {
				inf := filepath.Join(t.TempDir(), "ues.csv")
				if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+strings.Join(us, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-inf", inf)
			}
			res, err := startSIPp(t, name+" via "+a.String(), args...).wait(ctx)
			if err != nil || res.OK != len(us) {
				t.Fatalf("%s via %s: %d of %d completed (%v) %s", name, a, res.OK, len(us), err, res.Errors)
			}
		}
		for a, b := range before {
			got[a] = int(requests(a, stat) - b)
		}
		return picks, got, seen
	}

	picks, got, seen := batch("spread", firstBatch, false)
	t.Logf("both in DNS: weights %v; UAs chose %v; REGISTERs received %v", seen, picks, got)
	for _, a := range []netip.AddrPort{p1, p2} {
		if got[a] < picks[a] || picks[a] == 0 {
			t.Errorf("P-CSCF %s: %d chosen, %d REGISTERs received; want some, all of them", a, picks[a], got[a])
		}
	}
	if picks[p1] >= picks[p2] {
		t.Errorf("the loaded P-CSCF %s took %d registrations, the other %d: weights from load must favour the idle one", p1, picks[p1], picks[p2])
	}
	checkSplit(t, "registrations", picks[p2], firstBatch, seen[p1], seen[p2])

	// new calls of new UAs spread alike, once the registrations' load on
	// the second P-CSCF has left its statistics
	waitFor("the second P-CSCF idle again", 20*time.Second, func() bool {
		w = weights()
		return w[p2] >= 900 && float64(w[p1]) < 0.8*float64(w[p2])
	})
	cpicks, cgot, cseen := batch("calls", callBatch, true)
	t.Logf("calls: weights %v; UAs chose %v; INVITEs received %v", cseen, cpicks, cgot)
	for _, a := range []netip.AddrPort{p1, p2} {
		if cgot[a] < cpicks[a] || cpicks[a] == 0 {
			t.Errorf("P-CSCF %s: %d calls chosen, %d INVITEs received; want some, all of them", a, cpicks[a], cgot[a])
		}
	}
	if cpicks[p1] >= cpicks[p2] {
		t.Errorf("calls: the loaded P-CSCF %s (weight %d, the other %d) took %d calls, the other %d", p1, cseen[p1], cseen[p2], cpicks[p1], cpicks[p2])
	}
	checkSplit(t, "calls", cpicks[p2], callBatch, cseen[p1], cseen[p2])

	// buffer one P-CSCF: it leaves the record set and gets no new UA
	if _, err := ctl.Scale("pcscf", -1, "spreading test: scale in"); err != nil {
		t.Fatal(err)
	}
	waitFor("one P-CSCF left in DNS", 20*time.Second, func() bool { return len(weights()) == 1 })
	var kept, buffered netip.AddrPort
	for a := range weights() {
		kept = a
	}
	buffered = p1
	if kept == p1 {
		buffered = p2
	}
	if n := len(ctl.Routable("pcscf")); n != 1 {
		t.Fatalf("%d P-CSCFs routable after the scale-in, want 1", n)
	}
	picks, got, _ = batch("after", secondBatch, false)
	t.Logf("%s buffered: UAs chose %v; REGISTERs received %v", buffered, picks, got)
	if picks[buffered] != 0 || got[buffered] != 0 {
		t.Errorf("buffered P-CSCF %s: chosen %d times, %d REGISTERs received; want none", buffered, picks[buffered], got[buffered])
	}
	if picks[kept] != secondBatch || got[kept] < secondBatch {
		t.Errorf("P-CSCF %s: chosen %d, received %d, want all %d", kept, picks[kept], got[kept], secondBatch)
	}
}

// checkSplit: the second P-CSCF's picks follow the weights the answers
// carried (binomial, within 4 standard deviations).
func checkSplit(t *testing.T, what string, picks2, n int, w1, w2 uint16) {
	t.Helper()
	share := float64(w2) / float64(int(w1)+int(w2))
	if exp, sd := share*float64(n), math.Sqrt(float64(n)*share*(1-share)); math.Abs(float64(picks2)-exp) > 4*sd+1 {
		t.Errorf("%s: P-CSCF 2 chosen %d of %d times, expected %.0f ± %.0f from weights %d / %d", what, picks2, n, exp, 4*sd, w1, w2)
	}
}

// targetAddr is the address an SRV record names: its target's A record in
// the answer's additional section, and its port.
func targetAddr(r *dns.Msg, s *dns.SRV) netip.AddrPort {
	for _, rr := range r.Extra {
		if a, ok := rr.(*dns.A); ok && strings.EqualFold(a.Hdr.Name, s.Target) {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			return netip.AddrPortFrom(ip, s.Port)
		}
	}
	return netip.AddrPortFrom(netip.Addr{}, s.Port)
}
