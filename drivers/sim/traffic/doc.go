// Package traffic owns the simulated users of the IMS (paper 6.1–6.3): a
// seeded engine on the virtual clock that makes users arrive per datacenter
// following a rate Schedule (Poisson arrivals), pairs them globally
// first-come-first-match, and runs each call: SIP transactions through the
// control-plane chain (P-CSCF of the caller's entry DC → S-CSCF DC → P-CSCF
// of the callee's entry DC) and a voice flow each way through the data-plane
// chain, routed by a Router (the real local controllers in the experiment
// runner) and pinned to its instances for its life.
//
// The model is fluid and per second: a flow is a packet rate added to the
// load of its instances, not a sequence of packets. Every simulated second
// the engine
//
//  1. draws each DC's arrivals (Poisson, one seeded stream per DC), sends
//     each user's REGISTER and pairs users in arrival order;
//  2. ends the calls whose media time is over (BYE, Router.Release);
//  3. starts the new calls (INVITE, Router.Route for both flows);
//  4. loads the CP instances (transactions spread evenly over a VNF's
//     instances in a DC) and the DP instances stage by stage (a stage's
//     offered load is what the earlier stages delivered), through
//     sim.Cloud.SetLoad;
//  5. derives each flow's RTT and loss and each SIP transaction's completion
//     time, reports the per-pair workloads, and lets the cloud's agents
//     report their statistics (sim.Cloud.Report).
//
// Same seed, same schedule, same router behaviour → identical results.
package traffic
