package local

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/placement/vnf"
)

// VNFConfig describes one VNF this datacenter hosts. It stays a struct of
// its own because it is the local controller's form (image, flavor,
// networks, bounds besides the Table 2 facts); NewVNFConfig and Type
// convert its Table 2 facts from and to the catalog's vnf.Type.
type VNFConfig struct {
	Name string `json:"name" yaml:"name"`
	// Capacity of one instance (transactions/s or packets/s); informational
	// here, the global controller plans with it.
	Capacity float64 `json:"capacity" yaml:"capacity"`
	// Thresholds; zero means the Table 2 defaults for a known name. The
	// overload detector marks an instance overloaded when two metrics of
	// three stay over their thresholds for OverloadWindow: its CPU (for a
	// DP stage with a capacity, its load against LoadThreshold instead),
	// Mem and PktRate. The CPU threshold is also the load rules' bar for a
	// VNF that is not a DP stage (its load is its CPU); a DP stage with a
	// capacity reads no CPU threshold.
	Thresholds vnf.Thresholds `json:"thresholds" yaml:"thresholds"`
	// LoadThreshold is a DP stage's trigger in its load's unit: the share
	// of one instance's capacity it carries (carried: the larger of PktRate
	// ÷ Capacity and CPU ÷ 100, capped at the capacity), in percent, at
	// which an instance counts as full for the rules that size the working
	// instances by the measured load: the scale-in guard (⌈Σ load ÷
	// LoadThreshold⌉), ScaleIn's bar, TrimEmpty's and the held trim's busy
	// rule, and FallingScaleIn's bar without ReactiveUtilization; and the
	// overload detector's first metric, its offered load (the same, the
	// packet share not capped: vnfState.overLoad) over LoadThreshold. Only
	// for a VNF with PinnedFlows and a capacity; the others' rules and
	// detector read CPU against the CPU threshold. 0: DefaultLoadThreshold;
	// else in (0, 100]. The CPU threshold cannot serve here: on the real
	// data plane a forwarder's CPU stays at a few percent past its capacity,
	// so read as CPU a forwarder past its capacity was never overloaded, and
	// a CPU threshold it can reach is no share of the capacity.
	LoadThreshold float64  `json:"loadThreshold,omitempty" yaml:"loadThreshold,omitempty"`
	Image         string   `json:"image" yaml:"image"`
	Flavor        string   `json:"flavor" yaml:"flavor"`
	Networks      []string `json:"networks,omitempty" yaml:"networks,omitempty"`
	// Min working instances kept at all times (launched by Start).
	Min int `json:"min" yaml:"min"`
	// Max working instances (0 = no limit); proactive targets above it are
	// capped and reported, reactive scale-out stops at it.
	Max int `json:"max" yaml:"max"`
	// Bound is the most working instances this datacenter can run and route
	// (instbound.PerDC; 0 = the sanity limit MaxWorking). Targets, limits and
	// manual scale requests above it are refused.
	Bound int `json:"bound,omitempty" yaml:"bound,omitempty"`
	// PinnedFlows: the VNF's instances carry long-lived flows pinned to
	// them (a data-plane stage: a call's media stays on its instance), so a
	// flow an overloaded instance takes loses packets for its whole life;
	// Config.Anticipate scales such a VNF out before the overload. Not an
	// operator's setting: controller/system's composition sets it for every
	// VNF (the DP stages' true, the others' false), overwriting a configured
	// value; the tags only show it in a dumped configuration.
	PinnedFlows bool `json:"pinnedFlows,omitempty" yaml:"pinnedFlows,omitempty"`
	// StatsTimeout overrides Config.StatsTimeout for this VNF's instances
	// (0: the controller's; negative: never failed for silence), e.g. CP
	// instances whose agents always report beside DP stages nobody
	// measures.
	StatsTimeout time.Duration `json:"statsTimeout,omitempty" yaml:"statsTimeout,omitempty"`
}

