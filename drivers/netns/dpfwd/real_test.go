package dpfwd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
)

// testEtherType is the EtherType of the tests' frames (IEEE 802 local
// experimental): the receivers bind to it, so the namespace's own frames
// (IPv6 DAD/MLD) never reach them.
const testEtherType = 0x88b5

// inNetns runs f on a locked thread in network namespace ns and returns
// its error; the thread is never unlocked, so it ends with the goroutine
// and no goroutine of the test process runs in ns afterwards.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := vnetns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := vnetns.Set(h); err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// fwdNet is a namespace holding the forwarder's interfaces in and out,
// veth pairs to inp and outp, and packet sockets of the test (made in the
// namespace, used from any thread).
type fwdNet struct {
	ns string
	// idx: the interfaces' indices by name
	idx map[string]int
}

// newFwdNet makes the namespace (under a prefix claimed for this run,
// deleted when t ends) with in–inp and out–outp up.
func newFwdNet(t testing.TB) *fwdNet {
	t.Helper()
	ovstest.Require(t)
	ctx := context.Background()
	c, err := ovs.ClaimFree(ovstest.Lead)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	n := &fwdNet{ns: c.Prefix() + "fw", idx: map[string]int{}}
	if err := ovs.EnsureNetns(ctx, n.ns); err != nil {
		t.Fatal(err)
	}
	// no process runs in it, only the test's threads: ovs.DeleteNetns
	// would kill the test process if a forwarder's thread still did
	t.Cleanup(func() {
		if _, err := ovs.IP(context.Background(), "netns", "del", n.ns); err != nil {
			t.Errorf("delete netns %s: %v", n.ns, err)
		}
	})
	// no IPv6: no frame of the namespace's own (DAD, MLD) arrives on in
	if _, err := ovs.InNetns(ctx, n.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"link", "add", "in", "type", "veth", "peer", "name", "inp"},
		{"link", "add", "out", "type", "veth", "peer", "name", "outp"},
		{"link", "set", "in", "up"}, {"link", "set", "inp", "up"},
		{"link", "set", "out", "up"}, {"link", "set", "outp", "up"},
	} {
		if _, err := ovs.InNetns(ctx, n.ns, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := inNetns(n.ns, func() error {
		for _, name := range []string{"in", "inp", "out", "outp"} {
			i, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			n.idx[name] = i.Index
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// socket opens a packet socket in the namespace bound to interface name
// for protocol proto (0: it only sends), its reads bounded by 10 s (the
// bound only ends a failing test), closed when t ends.
func (n *fwdNet) socket(t testing.TB, name string, proto uint16) int {
	t.Helper()
	fd := -1
	if err := inNetns(n.ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: n.idx[name]}); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
	}); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("packet socket on %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// send sends a broadcast frame of testEtherType carrying payload out of
// the interface fd is bound to (of index idx).
func send(fd, idx int, payload string) error {
	f := testFrame(payload)
	to := &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if err := unix.Sendto(fd, f, 0, to); err != nil {
		return fmt.Errorf("send %q: %w", payload, err)
	}
	return nil
}

// testFrame is a broadcast frame of testEtherType carrying payload, padded
// to 60 bytes.
func testFrame(payload string) []byte {
	f := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, testEtherType >> 8, testEtherType & 0xff}, payload...)
	return append(f, make([]byte, max(0, 60-len(f)))...)
}

// recv returns the payload of the next frame of testEtherType on fd (its
// padding trimmed), or an error naming what after the socket's 10 s bound.
func recv(fd int, what string) (string, error) {
	buf := make([]byte, 2048)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	for err == unix.EINTR { // a signal (the runtime's preemption) is no answer
		n, _, err = unix.Recvfrom(fd, buf, 0)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return string(bytes.TrimRight(buf[14:n], "\x00")), nil
}

// hookSys is the real socket calls, with afterFirstSocket run once right
// after the first socket() (the read socket's: made, not bound yet).
type hookSys struct {
	unixSys
	afterFirstSocket func()
}

func (h *hookSys) Socket(domain, typ, proto int) (int, error) {
	fd, err := h.unixSys.Socket(domain, typ, proto)
	if f := h.afterFirstSocket; f != nil {
		h.afterFirstSocket = nil
		f()
	}
	return fd, err
}

// runIn starts the forwarder (run with s) in the namespace and returns once
// it is ready, and a function that ends it (cancels its ctx) and returns
// its error, failing t if it does not return within 10 s.
func (n *fwdNet) runIn(t testing.TB, s sys) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- inNetns(n.ns, func() error { return run(ctx, s, "in", "out", func() { close(ready) }) })
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the forwarder ended before it was ready: %v", err)
	}
	ended := false
	stop = func() error {
		t.Helper()
		if ended {
			return nil
		}
		ended = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the forwarder still runs 10 s after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// A frame that arrives on out (or any interface of the namespace but in)
// while the forwarder opens its sockets is never forwarded: here one
// arrives on out after the read socket is made and before it is bound
// (the hook waits until a socket bound to out for the test's EtherType has
// it: the kernel hands a received frame to the packet sockets of every
// protocol, an unbound one first, before those of one protocol, so by then
// a read socket made with ETH_P_ALL has it queued), then a marker frame
// arrives on in once the forwarder is ready. What leaves by out (read on
// outp) must be the marker alone. With the read socket made with ETH_P_ALL
// the stray frame is queued on it and forwarded before the marker: "the
// forwarder sent 1 frame(s) that arrived on out before the marker".
func TestFramesOfOtherInterfacesBeforeTheBindAreNotForwarded(t *testing.T) {
	n := newFwdNet(t)
	strayTx := n.socket(t, "outp", 0)
	markTx := n.socket(t, "inp", 0)
	seenOnOut := n.socket(t, "out", testEtherType)
	rx := n.socket(t, "outp", testEtherType)
	hookErr := errors.New("the hook did not run: no socket() call")
	hook := &hookSys{afterFirstSocket: func() {
		hookErr = send(strayTx, n.idx["outp"], "stray")
		if hookErr == nil {
			var got string
			if got, hookErr = recv(seenOnOut, "the stray frame on out"); hookErr == nil && got != "stray" {
				hookErr = fmt.Errorf("out got %q, want the stray frame", got)
			}
		}
	}}
	stop := n.runIn(t, hook)
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	markerAlone(t, n, markTx, rx, stop, "stray", "arrived on out")
}

// markerAlone sends a marker frame into in (from inp, by markTx), reads
// what the forwarder sent out of out (rx, on outp) up to the marker and
// fails t if frames with payload other (which what names) came before it
// or anything else came; then it ends the forwarder (stop), which must
// return nil.
func markerAlone(t *testing.T, n *fwdNet, markTx, rx int, stop func() error, other, what string) {
	t.Helper()
	if err := send(markTx, n.idx["inp"], "marker"); err != nil {
		t.Fatal(err)
	}
	before := 0
	for {
		got, err := recv(rx, "the marker forwarded out of out")
		if err != nil {
			t.Fatal(err)
		}
		if got == "marker" {
			break
		}
		if got != other {
			t.Fatalf("outp got %q, want the marker", got)
		}
		before++
	}
	if before != 0 {
		t.Errorf("the forwarder sent %d frame(s) that %s before the marker", before, what)
	}
	if err := stop(); err != nil {
		t.Errorf("the forwarder ended with %v, want nil (its context ended)", err)
	}
}

// Run ends when its context ends, with no frame arriving: its blocking read
// times out every readTimeout (SO_RCVTIMEO) and then sees ctx. (Without the
// timeout the read went on waiting for the next frame: closing the socket
// does not wake it.)
func TestRunEndsWhenItsContextEnds(t *testing.T) {
	n := newFwdNet(t)
	stop := n.runIn(t, unixSys{})
	if err := stop(); err != nil {
		t.Errorf("the forwarder ended with %v, want nil (its context ended)", err)
	}
}

// A frame leaving by in (sent by the namespace, not arriving) is not
// forwarded: the read socket ignores outgoing frames
// (PACKET_IGNORE_OUTGOING). A socket of the test sends one out of in (inp
// gets it); the kernel hands it to in's packet sockets as it transmits it,
// before the send returns, so a read socket that took outgoing frames
// would have it queued before the marker sent next from inp. What leaves
// by out must be the marker alone. Without the option: "the forwarder sent
// 1 frame(s) that left by in before the marker".
func TestFramesLeavingByInAreNotForwarded(t *testing.T) {
	n := newFwdNet(t)
	leaveTx := n.socket(t, "in", 0)
	seenOnInp := n.socket(t, "inp", testEtherType)
	markTx := n.socket(t, "inp", 0)
	rx := n.socket(t, "outp", testEtherType)
	stop := n.runIn(t, unixSys{})
	if err := send(leaveTx, n.idx["in"], "leaving"); err != nil {
		t.Fatal(err)
	}
	if got, err := recv(seenOnInp, "the frame that left by in, at inp"); err != nil || got != "leaving" {
		t.Fatalf("inp got %q (%v), want the frame that left by in", got, err)
	}
	markerAlone(t, n, markTx, rx, stop, "leaving", "left by in")
}

// pingPong returns a function that sends frame into in (from inp, by tx)
// and reads the next frame on rx (bound to outp) into buf: one frame
// through the forwarder, with no allocation of its own.
func pingPong(tb testing.TB, tx, rx int, frame, buf []byte) func() {
	return func() {
		if _, err := unix.Write(tx, frame); err != nil {
			tb.Fatalf("send: %v", err)
		}
		for {
			_, err := unix.Read(rx, buf)
			if err == nil {
				return
			}
			if err != unix.EINTR { // a signal (the runtime's preemption) is no answer
				tb.Fatalf("the frame forwarded out of out: %v", err)
			}
		}
	}
}

// forwarding starts the forwarder in a namespace of its own (in this
// process) and returns pingPong's function for frames carrying payload.
func forwarding(tb testing.TB, payload string) func() {
	n := newFwdNet(tb)
	tx := n.socket(tb, "inp", 0)
	rx := n.socket(tb, "outp", testEtherType)
	n.runIn(tb, unixSys{})
	return pingPong(tb, tx, rx, testFrame(payload), make([]byte, 2048))
}

// Forwarding a frame allocates nothing: the forwarder runs in this process
// (its goroutine in the namespace) and the test's own sends and reads
// allocate nothing, so the process's allocations per frame are the
// forwarder's. (With recvfrom, each frame's source address cost 2: its
// raw buffer and its Sockaddr, 160 bytes.)
func TestForwardingAllocatesNothingPerFrame(t *testing.T) {
	if a := testing.AllocsPerRun(500, forwarding(t, "alloc")); a != 0 {
		t.Errorf("%v allocations per frame forwarded, want 0", a)
	}
}

// BenchmarkForwarderFrame is one frame through the forwarder running in
// this process (one in flight): -benchmem's allocs/op are the forwarder's
// per frame (the benchmark's own I/O allocates nothing). Its ns/op is the
// round trip, both sides' CPU and the scheduler's; BenchmarkForwarderCPU
// measures the forwarder process's CPU alone.
func BenchmarkForwarderFrame(b *testing.B) {
	f := forwarding(b, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f()
	}
}
