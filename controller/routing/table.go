package routing

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ims-orch/ims-orch/placement"
)

// Config creates a Table.
type Config struct {
	// DC is this datacenter's index, N the number of datacenters (≤ MaxDCs).
	DC, N int
	// Stages is m, the length of the data-plane chain (1..MaxStages).
	Stages int
	// Interval is the local scaling interval the table starts in, and Paths
	// its path set (may be empty: flows are then dropped as DropNoPath).
	Interval uint64
	Paths    map[placement.Pair]placement.Path
	// IgnoreIntervalTag routes every flow by the local current interval's
	// path set instead of the interval in its tag: the untagged baseline of
	// paper 6.3.2, for experiments only. Production leaves it false.
	IgnoreIntervalTag bool
}

// InstanceLoad is one working instance of a stage in this datacenter as the
// local controller last measured it.
type InstanceLoad struct {
	// Index is the instance's routing index, N..255, unique within the stage.
	Index uint8 `json:"index"`
	// Load is its current workload (flows or packets/s: the unit of Packet.Load).
	Load float64 `json:"load"`
	// Overloaded is the reactive-scaling state of paper 4.3: new flows avoid
	// the instance while a normal one exists.
	Overloaded bool `json:"overloaded,omitempty"`
}

// Arrival says how a packet reached this datacenter's switch.
type Arrival uint8

// Arrivals.
const (
	// FromUser: sent by a user to an entry IP of this datacenter; the flow
	// enters the chain here and is tagged.
	FromUser Arrival = iota + 1
	// FromTunnel: arrived through the inter-datacenter tunnel, already tagged.
	FromTunnel
)

func (a Arrival) String() string {
	switch a {
	case FromUser:
		return "user"
	case FromTunnel:
		return "tunnel"
	}
	return fmt.Sprintf("arrival(%d)", uint8(a))
}

// Packet is the first packet of a new flow, as the switch reports it.
type Packet struct {
	From             Arrival
	Proto            uint8 // IP protocol (17 for RTP over UDP); 0 = unknown
	SrcIP, DstIP     IPv4
	SrcPort, DstPort uint16
	// Load is the flow's expected workload added to each chosen instance;
	// 0 (or anything not positive or not finite) counts as 1, i.e. one flow.
	Load float64
}

// Verdict is what a datacenter does with a flow.
type Verdict uint8

