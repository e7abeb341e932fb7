package global

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// With StageFloor, a DP series whose profile rises by r in (1, StageFloor)
// reports its observed average × r as Peak (here r = 910/600, the rise of
// TestProfilePriorByHand); 0 is DefaultStageFloor (3); off (1), or with the
// rise at or above it, none; CP series never.
func TestProfilePriorStageFloorPeak(t *testing.T) {
	peak := func(floor float64) map[string]Forecast {
		return floorPredict(t, 150*time.Second, 120, ProfilePrior{StageFloor: floor})
	}
	r := 910.0 / 600
	on := peak(3)
	if got := on["dp/a/a"]; math.Abs(got.Peak-100*r) > 1e-9 || got.Value >= got.Peak {
		t.Fatalf("stage floor 3: %+v, want peak %v above the plan", got, 100*r)
	}
	if got := on["cp/a/a"]; got.Peak != 0 {
		t.Fatalf("CP series got a peak: %+v", got)
	}
	if got := peak(0)["dp/a/a"]; got.Peak != on["dp/a/a"].Peak {
		t.Fatalf("the default stage floor (%v): %+v, want the peak of 3", DefaultStageFloor, got)
	}
	for _, floor := range []float64{1, 1.5} { // off; the rise (≈ 1.52) not below it
		if got := peak(floor)["dp/a/a"]; got.Peak != 0 {
			t.Fatalf("stage floor %v: %+v, want no peak", floor, got)
		}
	}
	if got := peak(1)["dp/a/a"]; got.Value != on["dp/a/a"].Value {
		t.Fatalf("the floor moved the plan: %v vs %v", on["dp/a/a"].Value, got.Value)
	}
	bad := ProfilePrior{Profile: steps{1}, Origin: time.Unix(1000, 0), CallDuration: time.Minute, Window: time.Minute, Interval: time.Minute, StageFloor: 0.5}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "stage floor") {
		t.Fatalf("stage floor 0.5 accepted: %v", err)
	}
}

// floorCase is two DCs and one stage of full capacity 100 planned at 97;
// the pair a→b goes through DC a's stage, b→b through b's.
func floorCase() (*fsm.Topology, *placement.Snapshot, *placement.Decision) {
	t := &fsm.Topology{DCs: []string{"a", "b"}, Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}}
	s := &placement.Snapshot{N: 2, Stages: []placement.Stage{{Name: "fw", Capacity: 97}},
		DP: [][]placement.Provision{{{Working: 3, Buffered: 1}}, {{Working: 1}}}}
	d := &placement.Decision{
		Pairs: []placement.PairPlan{
			{Pair: placement.Pair{Entry: 0, Exit: 1}, Path: placement.Path{0, 0, 1}, Workload: 150},
			{Pair: placement.Pair{Entry: 1, Exit: 1}, Path: placement.Path{1, 1, 1}, Workload: 90},
		},
		DP: [][]placement.Count{
			{{Before: 3, Working: 2, ToBuffer: 1, BufferedAfter: 2, Load: 150}},
			{{Before: 1, Working: 1, BufferedAfter: 0, Load: 90}},
		},
	}
	return t, s, d
}

// A stage whose pairs' peaks pass its planned count at full capacity gets
// the instances: first back from the plan's moves to the buffer, then from
// the buffer, then new ones; the others and the loads stay; the reason
// says why.
func TestStageFloorRaises(t *testing.T) {
	topo, s, d := floorCase()
	// a→b peaks at 420: 5 at full capacity (4 at 97 would be 388 < 420).
	raised := stageFloor(topo, s, d, map[string]float64{"dp/a/b": 420, "dp/b/b": 80}, StageFloorLaunch)
	want := placement.Count{Before: 3, Working: 5, ToBuffer: 0, Reused: 1, Created: 1, BufferedAfter: 0, Load: 150}
	if got := d.DP[0][0]; got != want {
		t.Fatalf("a: %+v, want %+v", got, want)
	}
	if got := d.DP[1][0]; got.Working != 1 || got.Created != 0 {
		t.Fatalf("b (peak below the plan): %+v", got)
	}
	if len(raised) != 1 || raised[[2]int{0, 0}] != (stageRaise{load: 420}) {
		t.Fatalf("raised %v", raised)
	}
	dcs := []protocol.DCDecision{{DC: "a", Targets: []protocol.VNFTarget{{VNF: "fw", Working: 5, Reason: "plan"}}}, {DC: "b"}}
	noteStageFloor(topo, dcs, raised, nil)
	if r := dcs[0].Targets[0].Reason; !strings.Contains(r, "stage floor") || !strings.Contains(r, "420.0 pkt/s") {
		t.Fatalf("reason %q", r)
	}

	// Only the move to the buffer taken back: a peak of 280 needs 3.
	_, s, d = floorCase()
	stageFloor(topo, s, d, map[string]float64{"dp/a/b": 280}, StageFloorLaunch)
	if got := d.DP[0][0]; got.Working != 3 || got.ToBuffer != 0 || got.Reused != 0 || got.Created != 0 || got.BufferedAfter != 1 {
		t.Fatalf("take back: %+v", got)
	}
}

