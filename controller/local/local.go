package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local/bufferq"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
)

// TickPeriod is the period of the controller's housekeeping tick (retries of
// failed launches and terminations, reactive checks, the pause safety net).
const TickPeriod = time.Second

// metrics indexes the three overload metrics.
const (
	mCPU = iota
	mMem
	mPkt
	nMetrics
)

type inst struct {
	Instance
	streak       [nMetrics]int // consecutive samples over threshold, per metric
	lastSeen     time.Time     // controller time of the last sign of life
	drainSince   time.Time     // when it started draining
	bufferedAt   time.Time     // when it last went to the buffer
	underload    bool          // it went there by a between-round scale-in (Config.ScaleIn)
	fallingAt    time.Time     // bufferedAt of its scale-in on a falling load (Config.FallingScaleIn; stale once bufferedAt moves)
	watch        clock.Timer   // stats watchdog
	watchDue     time.Time     // when watch is due
	stallGraced  bool          // the watch gave it one timeout more after firing late (onWatch)
	launching    bool          // Launch call in flight
	terminating  bool          // to be (or being) terminated
	termInFlight bool
	killSent     bool       // a kill (failed instance) was issued
	activeSince  time.Time  // when the cloud first reported it active (zero: never)
	adopted      bool       // found in the cloud at start (its Created is not a launch of ours: no bootSeen)
	counted      bool       // its sample was in the VNF's last total load (recordLoadLocked)
	replacedAt   time.Time  // when it was launched or reused as a replacement (zero: never)
	crashes      int        // quick failures in a row of the instances it replaces (crash.go)
	slot         *owed      // the owed replacement a launch in flight pays (put back if the launch fails)
	kind         ActionKind // action kind to record when the launch succeeds
	reason       Reason
	detail       string
}

type vnfState struct {
	cfg VNFConfig
	// base is the configured VNF (its Min and Max apply again when a
	// decision's limits no longer name the VNF).
	base          VNFConfig
	buf           bufferq.Queue
	target        int
	deficitReason Reason // reason of a refill the tick retries
	deficitDetail string
	backoffUntil  time.Time // launch-failure retry (Config.RetryBackoff)
	// owed are the failed working instances whose replacement is still to
	// come, oldest first, each with its crash-loop backoff (crash.go).
	owed         []owed
	lastCrash    string // the last quick failure that was not the first in a row: "ID (why)"
	lastReactive time.Time
	// heldSince is when reactive scale-out of the VNF began to wait below
	// Config.ReactiveUtilization with a majority overloaded (zero: not
	// waiting); the wait ends after reactiveHoldMax (reactiveLocked).
	heldSince time.Time
	lastSent  []RoutableInstance
	sent      bool
	// churn counts reuses of instances buffered at most ChurnIntervals
	// intervals before (a decision undone soon after it was taken).
	churn int
	hold  *Hold // operator's standing bound (manual.go)
	// keep is the round's KeepBuffered for the intervals up to keepFor
	// (keepLocked).
	keep    int
	keepFor uint64
	// raised is the working target of the last round that raised the
	// VNF's working count here (created or reused: its target above the
	// working instances when it arrived), for the intervals up to
	// raisedFor; the falling scale-in does not step below two while it is
	// at least two (roundRaisedLocked, fallscale.go).
	raised    int
	raisedFor uint64
	// noRise and fast are the last round's VNFTarget.NoRise and Fast
	// (norise.go); deferred is the round's raised target that Fast holds
	// back, released tick by tick (0: none), for interval deferredFor;
	// flagsAt is when the decision that set them was applied
	// (flagsExpireLocked).
	noRise, fast bool
	deferred     int
	deferredFor  uint64
	flagsAt      time.Time
	// lowTicks counts the consecutive ticks whose measured load fitted on
	// one working instance fewer (scalein.go).
	lowTicks int
	// fallTicks counts the consecutive ticks of a falling load that fitted
	// on one working instance fewer (fallscale.go).
	fallTicks int
	// loadHist is the VNF's total load (totalLoadLocked) at the last
	// loadHistLen ticks, oldest first, raised by what instances that
	// first counted since brought (trend.go: its rise is read by
	// trimEmptyLocked and anticipateLocked, its fall by fallingLocked).
	loadHist []float64
	// bootSeen is how long this VNF's last launched instance took from its
	// launch to active (Config.Anticipate's horizon, bootLocked).
	bootSeen time.Duration
}

// ChurnIntervals: an instance reused from the buffer within this many
// intervals of being buffered counts as churn.
const ChurnIntervals = 2

type opKind int

const (
	opLaunch opKind = iota
	opTerminate
)

type op struct {
	kind opKind
	id   string
	spec drivers.Spec
	kill bool // opTerminate of a failed instance: drivers.Killer.Kill when the driver has it
}

type hdrKey struct {
	round uint64
	step  protocol.Step
	seq   uint64
}

// Controller is one datacenter's local controller. It is safe for
// concurrent use. Driver calls happen outside its lock; the instances they
// concern are registered before the call, so the counts stay consistent.
type Controller struct {
	cfg Config
	drv drivers.Driver
	clk clock.Clock
	log *slog.Logger
	win int

	handleMu sync.Mutex // serialises Handle (a re-sent request waits for the first)

	mu       sync.Mutex
	vnfs     map[string]*vnfState
	order    []string
	insts    map[string]*inst
	interval uint64
	paused   bool
	pausedAt time.Time
	// acquiredAt and acquiredRound are the last acquire (step 2) taken;
	// roundPeriod is the time between the acquires of the last two
	// consecutive rounds seen (0 before two): the round period the rise
	// flags' age is measured in (flagsExpireLocked).
	acquiredAt    time.Time
	acquiredRound uint64
	roundPeriod   time.Duration
	seq           uint64
	history       ring
	haveRound     bool
	lastRound     uint64
	// bootSeen is how long the last instance this controller launched took
	// from its launch to active (Config.Anticipate's horizon).
	bootSeen  time.Duration
	responses map[hdrKey]protocol.Response
	tick      clock.Timer
	cancelSub func()
	started   bool
	stopped   bool
	// draining is set by a decision while an operator drains the DC: no
	// minimum, no reactive or manual scale-out.
	draining bool
}

