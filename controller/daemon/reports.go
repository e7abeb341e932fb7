package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

// Reports from other processes (docs/operations.md "Reports from other
// processes"):
//
//   - workload reports: in cluster mode the local-side sources of this node
//     (the simulated load's DP reports of its entry DCs and CP report of the
//     S-CSCF DC) go through a transport.Reporter to the round engine of the
//     raft leader: the in-process engine first when this node has the global
//     role, then role.globalEndpoints (default: every peer's API URL) at
//     transport.WorkloadPath. Only a node whose engine runs (the leader)
//     accepts; the others answer 409 and the reporter tries the next one.
//   - statistics agents: with role.agents, the local controllers of this node
//     take their instances' statistics at POST /dc/<name>/stats (agent
//     token), and instances silent for role.agents.statsTimeout are failed.

// AgentsConfig enables the statistics agents that run inside VNF instances
// (`ims-orch agent`, started by the instance's user data with driver
// openstack).
type AgentsConfig struct {
	// TokenFile holds the bearer token the agents present (the
	// controller_token of the openstack config's datacenters).
	TokenFile string `yaml:"tokenFile"`
	// StatsTimeout: an active instance whose agent sent nothing for this long
	// is failed and replaced (default 90s: the guest boots and cloud-init
	// starts the agent after the server is ACTIVE).
	StatsTimeout string `yaml:"statsTimeout"`
}

// DefaultAgentStatsTimeout is role.agents.statsTimeout's default.
const DefaultAgentStatsTimeout = 90 * time.Second

// normalizeReports checks role.globalEndpoints and role.agents.
func (c *Config) normalizeReports() error {
	for i, u := range c.Role.GlobalEndpoints {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("role.globalEndpoints[%d]: %q must be an http:// or https:// URL", i, u)
		}
	}
	if len(c.Role.GlobalEndpoints) > 0 && !c.Clustered() {
		return errors.New("role.globalEndpoints: only in cluster mode (node.raftBind is set)")
	}
	if a := c.Role.Agents; a != nil {
		if a.TokenFile == "" {
			return errors.New("role.agents.tokenFile: required when role.agents is set")
		}
		if a.StatsTimeout == "" {
			a.StatsTimeout = DefaultAgentStatsTimeout.String()
		}
		d, err := time.ParseDuration(a.StatsTimeout)
		if err != nil || d < time.Second || d > time.Hour {
			return fmt.Errorf("role.agents.statsTimeout: %q is not a duration in [1s, 1h]", a.StatsTimeout)
		}
	}
	return nil
}

// agentStatsTimeout is the local controllers' statistics timeout when no
// simulated load reports: role.agents.statsTimeout, or -1 (no watchdog)
// without agents.
func (c *Config) agentStatsTimeout() time.Duration {
	if c.Role.Agents == nil {
		return -1
	}
	d, _ := time.ParseDuration(c.Role.Agents.StatsTimeout)
	return d
}

// globalEndpoints is where this node's workload reports go over HTTP.
func (c *Config) globalEndpoints() []string {
	if len(c.Role.GlobalEndpoints) > 0 {
		return c.Role.GlobalEndpoints
	}
	var out []string
	for _, p := range c.Node.Peers {
		if p.API != "" {
			out = append(out, p.API)
		}
	}
	return out
}

// reportParts are this node's report channels.
type reportParts struct {
	reporter *transport.Reporter
	agentsN  *prometheus.CounterVec
	// cpMeter turns the CP counters the S-CSCFs' agents push (driver
	// openstack) into the S-CSCF DC's CP workload reports
	cpMeter *sipglue.CPMeter
}

func (rp *reportParts) close() {
	if rp == nil {
		return
	}
	if rp.cpMeter != nil {
		rp.cpMeter.Stop()
	}
	if rp.reporter != nil {
		rp.reporter.Close()
	}
}

// engineIntake is the in-process round engine; it accepts reports only
// while it runs (this node leads) and knows the topology (a report that
// comes before is for a node that is not ready: the reporter retries).
type engineIntake struct {
	e  *global.Engine
	st global.Store
}

