// Package sipchaos holds the real-SIP tests of issue 15, run with
// scripts/ci-sip-chaos.sh (IMS_SIP_CHAOS=1, root): the chaos test (the real
// `ims-orch serve --driver local` with one DC of Kamailio P-CSCFs and
// S-CSCFs, a steady SIPp call mix, and a SIGKILL and a SIGSTOP of each
// CSCF kind in turn, checked through the daemon's HTTP API), the same
// under calls that carry media (TestChaosMedia: RTP from a Go sender per
// call through the daemon's real data plane, Open vSwitch, counted per call
// at the callee's sockets in the users' namespace; media_test.go) and the
// P-CSCF spreading test (SRV weights from load, RFC 2782 choice by the UAs).
package sipchaos
