package daemon

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/metrics"
)

// MetricsSnapshot implements metrics.Source.
func (b *Backend) MetricsSnapshot() metrics.Snapshot {
	var s metrics.Snapshot
	for _, dc := range slices.Sorted(maps.Keys(b.d.locals)) {
		counts := b.d.locals[dc].Counts()
		for _, vnf := range slices.Sorted(maps.Keys(counts)) {
			c := counts[vnf]
			s.Churn = append(s.Churn, metrics.Churn{DC: dc, VNF: vnf, N: c.Churn})
			cl := metrics.CrashLoop{DC: dc, VNF: vnf}
			if bo := c.Backoff; bo != nil {
				cl.Failures = bo.Failures
				if !bo.Until.IsZero() {
					cl.HeldFor = max(0, bo.Until.Sub(b.d.clk.Now()).Seconds())
				}
			}
			s.CrashLoops = append(s.CrashLoops, cl)
			for _, x := range []struct {
				st string
				n  int
			}{{"booting", c.Booting}, {"normal", c.Normal}, {"overload", c.Overload}, {"buffered", c.Buffered},
				{"draining", c.Draining}, {"failed", c.Failed}} {
				s.Instances = append(s.Instances, metrics.InstanceCount{DC: dc, VNF: vnf, State: x.st, N: x.n})
			}
		}
		for _, r := range routingDropReasons {
			s.Drops = append(s.Drops, metrics.Drops{DC: dc, Reason: r.String(), N: float64(b.d.routers[dc].Counters().Drops(r))})
		}
	}
	if b.d.dp != nil {
		skipped := b.d.dp.lazy.SkippedLearned()
		for _, dc := range slices.Sorted(maps.Keys(skipped)) {
			s.SkippedLearned = append(s.SkippedLearned, metrics.SkippedLearned{DC: dc, N: skipped[dc]})
		}
		restarts := b.d.dp.lazy.MonitorRestarts()
		for _, dc := range slices.Sorted(maps.Keys(restarts)) {
			r := restarts[dc]
			s.MonitorRestarts = append(s.MonitorRestarts, metrics.MonitorRestarts{DC: dc, Restarts: r.Restarts, Paused: r.Paused})
		}
		takeovers := b.d.dp.lazy.FlowTakeovers()
		for _, dc := range slices.Sorted(maps.Keys(takeovers)) {
			r := takeovers[dc]
			s.RuleTakeovers = append(s.RuleTakeovers, metrics.RuleTakeovers{DC: dc, Takeovers: r.Takeovers, Conflicts: r.Conflicts})
		}
		lost := b.d.dp.lazy.PairCountsLost()
		for _, dc := range slices.Sorted(maps.Keys(lost)) {
			s.PairCountsLost = append(s.PairCountsLost, metrics.PairCountsLost{DC: dc, N: lost[dc]})
		}
	}
	if b.d.pump != nil {
		s.Drops = append(s.Drops, metrics.Drops{DC: "sim", Reason: "no-instance-packets", N: b.d.pump.Drops()})
	}
	st := b.d.store.State()
	s.Delays = metricDelays(b.d.linkDelays())
	s.Interval = st.Interval
	if h := b.d.store.History(); len(h) >= 2 {
		prev, last := h[len(h)-2], h[len(h)-1]
		for _, k := range slices.Sorted(maps.Keys(last.Actual)) {
			kind, a, c, ok := global.ParseSeriesKey(k)
			if !ok {
				continue
			}
			s.Workloads = append(s.Workloads, metrics.Workload{Kind: kind, Entry: a, Exit: c, Predicted: prev.Predicted[k], Actual: last.Actual[k]})
		}
	}
	if b.d.engine != nil {
		es := b.d.engine.Stats()
		s.Rounds, s.Retransmissions, s.Unreachable = uint64(es.Rounds), uint64(es.Retransmissions), uint64(es.Unreachable)
		s.DroppedCommits, s.DroppedPlans = uint64(es.DroppedCommits), uint64(es.DroppedPlans)
		s.KeepRefused, s.RiseRefused = uint64(es.KeepRefused), uint64(es.RiseRefused)
	}
	s.RaftRole = "standalone"
	if n := b.d.node; n != nil {
		s.RaftRole = strings.ToLower(n.Raft.State().String())
		stats := n.Raft.Stats()
		s.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
		s.AppliedIndex = n.Raft.AppliedIndex()
	}
	return s
}
