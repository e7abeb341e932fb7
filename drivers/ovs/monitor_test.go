package ovs

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// captured from ovs-ofctl 3.1 `monitor … watch:table=1` (stderr) and
// `dump-flows --no-stats --no-names` of the same rule
const (
	monAdded   = " event=ADDED table=1 idle_timeout=3 cookie=0x1307000000000000 udp,reg0=0x2,nw_src=10.101.0.1,tp_src=4000 actions=set_field:0.3.3.1->ip_dst,output:1004"
	monDeleted = " event=DELETED reason=idle table=1 idle_timeout=3 cookie=0x1307000000000000 udp,reg0=0x2,nw_src=10.101.0.1,tp_src=4000 actions=set_field:0.3.3.1->ip_dst,output:1004"
	dumpSame   = " cookie=0x1307000000000000, table=1, idle_timeout=3, priority=190,udp,reg0=0x2,nw_src=10.101.0.1,tp_src=4000 actions=set_field:0.3.3.1->ip_dst,output:1004"
)

func TestParseMonitorEvent(t *testing.T) {
	add, ok := parseMonitorEvent(monAdded)
	if !ok || add.deleted || add.entry.err != nil || add.entry.f != (LearnedFlow{DstIP: 0x00030301, OutPort: 1004}) {
		t.Fatalf("ADDED: %+v %v", add, ok)
	}
	del, ok := parseMonitorEvent(monDeleted)
	if !ok || !del.deleted || del.key != add.key {
		t.Fatalf("DELETED: %+v %v, want the key %q of the ADDED", del, ok, add.key)
	}
	if k := learnedKey(dumpSame); k != add.key {
		t.Fatalf("the dump's key %q differs from the monitor's %q: a dumped rule would never be deleted", k, add.key)
	}
	for _, l := range []string{
		"OFPST_FLOW_MONITOR reply (OF1.5) (xid=0x0):",
		" event=INITIAL table=1 idle_timeout=3 cookie=0x1307000000000000 udp actions=output:1",
		" event=ADDED table=1 cookie=0x1303000000000000 udp actions=output:1", // a tag rule
		" event=ADDED table=1 udp actions=output:1",                           // no cookie
	} {
		if ev, ok := parseMonitorEvent(l); ok {
			t.Errorf("%q read as a learned-rule event %+v", l, ev)
		}
	}
	bad, ok := parseMonitorEvent(strings.Replace(monAdded, "output:1004", `output:"p1"`, 1))
	if !ok || bad.entry.err == nil {
		t.Errorf("unreadable ADDED rule: %+v %v, want an event carrying the error", bad, ok)
	}
}

func FuzzParseMonitorEvent(f *testing.F) {
	f.Add(monAdded)
	f.Add(monDeleted)
	f.Add(" event=MODIFIED cookie=0x1307000000000000 x actions=load:0x1->NXM_OF_IP_DST[]")
	f.Fuzz(func(t *testing.T, s string) {
		ev, ok := parseMonitorEvent(s)
		if ok && ev.entry.err == nil && (ev.entry.f.OutPort < 0 || ev.entry.f.OutPort > 0xffff) {
			t.Fatalf("port %d out of range", ev.entry.f.OutPort)
		}
		if again, ok2 := parseMonitorEvent(s); ok2 != ok || again.key != ev.key || again.deleted != ev.deleted {
			t.Fatalf("a second parse differs: %+v, then %+v", ev, again)
		}
	})
}

// realSwitch starts private daemons (startReal) with one bridge of ours,
// <prefix>d0, and returns them and the bridge's switch.
func realSwitch(t *testing.T) (*Daemon, *Switch) {
	t.Helper()
	d := startReal(t)
	br := d.Prefix() + "d0"
	if err := d.EnsureBridge(context.Background(), br, 0); err != nil {
		t.Fatal(err)
	}
	sw := d.NewSwitch(br)
	t.Cleanup(sw.Close) // no delayed delete after the daemons stop
	return d, sw
}

// ports returns the output ports of the rules, sorted.
func ports(r LearnedRules) []int {
	var out []int
	for _, f := range r.Flows {
		out = append(out, f.OutPort)
	}
	slices.Sort(out)
	return out
}

