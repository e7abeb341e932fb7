package openstack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/drivers"
)

// reqCounter counts requests by route.
type reqCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *reqCounter) add(route string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[route]++
}

// take returns the counts since the last take.
func (c *reqCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = nil
	return out
}

// staticDesired is a fixed desired set.
type staticDesired []drivers.Spec

func (s staticDesired) Desired() []drivers.Spec { return s }

// show renders request counts by route, sorted, with their total.
func show(reqs map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(reqs)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, reqs[k]))
	}
	return fmt.Sprintf("%d (%s)", total(reqs), strings.Join(parts, ", "))
}

// The Nova requests of one Launch / List / Terminate cycle, servers booting
// in 3 s of virtual time as on the loopback Nova (nova review L3). A wait
// for ACTIVE does not list again right after the list its launch's look-up
// made, nor right after a create (the server is BUILD then): it starts from
// what that list showed, or after its first poll interval.
func TestRequestsPerCycle(t *testing.T) {
	f := newFakeNova(t)
	d, clk := quietDriver(t, f, testConfig())
	f.clk, f.bootAfter = clk, 3*time.Second
	step := func(name string, fn func() error) map[string]int {
		t.Helper()
		f.reqs.take()
		th.AssertNoErr(t, inVirtualTime(clk, fn))
		got := f.reqs.take()
		t.Logf("%-34s %s", name, show(got))
		return got
	}
	launch := func(id string) func() error {
		return func() error { _, err := d.LaunchActive(ctx, spec("dc-a", id)); return err }
	}
	// main (8a37ff0) made one list more in each of these but List and
	// Terminate: 12, 8, 2, 1, 5, 9 requests
	cold := step("LaunchActive (first in its pool)", launch("c1"))
	// flavor, image, group look-up and create, 6 lists, create: 11 in all
	th.AssertDeepEquals(t, map[string]int{"GET /flavors/detail": 1, "GET /image/v2/images": 1,
		"GET /os-server-groups": 1, "POST /os-server-groups": 1, "GET /servers/detail": 6, "POST /servers": 1}, cold)
	warm := step("LaunchActive", launch("c2"))
	th.AssertDeepEquals(t, map[string]int{"GET /servers/detail": 6, "POST /servers": 1}, warm)
	again := step("LaunchActive of an ACTIVE server", launch("c1"))
	th.AssertDeepEquals(t, map[string]int{"GET /servers/detail": 1}, again)
	list := step("List", func() error { _, err := d.List(ctx, ""); return err })
	th.AssertDeepEquals(t, map[string]int{"GET /servers/detail": 1}, list)
	term := step("Terminate + WaitGone", func() error {
		if err := d.Terminate(ctx, "dc-a", "c2"); err != nil {
			return err
		}
		return d.WaitGone(ctx, "dc-a", "c2")
	})
	th.AssertDeepEquals(t, map[string]int{"GET /servers/detail": 3, "PUT /servers/": 1, "DELETE /servers/": 1}, term)
	r := NewReconciler(d, staticDesired{spec("dc-a", "c1"), spec("dc-a", "c3")}, clk)
	rec := step("Reconcile (adopt c1, launch c3)", func() error { _, err := r.Reconcile(ctx); return err })
	th.AssertDeepEquals(t, map[string]int{"GET /servers/detail": 7, "POST /servers": 1}, rec)
}

func total(reqs map[string]int) int {
	n := 0
	for _, v := range reqs {
		n += v
	}
	return n
}
