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

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ReadyLine is the line Main writes to stdout once the forwarder's sockets
// are bound: from then on every frame arriving on in is queued for it
// (drivers/netns waits for this line before it reports the instance made).
const ReadyLine = "ready"

// Run forwards frames from interface in to interface out until ctx ends or
// a socket fails. ready (if not nil) is called once both sockets are bound,
// before the first frame is read.
func Run(ctx context.Context, in, out string, ready func()) error {
	ii, err := net.InterfaceByName(in)
	if err != nil {
		return fmt.Errorf("in: %w", err)
	}
	oi, err := net.InterfaceByName(out)
	if err != nil {
		return fmt.Errorf("out: %w", err)
	}
	rfd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("in socket: %w", err)
	}
	defer unix.Close(rfd)
	if err := unix.Bind(rfd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ii.Index}); err != nil {
		return fmt.Errorf("bind %s: %w", in, err)
	}
	// a burst waits in the socket rather than being dropped at once
	_ = unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	// protocol 0: this socket only sends
	wfd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("out socket: %w", err)
	}
	defer unix.Close(wfd)
	if err := unix.Bind(wfd, &unix.SockaddrLinklayer{Ifindex: oi.Index}); err != nil {
		return fmt.Errorf("bind %s: %w", out, err)
	}
	go func() {
		<-ctx.Done()
		_ = unix.Shutdown(rfd, unix.SHUT_RD)
		_ = unix.Close(rfd)
	}()
	if ready != nil {
		ready()
	}
	to := &unix.SockaddrLinklayer{Ifindex: oi.Index, Halen: 6}
	buf := make([]byte, 65536)
	for {
		n, from, err := unix.Recvfrom(rfd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read %s: %w", in, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n < 14 {
			continue
		}
		copy(to.Addr[:6], buf[:6])
		if err := unix.Sendto(wfd, buf[:n], 0, to); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EPERM) {
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
