// Package openstack owns ims-orch's OpenStack backend: a drivers.Driver that
// launches, lists and terminates VNF instances as Nova servers through
// gophercloud v2, authenticates the way OpenStack users already do
// (clouds.yaml, OS_CLOUD, OS_* variables, CA bundles via gophercloud/utils
// clientconfig), keeps each N+k pool in its own anti-affinity server group
// (at most k members per host, compute microversion 2.64), and a Reconciler
// that rebuilds the instance registry from the cloud, replaces servers that
// vanished or failed and deletes orphans after a grace period. The daemon
// runs the Reconciler every Config.ReconcileInterval, handing vanished and
// ERROR servers to their local controller (Reconciler.Handover) and
// deleting empty server groups (DeleteEmptyGroups); docs/openstack.md.
//
// Every server of ours carries the drivers.Meta* metadata, the tag "ims-orch"
// and the ims-orch instance id as its name; Launch looks the id up before it
// creates, so a retried Launch never makes a second server.
//
// A server's life as this package sees it:
//
//	Launch ─▶ BUILD ──▶ ACTIVE ──────────────▶ (deleted) gone
//	            │                                  ▲
//	            └─▶ ERROR ─┬─ "No valid host" ─▶ delete, ErrCapacity
//	                       └─ other fault ─────▶ delete, launch again
//	                                               (at most Config.Rebuilds times)
//
// A server Terminate deleted is tombstoned and renamed
// "ims-orch-terminated.<id>" before the DELETE (tombstone.go): Nova can list
// it again, not deleting, for a second or two when the delete hit its
// build; every driver — this process, a restarted one, another node's —
// keeps treating it as gone, the Reconciler of its DC deletes it again if
// need be (ReissueDeletes; a user of the driver without a Reconciler calls
// it after its List, or a lost delete stays until its own clean-up), and a
// Terminate retried after one that gave up sends the DELETE again. A server whose delete failed is not deleted again
// before its backoff ends (delbackoff.go). Of
// several live servers with one instance id the newest is the instance;
// Terminate deletes them all, and the Reconciler (of the node that
// reconciles the DC) an older one once it has been surplus for
// Config.OrphanGrace; List only reads.
// Stats holds the counters the daemon exports as ims_orch_openstack_*.
package openstack