// Verdicts.
const (
	Forward Verdict = iota + 1
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// DropReason says why a flow was dropped.
type DropReason uint8

// Drop reasons; the zero value means "not dropped".
const (
	NotDropped DropReason = iota
	// DropNotOnPath: the path set used says another datacenter processes the
	// position the flow is heading to (paper 6.3.2).
	DropNotOnPath
	// DropUnknownInterval: the tag's interval is not the previous, current or
	// next local interval, or that interval's path set is not held.
	DropUnknownInterval
	// DropNoInstance: a stage to process here has no working instance.
	DropNoInstance
	// DropNoPath: the path set used has no path for the flow's pair.
	DropNoPath
	// DropNoMapping: no Table 1 mapping for the flow's source endpoint (at the
	// entry: mapping 1/3; at the exit: mapping 2/4).
	DropNoMapping
	// DropBadHeader: the tag or routing bytes do not decode, the flow was
	// tunnelled to another datacenter, or the arrival kind is unknown.
	DropBadHeader
	numDropReasons
)

var dropNames = [numDropReasons]string{"", "not-on-path", "unknown-interval", "no-instance", "no-path", "no-mapping", "bad-header"}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// DropReasons lists every drop reason, for exporting counters.
func DropReasons() []DropReason {
	out := make([]DropReason, 0, numDropReasons-1)
	for r := DropNotOnPath; r < numDropReasons; r++ {
		out = append(out, r)
	}
	return out
}

// Counters are a Table's running totals since it was created.
type Counters struct {
	Decisions uint64 // Route calls
	Forwarded uint64
	Entered   uint64 // flows tagged here (forwarded, FromUser)
	Exited    uint64 // flows translated out of the chain here
	Dropped   [numDropReasons]uint64
}

// Drops returns the number of flows dropped for reason r.
func (c Counters) Drops(r DropReason) uint64 {
	if r < numDropReasons {
		return c.Dropped[r]
	}
	return 0
}

// TotalDropped sums the drops over every reason.
func (c Counters) TotalDropped() uint64 {
	var s uint64
	for _, v := range c.Dropped {
		s += v
	}
	return s
}

// Decision is what a datacenter does with a new flow. It is a value with no
// pointers into the table; AppendRules compiles it into flow rules.
type Decision struct {
	Verdict Verdict
	Reason  DropReason // when Verdict == Drop
	DC      int        // the deciding datacenter
	Stages  int        // m
	Packet  Packet     // the packet as it arrived

	Tag      Tag
	Interval uint64 // the interval whose path set was used
	// Path is the path used (entry, stage DCs, exit); Path[:Stages+2].
	Path [MaxHops]uint8
	// Entry is set when the flow was tagged here, Exit when it leaves the
	// chain here.
	Entry, Exit bool
	// First..Last are the stages processed here (First > Last: none);
	// Instances[s-1] is the chosen instance index of stage s.
	First, Last int
	Instances   [MaxStages]uint8
	// DstIP and DstPort are the destination after this datacenter's rewrite;
	// DstIPMask marks the routing bytes it wrote.
	DstIP     IPv4
	DstIPMask uint32
	DstPort   uint16
	// Next is the datacenter the flow is tunnelled to after the local stages,
	// -1 when it exits here.
	Next int
	// Translation is the exit rewrite (Exit only).
	Translation ExitTranslation
	// Load is the workload added to each chosen instance.
	Load float64

	hasPath bool
}

// PathDCs returns the path used as a placement.Path (nil when none).
func (d *Decision) PathDCs() placement.Path {
	if !d.hasPath {
		return nil
	}
	p := make(placement.Path, d.Stages+2)
	for i := range p {
		p[i] = int(d.Path[i])
	}
	return p
}

func (d Decision) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dc%d %s %s:%d→%s:%d", d.DC, d.Packet.From, d.Packet.SrcIP, d.Packet.SrcPort, d.Packet.DstIP, d.Packet.DstPort)
	if d.Verdict != Forward {
		fmt.Fprintf(&b, " drop(%s)", d.Reason)
		return b.String()
	}
	fmt.Fprintf(&b, " tag=%s interval=%d path=(", d.Tag, d.Interval)
	for i := 0; i < d.Stages+2 && i < MaxHops; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", d.Path[i])
	}
	b.WriteByte(')')
	if d.Entry {
		b.WriteString(" entry")
	}
	for s := d.First; s <= d.Last; s++ {
		fmt.Fprintf(&b, " s%d→#%d", s, d.Instances[s-1])
	}
	fmt.Fprintf(&b, " dst=%s:%d", d.DstIP, d.DstPort)
	if d.Exit {
		fmt.Fprintf(&b, " exit(%s)", d.Translation)
	} else {
		fmt.Fprintf(&b, " tunnel→dc%d", d.Next)
	}
	return b.String()
}

// hopEntry is one pair's path in a path set.
type hopEntry struct {
	ok bool
	dc [MaxHops]uint8
}

// pathSet is the path set of one interval, indexed entry·N+exit.
type pathSet struct {
	held     bool
	interval uint64
	paths    []hopEntry
}

// slots of Table.sets.
const (
	prevSlot = iota
	curSlot
	nextSlot
)

// Table routes the flows of one datacenter.
type Table struct {
	dc, n, m  int
	ignoreTag bool
	sets      [3]pathSet
	inst      [MaxStages][]InstanceLoad
	pack      [MaxStages]float64
	spread    [MaxStages]float64
	entry     map[Endpoint]entryRow
	exit      map[Endpoint]ExitTranslation
	c         Counters
}

