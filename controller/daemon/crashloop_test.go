package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// A P-CSCF that fails, then its replacement too at boot: the second
// replacement is held back by policy.crashLoopBackoff, and the operator
// sees it over HTTP (GET /state backoffs, the decisions history) and in the
// metrics, until the replacement that came up has been up for reset.
func TestCrashLoopThroughTheAPI(t *testing.T) {
	d, clk, c := simDaemon(t, func(cfg *Config) {
		cfg.Driver.Kind = DriverFake
		cfg.Traffic = nil
		cfg.Policy.CrashLoopBackoff = &CrashLoopBackoffConfig{Initial: "10s", Max: "40s", Reset: "1m"}
	})
	ctx := context.Background()
	clk.Advance(5 * time.Second) // the minimum instances are up (2 s boots)
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, in := range st.Instances {
		if in.DC == "tokyo" && in.VNF == vnf.PCSCF && in.State == "normal" {
			victim = in.ID
		}
	}
	if victim == "" || len(st.Backoffs) != 0 {
		t.Fatalf("no P-CSCF up in tokyo, or backoffs already: %+v", st)
	}
	fd := d.driver.(*fake.Driver)
	fd.SetFailNext(1)
	killed := clk.Now()
	fd.Kill(victim)
	clk.Advance(3 * time.Second) // replaced at once; the replacement fails at killed+2s
	st, err = c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	until := killed.Add(12 * time.Second)
	if len(st.Backoffs) != 1 {
		t.Fatalf("backoffs %+v", st.Backoffs)
	}
	b := st.Backoffs[0]
	if b.DC != "tokyo" || b.VNF != vnf.PCSCF || b.Failures != 2 || b.Owed != 1 || b.Until == nil || !b.Until.Equal(until) ||
		!strings.Contains(b.LastFailure, "boot failed") {
		t.Fatalf("backoff %+v (until %v), want 2 failures, until %v, 1 owed", b, b.Until, until)
	}
	var held *api.Decision
	all, err := c.AllDecisions(ctx, api.DecisionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i, dd := range all.Decisions {
		if dd.Kind == api.DecisionReplacement && strings.HasPrefix(dd.Reason, "replacement backoff: ") {
			held = &all.Decisions[i]
		}
	}
	if held == nil || held.DC != "tokyo" || held.Delta != 0 || !strings.Contains(held.Reason, "held back 10s") {
		t.Fatalf("no replacement-backoff decision: %+v", all.Decisions)
	}
	if got := metricCrashLoop(d, "tokyo", vnf.PCSCF); got.Failures != 2 || got.HeldFor != 9 {
		t.Fatalf("metrics %+v, want 2 failures, held 9 s more", got)
	}
	clk.Advance(until.Sub(clk.Now()) + 3*time.Second) // launched at until, up 2 s later
	if st, _ = c.State(ctx); len(st.Backoffs) != 1 || st.Backoffs[0].Until != nil || st.Backoffs[0].Owed != 0 || working(st, "tokyo", vnf.PCSCF) != 1 {
		t.Fatalf("after the backoff: %+v, %d working", st.Backoffs, working(st, "tokyo", vnf.PCSCF))
	}
	clk.Advance(time.Minute)
	if st, _ = c.State(ctx); len(st.Backoffs) != 0 {
		t.Fatalf("crash loop not over after the replacement's minute up: %+v", st.Backoffs)
	}
	if got := metricCrashLoop(d, "tokyo", vnf.PCSCF); got.Failures != 0 || got.HeldFor != 0 {
		t.Fatalf("metrics after the loop %+v", got)
	}
	all, _ = c.AllDecisions(ctx, api.DecisionQuery{})
	if last := all.Decisions[len(all.Decisions)-1]; !strings.Contains(last.Reason, "crash loop over after 2 quick failures") {
		t.Fatalf("last decision %+v", last)
	}
}

func metricCrashLoop(d *Daemon, dc, vnf string) metrics.CrashLoop {
	for _, c := range d.Backend().MetricsSnapshot().CrashLoops {
		if c.DC == dc && c.VNF == vnf {
			return c
		}
	}
	return metrics.CrashLoop{}
}
