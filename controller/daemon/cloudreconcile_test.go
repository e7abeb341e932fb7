package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

// reconCloud is the daemon's cloud seen through openstack.Cloud: the
// simulated servers, minus the ones the test made vanish, plus orphans the
// test created behind the daemon's back. Launches must never come from the
// reconciliation in the daemon (they go to the controllers).
type reconCloud struct {
	t       *testing.T
	drv     drivers.Driver
	mu      sync.Mutex
	hidden  map[string]bool // DC/id of servers that vanished
	orphans map[string]drivers.Instance
	deleted []string
	// inFlight, if set, runs between a list's read and its answer
	inFlight func()
}

func (c *reconCloud) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	l, err := c.drv.List(ctx, dc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	l = slices.DeleteFunc(l, func(in drivers.Instance) bool { return c.hidden[in.DC+"/"+in.ID] })
	for _, in := range c.orphans {
		if dc == "" || in.DC == dc {
			l = append(l, in)
		}
	}
	inFlight := c.inFlight
	c.mu.Unlock()
	if inFlight != nil {
		inFlight()
	}
	return l, nil
}

func (c *reconCloud) Terminate(ctx context.Context, dc, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted = append(c.deleted, dc+"/"+id)
	if _, ok := c.orphans[dc+"/"+id]; ok {
		delete(c.orphans, dc+"/"+id)
		return nil
	}
	return errors.New("the reconciliation deleted a server a controller holds")
}

func (c *reconCloud) DeleteSurplus(context.Context, string, string, string) (bool, error) {
	return false, errors.New("the reconciliation deleted a surplus server; the simulated cloud has none")
}

func (c *reconCloud) LaunchNew(context.Context, drivers.Spec) (drivers.Instance, error) {
	c.t.Error("the daemon's reconciliation launched a server itself")
	return drivers.Instance{}, errors.New("no")
}

func (c *reconCloud) LaunchActive(context.Context, drivers.Spec) (drivers.Instance, error) {
	return c.LaunchNew(context.Background(), drivers.Spec{})
}

func (c *reconCloud) ReissueDeletes(context.Context, string)         {}
func (c *reconCloud) Sequential(drivers.Spec) bool                   { return false }
func (c *reconCloud) WaitGone(context.Context, string, string) error { return nil }

