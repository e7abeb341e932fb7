package openstack

// A bounded probe of what a real Nova lists after a server is deleted while
// it is still building (the conformance suite's cleanups terminate right
// after Launch). It runs only with IMS_ORCH_OS_TRACE=1 beside the
// integration settings (integration_test.go), so CI does not pay for it:
//
//	IMS_ORCH_OS_TRACE=1 IMS_ORCH_OS_CLOUD=ims-orch-dev OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml \
//	  go test -count=1 -run TestTraceDeleteWhileBuilding -v ./drivers/openstack/
//
//	IMS_ORCH_OS_TRACE_TRIALS   trials per delay (default 30)
//	IMS_ORCH_OS_TRACE_DELAYS   delays between Launch and Terminate (default "0,100ms,1s")
//	IMS_ORCH_OS_TRACE_WATCH    how long each server is watched after its delete (default 20s;
//	                           less once it has been absent for 5 s)
//	IMS_ORCH_OS_TRACE_STAGGER  0 (default): one trial at a time; else trials start this far apart
//	                           and are watched together
//
// A trial launches a server with Launch (the driver's create), waits the
// delay, deletes it with the raw driver delete (no look-up: the point is
// what Nova shows, not what List hides) and then, every 100 ms, records
// what two server lists show of it: the tagged list List uses, and an
// unfiltered one (a server can exist before its tags do). After the watch
// one more list (and up to a minute more) shows whether any server Nova
// accepted the delete of is still there, not deleting: a leak.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/drivers"
)

// sighting is what one poll showed of one server.
type sighting struct {
	at                     time.Duration // since its delete returned
	tagged, listed         bool          // in the tagged list / the unfiltered list
	status, task, vm, host string
}

// kind is the class of a sighting as List sees it: absent (not in the
// tagged list), deleting (gone()), or live (List would return it).
func (s sighting) kind() string {
	switch {
	case !s.tagged:
		return "absent"
	case s.status == "DELETED" || s.status == "SOFT_DELETED" || s.task == "deleting":
		return "deleting"
	}
	return "live"
}

func (s sighting) String() string {
	if !s.listed {
		return "absent"
	}
	tag := ""
	if !s.tagged {
		tag = "(untagged)"
	}
	task := s.task
	if task == "" {
		task = "None"
	}
	return fmt.Sprintf("%s/%s/%s%s", s.status, task, s.vm, tag)
}

type trial struct {
	name    string
	delay   time.Duration
	cloudID string
	deleted time.Time // when the delete returned
	// still listed after the watch and then for a minute more
	leftAtEnd bool
	delTook   time.Duration // how long Nova took to answer the delete
	seen      []sighting
	err       error
}

// settleAfter: a trial whose server has been absent this long is done
// watching (it saves the loaded API lists; a later reappearance would still
// show in the final list).
const settleAfter = 5 * time.Second

func (tr *trial) settled() bool {
	n := len(tr.seen)
	if n == 0 || tr.seen[n-1].kind() != "absent" {
		return false
	}
	i := n - 1
	for i > 0 && tr.seen[i-1].kind() == "absent" {
		i--
	}
	return tr.seen[n-1].at-tr.seen[i].at >= settleAfter
}

func durEnv(tb testing.TB, k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		tb.Fatalf("%s: %v", k, err)
	}
	return d
}

func TestTraceDeleteWhileBuilding(t *testing.T) {
	if os.Getenv("IMS_ORCH_OS_TRACE") != "1" {
		t.Skip("a probe of Nova, not a test: set IMS_ORCH_OS_TRACE=1 (and the integration settings)")
	}
	cfg := integrationConfig(t)
	d := connectTB(t, cfg)
	n := 30
	if v := os.Getenv("IMS_ORCH_OS_TRACE_TRIALS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 200 {
			t.Fatalf("IMS_ORCH_OS_TRACE_TRIALS %q: want 1..200", v)
		}
	}
	var delays []time.Duration
	for _, s := range strings.Split(envOr("IMS_ORCH_OS_TRACE_DELAYS", "0,100ms,1s"), ",") {
		if s == "0" {
			s = "0s"
		}
		dl, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("IMS_ORCH_OS_TRACE_DELAYS: %v", err)
		}
		delays = append(delays, dl)
	}
	watch := durEnv(t, "IMS_ORCH_OS_TRACE_WATCH", 20*time.Second)
	stagger := durEnv(t, "IMS_ORCH_OS_TRACE_STAGGER", 0)
	run := time.Now().Unix()
	t.Cleanup(func() { sweep(t, d) })
	for _, delay := range delays {
		var trials []*trial
		if stagger == 0 { // one at a time, like the conformance cases
			for i := range n {
				trials = append(trials, traceDelay(t, d, run, delay, i, 1, 0, watch)...)
			}
		} else {
			trials = traceDelay(t, d, run, delay, 0, n, stagger, watch)
		}
		summarise(t, delay, trials)
	}
}

