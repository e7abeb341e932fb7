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
// outside the scope (another DC's, another owner's: a deployment on a
// shared cloud, a test package running in parallel with DCs of its own)
// are left alone — also a server of another run (nor counted: a run's
// checks count its own servers), which Others names before a test starts
// (a run's reconcilers would take it for their own). Each real-Nova test package also uses DC names of its own
// (drivers/openstack: dc-a, dc-b; controller/daemon: i14-*, i15-*). A test helper: drivers/openstack's
// integration tests and the daemon's real-Nova tests use it; production
// code may not import it (scripts/check-pure.sh).
package novasweeptest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// Run is this test process's run id: the host name, the process id and
// its start on the wall clock (a name, not a measurement), the same for
// every call. The host and pid say where a leftover came from, and
// whether its process is gone (Others).
func Run() string {
	runOnce.Do(func() {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "unknown-host"
		}
		runID = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
	})
	return runID
}

// processGone reports whether run (Run's form) names a process of this
// host that no longer runs; false when it cannot tell.
func processGone(run string) bool {
	i := strings.LastIndexByte(run, '-')
	if i < 0 {
		return false
	}
	j := strings.LastIndexByte(run[:i], '-')
	if j < 0 {
		return false
	}
	host, err := os.Hostname()
	pid, perr := strconv.Atoi(run[j+1 : i])
	if err != nil || perr != nil || run[:j] != host || pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	err = p.Signal(syscall.Signal(0))
	return err != nil && !errors.Is(err, syscall.EPERM)
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

// Others is nil when the compute clients list no server of ours (Tag,
// ManagedBy, one of DCs) of another run than sc's; otherwise an error
// naming them by run (and whether the run's process is gone) with a
// ready command that deletes them on cloud (a clouds.yaml entry). A
// run's checks count only its own servers and its sweep deletes only
// those, so a leftover of another run (an interrupted one on a kept
// stack) would be taken by the run's reconcilers for their own (adopted,
// or deleted as an orphan) and fail a test far from the cause: the
// tests call this before they start.
func Others(ctx context.Context, computes []*gophercloud.ServiceClient, sc Scope, cloud string) error {
	byRun := map[string][]string{}
	var ids []string
	for _, c := range computes {
		page, err := servers.List(c, servers.ListOpts{Tags: sc.Tag}).AllPages(ctx)
		if err != nil {
			return fmt.Errorf("novasweeptest: list servers: %w", err)
		}
		all, err := servers.ExtractServers(page)
		if err != nil {
			return fmt.Errorf("novasweeptest: list servers: %w", err)
		}
		for _, sv := range all {
			if sv.Metadata[drivers.MetaManagedBy] != sc.ManagedBy || !slices.Contains(sc.DCs, sv.Metadata[drivers.MetaDC]) || sc.Has(sv) {
				continue
			}
			run := sv.Metadata[RunKey]
			byRun[run] = append(byRun[run], fmt.Sprintf("%s %s", sv.ID, sv.Name))
			ids = append(ids, sv.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var runs []string
	for _, run := range slices.Sorted(maps.Keys(byRun)) {
		what := "run " + strconv.Quote(run)
		switch {
		case run == "":
			what = "no run id (not a test's, or older than session 14)"
		case processGone(run):
			what += ", its process is gone"
		}
		runs = append(runs, fmt.Sprintf("%s: %s", what, strings.Join(byRun[run], ", ")))
	}
	return fmt.Errorf("novasweeptest: Nova lists %d servers of ours in %v of another run than this one (%s), which this run would take for its own; "+
		"delete them:\n  openstack --os-cloud %s server delete --wait %s\nor restart the stack (deploy/openstack/up.sh). They are: %s",
		len(ids), sc.DCs, sc.Run, cloud, strings.Join(ids, " "), strings.Join(runs, "; "))
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
