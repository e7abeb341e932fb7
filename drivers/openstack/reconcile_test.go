package openstack

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func inst(dc, id string, st drivers.State) drivers.Instance {
	return drivers.Instance{ID: id, DC: dc, VNF: "v", State: st}
}

// created gives an instance a Nova id and a creation time (seconds after t0).
func created(in drivers.Instance, cloudID string, sec int) drivers.Instance {
	in.CloudID, in.Created = cloudID, t0.Add(time.Duration(sec)*time.Second)
	return in
}

func kinds(actions []Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, string(a.Kind)+" "+actionKey(a))
	}
	return out
}

func TestPlan(t *testing.T) {
	s := func(id string) drivers.Spec { return drivers.Spec{ID: id, DC: "a", VNF: "v"} }
	cases := []struct {
		name     string
		desired  []drivers.Spec
		actual   []drivers.Instance
		registry []string
		orphans  map[string]time.Time
		surplus  map[string]time.Time // by Nova id
		want     []string
	}{
		{name: "empty", want: nil},
		{name: "launch what is missing", desired: []drivers.Spec{s("1"), s("2")},
			want: []string{"launch a/1", "launch a/2"}},
		{name: "adopt what exists (restart)", desired: []drivers.Spec{s("1"), s("2")},
			actual: []drivers.Instance{inst("a", "1", drivers.StateActive), inst("a", "2", drivers.StateBooting)},
			want:   []string{"adopt a/1", "adopt a/2"}},
		{name: "known and present: nothing", desired: []drivers.Spec{s("1")},
			actual: []drivers.Instance{inst("a", "1", drivers.StateActive)}, registry: []string{"a/1"}, want: nil},
		{name: "vanished is launched again", desired: []drivers.Spec{s("1")}, registry: []string{"a/1"},
			want: []string{"launch a/1"}},
		{name: "error is replaced", desired: []drivers.Spec{s("1")}, registry: []string{"a/1"},
			actual: []drivers.Instance{inst("a", "1", drivers.StateError)}, want: []string{"replace a/1"}},
		{name: "orphan starts its grace", actual: []drivers.Instance{inst("a", "9", drivers.StateActive)},
			want: []string{"wait a/9"}},
		{name: "orphan inside grace waits", actual: []drivers.Instance{inst("a", "9", drivers.StateActive)},
			orphans: map[string]time.Time{"a/9": t0.Add(-59 * time.Second)}, want: []string{"wait a/9"}},
		{name: "orphan after grace is deleted", actual: []drivers.Instance{inst("a", "9", drivers.StateError)},
			orphans: map[string]time.Time{"a/9": t0.Add(-time.Minute)}, want: []string{"delete a/9"}},
		{name: "same id in two DCs are two instances", desired: []drivers.Spec{s("1")},
			actual: []drivers.Instance{inst("a", "1", drivers.StateActive), inst("b", "1", drivers.StateActive)},
			want:   []string{"adopt a/1", "wait b/1"}},
		{name: "duplicate desired spec counted once", desired: []drivers.Spec{s("1"), s("1")}, want: []string{"launch a/1"}},
		{name: "duplicate servers: the newest is the instance (error: replaced)", desired: []drivers.Spec{s("1")},
			actual:   []drivers.Instance{created(inst("a", "1", drivers.StateError), "s2", 2), created(inst("a", "1", drivers.StateActive), "s1", 1)},
			registry: []string{"a/1"}, want: []string{"replace a/1"}},
		{name: "duplicate servers: the newest is the instance (booting: adopted)", desired: []drivers.Spec{s("1")},
			actual: []drivers.Instance{created(inst("a", "1", drivers.StateActive), "s1", 1), created(inst("a", "1", drivers.StateBooting), "s2", 2)},
			want:   []string{"adopt a/1"}},
		{name: "surplus server after grace is deleted", desired: []drivers.Spec{s("1")}, registry: []string{"a/1"},
			actual:  []drivers.Instance{created(inst("a", "1", drivers.StateActive), "s1", 1), created(inst("a", "1", drivers.StateActive), "s2", 2)},
			surplus: map[string]time.Time{"s1": t0.Add(-time.Minute)}, want: []string{"surplus a/1/s1"}},
		// Terminate deletes every server of an id: no surplus delete for an
		// id deleted or replaced in the same pass.
		{name: "no surplus delete for an orphan deleted in the pass",
			actual:  []drivers.Instance{created(inst("a", "9", drivers.StateActive), "s1", 1), created(inst("a", "9", drivers.StateActive), "s2", 2)},
			orphans: map[string]time.Time{"a/9": t0.Add(-time.Minute)}, surplus: map[string]time.Time{"s1": t0.Add(-time.Minute)},
			want: []string{"delete a/9"}},
		{name: "no surplus delete for an id replaced in the pass", desired: []drivers.Spec{s("1")}, registry: []string{"a/1"},
			actual:  []drivers.Instance{created(inst("a", "1", drivers.StateActive), "s1", 1), created(inst("a", "1", drivers.StateError), "s2", 2)},
			surplus: map[string]time.Time{"s1": t0.Add(-time.Minute)}, want: []string{"replace a/1"}},
		{name: "order: adopt, delete, replace, launch, wait",
			desired: []drivers.Spec{s("1"), s("2"), s("3")},
			actual: []drivers.Instance{inst("a", "1", drivers.StateActive), inst("a", "2", drivers.StateError),
				inst("a", "8", drivers.StateActive), inst("a", "9", drivers.StateActive)},
			orphans: map[string]time.Time{"a/9": t0.Add(-time.Hour)},
			want:    []string{"adopt a/1", "delete a/9", "replace a/2", "launch a/3", "wait a/8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := map[string]drivers.Instance{}
			for _, k := range tc.registry {
				reg[k] = drivers.Instance{}
			}
			got := kinds(Plan(tc.desired, tc.actual, reg, tc.orphans, tc.surplus, t0, time.Minute))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Plan = %q, want %q", got, tc.want)
			}
		})
	}
}

