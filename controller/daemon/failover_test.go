package daemon

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// reportLog keeps the workload reports a node's reporter took.
type reportLog struct {
	mu   sync.Mutex
	reps []protocol.WorkloadReport
}

func (l *reportLog) add(r protocol.WorkloadReport) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reps = append(l.reps, r)
}

func (l *reportLog) all() []protocol.WorkloadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reps)
}

// intervalAverages applies the round engine's interval average (controller/
// global intake: per reporting DC, the sum of a pair's rates over that DC's
// reports of the kind divided by their number, summed over the DCs) to the
// CP and DP reports dated in [from, to): what a leader that took every one
// of them would measure.
func intervalAverages(reps []protocol.WorkloadReport, from, to time.Time) map[string]float64 {
	n := map[string]int{}
	sums := map[string]map[string]float64{}
	for _, r := range reps {
		if r.At.Before(from) || !r.At.Before(to) || (r.Kind != global.KindCP && r.Kind != global.KindDP) {
			continue
		}
		n[r.Kind+"/"+r.DC]++
		for _, p := range r.Pairs {
			k := global.SeriesKey(r.Kind, p.Entry, p.Exit)
			if sums[k] == nil {
				sums[k] = map[string]float64{}
			}
			sums[k][r.DC] += p.Rate
		}
	}
	out := map[string]float64{}
	for k, byDC := range sums {
		kind, _, _, _ := global.ParseSeriesKey(k)
		for dc, s := range byDC {
			out[k] += s / float64(n[kind+"/"+dc])
		}
	}
	return out
}

func actualOf(d *Daemon, round uint64) (map[string]float64, bool) {
	for _, h := range d.store.History() {
		if h.Round == round {
			return h.Actual, true
		}
	}
	return nil, false
}

