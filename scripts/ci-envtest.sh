#!/usr/bin/env bash
# Builds the envtest control plane for deploy/operator's tests — a real etcd and
# kube-apiserver — from the Go module proxy (setup-envtest's download needs the
# internet; building from modules does not). Prints the assets folder on its last
# line, so callers can do: KUBEBUILDER_ASSETS=$(scripts/ci-envtest.sh | tail -1).
#
# Usage: scripts/ci-envtest.sh [OUTDIR]
#   OUTDIR defaults to $IMS_ORCH_ENVTEST or /var/cache/ims-orch/envtest/<versions>.
# Idempotent: each binary is skipped when already present in OUTDIR (a warm run
# takes well under a second). A cold build takes ≈ 6–7 min on 2 cores and peaks
# at ≈ 2.8 GB while linking kube-apiserver; run it once, not in parallel.
set -euo pipefail

KUBE_VERSION=v1.37.2    # k8s.io/kubernetes (kube-apiserver)
STAGING_VERSION=v0.37.2 # every k8s.io staging module, pinned to the same release
ETCD_VERSION=v3.6.16    # go.etcd.io/etcd/server/v3 (package main at its root since 3.6)

OUT=${1:-${IMS_ORCH_ENVTEST:-/var/cache/ims-orch/envtest/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

have() { [ -x "$OUT/$1" ]; }
if have etcd && have kube-apiserver; then
  echo "ci-envtest: cached in $OUT" >&2
  echo "$OUT"
  exit 0
fi

# One builder at a time: a second caller waits for the first instead of
# building the same 2.8 GB link in parallel.
exec 9>"$OUT/.lock"
flock 9
if have etcd && have kube-apiserver; then echo "$OUT"; exit 0; fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "ci-envtest: $*" >&2; }

if ! have etcd; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  printf 'module example.invalid/etcd-build\n\ngo 1.26.0\n' >go.mod
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go build -trimpath -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$OUT/etcd.tmp" "$OUT/etcd"
fi

if ! have kube-apiserver; then
  log "building kube-apiserver $KUBE_VERSION (≈ 5.5 min on 2 cores)"
  mkdir -p "$WORK/kas" && cd "$WORK/kas"
  # k8s.io/kubernetes replaces its staging modules with ./staging paths, which a
  # dependent module cannot use: pin each one to the published release instead.
  go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
  KMOD=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod
  {
    printf 'module example.invalid/kube-apiserver-build\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
    # sample-cli-plugin and sample-controller are refused by the proxy and unused.
    sed -n '/^replace (/,/^)/p' "$KMOD" | awk '/=> .\/staging/{print $1}' |
      grep -vx -e k8s.io/sample-cli-plugin -e k8s.io/sample-controller |
      while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
    printf ')\n'
  } >go.mod
  MINOR=$(echo "$KUBE_VERSION" | cut -d. -f2)
  # Without these the binary reports v0.0.0-master and clients warn about skew.
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
  go build -trimpath -ldflags "$LDF" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
fi

# sed, not head -1: it reads all, so etcd never gets SIGPIPE (rc 141 under pipefail)
"$OUT/etcd" --version | sed -n 1p >&2
"$OUT/kube-apiserver" --version >&2
echo "$OUT"