// Invariants of Plan over random inputs: a desired instance is never
// deleted; every desired instance that is missing is launched, every one in
// ERROR replaced; an orphan is deleted only once its grace has passed; each
// instance gets at most one action.
func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ids := rapid.SliceOfDistinct(rapid.StringMatching(`[ab]/[0-9]`), rapid.ID[string]).Draw(rt, "ids")
		var desired []drivers.Spec
		var actual []drivers.Instance
		reg := map[string]drivers.Instance{}
		orphans := map[string]time.Time{}
		states := []drivers.State{drivers.StateActive, drivers.StateBooting, drivers.StateError}
		for _, k := range ids {
			dc, id := k[:1], k[2:]
			if rapid.Bool().Draw(rt, "desired "+k) {
				desired = append(desired, drivers.Spec{ID: id, DC: dc, VNF: "v"})
			}
			if rapid.Bool().Draw(rt, "exists "+k) {
				actual = append(actual, inst(dc, id, rapid.SampledFrom(states).Draw(rt, "state "+k)))
			}
			if rapid.Bool().Draw(rt, "known "+k) {
				reg[k] = drivers.Instance{}
			}
			if rapid.Bool().Draw(rt, "orphan clock "+k) {
				orphans[k] = t0.Add(-time.Duration(rapid.IntRange(0, 120).Draw(rt, "age "+k)) * time.Second)
			}
		}
		plan := Plan(desired, actual, reg, orphans, nil, t0, time.Minute)
		want := map[string]bool{}
		for _, s := range desired {
			want[key(s.DC, s.ID)] = true
		}
		have := map[string]drivers.Instance{}
		for _, in := range actual {
			have[key(in.DC, in.ID)] = in
		}
		seen := map[string]bool{}
		for _, a := range plan {
			k := actionKey(a)
			if seen[k] {
				rt.Fatalf("two actions for %s: %v", k, kinds(plan))
			}
			seen[k] = true
			switch a.Kind {
			case ActDelete:
				if want[k] {
					rt.Fatalf("desired %s deleted", k)
				}
				if since, ok := orphans[k]; !ok || t0.Sub(since) < time.Minute {
					rt.Fatalf("%s deleted inside its grace", k)
				}
			case ActLaunch:
				if _, ok := have[k]; ok || !want[k] {
					rt.Fatalf("launch of %s that exists or is not desired", k)
				}
			case ActReplace:
				if have[k].State != drivers.StateError {
					rt.Fatalf("replace of healthy %s", k)
				}
			}
		}
		for k := range want {
			if _, ok := have[k]; !ok && !seen[k] {
				rt.Fatalf("missing %s not launched", k)
			}
			if in, ok := have[k]; ok && in.State == drivers.StateError && !seen[k] {
				rt.Fatalf("%s in ERROR not replaced", k)
			}
		}
	})
}