// traceDelay runs n trials with one delay and watches them until each has
// been watched for watch after its delete.
func traceDelay(t *testing.T, d *Driver, run int64, delay time.Duration, first, n int, stagger, watch time.Duration) []*trial {
	ctx := context.Background()
	client := d.clients["dc-a"].Compute
	var (
		mu       sync.Mutex
		polls    int
		pollTime time.Duration
	)
	trials := make([]*trial, n)
	var wg sync.WaitGroup
	for i := range trials {
		tr := &trial{name: fmt.Sprintf("trace-%d-%d-%d", run, delay.Milliseconds(), first+i), delay: delay}
		trials[i] = tr
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * stagger) // real cloud, real time
			in, err := d.Launch(ctx, drivers.Spec{ID: tr.name, DC: "dc-a", VNF: "firewall", Pool: "bench"})
			if err == nil {
				time.Sleep(delay)
				t0 := time.Now()
				err = d.deleteServer(ctx, client, in.CloudID)
				tr.delTook = time.Since(t0)
			}
			mu.Lock()
			tr.cloudID, tr.deleted, tr.err = in.CloudID, time.Now(), err
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.Now().Add(time.Duration(n)*stagger + delay + watch + 2*time.Minute)
	for time.Now().Before(deadline) {
		// a sighting counts from the start of its lists: a list that began
		// before the delete returned may show the server as it was before
		start := time.Now()
		tagged, err1 := rawList(ctx, client, true)
		all, err2 := rawList(ctx, client, false)
		now := time.Now()
		polls++
		pollTime += now.Sub(start)
		finished := true
		mu.Lock()
		for _, tr := range trials {
			if tr.deleted.IsZero() {
				finished = false
				continue
			}
			if tr.cloudID == "" || now.Sub(tr.deleted) > watch || tr.settled() {
				continue
			}
			finished = false
			if err1 != nil || err2 != nil || !start.After(tr.deleted) {
				continue
			}
			s := sighting{at: start.Sub(tr.deleted)}
			// the tagged list is the one List reads: its view wins
			sv, ok := tagged[tr.cloudID]
			s.tagged = ok
			if !ok {
				sv, ok = all[tr.cloudID]
			}
			if ok {
				s.listed, s.status, s.task, s.vm, s.host = true, sv.Status, sv.TaskState, sv.VmState, sv.Host
			}
			tr.seen = append(tr.seen, s)
		}
		mu.Unlock()
		if finished {
			break
		}
		time.Sleep(100 * time.Millisecond) // the probe's sampling period
	}
	<-done
	if polls > 0 {
		t.Logf("delay %v: %d polls, %.0f ms per poll (two lists)", delay, polls, pollTime.Seconds()*1000/float64(polls))
	}
	// the end: one more list, then up to a minute for what is still there
	for end := time.Now().Add(time.Minute); ; {
		tagged, err := rawList(ctx, client, true)
		if err != nil {
			t.Fatalf("final list: %v", err)
		}
		var left []string
		for _, tr := range trials {
			tr.leftAtEnd = false
			if sv, ok := tagged[tr.cloudID]; ok && tr.cloudID != "" && !gone(sv) {
				left = append(left, fmt.Sprintf("%s %s/%s/%s", tr.name, sv.Status, sv.TaskState, sv.VmState))
				tr.leftAtEnd = true
			}
		}
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		t.Logf("delay %v: after the watch, %d trial servers still listed, not deleting: %v", delay, len(left), left)
		time.Sleep(5 * time.Second) // real cloud, real time
	}
	return trials
}

func rawList(ctx context.Context, client *gophercloud.ServiceClient, tagged bool) (map[string]servers.Server, error) {
	opts := servers.ListOpts{Name: "^trace-"}
	if tagged {
		opts.Tags = Tag
	}
	page, err := servers.List(client, opts).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servers.ExtractServers(page)
	if err != nil {
		return nil, err
	}
	out := map[string]servers.Server{}
	for _, s := range all {
		out[s.ID] = s
	}
	return out, nil
}

