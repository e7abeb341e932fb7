package system

import "fmt"

// CheckPackFlows checks a PackFlows value given as field (the name the user
// wrote: the daemon's "policy.packFlows", an experiment's "packFlows", the
// simulator's "--pack-flows"): a fraction of a DP instance's capacity in
// [0, 1], 0 for least-loaded routing. The error names field, the rule and
// the value. New checks Config.PackFlows with it.
func CheckPackFlows(field string, f float64) error {
	if f >= 0 && f <= 1 {
		return nil
	}
	return fmt.Errorf("%s: must be in [0, 1] (the fraction of a DP instance's capacity new flows are packed up to; 0: least-loaded), got %g", field, f)
}
