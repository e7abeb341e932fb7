package ovs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// ofConn is a persistent OpenFlow 1.5 connection to one bridge's
// management socket (the socket ovs-ofctl talks to), used for bundles: an
// ovs-ofctl run costs a process start, a connection and a version
// handshake per bundle (~130 ms on a quiet host, seconds on a loaded one),
// the bundle itself a few ms (docs/dataplane.md "Bundles over one OpenFlow
// connection"). One bundle at a time (the Switch's lock); a reader
// answers ovs-vswitchd's echo requests between bundles and hands the
// replies of the bundle in flight to it. A broken connection (ovs-vswitchd
// restarted) is dialled again by the next bundle.
type ofConn struct {
	path string // the unix socket
	// dial connects (nil: net.Dialer on path; tests give a pipe)
	dial func(ctx context.Context) (net.Conn, error)

	mu   sync.Mutex // the bundle in flight and the fields below
	c    net.Conn
	dead chan struct{} // closed when c's reader stops
	xid  uint32
	id   uint32 // bundle ids
	// closed: close was called; no bundle dials again (its Switch's
	// bundles go through ovs-ofctl, as Close's "Apply still works" says)
	closed bool

	wmu sync.Mutex // writes on c (the bundle's and the reader's echo replies)

	wmuWait sync.Mutex // the waiter below
	wait    *ofWaiter
}

// ofWaiter receives the messages of one bundle's transaction ids.
type ofWaiter struct {
	first, last uint32
	ch          chan []byte
}

// errOutcomeUnknown: the bundle's commit went out and no answer came (the
// connection broke, or the caller stopped waiting): it changed nothing or
// all of it (the Switch marks its rules dirty, uncertainLocked).
var errOutcomeUnknown = errors.New("outcome unknown")

// errNotSent: the bundle did not reach ovs-vswitchd whole (no connection,
// its write failed: the commit, its last message, never arrived, or the
// connection was dropped before the commit was written: ovs-vswitchd
// discards its open bundles), so it changed nothing and may go through
// ovs-ofctl instead.
var errNotSent = errors.New("bundle not sent over the OpenFlow connection")

func newOfConn(path string) *ofConn {
	return &ofConn{path: strings.TrimPrefix(path, "unix:")}
}

// close drops the connection for good: a later bundle is not sent
// (errNotSent) rather than dialling a connection nothing would close.
func (o *ofConn) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.dropLocked()
}

func (o *ofConn) dropLocked() {
	if o.c != nil {
		_ = o.c.Close()
		<-o.dead
		o.c, o.dead = nil, nil
	}
}

// connectLocked dials and says hello when there is no live connection.
func (o *ofConn) connectLocked(ctx context.Context) error {
	if o.c != nil {
		select {
		case <-o.dead:
			o.dropLocked() // ovs-vswitchd closed it (a restart)
		default:
			return nil
		}
	}
	var c net.Conn
	var err error
	if o.dial != nil {
		c, err = o.dial(ctx)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "unix", o.path)
	}
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	o.xid++
	if _, err := c.Write(message(ofptHello, o.xid, nil)); err != nil {
		_ = c.Close()
		return fmt.Errorf("hello: %w", err)
	}
	h, err := readMessage(c)
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("hello: %w", err)
	}
	if h[1] != ofptHello || h[0] != ofVersion {
		_ = c.Close()
		return fmt.Errorf("hello: the switch answered OpenFlow version %d message type %d, want OpenFlow 1.5 (version %d) hello", h[0], h[1], ofVersion)
	}
	_ = c.SetDeadline(time.Time{})
	o.c, o.dead = c, make(chan struct{})
	go o.read(c, o.dead)
	return nil
}

// readMessage reads one OpenFlow message.
func readMessage(r io.Reader) ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return nil, fmt.Errorf("OpenFlow message of length %d", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[8:]); err != nil {
		return nil, err
	}
	return b, nil
}

