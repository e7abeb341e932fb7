package daemon

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/clock"
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
		q.Strategy = api.StrategyReactive
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
		q.Name, q.Strategy = "night", api.StrategyProactive
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
	decs, err := b.Decisions(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	manual := 0
	for _, dd := range decs {
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
// tighter delay bound changes the paths' instance placement.
func TestDryRun(t *testing.T) {
	d, clk, _ := simDaemon(t, nil)
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
}
