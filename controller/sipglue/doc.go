// Package sipglue wires the real SIP VNFs of drivers/local to the
// controllers: it owns the adapters between the statistics agents
// (controller/agent), the DNS discovery servers (controller/discovery), the
// local controllers (controller/local) and the global controller's workload
// intake, and nothing else.
//
//   - StatsSink: agent.Sink → the right DC's local.Controller.ReportStats
//     (Flows = active transactions + active dialogs).
//   - Agents: starts one agent per active P-CSCF/S-CSCF instance on the
//     driver's events and stops it when the instance is gone.
//   - Discovery and its per-DC InstanceSink wrapper: whenever a DC's
//     routable P-CSCF or S-CSCF set changes, the non-overloaded instances
//     (all of them if every one is overloaded) are published: P-CSCFs in
//     their own DC's zone, S-CSCFs in every DC's zone. Buffered, draining,
//     failed and booting instances are not routable, so they leave DNS at
//     once. The wrapped sink (dcroute) still gets every update.
//   - CPMeter: every 5 s, the SIP transactions each S-CSCF counted per
//     "entry DC>exit DC" (htable "cp", see deploy/kamailio: each user's DC
//     is the one the registrar keeps in the Path of its registration) are
//     reported to the global controller as a protocol.WorkloadReport of
//     kind "cp".
//
// The split CP/DP driver that drains CP instances before they go lives in
// drivers/split.
package sipglue