// read answers echo requests and hands the bundle in flight its
// messages; others (port status...) are dropped. It ends with c.
func (o *ofConn) read(c net.Conn, dead chan struct{}) {
	defer close(dead)
	for {
		m, err := readMessage(c)
		if err != nil {
			_ = c.Close()
			return
		}
		xid := binary.BigEndian.Uint32(m[4:])
		if m[1] == ofptEchoRequest {
			putHeader(m, ofptEchoReply, xid) // m is this loop's own: answered in place
			o.wmu.Lock()
			_, err := c.Write(m)
			o.wmu.Unlock()
			if err != nil {
				_ = c.Close()
				return
			}
			continue
		}
		o.wmuWait.Lock()
		if w := o.wait; w != nil && xid >= w.first && xid <= w.last {
			select {
			case w.ch <- m:
			default: // more answers than messages sent: not ours to block on
			}
		}
		o.wmuWait.Unlock()
	}
}

// bundle sends fms (lines: their text, for errors) as one atomic ordered
// bundle and waits for its commit's answer: open and add messages and a
// barrier; once the barrier's reply says no add message was refused, the
// commit (else a discard: nothing changed). errNotSent: the commit never
// reached the switch whole (nothing changed; ovs-ofctl may run it).
// errRefused: the switch refused it (nothing changed). Any other error
// leaves the outcome unknown: the caller treats the bundle's rules as
// dirty either way.
func (o *ofConn) bundle(ctx context.Context, fms []flowMod, lines []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	if o.closed {
		return fmt.Errorf("%w: %s: the connection was closed", errNotSent, o.path)
	}
	if err := o.connectLocked(ctx); err != nil {
		return fmt.Errorf("%w: %s: %v", errNotSent, o.path, err)
	}
	o.id++
	first := o.xid + 1
	barrier := first + 1 + uint32(len(fms))
	end := barrier + 1 // the commit or the discard
	o.xid = end
	w := &ofWaiter{first: first, last: end, ch: make(chan []byte, 2*len(fms)+8)}
	o.wmuWait.Lock()
	o.wait = w
	o.wmuWait.Unlock()
	defer func() {
		o.wmuWait.Lock()
		o.wait = nil
		o.wmuWait.Unlock()
	}()
	if err := o.writeLocked(ctx, bundleMessages(o.id, first, fms)); err != nil {
		return err
	}
	// addLine: the line of the add message with transaction id xid
	addLine := func(xid uint32) (string, bool) {
		if i := int(xid - first - 1); xid > first && i < len(lines) {
			return lines[i], true
		}
		return "", false
	}
	var refused []string
	for done := false; !done; {
		m, err := o.nextLocked(ctx, w, false)
		if err != nil {
			return err
		}
		xid := binary.BigEndian.Uint32(m[4:])
		switch {
		case m[1] == ofptError:
			l, ok := addLine(xid)
			if !ok {
				l = "opening the bundle"
			}
			refused = append(refused, fmt.Sprintf("%s: %s", decodeError(m), l))
		case m[1] == ofptBarrierReply && xid == barrier:
			done = true
		}
	}
	typ := uint16(bundleCommitRequest)
	if len(refused) > 0 {
		typ = bundleDiscardRequest
	}
	if err := o.writeLocked(ctx, bundleControl(o.id, typ, end)); err != nil {
		if len(refused) > 0 {
			return bundleRefused("", refused) // the connection's end discards it
		}
		return err
	}
	// a failed commit: ovs-vswitchd sends the failing flow mod's error
	// (its add's xid: named as ovs-ofctl names it), then the commit's
	var failed []string
	for {
		m, err := o.nextLocked(ctx, w, true)
		if err != nil {
			return err
		}
		xid := binary.BigEndian.Uint32(m[4:])
		if xid != end {
			if l, ok := addLine(xid); ok && m[1] == ofptError && len(refused) == 0 {
				failed = append(failed, fmt.Sprintf("%s: %s", decodeError(m), l))
			}
			continue
		}
		switch {
		case m[1] == ofptError && len(refused) == 0:
			return bundleRefused(decodeError(m), failed)
		case len(refused) > 0:
			return bundleRefused("", refused) // discarded (or its discard failed: not committed either way)
		case m[1] == ofptBundleControl && len(m) >= 14 && binary.BigEndian.Uint16(m[12:]) == bundleCommitReply:
			return nil
		}
	}
}

