package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
)

// withPolicy is the embedded default with lines added to its policy
// section (each indented two spaces).
func withPolicy(lines string) []byte {
	return []byte(strings.Replace(string(DefaultYAML()), "  improveBudget: 1000\n", "  improveBudget: 1000\n"+lines, 1))
}

// policy.rise reaches the round engine's configuration (global.Config.Rise)
// and the local controllers' template (local.Config.NoRise); absent, the
// defaults (candidate H); riseFlags: false turns both off and keeps the
// thresholds.
func TestRiseConfigReachesGlobalAndLocal(t *testing.T) {
	c, err := ParseConfig(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if g := c.globalConfig().Rise; g != global.DefaultRisePolicy {
		t.Errorf("default config: global rise %+v, want %+v", g, global.DefaultRisePolicy)
	}
	if l := (&Daemon{cfg: c}).localTemplate().NoRise; l != local.DefaultNoRise {
		t.Errorf("default config: local noRise %+v, want %+v", l, local.DefaultNoRise)
	}
	rise := "  rise:\n    epsilon: 0.2\n    rounds: 4\n    stepRise: 0.4\n    stepRounds: 10\n    fastRise: 0.6\n    fastRounds: 2\n" +
		"    profileRise: 1.1\n    fastProfileRise: 1.5\n    hold: 90s\n    guard: 97\n    anticipateUpTo: 3\n    fastLoad: 95\n"
	wantG := global.RisePolicy{Epsilon: 0.2, Rounds: 4, StepRise: 0.4, StepRounds: 10, FastRise: 0.6, FastRounds: 2, ProfileRise: 1.1, FastProfileRise: 1.5}
	wantL := local.NoRiseConfig{Hold: 90 * time.Second, Guard: 97, AnticipateUpTo: 3, FastLoad: 95}
	for _, off := range []bool{false, true} {
		lines := rise
		if off {
			lines += "  riseFlags: false\n"
		}
		c, err := ParseConfig(withPolicy(lines))
		if err != nil {
			t.Fatalf("riseFlags off %v: %v", off, err)
		}
		g, l := wantG, wantL
		g.Off, l.Off = off, off
		if got := c.globalConfig().Rise; got != g {
			t.Errorf("riseFlags off %v: global rise %+v, want %+v", off, got, g)
		}
		if got := (&Daemon{cfg: c}).localTemplate().NoRise; got != l {
			t.Errorf("riseFlags off %v: local noRise %+v, want %+v", off, got, l)
		}
	}
	// a key left out or 0 takes its default
	c, err = ParseConfig(withPolicy("  rise: {epsilon: 0.2, rounds: 0, guard: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := global.DefaultRisePolicy
	g.Epsilon = 0.2
	if got := c.globalConfig().Rise; got != g {
		t.Errorf("partial rise: global %+v, want %+v", got, g)
	}
	if got := (&Daemon{cfg: c}).localTemplate().NoRise; got != local.DefaultNoRise {
		t.Errorf("partial rise: local %+v, want the defaults %+v", got, local.DefaultNoRise)
	}
}

// A bad policy.rise value is refused at parse time by an error naming the
// key and why (the global's and the local's own checks).
func TestRiseConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ rise, want string }{
		{"epsilon: -0.1", "policy.rise.epsilon: -0.1 must be a finite number above 0"},
		{"epsilon: .nan", "policy.rise.epsilon: NaN must be a finite number above 0"},
		{"stepRise: .inf", "policy.rise.stepRise: +Inf must be a finite number above 0"},
		{"fastRise: -1", "policy.rise.fastRise: -1 must be a finite number above 0"},
		{"profileRise: 0.9", "policy.rise.profileRise: 0.9 must be a finite number above 1"},
		{"fastProfileRise: 1", "policy.rise.fastProfileRise: 1 must be a finite number above 1"},
		{"rounds: -1", "policy.rise.rounds: -1 must be "},
		{"stepRounds: -12", "policy.rise.stepRounds: -12 must be "},
		{"fastRounds: -3", "policy.rise.fastRounds: -3 must be "},
		{"hold: 120", `policy.rise.hold: "120" is not a duration (e.g. 120s, 2m)`},
		{"hold: -5s", "policy.rise.hold -5s: must not be negative"},
		{"guard: 101", "policy.rise.guard 101: must be in (0, 100]"},
		{"guard: .nan", "policy.rise.guard NaN: must be in (0, 100]"},
		{"anticipateUpTo: -1", "policy.rise.anticipateUpTo -1: must not be negative"},
		{"fastLoad: -5", "policy.rise.fastLoad -5: must be in (0, 100]"},
		{"slope: 1", "field slope not found"},
	} {
		_, err := ParseConfig(withPolicy("  rise: {" + tc.rise + "}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rise {%s}: %v, want an error with %q", tc.rise, err, tc.want)
		}
	}
}

// The start-up log's "rise" shows the thresholds in force, the defaults
// filled in, or off.
func TestRiseSummary(t *testing.T) {
	c, err := ParseConfig(withPolicy("  rise: {stepRise: 0.4, hold: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "epsilon 0.1, rounds 3, stepRise 0.4, stepRounds 12, fastRise 0.5, fastRounds 3, profileRise 1.05, fastProfileRise 1.3, hold 2m0s, guard 99, anticipateUpTo 2, fastLoad 100"
	if got := c.Policy.riseSummary(); got != want {
		t.Errorf("rise summary %q, want %q", got, want)
	}
	c, err = ParseConfig(withPolicy("  riseFlags: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.riseSummary(); got != "off (policy.riseFlags false)" {
		t.Errorf("riseFlags false: summary %q", got)
	}
	// a hold shorter than the one-minute hold: the minute is in force
	// (revRC LOW-4: the log showed "hold 30s")
	c, err = ParseConfig(withPolicy("  rise: {hold: 30s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Policy.riseSummary(), "hold 1m0s (policy.rise.hold 30s: the one-minute hold is longer), "; !strings.Contains(got, want) {
		t.Errorf("hold 30s: summary %q, want it to contain %q", got, want)
	}
	// no flags without hybrid's rounds and reactive scale-out
	for _, s := range []string{"reactive", "proactive"} {
		c, err = ParseConfig(withPolicy(""))
		if err != nil {
			t.Fatal(err)
		}
		c.Policy.Strategy = s
		if got, want := c.Policy.riseSummary(), "off (strategy "+s+")"; got != want {
			t.Errorf("strategy %s: summary %q, want %q", s, got, want)
		}
	}
}
