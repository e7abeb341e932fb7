// Package scenario owns the scenario file of `ims-orch plan`: the YAML or
// JSON document that describes one proactive round of ScalIMS (paper 4.2
// step 3, 5.1 and 5.2) by datacenter and VNF names — topology, predicted
// one-way delays, delay bound, control- and data-plane chains with their
// per-instance capacities, current working and buffered instances, current
// service-chain paths, the predicted workload per entry→exit pair and the
// datacenters being drained.
//
// Parse decodes a file strictly (unknown fields, duplicate keys, aliases and
// wrongly typed values are errors naming the field); Scenario.Snapshot checks
// the meaning (unknown datacenter or VNF, non-square or negative delays, zero
// capacity, path length ≠ m+2, duplicate pairs, ...) and turns names into the
// indices of a placement.Snapshot. NewPlanOutput turns a placement.Decision
// back into names: the stable JSON document of docs/schemas/plan-output.schema.json
// and a human table (WriteTable).
//
// Every error about the file's content is a *placement.FieldError whose Field
// is the path of the offending field in the file, e.g.
//
//	workload[3].entry: unknown datacenter "paris"
//
// The package does no I/O of its own: callers hand it bytes and a writer.
package scenario
