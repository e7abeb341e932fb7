package openstack

// Integration test and benchmark against a real Nova (deploy/openstack/up.sh).
// They run only when IMS_ORCH_OS_CLOUD names a clouds.yaml entry (the deploy
// script writes $BASE/clouds.yaml; point OS_CLIENT_CONFIG_FILE at it);
// scripts/ci-openstack.sh sets both, so in CI they always run.
//
//	IMS_ORCH_OS_CLOUD      clouds.yaml entry (required)
//	IMS_ORCH_OS_AZS        two availability zones, one per test DC (default "az-a,az-b")
//	IMS_ORCH_OS_IMAGE      image name or ID (default "tiny")
//	IMS_ORCH_OS_FLAVOR     flavor name or ID (default "m1.tiny")
//	IMS_ORCH_OS_NETWORKS   comma-separated network UUIDs, or "none" (default)

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/drivers/openstack/novasweeptest"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// integrationConfig returns the two-DC configuration, or skips.
func integrationConfig(tb testing.TB) Config {
	tb.Helper()
	cloud := os.Getenv("IMS_ORCH_OS_CLOUD")
	if cloud == "" {
		tb.Skip("no OpenStack to test against: start one with deploy/openstack/up.sh, then set " +
			"OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml IMS_ORCH_OS_CLOUD=ims-orch-dev (scripts/ci-openstack.sh does all of it)")
	}
	// one run at a time on the one loopback OpenStack (its project's
	// servers, counted and swept by run; the fault tests' proxies)
	machinelocktest.OpenStack.Hold(tb)
	azs := strings.Split(envOr("IMS_ORCH_OS_AZS", "az-a,az-b"), ",")
	if len(azs) != 2 {
		tb.Fatalf("IMS_ORCH_OS_AZS: want two availability zones, got %q", azs)
	}
	dc := func(az string) DCConfig {
		return DCConfig{Cloud: cloud, AvailabilityZone: az, Image: envOr("IMS_ORCH_OS_IMAGE", "tiny"),
			Flavor: envOr("IMS_ORCH_OS_FLAVOR", "m1.tiny"), Networks: strings.Split(envOr("IMS_ORCH_OS_NETWORKS", "none"), ",")}
	}
	return Config{
		DCs:           map[string]DCConfig{"dc-a": dc(azs[0]), "dc-b": dc(azs[1])},
		AntiAffinity:  AntiAffinity{MaxPerHost: 2},
		Pools:         map[string]AntiAffinity{"bench": {Soft: true}},
		PollInterval:  Duration(500 * time.Millisecond),
		ActiveTimeout: Duration(3 * time.Minute),
		OrphanGrace:   Duration(time.Minute),
		Parallelism:   10,
		// the run's servers carry its id: the clean-up (sweep) and
		// the leak counts (rawOurs) are this run's only
		ServerMetadata: novasweeptest.RunMetadata(novasweeptest.Run()),
	}.withDefaults()
}

// otherRuns is the check, once per test process, that Nova lists no
// server of ours in the tests' DCs of another run (novasweeptest.Others);
// every connectTB fails with its error.
var otherRuns struct {
	once sync.Once
	err  error
}

// connectTB connects a driver to the real Nova; it fails, before any test
// of the process does anything on Nova, when Nova lists servers of ours
// of another run in the driver's DCs (an interrupted run on a kept stack:
// the sweep deletes only its own run's, and the tests' reconcilers and
// exact counts would take them for their own).
func connectTB(tb testing.TB, cfg Config) *Driver {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clients, err := Connect(ctx, cfg, nil)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	d, err := New(cfg, clients, clock.Real{})
	if err != nil {
		tb.Fatalf("new driver: %v", err)
	}
	otherRuns.once.Do(func() { otherRuns.err = noOtherRun(ctx, d) })
	if otherRuns.err != nil {
		d.Close()
		tb.Fatal(otherRuns.err)
	}
	return d
}

// rawOurs counts the servers of d's run (sweepScope) Nova lists, including
// those it is still deleting (the driver's List hides them).
func rawOurs(ctx context.Context, d *Driver) (int, error) {
	n := 0
	for _, c := range computes(d) {
		page, err := servers.List(c, servers.ListOpts{Tags: Tag}).AllPages(ctx)
		if err != nil {
			return 0, err
		}
		all, err := servers.ExtractServers(page)
		if err != nil {
			return 0, err
		}
		for _, s := range all {
			if sweepScope(d).Has(s) {
				n++
			}
		}
	}
	return n, nil
}

// sweepLimit bounds a sweep (the driver's clock).
const sweepLimit = 5 * time.Minute