// DefaultLoadThreshold is VNFConfig.LoadThreshold when it is zero: 90 % of
// an instance's capacity, the share at which the simulator's DP instances
// trigger the overload by default (drivers/sim DefaultDPTrigger 0.9, Table
// 2's CPU threshold 90 at α = 1), so the load rules act there as they did
// when they read the CPU threshold.
const DefaultLoadThreshold = 90.0

// NewVNFConfig is the local controller's form of a catalog type (name,
// capacity, thresholds; the other fields zero).
func NewVNFConfig(t vnf.Type) VNFConfig {
	return VNFConfig{Name: t.Name, Capacity: t.Capacity, Thresholds: t.Thresholds}
}

// DefaultStatsTimeout is Config.StatsTimeout when it is zero.
const DefaultStatsTimeout = 3 * time.Second

// CrashBackoff is the crash-loop backoff of replacements, per slot as
// Kubernetes restarts a container: a failed working instance leaves a slot
// that its replacement fills. A failure of an instance that had not been
// active for Reset is quick; the n-th quick failure in a row of a slot holds
// its replacement back Initial·2^(n−2), at most Max: the first is replaced
// at once, the second after Initial, the third after 2·Initial, … . A slot
// whose instance stays active for Reset starts again at 0. Instances that
// fail together (a host, a switch) are different slots, each replaced at
// once. A held-back replacement counts for the VNF's target (it comes when
// its backoff ends) but not as working or booting in the step-2 report;
// reusing a buffered instance fills the slot at once and ends its backoff.
type CrashBackoff struct {
	// Initial is the wait after the second quick failure in a row (default
	// 10 s; negative: no backoff, every failure is replaced at once).
	Initial time.Duration `json:"initial" yaml:"initial"`
	// Max caps the wait (default 5 min; at least Initial).
	Max time.Duration `json:"max" yaml:"max"`
	// Reset is how long an instance must stay active to count as stable
	// (default 10 min).
	Reset time.Duration `json:"reset" yaml:"reset"`
}

// DefaultCrashBackoff are the CrashBackoff values a zero field gets
// (Kubernetes' kubelet: 10 s doubling to 5 min, reset after 10 min).
var DefaultCrashBackoff = CrashBackoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Off reports whether the backoff is disabled (Initial negative).
func (b CrashBackoff) Off() bool { return b.Initial < 0 }

