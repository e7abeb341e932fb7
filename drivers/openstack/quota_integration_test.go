package openstack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/drivers"
)

// TestIntegrationQuota: against the real Nova (scripts/ci-openstack.sh),
// the project's instance quota set with the compute API is what QuotaLeft
// reports; a launch Nova refuses for quota makes it report 0 until a server
// of the DC is terminated (also while Nova's counters lag: a server that is
// still a build request is not counted in GET /limits yet).
func TestIntegrationQuota(t *testing.T) {
	cfg := integrationConfig(t)
	d := connectTB(t, cfg)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sweep(t, d)
	compute := d.clients["dc-a"].Compute
	spec := func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "dc-a", VNF: "firewall"} }
	left := func() int {
		t.Helper()
		l, err := d.QuotaLeft(ctx, "dc-a", []drivers.Spec{spec("")})
		if err != nil {
			t.Fatalf("QuotaLeft: %v", err)
		}
		return l[0]
	}

	// Nova's limits count a server once it is scheduled (a server still a
	// build request is not in the usage yet): the launches here wait for
	// ACTIVE, so the counters are settled when QuotaLeft reads them
	first, err := d.LaunchActive(ctx, spec("dc-a.quota.0"))
	if err != nil {
		t.Fatal(err)
	}
	s0, err := servers.Get(ctx, compute, first.CloudID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	project := s0.TenantID
	unlimited := -1
	t.Cleanup(func() {
		if _, err := quotasets.Update(context.Background(), compute, project, quotasets.UpdateOpts{Instances: &unlimited}).Extract(); err != nil {
			t.Errorf("restore the instance quota: %v", err)
		}
		sweep(t, d)
	})
	l, err := limits.Get(ctx, compute, limits.GetOpts{}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	used := l.Absolute.TotalInstancesUsed
	limit := used + 1
	if _, err := quotasets.Update(ctx, compute, project, quotasets.UpdateOpts{Instances: &limit}).Extract(); err != nil {
		t.Fatalf("lower the instance quota: %v", err)
	}
	t.Logf("instances used %d, quota set to %d; cores %d/%d, RAM %d/%d MB", used, limit,
		l.Absolute.TotalCoresUsed, l.Absolute.MaxTotalCores, l.Absolute.TotalRAMUsed, l.Absolute.MaxTotalRAMSize)
	if got := left(); got != 1 {
		t.Fatalf("QuotaLeft = %d with quota %d and %d used, want 1", got, limit, used)
	}
	if _, err := d.LaunchActive(ctx, spec("dc-a.quota.1")); err != nil {
		t.Fatalf("launch inside the quota: %v", err)
	}
	if got := left(); got != 0 {
		t.Fatalf("QuotaLeft = %d with the quota used up, want 0", got)
	}
	if _, err := d.Launch(ctx, spec("dc-a.quota.2")); !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("launch past the quota: err %v, want ErrQuota", err)
	}
	// Nova's counters show room again once the quota is raised, but the
	// refused flavor stays at 0 until a server of the DC goes
	if _, err := quotasets.Update(ctx, compute, project, quotasets.UpdateOpts{Instances: &unlimited}).Extract(); err != nil {
		t.Fatal(err)
	}
	if got := left(); got != 0 {
		t.Fatalf("QuotaLeft = %d right after the refused launch, want 0", got)
	}
	if err := d.Terminate(ctx, "dc-a", "dc-a.quota.1"); err != nil {
		t.Fatal(err)
	}
	if got := left(); got == 0 {
		t.Fatalf("QuotaLeft = 0 after a termination with no instance quota")
	}
}
