package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/clock"
)

func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// GET /api/v1/state of the running sim deployment from 200 concurrent
// clients on loopback (raw HTTP, body read and discarded, so that the
// process's CPU goes to the server rather than to client-side decoding),
// closed loop (each client sends its next request as
// soon as the last is answered, so latency ≈ 200 × service time); reports
// the p50 and p99 latency, the body size on the wire and the connections
// opened while timing (0: every request rode a kept-alive connection).
// Go's transport asks for gzip; the server answers loopback peers with the
// identity body (see api.writeState).
func BenchmarkGetState200Clients(b *testing.B) { benchState(b, 0) }

// The same with every client pacing itself to 10 requests/s (2000
// requests/s in all), as dashboards and CLIs polling the state would.
func BenchmarkGetState200ClientsPaced(b *testing.B) { benchState(b, 100*time.Millisecond) }

// startBenchDaemon runs the embedded default deployment on loopback at the
// ramp's peak (many instances); edit may change the configuration.
func startBenchDaemon(b *testing.B, edit func(*Config)) *Daemon {
	cfg := DefaultConfig()
	if edit != nil {
		edit(cfg)
		if err := cfg.Normalize(); err != nil {
			b.Fatal(err)
		}
	}
	clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	d, err := New(cfg, Options{Clock: clk, Logger: discard(), Listener: listen(b)})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	})
	clk.Advance(50 * time.Second) // the ramp's peak: many instances
	return d
}

func benchState(b *testing.B, every time.Duration) {
	d := startBenchDaemon(b, nil)
	const clients = 200
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	c, err := client.New(d.URL(), client.WithHTTPClient(hc), client.WithTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	st, err := c.State(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("state holds %d instances, %d paths", len(st.Instances), len(st.Paths))
	url := d.URL() + "/api/v1/state"
	var newConns, wireBytes atomic.Int64
	trace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				newConns.Add(1)
			}
		},
	})
	var wg sync.WaitGroup
	for range clients { // open the 200 connections before timing
		wg.Go(func() {
			if resp, err := hc.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	lat := make([]time.Duration, b.N)
	next := make(chan int, b.N)
	for i := range b.N {
		next <- i
	}
	close(next)
	b.ResetTimer()
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick <-chan time.Time
			if every > 0 {
				// spread the clients' phases over the period (no synchronized bursts)
				time.Sleep(time.Duration(k) * every / clients)
				tk := time.NewTicker(every)
				defer tk.Stop()
				tick = tk.C
			}
			for i := range next {
				if tick != nil {
					<-tick
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(trace, http.MethodGet, url, nil)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if i == 0 {
					wireBytes.Store(resp.ContentLength) // -1 if the transport had decoded gzip
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("GET state: %d %v", resp.StatusCode, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(newConns.Load()), "new-conns")
	b.ReportMetric(float64(wireBytes.Load()), "body-bytes")
}

// PUT of the policy in force on the leader of a 3-node raft cluster on
// loopback (raft TCP, raft-wal on disk): each write changes the delay bound,
// so it is a raft commit. Reports the p50 and p99 latency.
func BenchmarkPolicyWriteRaft3(b *testing.B) {
	ds := startCluster(b)
	leader, _ := leaderOf(ds)
	c, err := client.New(leader.URL(), client.WithTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.Policy(ctx, PolicyName)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		p.DelayBoundMs = float64(100 + i%1000)
		if i%1000 == 0 && i > 0 {
			p.DelayBoundMs += 0.5
		}
		t0 := time.Now()
		if _, err := c.PutPolicy(ctx, p); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkGetState200RawClients is the closed loop of
// BenchmarkGetState200Clients with a lean load generator in the manner of
// wrk: each of the 200 clients writes a prepared request on its kept-alive
// connection and reads the answer with a minimal HTTP/1.1 parser (status
// line, Content-Length, body discarded), so that the two shared cores go to
// the server rather than to Go's HTTP client. Every request carries a read
// token: the server authenticates each one (SHA-256 + constant-time
// compare against the token file).
func BenchmarkGetState200RawClients(b *testing.B) { benchRaw(b, false) }

// BenchmarkGetState200RawClientsConditional: the same 200 closed-loop
// clients poll the way a monitoring client does, with the ETag of the last
// answer in If-None-Match: unchanged state is a 304 without a body.
func BenchmarkGetState200RawClientsConditional(b *testing.B) { benchRaw(b, true) }

func benchRaw(b *testing.B, conditional bool) {
	const clients = 200
	token, sum, err := api.GenerateToken()
	if err != nil {
		b.Fatal(err)
	}
	tokens := filepath.Join(b.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {name: bench, scope: read, sha256: "+sum+"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	d := startBenchDaemon(b, func(c *Config) { c.API.TokensFile, c.API.AllowUnauthenticated = tokens, false })
	host := strings.TrimPrefix(d.URL(), "http://")
	req := []byte("GET /api/v1/state HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + token + "\r\n\r\n")
	conns := make([]*rawConn, clients)
	for i := range conns {
		c, err := dialRaw(host)
		if err != nil {
			b.Fatal(err)
		}
		defer c.conn.Close()
		if _, err := c.get(req); err != nil { // warm the connection
			b.Fatal(err)
		}
		conns[i] = c
	}
	n, _ := conns[0].get(req)
	if conditional {
		req = []byte("GET /api/v1/state HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + token +
			"\r\nIf-None-Match: " + conns[0].etag + "\r\n\r\n")
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, c := range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := c.get(req); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n), "body-bytes")
}

// rawConn is one kept-alive HTTP/1.1 connection of the lean load generator.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
	etag string // of the last 200 answer
}

func dialRaw(host string) (*rawConn, error) {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &rawConn{conn: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// get sends req and reads one 200 answer with a Content-Length (or a 304
// without a body), returning the body length.
func (c *rawConn) get(req []byte) (int, error) {
	if _, err := c.conn.Write(req); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	notModified := bytes.HasPrefix(line, []byte("HTTP/1.1 304 "))
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) && !notModified {
		return 0, fmt.Errorf("status line %q", line)
	}
	length := -1
	if notModified {
		length = 0
	}
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && !notModified && strings.EqualFold(string(k), "ETag") {
			c.etag = string(bytes.TrimSpace(v))
		}
		if ok && !notModified && strings.EqualFold(string(k), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, fmt.Errorf("Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("no Content-Length")
	}
	_, err = c.br.Discard(length)
	return length, err
}
