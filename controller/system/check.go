package system

import (
	"fmt"

	"github.com/ims-orch/ims-orch/controller/local"
)

// CheckPackFlows checks a PackFlows value given as field (the name the user
// wrote: the daemon's "policy.packFlows", an experiment's "packFlows", the
// simulator's "--pack-flows"): a fraction of a DP instance's capacity in
// [0, 1], 0 for least-loaded routing. The error names field, the rule and
// the value. New checks Config.PackFlows with it.
func CheckPackFlows(field string, f float64) error {
	return checkFraction(field, f, "the fraction of a DP instance's capacity new flows are packed up to; 0: least-loaded")
}

// CheckSpreadOverload checks a SpreadOverload value given as field, as
// CheckPackFlows does: a fraction of a DP instance's capacity in [0, 1], 0
// for off. New checks Config.SpreadOverload with it.
func CheckSpreadOverload(field string, f float64) error {
	return checkFraction(field, f, "the fraction of a DP instance's capacity past which a new flow goes to an overloaded instance with fewer flows; 0: off")
}

// CheckReactiveUtilization checks a ReactiveUtilization value given as
// field, as CheckPackFlows does: a fraction of a DP instance's capacity in
// [0, 1], 0 for off. New checks Config.Local.ReactiveUtilization with it.
func CheckReactiveUtilization(field string, f float64) error {
	return checkFraction(field, f, "the fraction of its capacity (packets or CPU, the larger) a majority of a DP stage's working instances must carry while overloaded before reactive scale-out adds one; 0: the overload report suffices")
}

// CheckFallingScaleIn checks a FallingScaleIn value given as field, as
// CheckPackFlows does: a fraction of a DP instance's capacity in [0, 1], 0
// for off. New checks Config.Local.FallingScaleIn with it.
func CheckFallingScaleIn(field string, f float64) error {
	return checkFraction(field, f, "the fraction of their capacity the working instances of a DP stage whose load is falling may carry after a between-round scale-in; 0: off")
}

// CheckFallingScaleInSingle checks a FallingScaleInSingle value given as
// field, as CheckPackFlows does: a fraction of a DP instance's capacity in
// [0, 1], 0 for off. New checks Config.Local.FallingScaleInSingle with it.
func CheckFallingScaleInSingle(field string, f float64) error {
	return checkFraction(field, f, "the fraction of its capacity the one working instance a between-round scale-in on a falling load leaves may carry; 0: off, two stay")
}

// CheckTrimEmptyBusy checks a TrimEmptyBusy or TrimEmptySingleBusy value
// given as field: a fraction of the working instances' load threshold in
// (0, 1] (0 would keep every emptied buffered instance that has any load
// beside it). The error names field, the rule and the value.
func CheckTrimEmptyBusy(field string, f float64) error {
	if f > 0 && f <= 1 {
		return nil
	}
	return fmt.Errorf("%s: must be in (0, 1] (the fraction of their load threshold a VNF's working instances may average before TrimEmpty keeps its emptied buffered instances), got %g", field, f)
}

// checkTrimEmptyBusy checks lc's TrimEmpty busy bars as New names them
// (local.trimEmptyBusy, local.trimEmptySingleBusy); 0 is local.Config's
// default.
func checkTrimEmptyBusy(lc local.Config) error {
	for _, b := range []struct {
		field string
		f     float64
	}{{"local.trimEmptyBusy", lc.TrimEmptyBusy}, {"local.trimEmptySingleBusy", lc.TrimEmptySingleBusy}} {
		if b.f == 0 {
			continue
		}
		if err := CheckTrimEmptyBusy(b.field, b.f); err != nil {
			return err
		}
	}
	return nil
}

// checkFraction refuses f outside [0, 1] (NaN too), naming field and what
// the value means.
func checkFraction(field string, f float64, meaning string) error {
	if f >= 0 && f <= 1 {
		return nil
	}
	return fmt.Errorf("%s: must be in [0, 1] (%s), got %g", field, meaning, f)
}

// CheckSpreadNotBelowPack refuses a spread limit under the pack limit
// (0 < spread < pack), naming spreadField and packField: routing packs a
// new flow up to pack first and only then looks at the spread limit, so
// one below pack acts exactly as pack would and an operator who wrote the
// lower value would not get what they asked for. New checks Config with it.
func CheckSpreadNotBelowPack(spreadField string, spread float64, packField string, pack float64) error {
	if spread <= 0 || spread >= pack {
		return nil
	}
	return fmt.Errorf("%s: must be 0 (off) or at least %s %g (new flows are packed up to %s first, so a spread limit below it acts as %g), got %g",
		spreadField, packField, pack, packField, pack, spread)
}