// NewTable checks cfg and returns the table of one datacenter.
func NewTable(cfg Config) (*Table, error) {
	if cfg.N < 1 || cfg.N > MaxDCs {
		return nil, ferr("datacenters", "%d datacenters, the flow tag supports 1..%d", cfg.N, MaxDCs)
	}
	if cfg.DC < 0 || cfg.DC >= cfg.N {
		return nil, ferr("dc", "DC index %d is not one of the %d datacenters", cfg.DC, cfg.N)
	}
	if cfg.Stages < 1 || cfg.Stages > MaxStages {
		return nil, ferr("stages", "%d stages, the destination-IP encoding supports 1..%d (byte m+1 is the exit)", cfg.Stages, MaxStages)
	}
	t := &Table{
		dc: cfg.DC, n: cfg.N, m: cfg.Stages, ignoreTag: cfg.IgnoreIntervalTag,
		entry: map[Endpoint]entryRow{},
		exit:  map[Endpoint]ExitTranslation{},
	}
	for i := range t.sets {
		t.sets[i].paths = make([]hopEntry, cfg.N*cfg.N)
	}
	if err := t.fill(&t.sets[curSlot], cfg.Paths); err != nil {
		return nil, err
	}
	t.sets[curSlot].held = true
	t.sets[curSlot].interval = cfg.Interval
	return t, nil
}

// DC returns this datacenter's index.
func (t *Table) DC() int { return t.dc }

// Interval returns the local current interval.
func (t *Table) Interval() uint64 { return t.sets[curSlot].interval }

// Counters returns a copy of the running totals.
func (t *Table) Counters() Counters { return t.c }

// fill validates paths and writes them into s (unchanged on error).
func (t *Table) fill(s *pathSet, paths map[placement.Pair]placement.Path) error {
	// Validate in a deterministic order so the first error is stable.
	pairs := make([]placement.Pair, 0, len(paths))
	for p := range paths {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].Entry != pairs[j].Entry {
			return pairs[i].Entry < pairs[j].Entry
		}
		return pairs[i].Exit < pairs[j].Exit
	})
	for _, pr := range pairs {
		if err := checkPath(pr, paths[pr], t.n, t.m); err != nil {
			return err
		}
	}
	clear(s.paths)
	for pr, p := range paths {
		e := &s.paths[pr.Entry*t.n+pr.Exit]
		e.ok = true
		for i, d := range p {
			e.dc[i] = uint8(d)
		}
	}
	return nil
}

func checkPath(pr placement.Pair, p placement.Path, n, m int) error {
	f := fmt.Sprintf("paths[%d→%d]", pr.Entry, pr.Exit)
	if pr.Entry < 0 || pr.Entry >= n || pr.Exit < 0 || pr.Exit >= n {
		return ferr(f, "entry or exit is not one of the %d datacenters", n)
	}
	if len(p) != m+2 {
		return ferr(f, "has %d datacenters, want m+2 = %d", len(p), m+2)
	}
	for i, d := range p {
		if d < 0 || d >= n {
			return ferr(fmt.Sprintf("%s[%d]", f, i), "DC index %d is not one of the %d datacenters", d, n)
		}
	}
	if p[0] != pr.Entry || p[m+1] != pr.Exit {
		return ferr(f, "path %v must start at the entry and end at the exit datacenter", []int(p))
	}
	// a drained DC's own pair leaves it and comes back only as the exit:
	// packets carry the position they head to, so the roles never mix
	if !p.Loopless() && !p.ReturnsOnlyAsExit() {
		return ferr(f, "path %v comes back to a datacenter it left (restriction 2 of 5.2)", []int(p))
	}
	return nil
}

// StoreNext keeps the path set of interval (the local interval + 1) for use
// after Enter (protocol step 4). Storing the same interval again replaces it
// (a re-sent step 4). Any other interval is an error and changes nothing.
func (t *Table) StoreNext(interval uint64, paths map[placement.Pair]placement.Path) error {
	cur := t.sets[curSlot].interval
	if interval != cur+1 {
		return ferr("interval", "path set for interval %d, the next interval is %d (local interval %d)", interval, cur+1, cur)
	}
	s := &t.sets[nextSlot]
	if err := t.fill(s, paths); err != nil {
		return err
	}
	s.held = true
	s.interval = interval
	return nil
}

