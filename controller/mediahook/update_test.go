package mediahook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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

// An update of a call not open is a start (the half of a session-15
// P-CSCF's call, or of a call whose start was refused); a failed install
// keeps the call as it was, its rules and no retire; Drain drops the
// retires still due (the plane goes with the hook).
func TestUpdateOfACallNotOpenAndFailures(t *testing.T) {
	h, f, clk := newHook(t)
	ctx := context.Background()
	callee := Request{Op: "update", DC: 2, Role: Callee, Call: "a", Half: Half{DC: 2, IP: 7, Port: 6002}}
	caller := Request{Op: "update", DC: 0, Role: Caller, Call: "a", Half: Half{DC: 0, IP: 5, Port: 6000}}
	for _, r := range []Request{callee, caller} {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.opened) != 1 || len(h.Open()) != 1 {
		t.Fatalf("two updates of a call not open: opened %v", f.opened)
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
