package transport

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

type nopIntake struct{}

func (nopIntake) ReportWorkload(protocol.WorkloadReport) error { return nil }

// a DP report of one entry DC to 8 exits
func benchReport(i int) protocol.WorkloadReport {
	r := protocol.WorkloadReport{DC: "dc0", At: t0.Add(time.Duration(i) * time.Millisecond), Kind: "dp"}
	for x := range 8 {
		r.Pairs = append(r.Pairs, protocol.PairLoad{Entry: "dc0", Exit: "dc" + string(rune('0'+x)), Rate: 1234.5})
	}
	return r
}

// One report posted and accepted over loopback HTTP (keep-alive): the
// latency a report adds on its way to the leader.
func BenchmarkWorkloadPost(b *testing.B) {
	h, _ := NewWorkloadHandler(nopIntake{}, wtoken)
	srv := httptest.NewServer(h)
	defer srv.Close()
	tg, _ := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := tg.SendReport(ctx, benchReport(i)); err != nil {
			b.Fatal(err)
		}
	}
}

type chanIntake chan struct{}

func (c chanIntake) ReportWorkload(protocol.WorkloadReport) error { c <- struct{}{}; return nil }

// 100 reports queued at once and delivered in order by the Reporter to a
// loopback handler: the time per op is for the 100.
func BenchmarkReporterHTTP100(b *testing.B) {
	got := make(chanIntake, 100)
	h, _ := NewWorkloadHandler(got, wtoken)
	srv := httptest.NewServer(h)
	defer srv.Close()
	tg, _ := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
	r, _ := NewReporter(ReporterConfig{Targets: []ReportTarget{tg}})
	defer r.Close()
	n := 0
	for b.Loop() {
		for range 100 {
			n++
			_ = r.ReportWorkload(benchReport(n))
		}
		for range 100 {
			<-got
		}
	}
}

func BenchmarkParseWorkloadReport(b *testing.B) {
	body := string(mustJSON(b, benchReport(1)))
	for b.Loop() {
		if _, err := ParseWorkloadReport(strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func mustJSON(b *testing.B, v any) []byte { return []byte(body(b, v)) }