func (x engineIntake) ReportWorkload(r protocol.WorkloadReport) error {
	_, err := x.ReportWorkloadInterval(r)
	return err
}

// ReportWorkloadInterval implements transport.IntervalIntake.
func (x engineIntake) ReportWorkloadInterval(r protocol.WorkloadReport) (uint64, error) {
	interval, _, err := x.ReportWorkloadOnce(r)
	return interval, err
}

// ReportWorkloadOnce implements transport.OnceIntake: the engine counts a
// copy of a report it counted no more, on either path (the HTTP handler,
// this node's reporter in process).
func (x engineIntake) ReportWorkloadOnce(r protocol.WorkloadReport) (uint64, bool, error) {
	c, err := x.ReportWorkloadCounted(r)
	return c.Interval, c.Duplicate, err
}

// ReportWorkloadCounted implements transport.CountingIntake: with a copy,
// the interval the engine measures now too.
func (x engineIntake) ReportWorkloadCounted(r protocol.WorkloadReport) (transport.Counted, error) {
	if !x.e.Running() {
		return transport.Counted{}, transport.ErrNotLeader
	}
	if x.st.State().Topology == nil {
		return transport.Counted{}, fmt.Errorf("%w yet: no topology committed", transport.ErrNotLeader)
	}
	return x.e.ReportWorkloadCounted(r)
}

func readToken(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s %s: empty", field, path)
	}
	return t, nil
}

// buildReports wires the report channels once the controllers exist:
// protocolToken is the cluster's protocol token ("" in single-node mode).
func (d *Daemon) buildReports(protocolToken string) error {
	cfg := d.cfg
	rp := &reportParts{agentsN: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace,
		Name: "agent_reports_total", Help: "Statistics reports of the in-instance agents, by DC and outcome (accepted, refused)."},
		[]string{"dc", "outcome"})}
	d.reports = rp
	if d.mux == nil {
		d.mux = http.NewServeMux()
	}
	d.serveProbes()
	if cfg.Clustered() {
		if err := d.buildWorkloadReports(protocolToken); err != nil {
			return err
		}
	}
	if cfg.Role.Agents == nil || len(d.locals) == 0 {
		return nil
	}
	tok, err := readToken("role.agents.tokenFile", cfg.Role.Agents.TokenFile)
	if err != nil {
		return err
	}
	if cfg.Driver.Kind == DriverOpenStack {
		if err := d.checkOpenStackAgents(tok); err != nil {
			return err
		}
	}
	intakes := map[string]agent.Intake{}
	for dc, lc := range d.locals {
		intakes[dc] = lc
	}
	h, err := agent.NewStatsHandler(intakes, tok)
	if err != nil {
		return err
	}
	h.OnReport = func(dc, outcome string) { rp.agentsN.WithLabelValues(dc, outcome).Inc() }
	if cfg.Driver.Kind == DriverOpenStack {
		if err := d.startPushedCPMeter(h); err != nil {
			return err
		}
	}
	for _, dc := range slices.Sorted(func(yield func(string) bool) {
		for dc := range d.locals {
			if !yield(dc) {
				return
			}
		}
	}) {
		d.mux.Handle(agent.StatsPath(dc), h)
	}
	d.log.Info("statistics agents: instances report to this node", "path", agent.StatsPath("<dc>"),
		"statsTimeout", cfg.agentStatsTimeout().String())
	return nil
}