// memCloud is an in-memory Cloud: launches succeed unless a quota is hit or
// an error is scripted for an id.
type memCloud struct {
	mu        sync.Mutex
	calls     []string // "new a/x" or "active a/x", in call order
	hardNow   int      // LaunchActive calls of hard pools in progress
	hardMax   int
	servers   map[string]drivers.Instance
	quota     int // max servers, 0 = unlimited
	fail      map[string]error
	launches  []string
	terminate []string
	listErr   error
}

func newMemCloud() *memCloud {
	return &memCloud{servers: map[string]drivers.Instance{}, fail: map[string]error{}}
}

func (m *memCloud) List(_ context.Context, dc string) ([]drivers.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listErr != nil {
		return nil, m.listErr
	}
	var out []drivers.Instance
	for _, k := range sortedKeys(m.servers) {
		if dc == "" || m.servers[k].DC == dc {
			out = append(out, m.servers[k])
		}
	}
	return out, nil
}

func (m *memCloud) LaunchActive(_ context.Context, s drivers.Spec) (drivers.Instance, error) {
	m.mu.Lock()
	m.calls = append(m.calls, "active "+key(s.DC, s.ID))
	if m.Sequential(s) {
		m.hardNow++
		m.hardMax = max(m.hardMax, m.hardNow)
		m.mu.Unlock()
		runtime.Gosched() // give a parallel launch of the same pool the chance to overlap
		m.mu.Lock()
		m.hardNow--
	}
	m.mu.Unlock()
	return m.create(s)
}

func (m *memCloud) create(s drivers.Spec) (drivers.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(s.DC, s.ID)
	if in, ok := m.servers[k]; ok { // idempotent on the id, like the driver
		return in, nil
	}
	m.launches = append(m.launches, k)
	if err := m.fail[k]; err != nil {
		return drivers.Instance{}, err
	}
	if m.quota > 0 && len(m.servers) >= m.quota {
		return drivers.Instance{}, fmt.Errorf("create %s: %w", s.ID, drivers.ErrQuota)
	}
	in := drivers.Instance{ID: s.ID, DC: s.DC, VNF: s.VNF, State: drivers.StateActive, CloudID: fmt.Sprintf("uuid-%d", len(m.launches))}
	m.servers[k] = in
	return in, nil
}

func (m *memCloud) LaunchNew(ctx context.Context, s drivers.Spec) (drivers.Instance, error) {
	m.mu.Lock()
	m.calls = append(m.calls, "new "+key(s.DC, s.ID))
	_, exists := m.servers[key(s.DC, s.ID)]
	m.mu.Unlock()
	if exists {
		return drivers.Instance{}, fmt.Errorf("LaunchNew of existing %s: the reconciler launched a server it had listed", s.ID)
	}
	return m.create(s)
}

func (m *memCloud) Sequential(s drivers.Spec) bool { return s.VNF == "hard" }

// DeleteSurplus: memCloud holds one server per id, none is surplus.
func (m *memCloud) DeleteSurplus(context.Context, string, string, string) (bool, error) {
	return false, errors.New("memCloud has no surplus servers")
}

