#!/usr/bin/env bash
# The planning and prediction packages must stay pure: no I/O, clock, network,
# cloud drivers, API or Raft among their dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(go list -deps ./placement ./predictor 2>/dev/null | grep -E '^(net|net/http|os/exec|github.com/hashicorp/raft.*|github.com/ims-orch/ims-orch/(drivers|api|controller).*)$' || true)
if [ -n "$bad" ]; then
  echo "pure packages import I/O or controllers:"; echo "$bad"; exit 1
fi
echo "check-pure: placement and predictor import no I/O packages"
