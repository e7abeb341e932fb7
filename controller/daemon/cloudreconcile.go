package daemon

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

// cloudReconciler runs drivers/openstack's Reconciler for the DCs whose
// local controllers this node runs (driver openstack): every
// reconcile_interval it lists our servers, deletes orphans (servers of ours
// no controller holds) after orphan_grace, hands each desired server that
// vanished or is in ERROR to its local controller (which fails it and
// launches a replacement, so the decisions show failed → replaced), and
// deletes the server groups no live server of ours belongs to. The Nova
// poller (driver events) usually sees a vanished server first; the
// reconciliation is the net under it (a missed poll, a server in ERROR
// without a state change, orphans the events never mention).
type cloudReconciler struct {
	r        *openstack.Reconciler
	groups   func(ctx context.Context, dcs []string) ([]string, error)
	dcs      []string
	interval time.Duration
	log      *slog.Logger

	passes  prometheus.Counter
	actions *prometheus.CounterVec
	errs    *prometheus.CounterVec
}

// Reconciliation outcomes, the action label of
// ims_orch_openstack_reconcile_actions_total.
const (
	recOrphanDeleted   = "orphan_deleted"
	recSurplusDeleted  = "surplus_deleted"
	recVanishedReplace = "vanished_replaced"
	recErrorReplace    = "error_replaced"
	recGroupDeleted    = "group_deleted"
	recAdopted         = "adopted"
)

// localsDesired is the desired set of the reconciliation: every instance
// the local controllers hold and have not failed (a failed one is being
// killed; if that fails it is an orphan like any other). An instance
// still launching (no cloud state: its Launch has not returned and the
// poller has not seen its server) is desired too, so its server is never
// an orphan however long the launch takes (a create answered late, a
// poller slower than the grace: revN2 L4) — but the pass that read it
// launching does not hand it over as missing: its list, asked for after
// this set, may predate the create, and by the time the pass hands it
// over the launch may have returned, so its controller would fail and
// replace the server it just launched (seen on the real Nova,
// TestCloudReconcileNova: a replacement replaced again 0.17 s after its
// launch). The next pass sees it launched.
type localsDesired struct {
	locals map[string]*local.Controller
	// vanished hands instance id of dc to its controller (Vanished)
	vanished func(dc, id, why string) bool

	mu        sync.Mutex
	launching map[string]bool // "dc/id" still launching at the last Desired
}

func newLocalsDesired(locals map[string]*local.Controller) *localsDesired {
	return &localsDesired{locals: locals, vanished: func(dc, id, why string) bool {
		c := locals[dc]
		return c != nil && c.Vanished(id, why)
	}}
}

func (l *localsDesired) Desired() []drivers.Spec {
	var out []drivers.Spec
	launching := map[string]bool{}
	for _, dc := range sortedDCs(l.locals) {
		specs, ids := desiredOf(dc, l.locals[dc].Instances())
		out = append(out, specs...)
		for _, id := range ids {
			launching[dc+"/"+id] = true
		}
	}
	l.mu.Lock()
	l.launching = launching
	l.mu.Unlock()
	return out
}

// handover gives a launch or replace action of a pass to the instance's
// controller, unless the instance was launching when the pass read its
// desired set.
func (l *localsDesired) handover(a openstack.Action) bool {
	l.mu.Lock()
	launching := l.launching[a.Spec.DC+"/"+a.Spec.ID]
	l.mu.Unlock()
	return !launching && l.vanished(a.Spec.DC, a.Spec.ID, "cloud reconciliation: "+a.Reason)
}

// desiredOf is the desired set of one DC's instances (not failed) and the
// ids of those still launching (no cloud state).
func desiredOf(dc string, instances []local.Instance) (specs []drivers.Spec, launching []string) {
	for _, in := range instances {
		if in.State == local.StateFailed {
			continue
		}
		specs = append(specs, drivers.Spec{ID: in.ID, DC: dc, VNF: in.VNF})
		if in.CloudState == "" {
			launching = append(launching, in.ID)
		}
	}
	return specs, launching
}

func sortedDCs(l map[string]*local.Controller) []string {
	out := make([]string, 0, len(l))
	for dc := range l {
		out = append(out, dc)
	}
	sort.Strings(out)
	return out
}

// newCloudReconciler wires a reconciliation of cloud over the daemon's
// local controllers and registers its metrics. groups deletes the empty
// server groups of the given DCs (nil: none is deleted).
func (d *Daemon) newCloudReconciler(cloud openstack.Cloud, groups func(context.Context, []string) ([]string, error),
	grace, interval time.Duration, parallelism int) *cloudReconciler {
	dcs := sortedDCs(d.locals)
	cr := &cloudReconciler{groups: groups, dcs: dcs, interval: interval, log: d.log.With("component", "reconcile"),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "openstack_reconcile_passes_total",
			Help: "Reconciliation passes of the OpenStack cloud against the local controllers' instances."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "openstack_reconcile_actions_total",
			Help: "What the OpenStack reconciliation did: orphan_deleted (a server of ours no controller holds, after the grace), " +
				"surplus_deleted (an older server of an instance id a newer one carries, after the grace), " +
				"vanished_replaced / error_replaced (a held server missing or in ERROR, handed to its controller, which replaced it), " +
				"group_deleted (an empty server group of ours), adopted (a held server taken into the registry)."}, []string{"action"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "openstack_reconcile_errors_total",
			Help: "Failures of the OpenStack reconciliation by stage: list (the pass did nothing), delete (a delete of an orphan or a surplus server " +
				"sent and failed; not sent again before its backoff ends: ims_orch_openstack_delete_backoff_servers), groups (the server groups' clean-up)."}, []string{"stage"}),
	}
	for _, a := range []string{recOrphanDeleted, recSurplusDeleted, recVanishedReplace, recErrorReplace, recGroupDeleted, recAdopted} {
		cr.actions.WithLabelValues(a)
	}
	for _, s := range []string{"list", "delete", "groups"} {
		cr.errs.WithLabelValues(s)
	}
	desired := newLocalsDesired(d.locals)
	cr.r = &openstack.Reconciler{Cloud: cloud, Desired: desired, Clock: d.clk, Grace: grace,
		Parallelism: parallelism, DCs: dcs, Handover: desired.handover}
	if d.metrics != nil {
		d.metrics.Registry.MustRegister(cr.passes, cr.actions, cr.errs)
	}
	return cr
}

