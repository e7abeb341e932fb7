#!/usr/bin/env bash
# deploy/operator is its own Go module: controller-runtime, client-go and
# lib-common must never enter the ims-orch module's graph (they would double
# the binary and register flags). Run by `make lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
pat='^(sigs\.k8s\.io/controller-runtime|k8s\.io/client-go|k8s\.io/api|k8s\.io/apimachinery|github\.com/openstack-k8s-operators/)'
bad=$(go list -m all 2>/dev/null | awk '{print $1}' | grep -E "$pat" || true)
if [ -n "$bad" ]; then
  echo "check-operator-isolation: the ims-orch module graph holds Kubernetes operator modules:"; echo "$bad"; exit 1
fi
bad=$(go list -deps ./cmd/ims-orch | grep -E "$pat|^github\.com/ims-orch/ims-orch/deploy/operator" || true)
if [ -n "$bad" ]; then
  echo "check-operator-isolation: bin/ims-orch imports:"; echo "$bad"; exit 1
fi
grep -q '^module github.com/ims-orch/ims-orch/deploy/operator$' deploy/operator/go.mod ||
  { echo "check-operator-isolation: deploy/operator/go.mod is not its own module"; exit 1; }
# the operator builds ims-orch packages through its replace ../..: a dependency
# added to ims-orch must also be in the operator's go.sum (`go mod tidy` there),
# or only the operator's CI step finds out (session 10: golang-lru/v2)
if ! out=$(cd deploy/operator && go list -deps ./... 2>&1 >/dev/null); then
  echo "check-operator-isolation: deploy/operator does not resolve its packages (run go mod tidy in deploy/operator):"; echo "$out"; exit 1
fi
echo "check-operator-isolation: no controller-runtime, client-go or lib-common in the ims-orch module"
