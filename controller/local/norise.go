package local

import (
	"fmt"
	"math"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
)

// NoRiseConfig tunes what a local controller does with a round's
// protocol.VNFTarget.NoRise and Fast flags (protocol.FeatureNoRise). Zero
// fields get DefaultNoRise's (issue #16's candidate H, docs/reproduction.md
// "Session 17: candidate H as the default").
type NoRiseConfig struct {
	// Off: the controller does not advertise protocol.FeatureNoRise, so
	// the global sends neither flag and the rules below never act
	// (session 16's behaviour).
	Off bool `json:"off" yaml:"off"`
	// Hold is how long, under NoRise, reactive scale-out of a VNF with a
	// majority overloaded below Config.ReactiveUtilization waits before
	// the overload report suffices (instead of one minute,
	// reactiveHoldMax, when it is longer; default 120 s).
	Hold time.Duration `json:"hold" yaml:"hold"`
	// Guard is, under NoRise, the load (percent of an instance's capacity)
	// at which the scale-in guard counts a DP stage's instance as full, when
	// above its LoadThreshold (default 99; in (0, 100]).
	Guard float64 `json:"guard" yaml:"guard"`
	// AnticipateUpTo: under NoRise, anticipated scale-out does not act on
	// a VNF with at most this many working instances (≥ 0; 0 takes the
	// default 2, so "never skip" cannot be set).
	AnticipateUpTo int `json:"anticipateUpTo" yaml:"anticipateUpTo"`
	// FastLoad is, under Fast, the load (percent of an instance's capacity)
	// each working instance may reach before a deferred part of the
	// round's raise is launched: the raise is launched up to ⌈(measured
	// load + rise × boot) ÷ FastLoad⌉ at once and the rest tick by tick as
	// that count grows (default 100; in (0, 100]).
	FastLoad float64 `json:"fastLoad" yaml:"fastLoad"`
}

// DefaultNoRise are NoRiseConfig's defaults: issue #16's candidate H
// (session 16's measurement env HACK_HOLD=120 HACK_GUARD=99 HACK_W=2
// HACK_JIT=100).
var DefaultNoRise = NoRiseConfig{Hold: 120 * time.Second, Guard: 99, AnticipateUpTo: 2, FastLoad: 100}

// WithDefaults validates n and fills its zero fields (DefaultNoRise's);
// errors name the field under prefix by its YAML key (prefix.hold), so a
// configuration file can check its own section (the daemon's
// policy.rise).
// Config.withDefaults applies it too ("local: config noRise").
func (n NoRiseConfig) WithDefaults(prefix string) (NoRiseConfig, error) {
	if n.Hold == 0 {
		n.Hold = DefaultNoRise.Hold
	}
	if n.Guard == 0 {
		n.Guard = DefaultNoRise.Guard
	}
	if n.AnticipateUpTo == 0 {
		n.AnticipateUpTo = DefaultNoRise.AnticipateUpTo
	}
	if n.FastLoad == 0 {
		n.FastLoad = DefaultNoRise.FastLoad
	}
	switch {
	case n.Hold < 0:
		return n, fmt.Errorf("%s.hold %v: must not be negative", prefix, n.Hold)
	case !(n.Guard > 0 && n.Guard <= 100):
		return n, fmt.Errorf("%s.guard %v: must be in (0, 100] (percent of an instance's capacity)", prefix, n.Guard)
	case n.AnticipateUpTo < 0:
		return n, fmt.Errorf("%s.anticipateUpTo %d: must not be negative", prefix, n.AnticipateUpTo)
	case !(n.FastLoad > 0 && n.FastLoad <= 100):
		return n, fmt.Errorf("%s.fastLoad %v: must be in (0, 100] (percent of an instance's capacity)", prefix, n.FastLoad)
	}
	return n, nil
}

// HoldInForce is how long reactive scale-out waits below the
// utilisation bar under NoRise: Hold, or the one-minute hold
// (reactiveHoldMax) when Hold is shorter.
func (n NoRiseConfig) HoldInForce() time.Duration { return max(reactiveHoldMax, n.Hold) }

// holdMaxLocked is how long reactive scale-out of the VNF waits below
// the utilisation bar: reactiveHoldMax, or NoRiseConfig.Hold under the
// round's NoRise when longer.
func (c *Controller) holdMaxLocked(vs *vnfState) time.Duration {
	if vs.noRise {
		return c.cfg.NoRise.HoldInForce()
	}
	return reactiveHoldMax
}

// guardThreshold is the scale-in guard's full instance for the VNF: its
// load threshold, or NoRiseConfig.Guard under the round's NoRise for a DP
// stage (byShare) when higher.
func (c *Controller) guardThreshold(vs *vnfState) float64 {
	th := vs.loadThreshold()
	if vs.noRise && vs.byShare() {
		th = max(th, c.cfg.NoRise.Guard)
	}
	return th
}

// noRiseSkipsAnticipation: under the round's NoRise, anticipated
// scale-out leaves a VNF with at most NoRiseConfig.AnticipateUpTo working
// instances alone.
func (c *Controller) noRiseSkipsAnticipation(vs *vnfState, working int) bool {
	return vs.noRise && working <= c.cfg.NoRise.AnticipateUpTo
}

