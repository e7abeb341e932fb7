package openstack

// The driver's backoff paths against a real Nova (scripts/ci-openstack.sh;
// skipped without IMS_ORCH_OS_CLOUD): a fault-injecting proxy on loopback
// (novafaulttest) between the driver and the real Nova API refuses chosen
// requests (409, 503, a quota 403, a policy 403) or loses Nova's answer
// after Nova did the work (the connection dropped, or held until the
// driver's request timeout). What happened is counted on Nova's side:
// the servers Nova lists for each instance id (none leaked, none doubled),
// their names (the mark), and the requests that reached Nova through the
// proxy.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/openstack/novafaulttest"
)

// skipClock is the wall clock, moved forward by skip: a delete backoff on
// the driver's clock ends at once, while Nova runs in real time. Between
// freeze and thaw its Now stands still (plus the skips), so a backoff
// begun meanwhile cannot run out in real time while the test lists Nova
// (lists of 4 to 22 s under CI load; the backoff is 10 s). Timers
// (AfterFunc: the retry waits) run in real time throughout.
type skipClock struct {
	off    atomic.Int64
	frozen atomic.Int64 // wall-clock Unix ns Now stands at; 0: running
}

func (c *skipClock) Now() time.Time {
	now := time.Now()
	if f := c.frozen.Load(); f != 0 {
		now = time.Unix(0, f)
	}
	return now.Add(time.Duration(c.off.Load()))
}
func (c *skipClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return time.AfterFunc(d, f)
}
func (c *skipClock) skip(d time.Duration) { c.off.Add(int64(d)) }
func (c *skipClock) freeze()              { c.frozen.Store(time.Now().UnixNano()) }

// thaw lets Now run again from the wall clock (which is later than the
// frozen instant).
func (c *skipClock) thaw() { c.frozen.Store(0) }

// faultRig is a driver whose compute requests go through a fault proxy to
// the real Nova, and a driver on the direct clients, for Nova's own view.
type faultRig struct {
	t      *testing.T
	d      *Driver // through the proxy
	direct *Driver // Nova's view (and the clean-up)
	proxy  *novafaulttest.Proxy
	clk    *skipClock
	run    string // suffix of this test's instance ids
}

