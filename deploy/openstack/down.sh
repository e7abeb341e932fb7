#!/bin/bash
# deploy/openstack/down.sh — stop everything deploy/openstack/up.sh started under $BASE.
# Only processes named by PID files in $BASE/pids are signalled. up.sh started each one
# with setsid, so its PID is also its process-group id: signalling the group (-PID) also
# reaches uwsgi workers and RabbitMQ's Erlang children. State stays on disk for
# post-mortems; up.sh wipes it on the next start. Set PURGE=1 to delete it now.
BASE=${BASE:-$PWD/.openstack-dev}
PIDS=$BASE/pids
[ -d "$PIDS" ] || { echo "nothing to stop in $BASE"; exit 0; }

# clients first, then the services they need; epmd last (rabbitmq deregisters from it)
computes=$(cd "$PIDS" && ls nova-compute-*.pid 2>/dev/null | sed 's/\.pid$//')
order="nova-api nova-scheduler nova-conductor $computes glance-api placement keystone
       fake-neutron mariadb rabbitmq epmd"

alive() { kill -0 "$1" 2>/dev/null; }
for name in $order; do
  f=$PIDS/$name.pid; [ -f "$f" ] || continue
  pid=$(cat "$f")
  alive "$pid" && { kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; }
done
# up to 10 s each to exit on TERM (nova: graceful_shutdown_timeout = 3), then KILL
for name in $order; do
  f=$PIDS/$name.pid; [ -f "$f" ] || continue
  pid=$(cat "$f")
  for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
  if alive "$pid"; then
    echo "$name ($pid) ignored TERM, sending KILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
done
rm -f "$BASE/ready"
if [ "${PURGE:-0}" = 1 ]; then rm -rf "$BASE"; fi
echo "stopped"