func (m *memCloud) Terminate(_ context.Context, dc, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.terminate = append(m.terminate, key(dc, id))
	delete(m.servers, key(dc, id))
	return nil
}

func (m *memCloud) WaitGone(context.Context, string, string) error { return nil }
func (m *memCloud) ReissueDeletes(context.Context, string)         {}

type staticSet []drivers.Spec

func (s staticSet) Desired() []drivers.Spec { return s }

func specs(dc, vnf string, n int) staticSet {
	var out staticSet
	for i := range n {
		out = append(out, drivers.Spec{ID: fmt.Sprintf("%s.%d", vnf, i), DC: dc, VNF: vnf})
	}
	return out
}

func TestReconcilerQuotaGivesPartialFillAndRetriesLater(t *testing.T) {
	m := newMemCloud()
	m.servers["a/old.0"] = drivers.Instance{ID: "old.0", DC: "a", VNF: "old", State: drivers.StateActive, CloudID: "keep"}
	m.quota = 4
	desired := append(staticSet{{ID: "old.0", DC: "a", VNF: "old"}}, specs("a", "pcscf", 5)...)
	r := &Reconciler{Cloud: m, Desired: desired, Clock: clock.NewVirtual(t0), Grace: time.Minute, Parallelism: 1}
	rep, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Launched) != 3 || len(rep.Deferred) != 2 || len(rep.Failed) != 0 || rep.Complete() {
		t.Fatalf("launched %v deferred %v failed %v", rep.Launched, rep.Deferred, rep.Failed)
	}
	if !slices.Equal(rep.Adopted, []string{"a/old.0"}) || len(m.terminate) != 0 {
		t.Fatalf("adopted %v, terminated %v: a healthy server was touched", rep.Adopted, m.terminate)
	}
	m.quota = 0 // quota raised
	rep, err = r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Launched) != 2 || !rep.Complete() || len(m.servers) != 6 {
		t.Fatalf("second pass: launched %v, %d servers", rep.Launched, len(m.servers))
	}
	if len(r.Registry()) != 6 {
		t.Errorf("registry holds %d, want 6", len(r.Registry()))
	}
}

func TestReconcilerCreatesAllThenWaitsAndWalksHardPoolsOneByOne(t *testing.T) {
	m := newMemCloud()
	desired := append(specs("a", "soft", 6), specs("a", "hard", 4)...)
	r := &Reconciler{Cloud: m, Desired: desired, Clock: clock.NewVirtual(t0), Grace: time.Minute, Parallelism: 8}
	rep, err := r.Reconcile(context.Background())
	if err != nil || len(rep.Launched) != 10 {
		t.Fatalf("launched %v, err %v", rep.Launched, err)
	}
	lastNew, firstActive := -1, len(m.calls)
	for i, c := range m.calls {
		switch {
		case strings.HasPrefix(c, "new a/soft"):
			lastNew = i
		case strings.HasPrefix(c, "active a/soft") && i < firstActive:
			firstActive = i
		case strings.HasPrefix(c, "new a/hard"):
			t.Errorf("hard pool member created without waiting: %s", c)
		}
	}
	if lastNew > firstActive {
		t.Errorf("a soft wait started before every soft create was sent: %v", m.calls)
	}
	if m.hardMax != 1 {
		t.Errorf("%d launches of the hard pool overlapped", m.hardMax)
	}
}

func TestReconcilerFailuresAreIndependent(t *testing.T) {
	m := newMemCloud()
	m.fail["a/pcscf.1"] = fmt.Errorf("x: %w", drivers.ErrCapacity)
	m.fail["a/pcscf.2"] = fmt.Errorf("x: %w", drivers.ErrInvalid)
	r := &Reconciler{Cloud: m, Desired: specs("a", "pcscf", 4), Clock: clock.NewVirtual(t0), Grace: time.Minute, Parallelism: 3}
	rep, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Launched, []string{"a/pcscf.0", "a/pcscf.3"}) || len(rep.Failed) != 2 {
		t.Fatalf("launched %v failed %v", rep.Launched, rep.Failed)
	}
	if !errors.Is(rep.Failed["a/pcscf.1"], drivers.ErrCapacity) {
		t.Errorf("capacity error lost: %v", rep.Failed)
	}
}

