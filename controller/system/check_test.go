package system

import (
	"math"
	"strings"
	"testing"
)

// The routing fraction checkers name the caller's field (and, for the
// pair, both fields and the lower bound) and accept their whole range.
func TestRoutingCheckersNameTheCallersField(t *testing.T) {
	for _, c := range []struct {
		name  string
		check func(string, float64) error
	}{{"CheckPackFlows", CheckPackFlows}, {"CheckSpreadOverload", CheckSpreadOverload}, {"CheckReactiveUtilization", CheckReactiveUtilization}, {"CheckFallingScaleIn", CheckFallingScaleIn}, {"CheckFallingScaleInSingle", CheckFallingScaleInSingle}} {
		for _, ok := range []float64{0, 0.5, 1} {
			if err := c.check("x.field", ok); err != nil {
				t.Errorf("%s(%g): %v", c.name, ok, err)
			}
		}
		for _, bad := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
			if err := c.check("x.field", bad); err == nil || !strings.HasPrefix(err.Error(), "x.field: ") {
				t.Errorf("%s(%g): error %v, want one naming x.field", c.name, bad, err)
			}
		}
	}
	for _, ok := range []float64{0.01, 0.9, 1} {
		if err := CheckTrimEmptyBusy("x.field", ok); err != nil {
			t.Errorf("CheckTrimEmptyBusy(%g): %v", ok, err)
		}
	}
	for _, bad := range []float64{0, -0.1, 1.5, math.NaN(), math.Inf(1)} {
		if err := CheckTrimEmptyBusy("x.field", bad); err == nil || !strings.HasPrefix(err.Error(), "x.field: must be in (0, 1]") {
			t.Errorf("CheckTrimEmptyBusy(%g): error %v, want one naming x.field", bad, err)
		}
	}
	for _, ok := range [][2]float64{{0, 0.85}, {0.85, 0.85}, {1, 0.85}, {0.3, 0}} {
		if err := CheckSpreadNotBelowPack("s", ok[0], "p", ok[1]); err != nil {
			t.Errorf("spread %g, pack %g: %v", ok[0], ok[1], err)
		}
	}
	err := CheckSpreadNotBelowPack("--spread-overload", 0.5, "packFlows", 0.85)
	if err == nil || !strings.HasPrefix(err.Error(), "--spread-overload: must be 0 (off) or at least packFlows 0.85") || !strings.HasSuffix(err.Error(), "got 0.5") {
		t.Fatalf("spread 0.5 below pack 0.85: error %v", err)
	}
}
