package routing

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
)

func TestNewTableErrors(t *testing.T) {
	good := pathMap{pr(0, 1): {0, 0, 2, 2, 1}}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no datacenters", Config{N: 0, Stages: 3}, "datacenters"},
		{"too many datacenters", Config{N: 129, Stages: 3}, "datacenters"},
		{"dc out of range", Config{DC: 3, N: 3, Stages: 3}, "dc"},
		{"negative dc", Config{DC: -1, N: 3, Stages: 3}, "dc"},
		{"no stages", Config{N: 3, Stages: 0}, "stages"},
		{"four stages", Config{N: 3, Stages: 4}, "stages"},
		{"path too short", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 1): {0, 0, 1}}}, "paths[0→1]"},
		{"path wrong entry", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 1): {2, 2, 2, 2, 1}}}, "paths[0→1]"},
		{"path wrong exit", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 1): {0, 0, 0, 0, 0}}}, "paths[0→1]"},
		{"path loops", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 1): {0, 2, 0, 0, 1}}}, "paths[0→1]"},
		{"path dc out of range", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 1): {0, 7, 7, 7, 1}}}, "paths[0→1][1]"},
		{"pair out of range", Config{N: 3, Stages: 3, Paths: pathMap{pr(0, 5): {0, 0, 0, 5, 5}}}, "paths[0→5]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTable(tc.cfg)
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("NewTable error = %v, want a FieldError on %q", err, tc.field)
			}
		})
	}
	if _, err := NewTable(Config{DC: 2, N: 3, Stages: 3, Paths: good}); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestStoreNextAndEnter(t *testing.T) {
	p5 := pathMap{pr(0, 1): {0, 0, 0, 1, 1}}
	p6 := pathMap{pr(0, 1): {0, 2, 2, 2, 1}}
	p6b := pathMap{pr(0, 1): {0, 0, 2, 2, 1}}
	tb, err := NewTable(Config{DC: 2, N: 3, Stages: 3, Interval: 5, Paths: p5})
	if err != nil {
		t.Fatal(err)
	}
	mustErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
	}
	mustErr("store interval 7 from 5", tb.StoreNext(7, p6))
	mustErr("store interval 5 from 5", tb.StoreNext(5, p6))
	mustErr("enter 6 before step 4", tb.Enter(6))
	if err := tb.StoreNext(6, p6); err != nil {
		t.Fatal(err)
	}
	if err := tb.StoreNext(6, p6b); err != nil { // re-sent step 4 with a new set replaces it
		t.Fatal(err)
	}
	mustErr("store an invalid set", tb.StoreNext(6, pathMap{pr(0, 1): {0, 1, 0, 1, 1}}))
	if got, ok := tb.Path(6, pr(0, 1)); !ok || !got.Equal(placement.Path{0, 0, 2, 2, 1}) {
		t.Fatalf("next path = %v %v; the invalid store must not have changed it", got, ok)
	}
	if got, ok := tb.Path(5, pr(0, 1)); !ok || !got.Equal(p5[pr(0, 1)]) || tb.Interval() != 5 {
		t.Fatalf("current path before Enter = %v %v (interval %d)", got, ok, tb.Interval())
	}
	mustErr("enter 7 from 5", tb.Enter(7))
	if err := tb.Enter(6); err != nil {
		t.Fatal(err)
	}
	if err := tb.Enter(6); err != nil { // re-sent step 5
		t.Fatalf("repeated Enter: %v", err)
	}
	if tb.Interval() != 6 {
		t.Fatalf("interval = %d", tb.Interval())
	}
	if got, ok := tb.Path(5, pr(0, 1)); !ok || !got.Equal(p5[pr(0, 1)]) {
		t.Fatalf("previous path = %v %v", got, ok)
	}
	if _, ok := tb.Path(7, pr(0, 1)); ok {
		t.Fatal("next set held before step 4 of the next round")
	}
	if err := tb.StoreNext(7, p5); err != nil {
		t.Fatal(err)
	}
	if err := tb.Enter(7); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Path(5, pr(0, 1)); ok {
		t.Fatal("interval 5's set kept two intervals later")
	}
	if got, _ := tb.Path(6, pr(0, 1)); !got.Equal(placement.Path{0, 0, 2, 2, 1}) {
		t.Fatalf("previous path after second Enter = %v", got)
	}
	if _, ok := tb.Path(7, pr(1, 0)); ok {
		t.Fatal("pair without a path reported one")
	}
}