func TestReconcilerRestartAdoptsWithoutDuplicates(t *testing.T) {
	m := newMemCloud()
	desired := append(specs("a", "pcscf", 3), specs("b", "scscf", 2)...)
	r1 := &Reconciler{Cloud: m, Desired: desired, Clock: clock.NewVirtual(t0), Grace: time.Minute, Parallelism: 4}
	if _, err := r1.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(m.launches)
	r2 := &Reconciler{Cloud: m, Desired: desired, Clock: clock.NewVirtual(t0), Grace: time.Minute, Parallelism: 4}
	rep, err := r2.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 5 || len(m.launches) != before || len(m.terminate) != 0 {
		t.Fatalf("restart: adopted %v, launches %d->%d, terminated %v", rep.Adopted, before, len(m.launches), m.terminate)
	}
	reg := r2.Registry()
	keys := sortedKeys(reg)
	sort.Strings(keys)
	if !slices.Equal(keys, []string{"a/pcscf.0", "a/pcscf.1", "a/pcscf.2", "b/scscf.0", "b/scscf.1"}) {
		t.Errorf("registry %v", keys)
	}
}

func TestReconcilerReplacesVanishedAndErrorAndDeletesOrphansAfterGrace(t *testing.T) {
	m := newMemCloud()
	clk := clock.NewVirtual(t0)
	desired := specs("a", "pcscf", 3)
	r := &Reconciler{Cloud: m, Desired: desired, Clock: clk, Grace: time.Minute, Parallelism: 2}
	if _, err := r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(m.servers, "a/pcscf.0") // vanished
	in := m.servers["a/pcscf.1"]
	in.State = drivers.StateError
	m.servers["a/pcscf.1"] = in
	m.servers["a/stray"] = drivers.Instance{ID: "stray", DC: "a", State: drivers.StateActive}
	rep, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Launched, []string{"a/pcscf.0"}) || !slices.Equal(rep.Replaced, []string{"a/pcscf.1"}) || len(rep.Deleted) != 0 {
		t.Fatalf("launched %v replaced %v deleted %v", rep.Launched, rep.Replaced, rep.Deleted)
	}
	if got := r.Registry()["a/pcscf.1"].State; got != drivers.StateActive {
		t.Errorf("registry after replace: %s", got)
	}
	clk.Advance(59 * time.Second)
	rep, _ = r.Reconcile(context.Background())
	if len(rep.Deleted) != 0 {
		t.Fatalf("orphan deleted after 59s of a 60s grace")
	}
	clk.Advance(time.Second)
	rep, _ = r.Reconcile(context.Background())
	if !slices.Equal(rep.Deleted, []string{"a/stray"}) {
		t.Fatalf("deleted %v, want the stray", rep.Deleted)
	}
	// an orphan that becomes desired again loses its grace clock
	m.servers["a/late"] = drivers.Instance{ID: "late", DC: "a", State: drivers.StateActive}
	r.Reconcile(context.Background())
	r.Desired = append(desired, drivers.Spec{ID: "late", DC: "a", VNF: "v"})
	rep, _ = r.Reconcile(context.Background())
	if !slices.Equal(rep.Adopted, []string{"a/late"}) {
		t.Fatalf("adopted %v", rep.Adopted)
	}
	r.Desired = desired
	clk.Advance(time.Hour)
	rep, _ = r.Reconcile(context.Background())
	if len(rep.Deleted) != 0 {
		t.Fatalf("grace clock survived re-adoption: deleted %v", rep.Deleted)
	}

	m.listErr = errors.New("API down")
	if _, err := r.Reconcile(context.Background()); err == nil {
		t.Fatal("a failed list must fail the pass, not look like everything vanished")
	}
}