// buildWorkloadReports serves transport.WorkloadPath on a global node and
// gives the local-side sources of this node a reporter (cluster mode).
func (d *Daemon) buildWorkloadReports(token string) error {
	cfg := d.cfg
	if cfg.Role.Global && d.engine != nil {
		if err := d.serveWorkloadReports(token); err != nil {
			return err
		}
	}
	token, err := d.reportToken(token)
	if err != nil {
		return err
	}
	if len(d.locals) == 0 {
		return nil
	}
	var targets []transport.ReportTarget
	if cfg.Role.Global && d.engine != nil {
		targets = append(targets, transport.IntakeTarget{In: engineIntake{d.engine, d.store}, Name: "this node's engine"})
	}
	hc := &http.Client{}
	if d.peerTr != nil {
		hc.Transport = d.peerTr
	}
	for _, u := range cfg.globalEndpoints() {
		if u == cfg.API.URL && cfg.Role.Global {
			continue // in-process already
		}
		// the legacy mode for an older node ends on this node's clock
		t, err := transport.NewHTTPReportTargetWith(u, token, hc, transport.HTTPReportOptions{Clock: d.clk, Log: d.log})
		if err != nil {
			return fmt.Errorf("role.globalEndpoints: %w", err)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return errors.New("role.globalEndpoints: this node runs local controllers but knows no global node " +
			"(give node.peers[].api or role.globalEndpoints)")
	}
	// Resend: a new leader gets the interval's earlier reports again, so
	// its first round averages the whole interval (failover keeps it)
	rc := reporterConfig(targets, d.clk, d.log, cfg.Node.ID, cfg.raftConfig(d.opt.Raft))
	rc.Timeout = d.opt.realTimeout
	r, err := transport.NewReporter(rc)
	if err != nil {
		return err
	}
	d.reports.reporter = r
	if c := d.simCloud; c != nil && cfg.Traffic != nil {
		// the simulated load of this node's DCs: every node computes the
		// whole deployment's calls alike, but reports (and loads) only the
		// DCs it runs
		mine := map[string]bool{}
		for dc := range d.locals {
			mine[dc] = true
		}
		d.pump = newPump(d.clk, *cfg.Traffic, cfg.Topology, c, d.locals, d.routers, d.localDrv != nil, func(rep protocol.WorkloadReport) error {
			if !mine[rep.DC] {
				return nil
			}
			return d.reportLocal(rep)
		}, func(err error) { d.log.Warn("simulated workload report refused", "err", err) })
	}
	return nil
}

// startPushedCPMeter measures the CP workload per pair with driver
// openstack, where the S-CSCFs run inside VMs: each S-CSCF's agent sends
// its per-pair counters with its statistics (`ims-orch agent
// --kamailio-rpc`, set by the instance's user data), the stats endpoint
// keeps the last ones, and the node that runs the S-CSCF DC's local
// controller reports their rates like driver local's meter does.
func (d *Daemon) startPushedCPMeter(h *agent.StatsHandler) error {
	t := d.cfg.Topology
	report, err := d.cpMeterReporter("openstack")
	if report == nil || err != nil {
		return err // nil: the S-CSCF DC's node meters its S-CSCFs
	}
	// an S-CSCF whose agent is silent for 5 s (5 samples) is gone or
	// failing: its counters no longer count
	store := sipglue.NewPushedCP(d.clk, 5*time.Second)
	h.OnCP = store.Put
	meter, err := sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: t.SCSCFDC, DCs: d.cfg.dcNames(), Clock: d.clk, Report: report,
		Targets: func() []sipglue.Target { return store.Targets(t.SCSCFDC) }, Read: store.Read,
		OnError: func(err error) { d.log.Warn("CP workload meter", "err", err) }})
	if err != nil {
		return err
	}
	d.reports.cpMeter = meter
	meter.Start()
	d.log.Info("driver openstack: CP workload per pair from the S-CSCFs' agents", "dc", t.SCSCFDC)
	return nil
}

// checkOpenStackAgents checks that every local DC's instances get agent
// settings in their user data (drivers/openstack controller_address and
// controller_token), with the token this node accepts: otherwise the
// statistics timeout would fail instances that have no agent.
func (d *Daemon) checkOpenStackAgents(token string) error {
	data, err := os.ReadFile(d.cfg.Driver.OpenStackConfig)
	if err != nil {
		return fmt.Errorf("driver.openstackConfig: %w", err)
	}
	oc, err := openstack.ParseConfig(data)
	if err != nil {
		return fmt.Errorf("driver.openstackConfig %s: %w", d.cfg.Driver.OpenStackConfig, err)
	}
	for _, dc := range slices.Sorted(func(yield func(string) bool) {
		for dc := range d.locals {
			if !yield(dc) {
				return
			}
		}
	}) {
		c, ok := oc.DCs[dc]
		if !ok || c.ControllerAddress == "" {
			return fmt.Errorf("role.agents: datacenters.%s.controller_address of %s is empty: its instances would start no agent",
				dc, d.cfg.Driver.OpenStackConfig)
		}
		if c.ControllerToken != token {
			return fmt.Errorf("role.agents: datacenters.%s.controller_token of %s differs from role.agents.tokenFile",
				dc, d.cfg.Driver.OpenStackConfig)
		}
	}
	return nil
}