// Delay is the wait before the next launch after n quick failures in a
// row (0 for n ≤ 1 or when off).
func (b CrashBackoff) Delay(n int) time.Duration {
	if n <= 1 || b.Off() {
		return 0
	}
	d := b.Initial
	for i := 2; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// WithDefaults validates b and fills its zero fields from
// DefaultCrashBackoff; errors name the field under prefix (e.g.
// "crashBackoff").
func (b CrashBackoff) WithDefaults(prefix string) (CrashBackoff, error) {
	if b.Off() {
		return CrashBackoff{Initial: b.Initial}, nil
	}
	for _, f := range []struct {
		n   string
		p   *time.Duration
		def time.Duration
	}{{"initial", &b.Initial, DefaultCrashBackoff.Initial}, {"max", &b.Max, DefaultCrashBackoff.Max}, {"reset", &b.Reset, DefaultCrashBackoff.Reset}} {
		if *f.p < 0 {
			return b, fmt.Errorf("%s.%s %v: must not be negative", prefix, f.n, *f.p)
		}
		if *f.p == 0 {
			*f.p = f.def
		}
	}
	if b.Max < b.Initial {
		return b, fmt.Errorf("%s.max %v: below %s.initial %v", prefix, b.Max, prefix, b.Initial)
	}
	return b, nil
}

// Config configures one local controller.
type Config struct {
	// DC is this controller's datacenter name.
	DC   string      `json:"dc" yaml:"dc"`
	VNFs []VNFConfig `json:"vnfs" yaml:"vnfs"`
	// Tau is how many intervals an instance stays in the buffer queue before
	// it is destroyed (default 10).
	Tau uint64 `json:"tau" yaml:"tau"`
	// OverloadWindow is how long two metrics must stay over their thresholds
	// for an instance to be overloaded (default 5 s).
	OverloadWindow time.Duration `json:"overloadWindow" yaml:"overloadWindow"`
	// StatsPeriod is how often instances report statistics (default 1 s).
	StatsPeriod time.Duration `json:"statsPeriod" yaml:"statsPeriod"`
	// StatsTimeout: an active instance that sends no statistics for this
	// long is failed (default 3 s; negative disables the watchdog).
	StatsTimeout time.Duration `json:"statsTimeout" yaml:"statsTimeout"`
	// Reactive enables reactive scale-out (paper 4.3). False gives the
	// proactive-only strategy; overload states are still tracked for routing.
	Reactive bool `json:"reactive" yaml:"reactive"`
	// PaperMajority applies the paper's majority rule literally: the majority
	// is taken over running instances only (normal or overload), so while a
	// new instance boots the same overload keeps adding instances, one per
	// ReactiveCooldown. By default booting instances count as working (they
	// will take load), which stops that overshoot. The literal rule is kept
	// to reproduce the paper's reactive-only baseline (docs/reproduction.md).
	PaperMajority bool `json:"paperMajority" yaml:"paperMajority"`
	// ScaleInGuard stops a proactive round from moving to the buffer an
	// instance that the VNF's measured load in this datacenter still needs:
	// a round keeps at least ⌈Σ load / threshold⌉ working instances (the
	// load of the active instances' last samples: a DP stage's carried
	// share against its LoadThreshold, else CPU against the CPU threshold),
	// so the remaining ones are not driven over their threshold. The forecast of a round lags a rising
	// load; without the guard the round buffers the instances that reactive
	// scale-out has just added, and they come back 5 s later, after a loss.
	ScaleInGuard bool `json:"scaleInGuard" yaml:"scaleInGuard"`
	// TrimBuffer gives the buffer a cost: when a new interval is entered,
	// buffered instances beyond BufferSpare per VNF that have spent a whole
	// interval in the buffer leave it (oldest first) and are destroyed once
	// their flows have ended, without waiting for τ. The round's plan already sizes the working instances for the
	// forecast over the interval and the boot horizon after it (global
	// BankForecaster.SetHorizon), so an instance it moved to the buffer is
	// one no forecast needs within the boot horizon; BufferSpare instances
	// stay for τ as quick capacity for forecast errors (reactive scale-out
	// reuses them without a boot). Off (the paper): every buffered instance
	// stays τ intervals.
	TrimBuffer bool `json:"trimBuffer" yaml:"trimBuffer"`
	// BufferSpare is how many buffered instances per VNF TrimBuffer keeps.
	BufferSpare int `json:"bufferSpare" yaml:"bufferSpare"`
	// TrimEmpty: a buffered instance beyond BufferSpare per VNF whose flows
	// have all ended is destroyed at once (the tick), not at the next
	// interval's trim or τ: an empty buffered VM costs and carries nothing,
	// and the round's plan did not need it.
	TrimEmpty bool `json:"trimEmpty" yaml:"trimEmpty"`
	// ScaleIn moves one instance to the buffer between rounds when the
	// VNF's measured load has stayed for a window under what one instance
	// fewer carries (scalein.go); off: only a round scales in.
	ScaleIn ScaleIn `json:"scaleIn" yaml:"scaleIn"`
	// FallingScaleIn (0: off): between rounds, a VNF with PinnedFlows whose
	// total load has been falling moves one working instance to the buffer
	// when its working load fits on one fewer at this fraction of their
	// capacity (each carrying the larger of PktRate ÷ VNFConfig.Capacity
	// and CPU ÷ 100, as ReactiveUtilization reads it), capped at
	// ReactiveUtilization, or, with ReactiveUtilization 0, at the
	// LoadThreshold ÷ 100 (the overload trigger) so the reactive rule does not
	// take the instance back at once (fallscale.go); in [0, 1].
	FallingScaleIn float64 `json:"fallingScaleIn" yaml:"fallingScaleIn"`
	// FallingScaleInSingle (0: off, the rule leaves two working instances,
	// FallingScaleInLeave): FallingScaleIn also takes a VNF from two
	// working instances to one, when the one left would carry at most this
	// fraction of its capacity (and FallingScaleIn's bar and fall hold:
	// the effective bar is min(FallingScaleInSingle, FallingScaleIn's),
	// and it does nothing with FallingScaleIn 0), and no round raised the
	// VNF here to two or more for this interval; in [0, 1] (fallscale.go).
	FallingScaleInSingle float64 `json:"fallingScaleInSingle" yaml:"fallingScaleInSingle"`
	// TrimEmptyBusy: TrimEmpty, and TrimBuffer's held trim, keep a VNF's
	// emptied buffered instances while its working instances average more
	// than this fraction of their threshold (vnfState.loadThreshold;
	// scalein.go); in (0, 1], 0: the default TrimEmptyBusy (0.9).
	TrimEmptyBusy float64 `json:"trimEmptyBusy" yaml:"trimEmptyBusy"`
	// TrimEmptySingleBusy is TrimEmptyBusy for TrimEmpty when the VNF has
	// one working instance (the held trim keeps TrimEmptyBusy); in (0, 1],
	// 0: the default TrimEmptySingleBusy (0.95).
	TrimEmptySingleBusy float64 `json:"trimEmptySingleBusy" yaml:"trimEmptySingleBusy"`
	// Anticipate: reactive scale-out of a VNF with PinnedFlows before the
	// overload, when its measured load, extrapolated at its rise over the
	// last boot this controller saw, would pass the capacity (100 % of the
	// carried share, trend.go) of every working instance. Only with Reactive; the
	// composition turns it off for a strategy without periodic rounds, so
	// reactive-only keeps the paper's rule.
	Anticipate bool `json:"anticipate" yaml:"anticipate"`
	// ReactiveUtilization > 0: reactive scale-out of a VNF with PinnedFlows
	// (a DP stage) acts only when a majority of its working instances is
	// overloaded and carries at least this fraction of its capacity: the
	// larger of the last sample's PktRate ÷ VNFConfig.Capacity and CPU ÷
	// 100, so a real instance saturated on CPU below the catalog's nominal
	// packet rate, or whose agent reports no packet rate, passes (in the
	// simulator a DP instance's CPU never exceeds its packet share). A
	// majority overloaded below the bar waits at most one minute
	// (reactiveHoldMax), then the overload report suffices; the action's
	// detail says so. An overload report alone, which the VNF may send
	// below its capacity
	// (the simulator's default model: at ρ 0.9), no longer adds an
	// instance: with rounds sizing the stage for its load, that added one
	// for a load sitting at the trigger, which the next round buffered
	// again (docs/reproduction.md "Session 9: reactive scale-out
	// utilisation"). 0: the overload report suffices (the paper). The
	// composition sets it for strategies with periodic rounds only, so
	// reactive-only keeps the paper's rule. Must be in [0, 1].
	ReactiveUtilization float64 `json:"reactiveUtilization" yaml:"reactiveUtilization"`
	// ReactiveCooldown is the least time between two reactive scale-outs of
	// one VNF (default: OverloadWindow).
	ReactiveCooldown time.Duration `json:"reactiveCooldown" yaml:"reactiveCooldown"`
	// MaxPause resumes reactive scaling if no "enter new interval" arrives
	// this long after "acquire" (a lost global controller; default 60 s).
	MaxPause time.Duration `json:"maxPause" yaml:"maxPause"`
	// RetryBackoff is how long a VNF waits after a failed launch (quota,
	// capacity) before the controller launches for it again (default 10 s).
	RetryBackoff time.Duration `json:"retryBackoff" yaml:"retryBackoff"`
	// CrashBackoff holds back the replacements of a VNF whose instances
	// keep failing soon after their launch (a bad image, a VNF that
	// crashes on start), like Kubernetes' CrashLoopBackOff; zero fields get
	// DefaultCrashBackoff's.
	CrashBackoff CrashBackoff `json:"crashBackoff" yaml:"crashBackoff"`
	// DrainTimeout bounds how long an instance that left the buffer head
	// (τ reached) may keep carrying flows before it is destroyed anyway
	// (default 10 min, a few times a long call; negative: wait for the flows
	// to end however long it takes).
	DrainTimeout time.Duration `json:"drainTimeout" yaml:"drainTimeout"`
	// BootTimeout fails an instance the cloud has not reported active this
	// long after its launch (default 10 min); it is then replaced.
	BootTimeout time.Duration `json:"bootTimeout" yaml:"bootTimeout"`
	// DriverTimeout bounds every driver call (default 2 min).
	DriverTimeout time.Duration `json:"driverTimeout" yaml:"driverTimeout"`
	// LaunchBatch bounds the launches of one VNF in flight at once (default
	// DefaultLaunchBatch); a larger shortfall is launched batch by batch.
	LaunchBatch int `json:"launchBatch" yaml:"launchBatch"`
	// History is the number of scale actions kept (default 1024).
	History int `json:"history" yaml:"history"`
	// NoRise tunes the rules a round's NoRise and Fast flags switch on
	// (norise.go; zero fields: DefaultNoRise, issue #16's candidate H).
	NoRise NoRiseConfig `json:"noRise" yaml:"noRise"`

	// Paths receives the path sets (two-stage update); nil = no-op.
	Paths PathStore `json:"-" yaml:"-"`
	// Sink receives the routable instances of a VNF whenever they change; nil = no-op.
	Sink InstanceSink `json:"-" yaml:"-"`
}

// withDefaults validates c and fills its defaults. Errors name the field.
func (c Config) withDefaults() (_ Config, err error) {
	if strings.TrimSpace(c.DC) == "" {
		return c, fmt.Errorf("local: config dc: must not be empty")
	}
	if len(c.VNFs) == 0 {
		return c, fmt.Errorf("local: config vnfs: at least one VNF is needed")
	}
	out := c
	out.VNFs = make([]VNFConfig, len(c.VNFs))
	seen := map[string]bool{}
	for i, v := range c.VNFs {
		f := fmt.Sprintf("local: config vnfs[%d]", i)
		if strings.TrimSpace(v.Name) == "" {
			return c, fmt.Errorf("%s.name: must not be empty", f)
		}
		if seen[v.Name] {
			return c, fmt.Errorf("%s.name %q: duplicate", f, v.Name)
		}
		seen[v.Name] = true
		if v.Min < 0 {
			return c, fmt.Errorf("%s.min %d: must not be negative", f, v.Min)
		}
		if v.Max < 0 {
			return c, fmt.Errorf("%s.max %d: must not be negative", f, v.Max)
		}
		if v.Max > 0 && v.Min > v.Max {
			return c, fmt.Errorf("%s.min %d: above max %d", f, v.Min, v.Max)
		}
		if b := boundOf(v); v.Min > b || v.Max > b || v.Bound < 0 {
			return c, fmt.Errorf("%s: min %d or max %d above the bound %d of working instances in one datacenter, or a negative bound", f, v.Min, v.Max, b)
		}
		if v.Capacity < 0 || math.IsNaN(v.Capacity) || math.IsInf(v.Capacity, 0) {
			return c, fmt.Errorf("%s.capacity %v: must be a finite number ≥ 0", f, v.Capacity)
		}
		if v.Thresholds == (vnf.Thresholds{}) {
			d, ok := vnf.DefaultThresholds(v.Name)
			if !ok {
				return c, fmt.Errorf("%s.thresholds: required for %q (no Table 2 default)", f, v.Name)
			}
			v.Thresholds = d
		}
		if v.LoadThreshold == 0 {
			v.LoadThreshold = DefaultLoadThreshold
		}
		if !(v.LoadThreshold > 0 && v.LoadThreshold <= 100) {
			return c, fmt.Errorf("%s.loadThreshold %v: must be in (0, 100] (percent of an instance's capacity)", f, v.LoadThreshold)
		}
		for _, m := range []struct {
			n string
			x float64
		}{{"cpu", v.Thresholds.CPU}, {"mem", v.Thresholds.Mem}, {"pktRate", v.Thresholds.PktRate}} {
			if !(m.x > 0) || math.IsInf(m.x, 0) {
				return c, fmt.Errorf("%s.thresholds.%s %v: must be a finite number > 0", f, m.n, m.x)
			}
		}
		v.Networks = append([]string(nil), v.Networks...)
		out.VNFs[i] = v
	}
	durs := []struct {
		n   string
		p   *time.Duration
		def time.Duration
	}{
		{"overloadWindow", &out.OverloadWindow, 5 * time.Second},
		{"statsPeriod", &out.StatsPeriod, time.Second},
		{"maxPause", &out.MaxPause, 60 * time.Second},
		{"retryBackoff", &out.RetryBackoff, 10 * time.Second},
		{"driverTimeout", &out.DriverTimeout, 2 * time.Minute},
		{"bootTimeout", &out.BootTimeout, 10 * time.Minute},
	}
	for _, d := range durs {
		if *d.p < 0 {
			return c, fmt.Errorf("local: config %s %v: must not be negative", d.n, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if out.CrashBackoff, err = out.CrashBackoff.WithDefaults("local: config crashBackoff"); err != nil {
		return c, err
	}
	if out.StatsTimeout == 0 {
		out.StatsTimeout = DefaultStatsTimeout
	}
	if out.DrainTimeout == 0 {
		out.DrainTimeout = 10 * time.Minute
	}
	if u := out.ReactiveUtilization; !(u >= 0 && u <= 1) {
		return c, fmt.Errorf("local: config reactiveUtilization %v: must be in [0, 1] (the fraction of its capacity a DP instance must carry for reactive scale-out; 0: the overload report suffices)", u)
	}
	if out.ReactiveCooldown < 0 {
		return c, fmt.Errorf("local: config reactiveCooldown %v: must not be negative", out.ReactiveCooldown)
	}
	if out.ReactiveCooldown == 0 {
		out.ReactiveCooldown = out.OverloadWindow
	}
	if out.Tau == 0 {
		out.Tau = 10
	}
	if out.ScaleIn, err = out.ScaleIn.withDefaults("local: config scaleIn"); err != nil {
		return c, err
	}
	if f := out.FallingScaleIn; !(f >= 0 && f <= 1) {
		return c, fmt.Errorf("local: config fallingScaleIn %v: must be in [0, 1] (0: off)", f)
	}
	if f := out.FallingScaleInSingle; !(f >= 0 && f <= 1) {
		return c, fmt.Errorf("local: config fallingScaleInSingle %v: must be in [0, 1] (0: off, two working instances stay)", f)
	}
	for _, b := range []struct {
		n   string
		p   *float64
		def float64
	}{{"trimEmptyBusy", &out.TrimEmptyBusy, TrimEmptyBusy}, {"trimEmptySingleBusy", &out.TrimEmptySingleBusy, TrimEmptySingleBusy}} {
		if *b.p == 0 {
			*b.p = b.def
		}
		if !(*b.p > 0 && *b.p <= 1) {
			return c, fmt.Errorf("local: config %s %v: must be in (0, 1] (a fraction of the working instances' load threshold; 0: %g)", b.n, *b.p, b.def)
		}
	}
	if out.BufferSpare < 0 {
		return c, fmt.Errorf("local: config bufferSpare %d: must not be negative", out.BufferSpare)
	}
	if out.LaunchBatch < 0 {
		return c, fmt.Errorf("local: config launchBatch %d: must not be negative", out.LaunchBatch)
	}
	if out.LaunchBatch == 0 {
		out.LaunchBatch = DefaultLaunchBatch
	}
	if out.History < 0 {
		return c, fmt.Errorf("local: config history %d: must not be negative", out.History)
	}
	if out.History == 0 {
		out.History = 1024
	}
	if out.NoRise, err = out.NoRise.WithDefaults("local: config noRise"); err != nil {
		return c, err
	}
	if out.Paths == nil {
		out.Paths = nopPaths{}
	}
	if out.Sink == nil {
		out.Sink = nopSink{}
	}
	return out, nil
}

// window returns how many consecutive samples make OverloadWindow.
func (c Config) window() int {
	return int((c.OverloadWindow + c.StatsPeriod - 1) / c.StatsPeriod)
}
