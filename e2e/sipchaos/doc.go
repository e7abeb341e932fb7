// Package sipchaos holds the real-SIP tests of issue 15. Run with
// scripts/ci-sip-chaos.sh (IMS_SIP_CHAOS=1, root): the chaos test (the real
// `ims-orch serve --driver local` with one DC of Kamailio P-CSCFs and
// S-CSCFs, a steady SIPp call mix, and a SIGKILL and a SIGSTOP of each
// CSCF kind in turn, checked through the daemon's HTTP API), the same
// under calls that carry media (TestChaosMedia: RTP from a Go sender per
// call through the daemon's real data plane, Open vSwitch, counted per call
// at the callee's sockets in the users' namespace; media_test.go) and the
// P-CSCF spreading test (SRV weights from load, RFC 2782 choice by the UAs).
// TestPCSCFNeverRelaysUnrewrittenSDP (sdpguard_test.go: one real Kamailio
// P-CSCF from the template between Go user agents, a media hook the test
// holds: no SDP reaches the user with another address than the entry) needs
// neither IMS_SIP_CHAOS nor root: it runs wherever Kamailio and SIPp are
// installed (drivers/local.Available), in `make test` too, under the
// real-SIP lock it takes itself.
//
// The media calls' SIPp reports each call's start and end through its
// <exec> action (deploy/kamailio/sipp/uac_rtp.xml): SIPp forks twice per
// exec (the parent waits for the first child inside its event loop), then
// system()'s shell, timeout(1) and its shell start: about 5 processes per
// exec, 10 per call, on the 2 shared cores. That adds to SIPp's own lateness under load ("watchdog
// timer tripped" warnings), and the "first new call after a fault ≤ 1 s"
// bound measures that lateness too. SIPp's -trace_logs <log> would avoid
// the forks only if it flushed per message; not checked.
//
// Lock order: a test that runs the daemon's real data plane takes the
// machine's OVS lock (/tmp/ims-orch-ovs.lock) before the SIP lock
// (/tmp/ims-orch-sip.lock), as scripts/ci-sip-chaos.sh's flock(1)s do.
package sipchaos
