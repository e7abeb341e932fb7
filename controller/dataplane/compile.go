// Package dataplane turns one datacenter's routing state (controller/routing:
// the three path sets, the interval tag, the per-stage instance choice, the
// Table 1 exit translation) into OpenFlow rules for that datacenter's Open
// vSwitch bridge (drivers/ovs), and runs a whole real data plane on this
// machine: one bridge per datacenter, patch-port links between them, users'
// namespaces behind their entry datacenter and DP instances in namespaces of
// their own (drivers/netns).
//
// Rules of one bridge (docs/dataplane.md has the full picture):
//
//	table 0   in_port → reg0: 1 users, 2 tunnel, 10+s out of a stage-s instance
//	table 1   200  per flow entering here (routing.Decision.AppendRules), with
//	               the pair in the cookie; its actions first count the
//	               packet on the pair's counter rule (ovs.CountPair:
//	               reg3 = pair, resubmit to table 2)
//	          200  per call: Table 1 exit translation (mapping 2/4) for flows
//	               leaving the chain here, from the tunnel or out of stage m
//	          190  learned per-flow rules (the learn action of a tag rule)
//	          100  tag rules: a tunnel arrival whose tag names (entry, exit,
//	               interval mod 4) of a held path set and whose routing byte
//	               of the position it heads to names this DC: write the
//	               instances of its bucket and the next hop, learn a
//	               per-flow rule, output; with IgnoreIntervalTag only the
//	               current set, the tag's interval bits masked out. The
//	               flows are split into 16 buckets by bits 1..4 of the UDP
//	               source port (masked tp_src matches, one rule per aligned
//	               run of buckets with the same instances), each stage's
//	               live instances getting buckets in proportion to
//	               routing.Table.Shares, where Route would place the next
//	               2 flows (split.go); one rule when every
//	               stage here has one instance
//	          100  static rules (paper 5.3): out of stage s−1 to the instance
//	               named by byte s; out of stage s to the tunnel named by
//	               byte s+1
//	            0  anything else: drop (counted)
//	table 2   100  per pair of the topology: reg3 = the pair → nothing (its
//	               counter: ovs.PairCounter, Switch.PairPackets)
//
// Compile is pure; Plane applies its output through ovs.Switch (a diff in one
// bundle), so step 4 (StoreNext) adds the next interval's tag rules and step
// 5 (Enter) removes the oldest set's, and a flow tagged with the previous or
// current interval always has its rule.
//
// Plane also owns which call routes each media 5-tuple (takeover.go): one
// route per 5-tuple, the newest open call's; a call's end removes only the
// flows it still owns and gives each back to the newest open call that has
// it. Call changes queued behind a rule update share the next one (group
// commit), each caller answered for its own change.
package dataplane

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// Port numbers on every bridge.
const (
	UserPort = 1
)

// TunnelPort is the OpenFlow port of the link to datacenter k.
func TunnelPort(k int) int { return 100 + k }

// Ports are the two OpenFlow ports of a DP instance.
type Ports struct{ In, Out int }

// Source register values (reg0).
const (
	regUser   = 1
	regTunnel = 2
	regStage  = 10 // + stage
)

// Flow is a flow this datacenter routed when it entered the chain here.
type Flow struct {
	Serial   uint32
	Decision routing.Decision
	// Packet is the first packet the decision was made for (zero when not
	// kept): a flow dropped because this DC could not route it yet is
	// routed again from it once it can (repairFlows).
	Packet routing.Packet
}

// Inputs is everything one bridge's rules depend on.
type Inputs struct {
	Table *routing.Table
	// Live are the instances with ports on the bridge per stage (working and
	// buffered: a buffered instance still carries its flows).
	Live [routing.MaxStages]map[uint8]Ports
	// Flows entered the chain here; Calls are the calls whose Table 1
	// mappings the table holds.
	Flows []Flow
	Calls []routing.Call
	// UsersMAC is the MAC address of the users' interface behind UserPort.
	UsersMAC string
	// LearnIdle is the idle timeout (s) of learned per-flow rules.
	LearnIdle int
}

func hexIP(ip uint32) string { return routing.IPv4(ip).String() }

