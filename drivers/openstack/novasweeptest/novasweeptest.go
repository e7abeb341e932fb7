// Package novasweeptest owns the clean-up of the servers a test run left
// on a Nova: it deletes every server of the run's scope (Scope: our tag,
// managed by ims-orch, in the run's DCs, carrying the run's id: RunKey in
// its metadata, which the run's drivers set through Config.ServerMetadata)
// — the ones a driver hides too,
// whose delete it cannot know Nova took (they keep their metadata) — and
// waits until Nova lists none, not even one it is still deleting. A server
// Nova lists again not deleting after its DELETE (a lost delete: an
// aborted build's clean-up wrote its state back, or the terminate never
// came) gets its DELETE again, so a run leaves nothing behind. Servers
// outside the scope (another DC's, another owner's, another run's: a
// deployment on a shared cloud, a test package running in parallel, a
// second CI job on the same cloud) are left alone — also a server of an
// earlier, interrupted run (nor counted: a run's checks count its own
// servers). Each real-Nova test package also uses DC names of its own
// (drivers/openstack: dc-a, dc-b; controller/daemon: i14-*, i15-*). A test helper: drivers/openstack's
// integration tests and the daemon's real-Nova tests use it; production
// code may not import it (scripts/check-pure.sh).
package novasweeptest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

const (
	// Resend is how long after its DELETE a server Nova still lists not
	// deleting gets the DELETE again (drivers/openstack's reissueEvery).
	Resend = 10 * time.Second
	// the polls back off from pollFirst ×1.5 up to pollMax (WaitGone's)
	pollFirst = 250 * time.Millisecond
	pollMax   = time.Second
)

// RunKey is the server metadata key that carries a test run's id (Run).
// It is not one of ims-orch's own keys ("ims-orch." ones), so a driver's
// Config.ServerMetadata may set it.
const RunKey = "ims-orch-test.run"

var (
	runOnce sync.Once
	runID   string
)

// Run is this test process's run id: the process id and its start on the
// wall clock (a name, not a measurement), the same for every call.
func Run() string {
	runOnce.Do(func() { runID = fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()) })
	return runID
}

// RunMetadata is the Config.ServerMetadata that marks a driver's servers
// as run's.
func RunMetadata(run string) map[string]string { return map[string]string{RunKey: run} }

// Scope is the servers a sweep deletes: listed with Tag, whose metadata
// says ManagedBy (drivers.MetaManagedBy), one of DCs (drivers.MetaDC) and
// Run (RunKey).
type Scope struct {
	Tag       string
	ManagedBy string
	DCs       []string
	Run       string
}

// Has reports whether s is in the scope.
func (sc Scope) Has(s servers.Server) bool {
	return s.Metadata[drivers.MetaManagedBy] == sc.ManagedBy && slices.Contains(sc.DCs, s.Metadata[drivers.MetaDC]) &&
		s.Metadata[RunKey] == sc.Run
}

// Result counts a sweep's DELETE requests: Deletes in all, Resent of them
// sent again to a server Nova still listed not deleting after Resend.
type Result struct {
	Servers int // distinct servers sent a DELETE
	Deletes int
	Resent  int
}

func (r Result) String() string {
	return fmt.Sprintf("%d servers, %d DELETEs sent (%d re-sent)", r.Servers, r.Deletes, r.Resent)
}

// Sweep deletes every server of sc the compute clients list and waits
// until they list none, sending a server's DELETE again every Resend
// while it is listed not deleting. The waits are on clk, at most limit in
// all; the error counts the servers left and the DELETEs sent.
func Sweep(ctx context.Context, computes []*gophercloud.ServiceClient, sc Scope, clk clock.Clock, limit time.Duration) (Result, error) {
	if sc.Tag == "" || sc.ManagedBy == "" || len(sc.DCs) == 0 || sc.Run == "" {
		return Result{}, fmt.Errorf("novasweeptest: scope %+v: Tag, ManagedBy, DCs and Run must be set", sc)
	}
	end := clk.Now().Add(limit)
	s := sweep{scope: sc, sent: map[string]time.Time{}}
	wait := pollFirst
	var lastErr error // the last pass's error that was not nil
	for {
		left := 0
		var err error
		for _, c := range computes {
			n, lerr := s.once(ctx, c, clk.Now())
			left += n
			if lerr != nil {
				err, lastErr = lerr, lerr
			}
		}
		if err == nil && left == 0 {
			return s.res, nil
		}
		if !clk.Now().Before(end) {
			return s.res, fmt.Errorf("novasweeptest: %d servers of %s/%s in %v of run %s left after %s, %s (last error %v)", left, sc.Tag, sc.ManagedBy, sc.DCs, sc.Run, limit, s.res, lastErr)
		}
		if serr := clock.Sleep(ctx, clk, wait); serr != nil {
			return s.res, fmt.Errorf("novasweeptest: %d servers of %s/%s in %v of run %s left: %w, %s (last error %v)", left, sc.Tag, sc.ManagedBy, sc.DCs, sc.Run, serr, s.res, lastErr)
		}
		wait = min(wait*3/2, pollMax)
	}
}

// sweep is one Sweep's state: when each server's last DELETE went, and
// the counts.
type sweep struct {
	scope Scope
	sent  map[string]time.Time // Nova id -> its last DELETE
	res   Result
}

// once lists the servers of c in the scope, sends the DELETEs due at now
// and returns how many servers of the scope it listed.
func (s *sweep) once(ctx context.Context, c *gophercloud.ServiceClient, now time.Time) (int, error) {
	page, err := servers.List(c, servers.ListOpts{Tags: s.scope.Tag}).AllPages(ctx)
	if err != nil {
		return 0, fmt.Errorf("list servers: %w", err)
	}
	all, err := servers.ExtractServers(page)
	if err != nil {
		return 0, fmt.Errorf("list servers: %w", err)
	}
	n := 0
	for _, sv := range all {
		if !s.scope.Has(sv) {
			continue // not this run's: left alone, not waited for
		}
		n++
		deleting := sv.Status == "DELETED" || sv.Status == "SOFT_DELETED" || sv.TaskState == "deleting"
		at, before := s.sent[sv.ID]
		if deleting || before && now.Sub(at) < Resend {
			continue // Nova is deleting it, or its DELETE is recent
		}
		s.sent[sv.ID] = now
		s.res.Deletes++
		if before {
			s.res.Resent++
		} else {
			s.res.Servers++
		}
		if derr := servers.Delete(ctx, c, sv.ID).ExtractErr(); derr != nil && !gophercloud.ResponseCodeIs(derr, 404) {
			err = fmt.Errorf("delete server %s: %w", sv.ID, derr)
		}
	}
	return n, err
}
