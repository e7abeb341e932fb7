// Package fake owns an in-memory cloud driver for tests and the simulator: it
// implements drivers.Driver with a configurable boot delay, quotas (total, per
// datacenter, per datacenter and VNF), boot failures (the next N launches, or
// a seeded random rate), launches refused on demand (Options.Reject), and
// helpers that make an instance die (Kill: it vanishes; Fail: it turns to
// error). Every state change reaches subscribers through the injected clock
// (AfterFunc), so in virtual time the events happen at deterministic
// instants, in the clock's goroutine.
//
// Instance lifecycle in the fake:
//
//	Launch ─▶ booting ──(BootDelay)──▶ active ──Terminate/Kill──▶ gone
//	             │                       │
//	             └──(FailNext/FailRate)─▶ error ◀── Fail(id)
//	                                     │
//	                                     └──Terminate──▶ gone
//
// An instance in error keeps counting against the quota until it is
// terminated, as in OpenStack.
package fake

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// Quota limits the number of live (booting, active or error) instances.
// Zero values mean no limit.
type Quota struct {
	// Total limits instances over every datacenter.
	Total int
	// PerDC limits instances per datacenter name.
	PerDC map[string]int
	// PerVNF limits instances per "dc/vnf" key (e.g. "dc0/firewall").
	PerVNF map[string]int
}

// Options configure a fake Driver.
type Options struct {
	// BootDelay is the time from Launch to the active event.
	BootDelay time.Duration
	// Quota rejects a Launch with an error wrapping drivers.ErrQuota.
	Quota Quota
	// FailNext makes the next FailNext launches end in the error state
	// (after BootDelay) instead of active.
	FailNext int
	// FailRate is the probability that a launch ends in the error state; it
	// needs Rand (a seeded source keeps tests deterministic).
	FailRate float64
	Rand     *rand.Rand
	// Reject, when set, is asked before every new launch; a non-nil error
	// fails the Launch (e.g. an error wrapping drivers.ErrCapacity).
	Reject func(drivers.Spec) error
	// OnLaunch and OnTerminate are called (outside the driver's lock) after
	// every accepted Launch and every Terminate of an instance that existed.
	OnLaunch    func(drivers.Instance)
	OnTerminate func(dc, id string)
}

type instance struct {
	inst  drivers.Instance
	timer clock.Timer // pending boot completion
	fail  bool        // boot ends in error
}

// Driver is the in-memory cloud. It is safe for concurrent use.
type Driver struct {
	clk  clock.Clock
	opts Options

	mu        sync.Mutex
	insts     map[string]*instance
	seq       uint64
	subs      drivers.Subscribers
	failNext  int
	launches  []drivers.Spec
	terminate []string
	hits      drivers.QuotaHits
}

var (
	_ drivers.Driver        = (*Driver)(nil)
	_ drivers.QuotaReporter = (*Driver)(nil)
)

// New returns a fake driver driven by clk. It returns an error when the
// options are inconsistent (FailRate outside [0,1], FailRate without Rand,
// negative delay or quota).
func New(clk clock.Clock, opts Options) (*Driver, error) {
	if clk == nil {
		return nil, fmt.Errorf("fake: clock: must not be nil")
	}
	if opts.BootDelay < 0 {
		return nil, fmt.Errorf("fake: BootDelay %v: must not be negative", opts.BootDelay)
	}
	if opts.FailRate < 0 || opts.FailRate > 1 {
		return nil, fmt.Errorf("fake: FailRate %v: must be in [0,1]", opts.FailRate)
	}
	if opts.FailRate > 0 && opts.Rand == nil {
		return nil, fmt.Errorf("fake: Rand: required when FailRate > 0 (seed it for determinism)")
	}
	if opts.FailNext < 0 {
		return nil, fmt.Errorf("fake: FailNext %d: must not be negative", opts.FailNext)
	}
	if opts.Quota.Total < 0 {
		return nil, fmt.Errorf("fake: Quota.Total %d: must not be negative", opts.Quota.Total)
	}
	for k, v := range opts.Quota.PerDC {
		if v < 0 {
			return nil, fmt.Errorf("fake: Quota.PerDC[%q] %d: must not be negative", k, v)
		}
	}
	for k, v := range opts.Quota.PerVNF {
		if v < 0 {
			return nil, fmt.Errorf("fake: Quota.PerVNF[%q] %d: must not be negative", k, v)
		}
	}
	return &Driver{
		clk:      clk,
		opts:     opts,
		insts:    map[string]*instance{},
		failNext: opts.FailNext,
	}, nil
}

