package sim_test

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/driverstest"
	"github.com/ims-orch/ims-orch/drivers/sim"
)

func TestConformance(t *testing.T) {
	driverstest.Run(t, func(t *testing.T) driverstest.Env {
		clk := clock.NewVirtual(time.Unix(0, 0))
		c, err := sim.New(clk, sim.Options{DCs: []string{"tokyo", "london"}, BootDelay: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return driverstest.Env{Driver: c, OtherDC: "london",
			Await: driverstest.VirtualAwait(clk),
			Spec:  func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "tokyo", VNF: "firewall"} }}
	})
}