// The monitor follows the switch's learned rules without a process per
// read: the rules there when it starts, rules added later, rules that idle
// out; it ignores other rules. When ovs-vswitchd dies it says unknown, and
// once ovs-vswitchd is back it follows the new (empty) table again.
func TestLearnedMonitorFollowsTheSwitch(t *testing.T) {
	ctx := context.Background()
	d, sw := realSwitch(t)
	add := func(idle int, outs ...int) {
		t.Helper()
		var ls []string
		for _, o := range outs {
			ls = append(ls, fmt.Sprintf("table=1,priority=190,idle_timeout=%d,cookie=%#x,udp,reg0=2,nw_src=10.101.0.%d,tp_src=4000,actions=set_field:0.3.3.1->ip_dst,output:%d",
				idle, CookieLearned, o%250+1, o))
		}
		ls = append(ls, fmt.Sprintf("table=1,priority=150,cookie=%#x,udp,reg0=2,tp_dst=9,actions=drop", CookieTag))
		file := filepath.Join(t.TempDir(), "flows")
		if err := os.WriteFile(file, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := sw.Ofctl(ctx, "add-flows", file); err != nil {
			t.Fatal(err)
		}
	}
	until := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		end := time.Now().Add(d)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v", what, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var m *LearnedMonitor
	have := func(want ...int) func() bool {
		return func() bool {
			r, err := m.Learned()
			return err == nil && slices.Equal(ports(r), want)
		}
	}
	// there before the monitor, idling out after 8 s: the monitor must read
	// them before (its start and first dump took over 2 s at load 35–43)
	add(8, 1001, 1003)
	m = sw.MonitorLearned(50*time.Millisecond, func(err error) { t.Logf("monitor: %v", err) })
	defer m.Close()
	until("the monitor reads the rules already there", 10*time.Second, have(1001, 1003))
	add(60, 1005, 1007, 1009)
	until("learned rules added later", 10*time.Second, have(1001, 1003, 1005, 1007, 1009))
	until("the first two idle out", 20*time.Second, have(1005, 1007, 1009))
	if _, err := sw.Ofctl(ctx, "del-flows", "--strict", fmt.Sprintf("table=1,priority=190,udp,reg0=2,nw_src=10.101.0.%d,tp_src=4000", 1007%250+1)); err != nil {
		t.Fatal(err)
	}
	until("a deleted rule", 10*time.Second, have(1005, 1009))

	if err := syscall.Kill(d.VswitchdPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	until("unknown while ovs-vswitchd is dead", 10*time.Second, func() bool {
		_, err := m.Learned()
		return err == ErrMonitorNotArmed
	})
	if err := d.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	// the bridge's management socket comes back once vswitchd has read the
	// database; the rules are gone with the old process
	until("the bridge answers again", 10*time.Second, func() bool { _, err := sw.Ofctl(ctx, "show"); return err == nil })
	add(60, 1011)
	until("following the restarted switch", 15*time.Second, have(1011))
	m.mu.Lock()
	starts := m.starts
	m.mu.Unlock()
	if starts < 2 {
		t.Errorf("%d monitors started, want a restart after ovs-vswitchd's", starts)
	}
}

// Close ends the monitor's `ovs-ofctl monitor` process (killed by its PID
// and reaped) and the goroutines that read it: a plane that closes leaves
// no process and no goroutine behind.
func TestLearnedMonitorCloseEndsItsProcess(t *testing.T) {
	_, sw := realSwitch(t)
	before := runtime.NumGoroutine()
	m := sw.MonitorLearned(50*time.Millisecond, func(err error) { t.Logf("monitor: %v", err) })
	end := time.Now().Add(10 * time.Second)
	for !m.Armed() {
		if time.Now().After(end) {
			m.Close()
			t.Fatal("the monitor was not armed within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := m.Pid()
	if pid <= 0 {
		t.Fatalf("armed monitor with PID %d", pid)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "monitor") {
		t.Fatalf("PID %d is not the monitor process: %q %v", pid, cmdline, err)
	}
	m.Close()
	select {
	case <-m.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("monitor process %d still there after Close (kill 0: %v)", pid, err)
	}
	if m.Pid() != 0 {
		t.Errorf("Pid %d after Close, want 0", m.Pid())
	}
	// the monitor's goroutines have ended when Close returns; the bounded
	// wait is for goroutines of others (the runtime's, the test daemon's)
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines 5 s after Close, %d before the monitor started:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// The switch's notice that it paused a monitor, as ovs-ofctl 3.1 prints it
// (captured on a real bridge by TestLearnedMonitorRestartsWhenPaused's set-up),
// and lines that are not one.
func TestIsPaused(t *testing.T) {
	for l, want := range map[string]bool{
		" event=PAUSED":  true,
		"event=PAUSED":   true,
		" event=RESUMED": false,
		" event=ADDED table=1 idle_timeout=600 cookie=0x1307000000000000 udp,reg0=0x2,nw_src=10.0.0.1,tp_src=4000 actions=set_field:0.3.3.1->ip_dst,output:1001": false,
		"OFPST_FLOW_MONITOR reply (OF1.5) (xid=0x0):": false,
	} {
		if got := isPaused(strings.TrimSpace(l)); got != want {
			t.Errorf("isPaused(%q) = %v, want %v", l, got, want)
		}
	}
}

// A monitor whose reader falls behind is paused by the switch: with the
// `ovs-ofctl monitor` process stopped (SIGSTOP) while 5 000 learned rules
// are added, ovs-vswitchd's queue of unsent events passes its 128 KiB limit
// and it sends event=PAUSED (on this machine after ≈ 1 240 events), then,
// once the reader drains the queue, the withheld ADDED events and
// event=RESUMED. The monitor stops on PAUSED (ErrMonitorPaused), restarts,
// reads the whole table again and follows all 5 000 rules.
func TestLearnedMonitorRestartsWhenPaused(t *testing.T) {
	ctx := context.Background()
	_, sw := realSwitch(t)
	errs := make(chan error, 16)
	m := sw.MonitorLearned(50*time.Millisecond, func(err error) {
		t.Logf("monitor: %v", err)
		select {
		case errs <- err:
		default:
		}
	})
	defer m.Close()
	until := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v", what, d)
			}
		}
	}
	// armed with a process (Pid is 0 between restarts, and briefly while
	// still armed when one ends); openProc refuses pid ≤ 1 and the pidfd
	// pins the process: a SIGSTOP never reaches our own process group or a
	// process that reused the PID
	until("armed", 10*time.Second, func() bool { return m.Armed() && m.Pid() > 1 })
	proc, err := openProc(m.Pid())
	if err != nil {
		t.Fatal(err)
	}
	defer proc.close()
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", proc.pid)); err != nil || !strings.Contains(string(cmdline), "monitor") {
		t.Fatalf("PID %d is not the monitor process: %q %v", proc.pid, cmdline, err)
	}
	if err := proc.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = proc.signal(syscall.SIGCONT)
		}
	}()
	// here (socket send buffer wmem_default 212 992 B) PAUSED came after
	// ≈ 1 240 events: 5 000 leaves a factor 4, scaled up where the switch's
	// socket buffer takes more before its own queue grows
	n := 5000
	if b, err := os.ReadFile("/proc/sys/net/core/wmem_default"); err == nil {
		if w, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && w > 212992 {
			n = n * (w + 128<<10) / (212992 + 128<<10)
		}
	}
	t.Logf("%d learned rules", n)
	var ls []string
	for i := 0; i < n; i++ {
		ls = append(ls, fmt.Sprintf("table=1,priority=190,idle_timeout=600,cookie=%#x,udp,reg0=2,nw_src=10.%d.%d.1,tp_src=4000,actions=set_field:0.3.3.1->ip_dst,output:1001",
			CookieLearned, i/250, i%250))
	}
	file := filepath.Join(t.TempDir(), "flows")
	if err := os.WriteFile(file, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Ofctl(ctx, "add-flows", file); err != nil {
		t.Fatal(err)
	}
	if err := proc.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	deadline := time.After(30 * time.Second)
	for paused := false; !paused; {
		select {
		case err := <-errs:
			paused = errors.Is(err, ErrMonitorPaused)
		case <-deadline:
			t.Fatal("no ErrMonitorPaused within 30 s of the reader's resumption")
		}
	}
	until("all learned rules followed after the restart", 60*time.Second, func() bool {
		r, err := m.Learned()
		return err == nil && len(r.Flows) == n && len(r.Skipped) == 0
	})
	m.mu.Lock()
	starts := m.starts
	m.mu.Unlock()
	if starts < 2 {
		t.Errorf("%d monitors started, want a restart after the pause", starts)
	}
	if restarts, paused := m.Restarts(); paused < 1 || restarts < paused {
		t.Errorf("Restarts() = %d, %d paused: want the pause counted", restarts, paused)
	}
}

// The monitor's line handling on a real trace: the stderr of `ovs-ofctl
// monitor … watch:table=1` (Open vSwitch 3.1) on a bridge whose monitor
// process was stopped while 5 000 learned rules were added (the set-up of
// TestLearnedMonitorRestartsWhenPaused; testdata/paused-trace.txt.gz, 6 254
// lines). The switch queued 1 243 ADDED events, printed event=PAUSED (line
// 2 488), then sent the 3 757 withheld ADDED and event=RESUMED. The reader
// gives the events before PAUSED, in order, and stops there with
// ErrMonitorPaused; and the trace shows the switch's catch-up brings the
// rest (all 5 000 rules once), which the monitor does not rely on: it
// restarts and dumps.
func TestReadMonitorLinesOnAPausedTrace(t *testing.T) {
	gz, err := os.ReadFile("testdata/paused-trace.txt.gz")
	var raw []byte
	if zr, zerr := gzip.NewReader(bytes.NewReader(gz)); err == nil && zerr == nil {
		raw, err = io.ReadAll(zr)
	} else {
		err = errors.Join(err, zerr)
	}
	if err != nil {
		t.Fatalf("the trace: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	pausedAt := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "event=PAUSED" })
	if len(lines) != 6254 || pausedAt != 2487 || strings.TrimSpace(lines[len(lines)-1]) != "event=RESUMED" {
		t.Fatalf("trace: %d lines, PAUSED at index %d: not the captured trace", len(lines), pausedAt)
	}
	var got []monitorEvent
	err = readMonitorLines(strings.NewReader(string(raw)), func(ev monitorEvent) bool { got = append(got, ev); return true })
	if !errors.Is(err, ErrMonitorPaused) {
		t.Fatalf("read: %v, want ErrMonitorPaused", err)
	}
	var before []string
	for _, l := range lines[:pausedAt] {
		if strings.Contains(l, "event=ADDED") {
			before = append(before, learnedKey(l))
		}
	}
	if len(got) != len(before) || len(got) != 1243 {
		t.Fatalf("%d events before the pause, want the trace's %d ADDED (1 243)", len(got), len(before))
	}
	for i, ev := range got {
		if ev.deleted || ev.entry.err != nil || ev.key != before[i] || ev.entry.f.OutPort != 1001 {
			t.Fatalf("event %d: %+v, want the ADDED of %q", i, ev, before[i])
		}
	}
	// the catch-up after the pause: every rule exactly once over the trace
	keys := map[string]int{}
	for _, l := range lines {
		if ev, ok := parseMonitorEvent(strings.TrimSpace(l)); ok {
			keys[ev.key]++
		}
	}
	if len(keys) != 5000 {
		t.Errorf("%d distinct rules in the trace, want 5 000", len(keys))
	}
	// a reader that stops taking events stops the read
	n := 0
	if err := readMonitorLines(strings.NewReader(string(raw)), func(monitorEvent) bool { n++; return n < 10 }); !errors.Is(err, errStopRead) || n != 10 {
		t.Errorf("emit false at the 10th event: %v after %d, want errStopRead after 10", err, n)
	}
	// a monitor that ends says why, by its last other line
	if err := readMonitorLines(strings.NewReader(lines[1]+"\novs-ofctl: vconn_recv (End of file)\n"), func(monitorEvent) bool { return true }); err == nil || !strings.Contains(err.Error(), "End of file") {
		t.Errorf("ended monitor: %v, want the last line", err)
	}
}

// Restarts in a row double the wait up to the cap, so a monitor paused
// again on every restart (sustained churn) restarts at most once per cap;
// one that stayed armed for the cap starts over at the base.
func TestRestartBackoffDoublesAndResets(t *testing.T) {
	b := restartBackoff{base: time.Second, max: 32 * time.Second}
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, b.next(2*time.Second)) // armed, paused again soon
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 32, 32}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	if w := b.next(32 * time.Second); w != time.Second {
		t.Fatalf("after a monitor armed for the cap: wait %v, want the base 1s", w)
	}
	if w := b.next(0); w != 2*time.Second {
		t.Fatalf("a restart right after: wait %v, want 2s", w)
	}
}
