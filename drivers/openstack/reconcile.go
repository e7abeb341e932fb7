package openstack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// DesiredSet is what the reconciler converges to: the instances the
// controllers want to exist right now.
type DesiredSet interface {
	Desired() []drivers.Spec
}

// Cloud is what the reconciler needs from a driver; *Driver implements it.
type Cloud interface {
	List(ctx context.Context, dc string) ([]drivers.Instance, error)
	// LaunchNew creates a server for a spec the caller knows absent, without
	// waiting for it.
	LaunchNew(ctx context.Context, spec drivers.Spec) (drivers.Instance, error)
	// LaunchActive launches (or finds) and waits for ACTIVE, replacing ERROR
	// servers within its own budget.
	LaunchActive(ctx context.Context, spec drivers.Spec) (drivers.Instance, error)
	// Sequential: launches of this spec's pool must go one at a time.
	Sequential(spec drivers.Spec) bool
	Terminate(ctx context.Context, dc, id string) error
	// DeleteSurplus deletes the server cloudID, an older server of
	// instance id in dc, if a newer one still carries the id; it reports
	// whether it deleted it.
	DeleteSurplus(ctx context.Context, dc, id, cloudID string) (bool, error)
	// ReissueDeletes deletes again the servers of dc ("" = every DC) that
	// were deleted and that its last List showed again, not deleting.
	ReissueDeletes(ctx context.Context, dc string)
	WaitGone(ctx context.Context, dc, id string) error
}

var _ Cloud = (*Driver)(nil)

// ActionKind says what the reconciler does about one instance.
type ActionKind string

// Action kinds, in the order a pass runs them.
const (
	ActAdopt   ActionKind = "adopt"   // desired, exists: take it into the registry
	ActDelete  ActionKind = "delete"  // not desired for longer than the grace period
	ActSurplus ActionKind = "surplus" // an older server of a kept id, surplus for the grace: delete it by Nova id
	ActReplace ActionKind = "replace" // desired, in ERROR: delete, then launch
	ActLaunch  ActionKind = "launch"  // desired, missing (new, or vanished)
	ActWait    ActionKind = "wait"    // orphan inside its grace period: nothing yet
)

// Action is one decision of a pass, with the reason kept for the logs.
type Action struct {
	Kind     ActionKind
	Spec     drivers.Spec     // for adopt, launch, replace
	Instance drivers.Instance // for adopt, replace, delete, wait
	Reason   string
}

// Plan decides a pass, purely: desired specs against the listed instances,
// what the registry knew, since when each orphan has been seen (by DC/id)
// and since when each surplus server has been (by Nova id; surplusServers).
// It returns the actions sorted by kind then DC/id (then Nova id).
//
// A surplus server (an older server of an instance id a newer one carries:
// newer, the ranking of List, the poller and the look-ups) is deleted once
// it has been surplus for the grace: ActSurplus, unless its id is deleted
// or replaced in this pass anyway (Terminate deletes every server of an id).
func Plan(desired []drivers.Spec, actual []drivers.Instance, registry map[string]drivers.Instance,
	orphanSince, surplusSince map[string]time.Time, now time.Time, grace time.Duration) []Action {
	return plan(desired, actual, newestByKey(actual), registry, orphanSince, surplusSince, now, grace)
}

