package routing

import (
	"fmt"
	"strings"
)

// Rule priorities: per-flow rules shadow the static ones, which shadow the
// table-miss rules that send a new flow's first packet to the controller.
const (
	PriorityFlow   uint16 = 200
	PriorityStatic uint16 = 100
	PriorityMiss   uint16 = 0
)

// SourceKind says where a packet a rule matches comes from. A driver maps it
// to the switch ports (or a register set on them): the ingress port facing
// the users, the tunnel port(s), the exit NICs of the stage's instances.
type SourceKind uint8

// Sources.
const (
	SourceUser   SourceKind = iota + 1 // a user's packet to an entry IP of this DC
	SourceTunnel                       // out of the inter-DC tunnel
	SourceStage                        // out of the exit NIC of a stage-Stage instance
)

// Source is SourceUser, SourceTunnel or SourceStage with a stage number.
type Source struct {
	Kind  SourceKind
	Stage int // SourceStage only: 1..m
}

func (s Source) String() string {
	switch s.Kind {
	case SourceUser:
		return "user"
	case SourceTunnel:
		return "tunnel"
	case SourceStage:
		return fmt.Sprintf("stage%d-exit", s.Stage)
	}
	return fmt.Sprintf("source(%d)", uint8(s.Kind))
}

func sourceOf(a Arrival) Source {
	if a == FromUser {
		return Source{Kind: SourceUser}
	}
	return Source{Kind: SourceTunnel}
}

// Match selects packets. A zero mask (or Proto 0) is a wildcard.
type Match struct {
	From                 Source
	Proto                uint8
	SrcIP                IPv4
	SrcIPMask            uint32
	DstIP                IPv4
	DstIPMask            uint32
	SrcPort, SrcPortMask uint16
	DstPort, DstPortMask uint16
}