func matchString(m routing.Match, stages int) (string, error) {
	var parts []string
	switch m.Proto {
	case 0:
		parts = append(parts, "ip")
	case 17:
		parts = append(parts, "udp")
	case 6:
		parts = append(parts, "tcp")
	default:
		parts = append(parts, fmt.Sprintf("ip,nw_proto=%d", m.Proto))
	}
	switch m.From.Kind {
	case routing.SourceUser:
		parts = append(parts, fmt.Sprintf("reg0=%d", regUser))
	case routing.SourceTunnel:
		parts = append(parts, fmt.Sprintf("reg0=%d", regTunnel))
	case routing.SourceStage:
		if m.From.Stage < 1 || m.From.Stage > stages {
			return "", fmt.Errorf("match: stage %d is not one of 1..%d", m.From.Stage, stages)
		}
		parts = append(parts, fmt.Sprintf("reg0=%d", regStage+m.From.Stage))
	default:
		return "", fmt.Errorf("match: unknown source %s", m.From)
	}
	ip := func(name string, v routing.IPv4, mask uint32) {
		switch mask {
		case 0:
		case 0xffffffff:
			parts = append(parts, fmt.Sprintf("%s=%s", name, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%s/%s", name, hexIP(uint32(v)&mask), hexIP(mask)))
		}
	}
	port := func(name string, v, mask uint16) {
		switch mask {
		case 0:
		case 0xffff:
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%#x/%#x", name, v&mask, mask))
		}
	}
	ip("nw_src", m.SrcIP, m.SrcIPMask)
	ip("nw_dst", m.DstIP, m.DstIPMask)
	if (m.SrcPortMask != 0 || m.DstPortMask != 0) && m.Proto != 17 && m.Proto != 6 {
		return "", fmt.Errorf("match: ports need UDP or TCP, protocol is %d", m.Proto)
	}
	port("tp_src", m.SrcPort, m.SrcPortMask)
	port("tp_dst", m.DstPort, m.DstPortMask)
	return strings.Join(parts, ","), nil
}

func (in *Inputs) actionString(acts []routing.Action, proto uint8) (string, error) {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case routing.SetDstPort:
			f := "udp_dst"
			if proto == 6 {
				f = "tcp_dst"
			}
			out = append(out, fmt.Sprintf("set_field:%d->%s", a.Port, f))
		case routing.SetDstIPBits:
			out = append(out, fmt.Sprintf("set_field:%s/%s->ip_dst", hexIP(uint32(a.IP)&a.Mask), hexIP(a.Mask)))
		case routing.SetSrcIP:
			out = append(out, fmt.Sprintf("set_field:%s->ip_src", a.IP))
		case routing.SetDstIP:
			out = append(out, fmt.Sprintf("set_field:%s->ip_dst", a.IP))
		case routing.ToInstance:
			if a.Stage < 1 || a.Stage > routing.MaxStages {
				return "", fmt.Errorf("action: stage %d", a.Stage)
			}
			p, ok := in.Live[a.Stage-1][a.Instance]
			if !ok {
				return "drop", nil // the instance has no port (gone): nothing to send to
			}
			out = append(out, fmt.Sprintf("output:%d", p.In))
		case routing.ToTunnel:
			out = append(out, fmt.Sprintf("output:%d", TunnelPort(a.DC)))
		case routing.ToUser:
			out = append(out, fmt.Sprintf("set_field:%s->eth_dst", in.UsersMAC), fmt.Sprintf("output:%d", UserPort))
		case routing.ToController, routing.DropPacket:
			// no Packet_IN handler: flows are routed by the rules below
			return "drop", nil
		default:
			return "", fmt.Errorf("action: unknown kind %d", a.Kind)
		}
	}
	if len(out) == 0 {
		return "drop", nil
	}
	return strings.Join(out, ","), nil
}

func (in *Inputs) rule(r routing.FlowRule, table uint8, cookie uint64) (ovs.Flow, error) {
	m, err := matchString(r.Match, in.Table.Stages())
	if err != nil {
		return ovs.Flow{}, fmt.Errorf("%s: %v", r.Why, err)
	}
	a, err := in.actionString(r.Actions, r.Match.Proto)
	if err != nil {
		return ovs.Flow{}, fmt.Errorf("%s: %v", r.Why, err)
	}
	return ovs.Flow{Table: table, Priority: r.Priority, Cookie: cookie, Match: m, Actions: a}, nil
}

