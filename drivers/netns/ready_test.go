package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
)

// udpIn opens a UDP socket bound to addr inside network namespace ns (the
// socket stays in ns): the test's sender and receiver.
func udpIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer orig.Close()
		h, err := vnetns.GetFromName(ns)
		if err == nil {
			defer h.Close()
			err = vnetns.Set(h)
		}
		var c *net.UDPConn
		if err == nil {
			a, _ := net.ResolveUDPAddr("udp4", addr)
			c, err = net.ListenUDP("udp4", a)
		} else {
			err = fmt.Errorf("netns %s: %w", ns, err)
		}
		// back to the test's namespace: a thread (maybe the main one) left
		// in ns would get the test process killed with ns's processes
		if serr := vnetns.Set(orig); serr != nil {
			ch <- res{c, errors.Join(err, serr)} // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		if r.c != nil {
			r.c.Close()
		}
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// Frames sent through an instance right after Create returns all arrive,
// even when the forwarder is slow to start (here held 300 ms before it
// execs): Create returns only once the forwarder's sockets are bound. It
// once returned right after starting the process, and frames reaching in
// before the bind were lost.
func TestCreateReturnsOnceTheForwarderForwards(t *testing.T) {
	ctx := context.Background()
	d := ovstest.Start(t)
	p := d.Prefix()
	br := p + "d0"
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		t.Fatal(err)
	}
	// sender a (port 1) → instance in (5002); instance out (5003) → receiver b (port 2)
	hosts := []struct{ ns, mac, ip string }{{p + "ha", "02:00:00:00:0a:01", "10.251.0.1"}, {p + "hb", "02:00:00:00:0a:02", "10.251.0.2"}}
	for i, h := range hosts {
		if err := d.AddVeth(ctx, br, h.ns, i+1, h.ns, "eth0", h.mac); err != nil {
			t.Fatal(err)
		}
		if _, err := ovs.InNetns(ctx, h.ns, "ip", "addr", "add", h.ip+"/24", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ovs.InNetns(ctx, hosts[0].ns, "ip", "neigh", "replace", hosts[1].ip, "lladdr", hosts[1].mac, "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	ports := SlotPorts(1)
	sw := d.NewSwitch(br)
	for _, f := range []string{fmt.Sprintf("in_port=1,actions=output:%d", ports.In), fmt.Sprintf("in_port=%d,actions=output:2", ports.Out)} {
		if _, err := sw.Ofctl(ctx, "add-flow", f); err != nil {
			t.Fatal(err)
		}
	}
	rx := udpIn(t, hosts[1].ns, hosts[1].ip+":7000")
	tx := udpIn(t, hosts[0].ns, hosts[0].ip+":7001")

	// the forwarder starts 300 ms late (a loaded machine)
	slow := append([]string{"sh", "-c", `sleep 0.3; exec "$0" "$@"`}, netnstest.Forwarder(t)...)
	in, err := Create(ctx, d, br, p+"rf", Transcoder, ports.In, ports.Out, slow, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Delete(context.Background(), d) })
	const n = 20
	dst := &net.UDPAddr{IP: net.ParseIP(hosts[1].ip), Port: 7000}
	for i := range n {
		if _, err := tx.WriteToUDP([]byte(fmt.Sprintf("frame %d", i)), dst); err != nil {
			t.Fatal(err)
		}
	}
	// every frame is sent; count what the receiver gets (the deadline only
	// ends a failing run)
	got := 0
	buf := make([]byte, 1500)
	_ = rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got < n {
		if _, _, err := rx.ReadFromUDP(buf); err != nil {
			break
		}
		got++
	}
	if got != n {
		t.Errorf("receiver got %d of the %d frames sent right after Create returned", got, n)
	}
}

// A forwarder that exits before it is ready makes Create fail with its
// exit status and stderr, one that never gets ready fails when ctx ends or
// the ready timeout passes; either way the process is gone (killed,
// reaped), so are its children, and the namespace is removed. A wrapper
// that exits while a child it started still holds its stdout and stderr
// ("wrapper with a child") is seen to exit too: before (revRR MED-1),
// the exit was seen only once the child closed them, so Create waited for
// ctx (its error had neither the exit status nor the stderr) and its
// cleanup waited 30 s more before it killed the child.
func TestCreateFailsWhenTheForwarderIsNotReady(t *testing.T) {
	ctx := context.Background()
	d := ovstest.Start(t)
	br := d.Prefix() + "d0"
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, tc := range []struct {
		name   string
		script string // $1 is the pid file ($1.child: a child's pid)
		ctx    time.Duration
		ready  time.Duration // Create's readyTimeout
		want   []string
	}{
		{"exits", `echo $$ > "$1"; echo "no luck binding in" >&2; exit 3`, time.Minute, 0, []string{"forwarder not ready", "exit status 3", "no luck binding in"}},
		{"never ready", `echo $$ > "$1"; exec sleep 600`, time.Second, 0, []string{"forwarder not ready", "context deadline exceeded"}},
		{"no ready line in time", `echo $$ > "$1"; exec sleep 600`, time.Minute, 300 * time.Millisecond,
			[]string{"forwarder not ready", `no "ready" line on its stdout within 300ms`}},
		{"wrapper with a child", `echo $$ > "$1"; sleep 600 & echo $! > "$1.child"; echo boom >&2; exit 3`, 5 * time.Second, 0,
			[]string{"forwarder not ready", "exit status 3", "boom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			cctx, cancel := context.WithTimeout(ctx, tc.ctx)
			defer cancel()
			name := fmt.Sprintf("%snr%d", d.Prefix(), i)
			ports := SlotPorts(i + 1)
			in, err := Create(cctx, d, br, name, Firewall, ports.In, ports.Out, []string{"sh", "-c", tc.script, "sh", pidFile}, tc.ready)
			if err == nil {
				_ = in.Delete(ctx, d)
				t.Fatal("Create succeeded with a forwarder that never said ready")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to say %q", err, w)
				}
			}
			pid := readPid(t, pidFile)
			if kerr := unix.Kill(pid, 0); !errors.Is(kerr, unix.ESRCH) {
				t.Errorf("forwarder pid %d after Create failed: kill -0 = %v, want no such process (killed and reaped)", pid, kerr)
			}
			if _, serr := os.Stat(pidFile + ".child"); serr == nil {
				if child := readPid(t, pidFile+".child"); !exited(t, child) {
					t.Errorf("the forwarder's child %d is alive after Create failed, want it killed", child)
				}
			}
			nss, nerr := ovs.Netns(ctx, name)
			if nerr != nil {
				t.Fatal(nerr)
			}
			if len(nss) != 0 {
				t.Errorf("namespaces left after Create failed: %v", nss)
			}
		})
	}
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the forwarder did not run: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", file, err)
	}
	return pid
}

// exited reports whether process pid has ended (it may wait for its
// parent to reap it): its pidfd is readable once it has; the wait (10 s)
// only ends a failing run, a live process (SIGKILL already sent) dies at once.
func exited(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd of %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
		return n == 1
	}
}
