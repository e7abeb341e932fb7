#!/usr/bin/env bash
# deploy/operator's tests against a real kube-apiserver and etcd (envtest):
# builds the control plane once (scripts/ci-envtest.sh, cached), then runs the
# operator module's tests with the race detector. With CI=true a missing
# control plane fails the tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=$(scripts/ci-envtest.sh | tail -1)
cd deploy/operator
go mod download
test -z "$(gofmt -l .)" || { gofmt -l .; echo "gofmt: deploy/operator files above need formatting"; exit 1; }
go vet ./...
"$(go env GOPATH)/bin/staticcheck" ./...
KUBEBUILDER_ASSETS=$assets go test -race -count=1 ./...