// registerReportMetrics adds the report channels' counters to /metrics.
func (d *Daemon) registerReportMetrics() {
	if d.reports == nil || d.metrics == nil {
		return
	}
	d.metrics.Registry.MustRegister(d.reports.agentsN)
	if d.reports.reporter != nil {
		d.metrics.Registry.MustRegister(reporterCollector{d.reports.reporter})
	}
	if d.engine != nil {
		d.metrics.Registry.MustRegister(lateReportsCollector{d.engine.Stats})
	}
}

var lateReportsDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_late_total",
	"Workload reports this node's round engine dropped because they were measured in an interval it had already closed "+
		"(a re-sent or long-queued report reaching a new leader after its close): not counted in the next interval.", nil, nil)

var refusedReportersDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_refused_reporters_total",
	"Workload reports this node's round engine refused (422) because their credential already had "+
		"8 other reporter IDs in the report's DC and kind this interval (the shared protocol token counts as one credential).", nil, nil)

var duplicateReportsDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_duplicate_total",
	"Workload reports this node's round engine had counted already (the same credential, reporter, DC, kind and time: "+
		"a re-send to a leader that had the report, a re-send after a lost answer): not counted again.", nil, nil)

var droppedLostCloseDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_dropped_lost_close_total",
	"Workload reports this node's round engine dropped with its intake of an interval whose opening close it made in memory "+
		"and another leader redid in the log (a lost predict commit, then leading again): those re-sent to that leader it counted, "+
		"the others are counted nowhere.", nil, nil)

var keptOnMatchingAveragesDesc = prometheus.NewDesc(metrics.Namespace+"_workload_intakes_kept_on_matching_averages_total",
	"Closes without a token (read from a session-12 leader's snapshot: a rolling upgrade) this node's round engine took for its own "+
		"because their averages equal one it proposed, keeping its intake of the next interval: another node's redo with the same "+
		"averages is taken so too, and the reports re-sent to that node then count twice (logged at Info).", nil, nil)

var recountedDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_recounted_total",
	"Copies of reports this node's round engine had dropped with an intake (dropped_lost_close) counted again because they "+
		"carried the closing engine's word that it counted them in the interval this engine measures: else counted nowhere.", nil, nil)

// lateReportsCollector exports the engine's global.Stats.LateReports,
// RefusedReporters, DuplicateReports, DroppedOnLostClose,
// KeptOnMatchingAverages and RecountedReports (stats: Engine.Stats).
type lateReportsCollector struct{ stats func() global.Stats }

func (c lateReportsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lateReportsDesc
	ch <- refusedReportersDesc
	ch <- duplicateReportsDesc
	ch <- droppedLostCloseDesc
	ch <- keptOnMatchingAveragesDesc
	ch <- recountedDesc
}

func (c lateReportsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(lateReportsDesc, prometheus.CounterValue, float64(st.LateReports))
	ch <- prometheus.MustNewConstMetric(refusedReportersDesc, prometheus.CounterValue, float64(st.RefusedReporters))
	ch <- prometheus.MustNewConstMetric(duplicateReportsDesc, prometheus.CounterValue, float64(st.DuplicateReports))
	ch <- prometheus.MustNewConstMetric(droppedLostCloseDesc, prometheus.CounterValue, float64(st.DroppedOnLostClose))
	ch <- prometheus.MustNewConstMetric(keptOnMatchingAveragesDesc, prometheus.CounterValue, float64(st.KeptOnMatchingAverages))
	ch <- prometheus.MustNewConstMetric(recountedDesc, prometheus.CounterValue, float64(st.RecountedReports))
}