// No peaks, a peak the plan covers, a drained DC and the DC's headroom
// leave the counts as planned (or cap the raise).
func TestStageFloorLeaves(t *testing.T) {
	topo, s, d := floorCase()
	before := d.DP[0][0]
	for _, peak := range []map[string]float64{nil, {"dp/a/b": 100}, {"dp/x/b": 900}} {
		if r := stageFloor(topo, s, d, peak, StageFloorLaunch); r != nil || d.DP[0][0] != before {
			t.Fatalf("peak %v: raised %v, count %+v", peak, r, d.DP[0][0])
		}
	}
	s.Excluded = []bool{true, false}
	if r := stageFloor(topo, s, d, map[string]float64{"dp/a/b": 900}, StageFloorLaunch); r != nil || d.DP[0][0] != before {
		t.Fatalf("drained DC raised: %v %+v", r, d.DP[0][0])
	}
	s.Excluded = nil
	s.Headroom = [][]int{{1}, {-1}} // at most 3 + 1 working
	stageFloor(topo, s, d, map[string]float64{"dp/a/b": 900}, StageFloorLaunch)
	if got := d.DP[0][0]; got.Working != 4 || got.Reused != 1 || got.Created != 0 {
		t.Fatalf("headroom: %+v", got)
	}
}

// The hold modes: StageFloorHold leaves the plan's counts and asks the DC
// to keep the missing instances buffered (VNFTarget.KeepBuffered, with
// the reason); StageFloorHoldLaunch keeps what the plan leaves buffered
// and creates only the rest as working ones; StageFloorLaunch keeps none.
func TestStageFloorHoldModes(t *testing.T) {
	// a→b peaks at 420: 5 at full capacity, the plan has 2 working, 2
	// buffered after it (its own move and the one it had).
	topo, s, d := floorCase()
	before := d.DP[0][0]
	raised := stageFloor(topo, s, d, map[string]float64{"dp/a/b": 420}, StageFloorHold)
	if got := d.DP[0][0]; got != before {
		t.Fatalf("hold changed the counts: %+v, want %+v", got, before)
	}
	if r := raised[[2]int{0, 0}]; r.keep != 3 || r.load != 420 {
		t.Fatalf("hold: %+v, want 3 kept for 420", r)
	}
	dcs := []protocol.DCDecision{{DC: "a", Targets: []protocol.VNFTarget{{VNF: "fw", Working: 2, Reason: "plan"}}}, {DC: "b"}}
	advertised := map[string]protocol.ProvisionReport{"a": {DC: "a", Features: []string{protocol.FeatureKeepBuffered}}}
	noteStageFloor(topo, dcs, raised, advertised)
	if tg := dcs[0].Targets[0]; tg.KeepBuffered != 3 || !strings.Contains(tg.Reason, "asks to keep up to 3 buffered") {
		t.Fatalf("target %+v", tg)
	}
	if err := oldStrictTarget(dcs[0].Targets[0]); err == nil {
		t.Fatal("an old-style strict decoder accepted a target with keepBuffered")
	}
	// A DC whose step-2 report does not advertise keepBuffered (an older
	// local controller, or none reported) gets no field: its strict
	// decoder accepts the target.
	for _, prov := range []map[string]protocol.ProvisionReport{nil, {"a": {DC: "a"}}, {"a": {DC: "a", Features: []string{"other"}}}} {
		dcs = []protocol.DCDecision{{DC: "a", Targets: []protocol.VNFTarget{{VNF: "fw", Working: 2, Reason: "plan"}}}, {DC: "b"}}
		noteStageFloor(topo, dcs, raised, prov)
		tg := dcs[0].Targets[0]
		if tg.KeepBuffered != 0 || !strings.Contains(tg.Reason, "does not advertise keepBuffered") {
			t.Fatalf("not advertised %v: target %+v", prov, tg)
		}
		if err := oldStrictTarget(tg); err != nil {
			t.Fatalf("not advertised %v: an old-style strict decoder refuses the target: %v", prov, err)
		}
	}

	topo, s, d = floorCase()
	raised = stageFloor(topo, s, d, map[string]float64{"dp/a/b": 420}, StageFloorHoldLaunch)
	want := placement.Count{Before: 3, Working: 3, ToBuffer: 1, Created: 1, BufferedAfter: 2, Load: 150}
	if got := d.DP[0][0]; got != want || raised[[2]int{0, 0}].keep != 2 {
		t.Fatalf("hold+launch: %+v keep %d, want %+v keep 2", got, raised[[2]int{0, 0}].keep, want)
	}

	topo, s, d = floorCase()
	if r := stageFloor(topo, s, d, map[string]float64{"dp/a/b": 420}, StageFloorLaunch); r[[2]int{0, 0}].keep != 0 || d.DP[0][0].Working != 5 {
		t.Fatalf("launch: %+v %+v", r, d.DP[0][0])
	}
	// "" is the default, launch since session 14 (docs/reproduction.md
	// "Session 14: zoom floor margin"; hold before): the counts of launch,
	// no keep
	topo, s, d = floorCase()
	if r := stageFloor(topo, s, d, map[string]float64{"dp/a/b": 420}, ""); r[[2]int{0, 0}].keep != 0 || d.DP[0][0].Working != 5 {
		t.Fatalf("default mode: %+v %+v, want launch's 5 working and no keep", r, d.DP[0][0])
	}
	for _, m := range []string{"", StageFloorLaunch, StageFloorHold, StageFloorHoldLaunch} {
		if !ValidStageFloorMode(m) {
			t.Fatalf("%q refused", m)
		}
	}
	bad := ProfilePrior{Profile: steps{1}, Origin: time.Unix(0, 0), CallDuration: time.Minute, Window: time.Minute, Interval: time.Minute, StageFloor: 3, StageFloorMode: "keep"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `stage floor mode "keep"`) {
		t.Fatalf("mode keep accepted: %v", err)
	}
	bad.StageFloorMode, bad.StageFloorWindow = StageFloorHold, -time.Second
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "stage floor window") {
		t.Fatalf("window -1s accepted: %v", err)
	}
}