// Enter switches to interval (protocol step 5): the current path set becomes
// the previous one and the stored next one the current one. Entering the
// current interval again is a no-op (a re-sent step 5). Entering any other
// interval, or the next one before its path set was stored, is an error and
// changes nothing.
func (t *Table) Enter(interval uint64) error {
	cur := t.sets[curSlot].interval
	switch {
	case interval == cur:
		return nil
	case interval != cur+1:
		return ferr("interval", "cannot enter interval %d from local interval %d", interval, cur)
	case !t.sets[nextSlot].held:
		return ferr("interval", "no path set stored for interval %d (step 4 must come before step 5)", interval)
	}
	old := t.sets[prevSlot]
	t.sets[prevSlot] = t.sets[curSlot]
	t.sets[curSlot] = t.sets[nextSlot]
	t.sets[nextSlot] = pathSet{paths: old.paths}
	return nil
}

// Path returns the path of pair in the path set of interval (previous,
// current or next local interval), or false.
func (t *Table) Path(interval uint64, pair placement.Pair) (placement.Path, bool) {
	if pair.Entry < 0 || pair.Entry >= t.n || pair.Exit < 0 || pair.Exit >= t.n {
		return nil, false
	}
	for i := range t.sets {
		s := &t.sets[i]
		if s.held && s.interval == interval {
			e := s.paths[pair.Entry*t.n+pair.Exit]
			if !e.ok {
				return nil, false
			}
			p := make(placement.Path, t.m+2)
			for j := range p {
				p[j] = int(e.dc[j])
			}
			return p, true
		}
	}
	return nil, false
}

// SetInstances replaces the working instances of stage (1..m) and their
// workload; the local controller calls it when its registry or measurements
// change. Buffered instances must not be listed: no flow is routed to them.
func (t *Table) SetInstances(stage int, insts []InstanceLoad) error {
	if stage < 1 || stage > t.m {
		return ferr("stage", "stage %d is not one of 1..%d", stage, t.m)
	}
	var seen [256]bool
	for i, x := range insts {
		f := fmt.Sprintf("instances[stage %d][%d]", stage, i)
		if int(x.Index) < t.n {
			return ferr(f+".index", "index %d is reserved for the tunnel to datacenter %d; instance indices start at N = %d", x.Index, x.Index, t.n)
		}
		if seen[x.Index] {
			return ferr(f+".index", "index %d is used twice in stage %d", x.Index, stage)
		}
		seen[x.Index] = true
		if math.IsNaN(x.Load) || math.IsInf(x.Load, 0) || x.Load < 0 {
			return ferr(f+".load", "must be a finite non-negative number, got %g", x.Load)
		}
	}
	t.inst[stage-1] = append(t.inst[stage-1][:0], insts...)
	return nil
}

// Instances returns a copy of stage's instances with their workload,
// including the load Route added since the last SetInstances.
func (t *Table) Instances(stage int) []InstanceLoad {
	if stage < 1 || stage > t.m {
		return nil
	}
	return append([]InstanceLoad(nil), t.inst[stage-1]...)
}

// AddCall stores the Table 1 mappings of c that belong to this datacenter:
// 1 and 2 when it is the caller's entry datacenter, 3 and 4 when it is the
// callee's (all four when both users share it). A later call from the same
// endpoint replaces an earlier one.
func (t *Table) AddCall(c Call) error {
	if err := c.validate(t.n); err != nil {
		return err
	}
	caller := Endpoint{c.CallerIP, c.CallerSendPort}
	callee := Endpoint{c.CalleeIP, c.CalleeSendPort}
	if c.CallerDC == t.dc {
		t.entry[caller] = entryRow{peer: c.CalleeIP, exit: c.CalleeDC}                                         // 1
		t.exit[callee] = ExitTranslation{SrcIP: c.CallerEntryIP, DstIP: c.CallerIP, DstPort: c.CallerRecvPort} // 2
	}
	if c.CalleeDC == t.dc {
		t.entry[callee] = entryRow{peer: c.CallerIP, exit: c.CallerDC}                                         // 3
		t.exit[caller] = ExitTranslation{SrcIP: c.CalleeEntryIP, DstIP: c.CalleeIP, DstPort: c.CalleeRecvPort} // 4
	}
	return nil
}

