package local_test

// Measurements for docs/bench/sip.md (real Kamailio and SIPp on this machine):
//
//	go test -run '^$' -bench CallSetup -benchtime 400x ./drivers/local/
//	IMS_SIP_BENCH=1 [IMS_SIP_RATES=100,200] go test -run TestSIPCapacity -v -timeout 20m ./drivers/local/

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/discovery"
	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// handStart starts one Kamailio by hand (no driver), the way an operator
// would, from the same template, and stops it when tb ends.
func handStart(tb testing.TB, role local.Role, addr, nextHop string) netip.AddrPort {
	tb.Helper()
	a := netip.MustParseAddr(addr)
	dir := tb.TempDir()
	cfg, err := local.Render(kamfiles.Files, kamfiles.Template, local.TemplateData{
		ID: "hand-" + string(role), Role: role, DC: "hand", Addr: a, Children: 4,
		CtlSock: "udp:" + addr + ":2049", RPCSock: "udp:" + addr + ":8090", NextHop: nextHop, DNSMaxTTL: 1, FRTimerMS: 8000})
	if err != nil {
		tb.Fatal(err)
	}
	f := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(f, cfg, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("kamailio", "-DD", "-E", "-f", f, "-l", "udp:"+addr+":5060", "-n", "4", "-m", "256", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() })
	rpc := netip.AddrPortFrom(a, 8090)
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := kamrpc.New(rpc).Version(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("hand-started kamailio on %s not ready: %v", addr, err)
		}
	}
	return netip.AddrPortFrom(a, 5060)
}

// driverChain launches an S-CSCF and n P-CSCFs through drivers/local in DC
// dc. With DNS available the P-CSCFs find the S-CSCF by SRV, else by a fixed
// next hop. opts change the driver's config (a launch is waited for up to
// its ReadyTimeout, at least 10 s).
func driverChain(tb testing.TB, dc, n int, opts ...func(*local.Config)) (d *local.Driver, scscf netip.AddrPort, pcscfs []netip.AddrPort) {
	tb.Helper()
	cfg := local.Config{BaseDir: tb.TempDir(), ShmMB: 512}
	for _, o := range opts {
		o(&cfg)
	}
	ready := max(10*time.Second, cfg.ReadyTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 3*ready)
	defer cancel()
	var disc *discovery.Server
	if local.DNSAvailable() == nil {
		var err error
		if disc, err = discovery.New(discovery.Options{Zone: local.Zone(dc, "ims.local")}); err != nil {
			tb.Fatal(err)
		}
		ns, _ := local.DNSAddr(dc)
		if _, err := disc.ListenAndServe(ns.String()); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { disc.Close() })
	} else {
		cfg.NextHop = func(string) string { return "sip:" + scscf.String() }
	}
	d, err := local.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	evs := newEventLog(d)
	dcName := "dc" + strconv.Itoa(dc)
	launch := func(id, vnf string) netip.AddrPort {
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dcName, VNF: vnf}); err != nil {
			tb.Fatal(err)
		}
		evs.wait(tb, id, drivers.StateActive, ready)
		rt, _ := d.Runtime(id)
		return rt.SIP
	}
	scscf = launch("s1", "scscf")
	if disc != nil {
		if err := disc.SetRecords("scscf", []netip.AddrPort{scscf}); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		pcscfs = append(pcscfs, launch("p"+strconv.Itoa(i), "pcscf"))
	}
	return d, scscf, pcscfs
}

// BenchmarkCallSetup times INVITE → 200 of sequential calls (one in flight)
// through real Kamailio: the P → S chain launched by drivers/local, the same
// chain started by hand, and one hand-started Kamailio alone.
func BenchmarkCallSetup(b *testing.B) {
	if err := local.Available(); err != nil {
		b.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(b) // real Kamailio and SIPp on fixed loopback addresses
	scen := scenarios(b)
	startUAS(b, scen, "127.0.0.61", 5080)
	run := func(b *testing.B, entry, registrar string) {
		register(b, scen, registrar, "127.0.0.63", "callee", "127.0.0.61:5080")
		u, err := newMiniUAC("127.0.0.62:0", entry)
		if err != nil {
			b.Fatal(err)
		}
		defer u.Close()
		if _, err := u.call("callee", 5*time.Second); err != nil { // warm-up (DNS, caches)
			b.Fatal(err)
		}
		setups := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d, err := u.call("callee", 5*time.Second)
			if err != nil {
				b.Fatalf("call %d: %v", i, err)
			}
			setups = append(setups, d)
		}
		b.StopTimer()
		slices.Sort(setups)
		ms := func(p float64) float64 {
			return float64(setups[min(int(float64(len(setups))*p), len(setups)-1)]) / float64(time.Millisecond)
		}
		b.ReportMetric(ms(0.5), "p50-setup-ms")
		b.ReportMetric(ms(0.99), "p99-setup-ms")
	}
	b.Run("driver-P-S", func(b *testing.B) {
		_, _, ps := driverChain(b, 42, 1)
		run(b, ps[0].String(), ps[0].String()) // callee registered through P: both legs cross it
	})
	b.Run("hand-P-S", func(b *testing.B) {
		s := handStart(b, local.RoleSCSCF, "127.0.0.71", "")
		p := handStart(b, local.RolePCSCF, "127.0.0.72", "sip:"+s.String())
		run(b, p.String(), p.String())
	})
	b.Run("hand-S", func(b *testing.B) {
		s := handStart(b, local.RoleSCSCF, "127.0.0.73", "")
		run(b, s.String(), s.String())
	})
}