// Compile returns the bridge's whole rule set.
func Compile(in Inputs) ([]ovs.Flow, error) {
	t := in.Table
	dc, n, m := t.DC(), t.N(), t.Stages()
	var out []ovs.Flow
	// table 0: where a packet comes from
	cls := func(match string, reg int) {
		out = append(out, ovs.Flow{Table: 0, Priority: 100, Cookie: ovs.CookieClassify, Match: match,
			Actions: fmt.Sprintf("set_field:%d->reg0,goto_table:1", reg)})
	}
	cls(fmt.Sprintf("in_port=%d", UserPort), regUser)
	for k := 0; k < n; k++ {
		if k != dc {
			cls(fmt.Sprintf("in_port=%d", TunnelPort(k)), regTunnel)
		}
	}
	for s := 1; s <= m; s++ {
		for _, idx := range sortedKeys(in.Live[s-1]) {
			cls(fmt.Sprintf("in_port=%d", in.Live[s-1][idx].Out), regStage+s)
		}
	}
	out = append(out,
		ovs.Flow{Table: 0, Priority: 0, Cookie: ovs.CookieMiss, Actions: "drop"},
		ovs.Flow{Table: 1, Priority: 0, Cookie: ovs.CookieMiss, Actions: "drop"})

	// static rules: between stages by routing byte (every live instance, so a
	// buffered one keeps its flows), into tunnels by routing byte
	for s := 2; s <= m; s++ {
		for _, idx := range sortedKeys(in.Live[s-1]) {
			out = append(out, ovs.Flow{Table: 1, Priority: routing.PriorityStatic, Cookie: ovs.CookieStatic,
				Match:   fmt.Sprintf("ip,reg0=%d,nw_dst=%s/%s", regStage+s-1, hexIP(uint32(idx)<<routing.StageShift(s)), hexIP(routing.StageMask(s))),
				Actions: fmt.Sprintf("output:%d", in.Live[s-1][idx].In)})
		}
	}
	for _, r := range t.StaticRules() {
		if len(r.Actions) != 1 || r.Actions[0].Kind != routing.ToTunnel {
			continue // instance rules above; controller/miss rules: the drop rule
		}
		f, err := in.rule(r, 1, ovs.CookieStatic)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}

	// the pair counters, for as long as the bridge lives, so no flow's
	// end ends a count: one per pair an entry rule here can name
	// (counterPairs)
	for _, p := range counterPairs(dc, n, in.Flows) {
		out = append(out, ovs.PairCounter(p))
	}

	// per flow entering here: its first rule (the arrival) counts the
	// packet on its pair's counter first
	for _, fl := range in.Flows {
		d := fl.Decision
		rs := d.AppendRules(nil)
		for i, r := range rs {
			ck := ovs.CookieExit
			pr := ovs.Pair{Entry: d.Tag.Entry, Exit: d.Tag.Exit}
			if i == 0 {
				ck = ovs.EntryCookie(pr, fl.Serial)
			}
			f, err := in.rule(r, 1, ck)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				f.Actions = ovs.CountPair(pr, f.Actions)
			}
			out = append(out, f)
		}
	}

	// per call: exit translation for flows leaving the chain here
	exitMatch := fmt.Sprintf("nw_dst=%s/%s", hexIP(uint32(dc)<<routing.StageShift(m+1)), hexIP(routing.StageMask(m+1)))
	seen := map[routing.Endpoint]bool{}
	for _, c := range in.Calls {
		var senders []routing.Endpoint
		if c.CallerDC == dc {
			senders = append(senders, routing.Endpoint{IP: c.CalleeIP, Port: c.CalleeSendPort})
		}
		if c.CalleeDC == dc {
			senders = append(senders, routing.Endpoint{IP: c.CallerIP, Port: c.CallerSendPort})
		}
		for _, snd := range senders {
			x, ok := t.ExitMapping(snd)
			if !ok || seen[snd] {
				continue
			}
			seen[snd] = true
			acts := fmt.Sprintf("set_field:%s->ip_src,set_field:%s->ip_dst,set_field:%d->udp_dst,set_field:%s->eth_dst,output:%d",
				x.SrcIP, x.DstIP, x.DstPort, in.UsersMAC, UserPort)
			for _, reg := range []int{regTunnel, regStage + m} {
				out = append(out, ovs.Flow{Table: 1, Priority: routing.PriorityFlow, Cookie: ovs.CookieExit,
					Match: fmt.Sprintf("udp,reg0=%d,nw_src=%s,tp_src=%d,%s", reg, snd.IP, snd.Port, exitMatch), Actions: acts})
			}
		}
	}

	// tag rules
	tags, err := in.tagRules()
	if err != nil {
		return nil, err
	}
	return append(out, tags...), nil
}

