package ovs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	lines, ch := Diff(have, []Flow{b2, c})
	if ch != (Changes{Added: 1, Modified: 1, Deleted: 1}) {
		t.Fatalf("changes %+v", ch)
	}
	if !strings.HasPrefix(lines[0], "delete_strict table=1,priority=100,reg0=0x1") {
		t.Fatalf("first line %q: deletes come first and are strict", lines[0])
	}
	if lines, ch := Diff(map[string]Flow{a.Key(): a}, []Flow{a}); len(lines) != 0 || ch.Unchanged != 1 {
		t.Fatalf("unchanged rule rewritten: %v %+v", lines, ch)
	}
}

// Two rules of one desired set with one identity (a 5-tuple routed twice:
// two calls reusing one media port) cost the earlier rule only: the later
// one is installed, the conflict is counted and named, and every other rule
// of the set is applied. Before, Diff refused the whole set, so no rule of
// the bridge changed until one of the two went.
func TestDiffResolvesTwoRulesWithOneIdentity(t *testing.T) {
	old := Flow{Table: 1, Priority: 200, Cookie: CookieEntry | 1, Match: "udp,reg0=1,nw_src=127.0.0.101,tp_src=6000", Actions: "set_field:1025->udp_dst,output:10"}
	newer := old
	newer.Cookie, newer.Actions = CookieEntry|2, "set_field:1026->udp_dst,output:10"
	other := Flow{Table: 1, Priority: 200, Cookie: CookieEntry | 3, Match: "udp,reg0=1,nw_src=127.0.0.102,tp_src=6000", Actions: "output:11"}
	copyOfOther := other
	resolved, cs := Resolve([]Flow{old, other, newer, copyOfOther})
	lines, ch := Diff(nil, resolved)
	if ch != (Changes{Added: 2}) || len(cs) != 1 {
		t.Fatalf("changes %+v, %d conflicts; want 2 added (the later rule of the identity and the other one), 1 conflict (an identical copy is none)", ch, len(cs))
	}
	want := []string{"add " + newer.String(), "add " + other.String()}
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Fatalf("lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	got, cs := Resolve([]Flow{old, other, newer})
	if len(got) != 2 || got[0] != newer || got[1] != other {
		t.Fatalf("Resolve kept %v, want the later rule in the earlier one's place, then the other", got)
	}
	if len(cs) != 1 || cs[0].Kept != newer || cs[0].Dropped != old {
		t.Fatalf("conflicts %+v, want kept = the later rule, dropped = the earlier", cs)
	}
	if s := cs[0].String(); !strings.Contains(s, "set_field:1025") || !strings.Contains(s, "set_field:1026") || !strings.Contains(s, old.Key()) {
		t.Fatalf("conflict %q does not name the identity and both rules' actions", s)
	}
	// installed as resolved: the next Apply of the same set changes nothing
	have := map[string]Flow{}
	for _, f := range got {
		have[f.Key()] = f
	}
	if lines, ch := Diff(have, got); len(lines) != 0 || ch.Unchanged != 2 {
		t.Fatalf("the same set again: lines %v, changes %+v; want none, 2 unchanged", lines, ch)
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
	c = PairCookie(Pair{Entry: 3, Exit: 127})
	if p, ok := CounterOf(c); !ok || p != (Pair{3, 127}) {
		t.Fatalf("CounterOf(%#x) = %v %v", c, p, ok)
	}
	if _, ok := PairOf(c); ok {
		t.Fatal("a counter rule's cookie is not an entry cookie")
	}
	if _, ok := CounterOf(EntryCookie(Pair{Entry: 3, Exit: 127}, 99)); ok {
		t.Fatal("an entry cookie is not a counter rule's")
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
	d := startReal(t)
	br, foreign := d.Prefix()+"d0", d.Prefix()+"X"
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		t.Fatalf("our own bridge again: %v", err)
	}
	// someone else's bridge with a name in our namespace of names
	if _, err := d.Vsctl(ctx, "add-br", foreign, "--", "set", "bridge", foreign, "datapath_type=netdev", "external-ids:owner=someone"); err != nil {
		t.Fatal(err)
	}
	// the bridge's configuration, the columns a client writes: ovs-vswitchd
	// fills in its own (datapath_version, datapath_id, status) in a
	// transaction of its own after add-br returned, at its pace, so the
	// whole row may differ between two reads without anyone touching it
	// (this test failed so once at load 53)
	config := func() string {
		t.Helper()
		out, err := d.Vsctl(ctx, "--columns=name,datapath_type,fail_mode,protocols,external_ids,other_config,ports,controller,mirrors",
			"list", "bridge", foreign)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := config()
	err := d.EnsureBridge(ctx, foreign, 1)
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), foreign) {
		t.Fatalf("foreign bridge: got %v, want ErrForeign naming the bridge", err)
	}
	if after := config(); before != after {
		t.Fatalf("foreign bridge changed:\n%s\n%s", before, after)
	}
	brs, err := d.OurBridges(ctx)
	if err != nil || len(brs) != 1 || brs[0] != br {
		t.Fatalf("our bridges %v %v", brs, err)
	}

	sw := d.NewSwitch(br)
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

// startClaimed starts daemons in dir under a prefix claimed for this run.
func startClaimed(t *testing.T, dir string) *Daemon {
	t.Helper()
	requireReal(t)
	c, err := ClaimFree('t')
	if err != nil {
		t.Fatal(err)
	}
	d, err := start(context.Background(), Config{Dir: dir, Prefix: c.Prefix()}, c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// die hands d's claim to a child process and kills it: a real death of
// the process holding the prefix (SIGKILL, no Stop). The child inherits the
// lock's open file (flock belongs to it, not to a process); once this
// process closed its copy, the child alone holds the lock, and the kernel
// drops it when the child dies. d's daemons and namespaces stay.
func die(t *testing.T, d *Daemon) {
	t.Helper()
	d.claim.mu.Lock()
	defer d.claim.mu.Unlock()
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{d.claim.f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	d.claim.f.Close()
	d.claim.f = nil
	if _, err := ClaimPrefix(d.Prefix()); !errors.Is(err, ErrPrefixInUse) {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("the prefix while the child holds it: %v, want ErrPrefixInUse", err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait() // reaped: its files are closed, the lock dropped
}

// only matches the prefixes of this test (CleanStale's scope).
func only(prefixes ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(prefixes, p) }
}

func TestStartRemovesAKilledRunsLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d1 := startClaimed(t, dir)
	p := d1.Prefix()
	pid := d1.VswitchdPID()
	if pid == 0 {
		t.Fatal("no vswitchd pid")
	}
	if err := EnsureNetns(ctx, p+"u0"); err != nil {
		t.Fatal(err)
	}
	die(t, d1)
	// a second start in the same run dir with the prefix cleans up
	d2, err := Start(ctx, Config{Dir: dir, Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop(ctx)
	if d2.VswitchdPID() == pid {
		t.Fatal("the previous vswitchd still runs")
	}
	ns, _ := Netns(ctx, p+"u")
	if len(ns) != 0 {
		t.Fatalf("leftover namespaces %v", ns)
	}
	if err := d2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ns, _ := Netns(ctx, p); len(ns) != 0 {
		t.Fatalf("after stop: namespaces %v", ns)
	}
	if _, err := os.Stat(lockPath(p)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after stop: lock file %v", err)
	}
}

// A run killed before its Stop (a test binary at its timeout) leaves its
// daemons in another run directory (each test has its own): the next Start
// with the prefix still stops both, by their namespace.
func TestStartStopsAKilledRunsDaemonsInAnotherDir(t *testing.T) {
	ctx := context.Background()
	dir1, dir2 := t.TempDir(), t.TempDir()
	d1 := startClaimed(t, dir1)
	pids := []int{d1.VswitchdPID(), pidFromFile(filepath.Join(dir1, "ovsdb.pid"), dir1)}
	if pids[0] == 0 || pids[1] == 0 {
		t.Fatalf("daemon pids %v", pids)
	}
	die(t, d1)
	d2, err := Start(ctx, Config{Dir: dir2, Prefix: d1.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop(ctx)
	waitGone(t, pids...)
}

// waitGone waits until the pids are gone (SIGKILLed: once the kernel reaped
// them).
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		for i := 0; i < 200 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d of the killed run still runs", pid)
		}
	}
}

// A second run that asks for a prefix a live run holds (two checkouts
// testing at once, two daemons whose run dirs hash alike) gets
// ErrPrefixInUse and touches nothing: before the claim, its clean-up killed
// the live run's daemons and deleted its namespaces.
func TestStartLeavesALiveRunsPrefixAlone(t *testing.T) {
	ctx := context.Background()
	live := startReal(t)
	if err := EnsureNetns(ctx, live.Prefix()+"u0"); err != nil {
		t.Fatal(err)
	}
	pid := live.VswitchdPID()
	d, err := Start(ctx, Config{Dir: t.TempDir(), Prefix: live.Prefix()})
	if err == nil {
		d.Stop(ctx)
		t.Fatal("a second Start with a live run's prefix: want ErrPrefixInUse")
	}
	if holder := fmt.Sprintf("pid=%d dir=%s", os.Getpid(), live.Dir()); !errors.Is(err, ErrPrefixInUse) || !strings.Contains(err.Error(), live.Prefix()) || !strings.Contains(err.Error(), holder) {
		t.Fatalf("got %v, want ErrPrefixInUse naming the prefix and its holder %q", err, holder)
	}
	if !alive(pid) || live.VswitchdPID() != pid {
		t.Fatalf("the live run's ovs-vswitchd %d is gone", pid)
	}
	if ns, _ := Netns(ctx, live.Prefix()); len(ns) != 2 {
		t.Fatalf("the live run's namespaces are %v, want its switch and users' namespaces", ns)
	}
}

// CleanStale (scripts/ovsclean) removes a dead run's daemons, namespaces
// and lock file, and leaves a live run's alone; scoped to the test's own
// prefixes it also leaves another run's stale leftovers alone (another
// checkout's: its own clean-up, or their errors, are not this test's).
func TestCleanStaleRemovesOnlyDeadRunsLeftovers(t *testing.T) {
	ctx := context.Background()
	live := startReal(t)
	dir := t.TempDir()
	dead := startClaimed(t, dir)
	t.Cleanup(func() { _ = dead.Stop(ctx) }) // when die failed
	pids := []int{dead.VswitchdPID(), pidFromFile(filepath.Join(dir, "ovsdb.pid"), dir)}
	if err := EnsureNetns(ctx, dead.Prefix()+"u0"); err != nil {
		t.Fatal(err)
	}
	// another run's stale leftovers: a lock file nobody holds and a namespace
	other, err := ClaimFree('t')
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := CleanStale(ctx, only(other.Prefix())); err != nil {
			t.Errorf("cleaning the other run's leftovers: %v", err)
		}
	})
	if err := EnsureNetns(ctx, other.Prefix()+"u0"); err != nil {
		other.Release()
		t.Fatal(err)
	}
	other.mu.Lock()
	other.f.Close() // its process "died": the lock file stays, unlocked
	other.f = nil
	other.mu.Unlock()
	die(t, dead)
	cleaned, err := CleanStale(ctx, only(dead.Prefix(), live.Prefix()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cleaned, []string{dead.Prefix()}) {
		t.Fatalf("cleaned %v: want the dead run's %s only, not the live run's %s", cleaned, dead.Prefix(), live.Prefix())
	}
	waitGone(t, pids...)
	if ns, _ := Netns(ctx, dead.Prefix()); len(ns) != 0 {
		t.Fatalf("the dead run's namespaces %v are left", ns)
	}
	if _, err := os.Stat(lockPath(dead.Prefix())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead run's lock file: %v", err)
	}
	if !live.VswitchdAlive() {
		t.Fatal("the live run's ovs-vswitchd is gone")
	}
	if ns, _ := Netns(ctx, live.Prefix()); len(ns) != 1 {
		t.Fatalf("the live run's namespaces are %v", ns)
	}
	if _, err := ClaimPrefix(live.Prefix()); !errors.Is(err, ErrPrefixInUse) {
		t.Fatalf("the live run's prefix after CleanStale: %v, want still held", err)
	}
	if ns, _ := Netns(ctx, other.Prefix()); len(ns) != 1 {
		t.Fatalf("another run's stale namespaces outside the scope: %v, want them left", ns)
	}
	if _, err := os.Stat(lockPath(other.Prefix())); err != nil {
		t.Fatalf("another run's stale lock file outside the scope: %v, want it left", err)
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

// A Start that fails (here ovsdb-tool create: conf.db is a non-empty
// directory, which neither Remove nor ovsdb-tool replace) gives its prefix
// back: a retry with the prefix is not refused as in use.
func TestFailedStartReleasesThePrefix(t *testing.T) {
	ctx := context.Background()
	c := claimFreeReal(t)
	p := c.Prefix()
	c.Release()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.db", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := Start(ctx, Config{Dir: dir, Prefix: p})
	if err == nil {
		d.Stop(ctx)
		t.Fatal("Start with conf.db a directory: want ovsdb-tool's error")
	}
	c, err = ClaimPrefix(p)
	if err != nil {
		t.Fatalf("the prefix after a failed Start: %v, want it free", err)
	}
	c.Release()
}

// A second Stop (the prefix released by the first) touches nothing: another
// run that claimed the prefix since keeps its namespaces.
func TestStopAfterReleaseLeavesTheNextHolderAlone(t *testing.T) {
	ctx := context.Background()
	d := startReal(t)
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := ClaimPrefix(d.Prefix())
	if err != nil {
		t.Fatalf("the prefix after Stop: %v", err)
	}
	defer func() {
		_, _ = DeleteNetns(ctx, d.Prefix())
		c.Release()
	}()
	if err := EnsureNetns(ctx, d.Prefix()+"x"); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ns, _ := Netns(ctx, d.Prefix()); len(ns) != 1 {
		t.Fatalf("the next holder's namespaces after a second Stop: %v, want [%sx]", ns, d.Prefix())
	}
	if !c.Held() {
		t.Fatal("the next holder's claim is gone")
	}
}

// Start with Wait takes a prefix that is released meanwhile (a clean-up
// holding a dead run's prefix while it deletes its leftovers), and gives up
// with ErrPrefixInUse after Wait when the holder keeps it.
func TestStartWaitsForAHeldPrefix(t *testing.T) {
	ctx := context.Background()
	c := claimFreeReal(t)
	if d, err := Start(ctx, Config{Dir: t.TempDir(), Prefix: c.Prefix(), Wait: 300 * time.Millisecond}); !errors.Is(err, ErrPrefixInUse) {
		if err == nil {
			d.Stop(ctx)
		}
		t.Fatalf("a prefix held throughout the wait: %v, want ErrPrefixInUse", err)
	}
	released := time.AfterFunc(200*time.Millisecond, c.Release)
	defer released.Stop()
	d, err := Start(ctx, Config{Dir: t.TempDir(), Prefix: c.Prefix(), Wait: 30 * time.Second})
	if err != nil {
		t.Fatalf("a prefix released during the wait: %v", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Applying a set over the installed one reads the pair counters first
// only when a pair counter rule goes or changes its cookie; an entry rule
// that goes or is taken over (a flow that took another's 5-tuple over:
// Diff replaces the rule) ends no count: its packets are on its pair's
// counter rule. Before (session 14), every entry rule's end was read first.
func TestOnlyCounterRulesEndCounts(t *testing.T) {
	e1 := Flow{Table: 1, Priority: 200, Cookie: EntryCookie(Pair{0, 1}, 1), Match: "udp,tp_src=6000", Actions: CountPair(Pair{0, 1}, "output:10")}
	e2 := e1
	e2.Cookie = EntryCookie(Pair{0, 1}, 2)
	e1b := e1
	e1b.Actions = CountPair(Pair{0, 1}, "output:13")
	other := Flow{Table: 1, Priority: 100, Cookie: CookieStatic, Match: "ip", Actions: "output:11"}
	other2 := other
	other2.Actions = "output:12"
	pc := PairCounter(Pair{0, 1})
	pc2 := pc
	pc2.Cookie = PairCookie(Pair{0, 2}) // not a cookie Compile makes: a replaced counter
	have := map[string]Flow{e1.Key(): e1, other.Key(): other, pc.Key(): pc}
	for _, tc := range []struct {
		name string
		want []Flow
		ends []uint64
	}{
		{"unchanged", []Flow{e1, other, pc}, nil},
		{"a static rule modified", []Flow{e1, other2, pc}, nil},
		{"the entry rule's actions modified", []Flow{e1b, other, pc}, nil},
		{"the entry rule taken over", []Flow{e2, other, pc}, nil},
		{"the entry rule deleted", []Flow{other, pc}, nil},
		{"the counter rule deleted", []Flow{e1, other}, []uint64{pc.Cookie}},
		{"the counter rule replaced", []Flow{e1, other, pc2}, []uint64{pc.Cookie}},
	} {
		if got := countersEnd(have, keyed(tc.want)); !slices.Equal(got, tc.ends) {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.ends)
		}
	}
	delete(have, pc.Key())
	// the taken-over rule is replaced in one bundle: Open vSwitch keeps a
	// modified rule's cookie
	lines, ch := Diff(have, []Flow{e2, other})
	want := []string{"delete_strict " + e1.Key(), "add " + e2.String()}
	if !slices.Equal(lines, want) || ch != (Changes{Modified: 1, Unchanged: 1}) {
		t.Fatalf("a new cookie: lines %v, changes %+v; want %v, 1 modified", lines, ch, want)
	}
}
