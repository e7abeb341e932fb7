package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
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
	// OnError receives errors of the Watch loop and of the switches'
	// background work (nil: ignored). It may be called with the Plane's
	// locks held (and a Switch's: ovs.Switch.ReportTo), e.g. during the
	// reset after a restart of ovs-vswitchd: it must return promptly and
	// must not call the Plane (or its switches), which would deadlock.
	// Log, count or hand the error to another goroutine.
	OnError func(error)
	// Forwarder is the command of each instance's process (standalone
	// mode; netns.Create).
	Forwarder []string

	// Attached mode: instead of Tables, the local controllers' routers
	// (index = DC, names = the DCs' names) and the driver whose active
	// instances carry the stages.
	Routers []*dcroute.Router
	Names   []string
	Driver  *netns.Driver
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

// ruleSwitch is what the plane uses of a DC's switch (ovs.Switch).
type ruleSwitch interface {
	Apply(ctx context.Context, want []ovs.Flow, forgetOutputs ...int) (ovs.Changes, error)
	Learned(ctx context.Context) (ovs.LearnedRules, error)
	Ofctl(ctx context.Context, cmd string, args ...string) (string, error)
	Reset(ctx context.Context, want []ovs.Flow) error
	ForgetLearned(ctx context.Context) error
	// Close stops the switch's delayed deletes (the plane's Close)
	Close()
}

// learnedMonitor is what the plane uses of an ovs.LearnedMonitor.
type learnedMonitor interface {
	Learned() (ovs.LearnedRules, error)
	Restarts() (restarts, paused int)
	Close()
}

type dcState struct {
	t      *routing.Table  // standalone: the plane's own table
	router *dcroute.Router // attached: the local controller's routing state
	name   string          // attached: the DC's name (the driver's key)
	ports  map[int]bool    // input ports of the live instances at the last sync
	// unnoted: the live instances' ports of the sets compiled since (and
	// including) the newest applied set noted, each with the newest such
	// set's seq: an apply in flight or not noted yet may have made rules
	// towards them (madeFor prunes it)
	unnoted map[int]uint64
	sw      ruleSwitch
	// mon follows the rules the switch learns (ovs.LearnedMonitor; nil in
	// unit tests: FlowCounts reads sw then)
	mon   learnedMonitor
	br    string
	live  [routing.MaxStages]map[uint8]Ports
	insts [routing.MaxStages]map[uint8]*netns.Instance
	// removing: instances out of insts and live whose removal has not
	// ended (removing.go): deleted once their flows moved off them
	removing [routing.MaxStages]map[uint8]*removal
	flows    map[uint32]Flow
	calls    []routing.Call
	// byCall: the flows StartCall routed here for each call that it still
	// owns (EndCall removes them; a newer flow of the same 5-tuple takes
	// one over: takeover.go); callOf: the owner of each flow by serial;
	// byKey: the flow routing each 5-tuple
	byCall map[routing.Call][]uint32
	callOf map[uint32]routing.Call
	byKey  map[flowKey]uint32
	// starts: the packets StartCall routed here for each open call, in
	// start order (a 5-tuple the ending call owned goes back to the
	// newest open call that has it: giveBack)
	starts []callStart
	serial uint32
	// takeovers: flows that took their 5-tuple over from an older flow;
	// conflicts: the rule conflicts the last sync resolved (by
	// ovs.Conflict.String), conflictCount: those reported so far
	takeovers     int
	conflicts     map[string]bool
	conflictCount int
	// hasTags: the set noted on the switch (seq notedSeq) has tag rules
	// (which learn per-flow rules); tagsSeq: the newest compiled set with
	// some; tagGen counts the compiles with some; learning: the switch may
	// hold learned rules (set with a tag rule's compile, cleared by a read
	// that found none while no set that may be on the switch had a tag
	// rule: mayHaveTags): FlowCounts reads the switch only then
	hasTags           bool
	notedSeq, tagsSeq uint64
	tagGen            uint64
	learning          bool
	// failed: the last rule update failed (retryFailed syncs again);
	// compileFailed: the last compile failed (an older set's apply noted
	// after it clears failed, not this)
	failed, compileFailed bool
	// gen counts the call changes (commit); okGen is the highest gen a
	// successful rule update covered: a change of gen <= okGen is on the
	// switch (a later failed update's outcome is unknown: okGen stays,
	// the next update rewrites what it touched)
	gen, okGen uint64
	// lastSkipped: learned rules FlowCounts' last read could not read
	lastSkipped int
	// the rule updates' pipeline (commit.go): compiled under mu, applied
	// under applyMu without mu
	rulePipe
	// countsLost: rule updates that ended pair counter rules unread
	// (ovs.Changes.CountsUnread); lostRun: those since the last update
	// whose read ran and succeeded (the log is thinned by it:
	// noteCountsUnread)
	countsLost, lostRun int
}

