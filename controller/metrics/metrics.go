// Package metrics owns ims-orch's Prometheus metrics: the counters the
// daemon updates as decisions happen (instances created and destroyed by
// reason, round step durations) and a collector that reads the live state
// (instances by DC, VNF and state, predicted and actual workload, round and
// retransmission counts, dropped commits and plans, the local controllers'
// refusals of keepBuffered and of the rise flags, routing drops, the real
// data plane's unreadable learned rules, raft role and commit index) from a
// Source at scrape time. Names follow the Prometheus conventions under the
// ims_orch_ prefix; docs/operations.md lists them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric.
const Namespace = "ims_orch"

// InstanceCount is how many instances of a VNF are in one state in a DC.
type InstanceCount struct {
	DC, VNF, State string
	N              int
}

// Workload is one predicted series (kind cp, dp or delay; entry → exit) of
// the last closed interval: what was predicted for it and what was measured.
type Workload struct {
	Kind, Entry, Exit string
	Predicted         float64
	Actual            float64
}

// Drops is the number of flows (or, for the simulated load, packets)
// dropped in a DC for one reason.
type Drops struct {
	DC, Reason string
	N          float64
}

// LinkDelay is one directed inter-DC link's delay as the last plan used it.
type LinkDelay struct {
	From, To, Source string
	Ms               float64
	// AgeSeconds is the time since the last probe sample reached this
	// node, -1 when none did.
	AgeSeconds float64
}

// Churn is how many instances of a VNF in a DC were reused from the
// buffer within two intervals of being buffered, since the start.
type Churn struct {
	DC, VNF string
	N       int
}

// CrashLoop is a VNF's crash-loop backoff in a DC: quick failures in a
// row and the seconds its launches are still held back (0: not holding).
type CrashLoop struct {
	DC, VNF  string
	Failures int
	HeldFor  float64
}

// SkippedLearned is how many learned rules on a DC's switch the real data
// plane's last flow count could not read (they count for no instance).
type SkippedLearned struct {
	DC string
	N  int
}

// MonitorRestarts is how often a DC's learned-rule monitor (real data
// plane) was restarted since the daemon started: Paused of them after the
// switch paused it, Restarts-Paused for other causes.
type MonitorRestarts struct {
	DC               string
	Restarts, Paused int
}

// RuleTakeovers is, for a DC of the real data plane, how many flows took
// their 5-tuple over from an older flow (a UA reusing its media port for
// another call) and how many rule conflicts (two compiled rules with one
// identity) were resolved, since the daemon started.
type RuleTakeovers struct {
	DC                   string
	Takeovers, Conflicts int
}

// PairCountsLost is, for a DC of the real data plane, how many rule
// updates ended pair counter rules unread since the daemon
// started (the read before the update failed; the rules were applied).
type PairCountsLost struct {
	DC string
	N  int
}

// Snapshot is the live state a scrape reads.
type Snapshot struct {
	Instances       []InstanceCount
	Workloads       []Workload
	Interval        uint64
	Rounds          uint64
	Retransmissions uint64
	Unreachable     uint64
	// DroppedCommits and DroppedPlans count the round engine's step
	// commits and step-3 plans whose result came back after the engine was
	// stopped or restarted (a leadership change, a shutdown) and was
	// dropped (global.Stats).
	DroppedCommits uint64
	DroppedPlans   uint64
	// KeepRefused counts step-4 decisions a local controller refused for
	// carrying keepBuffered (rolled back since step 2), sent again without
	// the hold (global.Stats.KeepRefused).
	KeepRefused uint64
	// RiseRefused counts step-4 decisions without keepBuffered a local
	// controller refused for carrying the rise flags noRise or fast
	// (rolled back since step 2), sent again without them
	// (global.Stats.RiseRefused).
	RiseRefused uint64
	Drops       []Drops
	Delays      []LinkDelay
	Churn       []Churn
	CrashLoops  []CrashLoop
	// SkippedLearned has one entry per DC of this node's real data plane
	// (none when the data plane is simulated).
	SkippedLearned []SkippedLearned
	// MonitorRestarts has one entry per DC of this node's real data plane
	// (none when the data plane is simulated).
	MonitorRestarts []MonitorRestarts
	// RuleTakeovers has one entry per DC of this node's real data plane
	// (none when the data plane is simulated).
	RuleTakeovers []RuleTakeovers
	// PairCountsLost has one entry per DC of this node's real data plane
	// (none when the data plane is simulated).
	PairCountsLost []PairCountsLost
	// RaftRole is leader, follower, candidate or standalone (no raft).
	RaftRole     string
	CommitIndex  uint64
	AppliedIndex uint64
}

