package openstack

// Stats are the driver's counters an operator watches (the daemon exports
// them as ims_orch_openstack_* metrics).
type Stats struct {
	// ReissuedDeletes: deletes re-sent (the Reconciler's ReissueDeletes,
	// WaitGone) for servers a Terminate deleted that Nova listed again, not
	// deleting. A count rising at every pass is a delete Nova keeps losing.
	ReissuedDeletes uint64
	// Tombstones: servers deleted that this driver keeps hidden now.
	Tombstones int
	// MarksAdopted: servers another driver (a previous process, another
	// node) marked terminated, recognised here by the mark.
	MarksAdopted uint64
	// TerminateFailures: Terminate calls that returned an error (the
	// caller retries; the server stays hidden and its delete is re-sent),
	// not the calls that tried no server (drivers.ErrBackoff).
	TerminateFailures uint64
	// Duplicates: servers beyond the first per instance id in the last
	// List of each datacenter (several servers with one id; the newest is
	// the instance: newer). The Reconciler deletes the others once they
	// have been surplus for its grace (DeleteSurplus), and Terminate
	// deletes them all.
	Duplicates int
	// SurplusDeleted: older servers of an instance id that DeleteSurplus
	// deleted (the Reconciler's ActSurplus; the log names each).
	SurplusDeleted uint64
	// DeleteBackoff: servers whose delete failed (refused, or failing
	// after the retries) and is not sent again before its backoff ends
	// (delbackoff.go), now; the callers' errors name each.
	DeleteBackoff int
}

// Stats returns the driver's counters.
func (d *Driver) Stats() Stats {
	n := d.tombs.len(d.clk.Now())
	dups := 0
	d.mu.Lock()
	for _, v := range d.dups {
		dups += v
	}
	d.mu.Unlock()
	d.tombs.mu.Lock()
	defer d.tombs.mu.Unlock()
	return Stats{ReissuedDeletes: d.tombs.reDels, Tombstones: n, MarksAdopted: d.tombs.marks,
		TerminateFailures: d.terminateFailures.Load(), Duplicates: dups,
		SurplusDeleted: d.surplusDeleted.Load(), DeleteBackoff: d.delFails.len(d.clk.Now())}
}
