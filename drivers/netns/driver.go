package netns

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// Ports are an instance's two OpenFlow ports on its datacenter's bridge.
type Ports struct{ In, Out int }

// DriverConfig creates a Driver.
type DriverConfig struct {
	Daemon *ovs.Daemon
	// Bridges maps each datacenter name to its bridge (see ovs.EnsureBridge).
	Bridges map[string]string
	// Now is the clock of events (time.Now if nil).
	Now func() time.Time
	// Forwarder is the command of each instance's process (see Create):
	// {os.Executable(), "dp-forward"} in serve, netnstest.Forwarder in tests.
	Forwarder []string
	// ReadyTimeout bounds how long a build waits for an instance's
	// forwarder to say it forwards (its ready line) before the instance
	// is reported in error: DefaultReadyTimeout (20 s) if 0; not negative.
	ReadyTimeout time.Duration
}

type dinst struct {
	inst  drivers.Instance
	in    *Instance
	ports Ports
}

// Driver launches DP VNF instances (firewall, ids, transcoder) as network
// namespaces on their datacenter's bridge: drivers.Driver, so the local
// controller's lifecycle (launch → booting → active, failure events,
// terminate) runs unchanged. Launch returns at once with the instance
// booting; the namespace, ports and nftables rules are built in the
// background and the instance reported active (or error) when done.
type Driver struct {
	cfg  DriverConfig
	subs drivers.Subscribers
	mu   sync.Mutex
	byID map[string]*dinst
	slot map[string]int // per DC: last slot used
	wg   sync.WaitGroup
	// builds run at most two at a time (each is a dozen ip/ovs-vsctl/nft
	// processes; a burst of launches must not starve the machine) and stop
	// when the driver closes
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

var _ drivers.Driver = (*Driver)(nil)

// NewDriver returns a driver over cfg's bridges.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if cfg.Daemon == nil || len(cfg.Bridges) == 0 {
		return nil, fmt.Errorf("netns driver: a daemon and at least one bridge are required")
	}
	if len(cfg.Forwarder) == 0 {
		return nil, fmt.Errorf("netns driver: Forwarder: the instances' process command is required")
	}
	if cfg.ReadyTimeout < 0 {
		return nil, fmt.Errorf("netns driver: ReadyTimeout: %v is negative (0 means the default, %v)", cfg.ReadyTimeout, DefaultReadyTimeout)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Driver{cfg: cfg, byID: map[string]*dinst{}, slot: map[string]int{}, sem: make(chan struct{}, 2), ctx: ctx, cancel: cancel}, nil
}

// SlotPorts are the OpenFlow ports of slot (1..999) of a bridge.
func SlotPorts(slot int) Ports { return Ports{In: 5000 + 2*slot, Out: 5001 + 2*slot} }

// Launch starts building an instance; it is booting until Subscribe's
// handlers hear it is active.
func (d *Driver) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	kind, err := ParseKind(spec.VNF)
	if err != nil {
		return drivers.Instance{}, fmt.Errorf("%w: vnf: %v", drivers.ErrInvalid, err)
	}
	if spec.ID == "" {
		return drivers.Instance{}, fmt.Errorf("%w: id: required", drivers.ErrInvalid)
	}
	d.mu.Lock()
	br, ok := d.cfg.Bridges[spec.DC]
	if !ok {
		d.mu.Unlock()
		return drivers.Instance{}, fmt.Errorf("%w: dc: %q has no bridge", drivers.ErrInvalid, spec.DC)
	}
	if x, dup := d.byID[spec.ID]; dup {
		d.mu.Unlock()
		return x.inst.Clone(), nil
	}
	d.slot[spec.DC]++
	slot := d.slot[spec.DC]
	if slot > 999 {
		d.mu.Unlock()
		return drivers.Instance{}, fmt.Errorf("%w: more than 999 DP instances launched in %s", drivers.ErrCapacity, spec.DC)
	}
	name := fmt.Sprintf("%sn%d", br, slot)
	x := &dinst{ports: SlotPorts(slot), inst: drivers.Instance{
		ID: spec.ID, CloudID: name, DC: spec.DC, VNF: spec.VNF, Pool: spec.DefaultPool(),
		State: drivers.StateBooting, Address: name, Created: d.cfg.Now(), Metadata: spec.CloudMetadata(spec.DefaultPool()),
	}}
	d.byID[spec.ID] = x
	out := x.inst.Clone()
	d.wg.Add(1)
	d.mu.Unlock()
	go d.build(x, br, name, kind)
	return out, nil
}

func (d *Driver) build(x *dinst, br, name string, kind Kind) {
	defer d.wg.Done()
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	case <-d.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	in, err := Create(ctx, d.cfg.Daemon, br, name, kind, x.ports.In, x.ports.Out, d.cfg.Forwarder, d.cfg.ReadyTimeout)
	d.mu.Lock()
	if d.byID[x.inst.ID] != x { // terminated while booting
		d.mu.Unlock()
		if in != nil {
			_ = in.Delete(context.Background(), d.cfg.Daemon)
		}
		return
	}
	st, reason := drivers.StateActive, ""
	if err != nil {
		st, reason = drivers.StateError, err.Error()
	} else {
		x.in = in
	}
	x.inst.State = st
	ev := drivers.Event{ID: x.inst.ID, DC: x.inst.DC, VNF: x.inst.VNF, State: st, Reason: reason, At: d.cfg.Now()}
	d.mu.Unlock()
	d.subs.Emit(ev)
	if in != nil && err == nil {
		go d.watchExit(x, in)
	}
}

