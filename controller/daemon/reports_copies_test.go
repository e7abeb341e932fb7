package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// copyOfClosed is a global node that answers every report as a copy of
// one it counted in interval 1 while it measures interval 2.
type copyOfClosed struct{}

func (copyOfClosed) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, err := copyOfClosed{}.SendReportCounted(ctx, r)
	return err
}

func (copyOfClosed) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	c, err := copyOfClosed{}.SendReportCounted(ctx, r)
	return c.Interval, c.Known, err
}

func (copyOfClosed) SendReportCounted(context.Context, protocol.WorkloadReport) (transport.Counted, error) {
	return transport.Counted{Interval: 1, Measuring: 2, Known: true, Duplicate: true}, nil
}

func (copyOfClosed) String() string { return "copy-of-closed" }

// The reporter's copies of reports a node counted in an interval closed
// since are exported as ims_orch_workload_reports_total's outcome
// copies_of_closed.
func TestReporterMetricsCountCopiesOfAClosedInterval(t *testing.T) {
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r, err := transport.NewReporter(reporterConfig([]transport.ReportTarget{copyOfClosed{}}, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), "node1", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(protocol.WorkloadReport{DC: "dc0", Kind: "dp", At: clk.Now(),
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 1}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the report sent", func() bool { return r.Stats().Sent > 0 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(reporterCollector{r})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "ims_orch_workload_reports_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if _, recounts := got["recounts"]; got["copies_of_closed"] != 1 || got["sent"] != 1 || !recounts {
		t.Fatalf("ims_orch_workload_reports_total by outcome: %v; want copies_of_closed 1, sent 1, recounts (0)", got)
	}
}

// A global node's workload handler answers a copy of a report its engine
// counted in an interval closed since with that interval and the one
// measured now ({"duplicate":true,"interval":N,"measuring":M}, M > N):
// engineIntake passes the engine's Counted on whole (revD LOW-2). One
// node runs every DC's local controller (2 s intervals); a report of
// tokyo is POSTed, then, once the log has closed its interval, again.
func TestWorkloadCopyPostNamesTheIntervalMeasured(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "protocol-token")
	const token = "test-protocol-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startNodes(t, 1, nil, func(_ int, urls []string, cfg *Config) {
		cfg.Role.Locals, cfg.Role.ProtocolTokenFile = []string{"tokyo", "hong-kong", "london", "houston"}, tokenFile
		cfg.Role.LocalEndpoints = map[string]string{"tokyo": urls[0], "hong-kong": urls[0], "london": urls[0], "houston": urls[0]}
		cfg.Role.ProbePeriod = "off"
		cfg.Policy.IntervalSeconds = 2
	})[0]
	eventually(t, 20*time.Second, "n1 to lead and be ready", func() bool {
		return d.Node().Raft.State() == raft.Leader && d.Backend().Ready(context.Background()) == nil
	})
	body, err := json.Marshal(protocol.WorkloadReport{DC: "tokyo", Kind: "dp", At: time.Now().Truncate(time.Millisecond), Reporter: "probe",
		Pairs: []protocol.PairLoad{{Entry: "tokyo", Exit: "tokyo", Rate: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Accepted, Duplicate bool
		Interval, Measuring *uint64
	}
	post := func() (a answer) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, d.URL()+transport.WorkloadPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		msg, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s %s", transport.WorkloadPath, res.Status, msg)
		}
		if err := json.Unmarshal(msg, &a); err != nil {
			t.Fatalf("answer %s: %v", msg, err)
		}
		return a
	}
	first := post()
	if !first.Accepted || first.Interval == nil || first.Measuring == nil || *first.Measuring > *first.Interval {
		t.Fatalf("the report answered %+v, want accepted with an interval and the one measured (session 15)", first)
	}
	n := *first.Interval
	eventually(t, 30*time.Second, fmt.Sprintf("interval %d closed in the log", n), func() bool {
		for _, p := range d.store.History() {
			if p.Round == n {
				return true
			}
		}
		return false
	})
	again := post()
	if !again.Duplicate || again.Interval == nil || *again.Interval != n || again.Measuring == nil || *again.Measuring <= n {
		t.Fatalf("the copy answered duplicate %v, interval %s, measuring %s; want the duplicate of interval %d, measuring a later one",
			again.Duplicate, orNone(again.Interval), orNone(again.Measuring), n)
	}
}

func orNone(p *uint64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// The engine's workload counters without a metric of their own before
// session 15 are exported: KeptOnMatchingAverages (a 12→14 rolling
// upgrade's residual) and RecountedReports, each from its own field.
func TestEngineReportMetrics(t *testing.T) {
	st := global.Stats{LateReports: 1, RefusedReporters: 2, DuplicateReports: 3, DroppedOnLostClose: 4, KeptOnMatchingAverages: 5,
		RecountedReports: 6}
	reg := prometheus.NewRegistry()
	reg.MustRegister(lateReportsCollector{func() global.Stats { return st }})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"ims_orch_workload_reports_late_total":                      1,
		"ims_orch_workload_reports_refused_reporters_total":         2,
		"ims_orch_workload_reports_duplicate_total":                 3,
		"ims_orch_workload_reports_dropped_lost_close_total":        4,
		"ims_orch_workload_intakes_kept_on_matching_averages_total": 5,
		"ims_orch_workload_reports_recounted_total":                 6,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("engine report metrics %v, want %v", got, want)
	}
}
