package openstack

// The Reconciler's refused deletes against the real Nova
// (scripts/ci-openstack.sh; skipped without IMS_ORCH_OS_CLOUD): an orphan
// (a server of ours nobody wants) and a surplus server (an older server of
// an instance id a newer one carries) past their grace, whose DELETEs the
// fault proxy answers 409 and 500 — every one of the driver's retries. The
// pass reports both failed (the first failure of each: what the daemon
// warns about and counts as ims_orch_openstack_reconcile_errors_total
// {stage="delete"}), the driver holds both in their delete backoff
// (ims_orch_openstack_delete_backoff_servers), the next pass inside it
// sends nothing, and once Nova takes DELETEs again and the backoff is over
// the pass's re-issue deletes both (logged). Counted on Nova: the DELETEs
// that reached it and the servers it lists at the end.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/openstack/novafaulttest"
)

func TestIntegrationReconcilerRefusedDeletes(t *testing.T) {
	r := newFaultRig(t)
	ctx := context.Background()
	d := r.d
	// the pass logs from its own goroutine (the re-issue) and its
	// deletions' goroutines, all joined before Reconcile returns
	var logs bytes.Buffer
	d.SetLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	// an orphan, and an instance id with two servers (the direct driver
	// creates the second without a look-up, as a lost create's retry on
	// another node would): the older one is surplus
	so, ss := r.spec("orphan"), r.spec("surplus")
	if _, err := d.LaunchActive(ctx, so); err != nil {
		t.Fatal(err)
	}
	if _, err := r.direct.LaunchActive(ctx, ss); err != nil {
		t.Fatal(err)
	}
	older := r.one(ss.ID, "the first server of the surplus id")
	if _, err := r.direct.LaunchNew(ctx, ss); err != nil {
		t.Fatal(err)
	}
	newer, err := r.direct.WaitActive(ctx, "dc-a", ss.ID)
	if err != nil || newer.CloudID == older.ID {
		t.Fatalf("the second server of %s: %v (%s), want a new ACTIVE one", ss.ID, err, newer.CloudID)
	}
	orphan := r.one(so.ID, "the orphan")
	const grace = time.Minute
	rec := &Reconciler{Cloud: d, Desired: staticDesired{ss}, Clock: r.clk, Grace: grace, Parallelism: 4, DCs: []string{"dc-a"}}
	orphanKey, surplusKey := key("dc-a", so.ID), key("dc-a", ss.ID)+"/"+older.ID
	pass := func(name string) Report {
		t.Helper()
		t0 := time.Now()
		rep, err := rec.Reconcile(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-44s %6.2f s: failed %v, backoff %d, deleted %v, surplus %v", name, time.Since(t0).Seconds(), sortedKeys(rep.Failed), len(rep.Backoff), rep.Deleted, rep.Surplus)
		return rep
	}

	// pass 1: the grace starts for both; nothing deleted
	if rep := pass("pass 1: grace starts"); len(rep.Deleted)+len(rep.Surplus)+len(rep.Failed) != 0 {
		t.Fatalf("pass 1 deleted or failed: %+v", rep)
	}

	// pass 2, past the grace: every DELETE of the orphan answered 409, of
	// the surplus server 500 (Terminate's and DeleteSurplus's retries
	// each); none reached Nova
	r.clk.skip(grace + time.Second)
	r.clk.freeze() // the delete backoff (10 s) must not run out in real time before pass 3
	rules := []novafaulttest.Rule{
		{Method: "DELETE", Path: deletePath(orphan.ID), Action: novafaulttest.Refuse, Status: 409, Body: body(t, "conflict_409.json")},
		{Method: "DELETE", Path: deletePath(older.ID), Action: novafaulttest.Refuse, Status: 500, Body: body(t, "internal_500.json")},
	}
	for _, rl := range rules {
		r.proxy.Fail(rl)
	}
	dels := func() int {
		return r.proxy.Forwarded("DELETE", deletePath(orphan.ID)) + r.proxy.Forwarded("DELETE", deletePath(older.ID))
	}
	failures := d.Stats().TerminateFailures
	rep := pass("pass 2: DELETEs refused 409 / 500")
	if n := r.proxy.Fired(); n != 2*(d.cfg.Retries+1) || dels() != 0 {
		t.Fatalf("pass 2: %d DELETEs refused, %d reached Nova; want %d, 0", n, dels(), 2*(d.cfg.Retries+1))
	}
	for k, status := range map[string]string{orphanKey: "HTTP 409", surplusKey: "HTTP 500"} {
		var b *DeleteBackoffError
		err := rep.Failed[k]
		// the daemon warns about a server's first failure (Skipped
		// false, Failures 1) and counts every failure in rep.Failed
		if !errors.As(err, &b) || b.Skipped || b.Failures != 1 || !strings.Contains(err.Error(), status) {
			t.Fatalf("pass 2: %s failed with %v, want its first failed delete (%s) with its backoff", k, err, status)
		}
	}
	if s := d.Stats(); s.DeleteBackoff != 2 || s.TerminateFailures != failures+1 {
		t.Fatalf("after pass 2: %d servers in their delete backoff, %d Terminate failures; want 2, %d", s.DeleteBackoff, s.TerminateFailures, failures+1)
	}
	for _, id := range []string{so.ID, ss.ID} {
		if l := r.onNova(id); len(l) != map[string]int{so.ID: 1, ss.ID: 2}[id] {
			t.Fatalf("after the refused deletes Nova lists %s for %s", describe(l), id)
		}
	}

	// pass 3, inside the backoff: nothing sent, nothing failed anew
	rep = pass("pass 3: inside the delete backoff")
	if n := r.proxy.Fired(); n != 2*(d.cfg.Retries+1) || dels() != 0 || len(rep.Failed) != 0 {
		t.Fatalf("pass 3: %d DELETEs refused in all, %d reached Nova, failed %v; want nothing sent", n, dels(), rep.Failed)
	}

	// pass 4: Nova takes DELETEs again, the backoff is over: the pass's
	// re-issue deletes both (each hidden and marked since its Terminate /
	// DeleteSurplus gave up), one DELETE each
	r.proxy.Clear()
	r.clk.thaw()
	r.clk.skip(delBackoffBase + time.Second)
	reissued := d.Stats().ReissuedDeletes
	rep = pass("pass 4: Nova takes the DELETEs")
	if dels() != 2 || len(rep.Failed) != 0 || d.Stats().ReissuedDeletes != reissued+2 {
		t.Fatalf("pass 4: %d DELETEs reached Nova, failed %v, %d re-issued; want 2, none, 2", dels(), rep.Failed, d.Stats().ReissuedDeletes-reissued)
	}
	r.goneFromNova(so.ID, "the orphan after pass 4")
	if got := r.one(ss.ID, "the surplus id after pass 4"); got.ID != newer.CloudID {
		t.Fatalf("pass 4 left %s of %s, want the newer %s", got.ID, ss.ID, newer.CloudID)
	}
	if s := d.Stats(); s.DeleteBackoff != 0 {
		t.Fatalf("after pass 4: %d servers in their delete backoff, want 0", s.DeleteBackoff)
	}
	for _, id := range []string{orphan.ID, older.ID} {
		if !strings.Contains(logs.String(), "level=WARN msg=\"openstack: a deleted server is listed again, not deleting: delete re-issued\"") ||
			!strings.Contains(logs.String(), "server="+id) {
			t.Fatalf("the re-issued delete of %s is not logged:\n%s", id, logs.String())
		}
	}
}
