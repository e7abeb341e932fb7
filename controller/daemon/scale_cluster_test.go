package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
)

// A ScaleVnf for a DC whose local controller runs in another node reaches
// that controller through its scale endpoint (protocol token), and a refusal
// there comes back as a failed operation with the controller's reason.
func TestClusterScaleRemoteDC(t *testing.T) {
	ds := startClusterWith(t, true)
	leader, followers := leaderOf(ds)
	if leader == nil {
		t.Fatal("no leader")
	}
	var host *Daemon
	for _, d := range ds {
		if d.locals["london"] != nil {
			host = d
		}
	}
	if host == nil || host == leader {
		t.Fatalf("london's local controller must run outside the leader (%s)", leader.cfg.Node.ID)
	}
	ctx := context.Background()
	before := host.locals["london"].Counts()["ids"].Target
	op, err := leader.Backend().Scale(ctx, api.ScaleRequest{DC: "london", VNF: "ids", Type: api.ScaleOut, NumberOfSteps: 2})
	if err != nil {
		t.Fatal(err)
	}
	if op.State != api.OpCompleted || op.Error != "" {
		t.Fatalf("operation %+v, want COMPLETED", op)
	}
	if got := host.locals["london"].Counts()["ids"].Target; got != before+2 {
		t.Fatalf("london ids target %d, want %d", got, before+2)
	}
	if a := host.locals["london"].Actions(); len(a) == 0 || a[len(a)-1].Reason != "manual" {
		t.Fatalf("last action of london %+v, want a manual one", a)
	}
	// the operation is a replicated record: any node answers for it
	for _, f := range followers {
		eventually(t, 5*time.Second, "the scale operation on "+f.cfg.Node.ID, func() bool {
			got, err := f.Backend().Operation(ctx, op.ID)
			return err == nil && got.State == api.OpCompleted && got.Scale != nil && got.Scale.DC == "london"
		})
	}
	op, err = leader.Backend().Scale(ctx, api.ScaleRequest{DC: "london", VNF: "S-CSCF", Type: api.ScaleOut, NumberOfSteps: 1})
	if err != nil {
		t.Fatal(err)
	}
	if op.State != api.OpFailed || !strings.Contains(op.Error, "not a VNF of this datacenter") {
		t.Fatalf("operation %+v, want FAILED with the local controller's reason", op)
	}
}