// threeDC is the path (0,0,2,2,1) for 0→1 and (1,1,2,0,0) for 1→0.
func threeDC(t *testing.T) ([]*Table, Call) {
	paths := pathMap{pr(0, 1): {0, 0, 2, 2, 1}, pr(1, 0): {1, 1, 2, 0, 0}, pr(0, 0): {0, 0, 0, 0, 0}}
	tables := newTables(t, 3, 3, 2, paths, false)
	c := Call{
		CallerDC: 0, CalleeDC: 1,
		CallerIP: ip(t, "10.0.0.5"), CalleeIP: ip(t, "10.1.0.7"),
		CallerSendPort: 4000, CallerRecvPort: 4002,
		CalleeSendPort: 6000, CalleeRecvPort: 6002,
		CallerEntryIP: ip(t, "192.168.0.1"), CalleeEntryIP: ip(t, "192.168.1.1"),
	}
	for _, tb := range tables {
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
	}
	return tables, c
}

func TestRouteAlongPathAndExitTranslation(t *testing.T) {
	tables, c := threeDC(t)
	ds := journey(t, tables, 0, callerPacket(c))
	if len(ds) != 3 {
		t.Fatalf("want 3 decisions (dc0, dc2, dc1), got %v", ds)
	}
	d0, d2, d1 := ds[0], ds[1], ds[2]
	wantPort, _ := Tag{0, 1, 0}.Encode()
	if !d0.Entry || d0.Tag != (Tag{0, 1, 0}) || d0.DstPort != wantPort || d0.First != 1 || d0.Last != 1 || d0.Next != 2 {
		t.Fatalf("entry decision: %v", d0)
	}
	// Stage 1 instance in byte 1, DC 2 in byte 2, bytes 3 and 4 untouched.
	if got, want := d0.DstIP, IPv4(uint32(d0.Instances[0])<<24|2<<16|0x0001); got != want {
		t.Fatalf("dc0 dst = %s, want %s", got, want)
	}
	if d0.DstIPMask != 0xffff0000 {
		t.Fatalf("dc0 mask = %#x", d0.DstIPMask)
	}
	if d2.Entry || d2.Exit || d2.First != 2 || d2.Last != 3 || d2.Next != 1 || d2.Tag != d0.Tag {
		t.Fatalf("dc2 decision: %v", d2)
	}
	if StageByte(d2.DstIP, 1) != d0.Instances[0] || StageByte(d2.DstIP, 2) != d2.Instances[1] ||
		StageByte(d2.DstIP, 3) != d2.Instances[2] || StageByte(d2.DstIP, 4) != 1 {
		t.Fatalf("dc2 dst = %s", d2.DstIP)
	}
	if !d1.Exit || d1.First <= d1.Last || d1.Next != -1 {
		t.Fatalf("dc1 decision: %v", d1)
	}
	// Mapping 4: src → callee entry IP, dst → callee IP:receive port.
	want := ExitTranslation{SrcIP: ip(t, "192.168.1.1"), DstIP: ip(t, "10.1.0.7"), DstPort: 6002}
	if d1.Translation != want {
		t.Fatalf("exit translation = %v, want %v", d1.Translation, want)
	}

	// The callee's flow: mapping 3 at dc1, path (1,1,2,0,0), mapping 2 at dc0.
	ds = journey(t, tables, 1, calleePacket(c))
	if len(ds) != 3 || ds[0].Tag != (Tag{1, 0, 0}) || ds[0].Last != 1 || ds[1].DC != 2 || ds[1].First != 2 || ds[1].Last != 2 {
		t.Fatalf("callee flow: %v", ds)
	}
	last := ds[2]
	if last.DC != 0 || !last.Exit || last.First != 3 || last.Last != 3 {
		t.Fatalf("callee flow exit at dc0: %v", last)
	}
	want = ExitTranslation{SrcIP: ip(t, "192.168.0.1"), DstIP: ip(t, "10.0.0.5"), DstPort: 4002}
	if last.Translation != want {
		t.Fatalf("mapping 2 translation = %v, want %v", last.Translation, want)
	}
	for dc, tb := range tables {
		c := tb.Counters()
		if c.TotalDropped() != 0 || c.Forwarded != c.Decisions {
			t.Errorf("dc%d counters %+v", dc, c)
		}
	}
	if c := tables[0].Counters(); c.Entered != 1 || c.Exited != 1 {
		t.Errorf("dc0 entered/exited = %d/%d", c.Entered, c.Exited)
	}
}

