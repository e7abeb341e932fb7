package mediahook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// serveBlocked serves a hook whose install of the call from caller IP 1
// blocks until release, posts that call's two halves (the callee's, then
// the caller's, which waits for the install) and returns once the install
// runs; the caller's answer (status, or the transport error) arrives on
// answer.
func serveBlocked(t *testing.T) (s *Server, f *blockingProg, answer <-chan string) {
	t.Helper()
	h, err := New(Config{DCs: 4, EntryIP: entry, Clock: clock.NewVirtual(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	f = &blockingProg{slow: 1, entered: make(chan struct{}, 1), release: make(chan struct{})}
	h.SetProgrammer(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = Serve(ln, h, "/media/v1")
	base := "http://" + ln.Addr().String() + "/media/v1"
	postForm := func(path string, v url.Values) (string, error) {
		resp, err := http.PostForm(base+path, v)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.Status, nil
	}
	call := "63616c6c" // "call"
	if st, err := postForm("/dc/2/start", url.Values{"role": {"callee"}, "call": {call}, "ip": {"10.102.0.7"}, "port": {"6002"}}); err != nil || !strings.HasPrefix(st, "204") {
		t.Fatalf("callee's start: %s %v", st, err)
	}
	ch := make(chan string, 1)
	go func() {
		st, err := postForm("/dc/0/start", url.Values{"role": {"caller"}, "call": {call}, "ip": {"0.0.0.1"}, "port": {"6000"}})
		if err != nil {
			st = "error: " + err.Error()
		}
		ch <- st
	}()
	<-f.entered // the caller's post is in OpenCall
	return s, f, ch
}

// doneSignal is a context with a deadline (Stop uses it as it is) that
// reports the first call of Done: http.Server.Shutdown calls it only while
// it waits for active connections, after closing the listener;
// http.Server.Close never does.
type doneSignal struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func (c *doneSignal) Done() <-chan struct{} {
	c.once.Do(func() { close(c.called) })
	return c.Context.Done()
}

// Stop waits for a /start whose rules are being installed: the post is
// answered (204) and its call is open when Stop returns. The install is
// released only once Stop waits for the running posts (its context's Done
// is called); http.Server.Close would cut the post instead (its answer
// comes first, an error) and never wait — the test fails every time then.
func TestStopWaitsForARunningStart(t *testing.T) {
	s, f, answer := serveBlocked(t)
	base, cancel := context.WithTimeout(context.Background(), time.Hour) // a deadline: Stop adds none
	defer cancel()
	ctx := &doneSignal{Context: base, called: make(chan struct{})}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	select {
	case <-ctx.called: // Stop waits for the running post
		close(f.release)
	case st := <-answer:
		close(f.release)
		t.Fatalf("the caller's post was answered %q while its install still ran (Stop cut it)", st)
	case err := <-stopped:
		close(f.release)
		t.Fatalf("Stop returned (%v) while a post's install ran", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := <-answer; !strings.HasPrefix(st, "204") {
		t.Fatalf("the caller's post during Stop got %q, want 204 (its rules installed)", st)
	}
	if opened, _ := f.counts(); opened != 1 {
		t.Fatalf("%d calls opened, want 1", opened)
	}
}

// A post still running when Stop's bound expires is cut and makes Stop
// fail, naming why; its install goes on, and Stop returns only after it
// (Hook.Drain): the daemon removes the data plane right after Stop. The
// install is released only when Drain waits for it; without the installs'
// tracking Stop returns with the install still blocked and the test fails.
func TestStopOutlivedByAnInstallWaitsForIt(t *testing.T) {
	s, f, answer := serveBlocked(t)
	drainSaw := -1
	s.h.mu.Lock()
	s.h.drainWaits = func(n int) { drainSaw = n; close(f.release) }
	s.h.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the bound has expired: the running post is cut
	err := s.Stop(ctx)
	opened, _ := f.counts()
	if drainSaw < 0 {
		close(f.release) // let the blocked install end
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "posts still running") {
		t.Fatalf("Stop with an expired bound and a post running: %v, want context.Canceled naming the running posts", err)
	}
	if drainSaw != 1 || opened != 1 {
		t.Fatalf("Stop returned with %d calls opened (Drain waited for %d installs), want the cut post's install done (1, 1)", opened, drainSaw)
	}
	if st := <-answer; strings.HasPrefix(st, "204") {
		t.Fatalf("the cut post was answered %q", st)
	}
	// the Programmer is detached: a late post is refused
	callee, _ := starts("late", 9)
	if err := s.h.Handle(context.Background(), callee); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a post after Stop: %v, want ErrNotReady", err)
	}
}

// Without a deadline Stop bounds itself by the Programmer timeout plus a
// second.
func TestStopTimeout(t *testing.T) {
	h, err := New(Config{DCs: 1, EntryIP: entry, Clock: clock.NewVirtual(time.Unix(0, 0)), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, h, "/media/v1")
	if got := s.StopTimeout(); got != 4*time.Second {
		t.Errorf("StopTimeout = %v, want 4s", got)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
