package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// DefaultBootDelay is the boot time of an instance when Options.BootDelay is 0.
const DefaultBootDelay = 30 * time.Second

// StatsSink receives the statistics of every active instance once per
// simulated second (the lead adapts it to local.Controller.ReportStats).
// It is called outside the cloud's lock and may call back into the Cloud.
type StatsSink interface {
	ReportStats(instanceID string, s Sample) error
}

// Options configure a Cloud.
type Options struct {
	// DCs are the datacenter names; a datacenter's index is its position.
	DCs []string
	// Catalog gives the VNF types; nil means DefaultCatalog (Table 2).
	Catalog *Catalog
	// BootDelay is the time from Launch to active; 0 means DefaultBootDelay.
	BootDelay time.Duration
	// MaxPerDC limits the live instances of a datacenter (by name); a
	// missing entry falls back to MaxInstancesPerDC; 0 means no limit.
	// A Launch over the limit fails with drivers.ErrCapacity.
	MaxPerDC          map[string]int
	MaxInstancesPerDC int
	// QuotaPerDC is the project's quota of live instances in a datacenter
	// (by name; a missing entry or 0: no quota). A Launch past it fails
	// with drivers.ErrQuota; QuotaLeft reports the room it leaves.
	QuotaPerDC map[string]int
	// Sink receives statistics (nil: none; see also SetSink).
	Sink StatsSink
}

// Unit is one simulated VNF instance. Its methods are safe for concurrent use.
type Unit struct {
	c       *Cloud
	index   int
	id      string
	dc      int
	typ     VNFType
	key     string // vnf.Normalize(typ.Name)
	typePos int    // position of the type in the catalog
	inst    drivers.Instance
	timer   clock.Timer

	loaded bool // SetLoad was called this second
	perf   Perf
	flows  int
}

// ID returns ims-orch's instance id.
func (u *Unit) ID() string { return u.id }

// Index is a small dense number (launch order, from 0) for per-unit slices.
func (u *Unit) Index() int { return u.index }

// Key returns the normalised VNF name (vnf.Normalize).
func (u *Unit) Key() string { return u.key }

// DC returns the datacenter index.
func (u *Unit) DC() int { return u.dc }

// Type returns the VNF type.
func (u *Unit) Type() VNFType { return u.typ }

// State returns the instance's current state.
func (u *Unit) State() drivers.State {
	u.c.mu.Lock()
	defer u.c.mu.Unlock()
	return u.inst.State
}

// Totals sums one VNF in one datacenter for one second.
type Totals struct {
	DC                     int
	VNF                    string
	Booting, Active, Error int
	// Created counts every accepted launch so far (paper Fig. 4).
	Created int
	// Offered, Served and Lost are summed over the active instances (units/s).
	Offered, Served, Lost float64
	// MeanCPU is the mean CPU % of the active instances (0 if none).
	MeanCPU float64
}

// Cloud is the simulated multi-datacenter cloud. It is safe for concurrent
// use; in virtual time everything happens in the clock's goroutine.
type Cloud struct {
	clk       clock.Clock
	cat       *Catalog
	dcs       []string
	dcIndex   map[string]int
	bootDelay time.Duration
	limits    []int
	quota     []int

	mu      sync.Mutex
	units   map[string]*Unit
	order   []*Unit // live units in launch order
	nextIdx int
	subs    drivers.Subscribers
	sink    StatsSink
	created map[[2]int]int // (dc, catalog position) → launches
	typePos map[string]int
}

var (
	_ drivers.Driver        = (*Cloud)(nil)
	_ drivers.QuotaReporter = (*Cloud)(nil)
)

