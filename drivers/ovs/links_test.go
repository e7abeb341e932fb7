package ovs

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// tempNetns creates a network namespace (lo up) named with a prefix claimed
// for this run, and deletes it by that name when the test ends.
func tempNetns(t testing.TB) string {
	t.Helper()
	name := claimReal(t) + "ns"
	if err := EnsureNetns(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := DeleteNetns(context.Background(), name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return name
}

// udpIn opens a UDP socket bound to addr inside namespace ns.
func udpIn(t testing.TB, ns, addr string) *net.UDPConn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	a, _ := net.ResolveUDPAddr("udp4", addr)
	c, err := net.ListenUDP("udp4", a)
	if err := netns.Set(orig); err != nil {
		panic(err) // this thread must not go back to the pool in ns
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ipLinkCounters is the reader Links replaced: `ip -s -j link` through `ip
// netns exec` (the benchmark's baseline and the test's second opinion).
func ipLinkCounters(ctx context.Context, ns string) (map[string]LinkCounters, error) {
	out, err := InNetns(ctx, ns, "ip", "-s", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Name  string `json:"ifname"`
		Stats struct {
			RX struct{ Packets uint64 } `json:"rx"`
			TX struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("ip -s -j link: %v", err)
	}
	m := make(map[string]LinkCounters, len(links))
	for _, l := range links {
		m[l.Name] = LinkCounters{RxPackets: l.Stats.RX.Packets, TxPackets: l.Stats.TX.Packets}
	}
	return m, nil
}

// Links reads a namespace's counters over netlink: 37 UDP packets sent on
// the namespace's lo (nothing else uses it) are exactly 37 more on lo's TX
// and RX, as `ip -s link` also says.
func TestLinksCountsPacketsInANamespace(t *testing.T) {
	ns := tempNetns(t)
	c := udpIn(t, ns, "127.0.0.1:0")
	before, err := Links(ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before["lo"]; !ok {
		t.Fatalf("links %v: no lo", before)
	}
	for i := 0; i < 37; i++ {
		if _, err := c.WriteToUDP(make([]byte, 172), c.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	after, err := Links(ns)
	if err != nil {
		t.Fatal(err)
	}
	if d := after["lo"].TxPackets - before["lo"].TxPackets; d != 37 {
		t.Fatalf("lo sent %d packets, want 37 (before %+v after %+v)", d, before["lo"], after["lo"])
	}
	if d := after["lo"].RxPackets - before["lo"].RxPackets; d != 37 {
		t.Fatalf("lo received %d packets, want 37", d)
	}
	ip, err := ipLinkCounters(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if ip["lo"] != after["lo"] || len(ip) != len(after) {
		t.Fatalf("ip -s link says %v, netlink %v", ip, after)
	}
	if _, err := Links(ns + "gone"); err == nil {
		t.Fatal("a namespace that does not exist: want an error")
	}
}

// A veth deleted in a namespace is an event: both ends are reported gone
// without any polling, and the watch ends with its context.
func TestWatchLinkDeletionsSeesADeletedVeth(t *testing.T) {
	ns := tempNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	gone := map[string]bool{}
	got := make(chan struct{}, 8)
	ended, err := WatchLinkDeletions(ctx, ns, func(name string) {
		mu.Lock()
		gone[name] = true
		mu.Unlock()
		got <- struct{}{}
	}, func(err error) { t.Errorf("watch: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InNetns(ctx, ns, "ip", "link", "add", "s6a", "type", "veth", "peer", "name", "s6b"); err != nil {
		t.Fatal(err)
	}
	if _, err := InNetns(ctx, ns, "ip", "link", "del", "s6a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second) // a real kernel event; generous on a loaded host
	for {
		mu.Lock()
		both := gone["s6a"] && gone["s6b"]
		mu.Unlock()
		if both {
			break
		}
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("deleted veth not reported: %v", gone)
		}
	}
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
}

// WaitVswitchd blocks while ovs-vswitchd runs (its context's end returns
// first) and returns when the process is killed: the pidfd is the event.
func TestWaitVswitchdReturnsWhenKilled(t *testing.T) {
	d := startReal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.WaitVswitchd(ctx); err != context.DeadlineExceeded {
		t.Fatalf("wait while ovs-vswitchd runs: %v, want the context's deadline", err)
	}
	pid := d.VswitchdPID()
	done := make(chan error, 1)
	go func() { done <- d.WaitVswitchd(context.Background()) }()
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ovs-vswitchd exit seen %v after the kill", time.Since(killed))
	case <-time.After(10 * time.Second):
		t.Fatal("WaitVswitchd did not return after ovs-vswitchd was killed")
	}
	if err := d.WaitVswitchd(context.Background()); err != nil {
		t.Fatalf("no ovs-vswitchd runs: %v, want nil at once", err)
	}
}

// The DP statistics sampler's read of the switch namespace's counters:
// `ip netns exec … ip -s -j link` (before) against one netlink dump (now),
// on a namespace with 24 veth ends (12 instances' ports).
//
//	nice go test -run '^$' -bench BenchmarkLinkCounters -benchtime 200x ./drivers/ovs
func BenchmarkLinkCounters(b *testing.B) {
	ns := tempNetns(b)
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		if _, err := InNetns(ctx, ns, "ip", "link", "add", fmt.Sprintf("s6x%d", i), "type", "veth", "peer", "name", fmt.Sprintf("s6y%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("ip-netns-exec", func(b *testing.B) {
		for b.Loop() {
			if m, err := ipLinkCounters(ctx, ns); err != nil || len(m) != 25 {
				b.Fatalf("%d links, %v", len(m), err)
			}
		}
	})
	b.Run("netlink", func(b *testing.B) {
		for b.Loop() {
			if m, err := Links(ns); err != nil || len(m) != 25 {
				b.Fatalf("%d links, %v", len(m), err)
			}
		}
	})
}

// AddVeth, made over rtnetlink and an ethtool ioctl in this process: both
// ends up, TX checksum offload off on both (what `ethtool -k` reports), the
// inner end's name and MAC, the port on the bridge at its OpenFlow number;
// DelPort removes both ends and is idempotent.
func TestAddVethConfiguresBothEnds(t *testing.T) {
	ctx := context.Background()
	d := startReal(t)
	br, port, ns := d.Prefix()+"d0", d.Prefix()+"p1", d.Prefix()+"n"
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.AddVeth(ctx, br, port, 17, ns, "in", "02:13:00:00:99:01"); err != nil {
		t.Fatal(err)
	}
	for _, end := range []struct{ ns, name string }{{ns, "in"}, {d.SwitchNS(), port}} {
		k, err := InNetns(ctx, end.ns, "ethtool", "-k", end.name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(k, "tx-checksumming: off") {
			t.Errorf("%s/%s: tx checksumming not off:\n%s", end.ns, end.name, k)
		}
		l, err := InNetns(ctx, end.ns, "ip", "-j", "link", "show", end.name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l, `"UP"`) {
			t.Errorf("%s/%s not up: %s", end.ns, end.name, l)
		}
		if end.name == "in" && !strings.Contains(l, `"address":"02:13:00:00:99:01"`) {
			t.Errorf("inner end's MAC: %s", l)
		}
	}
	if of, err := d.Vsctl(ctx, "get", "interface", port, "ofport"); err != nil || strings.TrimSpace(of) != "17" {
		t.Fatalf("ofport %q %v, want 17", of, err)
	}
	for i := 0; i < 2; i++ {
		if err := d.DelPort(ctx, br, port); err != nil {
			t.Fatalf("DelPort #%d: %v", i+1, err)
		}
	}
	for _, end := range []struct{ ns, name string }{{ns, "in"}, {d.SwitchNS(), port}} {
		have, err := LinkNames(ctx, end.ns)
		if err != nil || have[end.name] {
			t.Fatalf("%s/%s still there after DelPort (%v)", end.ns, end.name, err)
		}
	}
}
