package openstack

// A small stateful Nova (and Glance image list) on gophercloud's testhelper
// server, with the error bodies of testdata/*.json injected on demand. It
// keeps servers and server groups, moves a server from BUILD to ACTIVE (or
// ERROR with a fault) after a number of GETs, and deletes in two steps
// (task_state "deleting", then gone) like Nova does.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	th "github.com/gophercloud/gophercloud/v2/testhelper"
	fakeclient "github.com/gophercloud/gophercloud/v2/testhelper/client"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers/openstack/novasweeptest"
)

const (
	imageID  = "0e2d1284-8c9a-465d-9321-42df2f4e13f6"
	flavorID = "1"
)

// fault is one injected response: HTTP status and a testdata file for the body.
// hijack closes the connection without an answer (a timeout / reset).
type fault struct {
	status int
	file   string
	hijack bool
	// createAnyway: the create happens, then the error is returned (a 5xx or
	// a lost answer after Nova accepted the request).
	createAnyway bool
	// applied: a delete is carried out (races included), then the error is
	// returned (an answer lost after Nova accepted the DELETE).
	applied bool
}

type fakeServer struct {
	ID, Name, Status, Task, Host, AZ, Fault string
	Metadata                                map[string]string
	Tags                                    []string
	Group                                   string
	Created                                 time.Time
	getsLeft                                int       // GETs/lists before BUILD ends
	bootAt                                  time.Time // set: BUILD ends then (fakeNova.bootAfter), not by reads
	endStatus                               string    // ACTIVE or ERROR
	deletePolls                             int       // reads left while "deleting"

	// a delete that raced the build (deleteRace): unlisted for hiddenReads
	// lists, then listed BUILD/scheduling for phantomReads lists, then gone
	// (the conductor's destroy) — or, lost, it boots ACTIVE and stays
	phantom                   bool
	hiddenReads, phantomReads int
	lost                      bool
	stuck                     bool // every later delete is answered 500
	// refused: every DELETE is answered 403 (a policy; refused, not
	// retried) while set, the server left as it is
	refused bool
}

// deleteRace is what real Nova does to a server deleted while it is being
// built: after the 204 the server can be unlisted or listed as deleting
// (hidden lists here), then listed again not deleting (the aborted build's
// clean-up writes its stale task_state back; shown lists, here as
// BUILD/scheduling), then gone when the queued terminate runs. lost: the
// terminate never comes (the server boots ACTIVE and stays).
type deleteRace struct {
	hidden, shown int
	lost          bool
	stuck         bool // and every later delete of the server fails (500)
}

type fakeNova struct {
	t  *testing.T
	th th.FakeServer
	mu sync.Mutex

	servers map[string]*fakeServer
	groups  map[string]map[string]any
	ghosts  map[string][]string // group -> deleted members still listed
	seq     int

	// faults consumed in order, per route: "create", "list", "get", "update", "delete", "groups"
	faults map[string][]fault
	// errorNames: a server created with this name ends in ERROR with the fault text
	errorNames map[string][]string
	bootReads  int // reads until a BUILD server finishes (default 1)

	races []deleteRace // applied to the next deletes, in order
	// beforeUpdate runs before a PUT /servers/{id} is handled (set before use)
	beforeUpdate func()
	// lostRenames: the next renames are answered but lost, like a rename of
	// a server still being scheduled on the real Nova (it goes to the build
	// request; the conductor makes the instance from its own copy)
	lostRenames int

	// bootAfter (with clk): a server created by a POST boots after this
	// much time on clk instead of after bootReads reads, like a real Nova
	bootAfter time.Duration
	clk       clock.Clock

	reqs reqCounter // requests by "METHOD route" (handle)

	creates, deletes, lists, gets, updates, groupCreates int
	maxBuildingInGroup                                   int // members in BUILD seen by a create into their group
	createBodies                                         []map[string]any
}