var (
	reportsDesc = prometheus.NewDesc(metrics.Namespace+"_workload_reports_total",
		"Workload reports of this node's local-side sources to the global leader, by outcome (sent, dropped: queue full, "+
			"failed: given up after retries, rejected: refused by a global node, resent: queued again for a new leader, "+
			"resend_skipped: not re-sent to a new leader, counted in an interval closed since, copies_of_closed: answered as "+
			"copies of reports counted in an interval closed since, recounts: copies of reports a node dropped with an intake, "+
			"re-sent with the closing engine's word).", []string{"outcome"}, nil)
	reportQueueDesc = prometheus.NewDesc(metrics.Namespace+"_workload_report_queue",
		"Workload reports waiting to be sent to the global leader.", nil, nil)
	reportLatencyDesc = prometheus.NewDesc(metrics.Namespace+"_workload_report_latency_seconds_sum",
		"Sum over the sent workload reports of the time from queueing to acceptance.", nil, nil)
	reportLegacyDesc = prometheus.NewDesc(metrics.Namespace+"_workload_report_legacy_targets",
		"Global nodes this node's workload reports now leave reporter and ageMs out for (older nodes that refused them; "+
			"tried again after 5 min or a leader change).", nil, nil)
)

type reporterCollector struct{ r *transport.Reporter }

func (c reporterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- reportsDesc
	ch <- reportQueueDesc
	ch <- reportLatencyDesc
	ch <- reportLegacyDesc
}

func (c reporterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	for _, o := range []struct {
		n string
		v uint64
	}{{"sent", s.Sent}, {"dropped", s.Dropped}, {"failed", s.Failed}, {"rejected", s.Rejected}, {"resent", s.Resent}, {"resend_skipped", s.ResendSkipped},
		{"copies_of_closed", s.CopiesOfClosed}, {"recounts", s.Recounts}} {
		ch <- prometheus.MustNewConstMetric(reportsDesc, prometheus.CounterValue, float64(o.v), o.n)
	}
	ch <- prometheus.MustNewConstMetric(reportQueueDesc, prometheus.GaugeValue, float64(s.QueueLen))
	ch <- prometheus.MustNewConstMetric(reportLatencyDesc, prometheus.CounterValue, s.Latency.Seconds())
	ch <- prometheus.MustNewConstMetric(reportLegacyDesc, prometheus.GaugeValue, float64(s.LegacyTargets))
}

// ReportStats returns the workload reporter's counters (zero when this node
// has none).
func (d *Daemon) ReportStats() transport.ReporterStats {
	if d.reports == nil || d.reports.reporter == nil {
		return transport.ReporterStats{}
	}
	return d.reports.reporter.Stats()
}

// enterHook tells the workload reporter when a local controller of this
// node enters a new interval (step 5): the reports kept for a re-send to a
// new leader belong to the closed interval then.
type enterHook struct {
	local.PathStore
	enter func()
}

func (h enterHook) Enter(interval uint64) {
	h.PathStore.Enter(interval)
	h.enter()
}

// wrapReportPaths hooks the reporter to the local controllers' interval
// entries (cluster mode: the only one with a reporter).
func (d *Daemon) wrapReportPaths() func(string, local.PathStore) local.PathStore {
	if !d.cfg.Clustered() {
		return nil
	}
	return func(_ string, p local.PathStore) local.PathStore { return enterHook{p, d.newReportInterval} }
}

func (d *Daemon) newReportInterval() {
	if d.reports != nil && d.reports.reporter != nil {
		d.reports.reporter.NewInterval()
	}
}

// reporterConfig is the daemon's workload reporter: Resend, so a new
// leader gets the interval's earlier reports again and its first round
// averages the whole interval; NoLeaderWait from raft's timeouts rc
// (reportNoLeaderWait; nil: raft's defaults), so the reports sent during
// the election that made it leader are not lost; and the node's ID on its
// reports, so the global intake keeps this node's reports of a DC apart
// from another node's.
func reporterConfig(targets []transport.ReportTarget, clk clock.Clock, log *slog.Logger, id string, rc *raft.Config) transport.ReporterConfig {
	return transport.ReporterConfig{Targets: targets, Clock: clk, Resend: true, NoLeaderWait: reportNoLeaderWait(rc), ID: id, Log: log,
		OnError: func(err error) { log.Warn("workload report not delivered", "err", err) }}
}
