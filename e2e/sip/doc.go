// Package sip holds the end-to-end test of the real-SIP deployment (issue
// 8): two datacenters on loopback, the real global controller and two local
// controllers (controller/system), drivers/local running Kamailio P-CSCFs and
// S-CSCFs, the statistics agents, the DNS discovery servers and the CP
// workload meter wired by controller/sipglue, and SIPp callers and callees
// placing calls P-CSCF → S-CSCF → P-CSCF at a rate that ramps up and down;
// and the round-level test of the measured CP inputs (issue 14,
// TestSIPRounds): each pair's predicted CP workload against what SIPp sent,
// churn at a steady rate, proactive before reactive scale-out on a ramp.
// The package has no code of its own besides the test; scripts/ci-sip-e2e.sh
// runs it (it needs root, kamailio and sipp, and IMS_SIP_E2E=1). With
// IMS_SIP_KEEP=DIR the Kamailio run dirs (kamailio.log), the controllers' log
// (with every statistics-agent error) and each SIPp's statistics and error
// log are kept under DIR/<test name>/ for a failing run.
package sip