// RemoveCall forgets the mappings AddCall stored for c (the call ended).
func (t *Table) RemoveCall(c Call) {
	caller := Endpoint{c.CallerIP, c.CallerSendPort}
	callee := Endpoint{c.CalleeIP, c.CalleeSendPort}
	if c.CallerDC == t.dc {
		delete(t.entry, caller)
		delete(t.exit, callee)
	}
	if c.CalleeDC == t.dc {
		delete(t.entry, callee)
		delete(t.exit, caller)
	}
}

// EntryMapping returns mapping 1 or 3 for a sender: its peer and the flow's
// exit datacenter.
func (t *Table) EntryMapping(from Endpoint) (peer IPv4, exitDC int, ok bool) {
	r, ok := t.entry[from]
	return r.peer, r.exit, ok
}

// ExitMapping returns mapping 2 or 4 for a sender.
func (t *Table) ExitMapping(from Endpoint) (ExitTranslation, bool) {
	x, ok := t.exit[from]
	return x, ok
}

// Mappings returns how many entry and exit mappings the table holds.
func (t *Table) Mappings() (entry, exit int) { return len(t.entry), len(t.exit) }

func (t *Table) drop(d *Decision, r DropReason) Decision {
	d.Verdict = Drop
	d.Reason = r
	t.c.Dropped[r]++
	return *d
}

// setFor returns the held path set of the interval a tag names, or nil.
func (t *Table) setFor(tagInterval uint8) *pathSet {
	cur := &t.sets[curSlot]
	if t.ignoreTag {
		return cur
	}
	var s *pathSet
	switch (tagInterval - uint8(cur.interval)) & tagIntervalMask {
	case 0:
		s = cur
	case 1:
		s = &t.sets[nextSlot]
	case 3:
		s = &t.sets[prevSlot]
	default:
		return nil
	}
	if !s.held {
		return nil
	}
	return s
}

