#!/usr/bin/env bash
# Runs the real-SIP chaos test (e2e/sipchaos, issue 15): one DC with 2 P-CSCFs and
# 2 S-CSCFs (Kamailio, launched by drivers/local under the local controller),
# a steady SIPp call mix (TestChaosMedia: calls with RTP through the real data
# plane, Open vSwitch), then SIGKILL and SIGSTOP (4.5 s, then SIGCONT) of a
# P-CSCF and of an S-CSCF, one at a time, 16 s apart (~2.5 min per chaos test).
#
# Needs root (P-CSCFs read the DC's discovery DNS server through a private
# mount namespace; the DNS server listens on port 53) and Kamailio + SIPp
# (scripts/ci-kamailio.sh installs them), Open vSwitch (scripts/ci-ovs.sh). Uses
# 127.56.x.x, 127.10.x.x, 127.0.0.90-112 and the daemon's users' namespace
# only; takes /tmp/ims-orch-sip.lock so it never overlaps another real-SIP run.
#
# Usage: scripts/ci-sip-chaos.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "ci-sip-chaos: needs root (DNS discovery on port 53, private mount namespaces)" >&2
  exit 1
fi
bash scripts/ci-kamailio.sh
bash scripts/ci-ovs.sh # TestChaosMedia: the real data plane (Open vSwitch)
IMS_SIP_CHAOS=1 flock /tmp/ims-orch-sip.lock go test ./e2e/sipchaos/ -run 'TestChaos|TestPCSCFSpread' -count=1 -timeout 12m -v "$@"
