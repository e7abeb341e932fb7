#!/usr/bin/env bash
# Runs the cluster chaos test (e2e/chaos, issue 19): three real `ims-orch
# serve` processes on 127.0.0.1 (raft over mutual TLS, simulated cloud, 3 s
# intervals); the leader is killed with SIGKILL right after each of the five
# steps of a round, stopped with SIGSTOP and resumed, and every node is
# restarted once. About 1.5 min; the processes are stopped by PID at the end.
#
# Usage: scripts/ci-chaos.sh [extra go test flags]
# IMS_CHAOS_LOGS=DIR keeps the nodes' logs of a failed run in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
IMS_CHAOS_E2E=1 go test ./e2e/chaos/ -run TestClusterChaos -count=1 -timeout 8m -v "$@"
