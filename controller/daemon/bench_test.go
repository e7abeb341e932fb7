package daemon

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/controller/clock"
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
// the p50 and p99 latency.
func BenchmarkGetState200Clients(b *testing.B) { benchState(b, 0) }

// The same with every client pacing itself to 10 requests/s (2000
// requests/s in all), as dashboards and CLIs polling the state would.
func BenchmarkGetState200ClientsPaced(b *testing.B) { benchState(b, 100*time.Millisecond) }

func benchState(b *testing.B, every time.Duration) {
	cfg := DefaultConfig()
	clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	d, err := New(cfg, Options{Clock: clk, Logger: discard(), Listener: listen(b)})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	}()
	clk.Advance(50 * time.Second) // the ramp's peak: many instances
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
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
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
				resp, err := hc.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
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
