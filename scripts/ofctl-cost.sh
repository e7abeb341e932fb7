#!/bin/sh
# Where an ovs-ofctl bundle's time goes: a private ovsdb-server/ovs-vswitchd
# (namespace ${P}sw, dir /tmp/${P}-ovs), one userspace bridge, then
# scripts/ofctl-cost.py, quiet and with BUSY nice busy loops (bounded:
# timeout, killed by PID) at the script's own niceness (LOOPNICE more):
# run it under nice so the loops, ovs-ofctl and ovs-vswitchd compete
# equally and other work is favoured. Everything is removed at the end.
# usage: flock /tmp/ims-orch-ovs.lock nice -n 10 scripts/ofctl-cost.sh [R] [BUSY]
set -eu
P=${P:-s16pl}
R=${1:-40}
BUSY=${2:-4}
D=/tmp/$P-ovs
NS=${P}sw
BR=${P}b0
here=$(cd "$(dirname "$0")" && pwd)
cleanup() {
	for f in vswitchd.pid ovsdb.pid; do
		[ -f "$D/$f" ] && kill "$(cat "$D/$f")" 2>/dev/null || true
	done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$D"
}
trap cleanup EXIT
cleanup
mkdir -p "$D"
export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D
ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ovsdb-server "$D/conf.db" --remote=punix:"$D/db.sock" --pidfile="$D/ovsdb.pid" \
	--unixctl="$D/ovsdb.ctl" --detach --log-file="$D/ovsdb.log"
ovs-vsctl --db=unix:"$D/db.sock" --no-wait init
ovs-vsctl --db=unix:"$D/db.sock" --no-wait set Open_vSwitch . other_config:max-revalidator=100
ip netns exec "$NS" ovs-vswitchd unix:"$D/db.sock" --pidfile="$D/vswitchd.pid" --unixctl="$D/vswitchd.ctl" \
	--detach --log-file="$D/vswitchd.log"
ovs-vsctl --db=unix:"$D/db.sock" add-br "$BR" -- set bridge "$BR" datapath_type=netdev fail_mode=secure \
	protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15
i=0
while [ ! -S "$D/$BR.mgmt" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
VP=$(cat "$D/vswitchd.pid")
echo "== quiet: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/ofctl-cost.py" "unix:$D/$BR.mgmt" "$VP" "$D" "$R" 1 100 1000
pids=""
j=0
while [ $j -lt "$BUSY" ]; do
	nice -n "${LOOPNICE:-0}" timeout 300 sh -c 'while :; do :; done' &
	pids="$pids $!"
	j=$((j + 1))
done
sleep 5
echo "== with $BUSY busy loops: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/ofctl-cost.py" "unix:$D/$BR.mgmt" "$VP" "$D" "$R" 1 100 1000 || true
echo "== loads after: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in $pids; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
