package ovs

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDiffAddsChangesDeletesOnlyWhatDiffers(t *testing.T) {
	a := Flow{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "reg0=0x1", Actions: "output:2"}
	b := Flow{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "reg0=0x2", Actions: "output:3"}
	c := Flow{Table: 1, Priority: 50, Cookie: CookieStatic, Match: "reg0=0x2", Actions: "drop"}
	have := map[string]Flow{a.Key(): a, b.Key(): b}
	b2 := b
	b2.Actions = "output:4"
	lines, ch, err := Diff(have, []Flow{b2, c})
	if err != nil {
		t.Fatal(err)
	}
	if ch != (Changes{Added: 1, Modified: 1, Deleted: 1}) {
		t.Fatalf("changes %+v", ch)
	}
	if !strings.HasPrefix(lines[0], "delete_strict table=1,priority=100,reg0=0x1") {
		t.Fatalf("first line %q: deletes come first and are strict", lines[0])
	}
	if _, _, err := Diff(nil, []Flow{b, b2}); err == nil {
		t.Fatal("two rules with one identity and different actions: want an error")
	}
	if lines, ch, _ := Diff(map[string]Flow{a.Key(): a}, []Flow{a}); len(lines) != 0 || ch.Unchanged != 1 {
		t.Fatalf("unchanged rule rewritten: %v %+v", lines, ch)
	}
}

func TestPairCookieRoundTrip(t *testing.T) {
	c := EntryCookie(Pair{Entry: 3, Exit: 127}, 99)
	p, ok := PairOf(c)
	if !ok || p != (Pair{3, 127}) {
		t.Fatalf("PairOf(%#x) = %v %v", c, p, ok)
	}
	if _, ok := PairOf(CookieStatic | 5); ok {
		t.Fatal("a static cookie is not an entry cookie")
	}
}

func TestParseDump(t *testing.T) {
	out := ` cookie=0x1304000100000007, duration=1.5s, table=1, n_packets=42, n_bytes=8400, idle_age=0, priority=200,udp actions=output:1
 cookie=0x0, duration=6.504s, table=0, n_packets=0, n_bytes=0, idle_age=6, priority=0 actions=NORMAL`
	fs := ParseDump(out)
	if len(fs) != 2 || fs[0].Packets != 42 || fs[0].Table != 1 || fs[0].Cookie != 0x1304000100000007 || fs[0].Bytes != 8400 {
		t.Fatalf("%+v", fs)
	}
}

func TestBridgeLifecycleOnRealOVS(t *testing.T) {
	ctx := context.Background()
	d := StartForTest(t, "it13a")
	if err := d.EnsureBridge(ctx, "it13ad0", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureBridge(ctx, "it13ad0", 0); err != nil {
		t.Fatalf("our own bridge again: %v", err)
	}
	// someone else's bridge with a name in our namespace of names
	if _, err := d.Vsctl(ctx, "add-br", "it13aX", "--", "set", "bridge", "it13aX", "datapath_type=netdev", "external-ids:owner=someone"); err != nil {
		t.Fatal(err)
	}
	before, _ := d.Vsctl(ctx, "list", "bridge", "it13aX")
	err := d.EnsureBridge(ctx, "it13aX", 1)
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "it13aX") {
		t.Fatalf("foreign bridge: got %v, want ErrForeign naming the bridge", err)
	}
	after, _ := d.Vsctl(ctx, "list", "bridge", "it13aX")
	if before != after {
		t.Fatalf("foreign bridge changed:\n%s\n%s", before, after)
	}
	brs, err := d.OurBridges(ctx)
	if err != nil || len(brs) != 1 || brs[0] != "it13ad0" {
		t.Fatalf("our bridges %v %v", brs, err)
	}

	sw := d.NewSwitch("it13ad0")
	f1 := Flow{Table: 0, Priority: 10, Cookie: CookieStatic, Match: "ip,nw_dst=10.0.0.1", Actions: "drop"}
	f2 := Flow{Table: 0, Priority: 10, Cookie: CookieStatic, Match: "ip,nw_dst=10.0.0.2", Actions: "drop"}
	if c, err := sw.Apply(ctx, []Flow{f1, f2}); err != nil || c.Added != 2 {
		t.Fatalf("apply %+v %v", c, err)
	}
	// a bad rule in the set: the bundle fails and nothing changes
	bad := Flow{Table: 0, Priority: 10, Cookie: CookieStatic, Match: "ip,nw_dst=10.0.0.3", Actions: "output:nonsense"}
	if _, err := sw.Apply(ctx, []Flow{f1, bad}); err == nil {
		t.Fatal("a bad rule: want an error")
	}
	fs, err := sw.Counts(ctx, 0)
	if err != nil || len(fs) != 2 {
		t.Fatalf("after a failed bundle the switch has %d rules (%v), want the 2 from before", len(fs), err)
	}
	if c, err := sw.Apply(ctx, []Flow{f2}); err != nil || c.Deleted != 1 || c.Unchanged != 1 {
		t.Fatalf("apply %+v %v", c, err)
	}
	out, _ := sw.Ofctl(ctx, "dump-flows")
	if strings.Contains(out, "10.0.0.1") || !strings.Contains(out, "10.0.0.2") {
		t.Fatalf("dump after delete:\n%s", out)
	}
}