// buildCloudReconciler sets d.reconcile when the driver is OpenStack and
// this node runs local controllers; with the OpenStack driver it also puts
// the driver's counters on /metrics (openstackCollector), on every node.
func (d *Daemon) buildCloudReconciler() {
	od, ok := d.driver.(*openstack.Driver)
	if !ok {
		return
	}
	if d.metrics != nil {
		d.metrics.Registry.MustRegister(openstackCollector{od})
	}
	if len(d.locals) == 0 {
		return
	}
	oc := od.Config()
	d.reconcile = d.newCloudReconciler(od, od.DeleteEmptyGroups, time.Duration(oc.OrphanGrace),
		time.Duration(oc.ReconcileInterval), oc.Parallelism)
}

// firstFailure reports whether err (a deletion's, maybe Terminate's join of
// several servers) holds a state change worth a warning: a server's first
// failed delete, or a failure that is not the driver's backoff error.
func firstFailure(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return slices.ContainsFunc(j.Unwrap(), firstFailure)
	}
	var b *openstack.DeleteBackoffError
	return !errors.As(err, &b) || (!b.Skipped && b.Failures <= 1)
}

// run reconciles until ctx ends.
func (cr *cloudReconciler) run(ctx context.Context) {
	cr.log.Info("reconciling the OpenStack servers with the local controllers", "dcs", cr.dcs,
		"interval", cr.interval.String(), "orphanGrace", cr.r.Grace.String())
	cr.r.Run(ctx, cr.interval, nil, func(rep openstack.Report, err error) { cr.account(ctx, rep, err) })
}

// pass runs one reconciliation and its accounting (tests).
func (cr *cloudReconciler) pass(ctx context.Context) openstack.Report {
	rep, err := cr.r.Reconcile(ctx)
	cr.account(ctx, rep, err)
	return rep
}

// account logs and counts one pass, then deletes the empty server groups.
// A deletion is logged once per state change of its server: deleted (Info),
// its first failure (Warn; the driver then backs off), not the later
// failures nor the passes inside the backoff (Debug).
func (cr *cloudReconciler) account(ctx context.Context, rep openstack.Report, err error) {
	cr.passes.Inc()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			cr.errs.WithLabelValues("list").Inc()
			cr.log.Warn("reconciliation pass failed", "err", err)
		}
		return
	}
	kinds := map[string]openstack.ActionKind{}
	for _, a := range rep.Actions {
		k := a.Spec.DC + "/" + a.Spec.ID
		if a.Spec.ID == "" {
			k = a.Instance.DC + "/" + a.Instance.ID
		}
		kinds[k] = a.Kind
		switch a.Kind {
		case openstack.ActWait:
			cr.log.Debug("orphan server in its grace period", "server", k, "why", a.Reason)
		case openstack.ActDelete:
			if slices.Contains(rep.Deleted, k) {
				cr.log.Info("orphan server deleted", "server", k, "cloudId", a.Instance.CloudID, "why", a.Reason)
			}
		case openstack.ActSurplus:
			if sk := k + "/" + a.Instance.CloudID; slices.Contains(rep.Surplus, sk) {
				cr.log.Info("surplus server deleted", "server", sk, "state", string(a.Instance.State), "why", a.Reason)
			}
		}
	}
	cr.actions.WithLabelValues(recAdopted).Add(float64(len(rep.Adopted)))
	cr.actions.WithLabelValues(recOrphanDeleted).Add(float64(len(rep.Deleted)))
	cr.actions.WithLabelValues(recSurplusDeleted).Add(float64(len(rep.Surplus)))
	for _, k := range rep.HandedOver {
		label, why := recVanishedReplace, "vanished from the cloud"
		if kinds[k] == openstack.ActReplace {
			label, why = recErrorReplace, "server in ERROR"
		}
		cr.actions.WithLabelValues(label).Inc()
		cr.log.Warn("server handed to its controller for replacement", "instance", k, "why", why)
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Failed)) {
		cr.errs.WithLabelValues("delete").Inc()
		ferr := rep.Failed[k]
		if !firstFailure(ferr) {
			cr.log.Debug("orphan or surplus server still not deleted", "server", k, "err", ferr)
			continue
		}
		cr.log.Warn("orphan or surplus server not deleted", "server", k, "err", ferr) // surplus: DC/id/cloudID
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Backoff)) {
		cr.log.Debug("orphan or surplus server: delete in its backoff", "server", k, "err", rep.Backoff[k])
	}
	if cr.groups == nil || ctx.Err() != nil {
		return
	}
	deleted, gerr := cr.groups(ctx, cr.dcs)
	cr.actions.WithLabelValues(recGroupDeleted).Add(float64(len(deleted)))
	if len(deleted) > 0 {
		cr.log.Info("empty server groups deleted", "groups", strings.Join(deleted, ","))
	}
	if gerr != nil && ctx.Err() == nil {
		cr.errs.WithLabelValues("groups").Inc()
		cr.log.Warn("server group clean-up failed", "err", gerr)
	}
}