// Plane is a real data plane: one bridge per datacenter, linked, with users'
// namespaces and DP instances. Safe for concurrent use.
type Plane struct {
	mu   sync.Mutex
	cfg  Config
	d    *ovs.Daemon
	dcs  []*dcState
	last time.Duration // duration of the last Sync
	// active replaces cfg.Driver.Active in unit tests (nil: the driver's)
	active func(dc string) map[string]netns.Ports
	// deleteInst and links replace netns.Instance.Delete and
	// ovs.LinkNames of the switch namespace in unit tests (nil: those)
	deleteInst func(context.Context, *netns.Instance) error
	links      func(context.Context) (map[string]bool, error)
	// socketClock replaces the wall clock of the wait for the management
	// sockets after a restart in unit tests (nil: clock.Real)
	socketClock clock.Clock
	// linksArmed is closed once a Watch has armed its link-deletion
	// watch (LinksWatched)
	armedMu    sync.Mutex
	linksArmed chan struct{}
}

// LinksWatched is closed once Watch listens for link deletions in the
// switch namespace: a link deleted before that is seen only by the next
// periodic Check.
func (p *Plane) LinksWatched() <-chan struct{} {
	p.armedMu.Lock()
	defer p.armedMu.Unlock()
	return p.linksArmedLocked()
}

func (p *Plane) linksArmedLocked() chan struct{} {
	if p.linksArmed == nil {
		p.linksArmed = make(chan struct{})
	}
	return p.linksArmed
}