// Route decides what this datacenter does with a new flow (its first
// packet): at the entry it looks up Table 1 mapping 1/3, tags the flow with
// the current interval and follows the current path; elsewhere it reads the
// tag and the routing position, picks the path set of the tag's interval and
// checks that this datacenter is the path's datacenter for that position.
// It then picks the least-loaded instance of every stage it hosts (or packs,
// SetPackLimit), writes
// their indices and the next datacenter into the destination address and,
// when the flow exits here, applies Table 1 mapping 2/4. It never allocates.
func (t *Table) Route(p Packet) Decision {
	d := Decision{DC: t.dc, Stages: t.m, Packet: p, Next: -1, DstIP: p.DstIP, DstPort: p.DstPort}
	t.c.Decisions++
	d.Load = p.Load
	if !(d.Load > 0) || math.IsInf(d.Load, 1) {
		d.Load = 1
	}
	m1 := t.m + 1
	var e *hopEntry
	pos := 1 // the position the flow is heading to
	switch p.From {
	case FromUser:
		row, ok := t.entry[Endpoint{p.SrcIP, p.SrcPort}]
		if !ok {
			return t.drop(&d, DropNoMapping)
		}
		s := &t.sets[curSlot]
		d.Tag = NewTag(t.dc, row.exit, s.interval)
		d.Interval = s.interval
		e = &s.paths[t.dc*t.n+row.exit]
		if !e.ok {
			return t.drop(&d, DropNoPath)
		}
		d.Entry = true
		d.DstPort = d.Tag.port()
	case FromTunnel:
		d.Tag = unpackTag(p.DstPort)
		if d.Tag.Entry >= t.n || d.Tag.Exit >= t.n {
			return t.drop(&d, DropBadHeader)
		}
		var dc int
		pos, dc = position(p.DstIP, t.n, t.m)
		if pos == 0 || dc != t.dc {
			return t.drop(&d, DropBadHeader)
		}
		s := t.setFor(d.Tag.Interval)
		if s == nil {
			return t.drop(&d, DropUnknownInterval)
		}
		d.Interval = s.interval
		e = &s.paths[d.Tag.Entry*t.n+d.Tag.Exit]
		if !e.ok {
			return t.drop(&d, DropNoPath)
		}
		if int(e.dc[pos]) != t.dc {
			d.Path, d.hasPath = e.dc, true
			return t.drop(&d, DropNotOnPath)
		}
	default:
		return t.drop(&d, DropBadHeader)
	}
	d.Path, d.hasPath = e.dc, true
	// The local block is pos..last; paths are loopless so it is contiguous.
	last := pos - 1
	for last < m1 && int(e.dc[last+1]) == t.dc {
		last++
	}
	d.First, d.Last = pos, min(last, t.m)
	if last == m1 {
		x, ok := t.exit[Endpoint{p.SrcIP, p.SrcPort}]
		if !ok {
			return t.drop(&d, DropNoMapping)
		}
		d.Exit = true
		d.Translation = x
	}
	// Choose every instance before adding load so a drop changes nothing.
	var chosen [MaxStages]int
	for s := d.First; s <= d.Last; s++ {
		i := pick(t.inst[s-1], t.pack[s-1], t.spread[s-1], d.Load)
		if i < 0 {
			return t.drop(&d, DropNoInstance)
		}
		chosen[s-1] = i
	}
	ip := uint32(p.DstIP)
	for s := d.First; s <= d.Last; s++ {
		x := &t.inst[s-1][chosen[s-1]]
		x.Load += d.Load
		d.Instances[s-1] = x.Index
		ip = ip&^StageMask(s) | uint32(x.Index)<<StageShift(s)
		d.DstIPMask |= StageMask(s)
	}
	next := m1 // the byte naming the next datacenter (or this one at the exit)
	if last < m1 {
		next = last + 1
		d.Next = int(e.dc[next])
	}
	ip = ip&^StageMask(next) | uint32(e.dc[next])<<StageShift(next)
	d.DstIPMask |= StageMask(next)
	d.DstIP = IPv4(ip)
	d.Verdict = Forward
	t.c.Forwarded++
	if d.Entry {
		t.c.Entered++
	}
	if d.Exit {
		t.c.Exited++
	}
	return d
}

// SetPackLimit sets how Route places the new flows of stage (1..m). With
// limit 0 (the default) each goes to the least-loaded normal instance, which
// spreads the calls evenly. With limit > 0 (in the unit of Packet.Load, e.g.
// flows) new flows are packed: each goes to the most-loaded normal instance
// whose load stays at or under limit with the flow (ties to the earlier
// instance), and only when no normal instance has that room to the
// least-loaded one as without packing: no instance is packed past limit
// while another normal one has room. Packing concentrates calls on
// few instances: the least-loaded ones, which a proactive round moves to the
// buffer first, carry few pinned calls and leave sooner. An overloaded
// instance gets no packed flow. A limit that is negative, NaN or infinite is
// an error and changes nothing.
func (t *Table) SetPackLimit(stage int, limit float64) error {
	return t.setLimit(t.pack[:], "packLimit", stage, limit)
}

// setLimit sets stage's entry of a per-stage limit (pack or spread), named
// field in errors.
func (t *Table) setLimit(limits []float64, field string, stage int, limit float64) error {
	if stage < 1 || stage > t.m {
		return ferr("stage", "stage %d is not one of 1..%d", stage, t.m)
	}
	if math.IsNaN(limit) || math.IsInf(limit, 0) || limit < 0 {
		return ferr(fmt.Sprintf("%s[stage %d]", field, stage), "must be a finite non-negative load, got %g", limit)
	}
	limits[stage-1] = limit
	return nil
}