// Launch accepts an instance in the booting state; it becomes active (or
// error) after BootDelay. A Launch with the ID of a live instance returns that
// instance and launches nothing.
func (d *Driver) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Instance{}, err
	}
	switch {
	case spec.ID == "":
		return drivers.Instance{}, fmt.Errorf("fake: spec.ID: empty: %w", drivers.ErrInvalid)
	case spec.DC == "":
		return drivers.Instance{}, fmt.Errorf("fake: spec.DC of %q: empty: %w", spec.ID, drivers.ErrInvalid)
	case spec.VNF == "":
		return drivers.Instance{}, fmt.Errorf("fake: spec.VNF of %q: empty: %w", spec.ID, drivers.ErrInvalid)
	}
	d.mu.Lock()
	if in, ok := d.insts[spec.ID]; ok {
		out := drivers.Instance.Clone(in.inst)
		d.mu.Unlock()
		return out, nil
	}
	if err := d.checkQuotaLocked(spec); err != nil {
		d.mu.Unlock()
		return drivers.Instance{}, err
	}
	if d.opts.Reject != nil {
		if err := d.opts.Reject(spec); err != nil {
			d.hits.Launched(spec.DC, spec.Flavor, err)
			d.mu.Unlock()
			return drivers.Instance{}, fmt.Errorf("fake: launch %s: %w", spec.ID, err)
		}
	}
	d.seq++
	pool := spec.DefaultPool()
	meta := spec.CloudMetadata(pool)
	in := &instance{inst: drivers.Instance{
		ID:       spec.ID,
		CloudID:  fmt.Sprintf("fake-%d", d.seq),
		DC:       spec.DC,
		VNF:      spec.VNF,
		Pool:     pool,
		State:    drivers.StateBooting,
		Address:  fmt.Sprintf("10.%d.%d.%d", (d.seq>>16)&0xff, (d.seq>>8)&0xff, d.seq&0xff),
		Host:     fmt.Sprintf("%s-host-%d", spec.DC, d.seq%4),
		Created:  d.clk.Now(),
		Metadata: meta,
	}}
	if d.failNext > 0 {
		d.failNext--
		in.fail = true
	} else if d.opts.FailRate > 0 && d.opts.Rand.Float64() < d.opts.FailRate {
		in.fail = true
	}
	d.insts[spec.ID] = in
	d.launches = append(d.launches, spec)
	d.hits.Launched(spec.DC, spec.Flavor, nil)
	id := spec.ID
	d.emitLocked(in.inst, drivers.StateBooting, "launched")
	in.timer = d.clk.AfterFunc(d.opts.BootDelay, func() { d.finishBoot(id, in) })
	out := drivers.Instance.Clone(in.inst)
	d.mu.Unlock()
	if d.opts.OnLaunch != nil {
		d.opts.OnLaunch(out)
	}
	return out, nil
}

// usedLocked counts the live instances the quota's three limits see for
// spec: over every DC, in spec.DC, and of spec.VNF in spec.DC.
func (d *Driver) usedLocked(spec drivers.Spec) (total, dc, vnf int) {
	for _, in := range d.insts {
		total++
		if in.inst.DC == spec.DC {
			dc++
			if in.inst.VNF == spec.VNF {
				vnf++
			}
		}
	}
	return total, dc, vnf
}

func (d *Driver) checkQuotaLocked(spec drivers.Spec) error {
	total, dc, vnf := d.usedLocked(spec)
	q := d.opts.Quota
	if q.Total > 0 && total >= q.Total {
		return fmt.Errorf("fake: launch %s: %d of %d instances in use: %w", spec.ID, total, q.Total, drivers.ErrQuota)
	}
	if lim, ok := q.PerDC[spec.DC]; ok && dc >= lim {
		return fmt.Errorf("fake: launch %s: %d of %d instances in use in %s: %w", spec.ID, dc, lim, spec.DC, drivers.ErrQuota)
	}
	key := spec.DC + "/" + spec.VNF
	if lim, ok := q.PerVNF[key]; ok && vnf >= lim {
		return fmt.Errorf("fake: launch %s: %d of %d %s instances in use: %w", spec.ID, vnf, lim, key, drivers.ErrQuota)
	}
	return nil
}

