package simulation

import (
	"testing"
	"time"
)

// Paper 6.3.2: with interval tags no flow is lost when the paths alternate
// every interval; routing by the local current interval (no tags) loses
// the flows in flight across a boundary.
func TestIntervalConsistency(t *testing.T) {
	tagged, err := RunConsistency(ConsistencyConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	untagged, err := RunConsistency(ConsistencyConfig{Seed: 1, IgnoreTag: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tagged %+v; untagged %+v", tagged, untagged)
	if tagged.Flows < 8000 || tagged.Flows != untagged.Flows {
		t.Fatalf("flows %d / %d, want ≈ 9000 each (15 calls/s × 300 s × 2)", tagged.Flows, untagged.Flows)
	}
	if tagged.Dropped != 0 {
		t.Fatalf("tagged: %d flows dropped (%v)", tagged.Dropped, tagged.Reasons)
	}
	if untagged.Dropped == 0 || untagged.Reasons["not-on-path"] != untagged.Dropped {
		t.Fatalf("untagged: dropped %d (%v), want some, all not-on-path", untagged.Dropped, untagged.Reasons)
	}
	// no skew and no delay: nothing to lose even untagged
	if r, err := RunConsistency(ConsistencyConfig{Seed: 1, IgnoreTag: true, EnterSkew: 1, Delay01Ms: 1e-9, Delay2Ms: 1e-9}); err != nil || r.Dropped != 0 {
		t.Fatalf("instant network: %+v %v", r, err)
	}
	if _, err := RunConsistency(ConsistencyConfig{Interval: time.Second}); err == nil {
		t.Fatal("1 s interval accepted")
	}
}