// fastNeedLocked is how many working instances the VNF's last measured
// load, projected at its rise (riseLocked, 0 when falling) over one boot
// (bootLocked), needs at NoRiseConfig.FastLoad each (a very large count
// before a load was recorded, or while no working instance is measured —
// none working, or all still booting: no load can show the need, so
// nothing is deferred).
func (c *Controller) fastNeedLocked(vs *vnfState) int {
	if len(vs.loadHist) == 0 || !c.measuredLocked(vs) {
		return math.MaxInt32
	}
	last := vs.loadHist[len(vs.loadHist)-1]
	proj := last + max(0, c.riseLocked(vs))*c.bootLocked(vs).Seconds()
	return int(math.Ceil(proj/c.cfg.NoRise.FastLoad - 1e-9))
}

// deferLocked is a round's raise of the VNF to want (from working)
// under Fast: it returns the count to launch now, ⌈projected need⌉ but at
// least working and scaleInFloorLocked (the minimum, the operator's hold
// floor, one), and remembers want
// as the deferred target the tick releases (releaseDeferredLocked).
// Nothing is deferred (want is returned) unless the VNF is flagged Fast,
// is a DP stage and is raised, and the datacenter is not draining.
func (c *Controller) deferLocked(vs *vnfState, want, working int) int {
	vs.deferred = 0
	if !vs.fast || !vs.byShare() || want <= working || c.draining {
		return want
	}
	if need := max(c.fastNeedLocked(vs), working, c.scaleInFloorLocked(vs)); need < want {
		vs.deferred = want
		return need
	}
	return want
}

// releaseDeferredLocked is the tick's part of a deferred raise
// (deferLocked): once the projected need passes the target, the target
// grows to it (at most to the round's) and the instances are filled.
func (c *Controller) releaseDeferredLocked(vs *vnfState) []op {
	if vs.deferred <= vs.target {
		return nil
	}
	need := c.fastNeedLocked(vs)
	if need <= vs.target {
		return nil
	}
	vs.target = min(vs.deferred, need)
	c.raisedLocked(vs, vs.target, vs.deferredFor) // the round's raise, launched late
	return c.fillLocked(vs, ReasonProactive, fmt.Sprintf("the round's deferred target %d (fast: the projected load needs %d now)", vs.deferred, vs.target))
}

// measuredLocked: at least one working instance of the VNF is past its
// boot, active in the cloud and has reported statistics, so its measured
// load (totalLoadLocked) is a load the stage carries.
func (c *Controller) measuredLocked(vs *vnfState) bool {
	for _, in := range c.insts {
		if in.VNF == vs.cfg.Name && working(in.State) && in.State != StateBooting &&
			in.CloudState == drivers.StateActive && !in.Last.At.IsZero() {
			return true
		}
	}
	return false
}

// acquiredLocked records round's acquire at now: the time since the
// previous round's acquire is the round period (Controller.roundPeriod).
func (c *Controller) acquiredLocked(round uint64, now time.Time) {
	if !c.acquiredAt.IsZero() && round <= c.acquiredRound {
		return // a repeated or stale acquire
	}
	if !c.acquiredAt.IsZero() && round == c.acquiredRound+1 {
		c.roundPeriod = now.Sub(c.acquiredAt)
	}
	c.acquiredAt, c.acquiredRound = now, round
}

// flagsUnmeasuredMaxAge is flagsMaxAgeLocked before the controller has
// seen the acquires of two consecutive rounds (a restarted local).
const flagsUnmeasuredMaxAge = 10 * time.Minute

// flagsMaxAgeLocked is how long a round's rise flags stand without a
// later decision naming the VNF: two round periods (the interval the
// decision was sent for, and one more to spare a skipped round) plus
// MaxPause (how late the enter may come); flagsUnmeasuredMaxAge before a
// period was measured.
func (c *Controller) flagsMaxAgeLocked() time.Duration {
	if c.roundPeriod <= 0 {
		return flagsUnmeasuredMaxAge
	}
	return 2*c.roundPeriod + c.cfg.MaxPause
}

// dropRise clears the VNF's rise flags and its deferred raise (a round's
// end, a new decision, their expiry).
func (vs *vnfState) dropRise() { vs.noRise, vs.fast, vs.deferred = false, false, 0 }

// flagsExpireLocked drops the rise flags (and a deferred raise) of every
// VNF whose deciding round is older than flagsMaxAgeLocked: a global lost
// after the enter, when MaxPause never acts, leaves no standing NoRise or
// Fast (session 16's behaviour until the next round).
func (c *Controller) flagsExpireLocked(now time.Time) {
	age := c.flagsMaxAgeLocked()
	for _, name := range c.order {
		vs := c.vnfs[name]
		if (vs.noRise || vs.fast || vs.deferred > 0) && now.Sub(vs.flagsAt) > age {
			vs.dropRise()
			c.log.Warn("no round renewed the rise flags; dropped", "vnf", name, "age", now.Sub(vs.flagsAt).String(), "maxAge", age.String())
		}
	}
}
