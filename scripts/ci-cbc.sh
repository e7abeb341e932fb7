#!/usr/bin/env bash
# Installs the COIN-OR CBC MILP solver (Debian package coinor-cbc, binary
# cbc) that solver/exactround runs as a process: the exact whole-round
# reference of the gap test (placement TestRoundGap) and `ims-orch plan
# --exact-round`.
#
# Usage: scripts/ci-cbc.sh        (as root, or with sudo available)
# Idempotent: exits at once when cbc is already on PATH.
set -euo pipefail

if command -v cbc >/dev/null 2>&1; then
  echo "ci-cbc: cbc present ($(command -v cbc))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ci-cbc: need root or sudo to install packages" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt user may hold the lock (parallel installs on shared machines): wait for it.
APT=(apt-get -o DPkg::Lock::Timeout=600)
$SUDO "${APT[@]}" update -qq
$SUDO "${APT[@]}" install -y -q --no-install-recommends coinor-cbc
command -v cbc
