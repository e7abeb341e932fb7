package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	"github.com/ims-orch/ims-orch/drivers"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/openstack"
	"github.com/ims-orch/ims-orch/drivers/openstack/novasweeptest"
)

// CP workload per pair with --driver openstack, against the real Nova of
// scripts/ci-openstack.sh (IMS_ORCH_OS_CLOUD; skipped without it).
//
// What is real and what is not: Nova there runs the fake virt driver, so a
// server is a real Nova server (scheduled, ACTIVE, listed, deleted through
// the API by drivers/openstack) but no guest runs and nothing runs inside
// it. What a guest of an S-CSCF server would run therefore runs on this
// machine, one per S-CSCF server the daemon launched: a real Kamailio
// S-CSCF (deploy/kamailio's template, drivers/local) and the real agent code
// (controller/agent HostAgent with the --kamailio-rpc reader of `ims-orch
// agent`), posting to the daemon's stats endpoint with the agent token, as
// the server's user data makes its agent do. Real SIPp calls go from a
// caller registered through DC A's P-CSCF to a callee registered through
// DC B's (both real Kamailio P-CSCFs on loopback). Measured: the daemon's
// rounds see the S-CSCF's per-pair counters arrive through the agents'
// reports, and predict the A→B CP workload non-zero and within 20 % of what
// SIPp sent.
func TestOpenStackCPWorkloadFromAgents(t *testing.T) {
	cloud := os.Getenv("IMS_ORCH_OS_CLOUD")
	if cloud == "" {
		t.Skip("no OpenStack: scripts/ci-openstack.sh starts one and sets IMS_ORCH_OS_CLOUD")
	}
	if err := localdrv.Available(); err != nil {
		t.Fatalf("Kamailio/SIPp absent (scripts/ci-kamailio.sh installs them): %v", err)
	}
	lockOpenStack(t)
	lockSIP(t) // its Kamailio P-CSCFs and S-CSCFs are real-SIP processes on loopback
	// DC names of this test alone: the sweep at the end deletes every
	// server of its DCs, so drivers/openstack's integration tests (dc-a,
	// dc-b) and TestCloudReconcileNova (i15-a, i15-b) use others.
	const dcA, dcB = "i14-a", "i14-b"
	const callRate, calls = 10, 400 // 20 tx/s A→B for 40 s
	const interval = 5 * time.Second
	dir := t.TempDir()
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	const token = "agent-token-issue14-0123456789"
	tokFile := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	azs := strings.Split(envOr("IMS_ORCH_OS_AZS", "az-a,az-b"), ",")
	osCfg := fmt.Sprintf(`datacenters:
  %s: {cloud: %s, availability_zone: %s, image: tiny, flavor: m1.tiny, networks: [none], controller_address: %q, controller_token: %q}
  %s: {cloud: %s, availability_zone: %s, image: tiny, flavor: m1.tiny, networks: [none], controller_address: %q, controller_token: %q}
anti_affinity: {max_per_host: 4}
poll_interval: 500ms
server_metadata: {%s: %q}
`, dcA, cloud, azs[0], base, token, dcB, cloud, azs[len(azs)-1], base, token, novasweeptest.RunKey, novasweeptest.Run())
	osFile := filepath.Join(dir, "openstack.yaml")
	if err := os.WriteFile(osFile, []byte(osCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// thresholds nobody reaches: the agents report this machine's CPU and
	// memory, which must not make the controllers scale
	cfgYAML := fmt.Sprintf(`node: {id: node1}
api: {listen: %q, allowUnauthenticated: true}
role:
  global: true
  agents: {tokenFile: %q, statsTimeout: 10m}
driver: {kind: openstack, openstackConfig: %q}
topology:
  datacenters: [{name: %s, group: a}, {name: %s, group: a}]
  delaysMs: [[0, 5], [5, 0]]
  scscfDC: %s
  pcscf: {name: P-CSCF, capacity: 500, min: 1, thresholds: {cpu: 100, mem: 100, pktRate: 1e9}}
  scscf: {name: S-CSCF, capacity: 200, min: 1, thresholds: {cpu: 100, mem: 100, pktRate: 1e9}}
  chain:
    - {name: firewall, capacity: 35000, min: 0, thresholds: {cpu: 100, mem: 100, pktRate: 1e9}, loadThreshold: 100}
policy: {intervalSeconds: %d, tau: 2, delayBoundMs: 250, predictor: ar1, strategy: hybrid}
`, ln.Addr().String(), tokFile, osFile, dcA, dcB, dcA, int(interval/time.Second))
	cfg, err := ParseConfig([]byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	oc, err := openstack.ParseConfig([]byte(osCfg))
	if err != nil {
		t.Fatal(err)
	}
	sweepNova(t, oc) // another run's servers: fails now; the servers the daemon launched: deleted once it stopped
	d, err := New(cfg, Options{Listener: ln, Logger: discard(), ShutdownTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	// the S-CSCF servers the daemon launched on Nova
	var scscfs []string
	eventually(t, 3*time.Minute, "the S-CSCF server ACTIVE on Nova", func() bool {
		scscfs = scscfs[:0]
		for _, in := range d.locals[dcA].Instances() {
			if in.VNF == "S-CSCF" && in.CloudState == drivers.StateActive {
				scscfs = append(scscfs, in.ID)
			}
		}
		return len(scscfs) > 0
	})
	t.Logf("S-CSCF servers on Nova: %v", scscfs)

	// what their guests would run, on this machine: one real Kamailio
	// S-CSCF per server, and P-CSCFs of both DCs in front of the first
	dcIdx := map[string]int{dcA: 49, dcB: 50}
	var s0 netip.AddrPort
	kam, err := localdrv.New(localdrv.Config{BaseDir: filepath.Join(dir, "kam"), Children: 2, ShmMB: 64, Grace: 2 * time.Second,
		NextHop: func(string) string { return "sip:" + s0.String() },
		DCIndex: func(dc string) (int, error) {
			if i, ok := dcIdx[dc]; ok {
				return i, nil
			}
			return 0, fmt.Errorf("DC %q: not %s or %s", dc, dcA, dcB)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kam.Close(context.Background()) })
	launch := func(id, dc, vnf string) localdrv.Runtime {
		t.Helper()
		if _, err := kam.Launch(context.Background(), drivers.Spec{ID: id, DC: dc, VNF: vnf}); err != nil {
			t.Fatal(err)
		}
		var rt localdrv.Runtime
		eventually(t, 15*time.Second, id+" active", func() bool {
			ins, _ := kam.List(context.Background(), dc)
			for _, in := range ins {
				if in.ID == id && in.State == drivers.StateActive {
					rt, _ = kam.Runtime(id)
					return true
				}
			}
			return false
		})
		return rt
	}
	var agents []*agent.HostAgent
	t.Cleanup(func() {
		for _, a := range agents {
			a.Stop()
		}
	})
	for i, id := range scscfs {
		rt := launch(fmt.Sprintf("guest-s%d", i), dcA, "scscf")
		if i == 0 {
			s0 = rt.SIP
		}
		push, err := agent.NewPusher(base, dcA, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.NewHost(agent.HostConfig{ID: id, Proc: os.DirFS("/proc"), Sink: push, Clock: clock.Real{}, Interval: time.Second,
			CP:      sipglue.KamailioCP(rt.RPC), // what `ims-orch agent --kamailio-rpc` reads
			OnError: func(err error) { t.Logf("agent %s: %v", id, err) }})
		if err != nil {
			t.Fatal(err)
		}
		a.Start()
		agents = append(agents, a)
	}
	pA := launch("guest-pa", dcA, "pcscf")
	pB := launch("guest-pb", dcB, "pcscf")

	// SIPp: callee registered through B, caller through A, calls A → B
	scen := sipptest.Scenarios(t)
	sipp := func(ctx context.Context, args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, "sipp", args...)
		c.Dir = scen
		return c
	}
	uas := sipp(context.Background(), "-sf", filepath.Join(scen, "uas.xml"), "-i", "127.0.0.94", "-p", "5080", "-nostdin")
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uas.Process.Kill(); _ = uas.Wait() })
	for _, r := range []struct {
		via       netip.AddrPort
		aor, addr string
	}{{pB.SIP, "callee", "127.0.0.94:5080"}, {pA.SIP, "caller", "127.0.0.95:5070"}} {
		inf := filepath.Join(scen, r.aor+".csv")
		if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+r.aor+";"+r.addr+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := sipp(rctx, r.via.String(), "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf, "-i", "127.0.0.96", "-p", "5090",
			"-m", "1", "-nostdin", "-timeout", "8").CombinedOutput()
		rcancel()
		if err != nil {
			t.Fatalf("register %s via %s: %v\n%s", r.aor, r.via, err, out)
		}
	}
	n0 := len(d.engine.Records())
	started := time.Now()
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ucancel()
	uac := sipp(uctx, pA.SIP.String(), "-sf", filepath.Join(scen, "uac.xml"), "-s", "callee", "-key", "caller", "caller",
		"-i", "127.0.0.95", "-p", "5070", "-r", strconv.Itoa(callRate), "-m", strconv.Itoa(calls), "-d", "200",
		"-nostdin", "-timeout", "100", "-recv_timeout", "8000")
	out, err := uac.CombinedOutput()
	elapsed := time.Since(started)
	if err != nil {
		t.Fatalf("sipp caller: %v\n%s", err, tailString(string(out), 1500))
	}
	sent := 2 * float64(calls) / elapsed.Seconds() // INVITE + BYE per call
	// the rounds that closed an interval wholly inside the calls
	var inside []global.RoundRecord
	for _, r := range d.engine.Records()[n0:] {
		if r.Started.After(started.Add(interval+time.Second)) && r.Started.Before(started.Add(elapsed)) {
			inside = append(inside, r)
		}
	}
	key := global.SeriesKey(global.KindCP, dcA, dcB)
	var tl strings.Builder
	for _, r := range inside {
		fmt.Fprintf(&tl, " round %d t=%4.1fs measured %s %.2f tx/s, predicted %.2f\n", r.Round, r.Started.Sub(started).Seconds(), key, r.Actual[key], r.Predicted[key])
	}
	t.Logf("SIPp sent %.2f tx/s A→B (%d calls in %v); rounds:\n%s", sent, calls, elapsed.Round(100*time.Millisecond), tl.String())
	if len(inside) < 3 {
		t.Fatalf("only %d rounds during the calls", len(inside))
	}
	last := inside[len(inside)-1]
	if p := last.Predicted[key]; p <= 0 || p < 0.8*sent || p > 1.2*sent {
		t.Fatalf("predicted %s %.2f tx/s, want non-zero and within 20 %% of the %.2f tx/s SIPp sent", key, p, sent)
	}
	// and nothing was counted outside the pair
	for k, v := range last.Actual {
		if strings.HasPrefix(k, global.KindCP+"/") && k != key && v > 0.05*sent {
			t.Errorf("CP workload on %s: %.2f tx/s", k, v)
		}
	}
	for _, in := range d.locals[dcA].Instances() {
		if in.VNF == "S-CSCF" && in.State == local.StateFailed {
			t.Errorf("S-CSCF %s failed: %s", in.ID, in.FailReason)
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