// Source produces a snapshot; it is called once per scrape.
type Source interface {
	MetricsSnapshot() Snapshot
}

// Roles of the raft_role gauge.
var Roles = []string{"leader", "follower", "candidate", "standalone", "shutdown"}

// Metrics holds the registry and the event counters.
type Metrics struct {
	Registry  *prometheus.Registry
	created   *prometheus.CounterVec
	destroyed *prometheus.CounterVec
	decisions *prometheus.CounterVec
	steps     *prometheus.HistogramVec
}

// New builds a registry with the Go and process collectors, the event
// counters and the collector over src.
func New(src Source) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "instances_created_total",
			Help: "Instances launched or reused from the buffer, by reason (proactive, reactive, replacement)."},
			[]string{"dc", "vnf", "reason"}),
		destroyed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "instances_destroyed_total",
			Help: "Instances destroyed or moved to the buffer, by reason (expiry, failure, proactive scale-in to the buffer)."},
			[]string{"dc", "vnf", "reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "scaling_decisions_total",
			Help: "Scaling decisions by kind (proactive, reactive, replacement, manual)."}, []string{"kind"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "round_step_duration_seconds",
			Help:    "Duration of each step of the interval protocol (predict, acquire, compute, broadcast, enter).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"step"}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.created, m.destroyed, m.decisions, m.steps, &collector{src: src})
	return m
}

// InstanceCreated counts an instance launched or reused.
func (m *Metrics) InstanceCreated(dc, vnf, reason string) {
	m.created.WithLabelValues(dc, vnf, reason).Inc()
}

// InstanceDestroyed counts an instance destroyed or buffered.
func (m *Metrics) InstanceDestroyed(dc, vnf, reason string) {
	m.destroyed.WithLabelValues(dc, vnf, reason).Inc()
}

// Decision counts a scaling decision of a kind.
func (m *Metrics) Decision(kind string) { m.decisions.WithLabelValues(kind).Inc() }

// ObserveStep records one protocol step's duration.
func (m *Metrics) ObserveStep(step string, d time.Duration) {
	m.steps.WithLabelValues(step).Observe(d.Seconds())
}

