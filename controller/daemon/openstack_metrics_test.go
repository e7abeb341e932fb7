package daemon

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

type fixedStats openstack.Stats

func (s fixedStats) Stats() openstack.Stats { return openstack.Stats(s) }

// The OpenStack driver's counters as Prometheus metrics, each from its
// own Stats field and of its kind.
func TestOpenStackCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(openstackCollector{fixedStats{ReissuedDeletes: 3, Tombstones: 7, MarksAdopted: 2, TerminateFailures: 5, Duplicates: 1, SurplusDeleted: 4, DeleteBackoff: 6}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = fmt.Sprintf("%s %g", strings.ToLower(mf.GetType().String()), m.GetCounter().GetValue()+m.GetGauge().GetValue())
	}
	want := map[string]string{
		"ims_orch_openstack_reissued_deletes_total":        "counter 3",
		"ims_orch_openstack_tombstones":                    "gauge 7",
		"ims_orch_openstack_marked_servers_adopted_total":  "counter 2",
		"ims_orch_openstack_terminate_failures_total":      "counter 5",
		"ims_orch_openstack_duplicate_servers":             "gauge 1",
		"ims_orch_openstack_surplus_servers_deleted_total": "counter 4",
		"ims_orch_openstack_delete_backoff_servers":        "gauge 6",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("exported %v, want %v", got, want)
	}
}

// A daemon with the OpenStack driver puts its counters on /metrics, also
// on a node without local controllers (no reconciliation).
func TestOpenStackDriverMetricsRegistered(t *testing.T) {
	cfg := openstack.Config{DCs: map[string]openstack.DCConfig{"dc-a": {}}}
	od, err := openstack.New(cfg, map[string]openstack.Clients{"dc-a": {Compute: &gophercloud.ServiceClient{}}}, clock.NewVirtual(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{driver: od, metrics: metrics.New(noSnapshot{})}
	d.buildCloudReconciler()
	if d.reconcile != nil {
		t.Fatal("a reconciliation without local controllers")
	}
	n, err := testutil.GatherAndCount(d.metrics.Registry, "ims_orch_openstack_reissued_deletes_total", "ims_orch_openstack_tombstones",
		"ims_orch_openstack_marked_servers_adopted_total", "ims_orch_openstack_terminate_failures_total", "ims_orch_openstack_duplicate_servers",
		"ims_orch_openstack_surplus_servers_deleted_total", "ims_orch_openstack_delete_backoff_servers")
	if err != nil || n != 7 {
		t.Fatalf("gathered %d of the 7 OpenStack driver metrics (%v)", n, err)
	}
}

type noSnapshot struct{}

func (noSnapshot) MetricsSnapshot() metrics.Snapshot { return metrics.Snapshot{} }