// New returns a simulated cloud on clk. Errors name the bad option.
func New(clk clock.Clock, opts Options) (*Cloud, error) {
	if clk == nil {
		return nil, fmt.Errorf("sim: clock: must not be nil")
	}
	if len(opts.DCs) == 0 {
		return nil, fmt.Errorf("sim: DCs: at least one datacenter is needed")
	}
	if opts.BootDelay < 0 {
		return nil, fmt.Errorf("sim: BootDelay %v: must not be negative", opts.BootDelay)
	}
	if opts.MaxInstancesPerDC < 0 {
		return nil, fmt.Errorf("sim: MaxInstancesPerDC %d: must not be negative", opts.MaxInstancesPerDC)
	}
	c := &Cloud{clk: clk, cat: opts.Catalog, dcIndex: map[string]int{}, bootDelay: opts.BootDelay,
		units: map[string]*Unit{}, sink: opts.Sink, created: map[[2]int]int{}, typePos: map[string]int{}}
	if c.cat == nil {
		c.cat = DefaultCatalog()
	}
	if c.bootDelay == 0 {
		c.bootDelay = DefaultBootDelay
	}
	for i, n := range opts.DCs {
		if strings.TrimSpace(n) == "" {
			return nil, fmt.Errorf("sim: DCs[%d]: empty name", i)
		}
		if _, dup := c.dcIndex[n]; dup {
			return nil, fmt.Errorf("sim: DCs[%d] %q: duplicate", i, n)
		}
		c.dcIndex[n] = i
	}
	c.dcs = slices.Clone(opts.DCs)
	c.limits = make([]int, len(c.dcs))
	for i := range c.limits {
		c.limits[i] = opts.MaxInstancesPerDC
	}
	if err := c.perDC("MaxPerDC", opts.MaxPerDC, c.limits); err != nil {
		return nil, err
	}
	c.quota = make([]int, len(c.dcs))
	if err := c.perDC("QuotaPerDC", opts.QuotaPerDC, c.quota); err != nil {
		return nil, err
	}
	for i, n := range c.cat.Names() {
		c.typePos[vnf.Normalize(n)] = i
	}
	return c, nil
}

// perDC sets dst[i] to m's value for each datacenter named in m (field
// names the option in errors): an unknown name or a negative value is an
// error.
func (c *Cloud) perDC(field string, m map[string]int, dst []int) error {
	for _, n := range slices.Sorted(maps.Keys(m)) {
		v := m[n]
		i, ok := c.dcIndex[n]
		if !ok {
			return fmt.Errorf("sim: %s[%q]: unknown datacenter", field, n)
		}
		if v < 0 {
			return fmt.Errorf("sim: %s[%q] %d: must not be negative", field, n, v)
		}
		dst[i] = v
	}
	return nil
}

// SetSink replaces the statistics sink (nil: none).
func (c *Cloud) SetSink(s StatsSink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sink = s
}

// Catalog returns the VNF catalog.
func (c *Cloud) Catalog() *Catalog { return c.cat }

// DCs returns the datacenter names (index = position).
func (c *Cloud) DCs() []string { return slices.Clone(c.dcs) }

// DCIndex returns the index of a datacenter name.
func (c *Cloud) DCIndex(name string) (int, bool) {
	i, ok := c.dcIndex[name]
	return i, ok
}

// BootDelay returns the boot delay in use.
func (c *Cloud) BootDelay() time.Duration { return c.bootDelay }