var (
	descInstances = prometheus.NewDesc(Namespace+"_instances", "Instances by datacenter, VNF and local-controller state.",
		[]string{"dc", "vnf", "state"}, nil)
	descPredicted = prometheus.NewDesc(Namespace+"_workload_predicted", "Workload predicted for the last closed interval (cp: transactions/s, dp: packets/s, delay: ms).",
		[]string{"kind", "entry", "exit"}, nil)
	descActual = prometheus.NewDesc(Namespace+"_workload_actual", "Workload measured over the last closed interval.",
		[]string{"kind", "entry", "exit"}, nil)
	descError = prometheus.NewDesc(Namespace+"_prediction_error", "Predicted minus measured workload of the last closed interval.",
		[]string{"kind", "entry", "exit"}, nil)
	descInterval       = prometheus.NewDesc(Namespace+"_interval", "Current scaling interval index.", nil, nil)
	descRounds         = prometheus.NewDesc(Namespace+"_rounds_total", "Proactive rounds completed by this node's round engine.", nil, nil)
	descRetrans        = prometheus.NewDesc(Namespace+"_retransmissions_total", "Protocol requests re-sent after 500 ms without an answer.", nil, nil)
	descUnreach        = prometheus.NewDesc(Namespace+"_unreachable_total", "(datacenter, round) pairs given up for not answering.", nil, nil)
	descDroppedCommits = prometheus.NewDesc(Namespace+"_dropped_commits_total", "Round step commits whose result came back after this node's round engine was stopped or restarted (leadership change, shutdown) and was dropped; the round went on from the committed state.", nil, nil)
	descDroppedPlans   = prometheus.NewDesc(Namespace+"_dropped_plans_total", "Step-3 plans cancelled or finished after this node's round engine was stopped or restarted, whose result was dropped.", nil, nil)
	descKeepRefused    = prometheus.NewDesc(Namespace+"_keep_refused_total", "Step-4 decisions a local controller refused for carrying keepBuffered (rolled back since its step-2 report advertised it), sent again without the stage hold: the hold was not applied in that DC for the interval.", nil, nil)
	descRiseRefused    = prometheus.NewDesc(Namespace+"_rise_refused_total", "Step-4 decisions without keepBuffered a local controller refused for carrying the rise flags noRise or fast (rolled back since its step-2 report advertised them), sent again without the flags: that DC's stages were not flagged for the interval.", nil, nil)
	descDrops          = prometheus.NewDesc(Namespace+"_routing_drops_total", "Flows (sim: packets) dropped by routing, by datacenter and reason.",
		[]string{"dc", "reason"}, nil)
	descDelay = prometheus.NewDesc(Namespace+"_link_delay_seconds", "One-way delay of an inter-DC link as the last plan used it, by source (measured, configured, fallback).",
		[]string{"from", "to", "source"}, nil)
	descDelayAge = prometheus.NewDesc(Namespace+"_link_delay_sample_age_seconds", "Time since the link's last probe sample reached this node (-1: never).",
		[]string{"from", "to"}, nil)
	descChurn = prometheus.NewDesc(Namespace+"_churn_total", "Instances reused from the buffer within two intervals of being buffered (a scaling decision undone soon after).",
		[]string{"dc", "vnf"}, nil)
	descCrashFailures = prometheus.NewDesc(Namespace+"_crashloop_failures", "Instances of a VNF in a DC that failed in a row soon after their launch (0: no crash loop).",
		[]string{"dc", "vnf"}, nil)
	descCrashHeld = prometheus.NewDesc(Namespace+"_crashloop_backoff_seconds", "Seconds the crash-loop backoff still holds the VNF's replacements and launches in the DC back (0: not holding).",
		[]string{"dc", "vnf"}, nil)
	descSkippedLearned = prometheus.NewDesc(Namespace+"_dataplane_learned_rules_skipped", "Learned rules on the datacenter's switch that the real data plane's last flow count could not read: they count for no instance, so its flow counts are low by that many (dataplane.Plane.SkippedLearned). It holds the last flow count that succeeded: while the learned-rule monitor is down it keeps its last value.",
		[]string{"dc"}, nil)
	descMonRestarts = prometheus.NewDesc(Namespace+"_dataplane_learned_monitor_restarts_total", "Restarts of the datacenter's learned-rule monitor (real data plane) since the daemon started, by cause: paused (the switch paused the monitor, its reader fell behind) or other (ovs-vswitchd restarted, the monitor failed). Restarts in a row back off up to 32 s; the flow counts are unknown until the monitor is armed again.",
		[]string{"dc", "cause"}, nil)
	descTakeovers = prometheus.NewDesc(Namespace+"_dataplane_flow_takeovers_total", "Flows of the datacenter's real data plane that took their 5-tuple over from an older flow since the daemon started (a UA reusing its media port for another call: the newer call's rule replaces the older one's).",
		[]string{"dc"}, nil)
	descConflicts = prometheus.NewDesc(Namespace+"_dataplane_rule_conflicts_total", "Rule conflicts of the datacenter's real data plane since the daemon started: two compiled rules with one identity (the later one installed, the other dropped; each is logged once, naming both). 0 unless the rule compiler has a bug.",
		[]string{"dc"}, nil)
	descCountsLost = prometheus.NewDesc(Namespace+"_dataplane_pair_counts_lost_total", "Rule updates of the datacenter's real data plane since the daemon started that ended pair counter rules unread (a pair left the rule set; entry rules end no count since session 14): the read before the update failed, the rules were applied anyway, and the DP workload meter reports nothing for the period that lost those packets (a missing measurement, not a low one).",
		[]string{"dc"}, nil)
	descRole    = prometheus.NewDesc(Namespace+"_raft_role", "1 for this node's raft role.", []string{"role"}, nil)
	descCommit  = prometheus.NewDesc(Namespace+"_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied = prometheus.NewDesc(Namespace+"_raft_applied_index", "Raft last applied index.", nil, nil)
)

type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descPredicted, descActual, descError, descInterval, descRounds,
		descRetrans, descUnreach, descDroppedCommits, descDroppedPlans, descKeepRefused, descRiseRefused, descDrops, descDelay, descDelayAge, descChurn, descCrashFailures, descCrashHeld, descSkippedLearned, descMonRestarts, descTakeovers, descConflicts, descCountsLost, descRole, descCommit, descApplied} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.MetricsSnapshot()
	for _, i := range s.Instances {
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(i.N), i.DC, i.VNF, i.State)
	}
	for _, w := range s.Workloads {
		ch <- prometheus.MustNewConstMetric(descPredicted, prometheus.GaugeValue, w.Predicted, w.Kind, w.Entry, w.Exit)
		ch <- prometheus.MustNewConstMetric(descActual, prometheus.GaugeValue, w.Actual, w.Kind, w.Entry, w.Exit)
		ch <- prometheus.MustNewConstMetric(descError, prometheus.GaugeValue, w.Predicted-w.Actual, w.Kind, w.Entry, w.Exit)
	}
	ch <- prometheus.MustNewConstMetric(descInterval, prometheus.GaugeValue, float64(s.Interval))
	ch <- prometheus.MustNewConstMetric(descRounds, prometheus.CounterValue, float64(s.Rounds))
	ch <- prometheus.MustNewConstMetric(descRetrans, prometheus.CounterValue, float64(s.Retransmissions))
	ch <- prometheus.MustNewConstMetric(descUnreach, prometheus.CounterValue, float64(s.Unreachable))
	ch <- prometheus.MustNewConstMetric(descDroppedCommits, prometheus.CounterValue, float64(s.DroppedCommits))
	ch <- prometheus.MustNewConstMetric(descDroppedPlans, prometheus.CounterValue, float64(s.DroppedPlans))
	ch <- prometheus.MustNewConstMetric(descKeepRefused, prometheus.CounterValue, float64(s.KeepRefused))
	ch <- prometheus.MustNewConstMetric(descRiseRefused, prometheus.CounterValue, float64(s.RiseRefused))
	for _, d := range s.Drops {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, d.N, d.DC, d.Reason)
	}
	for _, c := range s.Churn {
		ch <- prometheus.MustNewConstMetric(descChurn, prometheus.CounterValue, float64(c.N), c.DC, c.VNF)
	}
	for _, c := range s.CrashLoops {
		ch <- prometheus.MustNewConstMetric(descCrashFailures, prometheus.GaugeValue, float64(c.Failures), c.DC, c.VNF)
		ch <- prometheus.MustNewConstMetric(descCrashHeld, prometheus.GaugeValue, c.HeldFor, c.DC, c.VNF)
	}
	for _, k := range s.SkippedLearned {
		ch <- prometheus.MustNewConstMetric(descSkippedLearned, prometheus.GaugeValue, float64(k.N), k.DC)
	}
	for _, r := range s.MonitorRestarts {
		ch <- prometheus.MustNewConstMetric(descMonRestarts, prometheus.CounterValue, float64(r.Paused), r.DC, "paused")
		ch <- prometheus.MustNewConstMetric(descMonRestarts, prometheus.CounterValue, float64(r.Restarts-r.Paused), r.DC, "other")
	}
	for _, r := range s.RuleTakeovers {
		ch <- prometheus.MustNewConstMetric(descTakeovers, prometheus.CounterValue, float64(r.Takeovers), r.DC)
		ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(r.Conflicts), r.DC)
	}
	for _, r := range s.PairCountsLost {
		ch <- prometheus.MustNewConstMetric(descCountsLost, prometheus.CounterValue, float64(r.N), r.DC)
	}
	for _, d := range s.Delays {
		ch <- prometheus.MustNewConstMetric(descDelay, prometheus.GaugeValue, d.Ms/1000, d.From, d.To, d.Source)
		ch <- prometheus.MustNewConstMetric(descDelayAge, prometheus.GaugeValue, d.AgeSeconds, d.From, d.To)
	}
	for _, r := range Roles {
		v := 0.0
		if r == s.RaftRole {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, v, r)
	}
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(s.CommitIndex))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(s.AppliedIndex))
}