func (m Match) String() string {
	parts := []string{"in=" + m.From.String()}
	if m.Proto != 0 {
		parts = append(parts, fmt.Sprintf("nw_proto=%d", m.Proto))
	}
	ip := func(name string, v IPv4, mask uint32) {
		switch mask {
		case 0:
		case 0xffffffff:
			parts = append(parts, fmt.Sprintf("%s=%s", name, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%s/%s", name, IPv4(uint32(v)&mask), IPv4(mask)))
		}
	}
	port := func(name string, v, mask uint16) {
		switch mask {
		case 0:
		case 0xffff:
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%#04x/%#04x", name, v&mask, mask))
		}
	}
	ip("nw_src", m.SrcIP, m.SrcIPMask)
	ip("nw_dst", m.DstIP, m.DstIPMask)
	port("tp_src", m.SrcPort, m.SrcPortMask)
	port("tp_dst", m.DstPort, m.DstPortMask)
	return strings.Join(parts, ",")
}

// ActionKind is what an Action does.
type ActionKind uint8

// Actions, applied in order.
const (
	SetDstPort   ActionKind = iota + 1 // tp_dst ← Port (the tag, or the receive port at the exit)
	SetDstIPBits                       // ip_dst ← ip_dst &^ Mask | IP & Mask (routing bytes)
	SetSrcIP                           // ip_src ← IP (exit translation)
	SetDstIP                           // ip_dst ← IP (exit translation)
	ToInstance                         // output to the entry NIC of instance Instance of stage Stage
	ToTunnel                           // output into the tunnel to datacenter DC
	ToUser                             // output towards the users (the flow left the chain)
	ToController                       // send to the local controller (Packet_IN)
	DropPacket                         // drop (paper 6.3.2: "a rule that drops all the packets of this flow")
)

// Action is one step of a rule; only the fields its Kind names are used.
type Action struct {
	Kind     ActionKind
	IP       IPv4
	Mask     uint32
	Port     uint16
	Stage    int
	Instance uint8
	DC       int
}

func (a Action) String() string {
	switch a.Kind {
	case SetDstPort:
		return fmt.Sprintf("set_field:%d->tp_dst", a.Port)
	case SetDstIPBits:
		return fmt.Sprintf("set_field:%s/%s->ip_dst", IPv4(uint32(a.IP)&a.Mask), IPv4(a.Mask))
	case SetSrcIP:
		return fmt.Sprintf("set_field:%s->ip_src", a.IP)
	case SetDstIP:
		return fmt.Sprintf("set_field:%s->ip_dst", a.IP)
	case ToInstance:
		return fmt.Sprintf("output:stage%d-instance%d", a.Stage, a.Instance)
	case ToTunnel:
		return fmt.Sprintf("output:tunnel-dc%d", a.DC)
	case ToUser:
		return "output:users"
	case ToController:
		return "controller"
	case DropPacket:
		return "drop"
	}
	return fmt.Sprintf("action(%d)", uint8(a.Kind))
}

// FlowRule is a switch-independent rule specification; an OpenFlow/OVS
// driver translates Source and the output actions to its ports.
type FlowRule struct {
	Priority uint16
	Match    Match
	Actions  []Action
	// Why says what the rule is for, for logs and explanations.
	Why string
}

func (r FlowRule) String() string {
	acts := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		acts[i] = a.String()
	}
	return fmt.Sprintf("priority=%d,%s actions=%s  # %s", r.Priority, r.Match, strings.Join(acts, ","), r.Why)
}

// flowMatch matches exactly the flow of the packet as it arrived.
func flowMatch(p Packet) Match {
	return Match{
		From: sourceOf(p.From), Proto: p.Proto,
		SrcIP: p.SrcIP, SrcIPMask: 0xffffffff,
		DstIP: p.DstIP, DstIPMask: 0xffffffff,
		SrcPort: p.SrcPort, SrcPortMask: 0xffff,
		DstPort: p.DstPort, DstPortMask: 0xffff,
	}
}

func (d *Decision) exitActions() []Action {
	return []Action{
		{Kind: SetSrcIP, IP: d.Translation.SrcIP},
		{Kind: SetDstIP, IP: d.Translation.DstIP},
		{Kind: SetDstPort, Port: d.Translation.DstPort},
		{Kind: ToUser},
	}
}

// AppendRules appends the per-flow rules that carry out d in its
// datacenter and returns the extended slice:
//
//   - a dropped flow: one rule dropping every packet of the flow;
//   - otherwise an arrival rule (the flow as it arrived: tag the port at the
//     entry, write the routing bytes, then output to the first local stage's
//     instance, into the tunnel, or, exit-only, translate and deliver);
//   - when the flow exits here after local stages, an exit rule matching it
//     out of stage m that applies the Table 1 translation.
//
// The static rules (Table.StaticRules) move the flow between local stages
// and into the tunnel by the routing bytes.
func (d *Decision) AppendRules(dst []FlowRule) []FlowRule {
	arrival := flowMatch(d.Packet)
	if d.Verdict != Forward {
		return append(dst, FlowRule{
			Priority: PriorityFlow, Match: arrival,
			Actions: []Action{{Kind: DropPacket}},
			Why:     fmt.Sprintf("dc%d drops flow %s: %s", d.DC, d.Tag, d.Reason),
		})
	}
	var acts []Action
	if d.Entry {
		acts = append(acts, Action{Kind: SetDstPort, Port: d.DstPort})
	}
	acts = append(acts, Action{Kind: SetDstIPBits, IP: d.DstIP, Mask: d.DstIPMask})
	why := fmt.Sprintf("dc%d flow %s interval %d", d.DC, d.Tag, d.Interval)
	switch {
	case d.First <= d.Last:
		acts = append(acts, Action{Kind: ToInstance, Stage: d.First, Instance: d.Instances[d.First-1]})
		why += fmt.Sprintf(" → stage %d", d.First)
	case d.Exit:
		acts = append(acts, d.exitActions()...)
		why += " exits here"
	default:
		acts = append(acts, Action{Kind: ToTunnel, DC: d.Next})
		why += fmt.Sprintf(" → dc%d", d.Next)
	}
	dst = append(dst, FlowRule{Priority: PriorityFlow, Match: arrival, Actions: acts, Why: why})
	if d.Exit && d.First <= d.Last {
		m1 := d.Stages + 1
		dst = append(dst, FlowRule{
			Priority: PriorityFlow,
			Match: Match{
				From: Source{Kind: SourceStage, Stage: d.Stages}, Proto: d.Packet.Proto,
				SrcIP: d.Packet.SrcIP, SrcIPMask: 0xffffffff,
				DstIP: d.DstIP, DstIPMask: StageMask(m1),
				SrcPort: d.Packet.SrcPort, SrcPortMask: 0xffff,
				DstPort: d.DstPort, DstPortMask: 0xffff,
			},
			Actions: d.exitActions(),
			Why:     fmt.Sprintf("dc%d flow %s leaves the chain: %s", d.DC, d.Tag, d.Translation),
		})
	}
	return dst
}

// StaticRules returns this datacenter's static rules (paper 5.3) for its
// current instances:
//
//   - out of stage i−1, routing byte i = an instance index of stage i:
//     output to that instance (i = 2..m; stage 1 and the first local stage
//     of a flow are reached through the flow's arrival rule);
//   - out of stage i, routing byte i+1 = k ≠ this DC: tunnel to DC k;
//   - out of stage m, byte m+1 = this DC: to the controller (the per-flow
//     exit rule normally shadows it);
//   - table miss from users or the tunnel: to the controller (Packet_IN).
//
// The rules change when SetInstances changes the instance set; a driver
// installs the difference.
func (t *Table) StaticRules() []FlowRule {
	var out []FlowRule
	for s := 2; s <= t.m; s++ {
		for _, x := range t.inst[s-1] {
			out = append(out, FlowRule{
				Priority: PriorityStatic,
				Match:    Match{From: Source{Kind: SourceStage, Stage: s - 1}, DstIP: IPv4(uint32(x.Index) << StageShift(s)), DstIPMask: StageMask(s)},
				Actions:  []Action{{Kind: ToInstance, Stage: s, Instance: x.Index}},
				Why:      fmt.Sprintf("dc%d stage %d instance %d", t.dc, s, x.Index),
			})
		}
	}
	for s := 1; s <= t.m; s++ {
		for k := 0; k < t.n; k++ {
			r := FlowRule{
				Priority: PriorityStatic,
				Match:    Match{From: Source{Kind: SourceStage, Stage: s}, DstIP: IPv4(uint32(k) << StageShift(s+1)), DstIPMask: StageMask(s + 1)},
			}
			switch {
			case k != t.dc:
				r.Actions = []Action{{Kind: ToTunnel, DC: k}}
				r.Why = fmt.Sprintf("dc%d after stage %d: next position in dc%d", t.dc, s, k)
			case s == t.m:
				r.Actions = []Action{{Kind: ToController}}
				r.Why = fmt.Sprintf("dc%d after stage %d: flow exits here without an exit rule", t.dc, s)
			default:
				continue
			}
			out = append(out, r)
		}
	}
	for _, src := range []SourceKind{SourceUser, SourceTunnel} {
		out = append(out, FlowRule{
			Priority: PriorityMiss,
			Match:    Match{From: Source{Kind: src}},
			Actions:  []Action{{Kind: ToController}},
			Why:      fmt.Sprintf("dc%d new flow from %s: Packet_IN", t.dc, Source{Kind: src}),
		})
	}
	return out
}
