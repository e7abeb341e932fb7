package ovs

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// A rule's FLOW_MOD bytes, checked against the OpenFlow 1.5 layout by
// hand (ofp_flow_mod, OXM TLVs, instructions): an entry rule's match and
// its count-then-output actions.
func TestEncodeLineBytes(t *testing.T) {
	fm, err := encodeLine("add table=1,priority=200,udp,reg0=1,nw_src=10.0.0.1,tp_src=6000,cookie=0x1304000100000007,actions=set_field:0x1->reg3,resubmit(,2),output:3")
	if err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(fm.marshal(9))
	want := "" +
		"060e0090" + "00000009" + // header: v1.5, FLOW_MOD, length 144, xid 9
		"1304000100000007" + "0000000000000000" + // cookie, cookie mask
		"01" + "00" + "0000" + "0000" + "00c8" + // table 1, ADD, timeouts, priority 200
		"ffffffff" + "ffffffff" + "ffffffff" + "0000" + "0000" + // buffer, out port, out group, flags, importance
		"0001" + "0025" + // OXM match, 4 + 33 bytes
		"00010004" + "00000001" + // NXM_NX_REG0 = 1
		"80000a02" + "0800" + // eth_type
		"80001401" + "11" + // ip_proto 17
		"80001604" + "0a000001" + // ipv4_src
		"80001e02" + "1770" + // udp_src 6000
		"000000" + // padding to 8
		"0004" + "0038" + "00000000" + // APPLY_ACTIONS, 56 bytes
		"0019" + "0010" + "00010604" + "00000001" + "00000000" + // SET_FIELD reg3=1, padded to 16
		"ffff" + "0010" + "00002320" + "000e" + "fff8" + "02000000" + // NXAST_RESUBMIT_TABLE in_port, table 2
		"0000" + "0010" + "00000003" + "0000" + "000000000000" // OUTPUT 3
	if got != want {
		t.Fatalf("flow mod\n got %s\nwant %s", got, want)
	}
}

// Every line kind a bundle has: the command, table, cookie and out port of
// each.
func TestEncodeLineKinds(t *testing.T) {
	for _, c := range []struct {
		line       string
		command    uint8
		table      uint8
		cookie     uint64
		cookieMask uint64
		outPort    uint32
	}{
		{"add table=0,priority=0,,cookie=0x1306000000000000,actions=drop", ofpfcAdd, 0, CookieMiss, 0, ofppAny},
		{"modify_strict table=1,priority=5,reg0=1,cookie=0x5,actions=output:2", ofpfcModifyStrict, 1, 0, 0, ofppAny},
		{"delete_strict table=2,priority=100,reg3=0x1", ofpfcDeleteStrict, 2, 0, 0, ofppAny},
		{"delete", ofpfcDelete, ofpttAll, 0, 0, ofppAny},
		{"delete cookie=0x1307000000000000/0xffff000000000000,out_port=21", ofpfcDelete, ofpttAll, CookieLearned, cookieKindMask, 21},
	} {
		fm, err := encodeLine(c.line)
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if fm.command != c.command || fm.table != c.table || fm.cookie != c.cookie || fm.cookieMask != c.cookieMask || fm.outPort != c.outPort {
			t.Fatalf("%s: got %+v", c.line, fm)
		}
	}
}