// The daemon's OpenStack reconciliation (here over the simulated cloud, on
// the daemon's virtual clock): an orphan created behind the daemon's back is
// deleted after the grace period and not before, a server that vanished is
// handed to its local controller, which replaces it (a replacement decision
// in the decisions API), empty groups are deleted, and the metrics count all
// of it. The same against the real Nova: TestCloudReconcileNova.
func TestCloudReconcileInDaemon(t *testing.T) {
	d, clk, c := simDaemon(t, nil)
	ctx := context.Background()
	clk.Advance(5 * time.Second) // the first instances boot
	cloud := &reconCloud{t: t, drv: d.driver, hidden: map[string]bool{}, orphans: map[string]drivers.Instance{}}
	groupCalls := 0
	groups := func(_ context.Context, dcs []string) ([]string, error) {
		groupCalls++
		if !slices.Equal(dcs, []string{"hong-kong", "houston", "london", "tokyo"}) {
			t.Errorf("groups of %v, want this node's DCs", dcs)
		}
		if groupCalls == 1 {
			return []string{"ims-orch.tokyo.old"}, nil
		}
		return nil, nil
	}
	cr := d.newCloudReconciler(cloud, groups, time.Minute, time.Hour, 2)
	rep := cr.pass(ctx)
	if len(rep.Adopted) == 0 || len(rep.HandedOver) != 0 || len(rep.Deleted) != 0 {
		t.Fatalf("first pass: adopted %v, handed over %v, deleted %v", rep.Adopted, rep.HandedOver, rep.Deleted)
	}

	var victim string
	for _, in := range d.locals["tokyo"].Instances() {
		if in.VNF == "P-CSCF" && in.CloudState != "" {
			victim = in.ID
		}
	}
	if victim == "" {
		t.Fatal("no launched P-CSCF in tokyo")
	}
	cloud.mu.Lock()
	cloud.hidden["tokyo/"+victim] = true
	cloud.orphans["tokyo/stray"] = drivers.Instance{ID: "stray", DC: "tokyo", VNF: "P-CSCF", State: drivers.StateActive}
	cloud.mu.Unlock()
	rep = cr.pass(ctx)
	if !slices.Equal(rep.HandedOver, []string{"tokyo/" + victim}) || len(rep.Deleted) != 0 {
		t.Fatalf("pass after the vanishing: handed over %v, deleted %v", rep.HandedOver, rep.Deleted)
	}
	clk.Advance(59 * time.Second)
	if rep = cr.pass(ctx); len(rep.Deleted) != 0 {
		t.Fatalf("orphan deleted after 59 s of a 60 s grace: %v", rep.Deleted)
	}
	clk.Advance(time.Second)
	if rep = cr.pass(ctx); !slices.Equal(rep.Deleted, []string{"tokyo/stray"}) {
		t.Fatalf("deleted %v, want tokyo/stray after the grace", rep.Deleted)
	}
	if !slices.Equal(cloud.deleted, []string{"tokyo/stray"}) {
		t.Fatalf("cloud deletions %v", cloud.deleted)
	}

	replaced := false
	for i := 0; i < 20 && !replaced; i++ {
		clk.Advance(time.Second)
		ds, err := c.Decisions(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, dd := range ds {
			if dd.Kind == "replacement" && dd.DC == "tokyo" && strings.Contains(dd.Reason, "replaces "+victim+" (cloud reconciliation: vanished") {
				replaced = true
			}
		}
	}
	if !replaced {
		t.Fatalf("no replacement decision for %s in the decisions API", victim)
	}
	m := scrape(t, d.URL())
	for series, want := range map[string]float64{
		`ims_orch_openstack_reconcile_actions_total{action="orphan_deleted"}`:    1,
		`ims_orch_openstack_reconcile_actions_total{action="vanished_replaced"}`: 1,
		`ims_orch_openstack_reconcile_actions_total{action="error_replaced"}`:    0,
		`ims_orch_openstack_reconcile_actions_total{action="group_deleted"}`:     1,
		`ims_orch_openstack_reconcile_errors_total{stage="list"}`:                0,
		`ims_orch_openstack_reconcile_passes_total`:                              4,
	} {
		if got := metricValue(t, m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(m, `ims_orch_openstack_reconcile_actions_total{action="orphan_deleted"}`) {
		t.Error("reconciliation metrics missing from /metrics")
	}
}

var _ openstack.Cloud = (*reconCloud)(nil)

// The daemon logs a deletion of the reconciliation once per state change
// of its server (revF L5, L6): a surplus server whose delete Nova refuses
// is warned about at its first failure only — not at the failures after
// each backoff, nor at the passes inside it — and its deletion has a log
// line and an action count of its own.
func TestCloudReconcileLogsASurplusDeleteOncePerStateChange(t *testing.T) {
	cr, logs := accountingReconciler(t)
	ctx := context.Background()
	a := openstack.Action{Kind: openstack.ActSurplus, Reason: "surplus: newer server n2 carries s1",
		Instance: drivers.Instance{DC: "dc-a", ID: "s1", CloudID: "n1", State: drivers.StateActive}}
	k := "dc-a/s1/n1"
	refused := func(n int, skipped bool) error {
		return &openstack.DeleteBackoffError{DC: "dc-a", ID: "s1", Server: "n1", Failures: n, Skipped: skipped, Err: errors.New("HTTP 403")}
	}
	acts := []openstack.Action{a}
	for _, rep := range []openstack.Report{
		{Actions: acts, Failed: map[string]error{k: refused(1, false)}},
		{Actions: acts, Backoff: map[string]error{k: refused(1, true)}},
		{Actions: acts, Failed: map[string]error{k: refused(2, false)}},
		{Actions: acts, Backoff: map[string]error{k: refused(2, true)}},
		{Actions: acts, Surplus: []string{k}},
	} {
		cr.account(ctx, rep, nil)
	}
	out := logs.String()
	lines := func(msg string) int { return strings.Count(out, `msg="`+msg+`"`) }
	if lines("orphan or surplus server not deleted") != 1 || lines("surplus server deleted") != 1 || strings.Count(out, "\n") != 2 {
		t.Fatalf("log of a refused surplus delete, two backoffs, then deleted:\n%s", out)
	}
	if !strings.Contains(out, "server=dc-a/s1/n1") || !strings.Contains(out, `why="surplus: newer server n2 carries s1"`) {
		t.Errorf("the deletion's line names neither the server nor why:\n%s", out)
	}
	if got := testutil.ToFloat64(cr.actions.WithLabelValues(recSurplusDeleted)); got != 1 {
		t.Errorf("surplus_deleted = %v, want 1", got)
	}
	if got := testutil.ToFloat64(cr.errs.WithLabelValues("delete")); got != 2 {
		t.Errorf("delete errors = %v, want 2 (the attempts Nova refused)", got)
	}
}

// accountingReconciler is a daemon's reconciler whose accounting (its
// log at Info and above, its metrics) the test feeds reports.
func accountingReconciler(t *testing.T) (*cloudReconciler, *bytes.Buffer) {
	logs := &bytes.Buffer{}
	d := &Daemon{locals: map[string]*local.Controller{}, clk: clock.NewVirtual(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)),
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	return d.newCloudReconciler(&reconCloud{t: t}, nil, time.Minute, time.Minute, 1), logs
}

// An orphan id with two servers (Terminate's join): the first failure of
// one is warned even when the other is on its third (revN2 L1: the first
// error of the join decided); a pass inside the backoff does not log the
// orphan deleted (revN2: any ActDelete not failed did), its deletion does.
func TestCloudReconcileLogsAnOrphanDeleteOncePerStateChange(t *testing.T) {
	cr, logs := accountingReconciler(t)
	a := openstack.Action{Kind: openstack.ActDelete, Reason: "orphan",
		Instance: drivers.Instance{DC: "dc-a", ID: "o1", CloudID: "n2", State: drivers.StateActive}}
	refused := func(server string, n int, skipped bool) error {
		return &openstack.DeleteBackoffError{DC: "dc-a", ID: "o1", Server: server, Failures: n, Skipped: skipped, Err: errors.New("HTTP 403")}
	}
	k, acts := "dc-a/o1", []openstack.Action{a}
	for i, tc := range []struct {
		rep  openstack.Report
		want string // the line logged at Info and above
	}{
		{openstack.Report{Actions: acts, Failed: map[string]error{k: errors.Join(refused("n2", 3, true), refused("n1", 1, false))}},
			"orphan or surplus server not deleted"},
		{openstack.Report{Actions: acts, Failed: map[string]error{k: errors.Join(refused("n2", 4, false), refused("n1", 2, false))}}, ""},
		{openstack.Report{Actions: acts, Backoff: map[string]error{k: refused("n2", 1, true)}}, ""},
		{openstack.Report{Actions: acts, Deleted: []string{k}}, "orphan server deleted"},
	} {
		logs.Reset()
		cr.account(context.Background(), tc.rep, nil)
		out := logs.String()
		ok := out == ""
		if tc.want != "" {
			ok = strings.Count(out, "\n") == 1 && strings.Contains(out, `msg="`+tc.want+`"`)
		}
		if !ok {
			t.Errorf("pass %d: log\n%s\nwant the line %q", i+1, out, tc.want)
		}
	}
}

// The reconciliation desires an instance whose launch has not returned (no
// cloud state yet): its server, listed meanwhile, is not an orphan however
// long the launch takes (revN2 L4: left out, it was deleted after the
// grace). The pass that read it launching does not hand it over as
// missing: its list may predate the create, and the handover would come
// after the launch returned and replace a server just launched
// (TestCloudReconcileNova on a loaded real Nova: vanished_replaced 2); the
// next pass, which reads it launched, does.
func TestCloudReconcileHandsOverLaunchedInstancesOnly(t *testing.T) {
	specs, launching := desiredOf("dc-a", []local.Instance{
		{ID: "launching", VNF: "P-CSCF", State: local.StateBooting},
		{ID: "booting", VNF: "P-CSCF", State: local.StateBooting, CloudState: drivers.StateBooting},
		{ID: "failed", VNF: "P-CSCF", State: local.StateFailed, CloudState: drivers.StateGone},
	})
	want := []drivers.Spec{{ID: "launching", DC: "dc-a", VNF: "P-CSCF"}, {ID: "booting", DC: "dc-a", VNF: "P-CSCF"}}
	if !reflect.DeepEqual(specs, want) || !reflect.DeepEqual(launching, []string{"launching"}) {
		t.Fatalf("desired %v, launching %v; want %v, [launching]", specs, launching, want)
	}
	var handed []string
	l := &localsDesired{launching: map[string]bool{"dc-a/launching": true},
		vanished: func(dc, id, why string) bool { handed = append(handed, dc+"/"+id); return true }}
	for _, id := range []string{"launching", "booting"} {
		l.handover(openstack.Action{Kind: openstack.ActLaunch, Spec: drivers.Spec{DC: "dc-a", ID: id}, Reason: "missing"})
	}
	if !reflect.DeepEqual(handed, []string{"dc-a/booting"}) {
		t.Fatalf("handed over %v, want only dc-a/booting", handed)
	}
}

// heldLaunch is a cloud whose launches wait in Launch until release is
// closed (entered tells that one began): a create Nova has not taken yet.
type heldLaunch struct {
	*fake.Driver
	entered, release chan struct{}
}

func (d *heldLaunch) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	d.entered <- struct{}{}
	<-d.release
	return d.Driver.Launch(ctx, spec)
}

// The race the launching record closes, end to end through the daemon's
// reconciler and a local controller (TestCloudReconcileNova once on a
// loaded real Nova: vanished_replaced 2): a pass reads the desired set
// while the controller's launch waits for Nova, lists before Nova took the
// create, and the list's answer comes after the launch returned. That pass
// must not hand the instance over as missing — the controller, its launch
// no longer in flight, would fail and replace the server it just launched.
// The next pass reads it launched and hands it over if it really is
// missing.
func TestCloudReconcileDoesNotReplaceAServerLaunchedDuringItsList(t *testing.T) {
	clk := clock.NewVirtual(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	fd, err := fake.New(clk, fake.Options{BootDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	drv := &heldLaunch{Driver: fd, entered: make(chan struct{}), release: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	c, err := local.New(local.Config{DC: "dc-a", VNFs: []local.VNFConfig{{Name: "P-CSCF", Capacity: 500, Image: "img", Flavor: "m1", Min: 1}}},
		drv, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	launched := make(chan error, 1)
	go func() { launched <- c.Start(ctx) }() // it launches its first P-CSCF
	<-drv.entered
	t.Cleanup(c.Stop)
	ins := c.Instances()
	if len(ins) != 1 || ins[0].CloudState != "" {
		t.Fatalf("instances %+v, want one launching", ins)
	}
	id := ins[0].ID
	cloud := &reconCloud{t: t, drv: fd, hidden: map[string]bool{}, orphans: map[string]drivers.Instance{}}
	cloud.inFlight = func() { // the list was read before the create; its answer comes after the launch returned
		cloud.mu.Lock()
		cloud.inFlight = nil
		cloud.mu.Unlock()
		close(drv.release)
		if err := <-launched; err != nil {
			t.Errorf("start: %v", err)
		}
	}
	d := &Daemon{locals: map[string]*local.Controller{"dc-a": c}, clk: clk, log: log}
	cr := d.newCloudReconciler(cloud, nil, time.Minute, time.Minute, 1)
	rep := cr.pass(ctx)
	if ins = c.Instances(); len(ins) != 1 || ins[0].State == local.StateFailed || len(rep.HandedOver) != 0 {
		var states []string
		for _, in := range ins {
			states = append(states, in.ID+" "+string(in.State)+" "+in.FailReason)
		}
		t.Fatalf("the pass that read %s launching handed over %v; instances %q", id, rep.HandedOver, states)
	}
	if ins[0].CloudState == "" {
		t.Fatalf("%s still launching after the pass: %+v", id, ins[0])
	}
	cloud.mu.Lock()
	cloud.hidden["dc-a/"+id] = true // now it vanishes
	cloud.mu.Unlock()
	rep = cr.pass(ctx)
	if !slices.Equal(rep.HandedOver, []string{"dc-a/" + id}) {
		t.Fatalf("the next pass handed over %v, want dc-a/%s (vanished)", rep.HandedOver, id)
	}
}
