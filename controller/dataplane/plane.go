package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// Config creates a Plane.
type Config struct {
	Daemon *ovs.Daemon
	// Tables are the routing tables of the datacenters, index = DC. The
	// Plane owns them from now on (serialises every call).
	Tables []*routing.Table
	// LearnIdle is the idle timeout (s) of learned per-flow rules (10 if 0).
	LearnIdle int
	// OnFailure is called (without the Plane's lock) for every instance the
	// Plane saw fail: its namespace or ports vanished, or ovs-vswitchd died.
	OnFailure func(Failure)
	// OnError receives errors of the Watch loop (nil: ignored).
	OnError func(error)
}

// Failure is a DP instance that stopped forwarding.
type Failure struct {
	DC, Stage int
	Index     uint8
	Reason    string
	At        time.Time
	// Moved is when the failed instance's flows had been moved to another
	// instance (rules applied), zero when nothing was moved.
	Moved time.Time
}

type dcState struct {
	t      *routing.Table
	sw     *ovs.Switch
	br     string
	live   [routing.MaxStages]map[uint8]Ports
	insts  [routing.MaxStages]map[uint8]*netns.Instance
	flows  map[uint32]Flow
	calls  []routing.Call
	serial uint32
}

// Plane is a real data plane: one bridge per datacenter, linked, with users'
// namespaces and DP instances. Safe for concurrent use.
type Plane struct {
	mu   sync.Mutex
	cfg  Config
	d    *ovs.Daemon
	dcs  []*dcState
	last time.Duration // duration of the last Sync
}

// UsersMAC is the MAC of datacenter dc's users' interface.
func UsersMAC(dc int) string { return fmt.Sprintf("02:13:00:00:%02x:01", dc) }

// EntryIP is the address users of datacenter dc send media to.
func EntryIP(dc int) routing.IPv4 {
	return routing.IPv4(10<<24 | uint32(200+dc)<<16 | 200<<8 | 200)
}

// entryMAC is what users resolve every entry IP to (nobody answers ARP).
const entryMAC = "02:13:ff:ff:ff:fe"

// Bridge returns datacenter dc's bridge name.
func (p *Plane) Bridge(dc int) string { return fmt.Sprintf("%sd%d", p.d.Prefix(), dc) }

// UsersNS returns datacenter dc's users' namespace.
func (p *Plane) UsersNS(dc int) string { return fmt.Sprintf("%sd%du", p.d.Prefix(), dc) }