func TestStartRemovesAKilledRunsLeftovers(t *testing.T) {
	ctx := context.Background()
	Require(t)
	dir := t.TempDir()
	d1, err := Start(ctx, Config{Dir: dir, Prefix: "it13b"})
	if err != nil {
		t.Fatal(err)
	}
	pid := d1.VswitchdPID()
	if pid == 0 {
		t.Fatal("no vswitchd pid")
	}
	if err := EnsureNetns(ctx, "it13bu0"); err != nil {
		t.Fatal(err)
	}
	// "killed": no Stop; a second start in the same run dir cleans up
	d2, err := Start(ctx, Config{Dir: dir, Prefix: "it13b"})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop(ctx)
	if d2.VswitchdPID() == pid {
		t.Fatal("the previous vswitchd still runs")
	}
	ns, _ := Netns(ctx, "it13bu")
	if len(ns) != 0 {
		t.Fatalf("leftover namespaces %v", ns)
	}
	if err := d2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ns, _ := Netns(ctx, "it13b"); len(ns) != 0 {
		t.Fatalf("after stop: namespaces %v", ns)
	}
}

// A run killed before its Stop (a test binary at its timeout) leaves its
// daemons in another run directory (each test has its own): the next Start
// with the prefix still stops both, by their namespace.
func TestStartStopsAKilledRunsDaemonsInAnotherDir(t *testing.T) {
	ctx := context.Background()
	Require(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	d1, err := Start(ctx, Config{Dir: dir1, Prefix: "it13e"})
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{d1.VswitchdPID(), pidFromFile(filepath.Join(dir1, "ovsdb.pid"), dir1)}
	if pids[0] == 0 || pids[1] == 0 {
		t.Fatalf("daemon pids %v", pids)
	}
	// "killed": no Stop
	d2, err := Start(ctx, Config{Dir: dir2, Prefix: "it13e"})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop(ctx)
	for _, pid := range pids {
		for i := 0; i < 200 && alive(pid); i++ { // SIGKILLed: gone once the kernel reaped it
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d of the killed run still runs", pid)
		}
	}
}

func FuzzParseDump(f *testing.F) {
	f.Add(" cookie=0x1304000100000007, duration=1.5s, table=1, n_packets=42, n_bytes=8400, idle_age=0, priority=200,udp actions=output:1\n")
	f.Add("cookie=0xffffffffffffffffff, table=1, n_packets=1, n_bytes=1")
	f.Fuzz(func(t *testing.T, s string) {
		for _, fc := range ParseDump(s) {
			if fc.Table < 0 {
				t.Fatalf("negative table %+v", fc)
			}
		}
	})
}