// plan is Plan with have = newestByKey(actual) (several servers with one
// id: the newest is the instance, as for find), which Reconcile computes
// once for the plan and the surplus clocks.
func plan(desired []drivers.Spec, actual []drivers.Instance, have map[string]drivers.Instance, registry map[string]drivers.Instance,
	orphanSince, surplusSince map[string]time.Time, now time.Time, grace time.Duration) []Action {
	want := map[string]bool{}
	var out []Action
	for _, s := range desired {
		k := key(s.DC, s.ID)
		if want[k] {
			continue
		}
		want[k] = true
		in, ok := have[k]
		_, known := registry[k]
		switch {
		case !ok && known:
			out = append(out, Action{Kind: ActLaunch, Spec: s, Reason: "vanished from the cloud"})
		case !ok:
			out = append(out, Action{Kind: ActLaunch, Spec: s, Reason: "desired, not in the cloud"})
		case in.State == drivers.StateError:
			out = append(out, Action{Kind: ActReplace, Spec: s, Instance: in, Reason: "server in ERROR"})
		case !known:
			out = append(out, Action{Kind: ActAdopt, Spec: s, Instance: in, Reason: "found in the cloud, adopted"})
		}
	}
	for _, k := range sortedKeys(have) {
		if want[k] {
			continue
		}
		in := have[k]
		since, seen := orphanSince[k]
		switch {
		case !seen:
			out = append(out, Action{Kind: ActWait, Instance: in, Reason: "not desired: grace period starts"})
		case now.Sub(since) >= grace:
			out = append(out, Action{Kind: ActDelete, Instance: in, Reason: fmt.Sprintf("orphan for %s", now.Sub(since))})
		default:
			out = append(out, Action{Kind: ActWait, Instance: in, Reason: fmt.Sprintf("orphan for %s of %s grace", now.Sub(since), grace)})
		}
	}
	whole := map[string]bool{} // ids whose every server goes in this pass
	for _, a := range out {
		if a.Kind == ActDelete || a.Kind == ActReplace {
			whole[key(a.Instance.DC, a.Instance.ID)] = true
		}
	}
	for _, in := range surplusServers(actual, have) {
		k := key(in.DC, in.ID)
		if since, ok := surplusSince[in.CloudID]; ok && !whole[k] && now.Sub(since) >= grace {
			out = append(out, Action{Kind: ActSurplus, Instance: in,
				Reason: fmt.Sprintf("surplus: newer server %s carries %s", have[k].CloudID, in.ID)})
		}
	}
	order := map[ActionKind]int{ActAdopt: 0, ActDelete: 1, ActSurplus: 2, ActReplace: 3, ActLaunch: 4, ActWait: 5}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].Kind] != order[out[j].Kind] {
			return order[out[i].Kind] < order[out[j].Kind]
		}
		return actionKey(out[i]) < actionKey(out[j])
	})
	return out
}

// surplusServers are the servers of actual that are not the instance of
// their DC/id (have, newestByKey of actual): an older server of an id a
// newer one carries.
func surplusServers(actual []drivers.Instance, have map[string]drivers.Instance) []drivers.Instance {
	var out []drivers.Instance
	for _, in := range actual {
		if have[key(in.DC, in.ID)].CloudID != in.CloudID {
			out = append(out, in)
		}
	}
	return out
}

func key(dc, id string) string { return dc + "/" + id }

// actionKey is the DC/id an action is about; a surplus server's carries
// its Nova id too (DC/id/cloudID: the instance of DC/id is another server).
func actionKey(a Action) string {
	if a.Kind == ActSurplus {
		return key(a.Instance.DC, a.Instance.ID) + "/" + a.Instance.CloudID
	}
	if a.Spec.ID != "" {
		return key(a.Spec.DC, a.Spec.ID)
	}
	return key(a.Instance.DC, a.Instance.ID)
}

// Report is the outcome of one pass. Launches that failed with quota are
// Deferred: they are retried by the next pass, and nothing else waits for them.
type Report struct {
	Actions  []Action
	Adopted  []string // DC/id
	Launched []string
	Replaced []string
	Deleted  []string
	// Surplus are the surplus servers deleted (ActSurplus), as DC/id/cloudID.
	Surplus []string
	// HandedOver are the launch and replace actions given to Handover
	// and taken by the owner.
	HandedOver []string
	Deferred   []string         // quota exhausted: retried by a later pass
	Failed     map[string]error // capacity, invalid spec, budget exhausted, a delete that failed...
	// Backoff are the deletions (orphans by DC/id, surplus servers by
	// DC/id/cloudID) not tried in this pass: a delete of the server failed
	// before and its backoff runs (a *DeleteBackoffError, Skipped). They
	// leave the pass complete: its retry is the backoff's, not Run's.
	Backoff map[string]error
}

// Complete reports whether the pass left nothing to do (deletions in
// their backoff aside).
func (r Report) Complete() bool { return len(r.Deferred) == 0 && len(r.Failed) == 0 }