func newFaultRig(t *testing.T) *faultRig {
	cfg := integrationConfig(t)
	cfg.Retries = 3
	cfg.RetryBase = Duration(200 * time.Millisecond)
	// a held answer is lost when the driver's request times out
	cfg.RequestTimeout = Duration(10 * time.Second)
	direct := directTB(t, cfg)
	proxy, err := novafaulttest.Start(direct.clients["dc-a"].Compute.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	// DCs sharing a compute client share its proxied copy (one list)
	proxied := map[*gophercloud.ServiceClient]*gophercloud.ServiceClient{}
	clients := map[string]Clients{}
	for dc, c := range direct.clients {
		pc, ok := proxied[c.Compute]
		if !ok {
			cp := *c.Compute
			if cp.Endpoint, err = proxy.Via(c.Compute.Endpoint); err != nil {
				t.Fatal(err)
			}
			if cp.ResourceBase != "" {
				if cp.ResourceBase, err = proxy.Via(c.Compute.ResourceBase); err != nil {
					t.Fatal(err)
				}
			}
			pc = &cp
			proxied[c.Compute] = pc
		}
		clients[dc] = Clients{Compute: pc, Image: c.Image}
	}
	clk := &skipClock{}
	d, err := New(cfg, clients, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &faultRig{t: t, d: d, direct: direct, proxy: proxy, clk: clk, run: fmt.Sprint(time.Now().Unix() % 1000000)}
}

// directTB is a driver on the direct clients of cfg, for Nova's own view
// and the clean-up: at t's end it deletes the run's servers (sweep) and
// the empty server groups.
func directTB(t *testing.T, cfg Config) *Driver {
	t.Helper()
	direct := connectTB(t, cfg)
	t.Cleanup(func() {
		sweep(t, direct)
		if _, err := direct.DeleteEmptyGroups(context.Background(), sortedKeys(direct.clients)); err != nil {
			t.Errorf("clean-up of the server groups: %v", err)
		}
		direct.Close()
	})
	return direct
}

func (r *faultRig) spec(name string) drivers.Spec {
	return drivers.Spec{ID: "flt-" + name + "-" + r.run, DC: "dc-a", VNF: "flt", Pool: "bench"}
}

// onNova is the servers of this run carrying instance id that Nova lists
// (deleting ones included), read past the proxy.
func (r *faultRig) onNova(id string) []servers.Server {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := taggedServers(ctx, r.direct.clients["dc-a"].Compute)
	if err != nil {
		r.t.Fatalf("list Nova's servers: %v", err)
	}
	var out []servers.Server
	for _, s := range all {
		if sweepScope(r.direct).Has(s) && s.Metadata[drivers.MetaID] == id {
			out = append(out, s)
		}
	}
	return out
}

// one is the single server Nova lists for id: fails when there is none
// (lost) or several (doubled).
func (r *faultRig) one(id, what string) servers.Server {
	r.t.Helper()
	l := r.onNova(id)
	if len(l) != 1 {
		r.t.Fatalf("%s: Nova lists %d servers of %s (%s), want exactly 1", what, len(l), id, describe(l))
	}
	return l[0]
}

// goneFromNova waits until Nova lists no server of id (WaitGone of the
// direct driver: deleting ones included), and fails if one is listed
// not deleting meanwhile without a DELETE in flight (a leak).
func (r *faultRig) goneFromNova(id, what string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.direct.WaitGone(ctx, "dc-a", id); err != nil {
		r.t.Fatalf("%s: %v; Nova lists %s", what, err, describe(r.onNova(id)))
	}
	if l := r.onNova(id); len(l) != 0 {
		r.t.Fatalf("%s: Nova still lists %s", what, describe(l))
	}
}

func describe(l []servers.Server) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = fmt.Sprintf("%s %q %s/%s", s.ID, s.Name, s.Status, s.TaskState)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var (
	createPath = regexp.MustCompile(`/servers$`)
	listPath   = regexp.MustCompile(`/servers/detail$`)
)

func deletePath(cloudID string) *regexp.Regexp {
	return regexp.MustCompile(`/servers/` + regexp.QuoteMeta(cloudID) + `$`)
}

func body(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// step runs fn with the rules in place and reports the requests of
// method+path that reached Nova meanwhile and how many the rules failed.
func (r *faultRig) step(name string, method string, path *regexp.Regexp, rules []novafaulttest.Rule, fn func() error) (fwd, fired int, err error) {
	r.t.Helper()
	before := r.proxy.Forwarded(method, path)
	for _, rl := range rules {
		r.proxy.Fail(rl)
	}
	t0 := time.Now()
	err = fn()
	fired = r.proxy.Fired()
	r.proxy.Clear()
	fwd = r.proxy.Forwarded(method, path) - before
	r.t.Logf("%-40s %6.2f s: err %v; %s reached Nova %d times, rules failed %d requests", name, time.Since(t0).Seconds(), err, method, fwd, fired)
	return fwd, fired, err
}

func TestIntegrationFaults(t *testing.T) {
	r := newFaultRig(t)
	ctx := context.Background()
	d := r.d

	// ---- Launch: a refused list and create (503, 409) are retried; Nova
	// never saw them, so it has exactly one server
	s1 := r.spec("refused")
	fwd, fired, err := r.step("Launch: list 503, create 503 then 409", "POST", createPath, []novafaulttest.Rule{
		{Method: "GET", Path: listPath, Times: 1, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")},
		{Method: "POST", Path: createPath, Times: 1, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")},
		{Method: "POST", Path: createPath, Times: 1, Action: novafaulttest.Refuse, Status: 409, Body: body(t, "conflict_409.json")},
	}, func() error { _, err := d.LaunchActive(ctx, s1); return err })
	if err != nil || fwd != 1 || fired != 3 {
		t.Fatalf("Launch through refusals: %v, %d creates reached Nova, %d refused; want success, 1, 3", err, fwd, fired)
	}
	r.one(s1.ID, "after refused creates")

	// ---- Launch: Nova created the server, the answer was lost (the
	// connection dropped; held until the request timed out): the retry's
	// look-up finds it, no second create
	for _, c := range []struct {
		name   string
		action novafaulttest.Action
	}{{"dropped", novafaulttest.Drop}, {"timedout", novafaulttest.Hold}} {
		s := r.spec(c.name)
		fwd, fired, err := r.step("Launch: create answer "+c.name, "POST", createPath, []novafaulttest.Rule{
			{Method: "POST", Path: createPath, Times: 1, Action: c.action},
		}, func() error { _, err := d.LaunchActive(ctx, s); return err })
		if err != nil || fwd != 1 || fired != 1 {
			t.Fatalf("Launch with the create's answer %s: %v, %d creates reached Nova, %d failed; want success, 1, 1", c.name, err, fwd, fired)
		}
		r.one(s.ID, "create answer "+c.name)
	}

	// ---- a quota refusal: ErrQuota, not retried, nothing created; the
	// flavor counts 0 until a server of the DC is terminated
	sq := r.spec("quota")
	fwd, fired, err = r.step("Launch: create 403 quota", "POST", createPath, []novafaulttest.Rule{
		{Method: "POST", Path: createPath, Action: novafaulttest.Refuse, Status: 403, Body: body(t, "quota_exceeded_403.json")},
	}, func() error { _, err := d.Launch(ctx, sq); return err })
	if !errors.Is(err, drivers.ErrQuota) || fwd != 0 || fired != 1 {
		t.Fatalf("Launch refused for quota: %v, %d creates reached Nova, %d refused; want ErrQuota, 0, 1 (not retried)", err, fwd, fired)
	}
	if l := r.onNova(sq.ID); len(l) != 0 {
		t.Fatalf("a quota refusal left %s", describe(l))
	}
	quotaLeft := func() int {
		t.Helper()
		n, err := d.QuotaLeft(ctx, "dc-a", []drivers.Spec{sq})
		if err != nil {
			t.Fatal(err)
		}
		return n[0]
	}
	if n := quotaLeft(); n != 0 {
		t.Fatalf("quota left after the refusal: %d, want 0", n)
	}

	// ---- Terminate: DELETE refused 503 twice (retried), then its answer
	// dropped, then held to the timeout: Nova deleted each once
	for _, c := range []struct {
		name  string
		spec  drivers.Spec
		fired int // requests the rules failed
		rules func(cloudID string) []novafaulttest.Rule
	}{
		{"503 twice", s1, 2, func(id string) []novafaulttest.Rule {
			return []novafaulttest.Rule{{Method: "DELETE", Path: deletePath(id), Times: 2, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")}}
		}},
		{"answer dropped", r.spec("dropped"), 1, func(id string) []novafaulttest.Rule {
			return []novafaulttest.Rule{{Method: "DELETE", Path: deletePath(id), Times: 1, Action: novafaulttest.Drop}}
		}},
		{"answer timed out", r.spec("timedout"), 1, func(id string) []novafaulttest.Rule {
			return []novafaulttest.Rule{{Method: "DELETE", Path: deletePath(id), Times: 1, Action: novafaulttest.Hold}}
		}},
	} {
		sv := r.one(c.spec.ID, "before Terminate ("+c.name+")")
		fwd, fired, err := r.step("Terminate: DELETE "+c.name, "DELETE", deletePath(sv.ID), c.rules(sv.ID),
			func() error { return d.Terminate(ctx, "dc-a", c.spec.ID) })
		if err != nil || fwd != 1 || fired != c.fired {
			t.Fatalf("Terminate, DELETE %s: %v, %d DELETEs reached Nova, %d failed; want success, 1, %d", c.name, err, fwd, fired, c.fired)
		}
		r.goneFromNova(c.spec.ID, "Terminate, DELETE "+c.name)
	}
	if n := quotaLeft(); n == 0 {
		t.Fatalf("quota left after Terminates: %d, want the project's (unlimited here, %d): the hit cleared", n, drivers.Unlimited)
	}

	// ---- a DELETE refused by policy (403): the server is not deleted,
	// its name back (unmarked), listed again; the next Terminate inside
	// the backoff sends nothing; after the backoff it deletes it
	sp, svp, policy, fwd, fired, err := r.refusedTerminate("policy", 403, "forbidden_403.json")
	if err == nil || errors.Is(err, drivers.ErrBackoff) || fwd != 0 || fired != 1 {
		t.Fatalf("Terminate refused 403: %v, %d DELETEs reached Nova, %d refused; want an error, 0, 1 (not retried)", err, fwd, fired)
	}
	if got := r.one(sp.ID, "after the refused Terminate"); got.Name != sp.ID || got.Status != "ACTIVE" || got.TaskState != "" {
		t.Fatalf("after a refused DELETE Nova lists %s, want it ACTIVE under its own name", describe([]servers.Server{got}))
	}
	if l, err := d.List(ctx, "dc-a"); err != nil || !hasID(l, sp.ID) {
		t.Fatalf("List after a refused DELETE: %v (%v), want %s shown", ids(l), err, sp.ID)
	}
	r.backoffThenDeleted(sp.ID, svp, policy, func() error { return d.Terminate(ctx, "dc-a", sp.ID) }, "Terminate")

	// ---- every DELETE of a Terminate answered 409 (retried, gave up):
	// one may have been taken, so the server stays hidden and marked; it
	// is not deleted again inside its backoff, and the Reconciler's pass
	// (List, ReissueDeletes) deletes it after
	sc, svc, conflict, fwd, fired, err := r.refusedTerminate("conflict", 409, "conflict_409.json")
	if err == nil || fwd != 0 || fired != d.cfg.Retries+1 {
		t.Fatalf("Terminate with every DELETE 409: %v, %d reached Nova, %d refused; want an error, 0, %d", err, fwd, fired, d.cfg.Retries+1)
	}
	if got := r.one(sc.ID, "after the Terminate gave up"); got.Name != terminatedName(sc.ID) || got.Status != "ACTIVE" {
		t.Fatalf("after a Terminate that gave up Nova lists %s, want it ACTIVE and marked", describe([]servers.Server{got}))
	}
	reconcile := func() error {
		l, err := d.List(ctx, "dc-a")
		if err != nil {
			return err
		}
		if hasID(l, sc.ID) {
			return fmt.Errorf("List shows %s, a server whose Terminate gave up", sc.ID)
		}
		before := d.Stats().ReissuedDeletes
		d.ReissueDeletes(ctx, "dc-a")
		if d.Stats().ReissuedDeletes == before {
			return errReissueHeld
		}
		return nil
	}
	r.backoffThenDeleted(sc.ID, svc, conflict, reconcile, "List + ReissueDeletes")
	if s := d.Stats(); s.DeleteBackoff != 0 {
		t.Errorf("servers still in their delete backoff at the end: %d", s.DeleteBackoff)
	}
	// nothing of the run left for the clean-up's sweep (every id's end was
	// checked above; this counts the run's servers, deleting ones too)
	if n, err := rawOurs(ctx, r.direct); err != nil || n != 0 {
		t.Errorf("Nova lists %d servers of the run at the end (%v), want 0", n, err)
	}
}

// refusedTerminate launches a server (name) and terminates it with every
// DELETE of it refused with status and the body of testdata file: the
// spec, the server's Nova id, the rule, and the step's counts. The
// driver's clock is frozen from just before the Terminate (the backoff's
// start) until backoffThenDeleted has checked inside the backoff.
func (r *faultRig) refusedTerminate(name string, status int, file string) (drivers.Spec, string, novafaulttest.Rule, int, int, error) {
	r.t.Helper()
	ctx := context.Background()
	sp := r.spec(name)
	if _, err := r.d.LaunchActive(ctx, sp); err != nil {
		r.t.Fatal(err)
	}
	id := r.one(sp.ID, "before the refused Terminate").ID
	rule := novafaulttest.Rule{Method: "DELETE", Path: deletePath(id), Action: novafaulttest.Refuse, Status: status, Body: body(r.t, file)}
	r.clk.freeze() // until backoffThenDeleted's check inside the backoff
	fwd, fired, err := r.step(fmt.Sprintf("Terminate: every DELETE %d", status), "DELETE", deletePath(id), []novafaulttest.Rule{rule},
		func() error { return r.d.Terminate(ctx, "dc-a", sp.ID) })
	return sp, id, rule, fwd, fired, err
}

// errReissueHeld: ReissueDeletes sent nothing (inside the backoff).
var errReissueHeld = errors.New("no delete re-issued")

// backoffThenDeleted: with rule still failing the server's DELETEs, call
// (a Terminate, or a reconcile pass) sends none inside the delete backoff
// (the rule fails nothing); with the rule gone and the backoff over (the
// driver's clock skipped past it), call deletes the server: one DELETE
// reaches Nova, and Nova lists no server of id.
func (r *faultRig) backoffThenDeleted(id, cloudID string, rule novafaulttest.Rule, call func() error, what string) {
	r.t.Helper()
	if n := r.d.Stats().DeleteBackoff; n != 1 {
		r.t.Fatalf("servers in their delete backoff: %d, want 1", n)
	}
	fwd, fired, err := r.step(what+" inside the backoff", "DELETE", deletePath(cloudID), []novafaulttest.Rule{rule}, call)
	if err == nil || fwd != 0 || fired != 0 {
		r.t.Fatalf("%s inside the backoff: %v, %d DELETEs reached Nova, %d refused; want an error and no DELETE sent", what, err, fwd, fired)
	}
	if !errors.Is(err, drivers.ErrBackoff) && !errors.Is(err, errReissueHeld) {
		r.t.Fatalf("%s inside the backoff: %v, want drivers.ErrBackoff", what, err)
	}
	r.clk.thaw()
	r.clk.skip(delBackoffBase + time.Second)
	fwd, _, err = r.step(what+" after the backoff", "DELETE", deletePath(cloudID), nil, call)
	if err != nil || fwd != 1 {
		r.t.Fatalf("%s after the backoff: %v, %d DELETEs reached Nova; want success, 1", what, err, fwd)
	}
	r.goneFromNova(id, what+" after the backoff")
}

func hasID(l []drivers.Instance, id string) bool {
	for _, in := range l {
		if in.ID == id {
			return true
		}
	}
	return false
}

func ids(l []drivers.Instance) []string {
	out := make([]string, len(l))
	for i, in := range l {
		out[i] = in.ID
	}
	return out
}

// The fault test's clock stands still while frozen (skips still move
// it): a backoff begun then cannot run out in real time before the
// test's check inside it; thawed, it runs from the wall clock again.
func TestSkipClockFreezes(t *testing.T) {
	var c skipClock
	c.freeze()
	at := c.Now()
	c.skip(delBackoffBase)
	if got := c.Now().Sub(at); got != delBackoffBase {
		t.Fatalf("frozen, skipped %s: moved %s", delBackoffBase, got)
	}
	c.thaw()
	if got := c.Now().Sub(at); got < delBackoffBase {
		t.Fatalf("thawed: %s after the frozen instant, want at least the skip %s", got, delBackoffBase)
	}
}
