package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// RiseConfig is policy.rise: the thresholds of the hybrid's rise flags
// (policy.riseFlags), global.RisePolicy's (when a round flags a DP stage
// noRise or fast) and local.NoRiseConfig's (what a local controller does
// under them). Restart-only; absent or 0: the default (issue #16's
// candidate H, global.DefaultRisePolicy and local.DefaultNoRise);
// riseFlags: false turns the flags off whatever this says. Checked by
// global.RisePolicy.WithDefaults and local.NoRiseConfig.WithDefaults,
// errors naming the key (policy.rise.<key>).
type RiseConfig struct {
	// Epsilon: noRise needs a stage's planned load within (1 + epsilon) ×
	// its measured load, flat so over the last rounds rounds (a fraction >
	// 0; default 0.1).
	Epsilon float64 `yaml:"epsilon"`
	// Rounds the load must have stayed flat for noRise, this one included
	// (rounds, 1–64: the replicated history keeps 64; default 3).
	Rounds int `yaml:"rounds"`
	// StepRise: noRise also needs a rise of the stage's measured load of at
	// least stepRise × one instance's capacity from one round to the next
	// within the last stepRounds rounds (instance capacities per round > 0;
	// default 0.35).
	StepRise   float64 `yaml:"stepRise"`
	StepRounds int     `yaml:"stepRounds"` // rounds, 1–63; default 12
	// FastRise: fast needs such a rise of at least fastRise × one
	// instance's capacity within the last fastRounds rounds (instance
	// capacities per round > 0; default 0.5).
	FastRise   float64 `yaml:"fastRise"`
	FastRounds int     `yaml:"fastRounds"` // rounds, 1–63; default 3
	// ProfileRise: no noRise on a stage carrying a pair whose declared
	// profile (policy.declaredProfile) foresees a rise above this ratio
	// (a ratio > 1; default 1.05); FastProfileRise the same for fast
	// (default 1.3).
	ProfileRise     float64 `yaml:"profileRise"`
	FastProfileRise float64 `yaml:"fastProfileRise"`
	// Hold: under noRise, a local controller holds a reactive scale-out
	// below policy.reactiveUtilization this long (a duration ≥ 0, e.g.
	// 120s, 2m; default 120s; the one-minute hold when shorter).
	Hold string `yaml:"hold"`
	// Guard: under noRise, the scale-in guard counts a DP stage's instance
	// full at this load (percent of an instance's capacity, in (0, 100];
	// default 99; its loadThreshold when higher).
	Guard float64 `yaml:"guard"`
	// AnticipateUpTo: under noRise, anticipated scale-out leaves a stage
	// with at most this many working instances alone (instances ≥ 0;
	// default 2, so 0 cannot be set).
	AnticipateUpTo int `yaml:"anticipateUpTo"`
	// FastLoad: under fast, the load each working instance may reach
	// before a deferred part of the round's raise is launched (percent of
	// an instance's capacity, in (0, 100]; default 100).
	FastLoad float64 `yaml:"fastLoad"`
}

// riseKey is the policy.rise key of a global.RisePolicy field (its Go
// name with a lower-case first letter).
func riseKey(field string) string {
	return "policy.rise." + strings.ToLower(field[:1]) + field[1:]
}

// risePolicies are the global's and the local controllers' rise settings
// in force: policy.rise with the defaults filled in, Off unless
// policy.riseFlags (absent: system.Defaults, on). Errors name the key.
func (p PolicyConfig) risePolicies() (global.RisePolicy, local.NoRiseConfig, error) {
	var r RiseConfig
	if p.Rise != nil {
		r = *p.Rise
	}
	off := !p.Scaling().RiseFlags
	g, err := global.RisePolicy{Epsilon: r.Epsilon, Rounds: r.Rounds, StepRise: r.StepRise, StepRounds: r.StepRounds,
		FastRise: r.FastRise, FastRounds: r.FastRounds, ProfileRise: r.ProfileRise, FastProfileRise: r.FastProfileRise}.WithDefaults(riseKey)
	if err != nil {
		return g, local.NoRiseConfig{}, err
	}
	g.Off = off
	var hold time.Duration
	if r.Hold != "" {
		if hold, err = time.ParseDuration(r.Hold); err != nil {
			return g, local.NoRiseConfig{}, fmt.Errorf("policy.rise.hold: %q is not a duration (e.g. 120s, 2m)", r.Hold)
		}
	}
	l, err := local.NoRiseConfig{Hold: hold, Guard: r.Guard, AnticipateUpTo: r.AnticipateUpTo, FastLoad: r.FastLoad}.WithDefaults("policy.rise")
	l.Off = off
	return g, l, err
}

// riseSummary is the rise policy in force for the daemon's start-up log:
// "off" (policy.riseFlags false, or a strategy other than hybrid, whose
// local controllers advertise no flags: system.strategyLocal), or every
// threshold with its default filled in and the hold in force
// (local.NoRiseConfig.HoldInForce; the setting beside it when shorter).
func (p PolicyConfig) riseSummary() string {
	g, l, err := p.risePolicies()
	switch {
	case err != nil:
		return err.Error() // refused by Normalize
	case g.Off:
		return "off (policy.riseFlags false)"
	}
	if s, err := strategy.Parse(p.Strategy); err == nil && !(s.PeriodicRounds() && s.Reactive()) {
		return "off (strategy " + s.Name() + ")"
	}
	hold := l.HoldInForce().String()
	if l.Hold != l.HoldInForce() {
		hold += fmt.Sprintf(" (policy.rise.hold %v: the one-minute hold is longer)", l.Hold)
	}
	return fmt.Sprintf("epsilon %g, rounds %d, stepRise %g, stepRounds %d, fastRise %g, fastRounds %d, profileRise %g, fastProfileRise %g, hold %s, guard %g, anticipateUpTo %d, fastLoad %g",
		g.Epsilon, g.Rounds, g.StepRise, g.StepRounds, g.FastRise, g.FastRounds, g.ProfileRise, g.FastProfileRise, hold, l.Guard, l.AnticipateUpTo, l.FastLoad)
}