func TestTable1Mappings(t *testing.T) {
	c := Call{
		CallerDC: 0, CalleeDC: 1,
		CallerIP: ip(t, "10.0.0.5"), CalleeIP: ip(t, "10.1.0.7"),
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 6000, CalleeRecvPort: 6002,
		CallerEntryIP: ip(t, "192.168.0.1"), CalleeEntryIP: ip(t, "192.168.1.1"),
	}
	caller, callee := Endpoint{c.CallerIP, 4000}, Endpoint{c.CalleeIP, 6000}
	tables := newTables(t, 3, 3, 1, nil, false)
	for _, tb := range tables {
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
	}
	// Caller entry DC: 1. caller → callee IP (exit dc1); 2. callee → (caller entry IP, caller IP, caller recv port).
	if peer, exit, ok := tables[0].EntryMapping(caller); !ok || peer != c.CalleeIP || exit != 1 {
		t.Errorf("mapping 1 = %v %d %v", peer, exit, ok)
	}
	if x, ok := tables[0].ExitMapping(callee); !ok || x != (ExitTranslation{c.CallerEntryIP, c.CallerIP, 4002}) {
		t.Errorf("mapping 2 = %v %v", x, ok)
	}
	// Callee entry DC: 3. callee → caller IP (exit dc0); 4. caller → (callee entry IP, callee IP, callee recv port).
	if peer, exit, ok := tables[1].EntryMapping(callee); !ok || peer != c.CallerIP || exit != 0 {
		t.Errorf("mapping 3 = %v %d %v", peer, exit, ok)
	}
	if x, ok := tables[1].ExitMapping(caller); !ok || x != (ExitTranslation{c.CalleeEntryIP, c.CalleeIP, 6002}) {
		t.Errorf("mapping 4 = %v %v", x, ok)
	}
	if e, x := tables[0].Mappings(); e != 1 || x != 1 {
		t.Errorf("dc0 holds %d/%d mappings, want 1/1", e, x)
	}
	if e, x := tables[2].Mappings(); e != 0 || x != 0 {
		t.Errorf("dc2 (neither user's entry DC) holds %d/%d mappings", e, x)
	}
	same := c
	same.CalleeDC = 0
	if err := tables[0].AddCall(same); err != nil {
		t.Fatal(err)
	}
	if e, x := tables[0].Mappings(); e != 2 || x != 2 {
		t.Errorf("both users at dc0: %d/%d mappings, want 2/2", e, x)
	}
	tables[0].RemoveCall(same)
	tables[1].RemoveCall(c)
	for dc, tb := range tables {
		if e, x := tb.Mappings(); e != 0 || x != 0 {
			t.Errorf("dc%d keeps %d/%d mappings after RemoveCall", dc, e, x)
		}
	}

	bad := []struct {
		name  string
		edit  func(*Call)
		field string
	}{
		{"caller dc", func(c *Call) { c.CallerDC = 9 }, "call.callerDC"},
		{"callee dc", func(c *Call) { c.CalleeDC = -1 }, "call.calleeDC"},
		{"caller send port", func(c *Call) { c.CallerSendPort = 0 }, "call.callerSendPort"},
		{"callee recv port", func(c *Call) { c.CalleeRecvPort = 0 }, "call.calleeRecvPort"},
		{"same endpoint", func(c *Call) { c.CalleeIP, c.CalleeSendPort = c.CallerIP, c.CallerSendPort }, "call"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cc := c
			tc.edit(&cc)
			err := tables[0].AddCall(cc)
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("AddCall error = %v, want FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestLocalCallStaysInOneDC(t *testing.T) {
	tables := newTables(t, 2, 3, 1, pathMap{pr(1, 1): {1, 1, 1, 1, 1}}, false)
	c := callBetween(1, 1, 7)
	if err := tables[1].AddCall(c); err != nil {
		t.Fatal(err)
	}
	ds := journey(t, tables, 1, callerPacket(c))
	d := ds[0]
	if len(ds) != 1 || !d.Entry || !d.Exit || d.First != 1 || d.Last != 3 || d.Next != -1 {
		t.Fatalf("local call: %v", ds)
	}
	if d.Translation.DstIP != c.CalleeIP || d.Translation.DstPort != c.CalleeRecvPort || StageByte(d.DstIP, 4) != 1 {
		t.Fatalf("local call rewrite: %v", d)
	}
}

func TestDropReasons(t *testing.T) {
	paths := pathMap{pr(0, 1): {0, 0, 2, 2, 1}}
	tag01, _ := Tag{0, 1, 0}.Encode()
	tag01next, _ := Tag{0, 1, 1}.Encode()
	tag01far, _ := Tag{0, 1, 2}.Encode()
	tag21, _ := Tag{2, 1, 0}.Encode()
	tests := []struct {
		name   string
		dc     int
		p      Packet
		setup  func(*Table, Call)
		reason DropReason
	}{
		{"user flow without mapping", 0, Packet{From: FromUser, SrcIP: 1, SrcPort: 9}, nil, DropNoMapping},
		{"no path for pair", 1, Packet{}, func(tb *Table, c Call) {
			_ = tb.AddCall(callBetween(1, 0, 1))
		}, DropNoPath},
		{"tunnel flow at dc not on path", 1, Packet{From: FromTunnel, DstIP: 0x0a000001 | 1<<16, DstPort: tag01}, nil, DropNotOnPath},
		{"tag names next interval not stored", 2, Packet{From: FromTunnel, DstIP: 0x0a020000, DstPort: tag01next}, nil, DropUnknownInterval},
		{"tag two intervals away", 2, Packet{From: FromTunnel, DstIP: 0x0a020000, DstPort: tag01far}, nil, DropUnknownInterval},
		{"tag pair without path", 1, Packet{From: FromTunnel, DstIP: 0x0a0b0c01, DstPort: tag21}, nil, DropNoPath},
		{"tag entry beyond N", 2, Packet{From: FromTunnel, DstIP: 0x0a020000, DstPort: 100 << 9}, nil, DropBadHeader},
		{"routing bytes name another DC", 2, Packet{From: FromTunnel, DstIP: 0x0a010000, DstPort: tag01}, nil, DropBadHeader},
		{"no routing byte below N", 2, Packet{From: FromTunnel, DstIP: 0x0a0a0a0a, DstPort: tag01}, nil, DropBadHeader},
		{"unknown arrival", 2, Packet{From: 9}, nil, DropBadHeader},
		{"no instance of stage 2", 2, Packet{From: FromTunnel, DstIP: 0x0a020000, DstPort: tag01}, func(tb *Table, _ Call) {
			_ = tb.SetInstances(3, nil) // stage 2 is chosen first, then stage 3 fails
		}, DropNoInstance},
		{"no exit mapping", 1, Packet{From: FromTunnel, SrcIP: 5, SrcPort: 5, DstIP: 0x0a141e01, DstPort: tag01}, nil, DropNoMapping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tables := newTables(t, 3, 3, 1, paths, false)
			tb := tables[tc.dc]
			c := callBetween(1, 0, 1)
			p := tc.p
			if tc.setup != nil {
				tc.setup(tb, c)
				if p.From == 0 {
					p = callerPacket(c)
				}
			}
			before := tb.Instances(2)
			d := tb.Route(p)
			if d.Verdict != Drop || d.Reason != tc.reason {
				t.Fatalf("decision %v, want drop(%s)", d, tc.reason)
			}
			cs := tb.Counters()
			if cs.Decisions != 1 || cs.Forwarded != 0 || cs.Drops(tc.reason) != 1 || cs.TotalDropped() != 1 {
				t.Fatalf("counters %+v", cs)
			}
			for i, x := range tb.Instances(2) {
				if x != before[i] {
					t.Fatalf("a dropped flow changed instance loads: %v → %v", before, tb.Instances(2))
				}
			}
			rules := d.AppendRules(nil)
			if len(rules) != 1 || rules[0].Actions[0].Kind != DropPacket {
				t.Fatalf("drop rules %v", rules)
			}
			if !strings.Contains(d.String(), tc.reason.String()) {
				t.Fatalf("String %q does not name the reason", d.String())
			}
		})
	}
	names := map[string]bool{}
	for _, r := range DropReasons() {
		if r.String() == "" || names[r.String()] {
			t.Fatalf("drop reason %d has a bad or duplicate name %q", r, r.String())
		}
		names[r.String()] = true
	}
	if len(names) != 6 {
		t.Fatalf("DropReasons() = %d reasons", len(names))
	}
}

func TestInstanceSelectionSmallestWorkloadFirst(t *testing.T) {
	tables := newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)
	tb := tables[0]
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 5}, {Index: 11, Load: 2}, {Index: 12, Load: 0.5, Overloaded: true}, {Index: 13, Load: 3}}); err != nil {
		t.Fatal(err)
	}
	var got []uint8
	var ds []Decision
	for i := 0; i < 6; i++ {
		c := callBetween(0, 0, i)
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
		p := callerPacket(c)
		p.Load = 1
		d := tb.Route(p)
		if d.Verdict != Forward {
			t.Fatalf("flow %d: %v", i, d)
		}
		got = append(got, d.Instances[0])
		ds = append(ds, d)
	}
	// Loads 5,2,(0.5 overloaded),3: 11(2→3), 11 ties 13 at 3 → 11 (earlier), 13, 11, 13, then 10 ties 11/13 at 5 → 10.
	want := []uint8{11, 11, 13, 11, 13, 10}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chosen instances %v, want %v", got, want)
		}
	}
	for _, d := range ds {
		tb.Release(&d)
	}
	after := tb.Instances(1)
	for i, w := range []float64{5, 2, 0.5, 3} {
		if math.Abs(after[i].Load-w) > 1e-9 {
			t.Fatalf("loads after Release %v", after)
		}
	}
	// All overloaded: the least-loaded overloaded instance.
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 5, Overloaded: true}, {Index: 11, Load: 4, Overloaded: true}}); err != nil {
		t.Fatal(err)
	}
	if d := tb.Route(callerPacket(callBetween(0, 0, 0))); d.Instances[0] != 11 {
		t.Fatalf("fallback to overloaded chose %v", d)
	}
}