// Launch accepts an instance in the booting state; it becomes active after
// the boot delay. A Launch with the ID of a live instance returns it and
// launches nothing.
func (c *Cloud) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Instance{}, err
	}
	if spec.ID == "" {
		return drivers.Instance{}, fmt.Errorf("sim: spec.ID: empty: %w", drivers.ErrInvalid)
	}
	dc, ok := c.dcIndex[spec.DC]
	if !ok {
		return drivers.Instance{}, fmt.Errorf("sim: spec.DC %q of %s: unknown datacenter: %w", spec.DC, spec.ID, drivers.ErrInvalid)
	}
	typ, ok := c.cat.Lookup(spec.VNF)
	if !ok {
		return drivers.Instance{}, fmt.Errorf("sim: spec.VNF %q of %s: not in the catalog %v: %w", spec.VNF, spec.ID, c.cat.Names(), drivers.ErrInvalid)
	}
	c.mu.Lock()
	if u, ok := c.units[spec.ID]; ok {
		out := drivers.Instance.Clone(u.inst)
		c.mu.Unlock()
		return out, nil
	}
	if lim := c.limits[dc]; lim > 0 {
		if n := c.liveLocked(dc); n >= lim {
			c.mu.Unlock()
			return drivers.Instance{}, fmt.Errorf("sim: launch %s: %d of %d instances in use in %s: %w", spec.ID, n, lim, spec.DC, drivers.ErrCapacity)
		}
	}
	if q := c.quota[dc]; q > 0 {
		if n := c.liveLocked(dc); n >= q {
			c.mu.Unlock()
			return drivers.Instance{}, fmt.Errorf("sim: launch %s: %d of %d instances of the quota in use in %s: %w", spec.ID, n, q, spec.DC, drivers.ErrQuota)
		}
	}
	idx := c.nextIdx
	c.nextIdx++
	pool := spec.DefaultPool()
	meta := spec.CloudMetadata(pool)
	key := vnf.Normalize(typ.Name)
	u := &Unit{c: c, index: idx, id: spec.ID, dc: dc, typ: typ, key: key, typePos: c.typePos[key]}
	u.inst = drivers.Instance{
		ID: spec.ID, CloudID: fmt.Sprintf("sim-%d", idx), DC: spec.DC, VNF: spec.VNF, Pool: pool,
		State:   drivers.StateBooting,
		Address: fmt.Sprintf("10.%d.%d.%d", dc&0xff, (idx>>8)&0xff, idx&0xff),
		Host:    fmt.Sprintf("%s-host-%d", spec.DC, idx%4),
		Created: c.clk.Now(), Metadata: meta,
	}
	c.units[spec.ID] = u
	c.order = append(c.order, u)
	c.created[[2]int{dc, u.typePos}]++
	c.emitLocked(u.inst, drivers.StateBooting, "launched")
	u.timer = c.clk.AfterFunc(c.bootDelay, func() { c.finishBoot(u) })
	out := drivers.Instance.Clone(u.inst)
	c.mu.Unlock()
	return out, nil
}

// liveLocked counts the live instances of datacenter dc.
func (c *Cloud) liveLocked(dc int) int {
	n := 0
	for _, u := range c.order {
		if u.dc == dc {
			n++
		}
	}
	return n
}

// QuotaLeft implements drivers.QuotaReporter: the room Options.QuotaPerDC
// leaves in dc (the same for every spec: the simulated quota counts
// instances, not flavors), drivers.Unlimited without a quota.
func (c *Cloud) QuotaLeft(ctx context.Context, dc string, specs []drivers.Spec) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i, ok := c.dcIndex[dc]
	if !ok {
		return nil, fmt.Errorf("sim: quota of datacenter %q: unknown datacenter: %w", dc, drivers.ErrInvalid)
	}
	c.mu.Lock()
	left := drivers.Unlimited
	if q := c.quota[i]; q > 0 {
		left = max(0, q-c.liveLocked(i))
	}
	c.mu.Unlock()
	out := make([]int, len(specs))
	for k := range out {
		out[k] = left
	}
	return out, nil
}

func (c *Cloud) finishBoot(u *Unit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.units[u.id] != u || u.inst.State != drivers.StateBooting {
		return
	}
	u.timer = nil
	u.inst.State = drivers.StateActive
	c.emitLocked(u.inst, drivers.StateActive, "booted")
}

// emitLocked delivers an event to the subscribers through the clock (at the
// current instant, outside the lock), so handlers may call the Cloud.
func (c *Cloud) emitLocked(inst drivers.Instance, st drivers.State, reason string) {
	ev := drivers.Event{ID: inst.ID, DC: inst.DC, VNF: inst.VNF, State: st, Reason: reason, At: c.clk.Now()}
	c.clk.AfterFunc(0, func() { c.subs.Emit(ev) })
}

// Terminate destroys an instance; a gone event follows. Unknown or gone
// instances are not an error.
func (c *Cloud) Terminate(ctx context.Context, dc, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.units[id]
	if !ok || (dc != "" && u.inst.DC != dc) {
		return nil
	}
	c.removeLocked(u, "terminated")
	return nil
}

// Kill makes a live instance vanish (host crash): it stops reporting and a
// gone event follows. It reports whether the instance existed.
func (c *Cloud) Kill(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.units[id]
	if ok {
		c.removeLocked(u, "vanished")
	}
	return ok
}

// Fail turns a live instance to the error state: it stops carrying load and
// reporting until it is terminated. It reports whether it was booting or active.
func (c *Cloud) Fail(id, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.units[id]
	if !ok || u.inst.State == drivers.StateError {
		return false
	}
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	u.inst.State = drivers.StateError
	c.emitLocked(u.inst, drivers.StateError, reason)
	return true
}

