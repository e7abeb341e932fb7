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
)

type reportLog struct {
	mu   sync.Mutex
	reps []protocol.WorkloadReport
}

func (l *reportLog) ReportWorkload(r protocol.WorkloadReport) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reps = append(l.reps, r)
	return nil
}

func (l *reportLog) all() []protocol.WorkloadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reps)
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
	meter, err := sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: dcA, DCs: []string{dcA, dcB}, Clock: clock.Real{}, Report: log, Period: time.Second,
		Call:    rpc,
		Targets: func() []sipglue.Target { return []sipglue.Target{{ID: "s1", RPC: s1.RPC}, {ID: "s2", RPC: s2.RPC}} },
		OnError: func(err error) { t.Logf("meter: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now() // the meter's baseline reading is taken in Start
	meter.Start()
	defer meter.Stop()
	// counted returns the transactions of a pair the meter reported since from
	counted := func(e, x string, from time.Time) float64 {
		sum, prev := 0.0, started
		for _, r := range log.all() {
			if r.At.After(from) {
				for _, p := range r.Pairs {
					if p.Entry == e && p.Exit == x {
						sum += p.Rate * r.At.Sub(prev).Seconds()
					}
				}
			}
			prev = r.At
		}
		return sum
	}
	// waitCounted polls the meter's reports (real processes: bounded) until
	// the pair reaches want
	waitCounted := func(e, x string, from time.Time, want float64) float64 {
		deadline := time.Now().Add(10 * time.Second)
		total := counted(e, x, from)
		for ; total < want*0.99 && time.Now().Before(deadline); total = counted(e, x, from) {
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
	total := waitCounted(dcA, dcB, started, want)
	var steady []float64
	reps := log.all()
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
	bb := waitCounted(dcB, dcB, moved, float64(2*res2.OK))
	ab := counted(dcA, dcB, moved.Add(2*time.Second))
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