// QuotaLeft implements drivers.QuotaReporter: the room the quota leaves each
// spec (the smallest of its three limits), 0 for a flavor whose last launch
// in dc was refused with ErrQuota (by Options.Reject), drivers.Unlimited
// when no limit applies.
func (d *Driver) QuotaLeft(ctx context.Context, dc string, specs []drivers.Spec) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.opts.Quota
	out := make([]int, len(specs))
	for i, spec := range specs {
		spec.DC = dc
		total, inDC, vnf := d.usedLocked(spec)
		left := drivers.Unlimited
		bound := func(lim, used int) {
			if l := max(0, lim-used); left == drivers.Unlimited || l < left {
				left = l
			}
		}
		if q.Total > 0 {
			bound(q.Total, total)
		}
		if lim, ok := q.PerDC[dc]; ok {
			bound(lim, inDC)
		}
		if lim, ok := q.PerVNF[dc+"/"+spec.VNF]; ok {
			bound(lim, vnf)
		}
		if d.hits.Hit(dc, spec.Flavor) {
			left = 0
		}
		out[i] = left
	}
	return out, nil
}

func (d *Driver) finishBoot(id string, in *instance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.insts[id]; !ok || cur != in || in.inst.State != drivers.StateBooting {
		return
	}
	in.timer = nil
	if in.fail {
		in.inst.State = drivers.StateError
		d.emitLocked(in.inst, drivers.StateError, "boot failed")
		return
	}
	in.inst.State = drivers.StateActive
	d.emitLocked(in.inst, drivers.StateActive, "booted")
}

// emitLocked schedules delivery of an event to the current subscribers at
// the current (virtual) instant. Delivery happens outside the driver's lock.
func (d *Driver) emitLocked(inst drivers.Instance, st drivers.State, reason string) {
	ev := drivers.Event{ID: inst.ID, DC: inst.DC, VNF: inst.VNF, State: st, Reason: reason, At: d.clk.Now()}
	d.clk.AfterFunc(0, func() { d.subs.Emit(ev) })
}

// Terminate removes an instance; a gone event follows. Terminating an
// unknown (or already gone) instance is not an error.
func (d *Driver) Terminate(ctx context.Context, dc, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	in, ok := d.insts[id]
	if !ok || (dc != "" && in.inst.DC != dc) {
		d.mu.Unlock()
		return nil
	}
	d.removeLocked(in, "terminated")
	d.terminate = append(d.terminate, id)
	d.mu.Unlock()
	if d.opts.OnTerminate != nil {
		d.opts.OnTerminate(in.inst.DC, id)
	}
	return nil
}

func (d *Driver) removeLocked(in *instance, reason string) {
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	delete(d.insts, in.inst.ID)
	d.hits.Terminated(in.inst.DC)
	in.inst.State = drivers.StateGone
	d.emitLocked(in.inst, drivers.StateGone, reason)
}

// List returns the live instances of dc ("" = all), sorted by ID.
func (d *Driver) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]drivers.Instance, 0, len(d.insts))
	for _, in := range d.insts {
		if dc == "" || in.inst.DC == dc {
			out = append(out, drivers.Instance.Clone(in.inst))
		}
	}
	slices.SortFunc(out, func(a, b drivers.Instance) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Subscribe registers h for every later state change.
func (d *Driver) Subscribe(h drivers.EventHandler) func() { return d.subs.Subscribe(h) }

// Kill makes an instance vanish (host crash, deleted behind our back): it is
// removed and a gone event follows. It reports whether the instance existed.
func (d *Driver) Kill(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[id]
	if !ok {
		return false
	}
	d.removeLocked(in, "killed")
	return true
}

// Fail turns an instance to the error state (an error event follows); it
// stays listed until terminated. It reports whether the instance existed
// and was not already in error.
func (d *Driver) Fail(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[id]
	if !ok || in.inst.State == drivers.StateError {
		return false
	}
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	in.inst.State = drivers.StateError
	d.emitLocked(in.inst, drivers.StateError, "failed")
	return true
}

// SetFailNext makes the next n launches end in the error state.
func (d *Driver) SetFailNext(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNext = max(n, 0)
}

// SetQuota replaces the quota for later launches.
func (d *Driver) SetQuota(q Quota) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.Quota = q
}

// Launches returns the specs of every accepted launch, in order.
func (d *Driver) Launches() []drivers.Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.launches)
}

// Terminated returns the ids of every terminated instance, in order.
func (d *Driver) Terminated() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.terminate)
}

// Get returns one live instance.
func (d *Driver) Get(id string) (drivers.Instance, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[id]
	if !ok {
		return drivers.Instance{}, false
	}
	return drivers.Instance.Clone(in.inst), true
}