// writeLocked writes msg whole, or drops the connection and returns
// errNotSent (a short write: its last message never arrived; a stopped
// caller stops the write).
func (o *ofConn) writeLocked(ctx context.Context, msg []byte) error {
	c := o.c
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Now()) })
	o.wmu.Lock()
	_, err := c.Write(msg)
	o.wmu.Unlock()
	if !stop() {
		_ = c.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		// ovs-vswitchd discards a connection's open bundles with it
		o.dropLocked()
		return fmt.Errorf("%w: %s: %v", errNotSent, o.path, err)
	}
	return nil
}

// nextLocked returns the next message of the bundle in flight; a lost
// connection or a stopped caller leaves its outcome unknown (the
// connection is dropped: the next bundle starts on a new one) unless the
// message is there already (revOF F7): the reader hands a message over
// before it closes dead, and select picks among ready cases at random, so
// a commit answered just before ovs-vswitchd closed the connection (or the
// caller stopped) would be "unknown", its rules rewritten for nothing.
//
// committed: the commit was written. Before it, the outcome is known
// (revOF F6): ovs-vswitchd discards a connection's open bundles with it,
// so nothing changed and the error is errNotSent (the Switch may run the
// bundle through ovs-ofctl), not an unknown outcome that marks its rules
// dirty.
func (o *ofConn) nextLocked(ctx context.Context, w *ofWaiter, committed bool) ([]byte, error) {
	outcome := errOutcomeUnknown
	if !committed {
		outcome = errNotSent
	}
	var lost error
	select {
	case m := <-w.ch:
		return m, nil
	case <-o.dead:
		lost = fmt.Errorf("OpenFlow connection %s lost before the bundle's answer: %w", o.path, outcome)
	case <-ctx.Done():
		lost = fmt.Errorf("waiting for the bundle's answer on %s: %w: %w", o.path, outcome, ctx.Err())
	}
	if m, ok := receivedBefore(w); ok {
		return m, nil
	}
	o.dropLocked()
	return nil, lost
}

// receivedBefore returns a message of w's that arrived while nextLocked's
// select took another ready case.
func receivedBefore(w *ofWaiter) ([]byte, bool) {
	select {
	case m := <-w.ch:
		return m, true
	default:
		return nil, false
	}
}

// errRefused: the switch refused the bundle (an OpenFlow error); it
// changed nothing.
var errRefused = errors.New("OpenFlow bundle refused")

func bundleRefused(commit string, refused []string) error {
	msg := ""
	if commit != "" {
		msg += " (" + commit + ")"
	}
	if len(refused) > 0 {
		msg += ": " + strings.Join(refused, "; ")
	}
	return fmt.Errorf("%w%s", errRefused, msg)
}

// ofErrorTypes names the OpenFlow error types ovs-vswitchd answers a
// bundle with.
var ofErrorTypes = map[uint16]string{
	0: "HELLO_FAILED", 1: "BAD_REQUEST", 2: "BAD_ACTION", 3: "BAD_INSTRUCTION", 4: "BAD_MATCH",
	5: "FLOW_MOD_FAILED", 13: "TABLE_FEATURES_FAILED", 17: "BUNDLE_FAILED", 0xffff: "EXPERIMENTER",
}

func decodeError(m []byte) string {
	if len(m) < 12 {
		return "OpenFlow error (short message)"
	}
	t, c := binary.BigEndian.Uint16(m[8:]), binary.BigEndian.Uint16(m[10:])
	name := ofErrorTypes[t]
	if name == "" {
		name = fmt.Sprint(t)
	}
	return fmt.Sprintf("OpenFlow error %s code %d", name, c)
}
