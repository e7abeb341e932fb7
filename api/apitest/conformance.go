package apitest

import (
	"context"
	"errors"
	"testing"

	"github.com/ims-orch/ims-orch/api"
)

// Env is one api.Backend under the conformance suite.
type Env struct {
	Backend api.Backend
	// DC is a datacenter of the backend that may be drained.
	DC string
	// Saved is a valid policy, not named InForce and not yet stored, that
	// the backend accepts as a saved policy.
	Saved api.Policy
}

// Conformance runs the checks every api.Backend must pass (the contract of
// api.Backend's doc), each on a fresh Env: the in-memory Backend of this
// package and the daemon's backend both run it, so the API's behaviour does
// not depend on which one serves it.
func Conformance(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Run("PolicyLifecycle", func(t *testing.T) { policyLifecycle(t, newEnv(t)) })
	t.Run("DryRunValidatesAsApply", func(t *testing.T) { dryRunAsApply(t, newEnv(t)) })
	t.Run("DrainLifecycle", func(t *testing.T) { drainLifecycle(t, newEnv(t)) })
	t.Run("UnknownOperation", func(t *testing.T) {
		if _, err := newEnv(t).Backend.Operation(context.Background(), "drain-999999"); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("unknown operation: %v, want ErrNotFound", err)
		}
	})
	t.Run("ReadsAnswer", func(t *testing.T) {
		b, ctx := newEnv(t).Backend, context.Background()
		if _, err := b.State(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Decisions(ctx, api.DecisionQuery{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if ps, err := b.Policies(ctx); err != nil || len(ps) == 0 {
			t.Fatalf("policies %v %v: the policy in force is listed", ps, err)
		}
	})
}

func validation(t *testing.T, err error, field string) {
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

func policyLifecycle(t *testing.T, e Env) {
	b, ctx, p := e.Backend, context.Background(), e.Saved
	if _, err := b.Policy(ctx, p.Name); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("policy before it is written: %v", err)
	}
	if prev, err := b.PutPolicy(ctx, p); err != nil || prev != nil {
		t.Fatalf("first PutPolicy: prev %v, %v", prev, err)
	}
	got, err := b.Policy(ctx, p.Name)
	if err != nil || got.Name != p.Name || got.Predictor != p.Predictor || got.DelayBoundMs != p.DelayBoundMs || got.Strategy != p.Strategy {
		t.Fatalf("read back %+v %v, wrote %+v", got, err, p)
	}
	if prev, err := b.PutPolicy(ctx, p); err != nil || prev == nil || prev.Name != p.Name {
		t.Fatalf("second PutPolicy: prev %v, %v", prev, err)
	}
	if err := b.DeletePolicy(ctx, p.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Policy(ctx, p.Name); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("policy after delete: %v", err)
	}
	if err := b.DeletePolicy(ctx, p.Name); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if err := b.DeletePolicy(ctx, InForce); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("deleting the policy in force: %v, want ErrConflict", err)
	}
}

// A dry run refuses what the apply refuses, naming the same field.
func dryRunAsApply(t *testing.T, e Env) {
	b, ctx := e.Backend, context.Background()
	p := e.Saved
	p.Predictor = "crystal-ball"
	_, dryErr := b.DryRunPolicy(ctx, p)
	validation(t, dryErr, "predictor")
	_, putErr := b.PutPolicy(ctx, p)
	validation(t, putErr, "predictor")
}

func drainLifecycle(t *testing.T, e Env) {
	b, ctx := e.Backend, context.Background()
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: e.DC}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("undrain of a DC not drained: %v, want ErrNotFound", err)
	}
	// the DC is the URL's resource: an unknown one is 404 (openapi.yaml)
	if _, err := b.Drain(ctx, api.DrainRequest{DC: "no-such-dc"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("drain of an unknown DC: %v, want ErrNotFound", err)
	}
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: "no-such-dc"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("undrain of an unknown DC: %v, want ErrNotFound", err)
	}
	op, err := b.Drain(ctx, api.DrainRequest{DC: e.DC})
	if err != nil || op.Kind != api.OpDrain || op.ID == "" || op.Drain == nil || op.Drain.DC != e.DC {
		t.Fatalf("drain: %+v %v", op, err)
	}
	if got, err := b.Operation(ctx, op.ID); err != nil || got.ID != op.ID || got.Kind != api.OpDrain {
		t.Fatalf("operation %s: %+v %v", op.ID, got, err)
	}
	un, err := b.Undrain(ctx, api.DrainRequest{DC: e.DC})
	if err != nil || un.Kind != api.OpUndrain || un.State != api.OpCompleted || un.ID == op.ID {
		t.Fatalf("undrain: %+v %v", un, err)
	}
	if _, err := b.Undrain(ctx, api.DrainRequest{DC: e.DC}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second undrain: %v, want ErrNotFound", err)
	}
}
