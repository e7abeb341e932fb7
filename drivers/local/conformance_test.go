package local_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/driverstest"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// TestConformance runs the driver suite against real Kamailio processes
// (DCs 43 and 44: address blocks of their own). It skips without Kamailio,
// and fails then under CI=true (an install step is missing).
func TestConformance(t *testing.T) {
	if err := local.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real SIP parts are absent: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t) // real Kamailio processes on loopback
	driverstest.Run(t, func(t *testing.T) driverstest.Env {
		d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 1, ShmMB: 64, Grace: 3 * time.Second,
			NextHop: func(string) string { return "sip:127.0.0.1:5060" }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close(context.Background()) })
		return driverstest.Env{Driver: d, Await: driverstest.PollAwait(20 * time.Second), OtherDC: "dc44",
			Spec: func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "dc43", VNF: "scscf"} }}
	})
}
