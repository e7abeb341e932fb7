package dpfwd

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// recordSys records open's socket calls and fails the one numbered fail
// (1-based; 0: none). Its descriptors are numbers only: nothing is opened.
type recordSys struct {
	calls []string
	fail  int
	next  int
}

func (r *recordSys) call(c string) error {
	r.calls = append(r.calls, c)
	if len(r.calls) == r.fail {
		return errors.New("test: refused")
	}
	return nil
}

func (r *recordSys) Socket(domain, typ, proto int) (int, error) {
	r.next++
	if err := r.call(fmt.Sprintf("socket(%d,%d,%#x)=%d", domain, typ, proto, r.next)); err != nil {
		return -1, err
	}
	return r.next, nil
}

func (r *recordSys) Bind(fd int, sa unix.Sockaddr) error {
	ll := sa.(*unix.SockaddrLinklayer)
	return r.call(fmt.Sprintf("bind(%d,proto %#x,ifindex %d)", fd, ll.Protocol, ll.Ifindex))
}

func (r *recordSys) SetsockoptInt(fd, level, opt, value int) error {
	return r.call(fmt.Sprintf("setsockopt(%d,%d,%d,%d)", fd, level, opt, value))
}

func (r *recordSys) SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error {
	return r.call(fmt.Sprintf("setsockopt(%d,%d,%d,%dus)", fd, level, opt, tv.Sec*1e6+int64(tv.Usec)))
}

func (r *recordSys) Close(fd int) error { return r.call(fmt.Sprintf("close(%d)", fd)) }

// The forwarder's sockets are opened so that no frame of another interface
// is ever queued on the read socket: it is made with protocol 0 (the
// kernel queues nothing on it) and gets ETH_P_ALL only at its bind to in;
// its receive buffer is enlarged before that bind, and its reads time out
// after readTimeout (SO_RCVTIMEO: Run sees its ctx end, see
// TestRunEndsWhenItsContextEnds) and it ignores frames leaving by in
// (PACKET_IGNORE_OUTGOING: see TestFramesLeavingByInAreNotForwarded); the
// write socket has
// protocol 0 at socket() and at its bind, so it never queues a frame. (Made
// with ETH_P_ALL, the read socket queued every interface's frames until the
// bind, out's too, and the forwarder sent them out again: the real test
// TestFramesOfOtherInterfacesBeforeTheBindAreNotForwarded shows it.) A
// failing call closes what was opened and names the interface.
func TestOpenSetsTheProtocolAtTheBind(t *testing.T) {
	in, out := &net.Interface{Index: 7, Name: "in"}, &net.Interface{Index: 9, Name: "out"}
	all := fmt.Sprintf("%#x", htons(unix.ETH_P_ALL))
	want := []string{
		fmt.Sprintf("socket(%d,%d,0x0)=1", unix.AF_PACKET, unix.SOCK_RAW),
		fmt.Sprintf("setsockopt(1,%d,%d,%d)", unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20),
		fmt.Sprintf("setsockopt(1,%d,%d,%dus)", unix.SOL_SOCKET, unix.SO_RCVTIMEO, readTimeout.Microseconds()),
		fmt.Sprintf("setsockopt(1,%d,%d,1)", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING),
		"bind(1,proto " + all + ",ifindex 7)",
		fmt.Sprintf("socket(%d,%d,0x0)=2", unix.AF_PACKET, unix.SOCK_RAW),
		"bind(2,proto 0x0,ifindex 9)",
	}
	r := &recordSys{}
	rfd, wfd, err := open(r, in, out)
	if err != nil || rfd != 1 || wfd != 2 {
		t.Fatalf("open = %d, %d, %v; want 1, 2, nil", rfd, wfd, err)
	}
	if !reflect.DeepEqual(r.calls, want) {
		t.Fatalf("socket calls:\n  %s\nwant:\n  %s", strings.Join(r.calls, "\n  "), strings.Join(want, "\n  "))
	}

	// each failing call: the error names the socket or interface, and
	// every descriptor opened is closed (the receive buffer's setsockopt
	// failing is not an error: a smaller buffer still forwards)
	for _, tc := range []struct {
		fail   int
		err    string
		closed []string
	}{
		{1, "in socket: test: refused", nil},
		{3, "in socket: test: refused", []string{"close(1)"}},
		{4, "in socket: PACKET_IGNORE_OUTGOING (Linux 4.20+): test: refused", []string{"close(1)"}},
		{5, "bind in: test: refused", []string{"close(1)"}},
		{6, "out socket: test: refused", []string{"close(1)"}},
		{7, "bind out: test: refused", []string{"close(1)", "close(2)"}},
	} {
		r := &recordSys{fail: tc.fail}
		_, _, err := open(r, in, out)
		if err == nil || err.Error() != tc.err {
			t.Errorf("call %d fails: error %v, want %q", tc.fail, err, tc.err)
		}
		if got := r.calls[tc.fail:]; !reflect.DeepEqual(got, tc.closed) && len(got)+len(tc.closed) > 0 {
			t.Errorf("call %d fails: then %v, want %v", tc.fail, got, tc.closed)
		}
	}
	r = &recordSys{fail: 2}
	if _, _, err := open(r, in, out); err != nil {
		t.Errorf("the receive buffer refused: %v, want the sockets opened all the same", err)
	}
}