// minLocked is the VNF's minimum working count (0 while draining).
func (c *Controller) minLocked(vs *vnfState) int {
	if c.draining {
		return 0
	}
	return vs.cfg.Min
}

// Draining reports whether the DC is being drained (the last decision said so).
func (c *Controller) Draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// New returns a local controller; call Start to adopt existing instances,
// launch the minimum ones and start the tick. log may be nil; the controller
// adds dc=cfg.DC to every line itself, so pass a logger without it.
func New(cfg Config, driver drivers.Driver, clk clock.Clock, log *slog.Logger) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if driver == nil {
		return nil, fmt.Errorf("local: driver: must not be nil")
	}
	if clk == nil {
		return nil, fmt.Errorf("local: clock: must not be nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		cfg:       cfg,
		drv:       driver,
		clk:       clk,
		log:       log.With("dc", cfg.DC),
		win:       cfg.window(),
		vnfs:      map[string]*vnfState{},
		insts:     map[string]*inst{},
		responses: map[hdrKey]protocol.Response{},
		history:   ring{buf: make([]Action, cfg.History)},
	}
	for _, v := range cfg.VNFs {
		c.vnfs[v.Name] = &vnfState{cfg: v, base: v, target: v.Min, deficitReason: ReasonProactive, deficitDetail: fmt.Sprintf("minimum %d", v.Min)}
		c.order = append(c.order, v.Name)
	}
	return c, nil
}

// Start subscribes to the driver's events, adopts the instances of ours the
// driver lists in this datacenter (active ones as normal, booting as
// booting, error ones are terminated), launches instances up to each VNF's
// Min and starts the 1 s tick. Only the List error is returned; launch
// failures are logged and retried by the tick.
func (c *Controller) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("local: %s: already started", c.cfg.DC)
	}
	c.started = true
	c.mu.Unlock()
	cancel := c.drv.Subscribe(c.onEvent)
	lctx, done := context.WithTimeout(ctx, c.cfg.DriverTimeout)
	list, err := c.drv.List(lctx, c.cfg.DC)
	done()
	if err != nil {
		cancel()
		c.mu.Lock()
		c.started = false
		c.mu.Unlock()
		return fmt.Errorf("local: %s: list instances: %w", c.cfg.DC, err)
	}
	c.mu.Lock()
	c.cancelSub = cancel
	var ops []op
	for _, di := range list {
		if _, ok := c.vnfs[di.VNF]; !ok || di.Metadata[drivers.MetaManagedBy] != "ims-orch" {
			c.log.Warn("instance not adopted", "instance", di.ID, "vnf", di.VNF, "why", "unknown VNF or not ours")
			continue
		}
		if _, dup := c.insts[di.ID]; dup {
			continue
		}
		in := &inst{Instance: Instance{
			ID: di.ID, VNF: di.VNF, State: StateBooting, CloudState: di.State, CloudID: di.CloudID,
			Address: di.Address, Created: di.Created, Why: "adopted at start",
		}, adopted: true}
		c.insts[di.ID] = in
		switch di.State {
		case drivers.StateActive:
			c.activateLocked(in)
		case drivers.StateError, drivers.StateGone:
			ops = append(ops, c.failLocked(in, "adopted in state "+string(di.State))...)
		}
	}
	for _, name := range c.order {
		vs := c.vnfs[name]
		vs.target = max(vs.target, c.countsLocked(name).Working())
		ops = append(ops, c.fillLocked(vs, ReasonProactive, fmt.Sprintf("minimum %d", vs.cfg.Min))...)
		c.syncSinkLocked(vs)
	}
	c.tick = c.clk.AfterFunc(TickPeriod, c.onTick)
	c.mu.Unlock()
	c.exec(ops)
	return nil
}

// Stop stops the tick and the watchdogs and unsubscribes from the driver.
// Instances are left running.
func (c *Controller) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	if c.tick != nil {
		c.tick.Stop()
	}
	for _, in := range c.insts {
		if in.watch != nil {
			in.watch.Stop()
			in.watch = nil
		}
	}
	for _, vs := range c.vnfs {
		for _, o := range vs.owed {
			if o.timer != nil {
				o.timer.Stop()
			}
		}
	}
	if c.cancelSub != nil {
		c.cancelSub()
	}
}

// ---- registry helpers (c.mu held) ----

func (c *Controller) record(vnf string, kind ActionKind, reason Reason, id, detail string) {
	a := Action{At: c.clk.Now(), DC: c.cfg.DC, VNF: vnf, Kind: kind, Reason: reason, InstanceID: id, Interval: c.interval, Detail: detail}
	c.history.add(a)
	c.log.Info("scale action", "vnf", vnf, "kind", string(kind), "reason", string(reason), "instance", id, "interval", c.interval, "detail", detail)
}

func working(s State) bool { return s == StateBooting || s == StateNormal || s == StateOverload }

