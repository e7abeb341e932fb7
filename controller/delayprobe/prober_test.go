package delayprobe

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

type reports struct {
	mu  sync.Mutex
	got []protocol.WorkloadReport
	err error
}

func (r *reports) ReportWorkload(w protocol.WorkloadReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, w)
	return r.err
}

func (r *reports) all() []protocol.WorkloadReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.WorkloadReport(nil), r.got...)
}

func TestNewValidates(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	net, _ := NewNet(clk, nil, nil)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Clock: clk, Transport: net, Report: &reports{}}, "DC"},
		{Config{DC: "a", Transport: net, Report: &reports{}}, "required"},
		{Config{DC: "a", Clock: clk, Transport: net, Report: &reports{}, Period: -1}, "Period"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	if _, err := NewNet(clk, []string{"a"}, [][]float64{{0}, {1}}); err == nil {
		t.Error("NewNet took 2 rows for 1 DC")
	}
	if _, err := NewNet(clk, []string{"a", "b"}, [][]float64{{0, -1}, {1, 0}}); err == nil || !strings.Contains(err.Error(), "a→b") {
		t.Errorf("negative delay: %v", err)
	}
}

// Each period's report carries the mean of RTT/2 of the probes that came
// back since the previous one; a link that changes shows in the next report;
// a link that fails reports nothing and is counted.
func TestProberReportsHalfRTT(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1000, 0))
	dcs := []string{"a", "b", "c"}
	net, err := NewNet(clk, dcs, [][]float64{{0, 10, 40}, {30, 0, 5}, {40, 5, 0}})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reports{}
	var errs []error
	p, err := New(Config{DC: "a", Peers: append(dcs, "a"), Period: 5 * time.Second, Clock: clk, Transport: net, Report: rep,
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	clk.Advance(5 * time.Second)
	got := rep.all()
	if len(got) != 1 || got[0].Kind != Kind || got[0].DC != "a" || len(got[0].Pairs) != 0 {
		t.Fatalf("reports %+v", got)
	}
	if d := got[0].DelaysMs; d["b"] != 20 || d["c"] != 40 || len(d) != 2 {
		t.Fatalf("delays %v, want b: (10+30)/2 = 20, c: 40", d)
	}
	_ = net.Set("a", "b", 110)
	clk.Advance(10 * time.Second) // the report at 10 s has the probes sent at 5 s, before the change
	if d := rep.all()[2].DelaysMs; d["b"] != 70 {
		t.Fatalf("after the change: %v, want b: (110+30)/2 = 70", d)
	}
	net.SetDown("c", "a", true)
	clk.Advance(5 * time.Second) // reports the probes sent at 15 s (c still up)
	clk.Advance(5 * time.Second) // the probe to c sent at 20 s timed out
	last := rep.all()[4].DelaysMs
	if _, ok := last["c"]; ok || last["b"] != 70 {
		t.Fatalf("with c down: %v, want only b", last)
	}
	sent, failed := p.Counts()
	if sent != 12 || failed != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "a → c") {
		t.Fatalf("sent %d failed %d errs %v", sent, failed, errs)
	}
	p.Stop()
	clk.Advance(time.Minute)
	if n := len(rep.all()); n != 5 {
		t.Fatalf("%d reports after Stop, want 5", n)
	}
}

// A refused report is passed to OnError and the samples are not kept for
// the next one (the intake decides; the prober is not a queue).
func TestProberReportError(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	net, _ := NewNet(clk, []string{"a", "b"}, [][]float64{{0, 1}, {1, 0}})
	rep := &reports{err: errors.New("not leader")}
	var errs []error
	p, _ := New(Config{DC: "a", Peers: []string{"b"}, Clock: clk, Transport: net, Report: rep, OnError: func(err error) { errs = append(errs, err) }})
	p.Start()
	clk.Advance(10 * time.Second)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "not leader") {
		t.Fatalf("errors %v", errs)
	}
}

// Over loopback HTTP the prober measures a real round trip to the handler.
func TestHTTPTransport(t *testing.T) {
	var mu sync.Mutex
	var auth string
	h := Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	tr := &HTTPTransport{Client: srv.Client(), Token: "tok", URL: func(dc string) (string, bool) {
		return srv.URL + "/dc/" + dc + Path, dc == "b"
	}}
	type res struct {
		rtt time.Duration
		err error
	}
	ch := make(chan res, 2)
	tr.Probe("a", "b", func(rtt time.Duration, err error) { ch <- res{rtt, err} })
	r := <-ch
	if r.err != nil || r.rtt <= 0 {
		t.Fatalf("probe: %v %v", r.rtt, r.err)
	}
	mu.Lock()
	if auth != "Bearer tok" {
		t.Fatalf("authorization %q", auth)
	}
	mu.Unlock()
	tr.Probe("a", "zz", func(rtt time.Duration, err error) { ch <- res{rtt, err} })
	if r := <-ch; r.err == nil || !strings.Contains(r.err.Error(), "zz") {
		t.Fatalf("unknown DC: %v", r.err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	bad := &HTTPTransport{URL: func(string) (string, bool) { return other.URL, true }}
	bad.Probe("a", "b", func(rtt time.Duration, err error) { ch <- res{rtt, err} })
	if r := <-ch; r.err == nil || !strings.Contains(r.err.Error(), "404") {
		t.Fatalf("a 404 counted as a probe: %v", r.err)
	}
}
