package simulation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// The oracle plans each workload series at its pair's largest (Mean: the
// average) logged rate over (now, now + Window], a delay series at its last
// observed value; reports before the traffic's start are not logged.
func TestOracleByHand(t *testing.T) {
	start := time.Unix(1000, 0)
	log := newLoadLog(start, 2)
	log.record("dp", start, []traffic.PairLoad{{Entry: 0, Exit: 1, Rate: 1e6}}) // the warm start's hint
	for s, r := range []float64{10, 40, 20, 30} {                               // seconds 1..4, pair 0→1
		log.record("dp", start.Add(time.Duration(s+1)*time.Second), []traffic.PairLoad{{Entry: 0, Exit: 1, Rate: r}, {Entry: 1, Exit: 1, Rate: 5}})
	}
	log.record("cp", start.Add(3*time.Second), []traffic.PairLoad{{Entry: 1, Exit: 0, Rate: 7}})
	clk := clock.NewVirtual(start.Add(time.Second)) // now = second 1: the window is (1, 3]
	dcs := []string{"a", "b"}
	maxF := newOracleForecaster(Oracle{Log: log, Window: 2 * time.Second}, clk, start, dcs)
	meanF := newOracleForecaster(Oracle{Log: log, Window: 2 * time.Second, Mean: true}, clk, start, dcs)
	dl := global.SeriesKey(global.KindDelay, "a", "b")
	if err := maxF.Observe(map[string]float64{dl: 42, global.SeriesKey(global.KindDP, "a", "b"): 1e9}); err != nil {
		t.Fatal(err)
	}
	keys := []string{global.SeriesKey(global.KindDP, "a", "b"), global.SeriesKey(global.KindDP, "b", "b"),
		global.SeriesKey(global.KindCP, "b", "a"), global.SeriesKey(global.KindDP, "a", "x"), dl}
	got := maxF.Predict(keys)
	for k, want := range map[string]float64{keys[0]: 40, keys[1]: 5, keys[2]: 7, keys[3]: 0, dl: 42} {
		if got[k].Value != want || got[k].Model != "oracle" {
			t.Errorf("max %s: %+v, want %v", k, got[k], want)
		}
	}
	if v := meanF.Predict(keys[:1])[keys[0]].Value; v != 30 {
		t.Errorf("mean dp a→b: %v, want (40 + 20) / 2 = 30", v)
	}
	// seconds 1..4 (window (0, 4]): 10 20 30 40 sorted; q 0.5 → the 2nd
	qF := newOracleForecaster(Oracle{Log: log, Window: 4 * time.Second, Quantile: 0.5}, clock.NewVirtual(start), start, dcs)
	if v := qF.Predict(keys[:1])[keys[0]].Value; v != 20 {
		t.Errorf("median dp a→b: %v, want 20", v)
	}
	clk.Advance(10 * time.Second) // past the log: nothing to come
	if v := maxF.Predict(keys[:1])[keys[0]].Value; v != 0 {
		t.Errorf("after the log: %v, want 0", v)
	}
	if len(log.dp) != 4 || len(log.cp) != 1 {
		t.Fatalf("logged %d dp, %d cp reports, want 4 and 1", len(log.dp), len(log.cp))
	}
	if err := (&Oracle{Log: log}).validate(); err == nil || !strings.Contains(err.Error(), "window") {
		t.Fatalf("a zero window: %v", err)
	}
	if err := (&Oracle{Log: log, Window: time.Second, Quantile: 1}).validate(); err == nil || !strings.Contains(err.Error(), "quantile") {
		t.Fatalf("quantile 1: %v", err)
	}
}

// A run with an Oracle plans every round's workload series with it (one
// run's load log serves another's: the same traffic), and without a log
// the run is refused.
func TestOracleRun(t *testing.T) {
	e := short(load(t, "simultaneous-start-50s.yaml"), 200*time.Second)
	r := runExp(t, e, strategy.Reactive, 1)
	if r.Loads == nil || len(r.Loads.dp) != 200 {
		t.Fatalf("load log of %v", r.Loads)
	}
	o, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1, Oracle: &Oracle{Log: r.Loads, Window: e.Interval + e.BootDelay}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range o.sys.Engine.Records() {
		for k, fc := range rec.Forecasts {
			if kind, _, _, _ := global.ParseSeriesKey(k); kind != global.KindDelay {
				n++
				if fc.Model != "oracle" {
					t.Fatalf("round %d series %s planned by %q", rec.Round, k, fc.Model)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no workload series planned")
	}
	if o.Cost.FixedFloorVMSeconds != r.Cost.FixedFloorVMSeconds {
		t.Fatalf("fixed floors %v and %v: not the same traffic", o.Cost.FixedFloorVMSeconds, r.Cost.FixedFloorVMSeconds)
	}
	if _, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1, Oracle: &Oracle{Window: time.Second}}); err == nil {
		t.Fatal("an oracle without a load log ran")
	}
}