func (c *Controller) countsLocked(vnf string) Counts {
	var n Counts
	for _, in := range c.insts {
		if in.VNF != vnf {
			continue
		}
		switch in.State {
		case StateBooting:
			n.Booting++
		case StateNormal:
			n.Normal++
		case StateOverload:
			n.Overload++
		case StateBuffered:
			n.Buffered++
		case StateDraining:
			n.Draining++
		case StateFailed:
			n.Failed++
		}
	}
	if vs, ok := c.vnfs[vnf]; ok {
		n.Target = vs.target
		n.Churn = vs.churn
		if h := c.holdLocked(vs); h != nil {
			n.Hold = h
		}
	}
	return n
}

func (c *Controller) routableLocked(vnf string) []RoutableInstance {
	var out []RoutableInstance
	for _, in := range c.insts {
		if in.VNF == vnf && (in.State == StateNormal || in.State == StateOverload) && in.CloudState == drivers.StateActive && !in.terminating {
			out = append(out, RoutableInstance{ID: in.ID, Address: in.Address, Overloaded: in.State == StateOverload})
		}
	}
	slices.SortFunc(out, func(a, b RoutableInstance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (c *Controller) syncSinkLocked(vs *vnfState) {
	r := c.routableLocked(vs.cfg.Name)
	if vs.sent && slices.Equal(r, vs.lastSent) {
		return
	}
	vs.sent, vs.lastSent = true, r
	c.cfg.Sink.SetInstances(vs.cfg.Name, slices.Clone(r))
}

func (c *Controller) activateLocked(in *inst) {
	in.CloudState = drivers.StateActive
	if in.activeSince.IsZero() {
		in.activeSince = c.clk.Now()
		if !in.Created.IsZero() && !in.adopted {
			c.bootSeen = in.activeSince.Sub(in.Created)
			if vs := c.vnfs[in.VNF]; vs != nil {
				vs.bootSeen = c.bootSeen
			}
		}
	}
	in.lastSeen = c.clk.Now()
	if in.State == StateBooting {
		in.State = StateNormal
	}
	c.armWatchLocked(in, c.statsTimeoutLocked(in.VNF))
	c.syncSinkLocked(c.vnfs[in.VNF])
}

// watchStallSlack is how late a statistics watch may fire before the
// controller counts itself as not having run (onWatch); a Go timer on a
// loaded host fires within tens of ms.
const watchStallSlack = 200 * time.Millisecond

// statsTimeoutLocked is how long an instance of vnf may stay silent.
func (c *Controller) statsTimeoutLocked(vnf string) time.Duration {
	if vs := c.vnfs[vnf]; vs != nil && vs.cfg.StatsTimeout != 0 {
		return vs.cfg.StatsTimeout
	}
	return c.cfg.StatsTimeout
}

func (c *Controller) armWatchLocked(in *inst, d time.Duration) {
	if c.statsTimeoutLocked(in.VNF) < 0 || in.watch != nil || c.stopped {
		return
	}
	in.watchDue = c.clk.Now().Add(d)
	in.watch = c.clk.AfterFunc(d, func() { c.onWatch(in) })
}

func (c *Controller) stopWatchLocked(in *inst) {
	if in.watch != nil {
		in.watch.Stop()
		in.watch = nil
	}
}

// newLaunchLocked registers a booting instance and returns its launch op.
func (c *Controller) newLaunchLocked(vs *vnfState, kind ActionKind, reason Reason, detail string) op {
	var id string
	for {
		c.seq++
		id = fmt.Sprintf("%s-%s-%d", c.cfg.DC, vs.cfg.Name, c.seq)
		if _, used := c.insts[id]; !used {
			break
		}
	}
	in := &inst{
		Instance:  Instance{ID: id, VNF: vs.cfg.Name, State: StateBooting, Created: c.clk.Now(), Why: string(reason) + ": " + detail},
		launching: true, kind: kind, reason: reason, detail: detail,
	}
	c.insts[id] = in
	spec := drivers.Spec{
		ID: id, DC: c.cfg.DC, VNF: vs.cfg.Name, Image: vs.cfg.Image, Flavor: vs.cfg.Flavor,
		Networks: slices.Clone(vs.cfg.Networks),
		Metadata: map[string]string{"ims-orch.reason": string(reason)},
	}
	return op{kind: opLaunch, id: id, spec: spec}
}

// fillLocked brings the VNF's working count up to its target: reuse from
// the buffer tail first (instant), then launch (unless in launch backoff).
func (c *Controller) fillLocked(vs *vnfState, reason Reason, detail string) []op {
	n := vs.target - c.countsLocked(vs.cfg.Name).Working()
	if n <= 0 {
		for _, o := range vs.owed {
			if o.timer != nil {
				o.timer.Stop() // a held-back replacement no longer owed: no launch at its end
			}
		}
		vs.owed = nil // nothing is missing any more (e.g. the target went down)
		return nil
	}
	var ops []op
	for ; n > 0; n-- {
		e, ok := vs.buf.PopTail()
		if !ok {
			break
		}
		in := c.insts[e.ID]
		if in == nil {
			n++ // a stale entry; try the next one
			continue
		}
		if in.CloudState == drivers.StateActive {
			in.State = StateNormal
		} else {
			in.State = StateBooting
		}
		in.BufferedIn = 0
		kind, r, why := KindReuse, reason, detail
		if o, ok := c.payOwedLocked(vs, true); ok {
			// a known-good instance takes the failed one's place: its slot
			// starts afresh, a backoff holding it back ends
			kind, r, why = KindReplace, ReasonReplacement, fmt.Sprintf("replaces %s (%s)", o.failed, o.why)
			in.replacedAt, in.crashes = c.clk.Now(), 0
		} else if r == ReasonReplacement {
			kind = KindReplace
		}
		in.Why = string(r) + ": " + why
		d := fmt.Sprintf("%s; from buffer tail (buffered in interval %d)", why, e.Interval)
		if c.interval <= e.Interval+ChurnIntervals {
			vs.churn++
			d += fmt.Sprintf("; churn: buffered %d interval(s) ago", c.interval-min(e.Interval, c.interval))
		}
		c.record(vs.cfg.Name, kind, r, in.ID, d)
	}
	// replacements a crash loop holds back count as there: their backoff's
	// timer launches them
	if n -= c.heldLocked(vs); n > 0 && c.clk.Now().Before(vs.backoffUntil) {
		vs.deficitReason, vs.deficitDetail = reason, detail
		c.syncSinkLocked(vs)
		return ops
	}
	for n = min(n, c.launchRoomLocked(vs.cfg.Name)); n > 0; n-- {
		kind, r, d := KindCreate, reason, detail+"; launched"
		o, paid := c.payOwedLocked(vs, false)
		if paid {
			r, d = ReasonReplacement, fmt.Sprintf("replaces %s (%s); launched", o.failed, o.why)
			if !o.until.IsZero() {
				d += fmt.Sprintf(" after the crash-loop backoff (%d quick failures in a row)", o.n)
			}
		}
		if r == ReasonReplacement {
			kind = KindReplace
		}
		l := c.newLaunchLocked(vs, kind, r, d)
		if paid {
			in := c.insts[l.id]
			o.until, o.timer = time.Time{}, nil
			in.replacedAt, in.crashes, in.slot = c.clk.Now(), o.n, &o
			l.spec.Replaces = o.failed
		}
		ops = append(ops, l)
	}
	vs.deficitReason, vs.deficitDetail = reason, detail
	c.syncSinkLocked(vs)
	return ops
}

// failLocked marks an instance failed: out of routing and the buffer at
// once, terminated, and replaced if it was working.
func (c *Controller) failLocked(in *inst, why string) []op {
	if in.State == StateFailed {
		return nil
	}
	prev := in.State
	vs := c.vnfs[in.VNF]
	in.State, in.FailReason = StateFailed, why
	c.stopWatchLocked(in)
	if prev == StateBuffered {
		vs.buf.Remove(in.ID)
	}
	c.log.Warn("instance failed", "vnf", in.VNF, "instance", in.ID, "was", string(prev), "why", why)
	c.record(in.VNF, KindDestroy, ReasonFailure, in.ID, why)
	c.syncSinkLocked(vs)
	// The replacement first, so its launch never waits for the kill (and the
	// kill is a kill: a failed instance is not drained). Its launch names the
	// failed instance, so the driver may hand it its address. A quick failure
	// in a row may hold the launch back (crash loop); the tick and the
	// backoff's timer launch it when the backoff ends.
	var ops []op
	if working(prev) {
		c.oweLocked(vs, in, why)
		ops = c.fillLocked(vs, ReasonReplacement, fmt.Sprintf("replaces %s (%s)", in.ID, why))
	}
	return append(ops, c.terminateLocked(in)...)
}

// terminateLocked terminates an instance, or kills it if it failed.
func (c *Controller) terminateLocked(in *inst) []op {
	in.terminating = true
	c.stopWatchLocked(in)
	kill := in.State == StateFailed
	if in.launching {
		return nil // terminated when the launch returns
	}
	if in.termInFlight && !(kill && !in.killSent) {
		return nil // already going (a drain that meets a failure is cut short by a kill)
	}
	in.termInFlight = true
	in.killSent = in.killSent || kill
	return []op{{kind: opTerminate, id: in.ID, kill: kill}}
}

// destroyLocked destroys an idle instance that left the buffer (expiry).
func (c *Controller) destroyLocked(in *inst, detail string) []op {
	if in.terminating {
		return nil
	}
	c.record(in.VNF, KindDestroy, ReasonExpiry, in.ID, detail)
	return c.terminateLocked(in)
}

// reactiveHoldMax bounds how long Config.ReactiveUtilization holds back
// the reactive scale-out of a VNF whose working instances stay overloaded
// by a majority below the bar: then the overload report suffices again.
// The bar is there to let the rounds size a stage whose load sits at the
// trigger, so the wait covers at least one round (intervalSeconds 50 by
// default; the local controller does not see it); an instance that stays
// overloaded for a minute without reaching the bar (a real forwarder
// overloaded on a resource the bar does not see) loses packets that
// nothing else would stop: anticipation acts only on a rise. One minute is
// revC's prototype, measured to move one simulated run of 51 by 2 VM-s
// (docs/reproduction.md "Session 9: reactive scale-out utilisation",
// "Review fix").
const reactiveHoldMax = time.Minute

// reactiveLocked adds one instance when a majority of the VNF's working
// instances is overloaded (paper 4.3), at most once per ReactiveCooldown;
// with Config.ReactiveUtilization (a DP stage), when a majority of the
// working instances is overloaded and carries at least that fraction of
// its capacity (fullLocked), or a majority has stayed overloaded below
// the bar for reactiveHoldMax.
func (c *Controller) reactiveLocked(vs *vnfState) []op {
	if !c.cfg.Reactive || c.paused || c.draining {
		return nil
	}
	n := c.countsLocked(vs.cfg.Name)
	w := n.Working()
	base := w // instances the majority is taken over
	if c.cfg.PaperMajority {
		base = n.Normal + n.Overload
	}
	if base == 0 || n.Overload*2 <= base {
		vs.heldSince = time.Time{} // the overload cleared: a later one waits anew
		return nil
	}
	now := c.clk.Now()
	detail := fmt.Sprintf("%d of %d working instances overloaded", n.Overload, base)
	held := time.Duration(0)
	if u, ok := c.reactiveUtilLocked(vs); ok {
		full, holdMax := c.fullLocked(vs, u), c.holdMaxLocked(vs)
		if full*2 <= base {
			if vs.heldSince.IsZero() {
				vs.heldSince = now
			}
			if held = now.Sub(vs.heldSince); held < holdMax {
				return nil // overloaded below the bar: the tick looks again
			}
		}
		detail += fmt.Sprintf(", %d at ≥ %.0f%% of capacity", full, 100*u)
		if held > 0 {
			detail += fmt.Sprintf(" (held below the bar for %v, released after %v)", held, holdMax)
		}
	}
	if c.coolingLocked(vs, now) {
		return nil
	}
	if held > 0 {
		c.log.Warn("reactive scale-out held below the utilisation bar released", "vnf", vs.cfg.Name,
			"overloaded", n.Overload, "working", base, "heldFor", held, "bar", c.cfg.ReactiveUtilization)
	}
	vs.heldSince = time.Time{}
	vs.lastReactive = now // a skipped scale-out starts the cool-down too
	ops, skipped := c.scaleOutLocked(vs, w, detail)
	if skipped != "" {
		c.log.Warn("reactive scale-out skipped", "vnf", vs.cfg.Name, "why", skipped)
	}
	return ops
}

// reactiveUtilLocked is Config.ReactiveUtilization for the VNF: on for a
// VNF with PinnedFlows and a capacity, else not (the overload report
// suffices).
func (c *Controller) reactiveUtilLocked(vs *vnfState) (float64, bool) {
	u := c.cfg.ReactiveUtilization
	return u, u > 0 && vs.byShare()
}

// fullLocked counts the VNF's overloaded instances whose last sample
// carried at least u of its capacity (Config.ReactiveUtilization; carried:
// the larger of the packet share, PktRate ÷ VNFConfig.Capacity, and the
// CPU share, CPU being percent of the instance's entitlement). The CPU
// share lets a real instance that saturates its core below the catalog's
// nominal packet rate, or whose agent reports no packet rate, pass the
// bar; in the simulator a DP instance's CPU is min(100, 100·α·ρ) with
// α ≤ 1 by default, never above the packet share.
func (c *Controller) fullLocked(vs *vnfState, u float64) int {
	n := 0
	for _, in := range c.insts {
		if in.VNF != vs.cfg.Name || in.State != StateOverload {
			continue
		}
		if share, _ := carried(in.Last, vs.cfg.Capacity); share >= u {
			n++
		}
	}
	return n
}

// carried is what a sample says an instance carries: the larger of its
// CPU share (CPU ÷ 100, CPU being percent of its entitlement) and its
// packet share (PktRate ÷ capacity) capped at 1, as a share of its
// capacity and in percent of it. Every rule that reads a DP stage's load
// reads it: as a share, the reactive bar (fullLocked) and FallingScaleIn's
// working load (workingCarriedLocked); in percent (vnfState.load), the
// load history of anticipation, TrimEmpty and FallingScaleIn (trend.go)
// and the working load of anticipation, TrimEmpty's busy rule, ScaleIn and
// ScaleInGuard.
//
// The cap: packets offered beyond an instance's capacity are not carried
// (a forwarder's PktRate is what the switch sent into its port, dropped or
// not), the CPU share is capped at 1 too (a real forwarder's sample,
// dataplane.InstanceSample, is not: a second thread or a tick's jitter
// passes 100 %), and with pinned flows an
// overloaded instance's excess cannot move to another instance, so in a Σ
// compared with the working instances' capacity it counts as one full
// instance; a bar at or below the capacity (ReactiveUtilization ≤ 1)
// reads the same either way. Session 10's FallingScaleIn history capped
// the packet share, the reactive bar did not; now both do.
//
// pct is max(CPU, 100 × the capped packet share), not 100 × share: in the
// simulator's default model (CPU = min(100, 100·ρ), packet share ρ) that
// is the CPU to the bit, and share is what the reactive bar and
// FallingScaleIn compared before, so every rule acts there as it did;
// 100 × share differs from it in the last bit, and a Σ of discrete flows'
// shares sits exactly on a bar often enough to move a sweep.
func carried(s Stats, capacity float64) (share, pct float64) {
	p, cpu := min(1, s.PktRate/capacity), min(100, s.CPU)
	return max(cpu/100, p), max(cpu, 100*p)
}

// coolingLocked: a reactive or anticipated scale-out of the VNF came less
// than ReactiveCooldown before now.
func (c *Controller) coolingLocked(vs *vnfState, now time.Time) bool {
	return !vs.lastReactive.IsZero() && now.Sub(vs.lastReactive) < c.cfg.ReactiveCooldown
}

// scaleOutLocked is the tail of a reactive or anticipated scale-out (the
// caller checked the cool-down): one working instance more than the w
// working now, from the buffer tail first (fillLocked), unless the VNF is
// at its Max or under the operator's ceiling; then it returns why not and
// changes nothing. A scale-out starts the cool-down (lastReactive).
func (c *Controller) scaleOutLocked(vs *vnfState, w int, detail string) ([]op, string) {
	if vs.cfg.Max > 0 && w >= vs.cfg.Max {
		return nil, fmt.Sprintf("at max %d", vs.cfg.Max)
	}
	if h := c.holdLocked(vs); h != nil && h.Ceiling > 0 && w >= h.Ceiling {
		return nil, "at the manual ceiling " + h.describe()
	}
	vs.lastReactive = c.clk.Now()
	vs.target = max(vs.target, w) + 1
	return c.fillLocked(vs, ReasonReactive, detail), ""
}

// ---- inputs: driver events, statistics, timers ----

func (c *Controller) onEvent(ev drivers.Event) {
	if ev.DC != c.cfg.DC {
		return
	}
	c.mu.Lock()
	if ev.State == drivers.StateGone && !c.stopped {
		ForgetIn(c.cfg.Sink, ev.VNF, ev.ID) // first: the sink sees it gone before it leaves routing
	}
	in := c.insts[ev.ID]
	if in == nil || c.stopped {
		c.mu.Unlock()
		return
	}
	var ops []op
	switch ev.State {
	case drivers.StateBooting:
		if in.CloudState == "" {
			in.CloudState = drivers.StateBooting
		}
	case drivers.StateActive:
		if in.State != StateFailed && !in.terminating && in.CloudState != drivers.StateActive {
			c.activateLocked(in)
		}
	case drivers.StateError:
		in.CloudState = drivers.StateError
		if !in.terminating {
			ops = c.failLocked(in, "driver reported error: "+ev.Reason)
		}
	case drivers.StateGone:
		in.CloudState = drivers.StateGone
		if in.terminating && !in.launching {
			c.stopWatchLocked(in)
			delete(c.insts, in.ID)
		} else {
			ops = c.failLocked(in, "driver reported gone: "+ev.Reason)
		}
	}
	c.mu.Unlock()
	c.dispatch(ops)
}

// Vanished tells the controller that the cloud no longer has (or has in
// ERROR) an instance it launched, found by a reconciliation of the cloud
// rather than a driver event: the instance fails and is replaced like on a
// gone or error event. It returns false, doing nothing, for an unknown,
// already failed or terminating instance and for one whose launch has not
// returned yet (the cloud may not list it yet).
func (c *Controller) Vanished(id, why string) bool {
	c.mu.Lock()
	in := c.insts[id]
	if in == nil || c.stopped || in.State == StateFailed || in.terminating || in.launching || in.CloudState == "" {
		c.mu.Unlock()
		return false
	}
	ForgetIn(c.cfg.Sink, in.VNF, id) // as a gone event: the sink sees it gone before it leaves routing
	ops := c.failLocked(in, why)
	c.mu.Unlock()
	c.dispatch(ops)
	return true
}

// ReportStats takes one statistics report of an instance. Unknown instances
// get an error wrapping ErrUnknownInstance; reports older than the last one
// are ignored. Overload transitions happen here; a reactive scale-out they
// trigger is carried out through the clock.
func (c *Controller) ReportStats(id string, s Stats) error {
	for _, m := range []struct {
		n string
		v float64
	}{{"cpu", s.CPU}, {"mem", s.Mem}, {"pktRate", s.PktRate}} {
		if m.v < 0 || math.IsNaN(m.v) || math.IsInf(m.v, 0) {
			return fmt.Errorf("local: stats of %s: %s %v: must be a finite number ≥ 0", id, m.n, m.v)
		}
	}
	if s.Flows < 0 {
		return fmt.Errorf("local: stats of %s: flows %d: must not be negative", id, s.Flows)
	}
	c.mu.Lock()
	in := c.insts[id]
	if in == nil {
		c.mu.Unlock()
		return fmt.Errorf("local: stats of %q: %w in %s", id, ErrUnknownInstance, c.cfg.DC)
	}
	if in.State == StateFailed {
		c.mu.Unlock()
		return fmt.Errorf("local: stats of %s: instance failed (%s)", id, in.FailReason)
	}
	now := c.clk.Now()
	if s.At.IsZero() {
		s.At = now
	}
	if !in.Last.At.IsZero() && !s.At.After(in.Last.At) {
		c.mu.Unlock()
		return nil
	}
	if !in.Last.At.IsZero() && s.At.Sub(in.Last.At) > c.cfg.StatsPeriod*3/2 {
		in.streak = [nMetrics]int{} // a missing sample breaks "consecutive"
	}
	in.Last = s
	in.lastSeen = now
	vs := c.vnfs[in.VNF]
	thr := vs.cfg.Thresholds
	for i, over := range [nMetrics]bool{vs.overLoad(s), s.Mem > thr.Mem, s.PktRate > thr.PktRate} {
		if over {
			in.streak[i]++
		} else {
			in.streak[i] = 0
		}
	}
	var ops []op
	if in.State == StateNormal || in.State == StateOverload {
		next := StateNormal
		if c.overMetrics(in) >= 2 {
			next = StateOverload
		}
		if next != in.State {
			in.State = next
			c.log.Info("instance state", "vnf", in.VNF, "instance", in.ID, "state", string(next),
				"cpu", s.CPU, "mem", s.Mem, "pktRate", s.PktRate)
			c.syncSinkLocked(vs)
			if next == StateOverload {
				ops = c.reactiveLocked(vs)
			}
		}
	}
	if in.State == StateDraining && s.Flows == 0 && !s.FlowsUnknown {
		ops = append(ops, c.destroyLocked(in, fmt.Sprintf("buffered in interval %d, flows reached 0", in.BufferedIn))...)
	}
	c.mu.Unlock()
	c.dispatch(ops)
	return nil
}

// overLoad reports whether a sample is over the overload detector's first
// metric (mCPU): for a DP stage with a capacity (byShare) its offered load,
// max(CPU, 100 × PktRate ÷ Capacity) in percent of one instance's
// capacity, over its LoadThreshold; for the other VNFs (the CSCFs) its CPU
// over the CPU threshold. On the real data plane a forwarder's CPU stays at
// a few percent past its capacity (docs/dataplane.md "Capacity"), so read
// as CPU the metric never passed a threshold the simulator's model reaches
// and an instance past its capacity was never overloaded: the reactive rule
// could not act there. The packet term is not capped at the capacity as in
// carried: the detector asks whether an instance is offered more than its
// trigger, which a LoadThreshold of 100 (--overload-at-capacity) puts at
// the capacity itself. In the simulator's default model (CPU = min(100,
// 100·ρ), packet share ρ, LoadThreshold 90 = the CPU threshold) it is the
// CPU comparison to the bit: 100·ρ > 90 exactly when min(100, 100·ρ) > 90.
func (vs *vnfState) overLoad(s Stats) bool {
	if !vs.byShare() {
		return s.CPU > vs.cfg.Thresholds.CPU
	}
	return max(s.CPU, 100*(s.PktRate/vs.cfg.Capacity)) > vs.cfg.LoadThreshold
}

func (c *Controller) overMetrics(in *inst) int {
	n := 0
	for _, s := range in.streak {
		if s >= c.win {
			n++
		}
	}
	return n
}

func (c *Controller) onWatch(in *inst) {
	c.mu.Lock()
	in.watch = nil
	if c.stopped || c.insts[in.ID] != in || in.State == StateFailed || in.terminating {
		c.mu.Unlock()
		return
	}
	now := c.clk.Now()
	idle := now.Sub(in.lastSeen)
	var ops []op
	to := c.statsTimeoutLocked(in.VNF)
	switch late := now.Sub(in.watchDue); {
	case idle < to:
		in.stallGraced = false
		c.armWatchLocked(in, to-idle)
	case late > watchStallSlack && !in.stallGraced:
		// The watch fires late only when this controller did not run (a
		// process starved of CPU): the statistics that arrived meanwhile
		// wait to be handled, so the silence may be the observer's (then
		// late = idle − to exactly). It looks again one timeout later,
		// once: a dead instance is failed one timeout later.
		in.stallGraced = true
		c.log.Warn("statistics watch fired late: this controller was not running; looking again before failing the instance",
			"instance", in.ID, "late", late.String(), "silent", idle.String())
		c.armWatchLocked(in, to)
	default:
		ops = c.failLocked(in, fmt.Sprintf("no statistics for %v", idle))
	}
	c.mu.Unlock()
	c.exec(ops)
}

func (c *Controller) onTick() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	now := c.clk.Now()
	if c.paused && now.Sub(c.pausedAt) >= c.cfg.MaxPause {
		c.paused = false
		// the round's hold ends with the interval it was sent for; without
		// the enter the interval never ends here, so it ends now (the
		// tick-driven trims would otherwise keep the instances for good)
		for _, vs := range c.vnfs {
			vs.keep, vs.raised = 0, 0
			vs.dropRise() // the round's flags end with it too
		}
		c.log.Warn("reactive scaling resumed without enter-interval; the round's buffer keep and rise flags dropped", "pausedFor", now.Sub(c.pausedAt).String())
	}
	c.flagsExpireLocked(now)
	var ops []op
	for _, name := range c.order {
		vs := c.vnfs[name]
		// Retry a refill that fell short (launch failure, backoff), except a
		// reactive one while reactive scaling is paused.
		if !(c.paused && vs.deficitReason == ReasonReactive) {
			ops = append(ops, c.fillLocked(vs, vs.deficitReason, vs.deficitDetail)...)
		}
		ops = append(ops, c.reactiveLocked(vs)...)
		c.recordLoadLocked(vs)
		ops = append(ops, c.anticipateLocked(vs)...)
		ops = append(ops, c.releaseDeferredLocked(vs)...)
		c.scaleInLocked(vs)
		c.fallingScaleInLocked(vs)
		ops = append(ops, c.trimEmptyLocked(vs)...)
		ops = append(ops, c.fallingTrimLocked(vs)...)
	}
	c.crashResetLocked()
	ids := make([]string, 0, len(c.insts))
	for id := range c.insts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		in := c.insts[id]
		switch {
		case in.terminating && !in.launching && !in.termInFlight:
			ops = append(ops, c.terminateLocked(in)...)
		case in.State == StateDraining && !in.terminating && in.Last.Flows == 0 && !in.Last.FlowsUnknown:
			ops = append(ops, c.destroyLocked(in, fmt.Sprintf("buffered in interval %d, no flows", in.BufferedIn))...)
		case in.State == StateDraining && !in.terminating && c.cfg.DrainTimeout > 0 && now.Sub(in.drainSince) >= c.cfg.DrainTimeout:
			ops = append(ops, c.destroyLocked(in, fmt.Sprintf("buffered in interval %d, drain timeout %v with %d flows left",
				in.BufferedIn, c.cfg.DrainTimeout, in.Last.Flows))...)
		case (in.State == StateBooting || in.State == StateBuffered) && in.CloudState != drivers.StateActive &&
			!in.launching && !in.terminating && now.Sub(in.Created) >= c.cfg.BootTimeout:
			ops = append(ops, c.failLocked(in, fmt.Sprintf("not active %v after launch", now.Sub(in.Created)))...)
		}
	}
	c.tick = c.clk.AfterFunc(TickPeriod, c.onTick)
	c.mu.Unlock()
	c.exec(ops)
}

// ---- acting: driver calls outside the lock ----

var errSkipped = errors.New("launch skipped after an earlier failure")

// dispatch runs ops through the clock (at the current instant), so that
// callers such as event handlers and statistics intake never wait for the
// cloud.
func (c *Controller) dispatch(ops []op) {
	if len(ops) == 0 {
		return
	}
	c.clk.AfterFunc(0, func() {
		c.mu.Lock()
		stopped := c.stopped
		c.mu.Unlock()
		if !stopped {
			c.exec(ops)
		}
	})
}

// exec carries out ops in order and returns how many launches succeeded and
// the errors met. After a launch of a VNF fails, the later launches of that
// VNF in the same batch are dropped (the quota or capacity that stopped one
// stops the rest); the tick retries them after RetryBackoff.
func (c *Controller) exec(ops []op) (created int, errs []error) {
	skipped := map[string]int{}
	failed := map[string]bool{}
	for _, o := range ops {
		if o.kind == opLaunch && failed[o.spec.VNF] {
			c.launched(o, drivers.Instance{}, errSkipped)
			skipped[o.spec.VNF]++
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DriverTimeout)
		switch o.kind {
		case opLaunch:
			di, err := c.drv.Launch(ctx, o.spec)
			if c.launched(o, di, err) {
				created++
			} else if err != nil {
				errs = append(errs, err)
				failed[o.spec.VNF] = true
			}
		case opTerminate:
			var err error
			if k, ok := c.drv.(drivers.Killer); ok && o.kill {
				err = k.Kill(ctx, c.cfg.DC, o.id)
			} else {
				err = c.drv.Terminate(ctx, c.cfg.DC, o.id)
			}
			c.mu.Lock()
			if in := c.insts[o.id]; in != nil {
				in.termInFlight = false
				if err == nil {
					c.stopWatchLocked(in)
					delete(c.insts, o.id)
				}
			}
			c.mu.Unlock()
			switch {
			case errors.Is(err, drivers.ErrBackoff): // nothing tried: the failure was reported
				c.log.Debug("terminate held back by the driver (retried every tick)", "instance", o.id, "err", err)
			case err != nil:
				c.log.Error("terminate failed (retried every tick)", "instance", o.id, "err", err)
				errs = append(errs, err)
			}
		}
		cancel()
	}
	for _, name := range c.order {
		if n := skipped[name]; n > 0 {
			errs = append(errs, fmt.Errorf("%s: %d more launches not tried after the failure", name, n))
		}
	}
	return created, errs
}

// launched applies a Launch result and reports whether the instance exists.
func (c *Controller) launched(o op, di drivers.Instance, err error) bool {
	c.mu.Lock()
	in := c.insts[o.id]
	vs := c.vnfs[o.spec.VNF]
	if err != nil {
		if in != nil {
			if in.State == StateBuffered {
				vs.buf.Remove(in.ID)
			}
			delete(c.insts, o.id)
			if in.slot != nil {
				// the failed instance is still owed its replacement, its row kept
				vs.owed = append([]owed{*in.slot}, vs.owed...)
			}
		}
		// Whatever the error (quota, capacity, invalid spec, timeout), the
		// tick retries the refill only after RetryBackoff.
		vs.backoffUntil = c.clk.Now().Add(c.cfg.RetryBackoff)
		if err != errSkipped {
			c.log.Error("launch failed", "vnf", o.spec.VNF, "instance", o.id, "err", err)
		}
		c.mu.Unlock()
		return false
	}
	if in == nil {
		c.mu.Unlock()
		c.exec([]op{{kind: opTerminate, id: o.id}})
		return false
	}
	in.launching, in.slot = false, nil
	in.CloudID, in.Address = di.CloudID, di.Address
	c.record(in.VNF, in.kind, in.reason, in.ID, in.detail)
	var ops []op
	switch {
	case in.terminating:
		ops = c.terminateLocked(in)
	case di.State == drivers.StateActive && in.CloudState != drivers.StateActive:
		c.activateLocked(in)
	case di.State == drivers.StateError:
		ops = c.failLocked(in, "launched in error state")
	case in.CloudState == "":
		in.CloudState = di.State
	}
	c.mu.Unlock()
	c.exec(ops)
	return true
}

// ---- queries ----

// Instances returns a copy of the registry, sorted by ID.
func (c *Controller) Instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Instance, 0, len(c.insts))
	for _, in := range c.insts {
		out = append(out, in.Instance)
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Fingerprint summarises the registry's instance IDs and states and the
// crash loops (Backoffs) in one number without copying the registry: it
// changes when an instance comes, goes or changes state, or a crash loop
// changes (an order-independent sum of FNV-1a hashes).
func (c *Controller) Fingerprint() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum uint64
	for _, in := range c.insts {
		sum += fnv64(in.ID, "\x00", string(in.State))
	}
	crashes := c.crashesLocked()
	for _, name := range c.order { // the crash loops Backoffs shows
		if b, ok := c.backoffWith(c.vnfs[name], crashes[name]); ok {
			sum += fnv64(name, "\x00", b.String(), fmt.Sprint(b.Owed))
		}
	}
	return sum + uint64(len(c.insts))
}

