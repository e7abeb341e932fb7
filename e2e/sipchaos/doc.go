// Package sipchaos holds the real-SIP chaos test (issue 15): one DC of real
// Kamailio P-CSCFs and S-CSCFs under the local controller, a steady SIPp
// call mix, and a SIGKILL and a SIGSTOP of each CSCF kind in turn. Run it
// with scripts/ci-sip-chaos.sh (IMS_SIP_CHAOS=1, root).
package sipchaos
