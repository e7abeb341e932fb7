package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// reportLog keeps a CPMeter's reports and, for each, the S-CSCFs (by RPC
// address) the meter could not read for it: such an S-CSCF's next reading is
// spread over the whole time since its last one.
type reportLog struct {
	mu     sync.Mutex
	reps   []protocol.WorkloadReport
	missed []map[netip.AddrPort]bool
	failed map[netip.AddrPort]bool // since the last report
}

func (l *reportLog) ReportWorkload(r protocol.WorkloadReport) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reps = append(l.reps, r)
	l.missed = append(l.missed, l.failed)
	l.failed = nil
	return nil
}

func (l *reportLog) readFailed(a netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		l.failed = map[netip.AddrPort]bool{}
	}
	l.failed[a] = true
}

func (l *reportLog) all() ([]protocol.WorkloadReport, []map[netip.AddrPort]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reps), slices.Clone(l.missed)
}

// keepAlive sends n keep-alive OPTIONS (request URI without user) from
// local to the P-CSCF and returns how many got a 200 from it.
func keepAlive(t *testing.T, local, pcscf string, n int) int {
	t.Helper()
	la, _ := net.ResolveUDPAddr("udp", local)
	pa, _ := net.ResolveUDPAddr("udp", pcscf)
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 65535)
	ok := 0
	for i := range n {
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKka%d\r\nFrom: <sip:keepalive@%s>;tag=ka%d\r\n"+
			"To: <sip:%s>\r\nCall-ID: ka%d@%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			pcscf, local, i, local, i, pcscf, i, local)
		if _, err := c.WriteToUDP([]byte(msg), pa); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		if strings.HasPrefix(string(buf[:k]), "SIP/2.0 200") {
			ok++
		}
	}
	return ok
}

