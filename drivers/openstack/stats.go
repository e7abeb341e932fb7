package openstack

// Stats are the driver's counters an operator watches (the daemon exports
// them as ims_orch_openstack_* metrics).
type Stats struct {
	// ReissuedDeletes: deletes re-sent by List and WaitGone for servers a
	// Terminate deleted that Nova listed again, not deleting. A count
	// rising every reissueEvery is a delete Nova keeps losing.
	ReissuedDeletes uint64
	// Tombstones: servers deleted that this driver keeps hidden now.
	Tombstones int
	// MarksAdopted: servers another driver (a previous process, another
	// node) marked terminated, recognised here by the mark.
	MarksAdopted uint64
	// TerminateFailures: Terminate calls that returned an error (the
	// caller retries; the server stays hidden and its delete is re-sent).
	TerminateFailures uint64
}

// Stats returns the driver's counters.
func (d *Driver) Stats() Stats {
	n := d.tombs.len(d.clk.Now())
	d.tombs.mu.Lock()
	defer d.tombs.mu.Unlock()
	return Stats{ReissuedDeletes: d.tombs.reDels, Tombstones: n, MarksAdopted: d.tombs.marks,
		TerminateFailures: d.terminateFailures.Load()}
}
