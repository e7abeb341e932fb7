#!/usr/bin/env bash
# deploy/operator's tests against a real kube-apiserver and etcd (envtest):
# builds the control plane once (scripts/ci-envtest.sh, cached), then runs the
# operator module's tests with the race detector. With CI=true a missing
# control plane fails the tests instead of skipping them. The generated CRD,
# RBAC and DeepCopy files are regenerated and must not change.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=$(scripts/ci-envtest.sh | tail -1)
cd deploy/operator
go mod download
test -z "$(gofmt -l .)" || { gofmt -l .; echo "gofmt: deploy/operator files above need formatting"; exit 1; }
go vet ./...
# Generated files must be what the markers say: regenerate (controller-gen,
# pinned in the Makefile) and fail on any difference.
make -s manifests generate
git diff --exit-code -- config api || { echo "deploy/operator: CRD/RBAC/DeepCopy are stale: run 'make manifests generate' in deploy/operator and commit"; exit 1; }
"$(go env GOPATH)/bin/staticcheck" ./...
KUBEBUILDER_ASSETS=$assets go test -race -count=1 ./...