func newFakeNova(t *testing.T) *fakeNova {
	f := &fakeNova{t: t, th: th.SetupHTTP(), servers: map[string]*fakeServer{}, groups: map[string]map[string]any{}, ghosts: map[string][]string{},
		faults: map[string][]fault{}, errorNames: map[string][]string{}, bootReads: 1}
	t.Cleanup(f.th.Teardown)
	f.handle("/servers", f.handleServers)
	f.handle("/servers/detail", f.handleServers)
	f.handle("/servers/", f.handleServer)
	f.handle("/os-server-groups", f.handleGroups)
	f.handle("/os-server-groups/", f.handleGroup)
	f.handle("/flavors/detail", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"flavors": []map[string]any{
			{"id": flavorID, "name": "m1.tiny", "ram": 64, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": true}}})
	})
	f.handle("/image/v2/images", func(w http.ResponseWriter, r *http.Request) {
		var imgs []map[string]any
		if n := r.URL.Query().Get("name"); n == "tiny" || n == "" {
			imgs = append(imgs, map[string]any{"id": imageID, "name": "tiny", "status": "active"})
		}
		if r.URL.Query().Get("name") == "twin" {
			imgs = append(imgs, map[string]any{"id": "a", "name": "twin"}, map[string]any{"id": "b", "name": "twin"})
		}
		writeJSON(w, 200, map[string]any{"images": imgs})
	})
	return f
}

// handle serves pattern with h, counting its requests in f.reqs.
func (f *fakeNova) handle(pattern string, h http.HandlerFunc) {
	f.th.Mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		f.reqs.add(r.Method + " " + pattern)
		h(w, r)
	})
}

// clients returns service clients pointing at the fake, microversion set.
func (f *fakeNova) clients() Clients {
	c := fakeclient.ServiceClient(f.th)
	c.Type = "compute"
	c.Microversion = ComputeMicroversion
	img := fakeclient.ServiceClient(f.th)
	img.Endpoint = f.th.Endpoint() + "image/"
	img.ResourceBase = img.Endpoint + "v2/"
	return Clients{Compute: c, Image: img}
}

func (f *fakeNova) inject(route string, fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[route] = append(f.faults[route], fs...)
}

// takeFault pops the next fault of a route (caller holds f.mu).
func (f *fakeNova) takeFault(route string) (fault, bool) {
	q := f.faults[route]
	if len(q) == 0 {
		return fault{}, false
	}
	f.faults[route] = q[1:]
	return q[0], true
}

