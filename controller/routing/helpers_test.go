package routing

import (
	"fmt"

	"github.com/ims-orch/ims-orch/placement"
)

// tester is what the helpers need of *testing.T and *rapid.T.
type tester interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func ip(t tester, s string) IPv4 {
	t.Helper()
	a, err := ParseIPv4(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type pathMap = map[placement.Pair]placement.Path

func pr(e, x int) placement.Pair { return placement.Pair{Entry: e, Exit: x} }

// instancesFor gives DC dc `per` instances per stage with distinct indices
// ≥ n: stage s instance j has index 10·s + j + n.
func instancesFor(t tester, tb *Table, n, m, per int) {
	t.Helper()
	for s := 1; s <= m; s++ {
		xs := make([]InstanceLoad, per)
		for j := range xs {
			xs[j] = InstanceLoad{Index: uint8(n + 10*s + j)}
		}
		if err := tb.SetInstances(s, xs); err != nil {
			t.Fatal(err)
		}
	}
}

// newTables builds one table per DC, all in interval 0 with the same paths
// and `per` instances per stage.
func newTables(t tester, n, m, per int, paths pathMap, ignoreTag bool) []*Table {
	t.Helper()
	out := make([]*Table, n)
	for dc := range out {
		tb, err := NewTable(Config{DC: dc, N: n, Stages: m, Paths: paths, IgnoreIntervalTag: ignoreTag})
		if err != nil {
			t.Fatal(err)
		}
		instancesFor(t, tb, n, m, per)
		out[dc] = tb
	}
	return out
}

// callBetween returns a call between users at DCs a (caller) and b (callee);
// id makes its endpoints unique.
func callBetween(a, b, id int) Call {
	return Call{
		CallerDC: a, CalleeDC: b,
		CallerIP:       IPv4(0x0a000000 | uint32(a)<<16 | uint32(id&0xffff)),
		CalleeIP:       IPv4(0x0b000000 | uint32(b)<<16 | uint32(id&0xffff)),
		CallerSendPort: uint16(20000 + 2*(id%10000)), CallerRecvPort: uint16(20001 + 2*(id%10000)),
		CalleeSendPort: uint16(40000 + 2*(id%10000)), CalleeRecvPort: uint16(40001 + 2*(id%10000)),
		CallerEntryIP: IPv4(0xc0a80000 | uint32(a)<<8 | 1),
		CalleeEntryIP: IPv4(0xc0a80000 | uint32(b)<<8 | 1),
	}
}

// callerPacket is the first packet of the caller's media flow as it reaches
// the caller's entry DC; calleePacket the callee's.
func callerPacket(c Call) Packet {
	return Packet{From: FromUser, Proto: 17, SrcIP: c.CallerIP, SrcPort: c.CallerSendPort, DstIP: c.CallerEntryIP, DstPort: 5004}
}

func calleePacket(c Call) Packet {
	return Packet{From: FromUser, Proto: 17, SrcIP: c.CalleeIP, SrcPort: c.CalleeSendPort, DstIP: c.CalleeEntryIP, DstPort: 5006}
}

// tunnelled is the packet the next DC sees after d.
func tunnelled(d Decision) Packet {
	p := d.Packet
	p.From = FromTunnel
	p.DstIP = d.DstIP
	p.DstPort = d.DstPort
	return p
}

// journey routes a flow's first packet DC by DC, without delay, and returns
// every decision (the last is a drop or an exit).
func journey(t tester, tables []*Table, entry int, p Packet) []Decision {
	t.Helper()
	var out []Decision
	dc := entry
	for hop := 0; hop <= MaxHops+1; hop++ {
		d := tables[dc].Route(p)
		out = append(out, d)
		if d.Verdict != Forward || d.Exit {
			return out
		}
		p = tunnelled(d)
		dc = d.Next
	}
	t.Fatalf("flow did not end after %d hops: %v", MaxHops+2, out)
	return nil
}

// sw is a switch interpreter for the rule specifications: it applies the
// highest-priority matching rule (first installed on ties) and follows
// packets through instances (which forward unchanged) until they leave.
type sw struct {
	rules []FlowRule
	trace []string
}

func (m Match) matches(from Source, p Packet) bool {
	if m.From != from {
		return false
	}
	if m.Proto != 0 && m.Proto != p.Proto {
		return false
	}
	return uint32(p.SrcIP)&m.SrcIPMask == uint32(m.SrcIP)&m.SrcIPMask &&
		uint32(p.DstIP)&m.DstIPMask == uint32(m.DstIP)&m.DstIPMask &&
		p.SrcPort&m.SrcPortMask == m.SrcPort&m.SrcPortMask &&
		p.DstPort&m.DstPortMask == m.DstPort&m.DstPortMask
}

// run forwards p arriving from `from`; it returns the final action and the
// packet as it leaves.
func (s *sw) run(from Source, p Packet) (Action, Packet) {
	for steps := 0; steps < 16; steps++ {
		var best *FlowRule
		for i := range s.rules {
			r := &s.rules[i]
			if r.Match.matches(from, p) && (best == nil || r.Priority > best.Priority) {
				best = r
			}
		}
		if best == nil {
			return Action{}, p
		}
		var out Action
		for _, a := range best.Actions {
			switch a.Kind {
			case SetDstPort:
				p.DstPort = a.Port
			case SetDstIPBits:
				p.DstIP = IPv4(uint32(p.DstIP)&^a.Mask | uint32(a.IP)&a.Mask)
			case SetSrcIP:
				p.SrcIP = a.IP
			case SetDstIP:
				p.DstIP = a.IP
			default:
				out = a
			}
		}
		if out.Kind != ToInstance {
			return out, p
		}
		s.trace = append(s.trace, fmt.Sprintf("s%d#%d", out.Stage, out.Instance))
		from = Source{Kind: SourceStage, Stage: out.Stage}
	}
	return Action{}, p
}
