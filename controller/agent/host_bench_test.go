package agent

import (
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
)

// One sample of the host agent on the fake /proc: reading and parsing
// stat, meminfo and net/dev.
func BenchmarkHostMeasure(b *testing.B) {
	clk := clock.NewVirtual(h0)
	p := newHostProc(b)
	a, _ := NewHost(HostConfig{ID: "vm", Proc: p.fs, Clock: clk})
	for b.Loop() {
		clk.Advance(time.Second)
		if _, _, err := a.Measure(); err != nil {
			b.Fatal(err)
		}
	}
}

// The same on this machine's /proc.
func BenchmarkHostMeasureRealProc(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("no /proc")
	}
	clk := clock.NewVirtual(h0)
	a, _ := NewHost(HostConfig{ID: "vm", Proc: os.DirFS("/proc"), Clock: clk})
	for b.Loop() {
		clk.Advance(time.Second)
		if _, _, err := a.Measure(); err != nil {
			b.Fatal(err)
		}
	}
}

type nopIntake struct{}

func (nopIntake) ReportStats(string, local.Stats) error { return nil }

// One sample pushed to the stats endpoint over loopback HTTP (keep-alive).
func BenchmarkPusher(b *testing.B) {
	h, _ := NewStatsHandler(map[string]Intake{"tokyo": nopIntake{}}, agentToken)
	srv := httptest.NewServer(h)
	defer srv.Close()
	p, _ := NewPusher(srv.URL, "tokyo", agentToken, srv.Client())
	at := h0
	for b.Loop() {
		at = at.Add(time.Second)
		if err := p.ReportStats("vm", Sample{At: at, CPU: 12, Mem: 40, PktRate: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}
