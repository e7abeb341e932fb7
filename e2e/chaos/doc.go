// Package chaos holds the cluster chaos test of issue 19: three real
// `ims-orch serve` processes on loopback (raft over mutual TLS, the
// simulated cloud, 3 s intervals, local controllers spread over the nodes)
// under faults: the leader killed with SIGKILL right after each of the five
// steps of a round, the leader stopped (SIGSTOP) for longer than an election
// and resumed (SIGCONT), every node restarted once. After each fault the
// next round must complete on every node, no routing table may complain
// about intervals, the replicated state must be the same on every node, and
// no local controller may apply a decision twice. The package has no code
// besides the test; scripts/ci-chaos.sh runs it (IMS_CHAOS_E2E=1).
package chaos