// The CP workload per pair from real SIP, with each user's entry DC from
// the registrar: two DCs' P-CSCFs, two S-CSCFs replicating usrloc over DMQ.
// The caller registers through DC A's P-CSCF (its REGISTER reaches S-CSCF
// s1), the callee through DC B's (s2). SIPp calls at a steady rate through A
// reach s1, which finds both users' Paths (the callee's copied over DMQ):
// the meter reports them as A→B, its steady rate within 10 % of what the
// caller sent (2 transactions per call: INVITE, BYE) and its total matching
// the calls SIPp completed. The caller then re-registers through B: the
// same caller, from the same address, now counts as B→B, so the mapping
// follows the registration, not the address. A caller that never
// registered counts as unmapped. Keep-alive OPTIONS are answered by the
// P-CSCF and never counted; idle counters expire from the S-CSCFs' tables.
func TestCPMeterOnRealSIP(t *testing.T) {
	if err := local.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but Kamailio/SIPp are absent (scripts/ci-kamailio.sh installs them): %v", err)
		}
		t.Skipf("real SIP parts absent (scripts/ci-kamailio.sh installs them): %v", err)
	}
	machinelocktest.SIP.Hold(t)     // real Kamailio and SIPp on loopback
	const dcA, dcB = "dc42", "dc46" // address blocks of their own
	const rate, calls = 20, 240
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	scen := scenarios(t)
	var s1Addr, s2Addr netip.AddrPort
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 2, ShmMB: 128, Grace: 3 * time.Second,
		CPExpire: 3 * time.Second, NextHop: func(dc string) string {
			if dc == dcA {
				return "sip:" + s1Addr.String()
			}
			return "sip:" + s2Addr.String()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()
	evs := newEventLog(d)
	launch := func(id, dc, vnf string) local.Runtime {
		t.Helper()
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dc, VNF: vnf}); err != nil {
			t.Fatal(err)
		}
		evs.wait(t, id, drivers.StateActive, 10*time.Second)
		rt, ok := d.Runtime(id)
		if !ok {
			t.Fatalf("%s: no runtime", id)
		}
		return rt
	}
	// both S-CSCFs in DC A (the S-CSCF DC), DMQ peers of each other
	s1 := launch("s1", dcA, "S-CSCF")
	s1Addr = s1.SIP
	s2 := launch("s2", dcA, "S-CSCF")
	s2Addr = s2.SIP
	pA := launch("pa", dcA, "P-CSCF")
	pB := launch("pb", dcB, "P-CSCF")

	startUAS(t, scen, "127.0.0.64", 5080)
	register(t, scen, pB.SIP.String(), "127.0.0.66", "callee", "127.0.0.64:5080")
	register(t, scen, pA.SIP.String(), "127.0.0.66", "caller", "127.0.0.65:5070")
	if n := keepAlive(t, "127.0.0.65:5095", pA.SIP.String(), 20); n != 20 {
		t.Fatalf("the P-CSCF answered %d of 20 keep-alive OPTIONS", n)
	}

	rpc := func(ctx context.Context, a netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
		c := kamrpc.New(a)
		c.Timeout = 3 * time.Second
		return c.Call(ctx, method, params...)
	}
	dump := func(s local.Runtime) map[string]int64 {
		res, err := rpc(ctx, s.RPC, "htable.dump", "cp")
		if err != nil {
			t.Fatal(err)
		}
		m, err := sipglue.ParseHTableDump(res)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// so far: two REGISTERs, one per DC, each counted where it arrived
	// (the keep-alives are not in any table)
	regs := map[string]int64{}
	for _, s := range []local.Runtime{s1, s2} {
		for k, v := range dump(s) {
			regs[k] += v
		}
	}
	if fmt.Sprint(regs) != fmt.Sprint(map[string]int64{dcA + ">" + dcA: 1, dcB + ">" + dcB: 1}) {
		t.Fatalf("S-CSCF counters after one REGISTER per DC and 20 keep-alives: %v", regs)
	}

	log := &reportLog{}
	meterRPC := func(ctx context.Context, a netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
		res, err := rpc(ctx, a, method, params...)
		if err == nil {
			_, err = sipglue.ParseHTableDump(res)
		}
		if err != nil { // a loaded host: the meter skips this reading (it logs why)
			log.readFailed(a)
		}
		return res, err
	}
	meter, err := sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: dcA, DCs: []string{dcA, dcB}, Clock: clock.Real{}, Report: log, Period: time.Second,
		Call:    meterRPC,
		Targets: func() []sipglue.Target { return []sipglue.Target{{ID: "s1", RPC: s1.RPC}, {ID: "s2", RPC: s2.RPC}} },
		OnError: func(err error) { t.Logf("meter: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now() // the meter's baseline reading is taken in Start
	meter.Start()
	defer meter.Stop()
	// counted returns the transactions of a pair the meter reported since
	// from, the pair served by the S-CSCF at by (each P-CSCF's next hop is
	// one S-CSCF): a report's rate covers the time since by's last reading,
	// one period unless the meter could not read it for the report before
	counted := func(e, x string, by netip.AddrPort, from time.Time) float64 {
		sum, since := 0.0, started
		reps, missed := log.all()
		for i, r := range reps {
			if missed[i][by] {
				continue
			}
			if r.At.After(from) {
				for _, p := range r.Pairs {
					if p.Entry == e && p.Exit == x {
						sum += p.Rate * r.At.Sub(since).Seconds()
					}
				}
			}
			since = r.At
		}
		return sum
	}
	// waitCounted polls the meter's reports (real processes: bounded) until
	// the pair reaches want
	waitCounted := func(e, x string, by netip.AddrPort, from time.Time, want float64) float64 {
		deadline := time.Now().Add(10 * time.Second)
		total := counted(e, x, by, from)
		for ; total < want*0.99 && time.Now().Before(deadline); total = counted(e, x, by, from) {
			time.Sleep(200 * time.Millisecond)
		}
		return total
	}

	// 1. steady calls A → B
	res, err := runUAC(ctx, scen, pA.SIP.String(), "127.0.0.65", 5070, rate, calls, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIPp A→B: %v", res)
	if res.OK < calls*99/100 {
		t.Fatalf("only %d of %d calls completed", res.OK, calls)
	}
	want := float64(2 * res.OK) // INVITE + BYE of every completed call
	total := waitCounted(dcA, dcB, s1.RPC, started, want)
	var steady []float64
	reps, _ := log.all()
	for i, r := range reps {
		for _, p := range r.Pairs {
			if p.Entry == dcA && p.Exit == dcB && i >= 3 && r.At.Sub(reps[0].At) < time.Duration(calls/rate-2)*time.Second {
				steady = append(steady, p.Rate)
			}
		}
	}
	slices.Sort(steady)
	t.Logf("counted A→B %.0f transactions (calls ok ×2 = %.0f); steady rates %v; unmapped %d", total, want, steady, meter.Unmapped())
	if total < want*0.97 || total > want*1.03 {
		t.Fatalf("meter counted %.0f A→B transactions, SIPp completed %d calls (%.0f)", total, res.OK, want)
	}
	if len(steady) < 4 {
		t.Fatalf("only %d steady reports", len(steady))
	}
	if med := steady[len(steady)/2]; med < 0.9*2*rate || med > 1.1*2*rate {
		t.Fatalf("steady CP rate A→B %.1f tx/s, want within 10%% of %d", med, 2*rate)
	}
	if u := meter.Unmapped(); u != 0 {
		t.Fatalf("%d transactions of registered users unmapped", u)
	}

	// 2. the caller moves: registered through B's P-CSCF, calls through it
	register(t, scen, pB.SIP.String(), "127.0.0.66", "caller", "127.0.0.65:5070")
	moved := time.Now()
	res2, err := runUAC(ctx, scen, pB.SIP.String(), "127.0.0.65", 5070, rate, 40, 100*time.Millisecond)
	if err != nil || res2.OK < 39 {
		t.Fatalf("SIPp B→B: %v %v", res2, err)
	}
	// the REGISTER itself counts B→B too
	bb := waitCounted(dcB, dcB, s2.RPC, moved, float64(2*res2.OK))
	ab := counted(dcA, dcB, s1.RPC, moved.Add(2*time.Second))
	t.Logf("after re-registering through B: B→B %.0f transactions (calls ok ×2 = %d), A→B %.1f", bb, 2*res2.OK, ab)
	if bb < 0.97*float64(2*res2.OK) || bb > 1.03*float64(2*res2.OK)+1 || ab > 0 {
		t.Fatalf("the caller registered through B still counts as A: B→B %.0f (want %d), A→B %.1f", bb, 2*res2.OK, ab)
	}

	// 3. a caller that never registered: its transactions are unmapped
	res3, err := runUAC(ctx, scen, pA.SIP.String(), "127.0.0.65", 5070, rate, 20, 100*time.Millisecond, "-key", "caller", "stranger")
	if err != nil || res3.OK < 19 {
		t.Fatalf("SIPp unregistered caller: %v %v", res3, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for meter.Unmapped() < int64(2*res3.OK) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if u := meter.Unmapped(); u != int64(2*res3.OK) {
		t.Fatalf("unregistered caller: %d transactions unmapped, want %d", u, 2*res3.OK)
	}

	// idle counters leave the tables (CPExpire 3 s)
	meter.Stop()
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(dump(s1)) == 0 && len(dump(s2)) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("CP counters still in the S-CSCFs' tables 15 s after the calls: %v %v", dump(s1), dump(s2))
}

// The S-CSCF's CP counters count transactions, not datagrams: a
// retransmitted REGISTER gets its 200 again and is not counted again; a
// retransmitted INVITE (same branch) is absorbed before the counter, both
// when it arrives after the S-CSCF relayed the first copy (the transaction
// exists: its 100 Trying is sent again) and when two copies arrive
// together. Under load the P-CSCF and SIPp retransmit, and every copy used
// to count: TestCPMeterOnRealSIP then saw more transactions than SIPp's calls
// (521 against 474 at load 25–31).
func TestCPCountsTransactionsNotRetransmissions(t *testing.T) {
	needRealSIP(t)
	const dc = "dc47" // 127.57.x.x; the UAs on 127.0.0.147 and .148
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s1 := oneSCSCF(ctx, t, dc, 2)
	counted := func() int64 {
		t.Helper()
		c := kamrpc.New(s1.RPC)
		c.Timeout = 3 * time.Second
		res, err := c.Call(ctx, "htable.dump", "cp")
		if err != nil {
			t.Fatal(err)
		}
		m, err := sipglue.ParseHTableDump(res)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, v := range m {
			n += v
		}
		return n
	}
	callee, caller := newRawUA(t, "127.0.0.147:5090"), newRawUA(t, "127.0.0.148:5090")
	host := s1.SIP.Addr().String()
	aor := "<sip:rtx@" + host + ">"
	// the REGISTER, then again (as if its 200 was lost): answered with the
	// 200 again, not counted again
	reg := sipReq("REGISTER", "sip:"+host, "UDP "+callee.local(), "z9hG4bKrtxr", aor+";tag=r", aor, "reg@rtx", 1,
		"Contact: <sip:rtx@"+callee.local()+">", "Expires: 600")
	for _, what := range []string{"the REGISTER", "the retransmitted REGISTER"} {
		m := callee.mark()
		callee.send(s1.SIP.String(), reg...)
		if r, _ := callee.wait(m, 5*time.Second, "200 to "+what, final("reg@rtx", "REGISTER")); r.Status() != 200 {
			t.Fatalf("%s: %s", what, r.First)
		}
		if n := counted(); n != 1 {
			t.Fatalf("%d transactions counted after %s", n, what)
		}
	}
	for i, together := range []bool{false, true} {
		id := fmt.Sprintf("inv%d@rtx", i)
		inv := sipReq("INVITE", "sip:rtx@"+host, "UDP "+caller.local(), fmt.Sprintf("z9hG4bKrtxi%d", i), "<sip:caller@127.0.0.148>;tag=c", aor, id, 1,
			"Contact: <sip:caller@"+caller.local()+">")
		cm, em := caller.mark(), callee.mark()
		caller.send(s1.SIP.String(), inv...)
		if together { // a copy still in the script of another process is dropped: no answer to wait for
			caller.send(s1.SIP.String(), inv...)
		}
		callee.wait(em, 5*time.Second, "the relayed INVITE "+id, func(r rawMsg) bool { return r.Method() == "INVITE" && r.Get("call-id") == id })
		trying := func(r rawMsg) bool { return r.Status() == 100 && r.Get("call-id") == id }
		_, k := caller.wait(cm, 5*time.Second, "100 Trying to "+id, trying)
		// a retransmission once the transaction exists: the S-CSCF answers it
		// with the transaction's 100 again (so it has read every copy by then)
		caller.send(s1.SIP.String(), inv...)
		caller.wait(k+1, 5*time.Second, "the 100 Trying again for the retransmission of "+id, trying)
		if n := counted(); n != int64(2+i) {
			t.Fatalf("INVITE %s retransmitted (two copies together first: %v): %d transactions counted in all, want %d (the REGISTER and %d INVITEs)", id, together, n, 2+i, 1+i)
		}
	}
}

// oneSCSCF runs a driver with one S-CSCF, "s1", in dc (children SIP
// workers), closed at the test's end, and returns it once active.
func oneSCSCF(ctx context.Context, t *testing.T, dc string, children int) local.Runtime {
	t.Helper()
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: children, ShmMB: 64, Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	evs := newEventLog(d)
	if _, err := d.Launch(ctx, drivers.Spec{ID: "s1", DC: dc, VNF: "S-CSCF"}); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, "s1", drivers.StateActive, 15*time.Second)
	s1, ok := d.Runtime("s1")
	if !ok {
		t.Fatal("s1: no runtime")
	}
	return s1
}
