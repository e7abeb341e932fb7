package openstack

import (
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/driverstest"
)

// TestConformance runs the driver suite against a real Nova (two
// availability zones as dc-a and dc-b); it skips when no stack is up
// (scripts/ci-openstack.sh starts one). The cases share one driver, as an
// ims-orch process does: a server an earlier case's cleanup terminated
// while it was still building can be listed again by Nova for a while
// (tombstone.go), and only the driver that terminated it knows to hide it.
func TestConformance(t *testing.T) {
	cfg := integrationConfig(t)
	run := time.Now().UnixNano()
	d := connectTB(t, cfg)
	t.Cleanup(func() { sweep(t, d); d.Close() }) // the cases' clean-up Terminates; a delete Nova lost is sent again here
	driverstest.Run(t, func(t *testing.T) driverstest.Env {
		return driverstest.Env{Driver: d, Await: driverstest.PollAwait(3 * time.Minute), OtherDC: "dc-b",
			Spec: func(id string) drivers.Spec {
				if id != "" {
					id = fmt.Sprintf("%s-%d", id, run) // a fresh ID per run on a long-lived cloud
				}
				return drivers.Spec{ID: id, DC: "dc-a", VNF: "firewall"}
			}}
	})
}
