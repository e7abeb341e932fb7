// Package dpfwd is the process of a DP VNF instance: a userspace forwarder
// that runs inside the instance's network namespace, reads every frame that
// arrives on the "in" interface (an AF_PACKET socket) and sends it out of
// the "out" interface (another AF_PACKET socket). The stage's nftables rules
// (drivers/netns) act on "out"'s egress hook, so what the stage drops never
// leaves. Because the forwarding happens in this process, the instance's CPU
// time and memory are this process's — measured from /proc like any VNF's —
// and its death is an event its parent sees at once (the process exits).
package dpfwd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// readTimeout bounds each blocking read of the in socket (SO_RCVTIMEO):
// Run notices its context's end at the latest this long after it, and an
// idle forwarder wakes 1/readTimeout times a second.
const readTimeout = 200 * time.Millisecond

// ReadyLine is the line Main writes to stdout once the forwarder's sockets
// are bound: from then on every frame arriving on in is queued for it
// (drivers/netns waits for this line before it reports the instance made).
const ReadyLine = "ready"

// Run forwards frames from interface in to interface out until ctx ends or
// a socket fails. ready (if not nil) is called once both sockets are bound,
// before the first frame is read.
func Run(ctx context.Context, in, out string, ready func()) error {
	return run(ctx, unixSys{}, in, out, ready)
}

// sys is the socket calls that open the forwarder's sockets: the real ones
// (unixSys), or a test's that records them or acts between them.
type sys interface {
	Socket(domain, typ, proto int) (int, error)
	Bind(fd int, sa unix.Sockaddr) error
	SetsockoptInt(fd, level, opt, value int) error
	SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error
	Close(fd int) error
}

type unixSys struct{}

func (unixSys) Socket(domain, typ, proto int) (int, error) { return unix.Socket(domain, typ, proto) }
func (unixSys) Bind(fd int, sa unix.Sockaddr) error        { return unix.Bind(fd, sa) }
func (unixSys) SetsockoptInt(fd, level, opt, value int) error {
	return unix.SetsockoptInt(fd, level, opt, value)
}
func (unixSys) SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error {
	return unix.SetsockoptTimeval(fd, level, opt, tv)
}
func (unixSys) Close(fd int) error { return unix.Close(fd) }

// open opens the forwarder's sockets on interfaces in and out (the read
// socket rfd, the write socket wfd) or closes what it opened.
//
// rfd is made with protocol 0, so the kernel queues no frame on it, and
// bound to in with protocol ETH_P_ALL: from the bind on, and only then, it
// queues every frame arriving on in. A packet socket made with ETH_P_ALL
// queues the frames of every interface of the namespace (out's, lo's) until
// it is bound, and they stay queued: the forwarder would read them after
// the bind and send them out of out as if they had come in by in (it once
// did). Its receive buffer is enlarged before the bind, so the first burst
// finds it large. rfd's reads block, each for readTimeout at most
// (SO_RCVTIMEO; see run), and it ignores the frames leaving by in
// (PACKET_IGNORE_OUTGOING, Linux 4.20: the kernel's taps on transmit skip
// it), so every frame it queues arrived on in. wfd only sends: protocol 0
// at socket() and at bind, it never queues a frame; bound to out, it sends
// with write(2), the kernel taking the device from the bind and the
// protocol from the frame's Ethernet header.
func open(s sys, in, out *net.Interface) (rfd, wfd int, err error) {
	defer func() { // on failure: close what was opened, rfd first
		if err == nil {
			return
		}
		for _, fd := range []int{rfd, wfd} {
			if fd >= 0 {
				_ = s.Close(fd)
			}
		}
		rfd, wfd = -1, -1
	}()
	if rfd, err = s.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0); err != nil {
		return -1, -1, fmt.Errorf("in socket: %w", err)
	}
	// a burst waits in the socket rather than being dropped at once
	_ = s.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := s.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return rfd, -1, fmt.Errorf("in socket: %w", err)
	}
	// frames leaving by in (the namespace's own) are not queued: run reads
	// with read(2), which gives no packet type to filter them by
	if err := s.SetsockoptInt(rfd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return rfd, -1, fmt.Errorf("in socket: PACKET_IGNORE_OUTGOING (Linux 4.20+): %w", err)
	}
	if err := s.Bind(rfd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: in.Index}); err != nil {
		return rfd, -1, fmt.Errorf("bind %s: %w", in.Name, err)
	}
	if wfd, err = s.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0); err != nil {
		return rfd, -1, fmt.Errorf("out socket: %w", err)
	}
	if err := s.Bind(wfd, &unix.SockaddrLinklayer{Ifindex: out.Index}); err != nil {
		return rfd, wfd, fmt.Errorf("bind %s: %w", out.Name, err)
	}
	return rfd, wfd, nil
}

func run(ctx context.Context, s sys, in, out string, ready func()) error {
	ii, err := net.InterfaceByName(in)
	if err != nil {
		return fmt.Errorf("in: %w", err)
	}
	oi, err := net.InterfaceByName(out)
	if err != nil {
		return fmt.Errorf("out: %w", err)
	}
	rfd, wfd, err := open(s, ii, oi)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	defer unix.Close(wfd)
	// A blocking read, woken by the frame: one read per frame. (Through
	// Go's poller an empty queue, its usual state, cost an EAGAIN, a park,
	// an epoll_wait and a second read per frame: 1.3-1.8x the CPU per
	// frame, which the DP scaler reads as the instance's load;
	// docs/dataplane.md.) Closing rfd would not wake the read; its
	// SO_RCVTIMEO does, every readTimeout, so Run returns within
	// readTimeout of ctx's end (of the frame then being read, under load).
	// read(2) and write(2) on the bound sockets take and give no address:
	// a frame costs no allocation (recvfrom's source address was a new
	// Sockaddr each frame; docs/benchmarks.md).
	done := ctx.Done()
	if ready != nil {
		ready()
	}
	buf := make([]byte, 65536)
	for {
		n, err := unix.Read(rfd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) { // the timeout (EWOULDBLOCK is EAGAIN)
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			return fmt.Errorf("read %s: %w", in, err)
		}
		select {
		case <-done:
			return nil
		default:
		}
		if n < 14 {
			continue
		}
		if _, err := unix.Write(wfd, buf[:n]); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EPERM) {
			// EPERM: the stage's nftables rules dropped the frame at egress
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
}

// Main is the forwarder's command line: -in IFACE -out IFACE. It writes
// ReadyLine to stdout once it forwards and returns the process exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("dp-forward", flag.ContinueOnError)
	in := fs.String("in", "in", "interface frames arrive on")
	out := fs.String("out", "out", "interface frames leave by")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ready := func() { fmt.Fprintln(os.Stdout, ReadyLine) }
	if err := Run(ctx, *in, *out, ready); err != nil {
		fmt.Fprintln(os.Stderr, "dp-forward:", err)
		return 1
	}
	return 0
}
