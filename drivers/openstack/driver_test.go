package openstack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

var ctx = context.Background()

func spec(dc, id string) drivers.Spec {
	return drivers.Spec{ID: id, DC: dc, VNF: "pcscf"}
}

func TestLaunchRequestCarriesEverything(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	s := spec("dc-a", "dc-a.pcscf.0")
	s.Metadata = map[string]string{"owner": "test"}
	s.UserData = []byte("#cloud-config\n")
	in, err := d.Launch(ctx, s)
	th.AssertNoErr(t, err)
	th.AssertEquals(t, drivers.StateBooting, in.State)
	th.AssertEquals(t, "dc-a.pcscf.0", in.ID)
	th.AssertEquals(t, 1, len(f.createBodies))
	body := f.createBodies[0]
	srv := body["server"].(map[string]any)
	th.AssertEquals(t, "dc-a.pcscf.0", srv["name"])
	th.AssertEquals(t, imageID, srv["imageRef"]) // "tiny" resolved through the image service
	th.AssertEquals(t, flavorID, srv["flavorRef"])
	th.AssertEquals(t, "az-a", srv["availability_zone"])
	th.AssertEquals(t, "none", srv["networks"])
	th.AssertDeepEquals(t, []any{"ims-orch"}, srv["tags"])
	th.AssertEquals(t, base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")), srv["user_data"])
	md := srv["metadata"].(map[string]any)
	for k, v := range map[string]string{drivers.MetaManagedBy: "ims-orch", drivers.MetaDC: "dc-a", drivers.MetaVNF: "pcscf",
		drivers.MetaPool: "pcscf", drivers.MetaID: "dc-a.pcscf.0", "owner": "test"} {
		th.AssertEquals(t, v, md[k])
	}
	hints := body["os:scheduler_hints"].(map[string]any)
	th.AssertEquals(t, group1, hints["group"])
	g := f.groups[group1]
	th.AssertEquals(t, "ims-orch.dc-a.pcscf", g["name"])
	th.AssertEquals(t, "anti-affinity", g["policy"])
	th.AssertDeepEquals(t, map[string]any{"max_server_per_host": float64(2)}, g["rules"])
}

// Config.ServerMetadata goes on every server beside ours; a key the spec
// sets itself keeps the spec's value.
func TestLaunchCarriesTheServerMetadata(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.ServerMetadata = map[string]string{"deployment": "lab", "owner": "ops"}
	d, _ := newTestDriver(t, f, cfg)
	s := spec("dc-a", "dc-a.pcscf.0")
	s.Metadata = map[string]string{"owner": "test"}
	_, err := d.Launch(ctx, s)
	th.AssertNoErr(t, err)
	md := f.createBodies[0]["server"].(map[string]any)["metadata"].(map[string]any)
	th.AssertEquals(t, "lab", md["deployment"])
	th.AssertEquals(t, "test", md["owner"])
	th.AssertEquals(t, "dc-a.pcscf.0", md[drivers.MetaID])
}

func TestLaunchDCDefaultsKeyAndAgentUserData(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	s := drivers.Spec{ID: "b1", DC: "dc-b", VNF: "scscf", Pool: "soft"}
	_, err := d.Launch(ctx, s)
	th.AssertNoErr(t, err)
	srv := f.createBodies[0]["server"].(map[string]any)
	th.AssertEquals(t, "ops", srv["key_name"])
	th.AssertEquals(t, "az-b", srv["availability_zone"])
	ud, err := base64.StdEncoding.DecodeString(srv["user_data"].(string))
	th.AssertNoErr(t, err)
	// an S-CSCF's agent also reads its CP counters (issue 14)
	for _, want := range []string{`IMS_ORCH_CONTROLLER="10.0.0.1:7000"`, `IMS_ORCH_TOKEN="s3cret"`, `IMS_ORCH_INSTANCE_ID="b1"`,
		`IMS_ORCH_AGENT_ARGS="--kamailio-rpc 127.0.0.1:8090"`, `--log-format json $IMS_ORCH_AGENT_ARGS`} {
		if !strings.Contains(string(ud), want) {
			t.Errorf("user data lacks %s:\n%s", want, ud)
		}
	}
	g := f.groups[group1]
	th.AssertEquals(t, "ims-orch.dc-b.soft", g["name"])
	th.AssertEquals(t, "soft-anti-affinity", g["policy"])
	th.AssertDeepEquals(t, map[string]any{}, g["rules"])
}

func TestLaunchIsIdempotentOnID(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	first, err := d.Launch(ctx, spec("dc-a", "x1"))
	th.AssertNoErr(t, err)
	again, err := d.Launch(ctx, spec("dc-a", "x1"))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, first.CloudID, again.CloudID)
	th.AssertEquals(t, 1, f.creates)
	th.AssertEquals(t, 1, f.count())
	// the same id in another DC is another instance
	_, err = d.Launch(ctx, spec("dc-b", "x1"))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 2, f.count())
}

