package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/drivers/openstack"
)

// The OpenStack driver's own counters (openstack.Stats) on /metrics: what
// an operator needs to see of deleted servers Nova keeps listing.
var (
	osReissuedDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_reissued_deletes_total",
		"Deletes the OpenStack driver sent again for servers it had deleted that Nova listed again, not deleting "+
			"(Nova's delete-during-build race, a lost delete, a Terminate that gave up). Sent by the reconciliation pass of the node's DCs (and the waits after a Terminate); rising at every pass: a delete Nova keeps losing; the log names the server.", nil, nil)
	osTombstonesDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_tombstones",
		"Servers the OpenStack driver deleted and keeps hidden (kept 10 min after Nova last listed them).", nil, nil)
	osMarksDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_marked_servers_adopted_total",
		"Servers marked terminated by another OpenStack driver (a previous process, another node) that this one recognised by the mark and kept hidden.", nil, nil)
	osTermFailDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_terminate_failures_total",
		"Terminate calls of the OpenStack driver that returned an error (the local controller retries each tick); not the calls held back whole by the delete backoff, which send nothing.", nil, nil)
	osDupDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_duplicate_servers",
		"Servers of ours beyond the first per instance id in the driver's last list (the newest is taken as the instance; the others are deleted after the orphan grace).", nil, nil)
	osSurplusDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_surplus_servers_deleted_total",
		"Older servers of an instance id this node's OpenStack reconciler deleted (its own DCs) after they had been surplus (a newer server carries the id) for the orphan grace; the log names each.", nil, nil)
	osDelBackoffDesc = prometheus.NewDesc(metrics.Namespace+"_openstack_delete_backoff_servers",
		"Servers whose delete failed (Nova refused it, or it kept failing after the retries) and that the OpenStack driver does not delete again "+
			"before their backoff ends, now (10 s doubling to 5 min; a list that no longer shows the server ends it). Terminate of such an id fails meanwhile; the errors name the server.", nil, nil)
)

// openstackStats is what openstackCollector reads; *openstack.Driver.
type openstackStats interface{ Stats() openstack.Stats }

// openstackCollector exports openstack.Stats at scrape time.
type openstackCollector struct{ d openstackStats }

func (c openstackCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{osReissuedDesc, osTombstonesDesc, osMarksDesc, osTermFailDesc, osDupDesc, osSurplusDesc, osDelBackoffDesc} {
		ch <- d
	}
}

func (c openstackCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	ch <- prometheus.MustNewConstMetric(osReissuedDesc, prometheus.CounterValue, float64(s.ReissuedDeletes))
	ch <- prometheus.MustNewConstMetric(osTombstonesDesc, prometheus.GaugeValue, float64(s.Tombstones))
	ch <- prometheus.MustNewConstMetric(osMarksDesc, prometheus.CounterValue, float64(s.MarksAdopted))
	ch <- prometheus.MustNewConstMetric(osTermFailDesc, prometheus.CounterValue, float64(s.TerminateFailures))
	ch <- prometheus.MustNewConstMetric(osDupDesc, prometheus.GaugeValue, float64(s.Duplicates))
	ch <- prometheus.MustNewConstMetric(osSurplusDesc, prometheus.CounterValue, float64(s.SurplusDeleted))
	ch <- prometheus.MustNewConstMetric(osDelBackoffDesc, prometheus.GaugeValue, float64(s.DeleteBackoff))
}