// Reconciler converges the cloud to a DesiredSet and keeps the registry of
// instances it knows are there. A new Reconciler (ims-orch restarted) starts
// with an empty registry and adopts whatever desired instances it finds,
// launching only the missing ones: no duplicates, and orphans are deleted
// only after Grace, so a controller still rebuilding its desired set after
// a restart does not lose servers.
type Reconciler struct {
	Cloud   Cloud
	Desired DesiredSet
	Clock   clock.Clock
	// Grace before an orphan (ours, not desired) is deleted.
	Grace time.Duration
	// Parallelism bounds concurrent launches and deletions (≥ 1).
	Parallelism int
	// RetryBase is Run's first wait after an incomplete pass (default 2s).
	RetryBase time.Duration
	// DCs restricts the reconciler to these datacenters (nil: every DC of
	// the cloud). A cluster node reconciles only the DCs whose local
	// controllers it runs: another node's servers are not its orphans.
	DCs []string
	// Handover, when set, receives each launch and replace action (a desired
	// server that vanished, is missing or is in ERROR) instead of the
	// reconciler acting on it: the daemon hands them to the local controller
	// that owns the instance, which fails it and launches a replacement under
	// a new id (its decisions show failed → replaced). It returns whether the
	// owner took the action (false: nothing to do, e.g. a launch in flight).
	Handover func(a Action) bool

	mu           sync.Mutex
	registry     map[string]drivers.Instance
	orphanSince  map[string]time.Time
	surplusSince map[string]time.Time // Nova id -> first pass that listed it surplus
}

// NewReconciler returns a reconciler with the driver's grace and parallelism.
func NewReconciler(d *Driver, desired DesiredSet, clk clock.Clock) *Reconciler {
	return &Reconciler{Cloud: d, Desired: desired, Clock: clk,
		Grace: time.Duration(d.cfg.OrphanGrace), Parallelism: d.cfg.Parallelism}
}

// Registry returns a copy of the instances the reconciler knows exist, by DC/id.
func (r *Reconciler) Registry() map[string]drivers.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]drivers.Instance, len(r.registry))
	for k, v := range r.registry {
		out[k] = v
	}
	return out
}

