package ovs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// ruleShapes are the rule shapes the compiler (controller/dataplane
// compile.go, split.go), CountPair, PairCounter and the tombstones emit,
// in their text forms: table 0 classification, the miss rules, static
// rules between stages and into tunnels, pair counters, entry rules
// (count-then-act: set_field to ip_src/ip_dst (masked too)/udp_dst/eth_dst,
// output), tombstones (count-then-drop), exit translations, a split
// block's masked tp_src, a tag rule's masked tp_dst, masked set_field to a
// register, tcp, another IP protocol. controller/dataplane's
// TestCompiledCallRulesEncode checks that every rule a compiled topology
// has but the tag rules (learn: ovs-ofctl) is one the encoder takes.
func ruleShapes() []Flow {
	a, b := Pair{0, 1}, Pair{2, 0}
	return []Flow{
		{Table: 0, Priority: 100, Cookie: CookieClassify, Match: "in_port=1", Actions: "set_field:1->reg0,goto_table:1"},
		{Table: 0, Priority: 100, Cookie: CookieClassify, Match: "in_port=11", Actions: "set_field:2->reg0,goto_table:1"},
		{Table: 0, Priority: 0, Cookie: CookieMiss, Actions: "drop"},
		{Table: 1, Priority: 0, Cookie: CookieMiss, Actions: "drop"},
		{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "ip,reg0=4,nw_dst=0.0.1.0/0.0.255.0", Actions: "output:21"},
		{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "ip,reg0=3,nw_dst=1.0.0.0/255.0.0.0", Actions: "output:12"},
		PairCounter(a), PairCounter(b),
		{Table: 1, Priority: 200, Cookie: EntryCookie(a, 7), Match: "udp,reg0=1,nw_src=10.100.0.1,nw_dst=10.200.0.1,tp_src=6000,tp_dst=7000",
			Actions: CountPair(a, "set_field:0.3.0.0/0.255.0.0->ip_dst,set_field:7002->udp_dst,output:20")},
		{Table: 1, Priority: 200, Cookie: EntryCookie(a, 8), Match: "udp,reg0=1,nw_src=10.100.0.1,tp_src=6002",
			Actions: CountPair(a, "set_field:10.0.0.9->ip_src,set_field:10.1.2.3->ip_dst,output:11")},
		{Table: 1, Priority: 200, Cookie: EntryCookie(b, 9), Match: "udp,reg0=1,nw_src=10.100.0.2,tp_src=6004", Actions: CountPair(b, "drop")},
		{Table: 1, Priority: 200, Cookie: EntryCookie(a, 10), Match: "tcp,reg0=1,nw_src=10.100.0.3,tp_src=5060",
			Actions: CountPair(a, "set_field:5061->tcp_dst,output:20")},
		{Table: 1, Priority: 200, Cookie: EntryCookie(a, 11), Match: "udp,reg0=1,nw_src=10.101.0.1,nw_dst=10.100.0.1,tp_src=6000,tp_dst=7000",
			Actions: CountPair(a, "set_field:0->udp_dst,set_field:0.0.0.0/0.0.0.0->ip_dst,output:1020")},
		{Table: 1, Priority: 150, Cookie: CookieExit, Match: "ip,nw_proto=47,reg0=2,nw_src=10.101.0.1", Actions: "output:1"},
		{Table: 1, Priority: 200, Cookie: CookieExit, Match: "udp,reg0=2,nw_src=10.101.0.1,tp_src=7000,nw_dst=0.0.0.0/255.0.0.0",
			Actions: "set_field:10.100.0.1->ip_src,set_field:10.100.0.9->ip_dst,set_field:6000->udp_dst,set_field:02:13:00:00:00:01->eth_dst,output:1"},
		{Table: 1, Priority: 200, Cookie: CookieExit, Match: "udp,reg0=5,nw_src=10.101.0.1,tp_src=7000,nw_dst=0.0.0.0/255.0.0.0",
			Actions: "set_field:02:13:00:00:00:01->eth_dst,output:1"},
		{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "udp,reg0=2,tp_dst=0x2024/0xfffc,nw_dst=0.1.0.0/0.255.0.0,tp_src=0x400/0xc00",
			Actions: "set_field:0x10000/0xff0000->reg1,set_field:21->reg2,output:21"},
	}
}

// dumpNormalized is a bridge's rules as ovs-ofctl prints them, sorted,
// without statistics.
func dumpNormalized(t *testing.T, sw *Switch) []string {
	t.Helper()
	out, err := sw.Ofctl(context.Background(), "dump-flows", "--no-stats", "--no-names")
	if err != nil {
		t.Fatal(err)
	}
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "reply") {
			ls = append(ls, l)
		}
	}
	slices.Sort(ls)
	return ls
}