// sweep deletes every server of ours in d's DCs and waits (bounded) until
// Nova lists none, not even one it is still deleting (sweepServers); it
// logs the DELETEs it sent, so a lost delete shows in the CI log.
func sweep(tb testing.TB, d *Driver) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sweepLimit+time.Minute) // a backstop; the bound is the sweep's
	defer cancel()
	res, err := sweepServers(ctx, d, sweepLimit)
	if err != nil {
		tb.Errorf("sweep: %v", err)
		return
	}
	tb.Logf("sweep: %s", res)
}

// sweepServers is novasweeptest.Sweep over the clouds of d, on its clock:
// every server of d's run (sweepScope), hidden ones too, deleted and a
// lost delete sent again until Nova lists none.
func sweepServers(ctx context.Context, d *Driver, limit time.Duration) (novasweeptest.Result, error) {
	return novasweeptest.Sweep(ctx, computes(d), sweepScope(d), d.clk, limit)
}

// computes is d's compute clients, each once (DCs may share one).
func computes(d *Driver) []*gophercloud.ServiceClient {
	var out []*gophercloud.ServiceClient
	for _, dc := range sortedKeys(d.clients) {
		if c := d.clients[dc].Compute; !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// sweepScope is the servers of d's run: tagged ours, managed by ims-orch
// in one of d's DCs, carrying d's run id (Config.ServerMetadata).
func sweepScope(d *Driver) novasweeptest.Scope {
	return novasweeptest.Scope{Tag: Tag, ManagedBy: drivers.ManagedBy, DCs: sortedKeys(d.clients),
		Run: d.cfg.ServerMetadata[novasweeptest.RunKey]}
}

// noOtherRun is novasweeptest.Others over the clouds of d in d's DCs.
func noOtherRun(ctx context.Context, d *Driver) error {
	return novasweeptest.Others(ctx, computes(d), sweepScope(d), d.cfg.DCs[sortedKeys(d.cfg.DCs)[0]].Cloud)
}

// ourGroups lists the server groups named ims-orch.*.
func ourGroups(ctx context.Context, d *Driver) ([]string, error) {
	page, err := servergroups.List(d.clients["dc-a"].Compute, nil).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servergroups.ExtractServerGroups(page)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range all {
		if strings.HasPrefix(g.Name, "ims-orch.") {
			out = append(out, fmt.Sprintf("%s (%d members)", g.Name, len(g.Members)))
		}
	}
	return out, nil
}

type specSet struct {
	mu    sync.Mutex
	specs []drivers.Spec
}

func (s *specSet) Desired() []drivers.Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]drivers.Spec(nil), s.specs...)
}

func (s *specSet) set(specs []drivers.Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs = specs
}

func pool(dc, vnf string, n int) []drivers.Spec {
	out := make([]drivers.Spec, n)
	for i := range out {
		out[i] = drivers.Spec{ID: fmt.Sprintf("%s.%s.%d", dc, vnf, i), DC: dc, VNF: vnf}
	}
	return out
}

func concat(parts ...[]drivers.Spec) []drivers.Spec {
	var out []drivers.Spec
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// reconcileUntilComplete runs passes until one leaves nothing to do (at most n).
func reconcileUntilComplete(t *testing.T, r *Reconciler, n int) Report {
	t.Helper()
	var rep Report
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var err error
		rep, err = r.Reconcile(ctx)
		cancel()
		if err != nil {
			t.Fatalf("reconcile pass %d: %v", i, err)
		}
		if rep.Complete() {
			return rep
		}
		t.Logf("pass %d incomplete: deferred %v failed %v", i, rep.Deferred, rep.Failed)
	}
	t.Fatalf("not complete after %d passes: deferred %v failed %v", n, rep.Deferred, rep.Failed)
	return rep
}

func byKey(list []drivers.Instance) map[string]drivers.Instance {
	m := map[string]drivers.Instance{}
	for _, in := range list {
		m[key(in.DC, in.ID)] = in
	}
	return m
}

