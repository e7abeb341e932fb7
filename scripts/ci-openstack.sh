#!/usr/bin/env bash
# scripts/ci-openstack.sh — the OpenStack driver against a real Nova, for CI.
#
# Installs (first run: Debian packages, ~90 s) and starts the loopback OpenStack of
# deploy/openstack/up.sh (~40-60 s), runs drivers/openstack's integration test against it
# (it cannot skip here: IMS_ORCH_OS_CLOUD is set), the driver's backoff paths through a
# fault-injecting proxy, the daemon's real-Nova tests, and always stops the stack again.
# Needs root (apt-get, MariaDB/RabbitMQ as root) and ~2.5 GiB of RAM while it runs.
#
#   scripts/ci-openstack.sh              the real-Nova tests (no benchmarks)
#
# Every step is bounded, so a hang cannot keep this script running for ever:
# the stack's start 25 min (697 s seen at load 20, plus the first run's
# install), the drivers/openstack tests 15 min (351 s at load 20 before
# session 16's two fault tests), TestCloudReconcileNova 4 min (31 s), the CP
# test 6 min (50-70 s of its own; the rest is for its wait for
# /tmp/ims-orch-sip.lock, see that step): this script's own worst case is 50
# min, ~20 min typically, plus the wait for the machine lock below (none in
# CI, where nothing else holds it). That is this script's bound only:
# .ci/run runs make test and the other suites before it within the same 60 min.
#
# It holds the OpenStack machine lock (/tmp/ims-orch-openstack.lock, see
# drivers/machinelocktest) from the stack's start to its stop, so two runs
# never overlap (one run's up.sh or down.sh restarting the stack under the
# other's tests): it waits at most LOCK_WAIT seconds (default 1800, about
# one other typical run) for another holder, then fails naming the lock.
# Its tests inherit the lock and run under it (machinelocktest sees it in
# /proc/self/fdinfo); the CP test takes /tmp/ims-orch-sip.lock after it (the
# lock order OpenStack, OVS, SIP). Run under `flock
# /tmp/ims-orch-openstack.lock ...` (optionally `flock ... flock
# /tmp/ims-orch-sip.lock ...` after it) it runs under the ancestor's lock
# instead; under the OVS or SIP lock alone it fails at once (lock order:
# waiting for OpenStack while holding SIP can wait for ever for a run that
# holds OpenStack and waits for SIP), and under a shared (flock -s) lock too.
# up.sh and down.sh run without any descriptor of the lock file: the stack's
# daemons outlive the script and would keep the lock.
#   BENCH=1 scripts/ci-openstack.sh      also the benchmarks of docs/bench/openstack.md
#   KEEP=1 scripts/ci-openstack.sh       leave the stack running (stop: deploy/openstack/down.sh)
#   IMS_ORCH_LOCK_DIR=DIR ...            the machine lock files' directory (default /tmp; tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export BASE=${BASE:-${TMPDIR:-/tmp}/ims-orch-openstack}

LOCKS=${IMS_ORCH_LOCK_DIR:-/tmp}
OS_LOCK=$LOCKS/ims-orch-openstack.lock
LOCK_WAIT=${LOCK_WAIT:-1800}

# lock_fds PATH: the descriptors of this shell open on PATH
lock_fds() {
  local want f
  want=$(stat -L -c %d:%i "$1" 2>/dev/null) || return 0
  for f in /proc/$$/fd/*; do
    if [ "$(stat -L -c %d:%i "$f" 2>/dev/null)" = "$want" ]; then echo "${f##*/}"; fi
  done
}

# lock_mode PATH: WRITE (exclusive) or READ (shared) when a descriptor of
# this shell holds PATH's flock(2) lock (an ancestor's flock(1) passed it
# down), else nothing. It only looks, as machinelocktest does.
lock_mode() {
  local fd m
  for fd in $(lock_fds "$1"); do
    m=$(awk '$1 == "lock:" && $3 == "FLOCK" && ($5 == "WRITE" || $5 == "READ") {print $5; exit}' "/proc/$$/fdinfo/$fd" 2>/dev/null || true)
    if [ -n "$m" ]; then
      echo "$m"
      return 0
    fi
  done
}

# without_lock CMD...: runs CMD with no descriptor of the OpenStack lock
# file (the stack's daemons would keep the lock after the run)
without_lock() {
  (
    for fd in $(lock_fds "$OS_LOCK"); do eval "exec $fd>&-"; done
    exec "$@"
  )
}

# lock_holders PATH: the processes whose descriptor of PATH holds its
# flock(2) lock (as this user sees them in /proc), one "pid N (command)" a
# line: flock(1) and whatever inherited its descriptor, e.g. a stack
# started under it
lock_holders() {
  local path f pid
  path=$(readlink -f "$1") || return 0
  find /proc/[0-9]*/fd -maxdepth 1 -lname "$path" 2>/dev/null | while read -r f; do
    pid=${f#/proc/}
    pid=${pid%%/*}
    if grep -qE '^lock:.* FLOCK ' "/proc/$pid/fdinfo/${f##*/}" 2>/dev/null; then
      echo "pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120 | sed 's/ *$//'))"
    fi
  done | sort -u
}

# held_by PATH: who holds PATH, for the messages below
held_by() {
  local h
  h=$(lock_holders "$1")
  if [ -n "$h" ]; then
    echo "held by $(echo "$h" | paste -sd ';' | sed 's/;/; /g')"
  else
    echo "its holder is not visible to this user (/proc/locks has its pid)"
  fi
  echo "(if those are the OpenStack stack's own daemons, started under the lock by hand or by an older ci-openstack.sh, they keep it for ever: stop them with deploy/openstack/down.sh)"
}

case $(lock_mode "$OS_LOCK") in
READ)
  echo "ci-openstack: $OS_LOCK is held shared by an ancestor (flock -s): the real-OpenStack run needs it exclusive, run it under \`flock $OS_LOCK\` without -s" >&2
  exit 1 ;;
