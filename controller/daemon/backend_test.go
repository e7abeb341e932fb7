package daemon

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// newBackend builds (without starting) the embedded default's node.
func newTestBackend(t *testing.T) *Backend {
	t.Helper()
	d, err := New(DefaultConfig(), Options{Clock: clock.NewVirtual(time.Unix(1_800_000_000, 0)), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d.Backend()
}

func fieldErr(t *testing.T, err error, field string) {
	t.Helper()
	var ve *api.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a ValidationError naming %s", err, field)
	}
	for _, f := range ve.Errors {
		if f.Field == field {
			return
		}
	}
	t.Fatalf("got %v, want a ValidationError naming %s", err, field)
}

func TestBackendWrites(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	p, err := b.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("policy in force: immutable fields refused", func(t *testing.T) {
		q := p
		q.IntervalSeconds = 20
		_, err := b.PutPolicy(ctx, q)
		fieldErr(t, err, "intervalSeconds")
		q = p
		q.Strategy = strategy.Reactive.Name()
		_, err = b.PutPolicy(ctx, q)
		fieldErr(t, err, "strategy")
	})
	t.Run("unknown predictor and limit vnf", func(t *testing.T) {
		q := p
		q.Name, q.Predictor = "other", "crystal"
		_, err := b.PutPolicy(ctx, q)
		fieldErr(t, err, "predictor")
		q.Predictor, q.Limits = "ar1", []api.Limit{{VNF: "dpi", Min: 1, Max: 2}}
		_, err = b.PutPolicy(ctx, q)
		fieldErr(t, err, "limits[0].vnf")
	})
	t.Run("delay bound committed", func(t *testing.T) {
		q := p
		q.DelayBoundMs = 99
		prev, err := b.PutPolicy(ctx, q)
		if err != nil || prev == nil || prev.DelayBoundMs != p.DelayBoundMs {
			t.Fatalf("%+v %v", prev, err)
		}
		if got := b.d.store.State().Policy.DelayBoundMs; got != 99 {
			t.Fatalf("committed %g", got)
		}
	})
	t.Run("saved policies", func(t *testing.T) {
		q := p
		q.Name, q.Strategy = "night", strategy.Proactive.Name()
		if prev, err := b.PutPolicy(ctx, q); err != nil || prev != nil {
			t.Fatalf("%+v %v", prev, err)
		}
		ps, _ := b.Policies(ctx)
		if len(ps) != 2 {
			t.Fatalf("%d policies", len(ps))
		}
		if err := b.DeletePolicy(ctx, "night"); err != nil {
			t.Fatal(err)
		}
		if err := b.DeletePolicy(ctx, "night"); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := b.DeletePolicy(ctx, PolicyName); !errors.Is(err, api.ErrConflict) {
			t.Fatalf("delete default: %v", err)
		}
	})
	t.Run("datacenters: labels only", func(t *testing.T) {
		dcs, _ := b.Datacenters(ctx)
		dcs[0].Region = "ap-northeast-1"
		if _, err := b.SetDatacenters(ctx, dcs); err != nil {
			t.Fatal(err)
		}
		dcs[1].Name = "paris"
		_, err := b.SetDatacenters(ctx, dcs)
		fieldErr(t, err, "datacenters[1].name")
	})
	t.Run("delays committed", func(t *testing.T) {
		m, _ := b.Delays(ctx)
		m.DelaysMs[0][1] = 30
		if _, err := b.SetDelays(ctx, m); err != nil {
			t.Fatal(err)
		}
		if got := b.d.store.State().Topology.DelayMs[0][1]; got != 30 {
			t.Fatalf("committed %g", got)
		}
		m.Datacenters[0] = "paris"
		_, err := b.SetDelays(ctx, m)
		fieldErr(t, err, "datacenters[0]")
	})
	t.Run("vnf capacity committed, thresholds refused", func(t *testing.T) {
		ts, _ := b.VNFTypes(ctx)
		ts[2].Capacity = 40000
		if _, err := b.SetVNFTypes(ctx, ts); err != nil {
			t.Fatal(err)
		}
		if got := b.d.store.State().Topology.Stages[0].Capacity; got != 40000 {
			t.Fatalf("committed %g", got)
		}
		ts[3].Thresholds.CPU = 10
		_, err := b.SetVNFTypes(ctx, ts)
		fieldErr(t, err, "vnfTypes[3].thresholds")
	})
	t.Run("chains fixed", func(t *testing.T) {
		cs, _ := b.Chains(ctx)
		if _, err := b.SetChains(ctx, cs); err != nil {
			t.Fatal(err)
		}
		cs[0].Stages = cs[0].Stages[:2]
		_, err := b.SetChains(ctx, cs)
		fieldErr(t, err, "chains")
	})
	t.Run("scale unknown datacenter", func(t *testing.T) {
		_, err := b.Scale(ctx, api.ScaleRequest{DC: "paris", VNF: "ids", Type: api.ScaleOut, NumberOfSteps: 1})
		fieldErr(t, err, "dc")
	})
}

// An operator's ScaleVnf reaches the DC's local controller: instances are
// added (or buffered), the operation is recorded, and decisions say "manual".
func TestManualScaleThroughBackend(t *testing.T) {
	d, clk, _ := simDaemon(t, nil)
	clk.Advance(15 * time.Second)
	b := d.Backend()
	ctx := context.Background()
	before := d.locals["tokyo"].Counts()["ids"].Target
	op, err := b.Scale(ctx, api.ScaleRequest{DC: "tokyo", VNF: "ids", Type: api.ScaleOut, NumberOfSteps: 2})
	if err != nil || op.State != api.OpCompleted || op.ID == "" {
		t.Fatalf("scale out: %+v %v", op, err)
	}
	if got, err := b.Operation(ctx, op.ID); err != nil || got.ID != op.ID || got.Scale.NumberOfSteps != 2 {
		t.Fatalf("operation %+v %v", got, err)
	}
	if after := d.locals["tokyo"].Counts()["ids"].Target; after != before+2 {
		t.Fatalf("ids target %d → %d, want +2", before, after)
	}
	clk.Advance(5 * time.Second)
	page, err := b.Decisions(ctx, api.DecisionQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	manual := 0
	for _, dd := range page.Decisions {
		if dd.Kind == api.DecisionManual && dd.DC == "tokyo" && dd.VNF == "ids" {
			manual++
		}
	}
	if manual < 2 {
		t.Fatalf("%d manual decisions for tokyo/ids, want ≥ 2", manual)
	}
	if _, err := b.Operation(ctx, "op-999"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("unknown operation: %v", err)
	}
}

// A dry run plans from the committed state without committing anything; a
// tighter delay bound changes the paths' instance placement. Anticipated
// scale-out is off: with it the local controllers have already scaled out
// for the ramp by 45 s, and the dry run has nothing to change. The DP
// stages are planned at 0.9 (the default is 0.97 since session 8): at 0.97
// the dry run's plan at 45 s equals the committed one (no decision).
func TestDryRun(t *testing.T) {
	off, dp := false, 0.9
	d, clk, _ := simDaemon(t, func(c *Config) { c.Policy.Anticipate, c.Policy.DPTargetUtilization = &off, &dp })
	clk.Advance(45 * time.Second)
	b := d.Backend()
	ctx := context.Background()
	p, _ := b.Policy(ctx, PolicyName)
	before := d.store.State()
	decs, err := b.DryRunPolicy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(decs) == 0 {
		t.Fatal("no decision at the ramp's peak")
	}
	for _, dd := range decs {
		if dd.Kind != api.DecisionProactive || dd.Round != int64(before.Interval) || !strings.Contains(dd.Reason, "dry run") {
			t.Fatalf("decision %+v", dd)
		}
	}
	after := d.store.State()
	if after.Interval != before.Interval || !reflect.DeepEqual(after.Policy, before.Policy) {
		t.Fatal("dry run changed the committed state")
	}
	p.DelayBoundMs = -1
	if _, err := b.DryRunPolicy(ctx, p); err == nil {
		t.Fatal("invalid policy accepted")
	}
	// a dry run validates exactly as the apply: a predictor change of the
	// policy in force is refused by both, with the same error
	p, _ = b.Policy(ctx, PolicyName)
	p.Predictor = "holt"
	_, dryErr := b.DryRunPolicy(ctx, p)
	_, putErr := b.PutPolicy(ctx, p)
	if dryErr == nil || putErr == nil || dryErr.Error() != putErr.Error() {
		t.Fatalf("dry run: %v, apply: %v (want the same refusal)", dryErr, putErr)
	}
}

// Saved policies and datacenter labels live in the replicated state: a
// second Backend over the same store (as a follower's over its FSM) reads
// what the first wrote, and nothing is kept in the Backend itself.
func TestBackendReplicatesPoliciesAndLabels(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	other := newBackend(b.d)
	p, _ := b.Policy(ctx, PolicyName)
	night := p
	night.Name, night.Tau, night.Strategy = "night", 3, strategy.Proactive.Name()
	night.Limits = []api.Limit{{DC: "london", VNF: "ids", Min: 0, Max: 2}}
	if prev, err := b.PutPolicy(ctx, night); err != nil || prev != nil {
		t.Fatalf("put night: %+v %v", prev, err)
	}
	if _, ok := b.d.store.State().Docs["policy/night"]; !ok {
		t.Fatal("saved policy not committed as document policy/night")
	}
	got, err := other.Policy(ctx, "night")
	if err != nil || !policyEqual(got, night) {
		t.Fatalf("other backend reads %+v %v, want %+v", got, err, night)
	}
	if ps, _ := other.Policies(ctx); len(ps) != 2 || ps[0].Name != PolicyName || ps[1].Name != "night" {
		t.Fatalf("policies %+v", ps)
	}
	// the same PUT again commits nothing
	before := b.d.store.State()
	if prev, err := b.PutPolicy(ctx, night); err != nil || prev == nil || !policyEqual(*prev, night) {
		t.Fatalf("repeat: %+v %v", prev, err)
	}
	if !reflect.DeepEqual(before.Docs, b.d.store.State().Docs) {
		t.Fatal("an unchanged policy was rewritten")
	}
	bad := night
	bad.Name = "a/b"
	_, err = b.PutPolicy(ctx, bad)
	fieldErr(t, err, "name")
	if err := other.DeletePolicy(ctx, "night"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Policy(ctx, "night"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("deleted policy still read: %v", err)
	}

	dcs, _ := b.Datacenters(ctx)
	dcs[2].Region, dcs[2].AZ, dcs[2].Group = "eu-west-2", "eu-west-2a", "emea"
	prev, err := b.SetDatacenters(ctx, dcs)
	if err != nil || prev[2].Region != "" || prev[2].Group != "europe" {
		t.Fatalf("set labels: prev %+v %v", prev, err)
	}
	st := b.d.store.State()
	if len(st.Docs) != 1 || st.Docs["labels/london"] == nil {
		t.Fatalf("documents %v, want labels/london only (unchanged DCs are not written)", st.Docs)
	}
	if got, _ := other.Datacenters(ctx); !reflect.DeepEqual(got, dcs) {
		t.Fatalf("other backend reads %+v, want %+v", got, dcs)
	}
}

// The limits of the policy in force are live: a PUT commits them with the
// policy (the global controller sends them with each decision); interval,
// τ, predictor and strategy stay restart-only.
func TestBackendLimitsLive(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	p, _ := b.Policy(ctx, PolicyName)
	q := p
	q.Limits = []api.Limit{{VNF: "firewall", Min: 1, Max: 5}, {DC: "london", VNF: "ids", Min: 0, Max: 2}}
	prev, err := b.PutPolicy(ctx, q)
	if err != nil || prev == nil || len(prev.Limits) != 0 {
		t.Fatalf("put limits: %+v %v", prev, err)
	}
	fp := b.d.store.State().Policy
	want := []fsm.Limit{{VNF: "firewall", Min: 1, Max: 5}, {DC: "london", VNF: "ids", Min: 0, Max: 2}}
	if !reflect.DeepEqual(fp.Limits, want) || fp.DelayBoundMs != p.DelayBoundMs {
		t.Fatalf("committed policy %+v", fp)
	}
	if got, _ := newBackend(b.d).Policy(ctx, PolicyName); !slices.Equal(got.Limits, q.Limits) {
		t.Fatalf("read back %+v", got.Limits)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*api.Policy)
		field string
	}{
		{"unknown dc", func(p *api.Policy) { p.Limits = []api.Limit{{DC: "paris", VNF: "ids", Max: 1}} }, "limits[0].dc"},
		{"unknown vnf", func(p *api.Policy) { p.Limits = []api.Limit{{VNF: "dpi", Max: 1}} }, "limits[0].vnf"},
		{"max below min", func(p *api.Policy) { p.Limits = []api.Limit{{VNF: "ids", Min: 3, Max: 2}} }, "limits[0].max"},
		{"repeated", func(p *api.Policy) { p.Limits = []api.Limit{{VNF: "ids", Max: 2}, {VNF: "ids", Max: 3}} }, "limits[1]"},
		{"tau", func(p *api.Policy) { p.Tau++ }, "tau"},
		{"predictor", func(p *api.Policy) { p.Predictor = "holt" }, "predictor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := q
			tc.edit(&r)
			before := b.d.store.State().Policy
			_, err := b.PutPolicy(ctx, r)
			fieldErr(t, err, tc.field)
			if !reflect.DeepEqual(before, b.d.store.State().Policy) {
				t.Fatal("a refused policy changed the committed one")
			}
		})
	}
	_, err = b.PutPolicy(ctx, func() api.Policy { r := q; r.IntervalSeconds++; return r }())
	if err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("interval change: %v, want the restart refusal", err)
	}
	// removing the limits commits an empty list
	if _, err := b.PutPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ls := b.d.store.State().Policy.Limits; ls != nil {
		t.Fatalf("limits after removal %+v", ls)
	}
}

