package mediahook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/routing"
)

// A re-INVITE moves the caller's media to another port: the update
// installs the call with the new caller half (the post waits for it), the
// call's old rules stay RetireAfter (4 s) longer and are then removed; an
// update naming the media the call has changes nothing; the callee's
// update replaces its half the same way.
func TestUpdateReplacesAHalfAndRetiresTheOld(t *testing.T) {
	h, f, clk := newHook(t)
	srv := httptest.NewServer(h.Handler("/media/v1"))
	defer srv.Close()
	post(t, srv, "/dc/2/start", form("callee", "abc@x", "10.102.0.7", "6002"))
	post(t, srv, "/dc/0/start", form("caller", "abc@x", "10.100.0.5", "6000"))
	old := h.Open()["abc@x"]
	if c := post(t, srv, "/dc/0/update", form("caller", "abc@x", "10.100.0.5", "6000")); c != http.StatusNoContent || len(f.opened) != 1 || h.Retiring() != 0 {
		t.Fatalf("update with the call's own media: %d, opened %v, retiring %d", c, f.opened, h.Retiring())
	}
	if c := post(t, srv, "/dc/0/update", form("caller", "abc@x", "10.100.0.5", "6004")); c != http.StatusNoContent {
		t.Fatalf("update: %d", c)
	}
	want := old
	want.CallerSendPort, want.CallerRecvPort = 6004, 6004
	if len(f.opened) != 2 || f.opened[1] != want || h.Open()["abc@x"] != want {
		t.Fatalf("after the update opened %+v, open %+v; want %+v", f.opened, h.Open(), want)
	}
	clk.Advance(4*time.Second - time.Millisecond)
	h.Wait()
	if len(f.closed) != 0 || h.Retiring() != 1 {
		t.Fatalf("the old rules went before RetireAfter: closed %v, retiring %d", f.closed, h.Retiring())
	}
	clk.Advance(time.Millisecond)
	h.Wait()
	if len(f.closed) != 1 || f.closed[0] != old || h.Retiring() != 0 {
		t.Fatalf("after RetireAfter closed %+v, want the old call %+v", f.closed, old)
	}
	// the callee moves too (another address and port)
	if c := post(t, srv, "/dc/2/update", form("callee", "abc@x", "10.102.0.8", "7000")); c != http.StatusNoContent {
		t.Fatalf("callee update: %d", c)
	}
	want2 := want
	want2.CalleeIP, want2.CalleeSendPort, want2.CalleeRecvPort = 0x0a660008, 7000, 7000
	if h.Open()["abc@x"] != want2 || f.opened[2] != want2 {
		t.Fatalf("after the callee's update open %+v, want %+v", h.Open()["abc@x"], want2)
	}
	// the end closes the current call at once, the replaced one on its timer
	post(t, srv, "/dc/0/end", form("caller", "abc@x", "", ""))
	h.Wait()
	if len(f.closed) != 2 || f.closed[1] != want2 {
		t.Fatalf("end: closed %+v", f.closed)
	}
	clk.Advance(4 * time.Second)
	h.Wait()
	if len(f.closed) != 3 || f.closed[2] != want {
		t.Fatalf("the callee's update's replaced call: closed %+v", f.closed)
	}
}