// fnv64 is the FNV-1a hash of the strings one after the other.
func fnv64(ss ...string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
	}
	return h
}

// Counts returns the instance counts per VNF.
func (c *Controller) Counts() map[string]Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Counts, len(c.order))
	crashes := c.crashesLocked()
	for _, name := range c.order {
		n := c.countsLocked(name)
		if b, ok := c.backoffWith(c.vnfs[name], crashes[name]); ok {
			n.Backoff = &b
		}
		out[name] = n
	}
	return out
}

// Buffer returns a VNF's buffer queue, head (oldest) first.
func (c *Controller) Buffer(vnf string) []bufferq.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if vs, ok := c.vnfs[vnf]; ok {
		return vs.buf.Entries()
	}
	return nil
}

// Routable returns the instances of a VNF that may carry flows.
func (c *Controller) Routable(vnf string) []RoutableInstance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routableLocked(vnf)
}

// Actions returns the recorded scale actions, oldest first (at most
// Config.History of them).
func (c *Controller) Actions() []Action {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.history.all()
}

// Interval returns the current scaling interval index.
func (c *Controller) Interval() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interval
}

// Paused reports whether reactive scaling is paused (between steps 2 and 5).
func (c *Controller) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

// DC returns the controller's datacenter name.
func (c *Controller) DC() string { return c.cfg.DC }

// Reactive reports whether the controller scales out on overload between
// rounds (Config.Reactive: the strategy's choice).
func (c *Controller) Reactive() bool { return c.cfg.Reactive }
