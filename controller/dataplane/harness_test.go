package dataplane

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/placement"
)

var kinds = []netns.Kind{netns.Firewall, netns.IDS, netns.Transcoder}

func ip(s string) routing.IPv4 {
	a, err := routing.ParseIPv4(s)
	if err != nil {
		panic(err)
	}
	return a
}

// newPlane starts private daemons and a plane of n DCs with m stages whose
// tables start in interval 0 with paths0.
func newPlane(t testing.TB, n, m int, paths0 map[placement.Pair]placement.Path, ignoreTag bool) *Plane {
	t.Helper()
	return newPlaneWith(t, ovs.Config{}, n, m, paths0, ignoreTag)
}

// newPlaneWith is newPlane on daemons with the settings of cfg
// (ovstest.StartWith: e.g. its RulePath).
func newPlaneWith(t testing.TB, cfg ovs.Config, n, m int, paths0 map[placement.Pair]placement.Path, ignoreTag bool) *Plane {
	t.Helper()
	d := ovstest.StartWith(t, cfg)
	var tables []*routing.Table
	for k := 0; k < n; k++ {
		tb, err := routing.NewTable(routing.Config{DC: k, N: n, Stages: m, Paths: paths0, IgnoreIntervalTag: ignoreTag})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tb)
	}
	ctx := context.Background()
	p, err := New(ctx, Config{Daemon: d, Tables: tables, Forwarder: netnstest.Forwarder(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// addUsers gives the users' namespace of DC k the address users[k].
func addUsers(t testing.TB, p *Plane, users ...routing.IPv4) {
	t.Helper()
	for k, u := range users {
		if err := p.AddUser(context.Background(), k, u); err != nil {
			t.Fatal(err)
		}
	}
}

// receiver counts the packets a users' namespace socket gets, per source port.
type receiver struct {
	c    *net.UDPConn
	mu   sync.Mutex
	got  map[int]int
	last map[int]time.Time
	done chan struct{}
}

func listen(t *testing.T, ns, addr string) *receiver { return listenB(t, ns, addr) }

func listenB(t testing.TB, ns, addr string) *receiver {
	t.Helper()
	c, err := ListenUDP(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{c: c, got: map[int]int{}, last: map[int]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			_, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got[from.Port]++
			r.last[from.Port] = time.Now()
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-r.done })
	return r
}

func (r *receiver) count(port int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[port]
}

// sender sends RTP-sized (172-byte) UDP packets from src to dst inside ns.
type sender struct{ c *net.UDPConn }

func dial(t *testing.T, ns, src string) *sender {
	t.Helper()
	c, err := ListenUDP(ns, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sender{c: c}
}

// send sends count packets every gap (0: as fast as possible) and returns
// how many it sent.
func (s *sender) send(dst string, count int, gap time.Duration, payload []byte) int {
	if payload == nil {
		payload = make([]byte, 172)
	}
	return s.sendEach(dst, count, gap, func() []byte { return payload }, nil)
}

// sendEach is send with the payload of each packet made just before it is
// sent, on an absolute schedule; sent (if not nil) is called after each
// write that succeeded.
func (s *sender) sendEach(dst string, count int, gap time.Duration, payload func() []byte, sent func()) int {
	a, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		return 0
	}
	n := 0
	next := time.Now()
	for i := 0; i < count; i++ {
		if _, err := s.c.WriteToUDP(payload(), a); err == nil {
			n++
			if sent != nil {
				sent()
			}
		}
		if gap > 0 {
			next = next.Add(gap)
			time.Sleep(time.Until(next))
		}
	}
	return n
}

// watch runs p.Watch until the test's clean-up, which waits for it to
// return before the clean-ups registered earlier run (the plane's Close,
// the daemons' Stop): a Check in flight must not restart ovs-vswitchd
// after Stop stopped it.
func watch(t testing.TB, p *Plane, period time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Watch(ctx, period) }()
	t.Cleanup(func() { cancel(); <-done })
	// a link deleted before the watch listens is seen only by the next
	// Check (period); under load that setup can take longer than the
	// test's next step
	select {
	case <-p.LinksWatched():
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not listen for link deletions within 30 s")
	}
}

// waitFor polls cond every 10 ms until it holds or d passes (a real process
// is involved: packets in flight through the switch and namespaces).
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func killPid(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("no pid")
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}