// watchExit reports the instance gone the moment its forwarder exits
// (killed, crashed) unless it was terminated: event-driven, no polling.
func (d *Driver) watchExit(x *dinst, in *Instance) {
	<-in.Done()
	d.mu.Lock()
	if d.byID[x.inst.ID] != x {
		d.mu.Unlock()
		return // terminated
	}
	delete(d.byID, x.inst.ID)
	ev := drivers.Event{ID: x.inst.ID, DC: x.inst.DC, VNF: x.inst.VNF, State: drivers.StateGone, Reason: in.ExitReason(), At: d.cfg.Now()}
	d.mu.Unlock()
	d.subs.Emit(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = in.Delete(ctx, d.cfg.Daemon)
}

// Pid returns the forwarder process of an active instance (0 when none).
func (d *Driver) Pid(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if x, ok := d.byID[id]; ok && x.in != nil {
		return x.in.Pid
	}
	return 0
}

// Terminate deletes an instance (its namespace and ports).
func (d *Driver) Terminate(ctx context.Context, dc, id string) error {
	d.mu.Lock()
	x, ok := d.byID[id]
	if !ok || (dc != "" && x.inst.DC != dc) {
		d.mu.Unlock()
		return nil
	}
	delete(d.byID, id)
	in := x.in
	ev := drivers.Event{ID: id, DC: x.inst.DC, VNF: x.inst.VNF, State: drivers.StateGone, Reason: "terminated", At: d.cfg.Now()}
	d.mu.Unlock()
	var err error
	if in != nil {
		err = in.Delete(ctx, d.cfg.Daemon)
	}
	d.subs.Emit(ev)
	return err
}

// List returns the instances of dc ("" = all), sorted by ID.
func (d *Driver) List(_ context.Context, dc string) ([]drivers.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []drivers.Instance
	for _, x := range d.byID {
		if dc == "" || x.inst.DC == dc {
			out = append(out, x.inst.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Subscribe adds an event handler.
func (d *Driver) Subscribe(h drivers.EventHandler) (cancel func()) { return d.subs.Subscribe(h) }

// Active returns the ports of dc's active instances by instance ID.
func (d *Driver) Active(dc string) map[string]Ports {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]Ports{}
	for id, x := range d.byID {
		if x.inst.DC == dc && x.inst.State == drivers.StateActive {
			out[id] = x.ports
		}
	}
	return out
}

// Instance returns the live DP instance behind an ID (nil while booting).
func (d *Driver) Instance(id string) *Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	if x, ok := d.byID[id]; ok {
		return x.in
	}
	return nil
}

// InPackets returns, for every active instance of dc, the packets its in
// port received, read from the switch side of the veths: what the switch
// sent into the instance, the veth's TX counter. One rtnetlink dump of the
// switch namespace (ovs.Links), no process.
func (d *Driver) InPackets(_ context.Context, dc string) (map[string]uint64, error) {
	links, err := ovs.Links(d.cfg.Daemon.SwitchNS())
	if err != nil {
		return nil, err
	}
	res := map[string]uint64{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, x := range d.byID {
		if x.inst.DC != dc || x.in == nil || x.inst.State != drivers.StateActive {
			continue
		}
		if c, ok := links[x.in.InName]; ok {
			res[id] = c.TxPackets
		}
	}
	return res, nil
}

// Check reports every active instance whose switch-side ports vanished (the
// namespace was deleted, the instance died) as gone and forgets it.
func (d *Driver) Check(ctx context.Context) error {
	// only instances built before the links are read: one whose build ends
	// between the read and the lock would look vanished
	d.mu.Lock()
	built := map[string]*dinst{}
	for id, x := range d.byID {
		if x.in != nil {
			built[id] = x
		}
	}
	d.mu.Unlock()
	have, err := ovs.LinkNames(ctx, d.cfg.Daemon.SwitchNS())
	if err != nil {
		return err
	}
	var evs []drivers.Event
	var dead []*Instance
	d.mu.Lock()
	for id, x := range built {
		if d.byID[id] != x || have[x.in.InName] && have[x.in.OutName] {
			continue
		}
		delete(d.byID, id)
		dead = append(dead, x.in)
		evs = append(evs, drivers.Event{ID: id, DC: x.inst.DC, VNF: x.inst.VNF, State: drivers.StateGone, Reason: "instance ports vanished", At: d.cfg.Now()})
	}
	d.mu.Unlock()
	for _, ev := range evs {
		d.subs.Emit(ev)
	}
	for _, in := range dead {
		_ = in.Delete(ctx, d.cfg.Daemon)
	}
	return nil
}

// Close stops the builds in progress and deletes every instance.
func (d *Driver) Close(ctx context.Context) error {
	d.cancel()
	d.wg.Wait()
	d.mu.Lock()
	ids := make([]string, 0, len(d.byID))
	for id := range d.byID {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	var first error
	for _, id := range ids {
		if err := d.Terminate(ctx, "", id); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// FailAll reports every active instance as failed (StateError) with reason:
// the switch they hang on died. The local controller replaces them and
// terminates these.
func (d *Driver) FailAll(reason string) {
	var evs []drivers.Event
	d.mu.Lock()
	for id, x := range d.byID {
		if x.inst.State != drivers.StateActive {
			continue
		}
		x.inst.State = drivers.StateError
		evs = append(evs, drivers.Event{ID: id, DC: x.inst.DC, VNF: x.inst.VNF, State: drivers.StateError, Reason: reason, At: d.cfg.Now()})
	}
	d.mu.Unlock()
	for _, ev := range evs {
		d.subs.Emit(ev)
	}
}