// TestSIPCapacity finds the highest call rate the machine sustains through
// 1, 2 and 4 P-CSCFs in front of one S-CSCF (all launched by drivers/local):
// 4 SIPp callers spread over the P-CSCFs, steps of 5 s, "sustained" = ≥ 99.5 % of calls succeed with retransmissions
// under 1 % of calls. Gated: IMS_SIP_BENCH=1.
func TestSIPCapacity(t *testing.T) {
	if os.Getenv("IMS_SIP_BENCH") == "" {
		t.Skip("set IMS_SIP_BENCH=1 to run the capacity sweep (minutes of full CPU)")
	}
	if err := local.Available(); err != nil {
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t) // real Kamailio and SIPp on loopback
	scen := scenarios(t)
	rates := []int{100, 200, 300, 400, 500, 600, 800, 1000, 1200}
	if s := os.Getenv("IMS_SIP_RATES"); s != "" {
		rates = nil
		for _, f := range strings.Split(s, ",") {
			r, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("IMS_SIP_RATES: %q: %v", f, err)
			}
			rates = append(rates, r)
		}
	}
	const stepSecs = 5
	// Always 4 SIPp callers (caller k → P-CSCF k mod n), so that the number of
	// caller processes, which compete for the same 2 cores, does not change
	// with the number of P-CSCFs.
	const callers = 4
	for i, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d-pcscf", n), func(t *testing.T) {
			d, s, ps := driverChain(t, 43+i, n)
			agents := map[string]*agent.Agent{}
			for _, id := range append([]string{"s1"}, pcscfIDs(n)...) {
				rt, _ := d.Runtime(id)
				a, err := agent.New(agent.Config{ID: id, Pid: rt.Pid, Proc: os.DirFS("/proc"), Counters: rpcCounters{kamrpc.New(rt.RPC)}, Clock: clock.Real{}, Cores: 1})
				if err != nil {
					t.Fatal(err)
				}
				agents[id] = a
			}
			measure := func() string {
				var out []string
				for _, id := range append([]string{"s1"}, pcscfIDs(n)...) {
					smp, ok, err := agents[id].Measure(context.Background())
					if err == nil && ok {
						out = append(out, fmt.Sprintf("%s %.0f%% CPU %.0f txn/s", id, smp.CPU, smp.TxnRate))
					}
				}
				return strings.Join(out, ", ")
			}
			register(t, scen, s.String(), "127.0.0.63", "callee", "127.0.0.61:5080") // terminating leg: S → callee
			best := 0
			for _, rate := range rates {
				per := rate / callers
				// a fresh callee per step: calls a failed step left behind
				// must not weigh on the next one
				stopUAS, uasPid := startUASProc(t, scen, "127.0.0.61", 5080)
				uas, err := agent.New(agent.Config{ID: "uas", Pid: uasPid, Proc: os.DirFS("/proc"), Counters: noCounters{}, Clock: clock.Real{}})
				if err != nil {
					t.Fatal(err)
				}
				_, _, _ = uas.Measure(context.Background())
				measure()
				var wg sync.WaitGroup
				res := make([]callResult, callers)
				errs := make([]error, callers)
				for k := range callers {
					p := ps[k%n] // caller k uses P-CSCF k mod n
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
						defer cancel()
						res[k], errs[k] = runUAC(ctx, scen, p.String(), "127.0.0."+strconv.Itoa(80+k), 5070, per, per*stepSecs, 100*time.Millisecond)
					}()
				}
				wg.Wait()
				uasCPU := "?"
				if smp, ok, err := uas.Measure(context.Background()); err == nil && ok {
					uasCPU = fmt.Sprintf("%.0f%%", smp.CPU)
				}
				stopUAS()
				load, _ := os.ReadFile("/proc/loadavg")
				var tot callResult
				for k := range res {
					if errs[k] != nil {
						t.Logf("uac %d: %v", k, errs[k])
					}
					tot.Calls += res[k].Calls
					tot.OK += res[k].OK
					tot.Failed += res[k].Failed
					tot.Retrans += res[k].Retrans
					tot.SetupMS = append(tot.SetupMS, res[k].SetupMS...)
				}
				slices.Sort(tot.SetupMS)
				ok := tot.Calls == per*callers*stepSecs && tot.successRatio() >= 0.995 && tot.Retrans*100 <= tot.Calls
				t.Logf("%d P-CSCF, %4d calls/s: %v sustained=%v; %s, SIPp callee %s CPU; loadavg %s", n, per*callers, tot, ok, measure(), uasCPU, strings.Fields(string(load))[0])
				if !ok {
					for k := range res {
						if res[k].Errors != "" {
							e := res[k].Errors
							t.Logf("uac %d errors (end): %s", k, e[max(0, len(e)-600):])
							break
						}
					}
					break
				}
				best = per * callers
			}
			t.Logf("RESULT %d P-CSCF: highest sustained %d calls/s", n, best)
		})
	}
}

func pcscfIDs(n int) []string {
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, "p"+strconv.Itoa(i))
	}
	return ids
}

// noCounters lets the agent measure a non-Kamailio process (SIPp) by /proc only.
type noCounters struct{}

func (noCounters) Stats(context.Context, ...string) (map[string]int64, error) {
	return map[string]int64{}, nil
}