WRITE)
  echo "== $OS_LOCK is held by an ancestor (flock(1)): running under it" ;;
*)
  for l in "$LOCKS/ims-orch-ovs.lock" "$LOCKS/ims-orch-sip.lock"; do
    if [ -n "$(lock_mode "$l")" ]; then
      echo "ci-openstack: lock order: taking $OS_LOCK while an ancestor (flock(1)) holds $l: take $OS_LOCK first (\`flock $OS_LOCK flock $l scripts/ci-openstack.sh\`) or neither" >&2
      exit 1
    fi
  done
  if [ -w "$OS_LOCK" ] || [ ! -e "$OS_LOCK" ]; then
    exec {OS_LOCK_FD}>>"$OS_LOCK"
  else # another user's lock file: flock(2) needs no write access
    exec {OS_LOCK_FD}<"$OS_LOCK"
  fi
  if ! flock -n "$OS_LOCK_FD"; then
    echo "== waiting for $OS_LOCK (another real-OpenStack run holds it; at most ${LOCK_WAIT} s); $(held_by "$OS_LOCK")"
    if ! flock -w "$LOCK_WAIT" "$OS_LOCK_FD"; then
      echo "ci-openstack: $OS_LOCK not taken within ${LOCK_WAIT} s: another real-OpenStack run holds it; $(held_by "$OS_LOCK")" >&2
      exit 1
    fi
  fi
  echo "== took $OS_LOCK" ;;
esac

stop() {
  local rc=$?
  if [ "${KEEP:-0}" = 1 ]; then
    echo "== KEEP=1: stack left running under $BASE (deploy/openstack/down.sh stops it)"
  else
    echo "== stopping the OpenStack stack"
    without_lock deploy/openstack/down.sh || true
  fi
  if [ "$rc" != 0 ] && [ -d "$BASE/log" ]; then
    echo "== failed (rc=$rc): last lines of the Nova logs in $BASE/log"
    tail -n 15 "$BASE"/log/nova-{api,conductor,scheduler}.log 2>/dev/null || true
  fi
  exit "$rc"
}
trap stop EXIT

echo "== starting OpenStack on 127.0.0.1 (state in $BASE)"
without_lock timeout 25m deploy/openstack/up.sh

export OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml
export IMS_ORCH_OS_CLOUD=ims-orch-dev
unset OS_CLOUD OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_REGION_NAME || true

# required TIMEOUT PATTERN PACKAGE: runs the tests PATTERN names against the
# stack and fails when any of them fails or skips (a skip with the stack up is
# a broken test set-up, not a pass)
required() {
  local out rc
  out=$(mktemp)
  set +e
  go test -count=1 -timeout "$1" -run "$2" -v "$3" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  if grep -qE -- "--- SKIP: ($2)" "$out"; then
    echo "$2: skipped although the stack is up" >&2; rc=1
  fi
  rm -f "$out"
  [ "$rc" = 0 ] || exit "$rc"
}

echo "== drivers/openstack integration tests against the real Nova, and the driver's backoff paths through a fault-injecting proxy"
# TestIntegrationFaults (drivers/openstack/novafaulttest, ~1.5 min): refused
# creates and DELETEs (503, 409, quota 403, policy 403), answers lost after
# Nova did the work (dropped, held past request_timeout); the outcome is
# counted on Nova: one server per id, none left, DELETEs that reached Nova.
# TestIntegrationKeystoneGlanceFaults: Keystone and Glance through proxies of
# their own (the catalog rewritten to name them), a real revoked token, Keystone
# refusing / holding the re-authentication, Glance's image look-up refused.
# TestIntegrationConnectRetriesKeystone (~10 s): Connect through a Keystone
# proxy refusing, losing or holding the first answers (retried, the clients
# work on Nova), refusing throughout (gives up naming Keystone), and a
# password the real Keystone refuses (not retried).
# TestIntegrationReconcilerRefusedDeletes: the Reconciler's orphan and surplus
# DELETEs answered 409 / 500, the backoff, the re-issue. Each test takes
# /tmp/ims-orch-openstack.lock itself (drivers/machinelocktest).
required 15m 'TestIntegrationNova|TestIntegrationQuota|TestConformance|TestIntegrationFaults|TestIntegrationKeystoneGlanceFaults|TestIntegrationConnectRetriesKeystone|TestIntegrationReconcilerRefusedDeletes' ./drivers/openstack/

echo "== the daemon's OpenStack reconciliation against the real Nova (issue 15)"
required 4m 'TestCloudReconcileNova' ./controller/daemon/

echo "== CP workload per pair with --driver openstack: S-CSCF servers on the real Nova, their agents' counters (issue 14)"
# the fake virt driver runs no guest: the test runs what an S-CSCF guest would
# (Kamailio + the agent) on this machine, one per S-CSCF server (see the test).
# It takes /tmp/ims-orch-sip.lock after the OpenStack lock (its Kamailio and
# SIPp run on the fixed loopback addresses) and gives up waiting for it 3 min
# (the SIP lock's reserve) before go test's -timeout: 6 min leaves 3 min to
# wait for another run's SIP test (drivers/local's hold it up to ~100 s each),
# where 4 min left 1 min.
required 6m 'TestOpenStackCPWorkloadFromAgents' ./controller/daemon/

if [ "${BENCH:-0}" = 1 ]; then
  echo "== benchmarks against the real Nova"
  go test -count=1 -timeout 30m -run '^$' -bench 'Launch50|VanishToReplacement' -benchtime 3x ./drivers/openstack/
fi
echo "== OpenStack integration OK"
