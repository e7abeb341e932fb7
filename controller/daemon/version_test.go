package daemon

import (
	"context"
	"testing"

	"github.com/ims-orch/ims-orch/api"
)

// The state version stays put while nothing changes and moves with a
// committed command and with an instance's change, so pollers get 304s only
// for an unchanged state.
func TestStateVersionFollowsChanges(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	v0, _ := b.StateVersion(ctx)
	if v, _ := b.StateVersion(ctx); v != v0 {
		t.Fatal("version moved without a change")
	}
	p, err := b.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	p.DelayBoundMs++
	if _, err := b.PutPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	v1, _ := b.StateVersion(ctx)
	if v1 == v0 {
		t.Fatal("version unchanged after a committed policy change")
	}
	if _, err := b.Scale(ctx, api.ScaleRequest{DC: "london", VNF: "ids", Type: api.ScaleOut, NumberOfSteps: 1}); err != nil {
		t.Fatal(err)
	}
	if v2, _ := b.StateVersion(ctx); v2 == v1 {
		t.Fatal("version unchanged after a new instance")
	}
}
