package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

const benchClients = 200

// stateLoad is one loopback server and 200 keep-alive clients doing GET
// /api/v1/state with a read token (full auth path).
type stateLoad struct {
	url string
	hc  *http.Client
}

func newStateLoad(b *testing.B, backend api.Backend) *stateLoad {
	ts := httptest.NewServer(newServer(b, backend, nil)) // 127.0.0.1:0
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}
	b.Cleanup(tr.CloseIdleConnections)
	l := &stateLoad{url: ts.URL + "/api/v1/state", hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	var wg sync.WaitGroup // open the 200 connections before timing
	for range benchClients {
		wg.Go(func() { _, _ = l.get() })
	}
	wg.Wait()
	return l
}

func (l *stateLoad) get() (int64, error) {
	req, _ := http.NewRequest("GET", l.url, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return n, err
}

func report(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
}

// stateBackends are the two server paths: a Backend with StateVersion (the
// answer is encoded once per state change) and one without (encoded per
// request).
func stateBackends(perDC int) []struct {
	name string
	b    api.Backend
} {
	cached := apitest.Paper(now)
	cached.SetState(apitest.PaperState(epoch, perDC))
	plain := apitest.Paper(now)
	plain.SetState(apitest.PaperState(epoch, perDC))
	n := len(apitest.PaperState(epoch, perDC).Instances)
	return []struct {
		name string
		b    api.Backend
	}{
		{fmt.Sprintf("instances=%d/versioned", n), cached},
		{fmt.Sprintf("instances=%d/unversioned", n), unversioned{plain}},
	}
}

// BenchmarkStatePaced200Clients is the polling load an operator sees: 200
// concurrent keep-alive clients (dashboards, CLIs, MANO pollers), each
// sending GET /api/v1/state every 100 ms (2000 requests/s offered in all),
// b.N requests in all. Latency runs from the scheduled send time, so a
// request delayed behind a slow one counts its wait (no coordinated
// omission). Target: p99 < 5 ms.
//
//	go test ./api -run '^$' -bench StatePaced200Clients -benchtime 20000x
func BenchmarkStatePaced200Clients(b *testing.B) {
	const every = 100 * time.Millisecond
	for _, perDC := range []int{2, 10} {
		for _, sb := range stateBackends(perDC) {
			b.Run(sb.name, func(b *testing.B) {
				l := newStateLoad(b, sb.b)
				per := (b.N + benchClients - 1) / benchClients
				lat := make([]time.Duration, per*benchClients)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for c := range benchClients {
					wg.Go(func() {
						next := start.Add(time.Duration(c) * every / benchClients) // stagger the clients
						for k := range per {
							if d := time.Until(next); d > 0 {
								time.Sleep(d) // pacing of the load generator
							}
							if _, err := l.get(); err != nil {
								b.Errorf("GET state: %v", err)
								return
							}
							lat[c*per+k] = time.Since(next)
							next = next.Add(every)
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				report(b, lat, time.Since(start))
			})
		}
	}
}

// BenchmarkStateGet200Clients is the saturation test: 200 clients in a
// closed loop (each sends its next request as soon as the previous answer
// arrives), b.N requests in all. Latency here is queueing: by Little's law
// p50 ≈ 200 / throughput.
//
//	go test ./api -run '^$' -bench StateGet200Clients -benchtime 20000x
func BenchmarkStateGet200Clients(b *testing.B) {
	for _, sb := range stateBackends(2) {
		b.Run(sb.name, func(b *testing.B) {
			l := newStateLoad(b, sb.b)
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range benchClients {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := l.get(); err != nil {
							b.Errorf("GET state: %v", err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			report(b, lat, time.Since(start))
		})
	}
}

// BenchmarkStateHandler is the server's own cost of one GET /api/v1/state
// (auth, routing, backend, encoding), in process, no network: the part of
// the loopback latency this package controls.
//
//	go test ./api -run '^$' -bench StateHandler -benchmem
func BenchmarkStateHandler(b *testing.B) {
	for _, sb := range stateBackends(2) {
		b.Run(sb.name, func(b *testing.B) {
			s := newServer(b, sb.b, nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/api/v1/state", nil)
				req.Header.Set("Authorization", "Bearer "+readToken)
				for pb.Next() {
					w := httptest.NewRecorder()
					s.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header map
// (cleared per request), so that BenchmarkStateServe counts the server's
// own allocations, not a recorder's copy of the body.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkStateServe is the server's own cost of one GET /api/v1/state
// from the cache (auth with a read token, routing, StateVersion, headers,
// body handed to the writer), identity and gzip, in process.
//
//	go test ./api -run '^$' -bench StateServe -benchmem
func BenchmarkStateServe(b *testing.B) {
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			backend := apitest.Paper(now)
			s := newServer(b, backend, nil)
			req := httptest.NewRequest("GET", "/api/v1/state", nil)
			req.Header.Set("Authorization", "Bearer "+readToken)
			req.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clear(w.h)
				w.n = 0
				s.ServeHTTP(w, req)
				if w.code != 200 || w.n == 0 {
					b.Fatalf("status %d, %d bytes", w.code, w.n)
				}
			}
			b.ReportMetric(float64(w.n), "body-bytes")
		})
	}
}