func sortedKeys(m map[uint8]Ports) []uint8 {
	ks := make([]uint8, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// tagRules compiles the held path sets into rules for flows arriving through
// the tunnel heading to a stage this datacenter hosts.
func (in *Inputs) tagRules() ([]ovs.Flow, error) {
	t := in.Table
	dc, m := t.DC(), t.Stages()
	sets := t.HeldSets()
	if t.IgnoresIntervalTag() {
		cur := t.Interval()
		sets = slices.DeleteFunc(sets, func(h routing.HeldSet) bool { return h.Interval != cur })
	}
	idle := in.LearnIdle
	if idle <= 0 {
		idle = 10
	}
	sp := newSplitter(t, &in.Live)
	var out []ovs.Flow
	for _, h := range sets {
		pairs := make([]placement.Pair, 0, len(h.Paths))
		for p := range h.Paths {
			pairs = append(pairs, p)
		}
		slices.SortFunc(pairs, func(a, b placement.Pair) int {
			if a.Entry != b.Entry {
				return a.Entry - b.Entry
			}
			return a.Exit - b.Exit
		})
		for _, pr := range pairs {
			p := h.Paths[pr]
			pos := 0
			for i := 1; i <= m; i++ {
				if p[i] == dc && p[i-1] != dc {
					pos = i
					break
				}
			}
			if pos == 0 {
				continue // not on this path, or only as the exit (per-call exit rules)
			}
			last := pos
			for last < m+1 && p[last+1] == dc {
				last++
			}
			next := m + 1
			nextDC := dc
			if last < m+1 {
				next, nextDC = last+1, p[last+1]
			}
			tag := routing.NewTag(pr.Entry, pr.Exit, h.Interval)
			port, err := tag.Encode()
			if err != nil {
				return nil, err
			}
			tpDst := fmt.Sprintf("tp_dst=%d", port)
			if t.IgnoresIntervalTag() {
				tpDst = fmt.Sprintf("tp_dst=%#x/0xfffc", port&0xfffc)
			}
			match := fmt.Sprintf("udp,reg0=%d,%s,nw_dst=%s/%s", regTunnel, tpDst,
				hexIP(uint32(dc)<<routing.StageShift(pos)), hexIP(routing.StageMask(pos)))
			for _, b := range sp.blocks(pos, min(last, m)) {
				ip := uint32(nextDC) << routing.StageShift(next)
				mask := routing.StageMask(next)
				for s := pos; s <= min(last, m); s++ {
					ip |= uint32(b.inst[s-1]) << routing.StageShift(s)
					mask |= routing.StageMask(s)
				}
				inPort := in.Live[pos-1][b.inst[pos-1]].In
				acts := fmt.Sprintf("move:NXM_OF_IP_DST[]->NXM_NX_REG1[],set_field:%#x/%#x->reg1,set_field:%d->reg2,"+
					"learn(table=1,priority=190,idle_timeout=%d,cookie=%#x,NXM_NX_REG0[],eth_type=0x800,nw_proto=17,"+
					"NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_UDP_SRC[],NXM_OF_UDP_DST[],"+
					"load:NXM_NX_REG1[]->NXM_OF_IP_DST[],output:NXM_NX_REG2[]),"+
					"move:NXM_NX_REG1[]->NXM_OF_IP_DST[],output:%d",
					ip, mask, inPort, idle, ovs.CookieLearned, inPort)
				out = append(out, ovs.Flow{Table: 1, Priority: routing.PriorityStatic, Cookie: ovs.CookieTag | uint64(h.Interval&3),
					Match: match + b.match, Actions: acts})
			}
		}
	}
	return out, nil
}

// counterPairs returns the pairs whose counter rule DC dc's bridge needs:
// the flows compiled here enter the chain here, so a routed decision's tag
// is (dc, exit) for an exit x < n (routing.Table.Route), and a dropped one
// with no mapping has the zero tag, (0, 0): n+1 rules (n at DC 0), not one
// per pair of the topology. A flow naming any other pair (none does) gets
// its counter too, so its packets are counted all the same (that counter
// goes when its last flow does: a read before the bundle).
func counterPairs(dc, n int, flows []Flow) []ovs.Pair {
	ps := make([]ovs.Pair, 0, n+1)
	have := make(map[ovs.Pair]bool, n+1)
	add := func(p ovs.Pair) {
		if !have[p] {
			have[p] = true
			ps = append(ps, p)
		}
	}
	add(ovs.Pair{})
	for x := 0; x < n; x++ {
		add(ovs.Pair{Entry: dc, Exit: x})
	}
	for _, fl := range flows {
		add(ovs.Pair{Entry: fl.Decision.Tag.Entry, Exit: fl.Decision.Tag.Exit})
	}
	return ps
}
