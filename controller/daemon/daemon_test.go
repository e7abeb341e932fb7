package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/system"
)

// simDaemon starts the embedded default on 127.0.0.1:0 with a virtual clock
// the test drives.
func simDaemon(t *testing.T, edit func(*Config)) (*Daemon, *clock.Virtual, *client.Client) {
	t.Helper()
	return simDaemonAt(t, time.Unix(1_800_000_000, 0), edit)
}

// simDaemonAt is simDaemon with the virtual clock starting at start.
func simDaemonAt(t *testing.T, start time.Time, edit func(*Config)) (*Daemon, *clock.Virtual, *client.Client) {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(cfg)
		if err := cfg.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	clk := clock.NewVirtual(start)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Clock: clk, Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	c, err := client.New(d.URL(), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return d, clk, c
}

// startDaemon builds a node from cfg (normalized) with o, lets before see
// it (nil: nothing) and starts it; the test's cleanup shuts it down.
func startDaemon(t *testing.T, cfg *Config, o Options, before func(*Daemon)) *Daemon {
	t.Helper()
	d, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(d)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

func working(st api.State, dc, vnf string) int {
	n := 0
	for _, in := range st.Instances {
		if in.DC == dc && in.VNF == vnf && (in.State == "normal" || in.State == "overload" || in.State == "booting") {
			n++
		}
	}
	return n
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// End to end: serve the embedded default on the simulated cloud, apply a
// policy, and watch the instances follow the traffic ramp up and down through
// the API and the metrics, with every decision explained.
func TestServeFollowsTrafficRamp(t *testing.T) {
	d, clk, c := simDaemon(t, nil)
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	p, err := c.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	p.DelayBoundMs = 200
	res, err := c.PutPolicy(ctx, p)
	if err != nil || res.Outcome != api.OutcomeUpdated || len(res.Changes) != 1 || res.Changes[0].Path != "delayBoundMs" {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if got := d.store.State().Policy.DelayBoundMs; got != 200 {
		t.Fatalf("committed delay bound %g, want 200", got)
	}
	if res, err = c.PutPolicy(ctx, p); err != nil || res.Outcome != api.OutcomeUnchanged {
		t.Fatalf("second apply not idempotent: %+v %v", res, err)
	}

	peak := 0
	for s := 0; s < 120; s++ { // the ramp peaks 40-60 s in
		clk.Advance(time.Second)
		if s%5 != 4 {
			continue
		}
		st, err := c.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, working(st, "tokyo", "ids"))
	}
	if peak < 3 {
		t.Fatalf("tokyo IDS peaked at %d working instances, want ≥ 3 (the ramp needs ~4)", peak)
	}
	text := scrape(t, d.URL())
	if v := metricValue(t, text, `ims_orch_instances_created_total{dc="tokyo",reason="proactive",vnf="ids"}`); v < 1 {
		t.Fatalf("no proactive IDS creation in the metrics:\n%s", grep(text, "created_total"))
	}
	if v := metricValue(t, text, `ims_orch_rounds_total`); v < 8 {
		t.Fatalf("rounds_total %g after 120 s of 10 s intervals", v)
	}
	if !strings.Contains(text, `ims_orch_workload_actual{entry="tokyo",exit="tokyo",kind="dp"}`) {
		t.Fatalf("no workload series:\n%s", grep(text, "workload"))
	}
	if metricValue(t, text, `ims_orch_raft_role{role="standalone"}`) != 1 {
		t.Fatal("raft role is not standalone")
	}
	decs, err := c.Decisions(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out, proactive := 0, 0
	for _, dd := range decs {
		if dd.Reason == "" || dd.Kind == "" || dd.DC == "" || dd.VNF == "" {
			t.Fatalf("decision without a reason: %+v", dd)
		}
		if dd.Delta > 0 {
			out++
		}
		if dd.Kind == api.DecisionProactive {
			proactive++
		}
	}
	if out == 0 || proactive == 0 {
		t.Fatalf("%d decisions: %d scale-outs, %d proactive", len(decs), out, proactive)
	}
	// the load falls back to 1-2 calls/s: instances leave the working set
	for s := 0; s < 80; s++ {
		clk.Advance(time.Second)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w := working(st, "tokyo", "ids"); w >= peak {
		t.Fatalf("tokyo IDS still at %d working instances after the ramp fell (peak %d)", w, peak)
	}
	if len(st.Paths) == 0 || len(st.Predictions) == 0 || st.Interval < 15 {
		t.Fatalf("state: interval %d, %d paths, %d predictions", st.Interval, len(st.Paths), len(st.Predictions))
	}
	// the forecasts come from the global controller's predictor.Bank with
	// the default model (system.Defaults), which says so per pair
	for _, p := range st.Predictions {
		if p.Model != system.Defaults.Predictor {
			t.Fatalf("prediction %+v: model %q, want the default %q", p, p.Model, system.Defaults.Predictor)
		}
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Run serves /healthz, /readyz and /metrics on the real clock and returns
// when its context is cancelled (SIGINT/SIGTERM in serve), after a graceful
// shutdown that closes the listener.
func TestRunGracefulShutdown(t *testing.T) {
	ln := listen(t)
	url := "http://" + ln.Addr().String()
	d, err := New(DefaultConfig(), Options{Listener: ln, Logger: discard(), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	get := func(path string) int {
		resp, err := http.Get(url + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 10*time.Second, "readyz", func() bool { return get("/readyz") == http.StatusOK })
	if get("/healthz") != http.StatusOK || get("/metrics") != http.StatusOK {
		t.Fatal("healthz or metrics not served")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if get("/healthz") != 0 {
		t.Fatal("still serving after shutdown")
	}
}
