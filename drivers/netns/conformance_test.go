package netns

import (
	"context"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/driverstest"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
)

// The drivers.Driver conformance suite on real namespaces and a real bridge
// per datacenter.
func TestConformance(t *testing.T) {
	driverstest.Run(t, func(t *testing.T) driverstest.Env {
		ctx := context.Background()
		d := ovstest.Start(t)
		brs := map[string]string{"dc0": d.Prefix() + "d0", "dc1": d.Prefix() + "d1"}
		for k, dc := range []string{"dc0", "dc1"} {
			if err := d.EnsureBridge(ctx, brs[dc], k); err != nil {
				t.Fatal(err)
			}
		}
		drv, err := NewDriver(DriverConfig{Daemon: d, Bridges: brs, Forwarder: netnstest.Forwarder(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = drv.Close(context.Background()) })
		return driverstest.Env{
			Driver:  drv,
			Await:   driverstest.PollAwait(30 * time.Second),
			Spec:    func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "dc0", VNF: "ids"} },
			OtherDC: "dc1",
		}
	})
}
