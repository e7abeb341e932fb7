package delayprobe

import (
	"fmt"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

type discard struct{}

func (discard) ReportWorkload(protocol.WorkloadReport) error { return nil }

// One probe period of 50 DCs (50 × 49 probes, 50 delay reports) over the
// simulated network in virtual time: the probers' own CPU cost.
func BenchmarkProbePeriod50DCs(b *testing.B) {
	const n = 50
	clk := clock.NewVirtual(time.Unix(0, 0))
	dcs := make([]string, n)
	delay := make([][]float64, n)
	for i := range dcs {
		dcs[i] = fmt.Sprintf("dc%02d", i)
		delay[i] = make([]float64, n)
		for j := range delay[i] {
			delay[i][j] = float64(10 + (i*7+j*13)%90)
		}
	}
	net, err := NewNet(clk, dcs, delay)
	if err != nil {
		b.Fatal(err)
	}
	for _, dc := range dcs {
		p, err := New(Config{DC: dc, Peers: dcs, Period: 5 * time.Second, Clock: clk, Transport: net, Report: discard{}})
		if err != nil {
			b.Fatal(err)
		}
		p.Start()
	}
	clk.Advance(5 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clk.Advance(5 * time.Second)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/DC/period")
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func (c countConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.Add(int64(k))
	return k, err
}

type countListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countConn{c, l.n}, nil
}

// One HTTP probe over loopback on a kept-alive connection: CPU of both
// ends per probe and the bytes on the wire (request + response, TCP
// payload) per probe.
func BenchmarkHTTPProbe(b *testing.B) {
	var bytes atomic.Int64
	srv := httptest.NewUnstartedServer(Handler())
	srv.Listener = countListener{srv.Listener, &bytes}
	srv.Start()
	defer srv.Close()
	tr := &HTTPTransport{Client: srv.Client(), URL: func(dc string) (string, bool) { return srv.URL + "/dc/" + dc + Path, true }}
	done := make(chan error, 1)
	probe := func() {
		tr.Probe("a", "b", func(_ time.Duration, err error) { done <- err })
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	probe()
	bytes.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		probe()
	}
	b.ReportMetric(float64(bytes.Load())/float64(b.N), "wire-B/probe")
}