func TestIntegrationNova(t *testing.T) {
	cfg := integrationConfig(t)
	d := connectTB(t, cfg)
	defer d.Close()
	counter := countRequests(d)
	ctx := context.Background()
	sweep(t, d) // this run's leftovers of an earlier test (another run's: connectTB fails)
	if err := d.DeleteGroups(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("IMS_ORCH_OS_KEEP") == "1" {
			t.Log("IMS_ORCH_OS_KEEP=1: servers left in place for inspection")
			return
		}
		sweep(t, d)
		if err := d.DeleteGroups(context.Background()); err != nil {
			t.Errorf("delete server groups: %v", err)
		}
	})
	compute := d.clients["dc-a"].Compute
	desired := &specSet{}
	desired.set(concat(pool("dc-a", "pcscf", 6), pool("dc-b", "scscf", 3)))
	r := NewReconciler(d, desired, clock.Real{})
	// the poller starts now, so its baseline is taken long before the vanish below
	events := make(chan drivers.Event, 1024)
	cancelSub := d.Subscribe(func(e drivers.Event) {
		select {
		case events <- e:
		default:
		}
	})

	// ---- N+k: a pool of 6 with k = 2 over the 3 hosts of dc-a's zone
	t0 := time.Now()
	counter.take()
	rep := reconcileUntilComplete(t, r, 3)
	t.Logf("9 instances ACTIVE through the reconciler in %s (launched %d); requests (the poller's included) %s",
		time.Since(t0).Round(time.Millisecond), len(rep.Launched), show(counter.take()))
	list, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 9 {
		t.Fatalf("want 9 servers of ours, got %d", len(list))
	}
	perHost := map[string]map[string]int{} // pool -> host -> members
	for _, in := range list {
		if in.State != drivers.StateActive {
			t.Errorf("%s: state %s, want active", in.ID, in.State)
		}
		s, err := servers.Get(ctx, compute, in.CloudID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if want := cfg.DCs[in.DC].AvailabilityZone; s.AvailabilityZone != want {
			t.Errorf("%s of %s landed in zone %q, want %q", in.ID, in.DC, s.AvailabilityZone, want)
		}
		p := in.DC + "/" + in.VNF
		if perHost[p] == nil {
			perHost[p] = map[string]int{}
		}
		perHost[p][in.Host]++
	}
	for p, hosts := range perHost {
		for h, n := range hosts {
			if n > 2 {
				t.Errorf("pool %s: %d members on host %s, k = 2", p, n, h)
			}
		}
		t.Logf("pool %s members per host: %v", p, hosts)
	}
	if len(perHost["dc-a/pcscf"]) < 3 {
		t.Errorf("pool dc-a/pcscf spans %d hosts, want 3 (6 members, at most 2 per host)", len(perHost["dc-a/pcscf"]))
	}
	g, err := servergroups.List(compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := servergroups.ExtractServerGroups(g)
	for _, grp := range groups {
		if grp.Name == GroupName("dc-a", "pcscf") {
			if grp.Policy == nil || *grp.Policy != "anti-affinity" || grp.Rules == nil || grp.Rules.MaxServerPerHost != 2 {
				t.Errorf("group %s: policy %v rules %+v, want anti-affinity with max_server_per_host 2", grp.Name, grp.Policy, grp.Rules)
			}
		}
	}

	// ---- a server deleted behind ims-orch's back is replaced
	trigger := make(chan struct{}, 1)
	reports := make(chan Report, 16)
	runCtx, stopRun := context.WithCancel(ctx)
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() {
		defer runWG.Done()
		r.Run(runCtx, 30*time.Second, trigger, func(rep Report, err error) {
			if err == nil {
				reports <- rep
			}
		})
	}()
	<-reports // the first pass of Run: nothing to do
	for drained := false; !drained; {
		select {
		case <-events: // appeared/active events of the launches above
		default:
			drained = true
		}
	}
	before := byKey(list)
	victim := before["dc-a/dc-a.pcscf.3"]
	vanish := time.Now()
	if err := servers.Delete(ctx, compute, victim.CloudID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	var detected time.Duration
	deadline := time.After(3 * time.Minute)
wait:
	for {
		select {
		case e := <-events:
			if e.ID == victim.ID && e.State == drivers.StateGone && detected == 0 {
				detected = time.Since(vanish)
				trigger <- struct{}{}
			}
		case rep := <-reports:
			if len(rep.Failed)+len(rep.Deferred) > 0 {
				t.Logf("replacement pass incomplete (retried sooner): failed %v deferred %v", rep.Failed, rep.Deferred)
			}
			if len(rep.Launched) > 0 {
				if rep.Launched[0] != "dc-a/dc-a.pcscf.3" {
					t.Fatalf("reconcile launched %v, want dc-a/dc-a.pcscf.3", rep.Launched)
				}
				break wait
			}
		case <-deadline:
			t.Fatal("the vanished server was not replaced within 3 minutes")
		}
	}
	replaced := time.Since(vanish)
	stopRun()
	runWG.Wait()
	cancelSub()
	list, err = d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	now := byKey(list)
	if len(now) != 9 || now["dc-a/dc-a.pcscf.3"].CloudID == victim.CloudID || now["dc-a/dc-a.pcscf.3"].State != drivers.StateActive {
		t.Fatalf("after replacement: %d servers, pcscf.3 %+v", len(now), now["dc-a/dc-a.pcscf.3"])
	}
	t.Logf("BENCH vanish->replacement ACTIVE: %s (detected by the poller after %s, poll interval %s)",
		replaced.Round(time.Millisecond), detected.Round(time.Millisecond), time.Duration(cfg.PollInterval))

	// ---- quota lowered: a partial fill is reported, the rest continues, nothing healthy deleted
	s0, err := servers.Get(ctx, compute, now["dc-a/dc-a.pcscf.0"].CloudID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	project := s0.TenantID
	limit := len(now) + 2
	if _, err := quotasets.Update(ctx, compute, project, quotasets.UpdateOpts{Instances: &limit}).Extract(); err != nil {
		t.Fatalf("lower the instance quota: %v", err)
	}
	unlimited := -1
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if _, err := quotasets.Update(context.Background(), compute, project, quotasets.UpdateOpts{Instances: &unlimited}).Extract(); err != nil {
			t.Errorf("restore the instance quota: %v", err)
		}
	}
	t.Cleanup(restore)
	desired.set(concat(pool("dc-a", "pcscf", 6), pool("dc-b", "scscf", 3), pool("dc-a", "ibcf", 4), pool("dc-b", "bgcf", 2)))
	rep, err = r.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quota %d: launched %v deferred %v failed %v", limit, rep.Launched, rep.Deferred, rep.Failed)
	if len(rep.Failed) != 0 {
		t.Errorf("quota pass: failures %v, want only deferrals", rep.Failed)
	}
	if len(rep.Launched)+len(rep.Deferred) != 6 || len(rep.Deferred) < 4 || len(rep.Launched) > 2 {
		t.Errorf("quota pass: launched %d deferred %d, want at most 2 launched and the other of 6 deferred", len(rep.Launched), len(rep.Deferred))
	}
	list, err = d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	after := byKey(list)
	for k, in := range now {
		if after[k].CloudID != in.CloudID || after[k].State != drivers.StateActive {
			t.Errorf("quota pass touched healthy %s: was %s, now %+v", k, in.CloudID, after[k])
		}
	}
	restore()
	rep = reconcileUntilComplete(t, r, 3)
	if len(rep.Launched) != len(rep.Actions) {
		t.Logf("after quota restore: %+v", rep)
	}
	list, err = d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 15 {
		t.Fatalf("after quota restore: %d servers, want 15", len(list))
	}

	// ---- ims-orch restarts: a fresh driver and reconciler adopt everything
	d2 := connectTB(t, cfg)
	defer d2.Close()
	r2 := NewReconciler(d2, desired, clock.Real{})
	rep, err = r2.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 15 || len(rep.Launched)+len(rep.Replaced)+len(rep.Deleted) != 0 || !rep.Complete() {
		t.Fatalf("restart: adopted %d launched %v replaced %v deleted %v, want 15 adopted and nothing else",
			len(rep.Adopted), rep.Launched, rep.Replaced, rep.Deleted)
	}
	list2, err := d2.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list2) != 15 || len(r2.Registry()) != 15 {
		t.Fatalf("restart: %d servers, registry %d, want 15", len(list2), len(r2.Registry()))
	}
	for k, in := range byKey(list) {
		if byKey(list2)[k].CloudID != in.CloudID {
			t.Errorf("restart changed %s", k)
		}
	}

	// ---- orphans: deleted only after the grace period (virtual clock for the grace)
	vclk := clock.NewVirtual(time.Unix(0, 0))
	r3 := &Reconciler{Cloud: d2, Desired: desired, Clock: vclk, Grace: time.Minute, Parallelism: 10}
	desired.set(concat(pool("dc-a", "pcscf", 6), pool("dc-b", "scscf", 3), pool("dc-a", "ibcf", 4)))
	rep, err = r3.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 0 {
		t.Fatalf("orphans deleted before the grace period: %v", rep.Deleted)
	}
	vclk.Advance(time.Minute)
	rep, err = r3.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Deleted, ",") != "dc-b/dc-b.bgcf.0,dc-b/dc-b.bgcf.1" {
		t.Fatalf("after grace: deleted %v, want the two dc-b bgcf orphans", rep.Deleted)
	}

	// ---- the end: no server of ours is left
	desired.set(nil)
	vclk.Advance(time.Minute)
	if _, err := r3.Reconcile(ctx); err != nil { // starts the grace of all 13
		t.Fatal(err)
	}
	vclk.Advance(time.Minute)
	rep, err = r3.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 13 || !rep.Complete() {
		t.Fatalf("teardown: deleted %d (%v failed), want 13", len(rep.Deleted), rep.Failed)
	}
	sweep(t, d2) // waits until Nova lists none of ours, deleting or not
	if err := d2.DeleteGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rawOurs(ctx, d2); err != nil || n != 0 {
		t.Fatalf("at the end: %d servers of ours left (%v)", n, err)
	}
	if left, err := ourGroups(ctx, d2); err != nil || len(left) != 0 {
		t.Fatalf("at the end: server groups left: %v (%v)", left, err)
	}
}
