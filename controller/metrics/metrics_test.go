package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSource struct{ s Snapshot }

func (f *fakeSource) MetricsSnapshot() Snapshot { return f.s }

func TestCollectorAndCounters(t *testing.T) {
	src := &fakeSource{s: Snapshot{
		Instances:       []InstanceCount{{DC: "tokyo", VNF: "ids", State: "normal", N: 3}, {DC: "tokyo", VNF: "ids", State: "buffered", N: 1}},
		Workloads:       []Workload{{Kind: "dp", Entry: "tokyo", Exit: "london", Predicted: 120, Actual: 100}},
		Interval:        7,
		Rounds:          6,
		Retransmissions: 4,
		DroppedCommits:  2,
		DroppedPlans:    1,
		KeepRefused:     5,
		RiseRefused:     3,
		Drops:           []Drops{{DC: "tokyo", Reason: "no-path", N: 2}},
		RaftRole:        "leader",
		CommitIndex:     42,
		Delays:          []LinkDelay{{From: "tokyo", To: "london", Source: "measured", Ms: 61.5, AgeSeconds: 2}},
		Churn:           []Churn{{DC: "tokyo", VNF: "ids", N: 3}},
	}}
	m := New(src)
	m.InstanceCreated("tokyo", "ids", "reactive")
	m.InstanceCreated("tokyo", "ids", "reactive")
	m.InstanceDestroyed("tokyo", "ids", "expiry")
	m.ObserveStep("compute", 3*time.Millisecond)
	m.Decision("proactive")
	want := `
# HELP ims_orch_instances Instances by datacenter, VNF and local-controller state.
# TYPE ims_orch_instances gauge
ims_orch_instances{dc="tokyo",state="buffered",vnf="ids"} 1
ims_orch_instances{dc="tokyo",state="normal",vnf="ids"} 3
# HELP ims_orch_instances_created_total Instances launched or reused from the buffer, by reason (proactive, reactive, replacement).
# TYPE ims_orch_instances_created_total counter
ims_orch_instances_created_total{dc="tokyo",reason="reactive",vnf="ids"} 2
# HELP ims_orch_prediction_error Predicted minus measured workload of the last closed interval.
# TYPE ims_orch_prediction_error gauge
ims_orch_prediction_error{entry="tokyo",exit="london",kind="dp"} 20
# HELP ims_orch_raft_role 1 for this node's raft role.
# TYPE ims_orch_raft_role gauge
ims_orch_raft_role{role="candidate"} 0
ims_orch_raft_role{role="follower"} 0
ims_orch_raft_role{role="leader"} 1
ims_orch_raft_role{role="shutdown"} 0
ims_orch_raft_role{role="standalone"} 0
# HELP ims_orch_raft_commit_index Raft commit index.
# TYPE ims_orch_raft_commit_index gauge
ims_orch_raft_commit_index 42
# HELP ims_orch_routing_drops_total Flows (sim: packets) dropped by routing, by datacenter and reason.
# TYPE ims_orch_routing_drops_total counter
ims_orch_routing_drops_total{dc="tokyo",reason="no-path"} 2
# HELP ims_orch_link_delay_seconds One-way delay of an inter-DC link as the last plan used it, by source (measured, configured, fallback).
# TYPE ims_orch_link_delay_seconds gauge
ims_orch_link_delay_seconds{from="tokyo",source="measured",to="london"} 0.0615
# HELP ims_orch_link_delay_sample_age_seconds Time since the link's last probe sample reached this node (-1: never).
# TYPE ims_orch_link_delay_sample_age_seconds gauge
ims_orch_link_delay_sample_age_seconds{from="tokyo",to="london"} 2
# HELP ims_orch_dropped_commits_total Round step commits whose result came back after this node's round engine was stopped or restarted (leadership change, shutdown) and was dropped; the round went on from the committed state.
# TYPE ims_orch_dropped_commits_total counter
ims_orch_dropped_commits_total 2
# HELP ims_orch_dropped_plans_total Step-3 plans cancelled or finished after this node's round engine was stopped or restarted, whose result was dropped.
# TYPE ims_orch_dropped_plans_total counter
ims_orch_dropped_plans_total 1
# HELP ims_orch_keep_refused_total Step-4 decisions a local controller refused for carrying keepBuffered (rolled back since its step-2 report advertised it), sent again without the stage hold: the hold was not applied in that DC for the interval.
# TYPE ims_orch_keep_refused_total counter
ims_orch_keep_refused_total 5
# HELP ims_orch_rise_refused_total Step-4 decisions without keepBuffered a local controller refused for carrying the rise flags noRise or fast (rolled back since its step-2 report advertised them), sent again without the flags: that DC's stages were not flagged for the interval.
# TYPE ims_orch_rise_refused_total counter
ims_orch_rise_refused_total 3
# HELP ims_orch_churn_total Instances reused from the buffer within two intervals of being buffered (a scaling decision undone soon after).
# TYPE ims_orch_churn_total counter
ims_orch_churn_total{dc="tokyo",vnf="ids"} 3
`
	names := []string{"ims_orch_instances", "ims_orch_instances_created_total", "ims_orch_prediction_error", "ims_orch_raft_role",
		"ims_orch_raft_commit_index", "ims_orch_routing_drops_total", "ims_orch_link_delay_seconds", "ims_orch_link_delay_sample_age_seconds",
		"ims_orch_churn_total", "ims_orch_dropped_commits_total", "ims_orch_dropped_plans_total", "ims_orch_keep_refused_total", "ims_orch_rise_refused_total"}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.steps); n != 1 {
		t.Fatalf("step histogram series %d", n)
	}
	// every metric passes the registry's consistency checks and the linter
	if probs, err := testutil.GatherAndLint(m.Registry); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
}