// What the encoder does not know is an error naming it, never a guess:
// the Switch then sends the whole bundle through ovs-ofctl.
func TestEncodeRefuses(t *testing.T) {
	for _, c := range []struct{ line, names string }{
		{"add table=1,priority=1,reg0=1,actions=move:NXM_OF_IP_DST[]->NXM_NX_REG1[]", "move:"},
		{"add table=1,priority=1,reg0=1,actions=learn(table=1,NXM_NX_REG0[]),output:2", "learn("},
		{"add table=1,priority=1,reg0=1,actions=output:NXM_NX_REG2[]", "output:NXM_NX_REG2[]"},
		{"add table=1,priority=1,reg0=1,actions=mod_nw_src:1.2.3.4", "mod_nw_src"},
		{"add table=1,priority=1,arp,actions=drop", "arp"},
		{"add table=1,priority=1,dl_src=00:11:22:33:44:55,actions=drop", "dl_src"},
		{"add table=1,priority=1,idle_timeout=10,actions=drop", "idle_timeout"},
		{"add table=1,priority=1,udp,tcp,actions=drop", "tcp"},
		{"add table=1,priority=1,reg0=1,reg0=2,actions=drop", "reg0=2"},
		{"add table=1,priority=1,tp_src=5,actions=drop", "tp_src"},
		{"add table=1,priority=1,nw_src=1.2.3.4,actions=drop", "IP field"},
		{"add table=1,priority=1,ip,nw_src=1.2.3,actions=drop", "nw_src=1.2.3"},
		{"add table=1,priority=1,reg0=1,actions=goto_table:2,output:1", "goto_table"},
		{"add table=1,priority=1,reg0=1,actions=set_field:1->reg9", "reg9"},
		{"add table=1,priority=1,reg0=1,actions=set_field:02:00:00:00:00:01/ff:ff:ff:ff:ff:ff->eth_dst", "eth_dst"},
		{"add table=1,priority=1,reg0=1", "without actions"},
		{"add table=300,priority=1,actions=drop", "table=300"},
		{"add cookie=0x1/0x1,actions=drop", "cookie"},
		{"modify table=1,priority=1,actions=drop", "modify"},
		{"delete_strict table=1,priority=1,cookie=0x5", "cookie"},
		// ovs-vswitchd refuses value bits outside a set_field's mask
		// (ovs-ofctl's install fails): never masked away here
		{"add table=1,priority=1,reg0=1,actions=set_field:0x3/0x1->reg2", "outside the mask"},
		{"add table=1,priority=1,reg0=1,actions=set_field:10.0.0.5/255.255.255.0->ip_dst", "outside the mask"},
		// reserved ports (LOCAL, ANY...) ovs-ofctl maps, the connection
		// would send raw
		{"add table=1,priority=1,in_port=65534,actions=drop", "in_port=65534"},
		{"add table=1,priority=1,in_port=0xfffe,actions=drop", "in_port=0xfffe"},
		{"delete cookie=0x1/0x1,out_port=65533", "out_port=65533"},
		{"add table=1,priority=1,reg0=1,actions=output:65534", "output:65534"},
		// numbers ovs-ofctl refuses (or reads otherwise): decimal or 0x
		// hex only, table numbers decimal only
		{"add table=1,priority=0b101,actions=drop", "priority=0b101"},
		{"add table=1,priority=1_000,actions=drop", "priority=1_000"},
		{"add table=1,priority=010,actions=drop", "priority=010"},
		{"add table=1,priority=-1,actions=drop", "priority=-1"},
		{"add table=1,priority=1,reg0=0o7,actions=drop", "reg0=0o7"},
		{"add table=1,priority=1,reg0=1,actions=resubmit(,0x2)", "resubmit(,0x2)"},
		{"add table=1,priority=1,reg0=1,actions=goto_table:0x2", "goto_table:0x2"},
		{"add table=0x1,priority=1,actions=drop", "table=0x1"},
		{"add table=1,priority=1,reg0=1,actions=output:0x2", "output:0x2"},
	} {
		_, err := encodeLine(c.line)
		if err == nil || !strings.Contains(err.Error(), c.names) {
			t.Fatalf("%s: %v, want an error naming %q", c.line, err, c.names)
		}
		if _, err := encodeBundle([]string{"delete", c.line}); err == nil || !strings.Contains(err.Error(), c.line) {
			t.Fatalf("a bundle with %s: %v, want an error naming the line", c.line, err)
		}
	}
	for _, line := range []string{
		"add table=1,priority=1,reg0=1,actions=set_field:0x3/0x1->reg2",
		"add table=1,priority=1,in_port=65534,actions=drop",
		"add table=1,priority=0b101,actions=drop",
		"add table=1,priority=1,reg0=1,actions=resubmit(,0x2)",
	} {
		if _, err := encodeLine(line); !errors.Is(err, errUnsupported) {
			t.Fatalf("%s: %v, want errUnsupported (the bundle goes to ovs-ofctl)", line, err)
		}
	}
	// what ovs-ofctl reads the same way still encodes
	for _, line := range []string{
		"add table=1,priority=0x10,reg0=0X1f/0xff,actions=set_field:0x2/0x3->reg2,resubmit(,10)",
		"add table=10,priority=0,in_port=65279,actions=set_field:10.0.0.0/255.255.255.0->ip_dst,goto_table:20",
	} {
		if _, err := encodeLine(line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	if fm, err := encodeLine("add table=1,priority=0x10,actions=drop"); err != nil || fm.priority != 16 {
		t.Fatalf("priority=0x10: %+v %v", fm, err)
	}
	long := "add table=1,priority=1,reg0=1,actions=" + strings.Repeat("set_field:1->reg1,", 5000) + "output:1"
	if _, err := encodeLine(long); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("a rule longer than an OpenFlow message: %v", err)
	}
	_, err := encodeLine("add table=1,priority=1,reg0=1,actions=move:NXM_OF_IP_DST[]->NXM_NX_REG1[]")
	if !errors.Is(err, errUnsupported) {
		t.Fatalf("an unknown action: %v, want errUnsupported", err)
	}
}

// Every rule shape of ruleShapes encodes, as the lines Diff makes of it.
func TestEncodeRuleShapes(t *testing.T) {
	lines, _ := Diff(nil, ruleShapes())
	more, _ := Diff(keyed(ruleShapes()), nil)
	if _, err := encodeBundle(append(lines, more...)); err != nil {
		t.Fatal(err)
	}
}

// Masked values are sent masked (OpenFlow refuses value bits outside the
// mask), a zero mask matches nothing at all (no field), an all-ones one is
// an exact match.
func TestEncodeMasks(t *testing.T) {
	a, err := encodeLine("add table=1,priority=1,udp,tp_dst=0x2027/0xfffc,nw_dst=10.1.2.3/255.255.0.0,nw_src=1.2.3.4/0.0.0.0,reg1=5/0xffffffff,actions=drop")
	if err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(a.match)
	want := "00010204" + "00000005" + // reg1 exact
		"80000a02" + "0800" + "80001401" + "11" +
		"80001908" + "0a010000" + "ffff0000" + // ipv4_dst masked, value masked
		"80002104" + "2024" + "fffc" // udp_dst masked, value masked
	if got != want {
		t.Fatalf("match\n got %s\nwant %s", got, want)
	}
}

// FuzzEncodeLine: the encoder never panics on any line; what it takes
// marshals to a message whose length field is its length.
func FuzzEncodeLine(f *testing.F) {
	lines, _ := Diff(nil, ruleShapes())
	for _, l := range lines {
		f.Add(l)
	}
	for _, l := range []string{"delete", "delete cookie=0x1/0x1,out_port=3", "delete_strict table=1,priority=2,",
		"add actions=set_field:1.2.3.4/8->ip_dst", "add actions=resubmit(,", "add actions=goto_table:1,",
		"add table=1,udp,tp_src=0x1/0x0,actions=set_field:0/0->reg0", "add ip,nw_dst=1.2.3.4/33,actions=drop"} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fm, err := encodeLine(line)
		if err != nil {
			return
		}
		m := fm.marshal(1)
		if int(m[2])<<8|int(m[3]) != len(m) || len(m)%8 != 0 {
			t.Fatalf("%q: message length %d, field %d", line, len(m), int(m[2])<<8|int(m[3]))
		}
	})
}