// summarise logs each trial's compressed sequence of sightings and counts
// the sequences, the reappearances (live after absent or deleting) and the
// servers still live at the end of the watch.
func summarise(t *testing.T, delay time.Duration, trials []*trial) {
	seqs := map[string]int{}
	reappeared, liveAtAll, leaked, failed := 0, 0, 0, 0
	var windows []string
	for _, tr := range trials {
		if tr.err != nil {
			failed++
			t.Logf("delay %v %s: %v", delay, tr.name, tr.err)
			continue
		}
		var parts []string
		var kinds []string
		var firstLive, lastLive time.Duration = -1, -1
		for _, s := range tr.seen {
			if k := s.String(); len(parts) == 0 || parts[len(parts)-1] != k {
				parts = append(parts, k)
			}
			if k := s.kind(); len(kinds) == 0 || kinds[len(kinds)-1] != k {
				kinds = append(kinds, k)
			}
			if s.kind() == "live" {
				if firstLive < 0 {
					firstLive = s.at
				}
				lastLive = s.at
			}
		}
		seq := strings.Join(parts, " → ")
		seqs[seq]++
		if firstLive >= 0 {
			liveAtAll++
			windows = append(windows, fmt.Sprintf("%s live %.1f–%.1f s", tr.name, firstLive.Seconds(), lastLive.Seconds()))
		}
		for i := 1; i < len(kinds); i++ {
			if kinds[i] == "live" {
				reappeared++
				break
			}
		}
		if tr.leftAtEnd {
			leaked++
		}
		t.Logf("delay %v %s %s (delete answered in %.1f s): %s", delay, tr.name, tr.cloudID, tr.delTook.Seconds(), seq)
	}
	keys := make([]string, 0, len(seqs))
	for k := range seqs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return seqs[keys[i]] > seqs[keys[j]] || seqs[keys[i]] == seqs[keys[j]] && keys[i] < keys[j]
	})
	for _, k := range keys {
		t.Logf("delay %v: %d× %s", delay, seqs[k], k)
	}
	for _, w := range windows {
		t.Logf("delay %v: %s", delay, w)
	}
	t.Logf("SUMMARY delay %v: %d trials, %d failed, live after the delete in %d, reappeared (live after absent/deleting) in %d, still listed a minute after the watch (leak) %d",
		delay, len(trials), failed, liveAtAll, reappeared, leaked)
}

// TestIntegrationNovaTerminatedStaysGone launches servers and terminates
// each right after its Launch (as the conformance cleanups do), then lists
// every 200 ms for 10 s (each list followed by ReissueDeletes, as a
// Reconciler's pass): no terminated instance may be listed again (Nova
// lists a server deleted during its build again for a while; the driver's
// tombstones hide it), and none may be left live at the end (a leak). On
// this loaded 2-core machine the reappearance shows in some trials only,
// so the test cannot fail every time without the fix (docs/openstack.md has
// the counts).
func TestIntegrationNovaTerminatedStaysGone(t *testing.T) {
	cfg := integrationConfig(t)
	d := connectTB(t, cfg)
	t.Cleanup(func() { d.Close(); sweep(t, d) })
	ctx := context.Background()
	ids := launchAndTerminate(t, d, "gone", 0)
	end := time.Now().Add(10 * time.Second)
	lists := 0
	for time.Now().Before(end) {
		l, err := d.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		d.ReissueDeletes(ctx, "") // as a Reconciler's pass does after its List
		lists++
		for _, in := range l {
			if ids[in.ID] {
				t.Fatalf("terminated %s listed again (%s, after %d lists)", in.ID, in.State, lists)
			}
		}
		time.Sleep(200 * time.Millisecond) // real cloud, real time
	}
	noLeak(t, d, ids)
	t.Logf("%d lists, %d deletes re-issued for servers Nova listed again", lists, d.ReissuedDeletes())
}

