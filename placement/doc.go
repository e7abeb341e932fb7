// Package placement owns the multi-datacenter planning of ScalIMS: CP sizing
// (paper 4.2 step 3), DP proactive scaling (Alg. 1), path computation (Alg. 2)
// with both loop-elimination approaches, the stage-placement dynamic program
// of Eq. (2)–(3), an exhaustive reference solver used to measure the
// heuristic's optimality gap, and the draining of datacenters
// (Snapshot.Excluded: no stage there, P-CSCF load to the nearest DC in
// service, every instance to the buffer; drain.go).
//
// The package is pure: Plan takes an immutable Snapshot and returns a
// Decision. It does no I/O, reads no clock and uses no randomness, so the same
// snapshot always gives the same decision. PlanContext is Plan that gives up
// between two path searches once its context is done (cancel.go).
package placement