func TestSetInstancesErrors(t *testing.T) {
	tb := newTables(t, 8, 2, 1, nil, false)[0]
	tests := []struct {
		name  string
		stage int
		xs    []InstanceLoad
		field string
	}{
		{"stage 0", 0, nil, "stage"},
		{"stage beyond m", 3, nil, "stage"},
		{"index reserved for a tunnel", 1, []InstanceLoad{{Index: 7}}, "instances[stage 1][0].index"},
		{"duplicate index", 2, []InstanceLoad{{Index: 9}, {Index: 9}}, "instances[stage 2][1].index"},
		{"NaN load", 1, []InstanceLoad{{Index: 9, Load: math.NaN()}}, "instances[stage 1][0].load"},
		{"negative load", 1, []InstanceLoad{{Index: 9, Load: -1}}, "instances[stage 1][0].load"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tb.Instances(1)
			err := tb.SetInstances(tc.stage, tc.xs)
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error = %v, want FieldError on %s", err, tc.field)
			}
			if len(tb.Instances(1)) != len(before) {
				t.Fatal("a rejected SetInstances changed the instances")
			}
		})
	}
}

// TestIntervalResolution: a DC in interval t routes tags of t−1, t and t+1 by
// their own path sets, drops t+2, and with IgnoreIntervalTag uses t for all.
func TestIntervalResolution(t *testing.T) {
	// DC 2 hosts stage 1 of 0→1 only in interval 9; in 10 it hosts stage 2; in 11 stage 3.
	sets := map[uint64]pathMap{
		9:  {pr(0, 1): {0, 2, 1, 1, 1}},
		10: {pr(0, 1): {0, 0, 2, 1, 1}},
		11: {pr(0, 1): {0, 0, 0, 2, 1}},
	}
	for _, ignore := range []bool{false, true} {
		tb, err := NewTable(Config{DC: 2, N: 3, Stages: 3, Interval: 9, Paths: sets[9], IgnoreIntervalTag: ignore})
		if err != nil {
			t.Fatal(err)
		}
		instancesFor(t, tb, 3, 3, 1)
		for _, step := range []struct {
			store, enter uint64
		}{{10, 10}, {11, 0}} {
			if err := tb.StoreNext(step.store, sets[step.store]); err != nil {
				t.Fatal(err)
			}
			if step.enter != 0 {
				if err := tb.Enter(step.enter); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Local interval 10; previous 9, next 11 held.
		for _, tc := range []struct {
			tagIv uint64
			pos   int // position byte naming DC 2
		}{{9, 1}, {10, 2}, {11, 3}, {12, 3}} {
			port, _ := NewTag(0, 1, tc.tagIv).Encode()
			dst := IPv4(0xfafafafa)
			for i := 1; i < tc.pos; i++ {
				dst = WithStageByte(dst, i, 200)
			}
			dst = WithStageByte(dst, tc.pos, 2)
			d := tb.Route(Packet{From: FromTunnel, DstIP: dst, DstPort: port})
			switch {
			case ignore && tc.tagIv != 10:
				if d.Verdict != Drop || d.Reason != DropNotOnPath {
					t.Errorf("untagged routing, tag interval %d: %v, want not-on-path", tc.tagIv, d)
				}
			case ignore:
				if d.Verdict != Forward || d.Interval != 10 {
					t.Errorf("untagged routing, tag interval 10: %v", d)
				}
			case tc.tagIv == 12:
				if d.Verdict != Drop || d.Reason != DropUnknownInterval {
					t.Errorf("tag interval 12 at local 10: %v, want unknown-interval", d)
				}
			default:
				if d.Verdict != Forward || d.Interval != tc.tagIv || d.First != tc.pos || d.Last != tc.pos {
					t.Errorf("tag interval %d: %v", tc.tagIv, d)
				}
			}
		}
	}
}

// A drained DC's own calls (entry = exit = 2) take a path whose stages are
// all elsewhere and that comes back to DC 2 only as the exit: the tables
// accept it and the flow visits 2 → 0 → 1 → 2, leaving at 2.
func TestDrainedEntryPathComesBackAsExit(t *testing.T) {
	paths := pathMap{pr(2, 2): {2, 0, 1, 1, 2}, pr(0, 1): {0, 0, 1, 1, 1}}
	tables := newTables(t, 3, 3, 1, paths, false)
	c := callBetween(2, 2, 7)
	for _, tb := range tables {
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
	}
	ds := journey(t, tables, 2, callerPacket(c))
	var visited []int
	for _, d := range ds {
		visited = append(visited, d.DC)
	}
	last := ds[len(ds)-1]
	if !slices.Equal(visited, []int{2, 0, 1, 2}) || last.Verdict != Forward || !last.Exit {
		t.Fatalf("flow visited %v, last %+v; want [2 0 1 2] ending as the exit", visited, last)
	}
	// any other return to a DC the path left is still refused
	for _, p := range []placement.Path{{2, 0, 2, 1, 2}, {0, 1, 0, 0, 0}} {
		if err := tables[0].StoreNext(1, pathMap{pr(p[0], p[4]): p}); err == nil {
			t.Fatalf("looping path %v accepted", p)
		}
	}
}

// TestPackLimitPacksNewFlows: with a pack limit, a new flow goes to the
// most-loaded normal instance that keeps room for it (never an overloaded
// one), and to the least-loaded one when none has room; limit 0 is
// least-loaded routing again. Without packing the third flow below would go
// to instance 11, the least-loaded.
func TestPackLimitPacksNewFlows(t *testing.T) {
	tb := newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)[0]
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 3}, {Index: 11, Load: 1}, {Index: 12, Load: 4, Overloaded: true}, {Index: 13, Load: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetPackLimit(1, 5); err != nil {
		t.Fatal(err)
	}
	if got := tb.PackLimit(1); got != 5 {
		t.Fatalf("PackLimit = %v, want 5", got)
	}
	if idx, ok := tb.PickInstance(1); !ok || idx != 10 {
		t.Fatalf("PickInstance = %d %v, want 10 (most-loaded with room, the earlier of a tie)", idx, ok)
	}
	var got []uint8
	for i := 0; i < 8; i++ {
		c := callBetween(0, 0, i)
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
		d := tb.Route(callerPacket(c))
		if d.Verdict != Forward {
			t.Fatalf("flow %d: %v", i, d)
		}
		got = append(got, d.Instances[0])
	}
	// loads 3,1,(4 overloaded),3, limit 5: 10→4 (the earlier of the tie),
	// 10→5 (full), 13→4, 13→5, 11→2, 11→3, 11→4, 11→5; least-loaded
	// routing would have sent the first three to 11.
	want := []uint8{10, 10, 13, 13, 11, 11, 11, 11}
	if !slices.Equal(got, want) {
		t.Fatalf("packed choices %v, want %v", got, want)
	}
	// no normal instance has room: the least-loaded normal one (all at 5:
	// the earliest), not the overloaded 12 at 4
	c := callBetween(0, 0, 8)
	if err := tb.AddCall(c); err != nil {
		t.Fatal(err)
	}
	if d := tb.Route(callerPacket(c)); d.Instances[0] != 10 {
		t.Fatalf("with no room the flow went to %d, want the least-loaded normal 10", d.Instances[0])
	}
	// a flow heavier than the room left goes elsewhere
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 4}, {Index: 11, Load: 2}}); err != nil {
		t.Fatal(err)
	}
	c = callBetween(0, 0, 9)
	if err := tb.AddCall(c); err != nil {
		t.Fatal(err)
	}
	p := callerPacket(c)
	p.Load = 2
	if d := tb.Route(p); d.Instances[0] != 11 {
		t.Fatalf("a load-2 flow went to %d, want 11 (10 has room for 1 only)", d.Instances[0])
	}
	// limit 0: least-loaded again
	if err := tb.SetPackLimit(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 3}, {Index: 11, Load: 1}}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := tb.PickInstance(1); idx != 11 {
		t.Fatalf("without packing PickInstance = %d, want the least-loaded 11", idx)
	}
}

func TestSetPackLimitErrors(t *testing.T) {
	tb := newTables(t, 2, 2, 1, nil, false)[0]
	checkLimitErrors(t, "packLimit", tb.SetPackLimit, tb.PackLimit)
}

// checkLimitErrors: a per-stage limit (pack or spread, field in errors)
// refuses a stage out of 1..2 and a negative, NaN or infinite limit with a
// FieldError, and a refused set changes no limit.
func checkLimitErrors(t *testing.T, field string, set func(int, float64) error, get func(int) float64) {
	t.Helper()
	for _, tc := range []struct {
		stage int
		limit float64
		field string
	}{
		{0, 1, "stage"}, {3, 1, "stage"},
		{1, -1, field + "[stage 1]"}, {2, math.NaN(), field + "[stage 2]"}, {1, math.Inf(1), field + "[stage 1]"},
	} {
		err := set(tc.stage, tc.limit)
		var fe *placement.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Fatalf("set %s(%d, %v) = %v, want a FieldError on %q", field, tc.stage, tc.limit, err, tc.field)
		}
		if get(1) != 0 || get(2) != 0 || get(0) != 0 {
			t.Fatalf("a rejected set of %s changed a limit", field)
		}
	}
}