func TestConcurrentLaunchesOfOneIDMakeOneServer(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := d.Launch(ctx, spec("dc-a", "same"))
			if err != nil {
				t.Error(err)
			}
			ids[i] = in.CloudID
		}()
	}
	wg.Wait()
	th.AssertEquals(t, 1, f.creates)
	for _, id := range ids {
		th.AssertEquals(t, ids[0], id)
	}
	th.AssertEquals(t, 0, d.idLocks.size())
}

func TestLaunchRetriesTransientFailuresWithoutDuplicates(t *testing.T) {
	cases := []struct {
		name    string
		route   string
		faults  []fault
		creates int
	}{
		{"500 after nova created the server", "create", []fault{{status: 500, file: "internal_500.json", createAnyway: true}}, 1},
		{"answer lost after nova created the server", "create", []fault{{hijack: true, createAnyway: true}}, 1},
		{"503 twice then accepted", "create", []fault{{status: 503, file: "unavailable_503.json"}, {status: 503, file: "unavailable_503.json"}}, 3},
		{"connection reset before create", "create", []fault{{hijack: true}}, 2},
		{"409 conflict then accepted", "create", []fault{{status: 409, file: "conflict_409.json"}}, 2},
		{"look-up fails with 502 first", "list", []fault{{status: 502, file: "unavailable_503.json"}}, 1},
		{"group list fails with 500 first", "groups", []fault{{status: 500, file: "internal_500.json"}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNova(t)
			d, clk := newTestDriver(t, f, testConfig())
			f.inject(tc.route, tc.faults...)
			start := clk.Now()
			err := inVirtualTime(clk, func() error { _, err := d.Launch(ctx, spec("dc-a", "r1")); return err })
			th.AssertNoErr(t, err)
			th.AssertEquals(t, 1, f.count())
			th.AssertEquals(t, tc.creates, f.creates)
			// backoff 100ms, 200ms, ...: time moved by the waits, and only by them
			if n := len(tc.faults); clk.Now().Sub(start) != time.Duration(100*(1<<n-1))*time.Millisecond {
				t.Errorf("virtual time spent %s for %d retries", clk.Now().Sub(start), n)
			}
		})
	}
}

func TestLaunchErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name   string
		spec   drivers.Spec
		faults []fault
		want   error
		msg    string
	}{
		{"quota 403", spec("dc-a", "q1"), []fault{{status: 403, file: "quota_exceeded_403.json"}}, drivers.ErrQuota, "Quota exceeded for instances"},
		{"quota 413", spec("dc-a", "q2"), []fault{{status: 413, file: "quota_exceeded_413.json"}}, drivers.ErrQuota, "cores"},
		{"bad image 400", spec("dc-a", "i1"), []fault{{status: 400, file: "bad_image_400.json"}}, drivers.ErrInvalid, "Can not find requested image"},
		{"bad flavor 400", spec("dc-a", "i2"), []fault{{status: 400, file: "bad_flavor_400.json"}}, drivers.ErrInvalid, "Flavor 99"},
		{"5xx beyond the retry budget", spec("dc-a", "t1"), []fault{{status: 500, file: "internal_500.json"}, {status: 500, file: "internal_500.json"},
			{status: 500, file: "internal_500.json"}, {status: 500, file: "internal_500.json"}}, errTransient, "gave up after 3 retries"},
		{"unknown image name", drivers.Spec{ID: "u1", DC: "dc-a", VNF: "v", Image: "nope"}, nil, drivers.ErrInvalid, `image "nope": invalid instance spec: no such image`},
		{"ambiguous image name", drivers.Spec{ID: "u2", DC: "dc-a", VNF: "v", Image: "twin"}, nil, drivers.ErrInvalid, "2 images have this name"},
		{"unknown flavor", drivers.Spec{ID: "u3", DC: "dc-a", VNF: "v", Flavor: "m9.huge"}, nil, drivers.ErrInvalid, `flavor "m9.huge"`},
		{"bad instance id", spec("dc-a", "a b"), nil, drivers.ErrInvalid, "spec.ID"},
		{"empty VNF", drivers.Spec{ID: "v1", DC: "dc-a"}, nil, drivers.ErrInvalid, "spec.VNF"},
		{"unknown DC", spec("dc-z", "z1"), nil, drivers.ErrInvalid, `datacenter "dc-z"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNova(t)
			d, clk := newTestDriver(t, f, testConfig())
			f.inject("create", tc.faults...)
			err := inVirtualTime(clk, func() error { _, err := d.Launch(ctx, tc.spec); return err })
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
			th.AssertEquals(t, 0, f.count())
		})
	}
}

func TestLaunchActiveNoValidHostIsCapacityNotRetried(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	f.errorNames["c1"] = []string{"No valid host was found. There are not enough hosts available."}
	_, err := inVirtualTime(clk, func() ret { in, err := d.LaunchActive(ctx, spec("dc-a", "c1")); return ret{in, err} }).unpack()
	if !errors.Is(err, drivers.ErrCapacity) {
		t.Fatalf("err = %v, want ErrCapacity", err)
	}
	th.AssertEquals(t, 1, f.creates)
	th.AssertEquals(t, 0, f.count()) // the ERROR server was deleted, not leaked
}

type ret struct {
	in  drivers.Instance
	err error
}

func (r ret) unpack() (drivers.Instance, error) { return r.in, r.err }

func TestLaunchActiveRebuildsFailedServer(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	f.errorNames["e1"] = []string{"Build of instance aborted: disk full"}
	in, err := inVirtualTime(clk, func() ret { in, err := d.LaunchActive(ctx, spec("dc-a", "e1")); return ret{in, err} }).unpack()
	th.AssertNoErr(t, err)
	th.AssertEquals(t, drivers.StateActive, in.State)
	th.AssertEquals(t, 2, f.creates)
	th.AssertEquals(t, 1, f.count())
	if in.Address == "" || in.Host == "" {
		t.Errorf("active instance without address/host: %+v", in)
	}
}

func TestLaunchActiveGivesUpAfterRebuildBudget(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.Rebuilds = 2
	d, clk := newTestDriver(t, f, cfg)
	f.errorNames["e2"] = []string{"boom", "boom", "boom", "never reached"}
	_, err := inVirtualTime(clk, func() ret { in, err := d.LaunchActive(ctx, spec("dc-a", "e2")); return ret{in, err} }).unpack()
	if !errors.Is(err, errBuildFailed) || !strings.Contains(err.Error(), "gave up after 2 rebuilds") {
		t.Fatalf("err = %v", err)
	}
	th.AssertEquals(t, 3, f.creates)
	th.AssertEquals(t, 0, f.count())
}

func TestLaunchActiveQuotaDeletesNothing(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	f.addServer("healthy", "ACTIVE", ours("dc-a", "healthy"), Tag)
	f.inject("create", fault{status: 403, file: "quota_exceeded_403.json"})
	_, err := inVirtualTime(clk, func() ret { in, err := d.LaunchActive(ctx, spec("dc-a", "q3")); return ret{in, err} }).unpack()
	if !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("err = %v", err)
	}
	th.AssertEquals(t, 0, f.deletes)
	th.AssertEquals(t, 1, f.count())
}

func TestWaitActiveIsBoundedInVirtualTime(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.ActiveTimeout = Duration(time.Minute)
	d, clk := newTestDriver(t, f, cfg)
	f.bootReads = 1 << 30 // stays in BUILD
	_, err := d.Launch(ctx, spec("dc-a", "slow"))
	th.AssertNoErr(t, err)
	start := clk.Now()
	_, err = inVirtualTime(clk, func() ret { in, err := d.WaitActive(ctx, "dc-a", "slow"); return ret{in, err} }).unpack()
	if !errors.Is(err, errTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	waited := clk.Now().Sub(start)
	if waited > time.Minute || waited < time.Minute-pollMax {
		t.Errorf("waited %s of virtual time, want just under the 1m timeout", waited)
	}
	// 250ms ×1.5 up to 1s: about 60 polls in a minute, not thousands
	if f.lists > 65 {
		t.Errorf("%d lists in one minute: backoff not applied", f.lists)
	}
}

func TestWaitActiveServerDeletedWhileBooting(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	f.bootReads = 5
	in, err := d.Launch(ctx, spec("dc-a", "del"))
	th.AssertNoErr(t, err)
	f.mu.Lock()
	delete(f.servers, in.CloudID)
	f.mu.Unlock()
	_, err = inVirtualTime(clk, func() ret { in, err := d.WaitActive(ctx, "dc-a", in.ID); return ret{in, err} }).unpack()
	if !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentWaitsShareLists(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.Pools = map[string]AntiAffinity{"pcscf": {Soft: true}}
	d, clk := newTestDriver(t, f, cfg)
	f.bootReads = 6 // each server stays in BUILD for 6 lists
	const n = 20
	errs := inVirtualTime(clk, func() []error {
		var wg sync.WaitGroup
		out := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, out[i] = d.LaunchActive(ctx, spec("dc-a", fmt.Sprintf("w%02d", i)))
			}()
		}
		wg.Wait()
		return out
	})
	for _, err := range errs {
		th.AssertNoErr(t, err)
	}
	th.AssertEquals(t, n, f.count())
	th.AssertEquals(t, n, f.creates)
	// one look-up and ~6 polls each would be 140 requests; shared lists are far fewer
	if f.lists+f.gets > 3*n {
		t.Errorf("%d lists and %d GETs for %d concurrent launches: look-ups and waits are not shared", f.lists, f.gets, n)
	}
}

func TestHardGroupLaunchesOneAtATime(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig()) // pcscf: anti-affinity, max 2 per host
	f.bootReads = 3
	errs := inVirtualTime(clk, func() []error {
		var wg sync.WaitGroup
		out := make([]error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, out[i] = d.LaunchActive(ctx, spec("dc-a", fmt.Sprintf("h%d", i)))
			}()
		}
		wg.Wait()
		return out
	})
	for _, err := range errs {
		th.AssertNoErr(t, err)
	}
	if f.maxBuildingInGroup != 0 {
		t.Errorf("a create into the hard group found %d members still in BUILD", f.maxBuildingInGroup)
	}
}

func TestTerminate(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	f.addServer("t1", "ACTIVE", ours("dc-a", "t1"), Tag)
	f.addServer("t1", "ACTIVE", map[string]string{"ims-orch.instance-id": "t1"}) // not ours: same name, no tag
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "t1"))
	th.AssertEquals(t, 1, f.deletes)
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.WaitGone(ctx, "dc-a", "t1") }))
	th.AssertEquals(t, 1, f.count()) // the foreign server is untouched
	// already gone: not an error, no DELETE sent
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "t1"))
	th.AssertEquals(t, 1, f.deletes)
	// a 404 race between look-up and delete is not an error either
	f.addServer("t2", "ACTIVE", ours("dc-a", "t2"), Tag)
	f.inject("delete", fault{status: 404, file: "not_found_404.json"})
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "t2"))
	// 409 while busy is retried
	f.inject("delete", fault{status: 409, file: "conflict_409.json"})
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "t2") }))
}

func TestListReturnsOursOnly(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	f.addServer("a1", "ACTIVE", ours("dc-a", "a1"), Tag)
	f.addServer("a2", "BUILD", ours("dc-a", "a2"), Tag)
	f.addServer("a3", "ERROR", ours("dc-a", "a3"), Tag)
	f.addServer("b1", "SHUTOFF", ours("dc-b", "b1"), Tag)
	f.addServer("web", "ACTIVE", map[string]string{}, "other")                // someone else's
	f.addServer("x", "ACTIVE", map[string]string{"ims-orch.dc": "dc-a"}, Tag) // tagged, not marked managed
	f.addServer("z1", "ACTIVE", ours("dc-z", "z1"), Tag)                      // a DC we do not manage
	f.mu.Lock()
	f.servers[f.addServerLocked("a4", ours("dc-a", "a4"))].Task = "deleting"
	f.mu.Unlock()

	all, err := d.List(ctx, "")
	th.AssertNoErr(t, err)
	got := map[string]drivers.State{}
	for _, in := range all {
		got[in.DC+"/"+in.ID] = in.State
	}
	th.AssertDeepEquals(t, map[string]drivers.State{"dc-a/a1": drivers.StateActive, "dc-a/a2": drivers.StateBooting,
		"dc-a/a3": drivers.StateError, "dc-b/b1": drivers.StateError}, got)
	th.AssertEquals(t, 1, f.lists) // both DCs are AZs of one cloud: one list call

	onlyB, err := d.List(ctx, "dc-b")
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 1, len(onlyB))
	_, err = d.List(ctx, "dc-z")
	if !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("List(dc-z) err = %v", err)
	}
	// an API outage: retried (Retries = 3), then reported, never an empty list
	f.inject("list", fault{status: 500, file: "internal_500.json"}, fault{status: 500, file: "internal_500.json"},
		fault{status: 500, file: "internal_500.json"}, fault{status: 500, file: "internal_500.json"})
	clk := d.clk.(interface{ Step() bool })
	done := make(chan error, 1)
	go func() { _, err := d.List(ctx, ""); done <- err }()
	for {
		select {
		case err = <-done:
			if !errors.Is(err, errTransient) {
				t.Fatalf("List during an outage: err = %v", err)
			}
			return
		default:
			if !clk.Step() {
				runtime.Gosched()
			}
		}
	}
}

func (f *fakeNova) addServerLocked(name string, md map[string]string) string {
	f.seq++
	s := &fakeServer{ID: "00000000-0000-0000-0000-00000000ffff", Name: name, Status: "ACTIVE", Metadata: md,
		Tags: []string{Tag}, endStatus: "ACTIVE", deletePolls: 1 << 20}
	f.servers[s.ID] = s
	return s.ID
}

func TestConcurrentLaunchesMakeOneGroup(t *testing.T) {
	f := newFakeNova(t)
	d, _ := newTestDriver(t, f, testConfig())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Launch(ctx, spec("dc-a", "g"+string(rune('0'+i)))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	th.AssertEquals(t, 1, f.groupCreates)
	th.AssertEquals(t, 8, len(f.members(group1)))

	// a restarted driver finds the group by name instead of making another
	d2, _ := newTestDriver(t, f, testConfig())
	_, err := d2.Launch(ctx, spec("dc-a", "g9"))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 1, f.groupCreates)
	th.AssertNoErr(t, d2.DeleteGroups(ctx)) // live members: kept
	th.AssertEquals(t, 1, len(f.groups))

	// all members deleted (Nova still names them as members): the group goes
	for i := range 10 {
		id := "g" + string(rune('0'+i))
		th.AssertNoErr(t, d2.Terminate(ctx, "dc-a", id))
	}
	th.AssertNoErr(t, inVirtualTime(d2.clk.(*clock.Virtual), func() error { return d2.WaitGone(ctx, "dc-a", "g9") }))
	th.AssertEquals(t, 0, f.count())
	th.AssertNoErr(t, d2.DeleteGroups(ctx))
	th.AssertEquals(t, 0, len(f.groups))
}

// Several live servers with one instance id (here a server a Terminate
// deleted whose mark Nova lost, listed ACTIVE again beside the relaunch of
// its id, seen by a restarted driver without its tombstone): the newest is
// the instance. Launch adopts it instead of the older phantom, and List
// counts the other as a duplicate. Terminate of the id deletes both (nova
// review L2: it deleted the newest only, the id stayed listed with the
// older, and the WaitGone after it — LaunchActive's rebuild, the
// reconciler's replace — ran out its ActiveTimeout).
func TestSeveralServersWithOneIDTheNewestIsTheInstance(t *testing.T) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	quiet(d)
	phantom := f.addServer("n1", "ACTIVE", ours("dc-a", "n1"), Tag)
	relaunch := f.addServer("n1", "BUILD", ours("dc-a", "n1"), Tag)
	in, err := d.Launch(ctx, spec("dc-a", "n1"))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 0, f.creates)
	if in.CloudID != relaunch {
		t.Fatalf("Launch of n1 took %s, want the newest server %s (not %s)", in.CloudID, relaunch, phantom)
	}
	_, err = d.List(ctx, "")
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 1, d.Stats().Duplicates)
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "n1"))
	f.mu.Lock()
	tasks := []string{f.servers[relaunch].Task, f.servers[phantom].Task}
	f.mu.Unlock()
	th.AssertDeepEquals(t, []string{"deleting", "deleting"}, tasks)
	th.AssertEquals(t, 2, f.deletes)
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.WaitGone(ctx, "dc-a", "n1") }))
	if in, ok := listed(t, d, "n1"); ok {
		t.Fatalf("n1 listed after Terminate: %+v", in)
	}
}

// Nova's creation time has 1 s resolution (revB L1): a phantom created,
// deleted and relaunched within one second ties with its relaunch. The
// server less far along its boot is the newer then, not the higher
// (random) Nova id: the look-ups and Plan take the relaunch, still being
// scheduled, over the phantom listed ACTIVE or BUILD on a host.
func TestSeveralServersCreatedInOneSecondTheLeastBootedIsTheInstance(t *testing.T) {
	for _, phantomStatus := range []string{"ACTIVE", "BUILD"} {
		f := newFakeNova(t)
		d, _ := newTestDriver(t, f, testConfig())
		quiet(d)
		relaunch := f.addServer("n2", "BUILD", ours("dc-a", "n2"), Tag)
		phantom := f.addServer("n2", phantomStatus, ours("dc-a", "n2"), Tag) // the higher Nova id
		f.mu.Lock()
		f.servers[phantom].Created = f.servers[relaunch].Created
		f.servers[phantom].Host = "fake-2"
		f.servers[phantom].getsLeft, f.servers[relaunch].getsLeft = 100, 100
		f.mu.Unlock()
		in, err := d.Launch(ctx, spec("dc-a", "n2"))
		th.AssertNoErr(t, err)
		if in.CloudID != relaunch {
			t.Fatalf("phantom %s: Launch of n2 took %s, want the server still scheduled %s", phantomStatus, in.CloudID, relaunch)
		}
		l, err := d.List(ctx, "")
		th.AssertNoErr(t, err)
		acts := Plan([]drivers.Spec{spec("dc-a", "n2")}, l, nil, nil, nil, time.Unix(2000, 0), time.Minute)
		if len(acts) != 1 || acts[0].Kind != ActAdopt || acts[0].Instance.CloudID != relaunch {
			t.Fatalf("phantom %s: Plan %+v, want the relaunch %s adopted", phantomStatus, acts, relaunch)
		}
	}
}

// countHandler counts the log records whose message starts with prefix.
type countHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// twoServersOfOneID is a fake Nova with two ACTIVE servers of instance id
// in dc-a and a driver on it whose duplicate warnings are counted.
func twoServersOfOneID(t *testing.T, id string) (*fakeNova, *Driver, *clock.Virtual, *atomic.Int64) {
	f := newFakeNova(t)
	d, clk := newTestDriver(t, f, testConfig())
	warns := new(atomic.Int64)
	d.SetLogger(slog.New(countHandler{prefix: "openstack: several servers of ours", n: warns}))
	f.addServer(id, "ACTIVE", ours("dc-a", id), Tag)
	f.addServer(id, "ACTIVE", ours("dc-a", id), Tag)
	return f, d, clk, warns
}

// The duplicate warning is logged once per surplus server (revB L3), not
// at every Launch or Terminate of the id; a new surplus server is warned
// about again. Stats.Duplicates still counts at every List.
func TestTheDuplicateWarningIsLoggedOncePerServer(t *testing.T) {
	f, d, _, warns := twoServersOfOneID(t, "n3")
	for range 3 {
		_, err := d.Launch(ctx, spec("dc-a", "n3"))
		th.AssertNoErr(t, err)
	}
	th.AssertEquals(t, int64(1), warns.Load())
	f.addServer("n3", "ACTIVE", ours("dc-a", "n3"), Tag)
	for range 2 {
		_, err := d.Launch(ctx, spec("dc-a", "n3"))
		th.AssertNoErr(t, err)
	}
	th.AssertEquals(t, int64(2), warns.Load())
	_, err := d.List(ctx, "")
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 2, d.Stats().Duplicates)
}

// The look-ups (match, through ageOf) and the reconciler's Plan (through
// instanceAge) take the same server of two with one instance id created in
// the same second, a transitional status included (final read rdA #2:
// match took the ACTIVE one, Plan the REBOOT one).
func TestLookupsAndPlanRankServersAlike(t *testing.T) {
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, st := range []string{"REBOOT", "REBUILD", "MIGRATING", "BUILD", "ACTIVE", "ERROR"} {
		for _, ids := range [][2]string{{"a", "b"}, {"b", "a"}} {
			active := servers.Server{ID: ids[0], Status: "ACTIVE", Created: at, HostID: "h1"}
			other := servers.Server{ID: ids[1], Status: st, Created: at, HostID: "h1"}
			byServer := newer(ageOf(other), ageOf(active))
			byInstance := newer(instanceAge(toInstance(other)), instanceAge(toInstance(active)))
			if byServer != byInstance {
				t.Errorf("%s (id %s) against ACTIVE (id %s): the look-ups take it newer: %v, Plan: %v", st, ids[1], ids[0], byServer, byInstance)
			}
		}
	}
}

// A surplus server (an older server of an instance id) is deleted by the
// Reconciler once every pass has listed it surplus for the grace — not by
// List, however often and late it lists: a server that is the instance in
// between (its newer one went) restarts its grace. The delete goes by Nova
// id as Terminate's (tombstone, mark, DELETE), logged and counted.
func TestReconcileDeletesASurplusServerAfterTheGrace(t *testing.T) {
	f, d, clk, cfg := graceDriver(t)
	older := f.addServer("s1", "ACTIVE", ours("dc-a", "s1"), Tag)
	instance := f.addServer("s1", "ACTIVE", ours("dc-a", "s1"), Tag)
	f.addServer("s2", "ACTIVE", ours("dc-a", "s2"), Tag)
	s2 := f.addServer("s2", "ACTIVE", ours("dc-a", "s2"), Tag)
	r := NewReconciler(d, staticDesired{spec("dc-a", "s1"), spec("dc-a", "s2")}, clk)
	pass := func() Report {
		t.Helper()
		rep, err := r.Reconcile(ctx)
		th.AssertNoErr(t, err)
		return rep
	}
	for range 3 { // List alone deletes nothing, however late
		_, err := d.List(ctx, "")
		th.AssertNoErr(t, err)
		clk.Advance(time.Duration(cfg.OrphanGrace))
	}
	th.AssertEquals(t, 0, f.deletes)
	for i := range 2 {
		if i > 0 {
			clk.Advance(time.Duration(cfg.OrphanGrace) / 2)
		}
		pass()
	}
	th.AssertEquals(t, 0, f.deletes) // surplus for half the grace only
	f.mu.Lock()
	delete(f.servers, s2) // s2's newer server went: the older is the instance, its grace ends
	f.mu.Unlock()
	pass()
	th.AssertEquals(t, 0, f.deletes)
	f.addServer("s2", "ACTIVE", ours("dc-a", "s2"), Tag) // a newer one again: the older is surplus from now on
	clk.Advance(time.Duration(cfg.OrphanGrace) / 2)
	rep := pass()
	th.AssertEquals(t, 1, f.deletes) // s1's older server, surplus for the whole grace
	th.AssertDeepEquals(t, []string{"dc-a/s1/" + older}, rep.Surplus)
	var reasons []string
	for _, a := range rep.Actions {
		if a.Kind == ActSurplus {
			reasons = append(reasons, a.Reason)
		}
	}
	th.AssertDeepEquals(t, []string{"surplus: newer server " + instance + " carries s1"}, reasons)
	f.mu.Lock()
	tasks := map[string]string{"older": f.servers[older].Task, "instance": f.servers[instance].Task}
	name := f.servers[older].Name
	f.mu.Unlock()
	th.AssertDeepEquals(t, map[string]string{"older": "deleting", "instance": ""}, tasks)
	th.AssertEquals(t, terminatedName("s1"), name)
	th.AssertEquals(t, uint64(1), d.Stats().SurplusDeleted)
	if in, ok := listed(t, d, "s1"); !ok || in.CloudID != instance {
		t.Fatalf("s1 listed %v as %+v, want the instance %s", ok, in, instance)
	}
	th.AssertEquals(t, 1, d.Stats().Duplicates) // s2's, inside its grace
}

// A node deletes the surplus servers of the DCs it reconciles only: dc-a's
// are another node's, even long after the grace and though the node's
// poller lists every DC.
func TestReconcileLeavesSurplusServersOfAnotherNodesDC(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.OrphanGrace = Duration(time.Minute)
	d, clk := newTestDriver(t, f, cfg)
	f.addServer("a1", "ACTIVE", ours("dc-a", "a1"), Tag)
	f.addServer("a1", "ACTIVE", ours("dc-a", "a1"), Tag)
	olderB := f.addServer("b1", "ACTIVE", ours("dc-b", "b1"), Tag)
	f.addServer("b1", "ACTIVE", ours("dc-b", "b1"), Tag)
	r := NewReconciler(d, staticDesired{spec("dc-b", "b1")}, clk)
	r.DCs = []string{"dc-b"}
	var deleted []string
	for range 3 {
		rep, err := r.Reconcile(ctx)
		th.AssertNoErr(t, err)
		deleted = append(deleted, rep.Surplus...)
		_, err = d.List(ctx, "") // the poller's list: every DC
		th.AssertNoErr(t, err)
		clk.Advance(time.Duration(cfg.OrphanGrace))
	}
	th.AssertDeepEquals(t, []string{"dc-b/b1/" + olderB}, deleted)
	th.AssertEquals(t, 1, f.deletes)
}

// Two ACTIVE servers of one id created in the same second: the higher Nova
// id is the instance to List, the poller's view, Plan and DeleteSurplus
// alike, whichever was added first.
func TestASameSecondTieIsDecidedByTheNovaIDEverywhere(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.OrphanGrace = Duration(time.Minute)
	d, clk := newTestDriver(t, f, cfg)
	first := f.addServer("t1", "ACTIVE", ours("dc-a", "t1"), Tag)
	low := f.addServer("t1", "ACTIVE", ours("dc-a", "t1"), Tag)
	high := "00000000-0000-0000-0000-999999999999" // the first added gets the highest id
	f.mu.Lock()
	s := f.servers[first]
	delete(f.servers, first)
	s.ID = high
	s.Created = f.servers[low].Created
	f.servers[high] = s
	f.mu.Unlock()
	l, err := d.List(ctx, "")
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 2, len(l))
	th.AssertEquals(t, high, newestByKey(l)["dc-a/t1"].CloudID) // the poller's and Plan's choice
	in, ok, err := d.find(ctx, "dc-a", "t1")
	th.AssertNoErr(t, err)
	th.AssertEquals(t, true, ok)
	th.AssertEquals(t, high, in.ID)
	plan := Plan(nil, l, nil, nil, map[string]time.Time{low: clk.Now().Add(-time.Hour)}, clk.Now(), time.Minute)
	var surplus []string
	for _, a := range plan {
		if a.Kind == ActSurplus {
			surplus = append(surplus, a.Instance.CloudID)
		}
	}
	th.AssertDeepEquals(t, []string{low}, surplus)
	gone, err := d.DeleteSurplus(ctx, "dc-a", "t1", high) // the instance: not deleted
	th.AssertNoErr(t, err)
	th.AssertEquals(t, false, gone)
	th.AssertEquals(t, 0, f.deletes)
	gone, err = d.DeleteSurplus(ctx, "dc-a", "t1", low)
	th.AssertNoErr(t, err)
	th.AssertEquals(t, true, gone)
	th.AssertEquals(t, 1, f.deletes)
}

// Terminate's duplicate warning goes through newDuplicates as the
// look-ups' does (revN L1): two servers of one id whose DELETEs Nova
// refuses (403: not retried, the servers are unmarked and visible again)
// are seen by the Terminate of every tick of the local controller (here
// one past each delete backoff), and warned about once, not at every call.
func TestTerminateWarnsOfSeveralServersOnce(t *testing.T) {
	f, d, clk, warns := twoServersOfOneID(t, "t3")
	const calls = 3
	for range calls * 2 {
		f.inject("delete", fault{status: 403, file: "forbidden_403.json"})
	}
	for range calls {
		clk.Advance(delBackoffMax)
		if err := inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "t3") }); err == nil {
			t.Fatal("Terminate of t3 with every DELETE refused: no error")
		}
	}
	th.AssertEquals(t, calls*2, f.deletes) // every call saw both servers
	th.AssertEquals(t, int64(1), warns.Load())
}

// Terminate deletes the servers of an id newest first (newer) on both of
// its paths: the visible servers, and the fallback of servers deleted
// before that Nova still lists not deleting (revN L2: it went oldest first).
func TestTerminateTargetsAreNewestFirst(t *testing.T) {
	f := newFakeNova(t)
	d, _ := quietDriver(t, f, testConfig())
	older := f.addServer("t4", "ACTIVE", ours("dc-a", "t4"), Tag)
	newest := f.addServer("t4", "ACTIVE", ours("dc-a", "t4"), Tag)
	deadOlder := f.addServer(terminatedName("t5"), "ACTIVE", ours("dc-a", "t5"), Tag)
	deadNewest := f.addServer(terminatedName("t5"), "ACTIVE", ours("dc-a", "t5"), Tag)
	for id, want := range map[string][]string{"t4": {newest, older}, "t5": {deadNewest, deadOlder}} {
		m, err := d.terminateTargets(ctx, "dc-a", id)
		th.AssertNoErr(t, err)
		th.AssertDeepEquals(t, want, cloudIDs(m))
	}
}