// With Handover set (the daemon), a vanished or ERROR desired server goes
// to its owner instead of being launched here; orphans are still deleted
// after the grace; DCs keeps the reconciler off other datacenters' servers.
func TestReconcilerHandsOverAndStaysInItsDCs(t *testing.T) {
	m := newMemCloud()
	clk := clock.NewVirtual(t0)
	desired := specs("a", "pcscf", 3)
	var handed []string
	r := &Reconciler{Cloud: m, Desired: desired, Clock: clk, Grace: time.Minute, Parallelism: 2, DCs: []string{"a"},
		Handover: func(a Action) bool {
			handed = append(handed, string(a.Kind)+" "+actionKey(a))
			return a.Spec.ID != "pcscf.2" // the owner declines one (e.g. its launch is in flight)
		}}
	for _, s := range desired {
		m.create(s)
	}
	m.servers["b/other-node"] = drivers.Instance{ID: "other-node", DC: "b", State: drivers.StateActive}
	if rep, err := r.Reconcile(context.Background()); err != nil || len(rep.Adopted) != 3 {
		t.Fatalf("first pass: %+v %v", rep, err)
	}
	delete(m.servers, "a/pcscf.0")
	delete(m.servers, "a/pcscf.2")
	in := m.servers["a/pcscf.1"]
	in.State = drivers.StateError
	m.servers["a/pcscf.1"] = in
	m.servers["a/stray"] = drivers.Instance{ID: "stray", DC: "a", State: drivers.StateActive}
	rep, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"replace a/pcscf.1", "launch a/pcscf.0", "launch a/pcscf.2"}; !slices.Equal(handed, want) {
		t.Fatalf("handed %v, want %v", handed, want)
	}
	if !slices.Equal(rep.HandedOver, []string{"a/pcscf.0", "a/pcscf.1"}) || len(rep.Launched)+len(rep.Replaced) != 0 || len(m.launches) != 3 {
		t.Fatalf("handed over %v, launched %v, replaced %v, cloud launches %v", rep.HandedOver, rep.Launched, rep.Replaced, m.launches)
	}
	if len(m.terminate) != 0 {
		t.Fatalf("terminated %v: an ERROR server handed over is the owner's to terminate", m.terminate)
	}
	clk.Advance(time.Minute)
	rep, _ = r.Reconcile(context.Background())
	if !slices.Equal(rep.Deleted, []string{"a/stray"}) {
		t.Fatalf("deleted %v, want only a/stray (b is another node's DC)", rep.Deleted)
	}
	if _, ok := m.servers["b/other-node"]; !ok {
		t.Fatal("a server of a DC outside Reconciler.DCs was deleted")
	}
}

func TestRunRetriesSoonerAfterIncompletePass(t *testing.T) {
	m := newMemCloud()
	m.quota = 1
	clk := clock.NewVirtual(t0)
	r := &Reconciler{Cloud: m, Desired: specs("a", "v", 2), Clock: clk, Grace: time.Minute, Parallelism: 1, RetryBase: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	passes := make(chan time.Time, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		r.Run(ctx, time.Minute, nil, func(Report, error) {
			// Raise the quota inside the report callback: Run arms its next
			// timer only after this returns, so no Step of the test can fire
			// pass 3 before the quota changed (doing it on the test's side
			// raced with that Step: passes at [0s 1s 3s 7s] in CI).
			if n++; n == 2 {
				m.mu.Lock()
				m.quota = 0
				m.mu.Unlock()
			}
			passes <- clk.Now()
		})
	}()
	var at []time.Duration
	for len(at) < 4 {
		select {
		case p := <-passes:
			at = append(at, p.Sub(t0))
		default:
			clk.Step()
		}
	}
	cancel()
	<-done
	// pass 1 at 0 and pass 2 hit the quota: retried after 1s, then 2s more;
	// the quota is raised, pass 3 completes, so pass 4 waits the full interval
	want := []time.Duration{0, time.Second, 3 * time.Second, 63 * time.Second}
	if !slices.Equal(at, want) {
		t.Fatalf("passes at %v, want %v", at, want)
	}
}
