package daemon

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/instbound"
)

// Limits above the one documented bound are refused by a write and by a dry
// run, naming the field, and change nothing (issue 19: min = max = 12000
// took the cluster down).
func TestLimitsAboveTheBoundRefused(t *testing.T) {
	if api.MaxInstanceLimit != instbound.Sanity {
		t.Fatalf("api.MaxInstanceLimit %d differs from instbound.Sanity %d", api.MaxInstanceLimit, instbound.Sanity)
	}
	ctx := context.Background()
	b := newTestBackend(t)
	p, err := b.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	before := b.d.store.State()
	dc := b.d.cfg.Topology.Datacenters[0].Name
	fw := b.d.cfg.Topology.Chain[0].Name
	for _, tc := range []struct {
		limit api.Limit
		field string
		want  string
	}{
		{api.Limit{DC: dc, VNF: fw, Min: 12000, Max: 12000}, "limits[0].min", "above 252"},
		{api.Limit{VNF: fw, Max: 253}, "limits[0].max", "above 252"},
		{api.Limit{VNF: b.d.cfg.Topology.PCSCF.Name, Max: 1 << 31}, "limits[0].max", "sanity limit of 10000"},
	} {
		q := p
		q.Limits = []api.Limit{tc.limit}
		_, err := b.PutPolicy(ctx, q)
		fieldErr(t, err, tc.field)
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("put %+v: %v, want %q", tc.limit, err, tc.want)
		}
		_, err = b.DryRunPolicy(ctx, q)
		fieldErr(t, err, tc.field)
	}
	if after := b.d.store.State(); !reflect.DeepEqual(after.Policy, before.Policy) {
		t.Fatal("a refused limit changed the policy")
	}
	q := p
	q.Limits = []api.Limit{{VNF: fw, Min: 1, Max: 252}}
	if _, err := b.PutPolicy(ctx, q); err != nil {
		t.Fatalf("a limit at the bound: %v", err)
	}
}

// GET vnf-types then PUT of the same body is accepted and changes nothing.
func TestVNFTypesRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	types, err := b.VNFTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := (api.VNFTypeList{VNFTypes: types}).Validate(); err != nil {
		t.Fatalf("GET body does not validate: %v", err)
	}
	if _, err := b.SetVNFTypes(ctx, types); err != nil {
		t.Fatalf("PUT of the GET body: %v", err)
	}
	again, _ := b.VNFTypes(ctx)
	if !reflect.DeepEqual(again, types) {
		t.Fatalf("changed: %+v → %+v", types, again)
	}
}