// New builds the bridges, links and users' namespaces and installs every
// datacenter's rules.
func New(ctx context.Context, cfg Config) (*Plane, error) {
	n := len(cfg.Tables)
	if n == 0 || n > 100 {
		return nil, fmt.Errorf("tables: %d datacenters, want 1..100", n)
	}
	p := &Plane{cfg: cfg, d: cfg.Daemon}
	for k, t := range cfg.Tables {
		if t.DC() != k || t.N() != n {
			return nil, fmt.Errorf("tables[%d]: table of DC %d of %d datacenters", k, t.DC(), t.N())
		}
		st := &dcState{t: t, br: p.Bridge(k), flows: map[uint32]Flow{}}
		for s := range st.live {
			st.live[s] = map[uint8]Ports{}
			st.insts[s] = map[uint8]*netns.Instance{}
		}
		if err := p.d.EnsureBridge(ctx, st.br, k); err != nil {
			return nil, err
		}
		st.sw = p.d.NewSwitch(st.br)
		if err := p.d.AddVeth(ctx, st.br, p.UsersNS(k), UserPort, p.UsersNS(k), "eth0", UsersMAC(k)); err != nil {
			return nil, err
		}
		for _, s := range [][]string{
			{"ip", "addr", "add", fmt.Sprintf("10.%d.0.254/8", 100+k), "dev", "eth0"},
			{"ip", "neigh", "replace", EntryIP(k).String(), "lladdr", entryMAC, "dev", "eth0", "nud", "permanent"},
		} {
			if _, err := ovs.InNetns(ctx, p.UsersNS(k), s[0], s[1:]...); err != nil {
				return nil, err
			}
		}
		p.dcs = append(p.dcs, st)
	}
	for a := 0; a < n; a++ {
		for b := a + 1; b < n; b++ {
			if err := p.d.Link(ctx, p.Bridge(a), fmt.Sprintf("%st%d", p.Bridge(a), b), TunnelPort(b),
				p.Bridge(b), fmt.Sprintf("%st%d", p.Bridge(b), a), TunnelPort(a)); err != nil {
				return nil, err
			}
		}
	}
	for k := range p.dcs {
		if err := p.sync(ctx, k); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Close deletes the plane's instances, bridges and users' namespaces (the
// daemons stay: the caller stops them).
func (p *Plane) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for k, st := range p.dcs {
		for s := range st.insts {
			for _, in := range st.insts[s] {
				errs = append(errs, in.Delete(ctx, p.d))
			}
		}
		errs = append(errs, p.d.DelPort(ctx, st.br, p.UsersNS(k)))
		if _, err := ovs.IP(ctx, "netns", "del", p.UsersNS(k)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.d.DeleteOurBridges(ctx))
	return errors.Join(errs...)
}

// AddUser gives datacenter dc's users' namespace the address ip.
func (p *Plane) AddUser(ctx context.Context, dc int, ip routing.IPv4) error {
	_, err := ovs.InNetns(ctx, p.UsersNS(dc), "ip", "addr", "add", ip.String()+"/32", "dev", "eth0")
	return err
}

func (p *Plane) sync(ctx context.Context, k int, forgetOutputs ...int) error {
	st := p.dcs[k]
	want, err := Compile(Inputs{Table: st.t, Live: st.live, Flows: flowList(st), Calls: st.calls,
		UsersMAC: UsersMAC(k), LearnIdle: p.cfg.LearnIdle})
	if err != nil {
		return fmt.Errorf("dc%d: %w", k, err)
	}
	start := time.Now()
	_, err = st.sw.Apply(ctx, want, forgetOutputs...)
	p.last = time.Since(start)
	if err != nil {
		return fmt.Errorf("dc%d: %w", k, err)
	}
	return nil
}

func (p *Plane) dc(k int) (*dcState, error) {
	if k < 0 || k >= len(p.dcs) {
		return nil, fmt.Errorf("dc: %d is not one of the %d datacenters", k, len(p.dcs))
	}
	return p.dcs[k], nil
}

// Switch returns datacenter dc's switch (its PairPackets are the pair
// counters of flows entering there).
func (p *Plane) Switch(dc int) *ovs.Switch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dcs[dc].sw
}

// InstancePorts returns the OpenFlow ports of instance idx of stage on
// datacenter dc's bridge.
func InstancePorts(stage int, idx uint8) Ports {
	in := 1000*stage + 2*int(idx)
	return Ports{In: in, Out: in + 1}
}

// AddInstance creates a DP instance (namespace, ports, nftables) of kind for
// stage with routing index idx in datacenter dc and makes it a working
// instance of the stage's routing table.
func (p *Plane) AddInstance(ctx context.Context, dc, stage int, idx uint8, kind netns.Kind) (*netns.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return nil, err
	}
	if stage < 1 || stage > st.t.Stages() {
		return nil, fmt.Errorf("stage: %d is not one of 1..%d", stage, st.t.Stages())
	}
	if _, dup := st.live[stage-1][idx]; dup {
		return nil, fmt.Errorf("instance: stage %d index %d exists in dc%d", stage, idx, dc)
	}
	ports := InstancePorts(stage, idx)
	in, err := netns.Create(ctx, p.d, st.br, fmt.Sprintf("%ss%dx%d", st.br, stage, idx), kind, ports.In, ports.Out)
	if err != nil {
		return nil, err
	}
	st.live[stage-1][idx] = ports
	st.insts[stage-1][idx] = in
	work := append(st.t.Instances(stage), routing.InstanceLoad{Index: idx})
	if err := st.t.SetInstances(stage, work); err != nil {
		return nil, err
	}
	return in, p.sync(ctx, dc)
}

// Buffer takes instance idx of stage out of the working set (no new flows)
// and keeps its ports and rules so the flows it carries go on.
func (p *Plane) Buffer(ctx context.Context, dc, stage int, idx uint8) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return err
	}
	var work []routing.InstanceLoad
	for _, x := range st.t.Instances(stage) {
		if x.Index != idx {
			work = append(work, x)
		}
	}
	if err := st.t.SetInstances(stage, work); err != nil {
		return err
	}
	return p.sync(ctx, dc)
}

