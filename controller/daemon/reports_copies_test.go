package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ims-orch/ims-orch/clock"
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
	for end := time.Now().Add(5 * time.Second); r.Stats().Sent == 0; { // polling a condition, not waiting for time
		if time.Now().After(end) {
			t.Fatal("the report was never sent")
		}
		time.Sleep(time.Millisecond)
	}
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
	if got["copies_of_closed"] != 1 || got["sent"] != 1 {
		t.Fatalf("ims_orch_workload_reports_total by outcome: %v; want copies_of_closed 1, sent 1", got)
	}
}
