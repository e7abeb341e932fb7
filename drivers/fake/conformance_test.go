package fake_test

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/driverstest"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

func TestConformance(t *testing.T) {
	driverstest.Run(t, func(t *testing.T) driverstest.Env {
		clk := clock.NewVirtual(time.Unix(0, 0))
		d, err := fake.New(clk, fake.Options{BootDelay: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return driverstest.Env{Driver: d, Await: driverstest.VirtualAwait(clk), OtherDC: "dc1",
			Spec: func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "dc0", VNF: "firewall"} }}
	})
}