// An update never starts a call: one of a call not open is refused
// (ErrRefused, nothing pending, nothing opened: a forged in-dialog request
// for a made-up Call-ID opens no rules no end will remove), and so is one
// from another datacenter than the half it would replace (409 over HTTP,
// naming the field); a failed install keeps the call as it was, its rules
// and no retire; Drain drops the retires still due (the plane goes with
// the hook).
func TestUpdateOfACallNotOpenAndFailures(t *testing.T) {
	h, f, clk := newHook(t)
	ctx := context.Background()
	callee := Request{Op: "update", DC: 2, Role: Callee, Call: "a", Half: Half{DC: 2, IP: 7, Port: 6002}}
	caller := Request{Op: "update", DC: 0, Role: Caller, Call: "a", Half: Half{DC: 0, IP: 5, Port: 6000}}
	for _, r := range []Request{callee, caller} {
		if err := h.Handle(ctx, r); !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "call:") {
			t.Fatalf("update of a call not open: %v, want ErrRefused naming call", err)
		}
	}
	if len(f.opened) != 0 || len(h.Open()) != 0 || h.Pending() != 0 {
		t.Fatalf("two updates of a call not open: opened %v, pending %d", f.opened, h.Pending())
	}
	for _, r := range []Request{callee, caller} {
		r.Op = "start"
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.opened) != 1 || len(h.Open()) != 1 {
		t.Fatalf("two starts: opened %v", f.opened)
	}
	// the caller's half is DC 0's: a P-CSCF of DC 3 cannot move it
	srv := httptest.NewServer(h.Handler("/media/v1"))
	defer srv.Close()
	if c := post(t, srv, "/dc/3/update", form("caller", "a", "10.103.0.9", "7000")); c != http.StatusConflict {
		t.Fatalf("update of DC 0's caller half from DC 3: %d, want 409", c)
	}
	forged := caller
	forged.DC, forged.Half = 3, Half{DC: 3, IP: 9, Port: 7000}
	if err := h.Handle(ctx, forged); !errors.Is(err, ErrRefused) || err.Error() != `dc: the caller's half of call "a" is in datacenter 0, not 3` {
		t.Fatalf("update from another DC: %v", err)
	}
	if len(f.opened) != 1 || h.Retiring() != 0 {
		t.Fatalf("refused updates changed the call: opened %v, retiring %d", f.opened, h.Retiring())
	}
	old := h.Open()["a"]
	f.fail = errors.New("ovs-ofctl: timed out")
	caller.Half.Port = 6010
	if err := h.Handle(ctx, caller); err == nil {
		t.Fatal("a failed install answered success")
	}
	if h.Open()["a"] != old || h.Retiring() != 0 {
		t.Fatalf("a failed update changed the call: open %+v, retiring %d", h.Open()["a"], h.Retiring())
	}
	f.fail = nil
	if err := h.Handle(ctx, caller); err != nil || h.Open()["a"].CallerSendPort != 6010 || h.Retiring() != 1 {
		t.Fatalf("repeated update: %v, open %+v, retiring %d", err, h.Open()["a"], h.Retiring())
	}
	h.Drain()
	clk.Advance(time.Minute)
	h.Wait()
	if len(f.closed) != 0 || h.Retiring() != 0 {
		t.Fatalf("after Drain: closed %v, retiring %d", f.closed, h.Retiring())
	}
	if err := h.Handle(ctx, caller); !errors.Is(err, ErrNotReady) {
		t.Fatalf("update after Drain: %v", err)
	}
}

