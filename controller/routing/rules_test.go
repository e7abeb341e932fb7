package routing

import (
	"strings"
	"testing"
)

// network is three DCs, each with a switch running the rule specifications.
type network struct {
	tables   []*Table
	switches []*sw
}

func newNetwork(t *testing.T, tables []*Table) *network {
	nw := &network{tables: tables}
	for _, tb := range tables {
		nw.switches = append(nw.switches, &sw{rules: tb.StaticRules()})
	}
	return nw
}

// send carries one packet from a user at DC entry to its receiver, asking a
// DC's table (Packet_IN) only when its switch sends the packet to the
// controller. It returns the delivered packet and the stage trace.
func (nw *network) send(t *testing.T, entry int, p Packet) (Packet, []string, bool) {
	t.Helper()
	dc, from := entry, Source{Kind: SourceUser}
	var trace []string
	for hops := 0; hops < 8; hops++ {
		s := nw.switches[dc]
		s.trace = nil
		out, q := s.run(from, p)
		if out.Kind == ToController {
			d := nw.tables[dc].Route(p)
			s.rules = d.AppendRules(s.rules)
			s.trace = nil
			out, q = s.run(from, p)
		}
		for _, x := range s.trace {
			trace = append(trace, "dc"+string(rune('0'+dc))+":"+x)
		}
		switch out.Kind {
		case ToTunnel:
			dc, from, p = out.DC, Source{Kind: SourceTunnel}, q
			p.From = FromTunnel // the switch reports the tunnel port to the controller
		case ToUser:
			return q, trace, true
		default:
			return q, trace, false
		}
	}
	t.Fatal("packet loops between datacenters")
	return Packet{}, nil, false
}

func TestRulesCarryFlowsLikeDecisions(t *testing.T) {
	tables, c := threeDC(t)
	nw := newNetwork(t, tables)
	got, trace, ok := nw.send(t, 0, callerPacket(c))
	if !ok {
		t.Fatalf("caller's packet not delivered; trace %v", trace)
	}
	if got.SrcIP != c.CalleeEntryIP || got.DstIP != c.CalleeIP || got.DstPort != c.CalleeRecvPort || got.SrcPort != c.CallerSendPort {
		t.Fatalf("delivered %+v", got)
	}
	want := "dc0:s1#13 dc2:s2#23 dc2:s3#33" // N=3, stage s instance index 3+10s
	if strings.Join(trace, " ") != want {
		t.Fatalf("trace %v, want %s", trace, want)
	}
	decisions := func() (n uint64) {
		for _, tb := range tables {
			n += tb.Counters().Decisions
		}
		return n
	}
	before := decisions()
	// The second packet of the flow follows the installed rules only.
	if got2, trace2, ok := nw.send(t, 0, callerPacket(c)); !ok || got2 != got || strings.Join(trace2, " ") != want {
		t.Fatalf("second packet: %+v %v %v", got2, trace2, ok)
	}
	if decisions() != before {
		t.Fatalf("second packet reached a controller")
	}
	// The callee's flow goes the other way: (1,1,2,0,0).
	back, trace, ok := nw.send(t, 1, calleePacket(c))
	if !ok || back.SrcIP != c.CallerEntryIP || back.DstIP != c.CallerIP || back.DstPort != c.CallerRecvPort {
		t.Fatalf("callee's packet: %+v %v %v", back, trace, ok)
	}
	if strings.Join(trace, " ") != "dc1:s1#13 dc2:s2#24 dc0:s3#33" { // dc2 stage 2: #23 carries the caller flow
		t.Fatalf("callee trace %v", trace)
	}
	// A local call: every stage and the exit rule in one DC.
	lc := callBetween(0, 0, 3)
	if err := tables[0].AddCall(lc); err != nil {
		t.Fatal(err)
	}
	got, trace, ok = nw.send(t, 0, callerPacket(lc))
	if !ok || got.DstIP != lc.CalleeIP || got.DstPort != lc.CalleeRecvPort || len(trace) != 3 {
		t.Fatalf("local call: %+v %v %v", got, trace, ok)
	}
	// A flow without a mapping is dropped by a per-flow drop rule.
	stranger := Packet{From: FromUser, Proto: 17, SrcIP: 99, SrcPort: 99, DstIP: c.CallerEntryIP, DstPort: 1}
	if _, _, ok := nw.send(t, 0, stranger); ok {
		t.Fatal("unmapped flow delivered")
	}
	if tables[0].Counters().Drops(DropNoMapping) != 1 {
		t.Fatalf("dc0 counters %+v", tables[0].Counters())
	}
}

func TestRuleStrings(t *testing.T) {
	tables, c := threeDC(t)
	d := tables[0].Route(callerPacket(c))
	rules := d.AppendRules(nil)
	if len(rules) != 1 {
		t.Fatalf("entry dc hosting stage 1 only: %d rules", len(rules))
	}
	got := rules[0].String()
	want := "priority=200,in=user,nw_proto=17,nw_src=10.0.0.5,nw_dst=192.168.0.1,tp_src=4000,tp_dst=5004 " +
		"actions=set_field:4->tp_dst,set_field:13.2.0.0/255.255.0.0->ip_dst,output:stage1-instance13  # dc0 flow 0→1@0 interval 0 → stage 1"
	if got != want {
		t.Fatalf("rule string\n got %s\nwant %s", got, want)
	}
	static := tables[2].StaticRules()
	var lines []string
	for _, r := range static {
		lines = append(lines, r.String())
	}
	all := strings.Join(lines, "\n")
	for _, part := range []string{
		"in=stage1-exit,nw_dst=0.23.0.0/0.255.0.0 actions=output:stage2-instance23",
		"in=stage2-exit,nw_dst=0.0.33.0/0.0.255.0 actions=output:stage3-instance33",
		"in=stage3-exit,nw_dst=0.0.0.1/0.0.0.255 actions=output:tunnel-dc1",
		"in=stage3-exit,nw_dst=0.0.0.2/0.0.0.255 actions=controller",
		"priority=0,in=tunnel actions=controller",
	} {
		if !strings.Contains(all, part) {
			t.Errorf("static rules lack %q:\n%s", part, all)
		}
	}
	// 2×2 instance rules (stages 2, 3) + 3 stages × 2 other DCs tunnels + 1 exit + 2 miss.
	if len(static) != 4+6+1+2 {
		t.Errorf("%d static rules:\n%s", len(static), all)
	}
	if s := d.String(); !strings.Contains(s, "tag=0→1@0") || !strings.Contains(s, "tunnel→dc2") {
		t.Errorf("decision string %q", s)
	}
}