// limitOf returns stage's entry of a per-stage limit (0 for a stage out of
// range).
func (t *Table) limitOf(limits []float64, stage int) float64 {
	if stage < 1 || stage > t.m {
		return 0
	}
	return limits[stage-1]
}

// SetSpreadLimit sets the load (in the unit of Packet.Load, e.g. flows)
// past which Route stops favouring the normal instances of stage (1..m):
// when the least-loaded normal instance would pass limit with a new flow
// and an overloaded instance carries less, the flow goes to the
// overloaded instance with the fewest flows (the lowest Load: the flows
// pinned to it, not its measured load; that is the one with the most
// headroom only while the instances of a stage have the same capacity and
// flows of the same rate — an instance overloaded by a few heavy flows or
// a starved VM is picked first). Limit
// 0 (the default) is the paper's rule: new flows avoid overloaded instances
// while a normal one exists (4.3). An instance is overloaded for a while
// after it crosses its threshold and stays so until a sample shows it
// below; without a limit, every new flow of that window lands on the few
// instances still normal and pushes them past their capacity while the
// overloaded ones still have room. A limit that is negative, NaN or
// infinite is an error and changes nothing.
func (t *Table) SetSpreadLimit(stage int, limit float64) error {
	return t.setLimit(t.spread[:], "spreadLimit", stage, limit)
}

// SpreadLimit returns stage's spread limit (0: new flows avoid overloaded
// instances while a normal one exists).
func (t *Table) SpreadLimit(stage int) float64 {
	return t.limitOf(t.spread[:], stage)
}

// PackLimit returns stage's packing limit (0: least-loaded routing).
func (t *Table) PackLimit(stage int) float64 {
	return t.limitOf(t.pack[:], stage)
}

// pick returns the position of the instance a new flow of the given load
// goes to: with limit > 0 the most-loaded normal instance that stays at or
// under limit with it; otherwise (or when none has that room) the
// least-loaded normal instance, else the least-loaded overloaded one, else
// -1. With spread > 0 (SetSpreadLimit), when the least-loaded normal
// instance would pass spread with the flow and an overloaded one carries
// less, the flow goes to the overloaded one with the fewest flows (lowest
// Load, the flows pinned to it — not measured headroom: the two agree only
// while a stage's instances have the same capacity and flows the same
// rate). Ties go to the earlier instance. Packing comes first: a spread
// limit below the pack limit acts as the pack limit (system refuses one).
func pick(xs []InstanceLoad, limit, spread, load float64) int {
	if limit > 0 {
		p := -1
		for i := range xs {
			if xs[i].Overloaded || xs[i].Load+load > limit {
				continue
			}
			if p < 0 || xs[i].Load > xs[p].Load {
				p = i
			}
		}
		if p >= 0 {
			return p
		}
	}
	best, over := -1, -1
	for i := range xs {
		if xs[i].Overloaded {
			if over < 0 || xs[i].Load < xs[over].Load {
				over = i
			}
			continue
		}
		if best < 0 || xs[i].Load < xs[best].Load {
			best = i
		}
	}
	if best < 0 {
		return over
	}
	if spread > 0 && over >= 0 && xs[best].Load+load > spread && xs[over].Load < xs[best].Load {
		return over
	}
	return best
}

// Release takes a forwarded flow's load back from the instances Route chose
// for it (the flow ended), if they are still registered.
func (t *Table) Release(d *Decision) {
	if d.Verdict != Forward || d.DC != t.dc {
		return
	}
	for s := d.First; s <= d.Last && s <= t.m; s++ {
		xs := t.inst[s-1]
		for i := range xs {
			if xs[i].Index == d.Instances[s-1] {
				xs[i].Load = max(0, xs[i].Load-d.Load)
				break
			}
		}
	}
}