// Failover keeps the interval, over HTTP with three daemons (issue 14): the
// local controllers of the four DCs run on the three nodes (n1 tokyo, n2
// hong-kong, n3 london and houston, with the S-CSCFs), the simulated load
// (the daemon's fluid-model pump: no real traffic source runs in this test)
// ramps up every second, and every report each node's reporter takes is
// logged at the reporter. The leader's measurement of a closed interval
// equals what the reporters sent in it (within 5 %), every node's DCs get
// non-zero predictions; then the leader is stopped two thirds into an
// interval, and the new leader's round measures the surviving nodes' load of
// that interval within 5 % of what their reporters sent in the whole of it
// — a leader that saw only the reports after the stop would be more than 5 %
// off on every DP pair (checked, so the test can fail). The stop is as
// close to a kill as one process allows (connections cut, no leadership
// handover), not a SIGKILL of a process.
func TestClusterFailoverKeepsTheInterval(t *testing.T) {
	const intervalSecs = 15
	began := time.Now()
	logs := make([]*reportLog, 3)
	ramp := func(base, step float64) []float64 {
		out := make([]float64, 150)
		for k := range out {
			out[k] = base + step*float64(k)
		}
		return out
	}
	// raft timeouts of 3 s (testRaft: 1 s): three nodes in one test
	// process on a starved host (nice 19 beside CPU burners) missed 1 s
	// heartbeats and held unplanned elections in 6 of 10 runs; the
	// failover after the stop takes 3–6 s then, and a leader elected
	// after the interval's end still measures it (global.Config.TakeoverWait)
	rc := testRaft()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 3*time.Second
	ds := startClusterRaft(t, rc, true, func(_ int, cfg *Config) {
		cfg.Topology.SCSCFDC = "london"
		cfg.Policy.IntervalSeconds = intervalSecs
		cfg.Role.ProbePeriod = "off"
		cfg.Traffic.ChangeInterval = "1s"
		cfg.Traffic.MediaPktPerSec = 5
		cfg.Traffic.Rates = map[string][]float64{"tokyo": ramp(1, 0.2), "hong-kong": ramp(1, 0.15),
			"london": ramp(1, 0.1), "houston": ramp(0.5, 0.1)}
	}, func(i int, o *Options) {
		logs[i] = &reportLog{}
		o.ObserveReport = logs[i].add
	})
	// leadership changes, for the log
	var lmu sync.Mutex
	var changes []string
	stopWatch := make(chan struct{})
	go func() {
		last := ""
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			id := ""
			for _, d := range ds {
				if d.Node().Raft.State() == raft.Leader {
					id += d.cfg.Node.ID
				}
			}
			if id != last {
				lmu.Lock()
				changes = append(changes, fmt.Sprintf("%.2fs:%q", time.Since(began).Seconds(), id))
				lmu.Unlock()
				last = id
			}
		}
	}()
	defer func() {
		close(stopWatch)
		lmu.Lock()
		defer lmu.Unlock()
		t.Logf("leaders over time: %v", changes)
	}()
	// round start times, as every node's committed state shows them
	starts := map[uint64]time.Time{}
	note := func(d *Daemon) {
		st := d.store.State()
		switch {
		case st.RoundStartedAt.IsZero():
		case st.Round != nil:
			starts[st.Round.Round] = st.RoundStartedAt
		case st.Interval > 0:
			starts[st.Interval-1] = st.RoundStartedAt
		}
	}
	var leader *Daemon
	// the control interval: closed by the leader, every node's load in it
	var control uint64
	var cFrom, cTo time.Time
	eventually(t, 60*time.Second, "a round closing an interval that every node's load covers", func() bool {
		if leader, _ = leaderOf(ds); leader == nil {
			return false
		}
		note(leader)
		h := leader.store.History()
		if len(h) == 0 || h[len(h)-1].Round < 1 {
			return false
		}
		r := h[len(h)-1].Round
		from, ok1 := starts[r-1]
		to, ok2 := starts[r]
		if !ok1 || !ok2 {
			return false
		}
		for _, l := range logs {
			if reps := l.all(); len(reps) == 0 || !reps[0].At.Before(from) {
				return false
			}
		}
		control, cFrom, cTo = r, from, to
		return true
	})
	var all []protocol.WorkloadReport
	for _, l := range logs {
		all = append(all, l.all()...)
	}
	want := intervalAverages(all, cFrom, cTo)
	got, _ := actualOf(leader, control)
	dcs := leader.cfg.dcNames()
	var series []string
	for _, dc := range dcs {
		series = append(series, global.SeriesKey(global.KindDP, dc, dc), global.SeriesKey(global.KindCP, dc, dc))
	}
	for _, k := range series {
		if want[k] <= 0 || math.Abs(got[k]-want[k]) > 0.05*want[k] {
			t.Errorf("control round %d, %s: leader measured %.1f, the reporters sent %.1f", control, k, got[k], want[k])
		}
	}
	h := leader.store.History()
	for _, k := range series {
		if p := h[len(h)-1].Predicted[k]; p <= 0 {
			t.Errorf("prediction of %s after round %d: %v, want > 0 (every node's DCs)", k, control, p)
		}
	}
	t.Logf("control round %d (interval %.2fs–%.2fs) on %s: %s", control, cFrom.Sub(began).Seconds(), cTo.Sub(began).Seconds(), leader.cfg.Node.ID, compare(series, got, want))

	// stop the leader two thirds into the next interval, before its round
	stopAt := cTo.Add(intervalSecs * time.Second * 2 / 3)
	time.Sleep(time.Until(stopAt)) // a point in the interval of real processes, not a wait for an event
	// whoever leads now is stopped (leadership may have moved since the
	// control round; the interval under test is the same); an election in
	// progress is waited out, bounded: the stop stays in the interval's
	// last third
	var followers []*Daemon
	eventually(t, time.Until(cTo.Add(intervalSecs*time.Second*5/6)), "a leader at the stop", func() bool {
		leader, followers = leaderOf(ds)
		return leader != nil
	})
	li := slices.Index(ds, leader)
	if st := leader.store.State(); st.Interval != control+1 || st.Round != nil || leader.Node().Raft.State() != raft.Leader {
		t.Fatalf("%s at the stop: interval %d, round %v, raft %v: not the interval under test", leader.cfg.Node.ID, st.Interval, st.Round, leader.Node().Raft.State())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := time.Now()
	// as close to a kill as one process allows: the API listener and its
	// connections are cut (reports in flight fail), raft stops without
	// handing leadership over (the others elect after their timeout), then
	// the rest of the node stops (its engine's interval intake is lost)
	if err := leader.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := leader.Node().Raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := leader.Shutdown(ctx); err != nil {
		t.Logf("shutdown of the stopped leader: %v", err)
	}
	var next *Daemon
	eventually(t, 30*time.Second, "a new leader", func() bool { next, _ = leaderOf(followers); return next != nil })
	elected := time.Since(stopped)
	failover := control + 1
	var fTo time.Time
	eventually(t, 2*intervalSecs*time.Second, "the new leader's round closing the interval of the stop", func() bool {
		note(next)
		if _, ok := actualOf(next, failover); !ok {
			return false
		}
		var ok bool
		fTo, ok = starts[failover]
		return ok
	})
	var survivors []protocol.WorkloadReport
	var checked []string
	for i, d := range ds {
		if i == li {
			continue
		}
		survivors = append(survivors, logs[i].all()...)
		for dc := range d.locals {
			checked = append(checked, global.SeriesKey(global.KindDP, dc, dc))
		}
	}
	if leader.locals[leader.cfg.Topology.SCSCFDC] == nil { // the S-CSCF DC reports the CP load of every pair
		for _, dc := range dcs {
			checked = append(checked, global.SeriesKey(global.KindCP, dc, dc))
		}
	}
	slices.Sort(checked)
	want = intervalAverages(survivors, cTo, fTo)
	partial := intervalAverages(survivors, stopped, fTo)
	got, _ = actualOf(next, failover)
	for _, k := range checked {
		if want[k] <= 0 || math.Abs(got[k]-want[k]) > 0.05*want[k] {
			t.Errorf("failover round %d, %s: the new leader measured %.1f, the reporters sent %.1f over the whole interval", failover, k, got[k], want[k])
		}
		if strings.HasPrefix(k, global.KindDP+"/") && math.Abs(partial[k]-want[k]) <= 0.05*want[k] {
			t.Errorf("%s: the reports after the stop alone average %.1f, within 5 %% of %.1f: the ramp is too flat, the test proves nothing", k, partial[k], want[k])
		}
	}
	var resent uint64
	for _, f := range followers {
		resent += f.ReportStats().Resent
	}
	t.Logf("leader %s stopped %.1f s into interval %d, %s leads after %v; reports re-sent to it: %d; round started %v after the previous (interval %ds)",
		leader.cfg.Node.ID, stopped.Sub(cTo).Seconds(), failover, next.cfg.Node.ID, elected.Round(time.Millisecond), resent,
		fTo.Sub(cTo).Round(time.Millisecond), intervalSecs)
	t.Logf("failover round %d: %s", failover, compare(checked, got, want))
	t.Logf("without the reports before the stop: %s", compare(checked, partial, want))
	for _, f := range followers {
		if s := f.ReportStats(); s.Sent > 0 {
			t.Logf("%s reporter: %d reports sent, mean latency to the leader (queue → accepted) %v, %d re-sent, %d failed",
				f.cfg.Node.ID, s.Sent, (s.Latency / time.Duration(s.Sent)).Round(time.Microsecond), s.Resent, s.Failed)
		}
	}
	t.Logf("test took %v", time.Since(began).Round(time.Second))
}

// compare formats each series' measured value against the reference.
func compare(series []string, got, want map[string]float64) string {
	var b strings.Builder
	for _, k := range series {
		fmt.Fprintf(&b, "%s %.1f vs %.1f (%+.1f %%); ", k, got[k], want[k], 100*(got[k]-want[k])/want[k])
	}
	return b.String()
}