// removeLocked drops a gone instance: out of the working set and the live
// ports, flows entering here moved to the stage's chosen instance, learned
// rules towards it forgotten, rules re-applied.
func (p *Plane) removeLocked(ctx context.Context, dc, stage int, idx uint8) error {
	st := p.dcs[dc]
	ports, ok := st.live[stage-1][idx]
	if !ok {
		return nil
	}
	delete(st.live[stage-1], idx)
	delete(st.insts[stage-1], idx)
	var work []routing.InstanceLoad
	for _, x := range st.t.Instances(stage) {
		if x.Index != idx {
			work = append(work, x)
		}
	}
	if err := st.t.SetInstances(stage, work); err != nil {
		return err
	}
	for serial, f := range st.flows {
		d := &f.Decision
		if d.Verdict != routing.Forward || stage < d.First || stage > d.Last || d.Instances[stage-1] != idx {
			continue
		}
		if nx, ok := st.t.PickInstance(stage); ok {
			d.Instances[stage-1] = nx
			d.DstIP = routing.WithStageByte(d.DstIP, stage, nx)
			st.flows[serial] = f
		}
	}
	return p.sync(ctx, dc, ports.In)
}

// RemoveInstance terminates an instance.
func (p *Plane) RemoveInstance(ctx context.Context, dc, stage int, idx uint8) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return err
	}
	in := st.insts[stage-1][idx]
	if err := p.removeLocked(ctx, dc, stage, idx); err != nil {
		return err
	}
	if in != nil {
		return in.Delete(ctx, p.d)
	}
	return nil
}

// AddCall stores a call's Table 1 mappings in every datacenter.
func (p *Plane) AddCall(ctx context.Context, c routing.Call) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, st := range p.dcs {
		if k != c.CallerDC && k != c.CalleeDC {
			continue
		}
		if err := st.t.AddCall(c); err != nil {
			return err
		}
		st.calls = append(st.calls, c)
		if err := p.sync(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// FlowStart is a flow of a call: its entry datacenter and first packet.
type FlowStart struct {
	DC     int
	Packet routing.Packet
}

// StartCall stores a call's Table 1 mappings and routes its flows (each
// tagged with its entry datacenter's current interval) with one rule update
// per datacenter involved.
func (p *Plane) StartCall(ctx context.Context, c routing.Call, flows ...FlowStart) ([]routing.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	touched := map[int]bool{}
	for k, st := range p.dcs {
		if k != c.CallerDC && k != c.CalleeDC {
			continue
		}
		if err := st.t.AddCall(c); err != nil {
			return nil, err
		}
		st.calls = append(st.calls, c)
		touched[k] = true
	}
	var ds []routing.Decision
	for _, f := range flows {
		st, err := p.dc(f.DC)
		if err != nil {
			return nil, err
		}
		f.Packet.From = routing.FromUser
		d := st.t.Route(f.Packet)
		st.serial++
		st.flows[st.serial] = Flow{Serial: st.serial, Decision: d}
		ds = append(ds, d)
		touched[f.DC] = true
	}
	for k := range p.dcs {
		if touched[k] {
			if err := p.sync(ctx, k); err != nil {
				return ds, err
			}
		}
	}
	return ds, nil
}

// StartFlow routes a new flow entering at datacenter dc (its first packet,
// From = FromUser) and installs its rules: the flow is tagged with dc's
// current interval.
func (p *Plane) StartFlow(ctx context.Context, dc int, pkt routing.Packet) (routing.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return routing.Decision{}, err
	}
	pkt.From = routing.FromUser
	d := st.t.Route(pkt)
	st.serial++
	st.flows[st.serial] = Flow{Serial: st.serial, Decision: d}
	return d, p.sync(ctx, dc)
}

// StoreNext stores the next interval's path set in datacenter dc (step 4)
// and installs its tag rules.
func (p *Plane) StoreNext(ctx context.Context, dc int, interval uint64, paths map[placement.Pair]placement.Path) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return err
	}
	if err := st.t.StoreNext(interval, paths); err != nil {
		return err
	}
	return p.sync(ctx, dc)
}

// Enter switches datacenter dc to interval (step 5): new flows are tagged
// with it, the oldest set's tag rules go.
func (p *Plane) Enter(ctx context.Context, dc int, interval uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return err
	}
	if err := st.t.Enter(interval); err != nil {
		return err
	}
	return p.sync(ctx, dc)
}

// LastSync returns how long the last rule update took on the switch.
func (p *Plane) LastSync() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