func (p *Plane) markLinksWatched() {
	p.armedMu.Lock()
	defer p.armedMu.Unlock()
	ch := p.linksArmedLocked()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// activeIn returns the ports of attached DC name's active instances by ID
// (the driver's; none without a driver).
func (p *Plane) activeIn(name string) map[string]netns.Ports {
	if p.active != nil {
		return p.active(name)
	}
	if p.cfg.Driver == nil {
		return nil
	}
	return p.cfg.Driver.Active(name)
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
func (p *Plane) Bridge(dc int) string { return BridgeName(p.d.Prefix(), dc) }

// BridgeName is the bridge of datacenter dc for an object prefix.
func BridgeName(prefix string, dc int) string { return fmt.Sprintf("%sd%d", prefix, dc) }

// UsersNS returns datacenter dc's users' namespace.
func (p *Plane) UsersNS(dc int) string { return fmt.Sprintf("%sd%du", p.d.Prefix(), dc) }

// New builds the bridges, links and users' namespaces and installs every
// datacenter's rules.
func New(ctx context.Context, cfg Config) (_ *Plane, err error) {
	// the Switches made before a failure stop their delayed deletes and
	// close their OpenFlow connections (final LOW-5)
	var made []*ovs.Switch
	defer func() {
		if err != nil {
			for _, sw := range made {
				sw.Close()
			}
		}
	}()
	n := len(cfg.Tables)
	attached := len(cfg.Routers) > 0
	if attached {
		n = len(cfg.Routers)
		if len(cfg.Names) != n || cfg.Driver == nil || len(cfg.Tables) > 0 {
			return nil, fmt.Errorf("routers: attached mode needs one name per router, a driver and no tables")
		}
	}
	if n == 0 || n > 100 {
		return nil, fmt.Errorf("tables: %d datacenters, want 1..100", n)
	}
	p := &Plane{cfg: cfg, d: cfg.Daemon}
	present := 0
	for k := 0; k < n; k++ {
		if attached && cfg.Routers[k] == nil {
			// not this node's datacenter (a cluster node runs the data plane
			// of its role.locals only): no bridge, no link to it
			p.dcs = append(p.dcs, nil)
			continue
		}
		present++
		st := &dcState{br: p.Bridge(k), flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
		if attached {
			st.router, st.name = cfg.Routers[k], cfg.Names[k]
		} else {
			st.t = cfg.Tables[k]
		}
		var dcOf, nOf int
		p.withTable(st, func(t *routing.Table) { dcOf, nOf = t.DC(), t.N() })
		if dcOf != k || nOf != n {
			return nil, fmt.Errorf("tables[%d]: table of DC %d of %d datacenters", k, dcOf, nOf)
		}
		for s := range st.live {
			st.live[s] = map[uint8]Ports{}
			st.insts[s] = map[uint8]*netns.Instance{}
		}
		if err := p.d.EnsureBridge(ctx, st.br, k); err != nil {
			return nil, err
		}
		sw := p.d.NewSwitch(st.br)
		made = append(made, sw)
		sw.ReportTo(cfg.OnError) // its delayed deletes' failures
		st.sw = sw
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
	if present == 0 {
		return nil, fmt.Errorf("routers: none of the %d datacenters is present", n)
	}
	for a := 0; a < n; a++ {
		for b := a + 1; b < n; b++ {
			if p.dcs[a] == nil || p.dcs[b] == nil {
				continue
			}
			if err := p.d.Link(ctx, p.Bridge(a), fmt.Sprintf("%st%d", p.Bridge(a), b), TunnelPort(b),
				p.Bridge(b), fmt.Sprintf("%st%d", p.Bridge(b), a), TunnelPort(a)); err != nil {
				return nil, err
			}
		}
	}
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		if err := p.sync(ctx, k); err != nil {
			return nil, err
		}
	}
	for _, st := range p.dcs {
		if st != nil {
			// one persistent `ovs-ofctl monitor` per DC: FlowCounts reads
			// the learned rules without a process (Close stops it)
			st.mon = p.d.NewSwitch(st.br).MonitorLearned(time.Second, p.cfg.OnError)
		}
	}
	return p, nil
}

// Close deletes the plane's instances, bridges and users' namespaces (the
// daemons stay: the caller stops them).
func (p *Plane) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := []error{p.stopUpdates(ctx)}
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		if st.mon != nil {
			st.mon.Close() // set once in New: FlowCounts reads it off-lock
		}
		st.sw.Close() // the delayed deletes of ended entry rules (the bridge goes)
		for s := range st.insts {
			insts := st.insts[s]
			st.insts[s] = map[uint8]*netns.Instance{} // their exits are not failures
			for _, in := range insts {
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

// withTable runs fn with the DC's routing table (under the router's lock
// when attached).
func (p *Plane) withTable(st *dcState, fn func(t *routing.Table)) {
	if st.router == nil {
		fn(st.t)
		return
	}
	st.router.View(func(t *routing.Table, _ func(int, uint8) string) { fn(t) })
}

// withLive runs fn with the DC's routing table (under the router's lock
// when attached), the live instances' ports and the instance ID behind a
// live stage index ("" standalone). Attached, an instance is live while
// the driver has it active and the router holds an index for it: a working
// instance, or one that left routing (buffered, draining) and keeps its
// index parked with the flows still pinned to it (dcroute).
func (p *Plane) withLive(st *dcState, fn func(t *routing.Table, live [routing.MaxStages]map[uint8]Ports, id func(stage int, idx uint8) string)) {
	if st.router == nil {
		fn(st.t, st.live, func(int, uint8) string { return "" })
		return
	}
	active := p.activeIn(st.name)
	st.router.View(func(t *routing.Table, id func(int, uint8) string) {
		var live [routing.MaxStages]map[uint8]Ports
		for s := 1; s <= t.Stages(); s++ {
			live[s-1] = map[uint8]Ports{}
			for i := t.N(); i < 256; i++ {
				if iid := id(s, uint8(i)); iid != "" {
					if pp, ok := active[iid]; ok {
						live[s-1][uint8(i)] = Ports(pp)
					}
				}
			}
		}
		fn(t, live, id)
	})
}

// repairFlows moves the flows that entered here off instances that are no
// longer live, to the instance Route would choose now, and routes again a
// flow that was dropped because this DC could not route it yet (no path,
// no working instance, its interval's paths not held: a call answered while
// the DC starts or between a failure and its replacement), so its rule stops
// dropping its packets once the DC can carry it.
func repairFlows(st *dcState, t *routing.Table, live [routing.MaxStages]map[uint8]Ports) {
	for serial, f := range st.flows {
		d := &f.Decision
		if d.Verdict == routing.Drop && retryable(d.Reason) && f.Packet.Proto != 0 {
			// Reroute: a retry that drops again is not a new drop (the
			// flow was counted once, when StartCall routed it)
			if nd := t.Reroute(f.Packet); nd.Verdict == routing.Forward {
				f.Decision = nd
				st.flows[serial] = f
			}
			continue
		}
		if d.Verdict != routing.Forward {
			continue
		}
		changed := false
		for s := d.First; s <= d.Last && s <= t.Stages(); s++ {
			if _, ok := live[s-1][d.Instances[s-1]]; ok {
				continue
			}
			if nx, ok := t.PickInstance(s); ok {
				d.Instances[s-1] = nx
				d.DstIP = routing.WithStageByte(d.DstIP, s, nx)
				// PickInstance adds no load, and EndCall's Release takes
				// the flow's load from the instance it was moved to
				_, _ = t.AddLoad(s, nx, d.Load) // a stage of t, a Decision's load: valid
				changed = true
			}
		}
		if changed {
			st.flows[serial] = f
		}
	}
}

// retryable says whether a flow dropped for reason r may be routed later:
// the DC lacked a path, an instance or its interval's path set, which a
// round or a launch brings; a header or mapping fault stays one.
func retryable(r routing.DropReason) bool {
	switch r {
	case routing.DropNoPath, routing.DropNoInstance, routing.DropUnknownInterval:
		return true
	}
	return false
}

// sync recompiles DC k's rules and applies the difference under mu,
// across its ovs-ofctl run (New and ReplaceTables, where nothing else
// runs; every other update applies without mu: syncAfter, commit.go; the
// DC's rules are on the switch when it returns). Any error (Compile,
// Apply) marks the DC failed, so Check's retryFailed updates it again; a
// success clears the mark.
func (p *Plane) sync(ctx context.Context, k int) error {
	st := p.dcs[k]
	if _, err := p.syncCompile(k); err != nil {
		return err
	}
	st.applyMu.Lock()
	err := st.applyNewest(ctx, k)
	st.applyMu.Unlock()
	p.noteApplied(k, st)
	return err
}

// livePorts is the set of the switch ports (Ports.In) of every live
// instance: the ports a DC's rules are made for.
func livePorts(live [routing.MaxStages]map[uint8]Ports) map[int]bool {
	ports := map[int]bool{}
	for s := range live {
		for _, pp := range live[s] {
			ports[pp.In] = true
		}
	}
	return ports
}

// compileRules compiles DC k's rules from its state now (under mu) and
// makes them the DC's newest compiled set (commit.go), to be applied.
func (p *Plane) compileRules(k int, st *dcState) error {
	var want []ovs.Flow
	var err error
	var forget []int
	var ports map[int]bool
	p.noteApplied(k, st)
	p.withLive(st, func(t *routing.Table, live [routing.MaxStages]map[uint8]Ports, _ func(int, uint8) string) {
		repairFlows(st, t, live)
		now := livePorts(live)
		// the switch's rules may be made for st.ports (the last noted
		// apply) or for any set compiled since (applied and not noted, in
		// flight, or applied later): a departed instance's port stays in
		// them until an update that forgot its learned rules succeeded
		// and is noted, so a retry forgets them again
		for _, port := range st.mayHave() {
			if !now[port] {
				forget = append(forget, port)
			}
		}
		ports = now
		want, err = Compile(Inputs{Table: t, Live: live, Flows: flowList(st), Calls: st.calls,
			UsersMAC: UsersMAC(k), LearnIdle: p.cfg.LearnIdle})
	})
	st.compileFailed = err != nil
	if err != nil {
		return fmt.Errorf("dc%d: %w", k, err)
	}
	want = p.resolve(k, st, want)
	set := st.publish(compiled{want: want, forget: forget, ports: ports, covers: st.gen, tags: hasTagRules(want)})
	st.compiledTags(set)
	if st.unnoted == nil {
		st.unnoted = map[int]uint64{}
	}
	for port := range ports {
		st.unnoted[port] = set.seq
	}
	return nil
}

// hasTagRules says whether want has tag rules (which learn per-flow rules).
func hasTagRules(want []ovs.Flow) bool {
	return slices.ContainsFunc(want, func(f ovs.Flow) bool { return f.Cookie>>48 == ovs.CookieTag>>48 })
}

// compiledTags notes a compiled set's tag rules (under mu): from now on
// the switch may learn rules (learning; tagGen tells FlowCounts a read
// raced with it), until a set without them is noted applied (madeFor).
func (st *dcState) compiledTags(set compiled) {
	if set.tags {
		st.tagGen++
		st.learning = true
		st.tagsSeq = set.seq
	}
}

// mayHaveTags says whether the switch may hold tag rules (under mu, after
// noteApplied): the noted set has some, or a set compiled since does (in
// flight, or applied and not noted).
func (st *dcState) mayHaveTags() bool { return st.hasTags || st.tagsSeq > st.notedSeq }

// mayHave is the ports the switch's rules may be made for (under mu, after
// noteApplied), sorted: the last noted apply's and those of every set
// compiled since.
func (st *dcState) mayHave() []int {
	all := maps.Clone(st.ports)
	if all == nil {
		all = map[int]bool{}
	}
	for port := range st.unnoted {
		all[port] = true
	}
	return slices.Sorted(maps.Keys(all))
}

// madeFor notes that set is on the switch (applied or reset, noted in
// apply order): its ports are the ones the rules are made for, and no set
// compiled before it can be applied any more (applies go in compile
// order), so their ports it did not keep are forgotten (its forget had
// them) or deleted (Reset).
func (st *dcState) madeFor(set compiled) {
	st.ports, st.hasTags, st.notedSeq = set.ports, set.tags, set.seq
	maps.DeleteFunc(st.unnoted, func(_ int, seq uint64) bool { return seq <= set.seq })
}

// Sync recompiles datacenter dc's rules and applies the difference (the
// plane's lock is not held across the apply: syncAfter).
func (p *Plane) Sync(ctx context.Context, dc int) error { return p.syncAfter(ctx, dc, nil) }

func (p *Plane) dc(k int) (*dcState, error) {
	if k < 0 || k >= len(p.dcs) {
		return nil, fmt.Errorf("dc: %d is not one of the %d datacenters", k, len(p.dcs))
	}
	if p.dcs[k] == nil {
		return nil, fmt.Errorf("dc: %d is not a datacenter of this node's data plane", k)
	}
	return p.dcs[k], nil
}

// standalone is dc's state when the plane holds its table itself (the
// instance calls; an attached DC's instances come from the driver).
func (p *Plane) standalone(k int) (*dcState, error) {
	st, err := p.dc(k)
	if err == nil && st.t == nil {
		err = fmt.Errorf("dc: %d is attached to a local controller: its instances come from the driver", k)
	}
	return st, err
}

// Switch returns datacenter dc's switch (its PairPackets are the pair
// counters of flows entering there).
func (p *Plane) Switch(dc int) *ovs.Switch {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return nil
	}
	sw, _ := st.sw.(*ovs.Switch) // always one outside this package's tests
	return sw
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
// (The instance is created under the plane's lock; its rule update is
// applied without it: syncAfter.)
func (p *Plane) AddInstance(ctx context.Context, dc, stage int, idx uint8, kind netns.Kind) (*netns.Instance, error) {
	var in *netns.Instance
	err := p.syncAfter(ctx, dc, func(*dcState) error {
		st, err := p.standalone(dc)
		if err != nil {
			return err
		}
		if stage < 1 || stage > st.t.Stages() {
			return fmt.Errorf("stage: %d is not one of 1..%d", stage, st.t.Stages())
		}
		if _, dup := st.live[stage-1][idx]; dup {
			return fmt.Errorf("instance: stage %d index %d exists in dc%d", stage, idx, dc)
		}
		if err := beingRemoved(st, dc, stage, idx); err != nil {
			return err
		}
		ports := InstancePorts(stage, idx)
		created, err := netns.Create(ctx, p.d, st.br, fmt.Sprintf("%ss%dx%d", st.br, stage, idx), kind, ports.In, ports.Out, p.cfg.Forwarder, 0)
		if err != nil {
			return err
		}
		st.live[stage-1][idx] = ports
		st.insts[stage-1][idx] = created
		go p.watchExit(dc, stage, idx, created)
		work := append(st.t.Instances(stage), routing.InstanceLoad{Index: idx})
		if err := st.t.SetInstances(stage, work); err != nil {
			return err
		}
		in = created
		return nil
	})
	if in == nil {
		return nil, err
	}
	return in, err
}

// Buffer takes instance idx of stage out of the working set (no new flows)
// and keeps its ports and rules so the flows it carries go on.
func (p *Plane) Buffer(ctx context.Context, dc, stage int, idx uint8) error {
	return p.syncAfter(ctx, dc, func(*dcState) error {
		st, err := p.standalone(dc)
		if err != nil {
			return err
		}
		return leaveWorkingSet(st, stage, idx)
	})
}

// leaveWorkingSet takes instance idx of stage out of the DC's working set
// (no new flows choose it; under mu); the caller's rule update installs
// the resulting rules.
func leaveWorkingSet(st *dcState, stage int, idx uint8) error {
	var work []routing.InstanceLoad
	for _, x := range st.t.Instances(stage) {
		if x.Index != idx {
			work = append(work, x)
		}
	}
	return st.t.SetInstances(stage, work)
}

// removeState drops a gone instance from DC dc's state (under mu): out of
// the working set and the live ports, into the removing set (its removal,
// owned by the caller; nil when the instance was not live). The caller's
// rule update (syncCompile, syncWait) moves the flows entering here to the
// stage's chosen instance and forgets the learned rules towards it, then
// the caller ends the removal (finishRemoval, failRemoval).
func (p *Plane) removeState(dc, stage int, idx uint8) (*removal, error) {
	st := p.dcs[dc]
	if _, ok := st.live[stage-1][idx]; !ok {
		return nil, nil
	}
	r := startRemoval(st, stage, idx, st.insts[stage-1][idx], st.nextSeq())
	delete(st.live[stage-1], idx)
	delete(st.insts[stage-1], idx)
	return r, leaveWorkingSet(st, stage, idx)
}

// RemoveInstance terminates an instance: its flows move off it (the rule
// update, applied without the plane's lock), then it is deleted. Were
// the update to fail, the instance is kept running (the switch may still
// send to it) and its index stays taken; it is deleted once a later
// successful update is on the switch (a retryFailed, a call's, or this
// call again), or at Close. A RemoveInstance of an index whose removal
// runs waits for it and returns its outcome.
func (p *Plane) RemoveInstance(ctx context.Context, dc, stage int, idx uint8) error {
	p.mu.Lock()
	st, err := p.standalone(dc)
	if err == nil && (stage < 1 || stage > routing.MaxStages) {
		err = fmt.Errorf("stage: %d is not one of 1..%d", stage, routing.MaxStages)
	}
	if err != nil {
		p.mu.Unlock()
		return err
	}
	var r *removal
	if prev := st.removing[stage-1][idx]; prev != nil {
		if !prev.pending() {
			p.mu.Unlock()
			select {
			case <-prev.done:
				return prev.err
			case <-ctx.Done():
				return fmt.Errorf("instance: stage %d index %d of dc%d is being removed: %w", stage, idx, dc, ctx.Err())
			}
		}
		r = startRemoval(st, stage, idx, prev.in, prev.seq) // its update again
	} else {
		in := st.insts[stage-1][idx]
		r, err = p.removeState(dc, stage, idx)
		if r == nil && err == nil {
			p.mu.Unlock()
			if in != nil {
				return p.deleteInstance(ctx, in)
			}
			return nil
		}
	}
	if err = p.removalUpdateUnlock(ctx, dc, r, err); err != nil && !errors.Is(err, errClosed) {
		failRemoval(r, err)
		return err
	}
	return p.finishRemoval(ctx, dc, stage, idx, r)
}

// AddCall stores a call's Table 1 mappings in its datacenters (StartCall
// without flows).
func (p *Plane) AddCall(ctx context.Context, c routing.Call) error {
	_, err := p.StartCall(ctx, c)
	return err
}

// callDCs refuses a call whose entry datacenters are not among the plane's
// (another node's are: their slots are nil).
func (p *Plane) callDCs(c routing.Call) error {
	for _, x := range []struct {
		field string
		dc    int
	}{{"call.callerDC", c.CallerDC}, {"call.calleeDC", c.CalleeDC}} {
		if x.dc < 0 || x.dc >= len(p.dcs) {
			return fmt.Errorf("%s: DC index %d is not one of the %d datacenters", x.field, x.dc, len(p.dcs))
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
	ds, gens, err := p.startCallState(c, flows)
	p.mu.Unlock()
	if err != nil {
		// gens: what the call's state change left, undone (commit.go)
		return nil, errors.Join(err, p.commit(ctx, gens))
	}
	if err := p.commit(ctx, gens); err != nil {
		// the call holds nothing: the media hook tries again on a
		// repeated start, and no end comes for it
		p.mu.Lock()
		gens := p.endCallState(c)
		p.mu.Unlock()
		return ds, errors.Join(err, p.commit(ctx, gens))
	}
	return ds, nil
}

// startCallState is StartCall's change of the plane's state (under mu): it
// returns the decisions and the change's generation per DC to commit. On
// an error the change is undone and the generations are the undoing's
// (nothing when nothing changed).
func (p *Plane) startCallState(c routing.Call, flows []FlowStart) ([]routing.Decision, map[int]uint64, error) {
	if err := p.callDCs(c); err != nil {
		return nil, nil, err
	}
	touched := map[int]bool{}
	for k, st := range p.dcs {
		if st == nil || (k != c.CallerDC && k != c.CalleeDC) {
			continue
		}
		var err error
		p.withTable(st, func(t *routing.Table) { err = t.AddCall(c) })
		if err != nil {
			return nil, nil, err
		}
		st.calls = append(st.calls, c)
		touched[k] = true
	}
	var ds []routing.Decision
	for _, f := range flows {
		st, err := p.dc(f.DC)
		if err != nil {
			return nil, p.endCallState(c), err
		}
		f.Packet.From = routing.FromUser
		var d routing.Decision
		p.withTable(st, func(t *routing.Table) { d = t.Route(f.Packet) })
		// a flow of an older call with this 5-tuple (a UA reusing its
		// media port) leaves: this call's rule replaces its rule
		st.addFlow(d, f.Packet, &c)
		st.recordStart(c, f.Packet)
		ds = append(ds, d)
		touched[f.DC] = true
	}
	return ds, p.changed(touched), nil
}

// OpenCall starts a call set up through the IMS (the media hook): its
// Table 1 mappings and both media flows, each entering at its sender's entry
// datacenter: the caller sends from (CallerIP, CallerSendPort) to its entry
// address and the callee's receive port, the callee likewise (the P-CSCFs
// rewrote each side's SDP to its entry address).
// A side whose entry datacenter is not this node's (cluster) is routed by
// the node that runs it.
func (p *Plane) OpenCall(ctx context.Context, c routing.Call) error {
	var flows []FlowStart
	for _, f := range []FlowStart{
		{DC: c.CallerDC, Packet: routing.Packet{Proto: 17, SrcIP: c.CallerIP, SrcPort: c.CallerSendPort, DstIP: c.CallerEntryIP, DstPort: c.CalleeRecvPort}},
		{DC: c.CalleeDC, Packet: routing.Packet{Proto: 17, SrcIP: c.CalleeIP, SrcPort: c.CalleeSendPort, DstIP: c.CalleeEntryIP, DstPort: c.CallerRecvPort}},
	} {
		p.mu.Lock()
		_, err := p.dc(f.DC)
		p.mu.Unlock()
		if err == nil {
			flows = append(flows, f)
		}
	}
	_, err := p.StartCall(ctx, c, flows...)
	return err
}

// CloseCall is EndCall for the media hook.
func (p *Plane) CloseCall(ctx context.Context, c routing.Call) error { return p.EndCall(ctx, c) }

// EndCall forgets a call StartCall started: its Table 1 mappings and the
// flows it routed and still owns (a newer call's flow of the same 5-tuple
// took the others over and stays), with one rule update per datacenter
// involved. A call equal to another one still open (one UA calling one
// peer again from the same media endpoint) leaves both to that one: its
// flows and mappings route the same packets. Learned rules of the call's
// flows at other datacenters expire when idle.
func (p *Plane) EndCall(ctx context.Context, c routing.Call) error {
	p.mu.Lock()
	if err := p.callDCs(c); err != nil {
		p.mu.Unlock()
		return err
	}
	gens := p.endCallState(c)
	p.mu.Unlock()
	return p.commit(ctx, gens)
}

// endCallState is EndCall's change of the plane's state (under mu): it
// returns the change's generation per DC to commit (none when an equal
// call still open keeps everything).
func (p *Plane) endCallState(c routing.Call) map[int]uint64 {
	shared := p.openCopies(c) > 1
	touched := map[int]bool{}
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		_, had := st.byCall[c]
		isCallDC := k == c.CallerDC || k == c.CalleeDC
		if !had && !isCallDC {
			continue
		}
		if i := slices.Index(st.calls, c); i >= 0 && isCallDC {
			st.calls = slices.Delete(st.calls, i, i+1)
		}
		st.forgetStart(c)
		if shared {
			continue // the rules stay: nothing to update
		}
		var owned []flowKey
		for _, sr := range slices.Clone(st.byCall[c]) {
			owned = append(owned, keyOf(st.flows[sr].Decision.Packet))
			// the flow's load leaves its instances (also a buffered
			// one's: dcroute keeps it for the instance's reuse)
			st.removeFlow(sr)
		}
		delete(st.byCall, c)
		if isCallDC {
			p.withTable(st, func(t *routing.Table) {
				t.RemoveCall(c)
				remap(t, st.calls, c)
			})
		}
		// (routed outside withTable: addFlow may release load through
		// the router, which holds its lock in View)
		st.giveBack(owned, func(pkt routing.Packet) (d routing.Decision) {
			p.withTable(st, func(t *routing.Table) { d = t.Route(pkt) })
			return d
		})
		touched[k] = true
	}
	return p.changed(touched)
}

// Calls returns the calls whose mappings datacenter dc holds.
func (p *Plane) Calls(dc int) []routing.Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return nil
	}
	return slices.Clone(st.calls)
}

// StartFlow routes a new flow entering at datacenter dc (its first packet,
// From = FromUser) and installs its rules: the flow is tagged with dc's
// current interval.
func (p *Plane) StartFlow(ctx context.Context, dc int, pkt routing.Packet) (routing.Decision, error) {
	var d routing.Decision
	pkt.From = routing.FromUser
	err := p.syncAfter(ctx, dc, func(st *dcState) error {
		p.withTable(st, func(t *routing.Table) { d = t.Route(pkt) })
		st.addFlow(d, routing.Packet{}, nil) // takes the 5-tuple over from an older flow
		return nil
	})
	return d, err
}

// StoreNext stores the next interval's path set in datacenter dc (step 4)
// and installs its tag rules.
func (p *Plane) StoreNext(ctx context.Context, dc int, interval uint64, paths map[placement.Pair]placement.Path) error {
	return p.changeTable(ctx, dc, func(t *routing.Table) error { return t.StoreNext(interval, paths) })
}

// Enter switches datacenter dc to interval (step 5): new flows are tagged
// with it, the oldest set's tag rules go.
func (p *Plane) Enter(ctx context.Context, dc int, interval uint64) error {
	return p.changeTable(ctx, dc, func(t *routing.Table) error { return t.Enter(interval) })
}

// changeTable applies change to datacenter dc's routing table and, when it
// succeeds, brings the switch's rules in line with the table (the plane's
// lock is not held across the apply: syncAfter).
func (p *Plane) changeTable(ctx context.Context, dc int, change func(*routing.Table) error) error {
	return p.syncAfter(ctx, dc, func(st *dcState) (err error) {
		p.withTable(st, func(t *routing.Table) { err = change(t) })
		return err
	})
}

// LastSync returns how long the last rule update took on the switch.
func (p *Plane) LastSync() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, st := range p.dcs {
		if st != nil {
			p.noteApplied(k, st)
		}
	}
	return p.last
}
