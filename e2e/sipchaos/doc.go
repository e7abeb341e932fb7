// Package sipchaos holds the real-SIP tests of issue 15, run with
// scripts/ci-sip-chaos.sh (IMS_SIP_CHAOS=1, root): the chaos test (the real
// `ims-orch serve --driver local` with one DC of Kamailio P-CSCFs and
// S-CSCFs, a steady SIPp call mix, and a SIGKILL and a SIGSTOP of each
// CSCF kind in turn, checked through the daemon's HTTP API) and the P-CSCF
// spreading test (SRV weights from load, RFC 2782 choice by the UAs).
package sipchaos