func (c *Cloud) removeLocked(u *Unit, reason string) {
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	delete(c.units, u.id)
	if i := slices.Index(c.order, u); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
	u.inst.State = drivers.StateGone
	c.emitLocked(u.inst, drivers.StateGone, reason)
}

// List returns the live instances of dc ("" = all), sorted by ID.
func (c *Cloud) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]drivers.Instance, 0, len(c.order))
	for _, u := range c.order {
		if dc == "" || u.inst.DC == dc {
			out = append(out, drivers.Instance.Clone(u.inst))
		}
	}
	slices.SortFunc(out, func(a, b drivers.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Subscribe registers h for every later state change.
func (c *Cloud) Subscribe(h drivers.EventHandler) func() { return c.subs.Subscribe(h) }

// Unit returns a live (booting, active or error) instance by id.
func (c *Cloud) Unit(id string) (*Unit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.units[id]
	return u, ok
}

// Active returns the active instances of a VNF in a datacenter, in launch order.
func (c *Cloud) Active(dc int, name string) []*Unit {
	k := vnf.Normalize(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Unit
	for _, u := range c.order {
		if u.dc == dc && u.inst.State == drivers.StateActive && u.key == k {
			out = append(out, u)
		}
	}
	return out
}

// SetLoad sets an instance's offered load for the current second (units/s,
// replacing any earlier value this second) and the number of flows through
// it, and returns what the instance does with it. An instance that is not
// active loses everything.
func (c *Cloud) SetLoad(u *Unit, offered float64, flows int) Perf {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.units[u.id] != u || u.inst.State != drivers.StateActive {
		if !(offered > 0) {
			offered = 0
		}
		return Perf{Offered: offered, Loss: lossAll(offered)}
	}
	u.perf = Serve(u.typ, offered)
	u.flows = flows
	u.loaded = true
	return u.perf
}

func lossAll(offered float64) float64 {
	if offered > 0 {
		return 1
	}
	return 0
}

// Report ends the current second: every active instance's agent reports its
// statistics (CPU, memory, input packets from its load; an instance given
// no load this second reports an idle sample) to the sink, the loads are
// cleared, and the per-DC per-VNF totals of the second are returned, sorted
// by DC and catalog order. Booting, failed and gone instances report nothing.
// Sink errors are counted in the returned error count.
func (c *Cloud) Report(at time.Time) (totals []Totals, sinkErrors int) {
	type rep struct {
		id string
		s  Sample
	}
	c.mu.Lock()
	sink := c.sink
	ntypes := len(c.cat.names)
	tot := make([]Totals, len(c.dcs)*ntypes)
	for d := range c.dcs {
		for j, n := range c.cat.names {
			t := &tot[d*ntypes+j]
			t.DC, t.VNF, t.Created = d, n, c.created[[2]int{d, j}]
		}
	}
	reps := make([]rep, 0, len(c.order))
	for _, u := range c.order {
		t := &tot[u.dc*ntypes+u.typePos]
		switch u.inst.State {
		case drivers.StateBooting:
			t.Booting++
			continue
		case drivers.StateError:
			t.Error++
			continue
		}
		p := u.perf
		if !u.loaded {
			p = Serve(u.typ, 0)
		}
		cpu, mem, pkt := Stats(u.typ, p)
		t.Active++
		t.Offered += p.Offered
		t.Served += p.Served
		t.Lost += p.Offered - p.Served
		t.MeanCPU += cpu
		reps = append(reps, rep{u.id, Sample{At: at, CPU: cpu, Mem: mem, PktRate: pkt, Flows: u.flows}})
		u.loaded, u.perf, u.flows = false, Perf{}, 0
	}
	c.mu.Unlock()
	for i := range tot {
		if tot[i].Active > 0 {
			tot[i].MeanCPU /= float64(tot[i].Active)
		}
	}
	if sink != nil {
		for _, r := range reps {
			if err := sink.ReportStats(r.id, r.s); err != nil {
				sinkErrors++
			}
		}
	}
	return tot, sinkErrors
}