// On the real switch, every rule shape installed over the OpenFlow
// connection is the rule ovs-ofctl installs: two bridges of one
// ovs-vswitchd, one Switch per path, the same updates (adds, a modify in
// place, a cookie change, deletes, a Reset, a learned-rule forget, a tag
// rule's learn that the encoder refuses: ovs-ofctl for that bundle), and
// after each the two dumps are identical.
func TestConnectionInstallsWhatOfctlInstalls(t *testing.T) {
	ctx := context.Background()
	d := startReal(t)
	var sws [2]*Switch
	for i := range sws {
		br := fmt.Sprintf("%sd%d", d.Prefix(), i)
		if err := d.EnsureBridge(ctx, br, i); err != nil {
			t.Fatal(err)
		}
		sws[i] = d.NewSwitch(br)
		sws[i].clk = clock.NewVirtual(time.Now()) // the delayed deletes run when the test says
		t.Cleanup(sws[i].Close)
	}
	conn, ofctl := sws[0], sws[1]
	conn.conn, ofctl.conn = newOfConn(d.mgmt(conn.Bridge())), nil
	same := func(step string) {
		t.Helper()
		a, b := dumpNormalized(t, conn), dumpNormalized(t, ofctl)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: the connection installed\n%s\novs-ofctl installed\n%s", step, strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
		if len(a) == 0 {
			t.Fatalf("%s: no rule", step)
		}
	}
	both := func(step string, f func(sw *Switch) error) {
		t.Helper()
		for _, sw := range []*Switch{conn, ofctl} {
			if err := f(sw); err != nil {
				t.Fatalf("%s on %s: %v", step, sw.Bridge(), err)
			}
		}
		same(step)
	}
	shapes := ruleShapes()
	apply := func(fs []Flow, forget ...int) func(*Switch) error {
		return func(sw *Switch) error { _, err := sw.Apply(ctx, fs, forget...); return err }
	}
	both("the shapes added", apply(shapes))
	if p := conn.BundlePaths(); p.Conn != 1 || p.Ofctl != 0 {
		t.Fatalf("bundle paths %+v: want the one bundle over the connection", p)
	}
	// a modify in place (new actions), a cookie change (delete + add),
	// deletes (the last entry rules end: tombstones, modify in place)
	next := slices.Clone(shapes)
	next[4].Actions = "output:22"
	next[9].Cookie = EntryCookie(Pair{0, 1}, 99)
	next = slices.Delete(next, 10, 13)
	both("modified, replaced, ended", apply(next))
	both("the learned rules towards port 21 forgotten", apply(next, 21))
	// the tombstones' delayed delete
	for _, sw := range []*Switch{conn, ofctl} {
		sw.mu.Lock()
		_, err := sw.applyLocked(ctx, sw.asked, keyed(sw.asked), nil, sw.dueLocked(nil))
		sw.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	same("the tombstones deleted")
	// a tag rule (learn, move): not the encoder's, the bundle goes
	// through ovs-ofctl whole
	tag := Flow{Table: 1, Priority: 100, Cookie: CookieTag | 1, Match: "udp,reg0=2,tp_dst=8193,nw_dst=0.1.0.0/0.255.0.0",
		Actions: "move:NXM_OF_IP_DST[]->NXM_NX_REG1[],set_field:0x1010000/0xffff0000->reg1,set_field:20->reg2," +
			"learn(table=1,priority=190,idle_timeout=10,cookie=0x1307000000000000,NXM_NX_REG0[],eth_type=0x800,nw_proto=17," +
			"NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_UDP_SRC[],NXM_OF_UDP_DST[],load:NXM_NX_REG1[]->NXM_OF_IP_DST[],output:NXM_NX_REG2[])," +
			"move:NXM_NX_REG1[]->NXM_OF_IP_DST[],output:20"}
	before := conn.BundlePaths()
	both("a tag rule", apply(append(slices.Clone(shapes), tag)))
	if p := conn.BundlePaths(); p.Unsupported != before.Unsupported+1 || p.Ofctl != before.Ofctl+1 || p.Conn != before.Conn {
		t.Fatalf("bundle paths %+v after %+v: want the tag rule's bundle through ovs-ofctl", p, before)
	}
	both("reset", func(sw *Switch) error { return sw.Reset(ctx, shapes[:6]) })
	if p := conn.BundlePaths(); p.Conn != before.Conn+1 {
		t.Fatalf("bundle paths %+v: want Reset over the connection", p)
	}
}

// A rule the switch refuses fails the bundle over the connection with an
// error naming that rule, and changes nothing (atomic); after ovs-vswitchd
// restarted, the next bundle dials again and goes over the connection.
func TestConnectionRefusalAndRestart(t *testing.T) {
	ctx := context.Background()
	d, sw := realSwitch(t)
	sw.conn = newOfConn(d.mgmt(sw.Bridge()))
	good := Flow{Table: 1, Priority: 5, Cookie: CookieStatic, Match: "reg0=1", Actions: "output:3"}
	if _, err := sw.Apply(ctx, []Flow{good}); err != nil {
		t.Fatal(err)
	}
	// set_field to ip_src on a rule that does not match ip: the switch
	// refuses it (a missing prerequisite), the encoder does not check it
	bad := Flow{Table: 1, Priority: 6, Cookie: CookieStatic, Match: "reg0=2", Actions: "set_field:10.0.0.1->ip_src,output:3"}
	other := Flow{Table: 1, Priority: 7, Cookie: CookieStatic, Match: "reg0=3", Actions: "output:4"}
	_, err := sw.Apply(ctx, []Flow{good, bad, other})
	if err == nil || !strings.Contains(err.Error(), "set_field:10.0.0.1->ip_src") || !strings.Contains(err.Error(), "OpenFlow error") {
		t.Fatalf("apply of a refused rule: %v, want an OpenFlow error naming it", err)
	}
	if p := sw.BundlePaths(); p.Conn != 2 || p.Ofctl != 0 {
		t.Fatalf("bundle paths %+v, want both over the connection", p)
	}
	if got := dumpNormalized(t, sw); len(got) != 1 || !strings.Contains(got[0], "reg0=0x1") {
		t.Fatalf("after the refused bundle the switch holds %q, want the first rule alone", got)
	}
	// a table full at commit (ovs-vswitchd checks the limit only then):
	// the error names the rule, as ovs-ofctl's does, and nothing changed
	if _, err := d.Vsctl(ctx, "--", "--id=@ft", "create", "Flow_Table", "flow_limit=2", "overflow_policy=refuse",
		"--", "set", "Bridge", sw.Bridge(), "flow_tables:3=@ft"); err != nil {
		t.Fatal(err)
	}
	var full []Flow
	for i := range 3 {
		full = append(full, Flow{Table: 3, Priority: 3, Cookie: CookieStatic, Match: fmt.Sprintf("reg1=%d", i+1), Actions: "drop"})
	}
	_, err = sw.Apply(ctx, append([]Flow{good}, full...))
	if err == nil || !strings.Contains(err.Error(), "BUNDLE_FAILED") || !strings.Contains(err.Error(), "FLOW_MOD_FAILED") || !strings.Contains(err.Error(), "table=3,") {
		t.Fatalf("apply over a full table: %v, want the commit's refusal naming a rule of table 3", err)
	}
	if got := dumpNormalized(t, sw); len(got) != 1 || !strings.Contains(got[0], "reg0=0x1") {
		t.Fatalf("after the bundle refused at commit the switch holds %q, want the first rule alone", got)
	}
	if _, err := d.Vsctl(ctx, "clear", "Bridge", sw.Bridge(), "flow_tables"); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(d.VswitchdPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for d.VswitchdAlive() {
		time.Sleep(10 * time.Millisecond) // the kill is asynchronous
	}
	if err := d.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	// the management socket comes back once ovs-vswitchd has read the
	// database
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := sw.Ofctl(ctx, "show"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bridge does not answer after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := sw.BundlePaths()
	if err := sw.Reset(ctx, []Flow{good, other}); err != nil {
		t.Fatal(err)
	}
	if p := sw.BundlePaths(); p.Conn != before.Conn+1 || p.NotSent != before.NotSent {
		t.Fatalf("bundle paths %+v after %+v: want the Reset over a new connection", p, before)
	}
	if got := dumpNormalized(t, sw); len(got) != 2 {
		t.Fatalf("after the Reset the switch holds %q", got)
	}
	// no connection (a dial that fails): the bundle did not run, it goes
	// through ovs-ofctl
	sw.conn.mu.Lock()
	sw.conn.dropLocked()
	sw.conn.mu.Unlock()
	sw.conn.dial = func(context.Context) (net.Conn, error) { return nil, errors.New("test: connection refused") }
	before = sw.BundlePaths()
	if _, err := sw.Apply(ctx, []Flow{good}); err != nil {
		t.Fatal(err)
	}
	if p := sw.BundlePaths(); p.NotSent != before.NotSent+1 || p.Ofctl != before.Ofctl+1 || p.Conn != before.Conn {
		t.Fatalf("bundle paths %+v after %+v: want the bundle not sent, then through ovs-ofctl", p, before)
	}
	if got := dumpNormalized(t, sw); len(got) != 1 {
		t.Fatalf("after the fallback the switch holds %q", got)
	}
}
