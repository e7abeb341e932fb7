#!/usr/bin/env bash
# Runs the real-SIP chaos tests (e2e/sipchaos, issue 15): one DC with 2 P-CSCFs and
# 2 S-CSCFs (Kamailio, launched by drivers/local under the local controller, the
# daemon's real data plane on Open vSwitch), a steady SIPp call mix, then SIGKILL
# and SIGSTOP (4.5 s, then SIGCONT) of a P-CSCF and of an S-CSCF, one at a time,
# 16 s apart (~2.5 min per chaos test): TestChaos (main's mix) and TestPCSCFSpread;
# and TestPCSCFNeverRelaysUnrewrittenSDP (one real P-CSCF, Go UAs, a slow media hook:
# no SDP reaches the user with another address than the entry; a few seconds; not gated
# by IMS_SIP_CHAOS or root, so `make test` runs it too wherever Kamailio and SIPp are).
# TestChaosMedia (calls with RTP through the real data plane, counted at the
# callees; docs/sip.md) runs as its own step after them (session 15: joined CI once
# the calls around the chain were closed in the P-CSCF template and the rule
# update left the plane's lock; before, 97.1-99.3 % of RTP arrived against 99 %).
#
# Needs root (P-CSCFs read the DC's discovery DNS server through a private
# mount namespace; the DNS server listens on port 53), Kamailio + SIPp
# (scripts/ci-kamailio.sh installs them) and Open vSwitch (scripts/ci-ovs.sh).
# Uses 127.10.x.x (the daemon's DC), 127.57.x.x (TestPCSCFSpread's),
# 127.0.0.71-75, 127.0.0.90-110, 127.68.0.1-4 (TestPCSCFNeverRelaysUnrewrittenSDP|TestPCSCFReportsReliable18xAndUPDATE's)
# and the daemon's users' namespace only.
# Takes /tmp/ims-orch-ovs.lock, then /tmp/ims-orch-sip.lock (the lock order
# everywhere: OVS before SIP), so it never overlaps another real-OVS or
# real-SIP run; the tests see the inherited locks and run under them.
#
# Usage: scripts/ci-sip-chaos.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "ci-sip-chaos: needs root (DNS discovery on port 53, private mount namespaces)" >&2
  exit 1
fi
bash scripts/ci-kamailio.sh
bash scripts/ci-ovs.sh # the daemon's real data plane (Open vSwitch)
IMS_SIP_CHAOS=1 flock /tmp/ims-orch-ovs.lock flock /tmp/ims-orch-sip.lock \
  go test ./e2e/sipchaos/ -run 'TestChaos$|TestPCSCFSpread|TestPCSCFNeverRelaysUnrewrittenSDP|TestPCSCFReportsReliable18xAndUPDATE' -count=1 -timeout 7m -v "$@"
# the chaos faults under calls that carry RTP (~2.5 min), a step of its own so a
# failure names it:
IMS_SIP_CHAOS=1 flock /tmp/ims-orch-ovs.lock flock /tmp/ims-orch-sip.lock \
  go test ./e2e/sipchaos/ -run 'TestChaosMedia$' -count=1 -timeout 8m -v "$@"