// Reconcile runs one pass: list, Plan, act. Adoption and orphan bookkeeping
// happen first; deletions, replacements and launches then run concurrently
// (at most Parallelism at once), each independent of the others, so a quota
// error on one VNF neither stalls nor undoes the rest.
func (r *Reconciler) Reconcile(ctx context.Context) (Report, error) {
	// the desired set first: an instance launched while the list runs is
	// then at worst an orphan for one pass (inside its grace), never a
	// desired instance missing from a list taken before it existed
	desired := r.Desired.Desired()
	actual, err := r.list(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	// the deletes Nova lost, from that list: List only reads
	r.reissue(ctx)
	now := r.Clock.Now()
	have := newestByKey(actual)
	r.mu.Lock()
	if r.registry == nil {
		r.registry = map[string]drivers.Instance{}
		r.orphanSince = map[string]time.Time{}
		r.surplusSince = map[string]time.Time{}
	}
	plan := plan(desired, actual, have, r.registry, r.orphanSince, r.surplusSince, now, r.Grace)
	// surplus clocks: every pass that lists a server surplus keeps its
	// clock; one that does not (gone, or the instance now) restarts it
	surplus := map[string]bool{}
	for _, in := range surplusServers(actual, have) {
		surplus[in.CloudID] = true
		if _, ok := r.surplusSince[in.CloudID]; !ok {
			r.surplusSince[in.CloudID] = now
		}
	}
	for id := range r.surplusSince {
		if !surplus[id] {
			delete(r.surplusSince, id)
		}
	}
	// orphan clocks: start new ones, forget those no longer orphans
	orphans := map[string]bool{}
	for _, a := range plan {
		if a.Kind == ActWait || a.Kind == ActDelete {
			k := key(a.Instance.DC, a.Instance.ID)
			orphans[k] = true
			if _, ok := r.orphanSince[k]; !ok {
				r.orphanSince[k] = now
			}
		}
	}
	for k := range r.orphanSince {
		if !orphans[k] {
			delete(r.orphanSince, k)
		}
	}
	// the registry mirrors what is listed and desired
	listed := map[string]drivers.Instance{}
	for _, in := range actual {
		listed[key(in.DC, in.ID)] = in
	}
	wanted := map[string]bool{}
	for _, s := range desired {
		wanted[key(s.DC, s.ID)] = true
	}
	for k := range r.registry {
		if _, ok := listed[k]; !ok || !wanted[k] {
			delete(r.registry, k) // vanished (launched again below) or no longer wanted
		}
	}
	rep := Report{Actions: plan, Failed: map[string]error{}, Backoff: map[string]error{}}
	for _, a := range plan {
		if a.Kind == ActAdopt {
			k := key(a.Instance.DC, a.Instance.ID)
			r.registry[k] = a.Instance
			rep.Adopted = append(rep.Adopted, k)
		}
	}
	for k, in := range listed {
		if wanted[k] {
			if _, ok := r.registry[k]; ok {
				r.registry[k] = in // refresh state/host
			}
		}
	}
	r.mu.Unlock()

	var (
		wg  sync.WaitGroup
		rmu sync.Mutex
		sem = make(chan struct{}, max(1, r.Parallelism))
	)
	record := func(list *[]string, k string, in *drivers.Instance, err error) {
		rmu.Lock()
		defer rmu.Unlock()
		switch {
		case err == nil:
			*list = append(*list, k)
		case errors.Is(err, drivers.ErrQuota):
			rep.Deferred = append(rep.Deferred, k)
		case skipped(err):
			rep.Backoff[k] = err
		default:
			rep.Failed[k] = err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case in != nil && err == nil:
			r.registry[k] = *in
		case in == nil && err == nil: // deleted
			delete(r.registry, k)
			delete(r.orphanSince, k)
		}
	}
	slot := func() bool {
		select {
		case sem <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// deletions and replacements: each on its own
	var batch []drivers.Spec             // launches that may go in parallel
	lanes := map[string][]drivers.Spec{} // launches that go one at a time, per pool
	for _, a := range plan {
		if r.Handover != nil && (a.Kind == ActLaunch || a.Kind == ActReplace) {
			if r.Handover(a) {
				rep.HandedOver = append(rep.HandedOver, actionKey(a))
			}
			continue
		}
		switch a.Kind {
		case ActSurplus:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !slot() {
					return // cancelled: the next pass decides again
				}
				defer func() { <-sem }()
				deleted, err := r.Cloud.DeleteSurplus(ctx, a.Instance.DC, a.Instance.ID, a.Instance.CloudID)
				rmu.Lock()
				defer rmu.Unlock()
				switch {
				case skipped(err):
					rep.Backoff[actionKey(a)] = err
				case err != nil:
					rep.Failed[actionKey(a)] = err
				case deleted:
					rep.Surplus = append(rep.Surplus, actionKey(a))
				}
			}()
		case ActDelete, ActReplace:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !slot() {
					record(&rep.Deleted, actionKey(a), nil, ctx.Err())
					return
				}
				defer func() { <-sem }()
				if a.Kind == ActDelete {
					record(&rep.Deleted, actionKey(a), nil, r.Cloud.Terminate(ctx, a.Instance.DC, a.Instance.ID))
					return
				}
				in, err := r.replace(ctx, a.Spec)
				record(&rep.Replaced, actionKey(a), &in, err)
			}()
		case ActLaunch:
			if r.Cloud.Sequential(a.Spec) {
				lk := key(a.Spec.DC, poolName(a.Spec))
				lanes[lk] = append(lanes[lk], a.Spec)
			} else {
				batch = append(batch, a.Spec)
			}
		}
	}
	// a pool whose launches go one at a time: one goroutine walks it
	for _, lk := range sortedKeys(lanes) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range lanes[lk] {
				if !slot() {
					record(&rep.Launched, key(s.DC, s.ID), nil, ctx.Err())
					continue
				}
				in, err := r.Cloud.LaunchActive(ctx, s)
				<-sem
				record(&rep.Launched, key(s.DC, s.ID), &in, err)
			}
		}()
	}
	// the rest: create all, then wait for all, like a hand-written loop
	// would; waiting while creates are still queued in Nova's API would only
	// slow the creates down
	wg.Add(1)
	go func() {
		defer wg.Done()
		created := make([]bool, len(batch))
		var cw sync.WaitGroup
		for i, s := range batch {
			cw.Add(1)
			go func() {
				defer cw.Done()
				if !slot() {
					record(&rep.Launched, key(s.DC, s.ID), nil, ctx.Err())
					return
				}
				_, err := r.Cloud.LaunchNew(ctx, s)
				<-sem
				if err != nil {
					record(&rep.Launched, key(s.DC, s.ID), nil, err)
					return
				}
				created[i] = true
			}()
		}
		cw.Wait()
		for i, s := range batch {
			if !created[i] {
				continue
			}
			cw.Add(1)
			go func() {
				defer cw.Done()
				if !slot() {
					record(&rep.Launched, key(s.DC, s.ID), nil, ctx.Err())
					return
				}
				in, err := r.Cloud.LaunchActive(ctx, s) // finds the server, waits, rebuilds an ERROR
				<-sem
				record(&rep.Launched, key(s.DC, s.ID), &in, err)
			}()
		}
		cw.Wait()
	}()
	wg.Wait()
	for _, l := range [][]string{rep.Adopted, rep.Launched, rep.Replaced, rep.Deleted, rep.Surplus, rep.HandedOver, rep.Deferred} {
		sort.Strings(l)
	}
	return rep, nil
}