// The config's limits (per-DC ones too) are in the first committed policy.
func TestConfigLimitsCommittedAtStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Policy.Limits = []api.Limit{{VNF: "ids", Min: 1, Max: 4}, {DC: "houston", VNF: "firewall", Min: 2, Max: 3}}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Clock: clock.NewVirtual(time.Unix(1_800_000_000, 0)), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	want := []fsm.Limit{{VNF: "ids", Min: 1, Max: 4}, {DC: "houston", VNF: "firewall", Min: 2, Max: 3}}
	if got := d.store.State().Policy.Limits; !reflect.DeepEqual(got, want) {
		t.Fatalf("committed limits %+v, want %+v", got, want)
	}
	if p, _ := d.Backend().Policy(context.Background(), PolicyName); !slices.Equal(p.Limits, cfg.Policy.Limits) {
		t.Fatalf("policy in force shows %+v", p.Limits)
	}
}

// runRound commits a whole round of the store's current interval with the
// given step-2 provisioning reports.
func runRound(t *testing.T, s global.Store, provisions map[string]protocol.ProvisionReport) {
	t.Helper()
	r := s.State().Interval
	for _, c := range []fsm.Command{
		fsm.RoundStarted{Round: r},
		fsm.RoundStepDone{Round: r, Step: protocol.StepPredict, Prediction: &fsm.Prediction{}},
		fsm.RoundStepDone{Round: r, Step: protocol.StepAcquire, Provisions: provisions},
		fsm.DecisionCommitted{Round: r},
		fsm.RoundStepDone{Round: r, Step: protocol.StepBroadcast},
		fsm.IntervalEntered{Round: r},
	} {
		if err := s.Apply(c); err != nil {
			t.Fatalf("round %d %T: %v", r, c, err)
		}
	}
}

