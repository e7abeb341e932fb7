package openstack

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/drivers"
)

// serveLimits makes the fake answer GET /limits with abs (changeable through
// the returned setter) and GET /flavors/{id} with m1.tiny (1 vCPU, 64 MB).
func serveLimits(f *fakeNova, abs map[string]int) func(map[string]int) {
	var mu sync.Mutex
	f.th.Mux.HandleFunc("/limits", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, 200, map[string]any{"limits": map[string]any{"absolute": abs, "rate": []any{}}})
	})
	f.th.Mux.HandleFunc("/flavors/"+flavorID, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"flavor": map[string]any{"id": flavorID, "name": "m1.tiny", "ram": 64, "vcpus": 1, "disk": 1}})
	})
	return func(a map[string]int) {
		mu.Lock()
		defer mu.Unlock()
		abs = a
	}
}

func TestQuotaLeftFromNovaLimits(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	set := serveLimits(f, map[string]int{
		"maxTotalInstances": 10, "totalInstancesUsed": 4, // 6 left
		"maxTotalCores": 20, "totalCoresUsed": 17, // 3 one-vCPU servers
		"maxTotalRAMSize": 51200, "totalRAMUsed": 51200 - 5*64 - 10, // 5 servers of 64 MB
	})
	specs := []drivers.Spec{spec("dc-a", ""), spec("dc-b", "")}
	left, err := d.QuotaLeft(ctx, "dc-a", specs[:1])
	th.AssertNoErr(t, err)
	th.AssertDeepEquals(t, []int{3}, left) // cores are the tightest

	set(map[string]int{"maxTotalInstances": -1, "maxTotalCores": -1, "maxTotalRAMSize": -1})
	left, err = d.QuotaLeft(ctx, "dc-a", specs[:1])
	th.AssertNoErr(t, err)
	th.AssertDeepEquals(t, []int{drivers.Unlimited}, left)

	// a launch refused for quota: the flavor counts 0 although the limits
	// still show room, until a server of the DC is terminated
	f.inject("create", fault{status: 403, file: "quota_exceeded_403.json"})
	_, err = d.Launch(ctx, spec("dc-a", "q1"))
	if !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("launch err = %v, want ErrQuota", err)
	}
	left, err = d.QuotaLeft(ctx, "dc-a", specs[:1])
	th.AssertNoErr(t, err)
	th.AssertDeepEquals(t, []int{0}, left)
	left, err = d.QuotaLeft(ctx, "dc-b", specs[1:]) // another DC is not affected
	th.AssertNoErr(t, err)
	th.AssertDeepEquals(t, []int{drivers.Unlimited}, left)

	f.addServer("x", "ACTIVE", ours("dc-a", "x"), Tag)
	err = inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "x") })
	th.AssertNoErr(t, err)
	left, err = d.QuotaLeft(ctx, "dc-a", specs[:1])
	th.AssertNoErr(t, err)
	th.AssertDeepEquals(t, []int{drivers.Unlimited}, left)

	if _, err := d.QuotaLeft(ctx, "dc-x", specs[:1]); err == nil {
		t.Fatal("unknown datacenter: no error")
	}
}