// skipped reports a delete not tried: inside its server's delete backoff
// (Terminate's join of several servers: every one of them).
func skipped(err error) bool {
	if errors.Is(err, drivers.ErrBackoff) {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !skipped(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	var b *DeleteBackoffError
	return errors.As(err, &b) && b.Skipped
}

// reissue re-sends the deletes Nova lost in the reconciler's datacenters,
// from the pass's list (Cloud.ReissueDeletes).
func (r *Reconciler) reissue(ctx context.Context) {
	if r.DCs == nil {
		r.Cloud.ReissueDeletes(ctx, "")
		return
	}
	for _, dc := range r.DCs {
		r.Cloud.ReissueDeletes(ctx, dc)
	}
}

// list lists the servers of the reconciler's datacenters.
func (r *Reconciler) list(ctx context.Context) ([]drivers.Instance, error) {
	if r.DCs == nil {
		return r.Cloud.List(ctx, "")
	}
	var out []drivers.Instance
	for _, dc := range r.DCs {
		l, err := r.Cloud.List(ctx, dc)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

// replace deletes an ERROR server and launches its spec again once it is
// gone (its group slot and quota are freed first).
func (r *Reconciler) replace(ctx context.Context, s drivers.Spec) (drivers.Instance, error) {
	if err := r.Cloud.Terminate(ctx, s.DC, s.ID); err != nil {
		return drivers.Instance{}, err
	}
	if err := r.Cloud.WaitGone(ctx, s.DC, s.ID); err != nil {
		return drivers.Instance{}, err
	}
	return r.Cloud.LaunchActive(ctx, s)
}

// Run reconciles every interval on the reconciler's clock, and at once after
// a value on trigger, until ctx ends. After a pass that left work (quota,
// capacity, API errors) the next one comes sooner: RetryBase·2ⁿ for the n-th
// incomplete pass in a row, never later than interval. Each report goes to
// onReport (may be nil).
func (r *Reconciler) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}, onReport func(Report, error)) {
	base := r.RetryBase
	if base <= 0 {
		base = DefaultReconcileRetryBase
	}
	incomplete := 0
	for {
		rep, err := r.Reconcile(ctx)
		if onReport != nil {
			onReport(rep, err)
		}
		wait := interval
		if err != nil || !rep.Complete() {
			wait = min(backoff(base, incomplete), interval)
			incomplete++
		} else {
			incomplete = 0
		}
		tick := make(chan struct{})
		t := r.Clock.AfterFunc(wait, func() { close(tick) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-tick:
		case <-trigger:
			t.Stop()
		}
	}
}

// DefaultReconcileRetryBase is the first wait of Run after an incomplete pass.
const DefaultReconcileRetryBase = 2 * time.Second