// Drain commits the drained DC and records a replicated operation whose
// state is computed from the DC's last step-2 report; Undrain ends it.
func TestBackendDrain(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	other := newBackend(b.d) // reads only the replicated state
	store := b.d.store
	if _, err := b.Drain(ctx, api.DrainRequest{DC: "paris"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("drain of an unknown DC: %v, want ErrNotFound (404)", err)
	}
	for _, tc := range []struct{ name, dc string }{{"s-cscf dc", "tokyo"}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Drain(ctx, api.DrainRequest{DC: tc.dc})
			fieldErr(t, err, "dc")
			if store.State().Drained != nil {
				t.Fatal("refused drain committed")
			}
		})
	}
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: "london"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("undrain of a DC not drained: %v", err)
	}
	working := func(n, booting int) map[string]protocol.ProvisionReport {
		return map[string]protocol.ProvisionReport{"london": {DC: "london", VNFs: []protocol.VNFProvision{
			{VNF: "firewall", Working: n, Booting: booting, Buffered: 2}, {VNF: "ids", Working: n, Buffered: 1}}}}
	}
	runRound(t, store, working(2, 0))

	changes := store.Changes()
	op, err := b.Drain(ctx, api.DrainRequest{DC: "london"})
	if err != nil || op.Kind != api.OpDrain || op.State != api.OpProcessing || op.Drain == nil || op.Drain.DC != "london" {
		t.Fatalf("drain: %+v %v", op, err)
	}
	if n := store.Changes() - changes; n != 1 {
		t.Fatalf("drain committed %d commands, want one (fsm.DrainOperation)", n)
	}
	if got := store.State().Drained; !slices.Equal(got, []string{"london"}) {
		t.Fatalf("drained %q", got)
	}
	again, err := b.Drain(ctx, api.DrainRequest{DC: "london"})
	if err != nil || again.ID != op.ID {
		t.Fatalf("second drain: %+v %v, want operation %s again", again, err, op.ID)
	}
	state := func(id string) api.Operation {
		t.Helper()
		got, err := other.Operation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := state(op.ID); got.State != api.OpProcessing || !got.StartedAt.Equal(op.StartedAt) {
		t.Fatalf("before the DC empties: %+v", got)
	}
	runRound(t, store, working(0, 1)) // one instance still booting
	if got := state(op.ID); got.State != api.OpProcessing {
		t.Fatalf("with a booting instance: %+v", got)
	}
	runRound(t, store, working(0, 0)) // buffered ones remain
	if got := state(op.ID); got.State != api.OpCompleted {
		t.Fatalf("with no working or booting instance: %+v", got)
	}

	// houston: drained, then undrained before it empties
	hop, err := b.Drain(ctx, api.DrainRequest{DC: "houston"})
	if err != nil || hop.ID == op.ID {
		t.Fatalf("drain houston: %+v %v", hop, err)
	}
	if got := store.State().Drained; !slices.Equal(got, []string{"houston", "london"}) {
		t.Fatalf("drained %q", got)
	}
	un, err := b.Undrain(ctx, api.DrainRequest{DC: "houston"})
	if err != nil || un.Kind != api.OpUndrain || un.State != api.OpCompleted || un.FinishedAt == nil || un.Drain.DC != "houston" {
		t.Fatalf("undrain: %+v %v", un, err)
	}
	if got := state(hop.ID); got.State != api.OpFailed || got.Error == "" || got.FinishedAt == nil {
		t.Fatalf("drain undrained early: %+v", got)
	}
	if got := state(un.ID); got.ID != un.ID || got.State != api.OpCompleted {
		t.Fatalf("undrain operation read back: %+v", got)
	}
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: "houston"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second undrain: %v", err)
	}
	// london's completed drain keeps COMPLETED after the undrain
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: "london"}); err != nil {
		t.Fatal(err)
	}
	if got := state(op.ID); got.State != api.OpCompleted {
		t.Fatalf("completed drain after undrain: %+v", got)
	}
	if d := store.State().Drained; d != nil {
		t.Fatalf("drained %q after undraining both", d)
	}
	ids := map[string]bool{}
	for _, o := range opRecords(store.State()) {
		if ids[o.ID] {
			t.Fatalf("operation id %s reused", o.ID)
		}
		ids[o.ID] = true
	}
	if len(ids) != 4 { // drain-1, drain-2, undrain-3, undrain-4
		t.Fatalf("%d operation records, want 4: %v", len(ids), ids)
	}
}

