package local

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// BenchmarkFingerprint is the cost of one Fingerprint (the daemon's
// StateVersion calls it per local controller on every state poll) with
// vnfs VNFs of per instances each. Its crash-loop part scanned every
// instance once per VNF (VNFs × instances); it now makes one pass
// (crashesLocked).
func BenchmarkFingerprint(b *testing.B) {
	for _, vnfs := range []int{1, 5, 20} {
		for _, per := range []int{10, 100} {
			b.Run(fmt.Sprintf("vnfs=%d/instances=%d", vnfs, vnfs*per), func(b *testing.B) {
				clk := clock.NewVirtual(t0)
				drv, _ := fake.New(clk, fake.Options{})
				cfg := Config{DC: "dc0", StatsTimeout: -1}
				th, _ := vnf.DefaultThresholds("firewall")
				for v := range vnfs {
					cfg.VNFs = append(cfg.VNFs, VNFConfig{Name: fmt.Sprintf("vnf%d", v), Capacity: 35000, Image: "fw", Flavor: "m1", Min: per, Thresholds: th})
				}
				c, err := New(cfg, drv, clk, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Stop)
				for i := 0; i < 100 && len(c.Instances()) < vnfs*per; i++ {
					clk.Advance(time.Second) // launches are paced
				}
				if n := len(c.Instances()); n != vnfs*per {
					b.Fatalf("%d instances, want %d", n, vnfs*per)
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = c.Fingerprint()
				}
			})
		}
	}
}