func (f *fakeNova) writeFault(w http.ResponseWriter, ft fault) {
	if ft.hijack {
		hj, ok := w.(http.Hijacker)
		if !ok {
			f.t.Fatal("response writer cannot hijack")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	body, err := os.ReadFile("testdata/" + ft.file)
	if err != nil {
		f.t.Errorf("fixture: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ft.status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// advance moves a server one read along its life (caller holds f.mu).
func (f *fakeNova) advance(s *fakeServer) {
	if s.phantom {
		switch { // hiddenReads are counted by the list (handleServers)
		case s.phantomReads > 0:
			s.phantomReads--
		case s.lost:
			s.phantom, s.Status, s.Task, s.Host = false, "ACTIVE", "", "fake-1"
		default:
			delete(f.servers, s.ID)
		}
		return
	}
	if s.Task == "deleting" { // a server deleted while BUILD does not boot
		if s.deletePolls > 0 {
			s.deletePolls--
			return
		}
		delete(f.servers, s.ID)
		if s.Group != "" { // like Nova, the group keeps naming its deleted members
			f.ghosts[s.Group] = append(f.ghosts[s.Group], s.ID)
		}
		return
	}
	if s.Status == "BUILD" {
		if !s.bootAt.IsZero() && f.clk.Now().Before(s.bootAt) {
			return
		}
		if s.bootAt.IsZero() && s.getsLeft > 0 {
			s.getsLeft--
			return
		}
		s.Status, s.Task = s.endStatus, ""
		if s.Status == "ACTIVE" {
			s.Host = fmt.Sprintf("fake-%d", len(f.servers)%3+1)
		}
	}
}

func (f *fakeNova) render(s *fakeServer) map[string]any {
	raw, err := os.ReadFile("testdata/server.json")
	if err != nil {
		f.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		f.t.Fatal(err)
	}
	m["id"], m["name"], m["status"] = s.ID, s.Name, s.Status
	m["metadata"], m["tags"] = s.Metadata, s.Tags
	m["OS-EXT-STS:task_state"] = s.Task
	m["OS-EXT-AZ:availability_zone"] = s.AZ
	m["created"] = s.Created.UTC().Format(time.RFC3339)
	if s.Host != "" {
		m["OS-EXT-SRV-ATTR:host"] = s.Host
		m["addresses"] = map[string]any{"net": []map[string]any{{"addr": "10.0.0." + s.ID[len(s.ID)-1:], "version": 4}}}
	}
	if s.Fault != "" {
		m["fault"] = map[string]any{"code": 500, "message": s.Fault, "created": "2026-11-23T21:34:10Z"}
	}
	return m
}

func (f *fakeNova) handleServers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		f.lists++
		if ft, ok := f.takeFault("list"); ok {
			f.writeFault(w, ft)
			return
		}
		q := r.URL.Query()
		var nameRe *regexp.Regexp
		if n := q.Get("name"); n != "" {
			nameRe = regexp.MustCompile(n)
		}
		out := []map[string]any{}
		for _, id := range sortedKeys(f.servers) {
			s := f.servers[id]
			if s.phantom && s.hiddenReads > 0 {
				s.hiddenReads--
				continue
			}
			f.advance(s)
			if _, still := f.servers[id]; !still {
				continue
			}
			if nameRe != nil && !nameRe.MatchString(s.Name) {
				continue
			}
			if tg := q.Get("tags"); tg != "" && !slices.Contains(s.Tags, tg) {
				continue
			}
			out = append(out, f.render(s))
		}
		writeJSON(w, 200, map[string]any{"servers": out})
	case http.MethodPost:
		f.creates++
		if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != ComputeMicroversion {
			f.t.Errorf("create: microversion header %q, want %s", got, ComputeMicroversion)
		}
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			f.t.Errorf("create: body: %v", err)
		}
		f.createBodies = append(f.createBodies, body)
		ft, faulted := f.takeFault("create")
		if faulted && !ft.createAnyway {
			f.writeFault(w, ft)
			return
		}
		s := f.create(body)
		if faulted {
			f.writeFault(w, ft)
			return
		}
		writeJSON(w, 202, map[string]any{"server": map[string]any{"id": s.ID, "links": []any{}, "adminPass": "x"}})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// create adds a server from a create body (caller holds f.mu).
func (f *fakeNova) create(body map[string]any) *fakeServer {
	srv := body["server"].(map[string]any)
	f.seq++
	s := &fakeServer{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", f.seq), Name: srv["name"].(string),
		Status: "BUILD", Task: "scheduling", Metadata: map[string]string{}, Created: time.Unix(int64(1000+f.seq), 0),
		getsLeft: f.bootReads, endStatus: "ACTIVE"}
	if f.bootAfter > 0 {
		s.bootAt = f.clk.Now().Add(f.bootAfter)
	}
	if az, ok := srv["availability_zone"].(string); ok {
		s.AZ = az
	}
	for k, v := range srv["metadata"].(map[string]any) {
		s.Metadata[k] = v.(string)
	}
	for _, tg := range srv["tags"].([]any) {
		s.Tags = append(s.Tags, tg.(string))
	}
	if h, ok := body["os:scheduler_hints"].(map[string]any); ok {
		s.Group, _ = h["group"].(string)
	}
	building := 0
	for _, o := range f.servers {
		if o.Group != "" && o.Group == s.Group && o.Status == "BUILD" {
			building++
		}
	}
	f.maxBuildingInGroup = max(f.maxBuildingInGroup, building)
	if q := f.errorNames[s.Name]; len(q) > 0 {
		s.endStatus, s.Fault = "ERROR", q[0]
		f.errorNames[s.Name] = q[1:]
	}
	f.servers[s.ID] = s
	return s
}

func (f *fakeNova) handleServer(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && f.beforeUpdate != nil {
		f.beforeUpdate() // unlocked: it may call the driver, which calls the fake
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := strings.TrimPrefix(r.URL.Path, "/servers/")
	route := map[string]string{http.MethodGet: "get", http.MethodDelete: "delete", http.MethodPut: "update"}[r.Method]
	switch route {
	case "get":
		f.gets++
	case "update":
		f.updates++
	default:
		f.deletes++
	}
	ft, faulted := f.takeFault(route)
	if faulted && !ft.applied {
		f.writeFault(w, ft)
		return
	}
	s, ok := f.servers[id]
	if ok && route == "get" {
		f.advance(s)
		_, ok = f.servers[id]
	}
	if !ok {
		f.writeFault(w, fault{status: 404, file: "not_found_404.json"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, map[string]any{"server": f.render(s)})
	case http.MethodPut: // a rename (Terminate's mark), in any state like Nova's
		var body struct {
			Server struct {
				Name string `json:"name"`
			} `json:"server"`
		}
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil || body.Server.Name == "" {
			f.t.Errorf("update server %s: body %s: %v", id, data, err)
		}
		if f.lostRenames > 0 { // the build request's copy: answered, never reaches the instance
			f.lostRenames--
			m := f.render(s)
			m["name"] = body.Server.Name
			writeJSON(w, 200, map[string]any{"server": m})
			return
		}
		s.Name = body.Server.Name
		writeJSON(w, 200, map[string]any{"server": f.render(s)})
	case http.MethodDelete:
		if s.refused {
			f.writeFault(w, fault{status: 403, file: "forbidden_403.json"})
			return
		}
		if s.stuck {
			f.writeFault(w, fault{status: 500, file: "internal_500.json"})
			return
		}
		if len(f.races) > 0 && !s.phantom {
			r := f.races[0]
			f.races = f.races[1:]
			s.phantom, s.hiddenReads, s.phantomReads, s.lost, s.stuck = true, r.hidden, r.shown, r.lost, r.stuck
			s.Status, s.Task, s.Host = "BUILD", "scheduling", ""
		} else {
			s.phantom, s.Task, s.deletePolls = false, "deleting", 1
		}
		if faulted {
			f.writeFault(w, ft)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeNova) handleGroups(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.takeFault("groups"); ok {
		f.writeFault(w, ft)
		return
	}
	switch r.Method {
	case http.MethodGet:
		out := []map[string]any{}
		for _, id := range sortedKeys(f.groups) {
			g := f.groups[id]
			g["members"] = append(f.members(id), f.ghosts[id]...)
			out = append(out, g)
		}
		writeJSON(w, 200, map[string]any{"server_groups": out})
	case http.MethodPost:
		f.groupCreates++
		var body struct {
			Group map[string]any `json:"server_group"`
		}
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			f.t.Errorf("group create: %v", err)
		}
		g := body.Group
		g["id"] = fmt.Sprintf("00000000-0000-4001-8000-%012d", len(f.groups)+1)
		if _, ok := g["rules"]; !ok {
			g["rules"] = map[string]any{}
		}
		f.groups[g["id"].(string)] = g
		writeJSON(w, 200, map[string]any{"server_group": g})
	}
}

func (f *fakeNova) members(group string) []string {
	var m []string
	for _, id := range sortedKeys(f.servers) {
		if f.servers[id].Group == group {
			m = append(m, id)
		}
	}
	return m
}

func (f *fakeNova) handleGroup(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := strings.TrimPrefix(r.URL.Path, "/os-server-groups/")
	if r.Method == http.MethodDelete {
		delete(f.groups, id)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeNova) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.servers)
}

// addForeign adds a server that is not ours, or ours with given metadata.
func (f *fakeNova) addServer(name, status string, md map[string]string, tags ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	s := &fakeServer{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", f.seq), Name: name, Status: status,
		Metadata: md, Tags: tags, Created: time.Unix(int64(1000+f.seq), 0), endStatus: status}
	if status == "ACTIVE" {
		s.Host = "fake-1"
	}
	f.servers[s.ID] = s
	return s.ID
}

// refuse sets whether Nova refuses every DELETE of server cloudID (403).
func (f *fakeNova) refuse(cloudID string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[cloudID].refused = on
}

// ours returns metadata marking a server as ims-orch's instance id in dc.
func ours(dc, id string) map[string]string {
	return map[string]string{"ims-orch.managed-by": "ims-orch", "ims-orch.dc": dc, "ims-orch.vnf": "pcscf",
		"ims-orch.pool": "pcscf", "ims-orch.instance-id": id}
}

// testConfig is two DCs in two AZs of one cloud.
func testConfig() Config {
	return Config{
		DCs: map[string]DCConfig{
			"dc-a": {AvailabilityZone: "az-a", Image: "tiny", Flavor: "m1.tiny", Networks: []string{"none"}},
			"dc-b": {AvailabilityZone: "az-b", Image: imageID, Flavor: flavorID, KeyName: "ops",
				ControllerAddress: "10.0.0.1:7000", ControllerToken: "s3cret"},
		},
		AntiAffinity:   AntiAffinity{MaxPerHost: 2},
		Pools:          map[string]AntiAffinity{"soft": {Soft: true}},
		Retries:        3,
		RetryBase:      Duration(100 * time.Millisecond),
		ServerMetadata: novasweeptest.RunMetadata(fakeRun), // sweepServers' scope
	}
}

// fakeRun is the run id of the drivers on the fake Nova (testConfig).
const fakeRun = "fake-run"

// newTestDriver returns a driver on the fake in virtual time.
func newTestDriver(t *testing.T, f *fakeNova, cfg Config) (*Driver, *clock.Virtual) {
	t.Helper()
	clk := clock.NewVirtual(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	c := f.clients()
	d, err := New(cfg, map[string]Clients{"dc-a": c, "dc-b": c}, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, clk
}

// inVirtualTime runs fn in a goroutine and fires the virtual clock's timers
// (the driver's backoff waits) until fn returns. The driver sets no other
// timers here, so time moves only when fn waits.
func inVirtualTime[T any](clk *clock.Virtual, fn func() T) T {
	done := make(chan T, 1)
	go func() { done <- fn() }()
	for {
		select {
		case v := <-done:
			return v
		default:
		}
		if !clk.Step() {
			runtime.Gosched() // fn is between two waits: let it reach the next one
		}
	}
}

// group1 is the id the fake gives the first server group.
const group1 = "00000000-0000-4001-8000-000000000001"
