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

// closeSignal is a listener that reports its Close (Stop has begun).
type closeSignal struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignal) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// serveBlocked serves a hook whose install of the call from caller IP 1
// blocks until release, posts that call's two halves (the callee's, then
// the caller's, which waits for the install) and returns once the install
// runs; the caller's answer (status, or the transport error) arrives on
// answer.
func serveBlocked(t *testing.T) (s *Server, ln *closeSignal, f *blockingProg, answer <-chan string) {
	t.Helper()
	h, err := New(Config{DCs: 4, EntryIP: entry, Clock: clock.NewVirtual(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	f = &blockingProg{slow: 1, entered: make(chan struct{}, 1), release: make(chan struct{})}
	h.SetProgrammer(f)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = &closeSignal{Listener: raw, closed: make(chan struct{})}
	s = Serve(ln, h, "/media/v1")
	base := "http://" + raw.Addr().String() + "/media/v1"
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
	return s, ln, f, ch
}

// Stop waits for a /start whose rules are being installed: the post is
// answered (204) and its call is open when Stop returns (http.Server.Close
// would cut the post and return while the install still ran, racing the
// data plane's removal that follows Stop in the daemon).
func TestStopWaitsForARunningStart(t *testing.T) {
	s, ln, f, answer := serveBlocked(t)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	<-ln.closed // Stop has begun: no new post is taken
	close(f.release)
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

// A post still running when Stop's bound expires makes Stop fail, naming
// why (a Close would report nothing and return while the install runs).
func TestStopBoundedByItsContext(t *testing.T) {
	s, _, f, answer := serveBlocked(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the bound has expired: the running post is cut
	err := s.Stop(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "posts still running") {
		t.Fatalf("Stop with an expired bound and a post running: %v, want context.Canceled naming the running posts", err)
	}
	close(f.release)
	if st := <-answer; strings.HasPrefix(st, "204") {
		t.Fatalf("the cut post was answered %q", st)
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