// Operation records are bounded: the oldest go, numbers are not reused.
func TestBackendOperationRecordsPruned(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	for range maxOpRecords/2 + 3 {
		if _, err := b.Drain(ctx, api.DrainRequest{DC: "london"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Undrain(ctx, api.DrainRequest{DC: "london"}); err != nil {
			t.Fatal(err)
		}
	}
	ops := opRecords(b.d.store.State())
	if len(ops) != maxOpRecords {
		t.Fatalf("%d records, want %d", len(ops), maxOpRecords)
	}
	if first, last := fsm.OpSeq(ops[0].ID), fsm.OpSeq(ops[len(ops)-1].ID); last != maxOpRecords+6 || first != 7 {
		t.Fatalf("records %s..%s", ops[0].ID, ops[len(ops)-1].ID)
	}
	if _, err := b.Operation(ctx, "drain-1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("pruned record: %v", err)
	}
}

// A held manual scale-out (holdFor) is a floor the local controller keeps
// through later rounds, visible in its counts; RELEASE_HOLD ends it. When a
// round wanted fewer, the decisions API says "manual hold".
func TestManualHoldThroughBackend(t *testing.T) {
	d, clk, _ := simDaemon(t, nil)
	clk.Advance(15 * time.Second)
	b := d.Backend()
	ctx := context.Background()
	before := d.locals["tokyo"].Counts()["ids"].Target
	op, err := b.Scale(ctx, api.ScaleRequest{DC: "tokyo", VNF: "ids", Type: api.ScaleOut, NumberOfSteps: 2, HoldFor: "10m"})
	if err != nil || op.State != api.OpCompleted {
		t.Fatalf("held scale out: %+v %v", op, err)
	}
	h := d.locals["tokyo"].Counts()["ids"].Hold
	if h == nil || h.Floor != before+2 || !h.Until.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("hold %+v, want floor %d until now+10m", h, before+2)
	}
	clk.Advance(3 * time.Minute) // several rounds
	if got := d.locals["tokyo"].Counts()["ids"].Target; got < before+2 {
		t.Fatalf("ids target %d after rounds under a floor of %d", got, before+2)
	}
	page, err := b.Decisions(ctx, api.DecisionQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, dd := range page.Decisions {
		if dd.Kind == api.DecisionManual && strings.HasPrefix(dd.Reason, "manual hold:") && !strings.Contains(dd.Reason, "manual floor") {
			t.Fatalf("hold decision without the floor: %+v", dd)
		}
	}
	op, err = b.Scale(ctx, api.ScaleRequest{DC: "tokyo", VNF: "ids", Type: api.ReleaseHold})
	if err != nil || op.State != api.OpCompleted {
		t.Fatalf("release: %+v %v", op, err)
	}
	if h := d.locals["tokyo"].Counts()["ids"].Hold; h != nil {
		t.Fatalf("hold %+v after RELEASE_HOLD", h)
	}
}
