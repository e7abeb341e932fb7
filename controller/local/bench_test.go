package local

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

func benchController(b *testing.B, n int) (*Controller, *clock.Virtual, []string) {
	b.Helper()
	clk := clock.NewVirtual(t0)
	drv, _ := fake.New(clk, fake.Options{})
	cfg := fwConfig(n)
	cfg.Reactive = true
	cfg.StatsTimeout = -1
	c, err := New(cfg, drv, clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	clk.Advance(0)
	var ids []string
	for _, in := range c.Instances() {
		ids = append(ids, in.ID)
	}
	return c, clk, ids
}

// BenchmarkReportStats is the cost of one statistics report (the intake runs
// once per instance per second).
func BenchmarkReportStats(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			c, _, ids := benchController(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				s := Stats{At: t0.Add(time.Duration(i) * time.Second), CPU: float64(i % 100), Mem: 40, PktRate: 100}
				if err := c.ReportStats(ids[i%len(ids)], s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRound is one proactive round (acquire, broadcast, enter) that
// moves a VNF between n and n/2 working instances (buffer and reuse).
func BenchmarkRound(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			c, clk, _ := benchController(b, 0)
			var r uint64
			run := func(target int) {
				c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepAcquire, Seq: 1}})
				c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepBroadcast, Seq: 2}, Decision: decision(r, map[string]int{"firewall": target})})
				c.Handle(protocol.Request{Header: protocol.Header{Round: r, Step: protocol.StepEnter, Seq: 3}})
				r++
			}
			run(n)
			clk.Advance(0)
			b.ReportAllocs()
			for b.Loop() {
				run(n / 2)
				run(n)
			}
		})
	}
}

// BenchmarkTick is the 1 s housekeeping tick with n instances.
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			_, clk, _ := benchController(b, n)
			b.ReportAllocs()
			for b.Loop() {
				clk.Advance(time.Second)
			}
		})
	}
}
