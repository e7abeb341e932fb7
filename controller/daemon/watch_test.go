package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
)

// The daemon numbers its decisions as it records them, and the API pages
// through a round holding more decisions than a page over HTTP: every
// decision once, none lost.
func TestDecisionsSeqAndPaging(t *testing.T) {
	d, clk, c := simDaemon(t, nil)
	clk.Advance(20 * time.Second) // the ramp: proactive and reactive decisions recorded by the watcher
	const extra = 37
	ds := make([]api.Decision, extra)
	for i := range ds {
		ds[i] = api.Decision{Round: 3, At: clk.Now(), Kind: api.DecisionManual, DC: "tokyo", VNF: "ids", Delta: 1,
			Reason: fmt.Sprintf("burst %d", i)}
	}
	d.watch.record(ds...)
	ctx := context.Background()
	all, err := d.Backend().Decisions(ctx, api.DecisionQuery{})
	if err != nil || len(all.Decisions) < extra || all.More {
		t.Fatalf("whole history: %d decisions, more %v, %v", len(all.Decisions), all.More, err)
	}
	for i, dd := range all.Decisions {
		if dd.Seq != int64(i+1) {
			t.Fatalf("decision %d has seq %d, want %d", i, dd.Seq, i+1)
		}
	}
	if all.Newest != int64(len(all.Decisions)) {
		t.Fatalf("newest %d, want %d", all.Newest, len(all.Decisions))
	}
	for _, limit := range []int{1, 4, 36} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []api.Decision
			after := int64(0)
			for {
				l, err := c.DecisionsPage(ctx, api.DecisionQuery{Since: 3, After: after, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, l.Decisions...)
				if !l.More {
					break
				}
				after = l.Next
			}
			var want []api.Decision
			for _, dd := range all.Decisions {
				if dd.Round >= 3 {
					want = append(want, dd)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d decisions paged, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Seq != want[i].Seq || got[i].Reason != want[i].Reason {
					t.Fatalf("decision %d: seq %d %q, want seq %d %q", i, got[i].Seq, got[i].Reason, want[i].Seq, want[i].Reason)
				}
			}
		})
	}
}

// When the history is trimmed to maxDecisions the numbers go on: a cursor
// in the dropped part answers from the oldest decision kept.
func TestDecisionsTrimmedHistoryKeepsNumbers(t *testing.T) {
	d, clk, _ := simDaemon(t, nil)
	clk.Advance(time.Second)
	w := d.watch
	w.mu.Lock()
	start := w.seq
	w.mu.Unlock()
	burst := make([]api.Decision, maxDecisions+5)
	for i := range burst {
		burst[i] = api.Decision{Round: 1, Kind: api.DecisionManual, DC: "tokyo", VNF: "ids", Delta: 1, Reason: fmt.Sprint(i)}
	}
	w.record(burst...)
	page := w.decisions(api.DecisionQuery{Limit: 2})
	newest := start + int64(len(burst))
	if page.Newest != newest || len(page.Decisions) != 2 || page.Decisions[0].Seq != newest-maxDecisions+1 || !page.More {
		t.Fatalf("after trimming: newest %d, first seq %d (want %d and %d)", page.Newest, page.Decisions[0].Seq, newest, newest-maxDecisions+1)
	}
	if p := w.decisions(api.DecisionQuery{After: newest - 1, Limit: 5}); len(p.Decisions) != 1 || p.Decisions[0].Seq != newest || p.More {
		t.Fatalf("last page: %+v", p)
	}
}

// With policy.scaleIn a local controller's between-round scale-in shows in
// the decisions API as a reactive decision with delta −1.
func TestDecisionsShowBetweenRoundScaleIn(t *testing.T) {
	on := true
	d, clk, _ := simDaemon(t, func(c *Config) {
		c.Policy.ScaleIn = &on
		c.Policy.IntervalSeconds = 600 // no round undoes the scale-out below
	})
	clk.Advance(5 * time.Second)
	lc := d.locals["tokyo"]
	if _, err := lc.Scale("firewall", 2, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Release("firewall", "test"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(60 * time.Second)
	all, err := d.Backend().Decisions(context.Background(), api.DecisionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dd := range all.Decisions {
		if dd.Kind == api.DecisionReactive && dd.Delta == -1 && dd.DC == "tokyo" && dd.VNF == "firewall" {
			return
		}
	}
	t.Fatalf("no underload decision among %d: %+v", len(all.Decisions), lc.Actions())
}