// openSlowUpdate opens call "a" (caller 0:5:6000, callee 2:7:6002) on a
// blockingProg and starts an update of its caller to IP 9, whose install
// blocks until f.release closes; the update's answer comes on the channel.
func openSlowUpdate(t *testing.T) (*Hook, *blockingProg, *clock.Virtual, routing.Call, <-chan error) {
	t.Helper()
	clk := clock.NewVirtual(time.Unix(0, 0))
	h, err := New(Config{DCs: 4, EntryIP: entry, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	f := &blockingProg{slow: 9, entered: make(chan struct{}, 1), release: make(chan struct{})}
	h.SetProgrammer(f)
	callee, caller := starts("a", 5)
	for _, r := range []Request{callee, caller} {
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	old := h.Open()["a"]
	ch := handleAsync(h, Request{Op: "update", DC: 0, Role: Caller, Call: "a", Half: Half{DC: 0, IP: 9, Port: 6000}})
	<-f.entered // the update's install runs and blocks: the call is busy
	return h, f, clk, old, ch
}

// waitsForBusy: the channel receives when a post starts waiting for its
// call's rule update.
func waitsForBusy(h *Hook) <-chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.busyWaits = func(Request) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ch
}

// Drain while an update's install runs: Drain waits for it, and the
// replaced rules get no retire (no timer after Drain, Retiring 0).
func TestDrainDuringAnUpdate(t *testing.T) {
	h, f, _, _, ch := openSlowUpdate(t)
	draining := make(chan struct{})
	h.mu.Lock()
	h.drainWaits = func(int) { close(draining) }
	h.mu.Unlock()
	drained := make(chan struct{})
	go func() { h.Drain(); close(drained) }()
	<-draining // Drain has detached the plane and waits for the install
	close(f.release)
	if err := waitErr(t, "the update", ch); err != nil {
		t.Fatalf("the update: %v", err)
	}
	<-drained
	if n := h.Retiring(); n != 0 {
		t.Fatalf("after Drain during an update: %d retires due, want 0", n)
	}
}

// An end posted while the call's update installs waits for it, then closes
// the new call at once; the replaced one goes on its timer: every call
// opened is closed once.
func TestEndDuringAnUpdate(t *testing.T) {
	h, f, clk, old, ch := openSlowUpdate(t)
	waiting := waitsForBusy(h)
	end := handleAsync(h, Request{Op: "end", DC: 0, Role: Caller, Call: "a"})
	<-waiting // the end waits for the update's install
	close(f.release)
	if err := waitErr(t, "the update", ch); err != nil {
		t.Fatalf("the update: %v", err)
	}
	if err := waitErr(t, "the end", end); err != nil {
		t.Fatalf("the end: %v", err)
	}
	h.Wait()
	n := old
	n.CallerIP = 9
	if len(h.Open()) != 0 || len(f.closed) != 1 || f.closed[0] != n {
		t.Fatalf("end after the update: open %v, closed %+v, want the new call %+v", h.Open(), f.closed, n)
	}
	clk.Advance(4 * time.Second)
	h.Wait()
	if len(f.closed) != 2 || f.closed[1] != old || h.Retiring() != 0 {
		t.Fatalf("the replaced call: closed %+v, want %+v second", f.closed, old)
	}
}

// Two updates of one call racing: the second waits for the first's
// install and replaces the first's call (not the original): the call ends
// with the second's media, both replaced calls retired.
func TestTwoUpdatesRacing(t *testing.T) {
	h, f, clk, old, ch := openSlowUpdate(t)
	waiting := waitsForBusy(h)
	second := handleAsync(h, Request{Op: "update", DC: 2, Role: Callee, Call: "a", Half: Half{DC: 2, IP: 8, Port: 7000}})
	<-waiting // the second waits for the first's install
	close(f.release)
	for what, c := range map[string]<-chan error{"the first update": ch, "the second update": second} {
		if err := waitErr(t, what, c); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	first := old
	first.CallerIP = 9
	want := first
	want.CalleeIP, want.CalleeSendPort, want.CalleeRecvPort = 8, 7000, 7000
	if got := h.Open()["a"]; got != want || h.Retiring() != 2 {
		t.Fatalf("after two updates open %+v, retiring %d; want %+v, 2", got, h.Retiring(), want)
	}
	clk.Advance(4 * time.Second)
	h.Wait()
	if opened, closed := f.counts(); opened != 3 || closed != 2 || !slices.Contains(f.closed, old) || !slices.Contains(f.closed, first) {
		t.Fatalf("opened %d, closed %+v; want the original and the first update's call closed", opened, f.closed)
	}
}

// A call the S-CSCF forked (session 17, revSO MED-1), as the P-CSCF
// template posts it: fork a's reliable 183 (its P-CSCF in DC 2) and the
// caller's /start open the call with a's media; fork b answers 200 with
// other media behind the same P-CSCF (one dialog there): /update of the
// callee's half, which the call then has; fork a's cancel posts no /end
// (a failed dialog posts the caller's only), so the call stays open with
// b's media. A fork answered behind another datacenter's P-CSCF posts a
// /start of an open call: it changes nothing (a /start never replaces a
// half: a new INVITE reusing a known Call-ID must not take a side over).
func TestForkedCallKeepsTheAnsweredForksMedia(t *testing.T) {
	h, f, _ := newHook(t)
	srv := httptest.NewServer(h.Handler("/media/v1"))
	defer srv.Close()
	post(t, srv, "/dc/2/start", form("callee", "fork@x", "10.102.0.7", "40530"))
	post(t, srv, "/dc/0/start", form("caller", "fork@x", "10.100.0.5", "6000"))
	if c := post(t, srv, "/dc/2/update", form("callee", "fork@x", "10.102.0.8", "40531")); c != http.StatusNoContent {
		t.Fatalf("fork b's update: %d", c)
	}
	if c := post(t, srv, "/dc/1/start", form("callee", "fork@x", "10.101.0.9", "40532")); c != http.StatusNoContent {
		t.Fatalf("another DC's fork's start: %d", c)
	}
	got := h.Open()["fork@x"]
	if got.CalleeDC != 2 || got.CalleeIP != 0x0a660008 || got.CalleeSendPort != 40531 || len(f.opened) != 2 {
		t.Fatalf("open %+v (opened %d), want fork b's media 10.102.0.8:40531 in DC 2", got, len(f.opened))
	}
}
