package routing

// This file holds what a data plane does to a table besides deciding new
// flows: a retried decision. Route, pick and the placement of new flows are
// in table.go.

// Reroute is Route for a flow that was already decided once and dropped
// (its first packet again, e.g. a data plane retrying flows it dropped
// while the DC could not route them): a forwarded result counts like
// Route's, a drop leaves the counters as they were, so a flow that stays
// unroutable is counted dropped once, not once per retry.
func (t *Table) Reroute(p Packet) Decision {
	c := t.c
	d := t.Route(p)
	if d.Verdict != Forward {
		t.c = c
	}
	return d
}