// realDPSeries checks that snapshot s exports exactly want of metric name,
// and a simulated data plane's (empty) snapshot none, lint-clean.
func realDPSeries(t *testing.T, s Snapshot, name, want string) {
	t.Helper()
	src := &fakeSource{s: s}
	m := New(src)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), name); err != nil {
		t.Fatal(err)
	}
	src.s = Snapshot{}
	if n, err := testutil.GatherAndCount(m.Registry, name); err != nil || n != 0 {
		t.Fatalf("simulated data plane: %d series (%v), want none", n, err)
	}
	if probs, err := testutil.GatherAndLint(m.Registry); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
}

// The real data plane's unreadable learned rules are a gauge per DC; a
// simulated data plane has none.
func TestSkippedLearnedGauge(t *testing.T) {
	realDPSeries(t, Snapshot{SkippedLearned: []SkippedLearned{{DC: "tokyo", N: 2}, {DC: "london", N: 0}}}, "ims_orch_dataplane_learned_rules_skipped", `
# HELP ims_orch_dataplane_learned_rules_skipped Learned rules on the datacenter's switch that the real data plane's last flow count could not read: they count for no instance, so its flow counts are low by that many (dataplane.Plane.SkippedLearned). It holds the last flow count that succeeded: while the learned-rule monitor is down it keeps its last value.
# TYPE ims_orch_dataplane_learned_rules_skipped gauge
ims_orch_dataplane_learned_rules_skipped{dc="london"} 0
ims_orch_dataplane_learned_rules_skipped{dc="tokyo"} 2
`)
}

// The learned-rule monitor's restarts are a counter per DC and cause; a
// simulated data plane has none.
func TestMonitorRestartsCounter(t *testing.T) {
	realDPSeries(t, Snapshot{MonitorRestarts: []MonitorRestarts{{DC: "tokyo", Restarts: 5, Paused: 3}}}, "ims_orch_dataplane_learned_monitor_restarts_total", `
# HELP ims_orch_dataplane_learned_monitor_restarts_total Restarts of the datacenter's learned-rule monitor (real data plane) since the daemon started, by cause: paused (the switch paused the monitor, its reader fell behind) or other (ovs-vswitchd restarted, the monitor failed). Restarts in a row back off up to 32 s; the flow counts are unknown until the monitor is armed again.
# TYPE ims_orch_dataplane_learned_monitor_restarts_total counter
ims_orch_dataplane_learned_monitor_restarts_total{cause="other",dc="tokyo"} 2
ims_orch_dataplane_learned_monitor_restarts_total{cause="paused",dc="tokyo"} 3
`)
}

// Rule updates that lost the real data plane's pair counts are a counter
// per DC; a simulated data plane has none.
func TestPairCountsLostCounter(t *testing.T) {
	realDPSeries(t, Snapshot{PairCountsLost: []PairCountsLost{{DC: "tokyo", N: 3}}}, "ims_orch_dataplane_pair_counts_lost_total", `
# HELP ims_orch_dataplane_pair_counts_lost_total Rule updates of the datacenter's real data plane since the daemon started that ended pair counter rules unread (a pair left the rule set; entry rules end no count since session 14): the read before the update failed, the rules were applied anyway, and the DP workload meter reports nothing for the period that lost those packets (a missing measurement, not a low one).
# TYPE ims_orch_dataplane_pair_counts_lost_total counter
ims_orch_dataplane_pair_counts_lost_total{dc="tokyo"} 3
`)
}

// Flow takeovers and rule conflicts of the real data plane are counters per
// DC; a simulated data plane has none.
func TestRuleTakeoverCounters(t *testing.T) {
	s := Snapshot{RuleTakeovers: []RuleTakeovers{{DC: "tokyo", Takeovers: 7, Conflicts: 1}}}
	realDPSeries(t, s, "ims_orch_dataplane_flow_takeovers_total", `
# HELP ims_orch_dataplane_flow_takeovers_total Flows of the datacenter's real data plane that took their 5-tuple over from an older flow since the daemon started (a UA reusing its media port for another call: the newer call's rule replaces the older one's).
# TYPE ims_orch_dataplane_flow_takeovers_total counter
ims_orch_dataplane_flow_takeovers_total{dc="tokyo"} 7
`)
	realDPSeries(t, s, "ims_orch_dataplane_rule_conflicts_total", `
# HELP ims_orch_dataplane_rule_conflicts_total Rule conflicts of the datacenter's real data plane since the daemon started: two compiled rules with one identity (the later one installed, the other dropped; each is logged once, naming both). 0 unless the rule compiler has a bug.
# TYPE ims_orch_dataplane_rule_conflicts_total counter
ims_orch_dataplane_rule_conflicts_total{dc="tokyo"} 1
`)
}