// StageFloorWindow looks for the stage floor's rise further ahead than the
// plan's window: 110 s after the start (the calls' load flat since 60 s)
// the rise at 200 s is beyond the window (80 s) but within 150 s, so the peak appears only with it; the
// plan's value is the same either way.
func TestProfilePriorStageFloorWindow(t *testing.T) {
	at := func(w time.Duration) Forecast {
		return floorPredict(t, 110*time.Second, 100, ProfilePrior{StageFloor: 3, StageFloorMode: StageFloorHold, StageFloorWindow: w})["dp/a/a"]
	}
	near, far := at(0), at(150*time.Second)
	if near.Peak != 0 {
		t.Fatalf("window 80 s: peak %v, want none (the rise is 90 s ahead)", near.Peak)
	}
	if !(far.Peak > 100) || far.Value != near.Value {
		t.Fatalf("stage floor window 150 s: %+v, want a peak above 100 and the plan %v", far, near.Value)
	}
}

// floorPredict is a one-DC profile forecaster over steps{10, 10, 20}
// (100 s steps; call duration 60 s, window 80 s, interval 50 s) with the
// stage floor fields of p, now after the start, the inner forecaster
// planning inner and the interval just observed averaging 100 on dp/a/a
// and cp/a/a: their forecasts.
func floorPredict(t *testing.T, now time.Duration, inner float64, p ProfilePrior) map[string]Forecast {
	t.Helper()
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(now)
	p.Profile, p.Origin, p.Since, p.CallDuration, p.Window, p.Interval = steps{10, 10, 20}, start, start, 60*time.Second, 80*time.Second, 50*time.Second
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	f := NewProfileForecaster(fixedForecaster{inner}, p, clk, []string{"a"})
	if err := f.Observe(map[string]float64{"dp/a/a": 100, "cp/a/a": 100}); err != nil {
		t.Fatal(err)
	}
	return f.Predict([]string{"dp/a/a", "cp/a/a"})
}

// oldStrictTarget decodes tg's JSON the way a session-12 local controller
// does (transport.DecodeStrict: unknown fields refused) into session 12's
// VNFTarget, which has no keepBuffered.
func oldStrictTarget(tg protocol.VNFTarget) error {
	b, err := json.Marshal(tg)
	if err != nil {
		return err
	}
	var old struct {
		VNF      string `json:"vnf"`
		Working  int    `json:"working"`
		Reuse    int    `json:"reuse"`
		Create   int    `json:"create"`
		ToBuffer int    `json:"toBuffer"`
		Reason   string `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&old)
}
