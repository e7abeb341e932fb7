package openstack

// Requests per Launch / List / Terminate cycle and surplus servers against
// a real Nova (scripts/ci-openstack.sh; skipped without IMS_ORCH_OS_CLOUD).

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// counted is a transport that counts a driver's requests in c by method
// and path (ids as {id}), where they leave the client.
type counted struct {
	c    *reqCounter
	next http.RoundTripper
}

var idSegment = regexp.MustCompile(`[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}|[0-9a-f]{32}`)

func (t counted) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.add(r.Method + " " + idSegment.ReplaceAllString(r.URL.Path, "{id}"))
	return t.next.RoundTrip(r)
}

// countRequests counts every request d's clients send from now on.
func countRequests(d *Driver) *reqCounter {
	c := &reqCounter{}
	seen := map[*gophercloud.ProviderClient]bool{}
	for _, cl := range d.clients {
		for _, sc := range []*gophercloud.ServiceClient{cl.Compute, cl.Image} {
			if sc == nil || seen[sc.ProviderClient] {
				continue
			}
			seen[sc.ProviderClient] = true
			next := sc.ProviderClient.HTTPClient.Transport
			if next == nil {
				next = http.DefaultTransport
			}
			sc.ProviderClient.HTTPClient.Transport = counted{c: c, next: next}
		}
	}
	return c
}

// The Nova requests of one cycle — LaunchActive, List, Terminate and
// WaitGone of one server — counted on the real Nova, and a surplus server:
// a second server launched under the id (LaunchNew skips the look-up) is
// the instance, and the Reconciler of dc-a deletes the older one once it
// has been surplus for its grace (here 3 s), keeping the newer — not List,
// not dc-b's Reconciler; Terminate then leaves none.
// A LaunchActive of a server found ACTIVE sends one request, its look-up.
func TestIntegrationNovaRequestsAndSurplus(t *testing.T) {
	cfg := integrationConfig(t)
	cfg.OrphanGrace = Duration(3 * time.Second)
	d := connectTB(t, cfg)
	t.Cleanup(func() { d.Close(); sweep(t, d) })
	ctx := context.Background()
	counter := countRequests(d)
	id := fmt.Sprintf("req-%d", time.Now().Unix())
	spec := drivers.Spec{ID: id, DC: "dc-a", VNF: "firewall", Pool: "bench"}
	step := func(name string, fn func() error) map[string]int {
		t.Helper()
		counter.take()
		t0 := time.Now()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := counter.take()
		t.Logf("%-34s %6.2f s, requests %s", name, time.Since(t0).Seconds(), show(got))
		return got
	}
	var first drivers.Instance
	step("LaunchActive (first in pool)", func() (err error) { first, err = d.LaunchActive(ctx, spec); return err })
	step("List", func() error { _, err := d.List(ctx, ""); return err })
	again := step("LaunchActive of the ACTIVE server", func() error { _, err := d.LaunchActive(ctx, spec); return err })
	if n := total(again); n != 1 {
		t.Errorf("LaunchActive of an ACTIVE server sent %d requests, want 1 (its look-up)", n)
	}
	var second drivers.Instance
	step("LaunchNew + WaitActive (dup)", func() error {
		time.Sleep(time.Second) // a later creation second than the first (real cloud, real time)
		if _, err := d.LaunchNew(ctx, spec); err != nil {
			return err
		}
		var err error
		second, err = d.WaitActive(ctx, spec.DC, spec.ID)
		return err
	})
	if second.CloudID == first.CloudID {
		t.Fatalf("the second launch of %s took the first server %s", id, first.CloudID)
	}
	// the surplus server goes through the Reconciler of the DC's node; a
	// List, and the Reconciler of a node that reconciles only dc-b (and
	// wants nothing there), leave it
	desired := staticDesired{spec}
	rec := &Reconciler{Cloud: d, Desired: desired, Clock: clock.Real{}, Grace: time.Duration(cfg.OrphanGrace), Parallelism: 2, DCs: []string{"dc-a"}}
	other := &Reconciler{Cloud: d, Desired: staticDesired{}, Clock: clock.Real{}, Grace: time.Duration(cfg.OrphanGrace), Parallelism: 2, DCs: []string{"dc-b"}}
	pass := func(r *Reconciler) Report {
		t.Helper()
		rep, err := r.Reconcile(ctx)
		if err != nil || !rep.Complete() {
			t.Fatalf("reconcile: %v, %+v", err, rep)
		}
		return rep
	}
	step("Reconcile (surplus seen)", func() error { pass(rec); pass(other); return nil })
	if n := d.Stats().Duplicates; n != 1 {
		t.Fatalf("Duplicates = %d, want 1", n)
	}
	time.Sleep(time.Duration(cfg.OrphanGrace)) // real cloud, real time
	step("List + other DC's Reconcile (after the grace)", func() error {
		if rep := pass(other); len(rep.Surplus) != 0 {
			t.Errorf("dc-b's reconciler deleted %v in dc-a", rep.Surplus)
		}
		_, err := d.List(ctx, "")
		return err
	})
	if s := d.Stats(); s.SurplusDeleted != 0 || s.Duplicates != 1 {
		t.Fatalf("List or dc-b's reconciler deleted a server: %+v", s)
	}
	var rep Report
	step("Reconcile (surplus deleted)", func() error { rep = pass(rec); return nil })
	if want := []string{"dc-a/" + id + "/" + first.CloudID}; !slices.Equal(rep.Surplus, want) {
		t.Fatalf("surplus deleted %v, want %v (actions %+v)", rep.Surplus, want, rep.Actions)
	}
	l, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.SurplusDeleted != 1 || s.Duplicates != 0 {
		t.Fatalf("after the grace: %+v, want one surplus server deleted and no duplicate", s)
	}
	for _, in := range l {
		if in.ID == id && in.CloudID != second.CloudID {
			t.Fatalf("List shows %s as %s, want the newer %s", id, in.CloudID, second.CloudID)
		}
	}
	all, err := taggedServers(ctx, d.clients["dc-a"].Compute)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range all {
		if s.ID == first.CloudID || s.ID == second.CloudID {
			states[s.ID] = s.Status + "/" + s.TaskState + " " + s.Name
		}
	}
	t.Logf("in Nova after the surplus delete: %v", states)
	if st, ok := states[second.CloudID]; !ok || st != "ACTIVE/ "+id {
		t.Fatalf("the instance %s is %q, want ACTIVE and unmarked", second.CloudID, st)
	}
	step("Terminate + WaitGone", func() error {
		if err := d.Terminate(ctx, spec.DC, spec.ID); err != nil {
			return err
		}
		return d.WaitGone(ctx, spec.DC, spec.ID)
	})
}
