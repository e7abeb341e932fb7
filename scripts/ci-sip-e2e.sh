#!/usr/bin/env bash
# Runs the real-SIP end-to-end test (e2e/sip, issue 8): two datacenters on
# loopback, the real global and local controllers, Kamailio P-CSCFs and
# S-CSCFs launched by drivers/local, SIPp callers and callees; the call rate
# ramps up and down (~2.5 min), then an S-CSCF is killed under load.
#
# Needs root (P-CSCFs read the DC's discovery DNS server through a private
# mount namespace; the DNS servers listen on port 53) and Kamailio + SIPp
# (scripts/ci-kamailio.sh installs them). Uses 127.80.x.x, 127.81.x.x and
# 127.0.0.16-47 only; do not run two of it at once on one machine.
#
# Usage: scripts/ci-sip-e2e.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "ci-sip-e2e: needs root (DNS discovery on port 53, private mount namespaces)" >&2
  exit 1
fi
bash scripts/ci-kamailio.sh
IMS_SIP_E2E=1 go test ./e2e/sip/ -run TestSIPEndToEnd -count=1 -timeout 6m -v "$@"