// TestIntegrationNovaTerminatedStaysGoneAfterARestart is
// TestIntegrationNovaTerminatedStaysGone for a driver that did not do the
// deletes (ims-orch restarted, or another node): a second driver, with no
// tombstones, reads Nova every 200 ms for 10 s, as its List does, and must
// never take one of the terminated servers for live. Each is terminated
// about 1 s after its Launch, when the trace saw the race most (5 of 30).
// Every terminated server Nova lists not deleting must carry the mark (the
// name Terminate gave it: the build's unguarded save must not undo it) —
// except one Nova lists BUILD/scheduling without a host: a delete that
// landed while the server was still a build request, whose renames went to
// the request while the conductor makes the cell's instance from its own
// copy, then destroys it on finding the request gone (docs/openstack.md:
// the mark's known gap, covered by the tombstone in the deleting process
// and by the orphan grace elsewhere). Those are counted, not failed. (A
// delete that reached the instance after the first rename went to the
// request was seen BUILD/networking unmarked: Terminate marks a BUILD
// server again after its delete since.)
func TestIntegrationNovaTerminatedStaysGoneAfterARestart(t *testing.T) {
	cfg := integrationConfig(t)
	first := connectTB(t, cfg)
	restarted := connectTB(t, cfg)
	t.Cleanup(func() { first.Close(); restarted.Close(); sweep(t, restarted) })
	ctx := context.Background()
	ids := launchAndTerminate(t, first, "regone", time.Second) // into the build
	end := time.Now().Add(10 * time.Second)
	lists, phantoms, scheduling := 0, 0, 0
	for time.Now().Before(end) {
		all, listed, err := restarted.freshList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		restarted.reissueDeletes(ctx, all, listed, everyDC(restarted)) // as the Reconciler's ReissueDeletes does
		lists++
		for _, s := range all {
			id := s.Metadata[drivers.MetaID]
			if !ids[id] || gone(s) {
				continue
			}
			if s.Status == "BUILD" && s.TaskState == "scheduling" && s.Host == "" && !marked(s) {
				scheduling++ // the conductor's copy of a deleted build request
				continue
			}
			phantoms++
			if !marked(s) {
				t.Errorf("terminated %s (%s) listed %s/%s on %q named %q: the mark is gone", id, s.ID, s.Status, s.TaskState, s.Host, s.Name)
			}
			if !restarted.hidden(s) {
				t.Fatalf("terminated %s (%s, %s/%s) taken for live by a driver without its tombstone (list %d)", id, s.ID, s.Status, s.TaskState, lists)
			}
		}
		time.Sleep(200 * time.Millisecond) // real cloud, real time
	}
	noLeak(t, restarted, ids)
	t.Logf("%d lists; terminated servers listed not deleting: %d sightings (marked, hidden), %d BUILD/scheduling without a host (unmarked: the build-request path); "+
		"deletes re-issued: %d by the restarted driver, %d by the first", lists, phantoms, scheduling, restarted.ReissuedDeletes(), first.ReissuedDeletes())
}

// launchAndTerminate launches 8 servers on d, 300 ms apart, and
// terminates each after its Launch (after build more), as the conformance
// cleanups do; it returns their instance ids.
func launchAndTerminate(t *testing.T, d *Driver, prefix string, build time.Duration) map[string]bool {
	t.Helper()
	ctx := context.Background()
	run := time.Now().Unix()
	const trials = 8
	ids := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, trials)
	for i := range trials {
		id := fmt.Sprintf("%s-%d-%d", prefix, run, i)
		ids[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond) // real cloud, real time
			spec := drivers.Spec{ID: id, DC: "dc-a", VNF: "firewall", Pool: "bench"}
			if _, err := d.Launch(ctx, spec); err != nil {
				errs <- err
				return
			}
			time.Sleep(build) // real time
			if err := d.Terminate(ctx, spec.DC, spec.ID); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// noLeak checks what Nova itself still shows of the terminated instances
// ids: deleting is fine, live is a leak.
func noLeak(t *testing.T, d *Driver, ids map[string]bool) {
	t.Helper()
	all, err := taggedServers(context.Background(), d.clients["dc-a"].Compute)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if ids[s.Metadata[drivers.MetaID]] && !gone(s) {
			t.Errorf("terminated %s (%s) still %s/%s in Nova after 10 s: leaked", s.Metadata[drivers.MetaID], s.ID, s.Status, s.TaskState)
		}
	}
}

// taggedServers is Nova's list of the servers tagged ours, deleting and
// marked ones included.
func taggedServers(ctx context.Context, client *gophercloud.ServiceClient) ([]servers.Server, error) {
	page, err := servers.List(client, servers.ListOpts{Tags: Tag}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return servers.ExtractServers(page)
}

// everyDC is the set of d's datacenters.
func everyDC(d *Driver) map[string]bool {
	out := map[string]bool{}
	for dc := range d.clients {
		out[dc] = true
	}
	return out
}
