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

// The CP workload per pair from real SIP: SIPp calls at a steady rate
// through a real P-CSCF to a real S-CSCF, whose per-pair counters the
// CPMeter reads over RPC. The meter's steady rate is within 10 % of what
// the caller sent (2 transactions per call: INVITE, BYE), its total matches
// the calls SIPp completed; keep-alive OPTIONS are answered by the P-CSCF
// and never counted; idle counters expire from the S-CSCF's table.
func TestCPMeterOnRealSIP(t *testing.T) {
	if err := local.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but Kamailio/SIPp are absent (scripts/ci-kamailio.sh installs them): %v", err)
		}
		t.Skipf("real SIP parts absent (scripts/ci-kamailio.sh installs them): %v", err)
	}
	const dcName = "dc42" // an address block of its own
	const rate, calls = 20, 240
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	scen := scenarios(t)
	var sAddr netip.AddrPort
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 2, ShmMB: 128, Grace: 3 * time.Second,
		CPExpire: 3 * time.Second, NextHop: func(string) string { return "sip:" + sAddr.String() }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()
	evs := newEventLog(d)
	launch := func(id, vnf string) local.Runtime {
		t.Helper()
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dcName, VNF: vnf}); err != nil {
			t.Fatal(err)
		}
		evs.wait(t, id, drivers.StateActive, 10*time.Second)
		rt, ok := d.Runtime(id)
		if !ok {
			t.Fatalf("%s: no runtime", id)
		}
		return rt
	}
	s1 := launch("s1", "S-CSCF")
	sAddr = s1.SIP
	p1 := launch("p1", "P-CSCF")

	startUAS(t, scen, "127.0.0.64", 5080)
	register(t, scen, p1.SIP.String(), "127.0.0.66", "callee", "127.0.0.64:5080")
	if n := keepAlive(t, "127.0.0.65:5095", p1.SIP.String(), 20); n != 20 {
		t.Fatalf("the P-CSCF answered %d of 20 keep-alive OPTIONS", n)
	}

	rpc := func(ctx context.Context, a netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
		c := kamrpc.New(a)
		c.Timeout = 3 * time.Second
		return c.Call(ctx, method, params...)
	}
	dump := func() map[string]int64 {
		res, err := rpc(ctx, s1.RPC, "htable.dump", "cp")
		if err != nil {
			t.Fatal(err)
		}
		m, err := sipglue.ParseHTableDump(res)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for k := range dump() {
		if strings.Contains(k, "keepalive") {
			t.Fatalf("a keep-alive OPTIONS was counted at the S-CSCF: %q", k)
		}
	}

	// callers in DC "a" (by address), the callee's users in DC "b"
	loc := sipglue.Location{Rules: []sipglue.Rule{{Host: netip.MustParsePrefix("127.0.0.65/32"), DC: "a"}, {User: "callee", DC: "b"}}}
	log := &reportLog{}
	meter, err := sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: "a", Location: loc, Clock: clock.Real{}, Report: log, Period: time.Second,
		Call:    rpc,
		Targets: func() []sipglue.Target { return []sipglue.Target{{ID: "s1", RPC: s1.RPC}} },
		OnError: func(err error) { t.Logf("meter: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now() // the meter's baseline reading is taken in Start
	meter.Start()
	defer meter.Stop()
	res, err := runUAC(ctx, scen, p1.SIP.String(), "127.0.0.65", 5070, rate, calls, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIPp: %v", res)
	if res.OK < calls*99/100 {
		t.Fatalf("only %d of %d calls completed", res.OK, calls)
	}
	want := float64(2 * res.OK) // INVITE + BYE of every completed call
	var total float64
	counted := func() float64 {
		sum, prev := 0.0, started
		for _, r := range log.all() {
			for _, p := range r.Pairs {
				if p.Entry == "a" && p.Exit == "b" {
					sum += p.Rate * r.At.Sub(prev).Seconds()
				}
			}
			prev = r.At
		}
		return sum
	}
	deadline := time.Now().Add(10 * time.Second)
	for total = counted(); total < want*0.99 && time.Now().Before(deadline); total = counted() {
		time.Sleep(200 * time.Millisecond) // a real process: poll its counters with a bounded deadline
	}
	var steady []float64
	reps := log.all()
	for i, r := range reps {
		for _, p := range r.Pairs {
			if p.Entry == "a" && p.Exit == "b" && i >= 3 && r.At.Sub(reps[0].At) < time.Duration(calls/rate-2)*time.Second {
				steady = append(steady, p.Rate)
			}
		}
	}
	slices.Sort(steady)
	t.Logf("counted a→b %.0f transactions (calls ok ×2 = %.0f); steady rates %v; unmapped %d", total, want, steady, meter.Unmapped())
	if total < want*0.97 || total > want*1.03 {
		t.Fatalf("meter counted %.0f a→b transactions, SIPp completed %d calls (%.0f)", total, res.OK, want)
	}
	if len(steady) < 4 {
		t.Fatalf("only %d steady reports", len(steady))
	}
	if med := steady[len(steady)/2]; med < 0.9*2*rate || med > 1.1*2*rate {
		t.Fatalf("steady CP rate a→b %.1f tx/s, want within 10%% of %d", med, 2*rate)
	}
	// idle counters leave the table (CPExpire 3 s)
	meter.Stop()
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(dump()) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("CP counters still in the S-CSCF's table 15 s after the calls: %v", dump())
}
