// Package split owns one drivers.Driver over two backends: the control-plane
// VNFs (P-CSCF, S-CSCF: drivers/local's Kamailio processes) go to one, the
// data-plane stages to the other. Terminating an instance of a backend that
// has the optional drivers.Drainer capability drains it first, so scale-in
// never cuts a call.
package split

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
)

// DrainRecord is how the termination of one CP instance went.
type DrainRecord struct {
	ID, DC string
	At     time.Time // when Terminate was called
	Result drivers.DrainResult
	Err    error
}

// DriverConfig configures a Driver.
type DriverConfig struct {
	// CP runs the VNFs named in CPVNFs (drivers/local); Other runs the rest
	// (the DP stages; nil: launching them is an error). When CP has the
	// drivers.Drainer capability its instances are drained before they go.
	CP     drivers.Driver
	CPVNFs []string
	Other  drivers.Driver
	// DrainTimeout is the longest a terminating CP instance may keep calls
	// before it is cut (default 90 s: the paper's 60 s calls plus margin).
	DrainTimeout time.Duration
	// Now stamps DrainRecords (time.Now when nil).
	Now func() time.Time
}

// Driver is a drivers.Driver that sends CP VNFs to one backend (drivers/local)
// and the others to a second one, and drains CP instances before
// terminating them when the CP backend is a drivers.Drainer: Terminate waits
// until the instance carries no transaction and no dialog (drivers/local:
// two polls in a row) or DrainTimeout, so no controller path (expiry,
// failure) can cut a call it need not cut.
type Driver struct {
	cfg DriverConfig

	mu     sync.Mutex
	drains []DrainRecord
}

var _ drivers.Driver = (*Driver)(nil)

// NewDriver validates cfg.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if cfg.CP == nil {
		return nil, errors.New("split: Driver: CP: nil")
	}
	if len(cfg.CPVNFs) == 0 {
		return nil, errors.New("split: Driver: CPVNFs: none")
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("split: Driver: DrainTimeout %v: negative", cfg.DrainTimeout)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 90 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Driver{cfg: cfg}, nil
}

func (d *Driver) isCP(vnf string) bool { return slices.Contains(d.cfg.CPVNFs, vnf) }

// Launch implements drivers.Driver.
func (d *Driver) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	if d.isCP(spec.VNF) {
		return d.cfg.CP.Launch(ctx, spec)
	}
	if d.cfg.Other == nil {
		return drivers.Instance{}, fmt.Errorf("%w: VNF %q: no backend for non-CP VNFs", drivers.ErrInvalid, spec.VNF)
	}
	return d.cfg.Other.Launch(ctx, spec)
}

// Terminate drains CP instances (bounded by DrainTimeout), then terminates them.
func (d *Driver) Terminate(ctx context.Context, dc, id string) error {
	cp, err := d.cfg.CP.List(ctx, dc)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(cp, func(in drivers.Instance) bool { return in.ID == id }) {
		dr, ok := d.cfg.CP.(drivers.Drainer)
		if !ok {
			return d.cfg.CP.Terminate(ctx, dc, id)
		}
		at := d.cfg.Now()
		res, err := dr.Drain(ctx, dc, id, d.cfg.DrainTimeout)
		d.mu.Lock()
		d.drains = append(d.drains, DrainRecord{ID: id, DC: dc, At: at, Result: res, Err: err})
		d.mu.Unlock()
		return err
	}
	if d.cfg.Other != nil {
		return d.cfg.Other.Terminate(ctx, dc, id)
	}
	return nil
}

// Kill implements drivers.Killer: a failed instance is stopped at once, never
// drained — by its backend's Kill when it has one, else by its Terminate.
func (d *Driver) Kill(ctx context.Context, dc, id string) error {
	cp, err := d.cfg.CP.List(ctx, dc)
	if err != nil {
		return err
	}
	b := d.cfg.Other
	if slices.ContainsFunc(cp, func(in drivers.Instance) bool { return in.ID == id }) {
		b = d.cfg.CP
	}
	if b == nil {
		return nil
	}
	if k, ok := b.(drivers.Killer); ok {
		return k.Kill(ctx, dc, id)
	}
	return b.Terminate(ctx, dc, id)
}

var (
	_ drivers.Killer        = (*Driver)(nil)
	_ drivers.QuotaReporter = (*Driver)(nil)
)

// QuotaLeft implements drivers.QuotaReporter: each spec is asked of the
// backend that runs its VNF; a backend without the capability (or none)
// answers drivers.Unlimited: it cannot tell.
func (d *Driver) QuotaLeft(ctx context.Context, dc string, specs []drivers.Spec) ([]int, error) {
	out := make([]int, len(specs))
	for _, cp := range []bool{true, false} {
		b := d.cfg.Other
		if cp {
			b = d.cfg.CP
		}
		var idx []int
		var part []drivers.Spec
		for i, sp := range specs {
			if d.isCP(sp.VNF) == cp {
				idx, part = append(idx, i), append(part, sp)
			}
		}
		qr, ok := b.(drivers.QuotaReporter)
		if len(part) == 0 || !ok {
			for _, i := range idx {
				out[i] = drivers.Unlimited
			}
			continue
		}
		left, err := qr.QuotaLeft(ctx, dc, part)
		if err != nil {
			return nil, err
		}
		if len(left) != len(part) {
			return nil, fmt.Errorf("split: quota of %s: %d answers for %d VNFs", dc, len(left), len(part))
		}
		for j, i := range idx {
			out[i] = left[j]
		}
	}
	return out, nil
}

// List implements drivers.Driver (both backends, sorted by ID).
func (d *Driver) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	out, err := d.cfg.CP.List(ctx, dc)
	if err != nil {
		return nil, err
	}
	if d.cfg.Other != nil {
		o, err := d.cfg.Other.List(ctx, dc)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	slices.SortFunc(out, func(a, b drivers.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Subscribe implements drivers.Driver (events of both backends).
func (d *Driver) Subscribe(h drivers.EventHandler) (cancel func()) {
	c1 := d.cfg.CP.Subscribe(h)
	if d.cfg.Other == nil {
		return c1
	}
	c2 := d.cfg.Other.Subscribe(h)
	return func() { c1(); c2() }
}

// Drains returns how every drained CP termination went, in call order.
func (d *Driver) Drains() []DrainRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.drains)
}
