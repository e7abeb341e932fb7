package ovs

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"testing"
)

// FuzzConnReplies feeds arbitrary bytes as the switch's side of a bundle
// (revOF F10): a, once the bundle's barrier request arrived (before the
// switch's own barrier reply), and b, once its commit or discard arrived
// (then the switch closes the connection). Whatever the bytes (bogus
// lengths, errors with any xid, stray echo requests and replies, bundle
// replies out of turn, a stream cut short), the bundle returns, without a
// panic, nil (only after a commit) or a not-sent, refused or unknown
// outcome. a is framed first (framed): a stream whose lengths do not
// frame the switch's own barrier reply, or more stray answers than the
// bundle's, would leave the bundle waiting for its caller's context,
// which no switch does.
func FuzzConnReplies(f *testing.F) {
	// xids: hello 1, bundle open 2, adds 3 and 4, barrier 5, commit 6
	ctl := func(typ uint16, xid uint32) []byte {
		body := binary.BigEndian.AppendUint32(nil, 1)
		body = binary.BigEndian.AppendUint16(body, typ)
		return message(ofptBundleControl, xid, binary.BigEndian.AppendUint16(body, bundleAtomic|bundleOrdered))
	}
	ofErr := func(xid uint32, typ, code uint16) []byte {
		return message(ofptError, xid, binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, typ), code))
	}
	cat := func(ms ...[]byte) []byte {
		var b []byte
		for _, m := range ms {
			b = append(b, m...)
		}
		return b
	}
	f.Add([]byte{}, ctl(bundleCommitReply, 6))
	f.Add(ofErr(4, 5, 1), ctl(bundleDiscardReply, 6))
	f.Add(ofErr(2, 17, 1), []byte{})
	f.Add(message(ofptEchoRequest, 9, []byte("ping")), cat(ofErr(4, 5, 1), ofErr(6, 17, 13)))
	f.Add(cat(message(ofptBarrierReply, 5, nil), ctl(bundleCommitReply, 6)), []byte{})
	f.Add([]byte{6, 0, 0, 4, 0, 0, 0, 1}, []byte{})       // a length below the header
	f.Add(ofErr(3, 5, 1)[:10], ctl(bundleCommitReply, 6)) // cut short
	f.Add([]byte{}, cat(ofErr(6, 1, 1)[:8], ctl(bundleCommitReply, 6)))
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop", "add table=2,priority=3,reg3=0x1,actions=output:2"}
	fms, err := encodeBundle(lines)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		o := newOfConn("unix:/nonexistent/br.mgmt")
		var sw net.Conn
		done := make(chan bool, 1) // the switch saw a commit
		o.dial = func(context.Context) (net.Conn, error) {
			c, s := net.Pipe()
			sw = s
			go fuzzSwitch(s, framed(a), b, done)
			return c, nil
		}
		err := o.bundle(context.Background(), fms, lines)
		if err != nil && !errors.Is(err, errNotSent) && !errors.Is(err, errRefused) && !errors.Is(err, errOutcomeUnknown) {
			t.Fatalf("%v: want nil, not sent, refused or unknown", err)
		}
		o.close()
		if sw != nil {
			committed := <-done
			if err == nil && !committed {
				t.Fatal("the bundle succeeded without a commit")
			}
		}
	})
}

// fuzzSwitch answers the hello, writes a after the barrier request and
// then the barrier's reply, and b after the commit or discard, then
// closes c; it reads what the connection writes all the while (a pipe
// has no buffer). done gets whether a commit arrived.
func fuzzSwitch(c net.Conn, a, b []byte, done chan<- bool) {
	got := make(chan []byte, 64)
	var committed atomic.Bool
	go func() {
		defer close(got)
		for {
			m, err := readMessage(c)
			if err != nil {
				return
			}
			if m[1] == ofptBundleControl && len(m) >= 14 && binary.BigEndian.Uint16(m[12:]) == bundleCommitRequest {
				committed.Store(true)
			}
			select {
			case got <- m:
			default: // echo replies beyond 64: not needed
			}
		}
	}()
	defer func() {
		_ = c.Close()
		for range got { // the reader has seen all that arrived
		}
		done <- committed.Load()
	}()
	next := func(typ uint8) []byte {
		for m := range got {
			if m[1] == typ {
				return m
			}
		}
		return nil
	}
	h := next(ofptHello)
	if h == nil {
		return
	}
	if _, err := c.Write(message(ofptHello, binary.BigEndian.Uint32(h[4:]), nil)); err != nil {
		return
	}
	br := next(ofptBarrierRequest)
	if br == nil {
		return
	}
	if _, err := c.Write(a); err != nil {
		return
	}
	if _, err := c.Write(message(ofptBarrierReply, binary.BigEndian.Uint32(br[4:]), nil)); err != nil {
		return
	}
	if next(ofptBundleControl) == nil {
		return
	}
	_, _ = c.Write(b)
}

// framed cuts a into at most 8 messages whose length fields frame it (a
// message's length past the end of a becomes the rest's; a length below
// the header's is kept, and ends the stream: the reader closes on it) and
// drops a last piece shorter than a header. It works on a copy of a: a
// fuzz function must not modify the fuzzing engine's arguments.
func framed(a []byte) []byte {
	a = slices.Clone(a)
	var out []byte
	for n := 0; len(a) >= 8 && n < 8; n++ {
		l := int(binary.BigEndian.Uint16(a[2:]))
		if l < 8 {
			return append(out, a...)
		}
		if l > len(a) {
			l = len(a)
			binary.BigEndian.PutUint16(a[2:], uint16(l))
		}
		out, a = append(out, a[:l]...), a[l:]
	}
	return out
}

// TestFramedKeepsItsInput: framed cuts a length past the end on a copy,
// never in the fuzzing engine's bytes (review final MED-1).
func TestFramedKeepsItsInput(t *testing.T) {
	a := []byte{6, 0, 0xff, 0xff, 0, 0, 0, 1, 9, 9}
	want := slices.Clone(a)
	if got := framed(a); !slices.Equal(got[2:4], []byte{0, 10}) {
		t.Fatalf("framed(%v) = %v: length field not cut to 10", want, got)
	}
	if !slices.Equal(a, want) {
		t.Fatalf("framed modified its input: %v → %v", want, a)
	}
}
