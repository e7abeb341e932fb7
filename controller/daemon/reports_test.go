package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

// predicted returns the latest committed prediction of a series on d.
func predicted(d *Daemon, series string) (actual, pred float64) {
	h := d.store.History()
	if len(h) == 0 {
		return 0, 0
	}
	last := h[len(h)-1]
	return last.Actual[series], last.Predicted[series]
}

// The simulated load runs only in DCs whose local controllers live on the
// followers (hong-kong on n2, london with the S-CSCFs on n3): their DP and CP
// reports travel over HTTP to the leader's engine, whose predictions become
// non-zero; after the leader stops, the reporters find the next leader.
func TestClusterWorkloadReportsReachLeader(t *testing.T) {
	ds := startClusterConfig(t, true, func(_ int, cfg *Config) {
		cfg.Topology.SCSCFDC = "london"
		cfg.Traffic.Rates = map[string][]float64{"hong-kong": {10}, "london": {6}}
		cfg.Traffic.ChangeInterval = "1m"
		cfg.Role.ProbePeriod = "off" // the leader's delay probes would be reports too
	})
	leader, followers := leaderOf(ds)
	if leader != ds[0] {
		t.Fatal("n1 does not lead")
	}
	series := []string{"dp/hong-kong/hong-kong", "dp/london/london", "cp/hong-kong/hong-kong", "cp/london/london"}
	nonZero := func(d *Daemon) bool {
		for _, s := range series {
			if _, p := predicted(d, s); p <= 0 {
				return false
			}
		}
		return true
	}
	eventually(t, 30*time.Second, "non-zero predictions of the followers' DCs on the leader", func() bool { return nonZero(leader) })
	for _, f := range followers {
		if s := f.ReportStats(); s.Sent == 0 || s.Rejected != 0 {
			t.Fatalf("%s reporter: %+v, want reports sent and none rejected", f.cfg.Node.ID, s)
		}
	}
	if s := leader.ReportStats(); s.Sent != 0 {
		t.Fatalf("the leader's own DC has no load, yet it sent %d reports", s.Sent)
	}
	a, p := predicted(leader, "dp/hong-kong/hong-kong")
	t.Logf("leader: dp/hong-kong/hong-kong actual %.0f pkt/s, predicted %.0f; n2 reporter %+v", a, p, ds[1].ReportStats())
	if _, tokyo := predicted(leader, "dp/tokyo/tokyo"); tokyo != 0 {
		t.Fatalf("tokyo has no load, predicted %g", tokyo)
	}

	// the metrics of a follower count the reports it sent
	res, err := http.Get(ds[1].URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `ims_orch_workload_reports_total{outcome="sent"}`) {
		t.Fatal("/metrics lacks ims_orch_workload_reports_total")
	}
	if !strings.Contains(string(body), "ims_orch_workload_reports_late_total 0") {
		t.Fatal("/metrics lacks ims_orch_workload_reports_late_total (0: no failover yet)")
	}
	if !strings.Contains(string(body), "ims_orch_workload_reports_refused_reporters_total 0") {
		t.Fatal("/metrics lacks ims_orch_workload_reports_refused_reporters_total (0: one reporter ID per node)")
	}
	if !strings.Contains(string(body), "ims_orch_workload_reports_duplicate_total 0") {
		t.Fatal("/metrics lacks ims_orch_workload_reports_duplicate_total (0: no copy before a failover)")
	}
	if !strings.Contains(string(body), "ims_orch_workload_reports_dropped_lost_close_total 0") {
		t.Fatal("/metrics lacks ims_orch_workload_reports_dropped_lost_close_total (0: no leader change)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var next *Daemon
	eventually(t, 10*time.Second, "a new leader", func() bool { next, _ = leaderOf(followers); return next != nil })
	start := len(next.store.History())
	eventually(t, 30*time.Second, "two rounds under the new leader with the load measured", func() bool {
		h := next.store.History()
		if len(h) < start+2 {
			return false
		}
		last := h[len(h)-1]
		return last.Actual["dp/hong-kong/hong-kong"] > 0 && last.Actual["dp/london/london"] > 0
	})
}

// With role.agents the local controllers take statistics at
// /dc/<name>/stats on the node's API listener: the agents' token is
// checked, unknown instances are refused, and silent instances are failed
// after role.agents.statsTimeout.
func TestAgentsEndpointInDaemon(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(tokFile, []byte("agent-token-abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := *DefaultConfig()
	cfg.Traffic = nil
	cfg.Driver.Kind = DriverFake
	cfg.Driver.BootDelay = "0s"
	cfg.Role.Agents = &AgentsConfig{TokenFile: tokFile, StatsTimeout: "2s"}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, &cfg, Options{Listener: ln, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 3 * time.Second}, nil)
	lc := d.locals["tokyo"]
	var id string
	eventually(t, 10*time.Second, "a working tokyo P-CSCF", func() bool {
		for _, in := range lc.Instances() {
			if in.State == local.StateNormal && in.VNF == cfg.Topology.PCSCF.Name {
				id = in.ID
				return true
			}
		}
		return false
	})
	push, err := agent.NewPusher(d.URL(), "tokyo", "agent-token-abcdef0123456789", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := push.ReportStats(id, agent.Sample{At: time.Now(), CPU: 12, Mem: 30, PktRate: 7}); err != nil {
		t.Fatalf("known instance: %v", err)
	}
	for _, in := range lc.Instances() {
		if in.ID == id && (in.Last.CPU != 12 || in.Last.PktRate != 7) {
			t.Fatalf("stats not at the controller: %+v", in.Last)
		}
	}
	if err := push.ReportStats("tokyo-nope-1", agent.Sample{At: time.Now()}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown instance: %v", err)
	}
	bad, _ := agent.NewPusher(d.URL(), "tokyo", "wrong-token", nil)
	if err := bad.ReportStats(id, agent.Sample{At: time.Now()}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: %v", err)
	}
	// instances whose agent is silent are failed (no agent runs for them here)
	eventually(t, 15*time.Second, "silent instances failed for no statistics", func() bool {
		for _, a := range lc.Actions() {
			if strings.Contains(a.Detail, "no statistics") {
				return true
			}
		}
		return false
	})
}

func TestReportsConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"globalEndpoints not a URL", func(c *Config) {
			c.Node = NodeConfig{RaftBind: "127.0.0.1:0"}
			c.Traffic = nil
			c.Role = RoleConfig{Global: true, GlobalEndpoints: []string{"node2:8080"}}
		}, "role.globalEndpoints[0]"},
		{"globalEndpoints in single-node mode", func(c *Config) { c.Role.GlobalEndpoints = []string{"http://x"} }, "cluster mode"},
		{"agents without token", func(c *Config) { c.Role.Agents = &AgentsConfig{} }, "role.agents.tokenFile"},
		{"agents timeout", func(c *Config) { c.Role.Agents = &AgentsConfig{TokenFile: "x", StatsTimeout: "10ms"} }, "role.agents.statsTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *DefaultConfig()
			tc.mutate(&c)
			if err := c.Normalize(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	c := *DefaultConfig()
	c.Role.Agents = &AgentsConfig{TokenFile: "x"}
	if err := c.Normalize(); err != nil || c.agentStatsTimeout() != DefaultAgentStatsTimeout {
		t.Fatalf("default agents timeout: %v %v", c.agentStatsTimeout(), err)
	}
	if (&Config{}).agentStatsTimeout() >= 0 {
		t.Fatal("no agents: the watchdog must stay off")
	}
}

var _ transport.CountingIntake = engineIntake{}

// deploy/config/openstack.yaml parses and sends each DC's agents to the
// node whose config runs the DC's local controller.
func TestDeployOpenStackAgents(t *testing.T) {
	data, err := os.ReadFile("../../deploy/config/openstack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	oc, err := openstack.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		cfg, err := LoadConfig(fmt.Sprintf("../../deploy/config/ims-orch-node%d.yaml", i))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Role.Agents == nil {
			t.Fatalf("node%d: no role.agents", i)
		}
		for _, dc := range cfg.Role.Locals {
			if got := oc.DCs[dc].ControllerAddress; got != cfg.API.URL {
				t.Fatalf("openstack.yaml %s.controller_address %q, but node%d (api.url %s) runs it", dc, got, i, cfg.API.URL)
			}
		}
	}
}
