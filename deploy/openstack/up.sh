#!/bin/bash
# deploy/openstack/up.sh — a real OpenStack compute API on 127.0.0.1 for ims-orch's
# drivers/openstack integration test and benchmark, from Debian 12 packages, without systemd.
#
#   Keystone (uwsgi, sqlite)      :5000   admin / $PW, project admin, region RegionOne
#   Nova API / conductor / scheduler :8774 + NCOMPUTE nova-compute processes with
#                                 compute_driver = fake.FakeDriver and host = fake-1..fake-N
#   Placement (uwsgi)             :8778
#   Glance (file store, sqlite)   :9292   image "tiny"
#   fake Neutron (fake_neutron.py):9696   enough for servers booted with networks 'none'
#   RabbitMQ :5672, MariaDB :3306 (Nova and Placement; sqlite locks up under parallel boots)
#
# ims-orch's two test datacenters are two availability zones of this one cloud: the fake
# hosts are split into host aggregates carrying AZ metadata (AZS below). One Nova with two
# AZs costs nothing extra; two regions would need a second Nova API, conductor and cell.
#
# Everything (config, databases, logs, PID files) lives under $BASE. down.sh stops what
# this script started, by PID file only. Written from the measured reference in
# /work/shared/reference/openstack (figures there: ~75 s install, ~30-40 s start).
#
#   deploy/openstack/up.sh                   install if needed, configure, start
#   NCOMPUTE=6 AZS="az-a:3 az-b:3" up.sh     fake hosts and how they split into AZs
#   SMOKE=1 up.sh                            also boot 3 servers with the openstack CLI
#
# Output for clients: $BASE/clouds.yaml (cloud "ims-orch-dev"), $BASE/openrc, $BASE/ready.
set -euo pipefail

BASE=${BASE:-$PWD/.openstack-dev}
NCOMPUTE=${NCOMPUTE:-6}
AZS=${AZS:-"az-a:3 az-b:3"}     # NAME:HOSTS ...; hosts are taken in order fake-1, fake-2, ...
SMOKE=${SMOKE:-0}
PW=${PW:-secret}
CLOUD_NAME=${CLOUD_NAME:-ims-orch-dev}
PY=/usr/bin/python3            # Debian's python: a pyenv/venv python3 earlier in PATH lacks the packages
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
ETC=$BASE/etc DATA=$BASE/data LOG=$BASE/log PIDS=$BASE/pids
KS=http://127.0.0.1:5000/v3
NOVA=http://127.0.0.1:8774/v2.1
PLACEMENT=http://127.0.0.1:8778
GLANCE=http://127.0.0.1:9292
HERE=$(cd "$(dirname "$0")" && pwd)
APT="apt-get -o DPkg::Lock::Timeout=600"

T0=$EPOCHREALTIME
say() { awk -v a="$EPOCHREALTIME" -v b="$T0" -v m="$*" 'BEGIN{printf "[%6.1fs] %s\n", a-b, m}'; }
die() { echo "up.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers
# start NAME CMD...: run in its own session (so its PID is its process group: down.sh
# signals the group and catches uwsgi workers and Erlang children), log and PID file.
start() {
  local name=$1; shift
  setsid "$@" > "$LOG/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}
# wait_port PORT NAME [SECONDS]
wait_port() {
  local i
  for i in $(seq 1 $(( ${3:-90} * 5 ))); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && { say "$2 listening on :$1"; return 0; }
    sleep 0.2
  done
  tail -40 "$LOG/$2.log" >&2 || true
  die "$2 did not open port $1"
}
# wait_log FILE REGEX [SECONDS]
wait_log() {
  local i
  for i in $(seq 1 $(( ${3:-90} * 5 ))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
  tail -30 "$1" >&2 || true
  die "timeout waiting for /$2/ in $1"
}
# py MODULE ARGS...: run an OpenStack console script's main() with Debian's python
# (the packages' /usr/bin wrappers are not installed with python3-* only).
pymain() { echo "import sys; sys.argv[0]='$1'; from $1 import main; sys.exit(main())"; }
py() { local m=$1; shift; $PY -c "$(pymain "$m")" "$@"; }
sqlite_wal() { local f; for f in "$@"; do sqlite3 "$f" 'PRAGMA journal_mode=WAL;' >/dev/null; done; }
dburl() { echo "mysql+pymysql://root:x@127.0.0.1:3306/$1?charset=utf8"; }
api() { curl -sS -f -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' "$@"; }

# ---------------------------------------------------------------- 1. packages
install_packages() {
  # python3-* libraries only: the service packages (nova-api, ...) pull debconf prompts,
  # init scripts and a hypervisor we do not want.
  local pkgs="python3-nova python3-keystone python3-placement python3-glance
      python3-openstackclient python3-pymysql rabbitmq-server mariadb-server
      uwsgi-core uwsgi-plugin-python3 jq curl sqlite3"
  if dpkg -s $pkgs >/dev/null 2>&1; then say "packages already installed"; return; fi
  mkdir -p "$BASE"
  # keep maintainer scripts from starting rabbitmq/mariadb as system services
  local policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1
  fi
  { $APT update -q && DEBIAN_FRONTEND=noninteractive $APT install -y -q --no-install-recommends $pkgs; } \
    > "$BASE/apt-install.log" 2>&1 || { tail -30 "$BASE/apt-install.log"; die "apt-get install failed"; }
  if [ "$policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  say "packages installed"
}

# ---------------------------------------------------------------- 2. state dirs
fresh_state() {
  ls "$PIDS"/*.pid >/dev/null 2>&1 && die "PID files in $PIDS: run deploy/openstack/down.sh first"
  rm -rf "$ETC" "$DATA" "$LOG" "$PIDS" "$BASE/ready" "$BASE/clouds.yaml" "$BASE/openrc" "$BASE/token"
  mkdir -p "$ETC"/{keystone,placement,glance,nova} \
           "$DATA"/{rabbit,images,staging,nova,lock,fernet,credential,mysql,mysqlrun} "$LOG" "$PIDS"
}

# ---------------------------------------------------------------- 3. rabbitmq, mariadb
start_infra() {
  cat > "$ETC/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:5672
loopback_users.guest = true
log.console = true
log.file = false
EOF
  echo '[].' > "$ETC/rabbitmq-enabled-plugins"
  start epmd env HOME="$DATA/rabbit" /usr/bin/epmd -address 127.0.0.1
  sleep 0.2
  start rabbitmq env HOME="$DATA/rabbit" RABBITMQ_CONF_ENV_FILE=/dev/null \
    RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_CONFIG_FILE="$ETC/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$ETC/rabbitmq-enabled-plugins" \
    RABBITMQ_MNESIA_BASE="$DATA/rabbit/mnesia" RABBITMQ_LOG_BASE="$LOG/rabbit" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
    ERL_EPMD_ADDRESS=127.0.0.1 /usr/lib/rabbitmq/bin/rabbitmq-server

  # Throw-away MariaDB: no grants, no binlog, no durability; it only has to survive a test run.
  cat > "$ETC/my.cnf" <<EOF
[mariadbd]
user = root
datadir = $DATA/mysql
socket = $DATA/mysqlrun/mysqld.sock
pid-file = $DATA/mysqlrun/mysqld.pid
bind-address = 127.0.0.1
port = 3306
skip-grant-tables
skip-name-resolve
skip-log-bin
performance_schema = off
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
max_connections = 500
character-set-server = utf8mb3
collation-server = utf8mb3_general_ci
EOF
  mariadb-install-db --defaults-file="$ETC/my.cnf" --auth-root-authentication-method=normal \
    --skip-test-db > "$LOG/mariadb-install.log" 2>&1 || { tail -20 "$LOG/mariadb-install.log"; die "mariadb-install-db failed"; }
  start mariadb /usr/sbin/mariadbd --defaults-file="$ETC/my.cnf"
}

# ---------------------------------------------------------------- 4. configuration
# Every service authenticates as admin (one test cloud, one user).
auth_section() {
  printf '[%s]\nauth_type = password\nauth_url = %s\nusername = admin\npassword = %s\n' "$1" "$KS" "$PW"
  printf 'project_name = admin\nuser_domain_name = Default\nproject_domain_name = Default\n'
  [ "${2:-}" = noregion ] || printf 'region_name = RegionOne\n'
}
authtoken() {
  auth_section keystone_authtoken noregion
  printf 'www_authenticate_uri = %s\nservice_token_roles_required = false\n' "$KS"
}

write_configs() {
  cat > "$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
debug = false
[database]
connection = sqlite:///$DATA/keystone.sqlite
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = $DATA/fernet
[fernet_receipts]
key_repository = $DATA/fernet
[credential]
key_repository = $DATA/credential
[cache]
enabled = true
backend = dogpile.cache.memory
EOF

  { printf '[DEFAULT]\ndebug = false\n[api]\nauth_strategy = keystone\n[placement_database]\nconnection = %s\n' "$(dburl placement)"
    authtoken; } > "$ETC/placement/placement.conf"

  # Glance: keystone pipeline without the image cache / property protection filters.
  cat > "$ETC/glance/glance-api-paste.ini" <<'EOF'
[pipeline:glance-api-keystone]
pipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation authtoken context rootapp
[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app
[app:apiversions]
paste.app_factory = glance.api.versions:create_resource
[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory
[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory
[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = glance
oslo_config_program = glance-api
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
EOF
  { cat <<EOF
[DEFAULT]
debug = false
bind_host = 127.0.0.1
bind_port = 9292
workers = 0
node_staging_uri = file://$DATA/staging
[database]
connection = sqlite:///$DATA/glance.sqlite
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $DATA/images/
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/lock
EOF
    authtoken; } > "$ETC/glance/glance-api.conf"

  # Nova API: the v2.1 keystone pipeline only.
  cat > "$ETC/nova/api-paste.ini" <<'EOF'
[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: oscomputeversions
/v2.1: oscomputeversion_v2
/v2.1/+: openstack_compute_api_v21
[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit authtoken keystonecontext osapi_compute_app_v21
[filter:request_log]
paste.filter_factory = nova.api.openstack.requestlog:RequestLog.factory
[filter:compute_req_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory
[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory
[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory
[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory
[pipeline:oscomputeversions]
pipeline = cors faultwrap request_log http_proxy_to_wsgi oscomputeversionapp
[pipeline:oscomputeversion_v2]
pipeline = cors compute_req_id faultwrap request_log http_proxy_to_wsgi oscomputeversionapp_v2
[app:oscomputeversionapp]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory
[app:oscomputeversionapp_v2]
paste.app_factory = nova.api.openstack.compute.versions:VersionsV2.factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = nova
[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
EOF
  { cat <<EOF
[DEFAULT]
debug = false
transport_url = rabbit://guest:guest@127.0.0.1:5672/
compute_driver = fake.FakeDriver
state_path = $DATA/nova
instances_path = $DATA/nova/instances
my_ip = 127.0.0.1
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
use_rootwrap_daemon = false
# else the first periodic tasks (host discovery...) wait up to 60 s
periodic_fuzzy_delay = 0
graceful_shutdown_timeout = 3
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = $(dburl nova_api)
[database]
connection = $(dburl nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
# parallel boots into one hard anti-affinity group race on the compute's late group
# check and are rescheduled: give them enough alternates
max_attempts = 10
[oslo_concurrency]
lock_path = $DATA/lock
[vnc]
enabled = false
# defaults are 10 instances / 10 group members: unlimited here, tests lower them per project
[quota]
instances = -1
cores = -1
ram = -1
server_groups = -1
server_group_members = -1
key_pairs = -1
metadata_items = -1
[glance]
region_name = RegionOne
[oslo_messaging_notifications]
driver = noop
EOF
    auth_section placement; auth_section neutron; authtoken; } > "$ETC/nova/nova.conf"
  local n
  for n in $(seq 1 "$NCOMPUTE"); do printf '[DEFAULT]\nhost = fake-%s\n' "$n" > "$ETC/nova/compute-$n.conf"; done
}

# ---------------------------------------------------------------- 5. databases + API servers
setup_keystone() {
  local m="py keystone.cmd.manage --config-file $ETC/keystone/keystone.conf"
  $m db_sync
  $m fernet_setup --keystone-user root --keystone-group root
  $m credential_setup --keystone-user root --keystone-group root
  $m bootstrap --bootstrap-password "$PW" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-admin-url $KS --bootstrap-internal-url $KS --bootstrap-public-url $KS
  sqlite_wal "$DATA/keystone.sqlite"
  # one process, one thread (sqlite writers); uwsgi --http-socket drops kept-alive
  # connections, so tell clients to close them
  start keystone env OS_KEYSTONE_CONFIG_DIR="$ETC/keystone" \
    /usr/bin/uwsgi --plugin python3 --http-socket 127.0.0.1:5000 \
    --wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 1 \
    --die-on-term --lazy-apps --buffer-size 65535 --disable-logging --add-header 'Connection: close'
  say "keystone db ready, keystone started"
}
setup_glance() {
  py glance.cmd.manage --config-file "$ETC/glance/glance-api.conf" db_sync
  sqlite_wal "$DATA/glance.sqlite"
  start glance-api $PY -c "$(pymain glance.cmd.api)" --config-file "$ETC/glance/glance-api.conf"
  say "glance db ready, glance-api started"
}
setup_nova() {
  wait_port 3306 mariadb 60
  mariadb -h 127.0.0.1 -P 3306 -u root -e \
    'CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0; CREATE DATABASE placement;'
  py placement.cmd.manage --config-file "$ETC/placement/placement.conf" db sync
  start placement env OS_PLACEMENT_CONFIG_DIR="$ETC/placement" \
    /usr/bin/uwsgi --plugin python3 --http-socket 127.0.0.1:8778 \
    --wsgi-file /usr/bin/placement-api --master --processes 1 --threads 8 \
    --die-on-term --lazy-apps --buffer-size 65535 --disable-logging --add-header 'Connection: close'
  local m="py nova.cmd.manage --config-file $ETC/nova/nova.conf"
  $m api_db sync
  $m cell_v2 map_cell0 --database_connection "$(dburl nova_cell0)"
  $m cell_v2 create_cell --name cell1
  $m db sync
  say "nova+placement dbs ready"
}
bootstrap() {
  # the three database setups are independent: run them side by side (~2x faster)
  setup_keystone > "$LOG/setup-keystone.log" 2>&1 & local jk=$!
  setup_glance   > "$LOG/setup-glance.log" 2>&1 & local jg=$!
  setup_nova     > "$LOG/setup-nova.log" 2>&1 & local jn=$!
  start fake-neutron $PY "$HERE/fake_neutron.py" 127.0.0.1 9696
  local j
  for j in $jk $jg $jn; do
    wait $j || { tail -n 30 "$LOG"/setup-*.log >&2; die "database setup failed"; }
  done
  say "all databases ready"
}

# ---------------------------------------------------------------- 6. nova, catalog, hosts
start_nova_control() {
  wait_port 5672 rabbitmq 90
  start nova-conductor $PY -c "$(pymain nova.cmd.conductor)" --config-file "$ETC/nova/nova.conf"
  start nova-scheduler $PY -c "$(pymain nova.cmd.scheduler)" --config-file "$ETC/nova/nova.conf"
  start nova-api $PY -c "$(pymain nova.cmd.api)" --config-file "$ETC/nova/nova.conf"
}

get_token() {
  wait_port 5000 keystone
  TOKEN=$(curl -s -i -H 'Content-Type: application/json' \
    -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'"$PW"'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' \
    $KS/auth/tokens | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
  [ -n "$TOKEN" ] || { tail -30 "$LOG/keystone.log" >&2; die "no keystone token"; }
  echo "$TOKEN" > "$BASE/token"
}

register_catalog() {
  add_service() { # TYPE NAME URL
    local sid i
    sid=$(api -d '{"service":{"type":"'$1'","name":"'$2'","enabled":true}}' $KS/services | jq -r .service.id)
    for i in public internal admin; do
      api -d '{"endpoint":{"service_id":"'$sid'","interface":"'$i'","region_id":"RegionOne","url":"'$3'"}}' \
        $KS/endpoints >/dev/null
    done
  }
  add_service compute nova "$NOVA"
  add_service placement placement "$PLACEMENT"
  add_service image glance "$GLANCE"
  add_service network neutron http://127.0.0.1:9696
  say "service catalog ready"
}

start_computes() {
  # only once the conductor consumes RPC, else each compute stalls 10 s waiting for it
  wait_log "$LOG/nova-conductor.log" 'Starting conductor node' 90
  local n
  for n in $(seq 1 "$NCOMPUTE"); do
    start nova-compute-$n $PY -c "$(pymain nova.cmd.compute)" --config-file "$ETC/nova/nova.conf" \
      --config-file "$ETC/nova/compute-$n.conf"
  done
  say "started $NCOMPUTE nova-compute (fake.FakeDriver)"
}

image_and_flavor() {
  wait_port 9292 glance-api
  head -c 1024 /dev/zero > "$DATA/tiny.img"
  local img
  img=$(api -d '{"name":"tiny","disk_format":"raw","container_format":"bare","visibility":"public"}' \
        $GLANCE/v2/images | jq -r .id)
  curl -sS -f -X PUT -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$DATA/tiny.img" $GLANCE/v2/images/$img/file
  say "image 'tiny' uploaded ($img)"
  wait_port 8774 nova-api
  api -d '{"flavor":{"name":"m1.tiny","ram":64,"vcpus":1,"disk":1,"id":"1"}}' $NOVA/flavors >/dev/null
  say "flavor m1.tiny created"
}

wait_hosts() { # every fake host up in Nova and with inventory in Placement
  local i up=0 nrp=0
  for i in $(seq 1 600); do
    up=$(api -H 'OpenStack-API-Version: compute 2.53' $NOVA/os-hypervisors 2>/dev/null \
         | jq '[.hypervisors[] | select(.state=="up")] | length' 2>/dev/null || echo 0)
    nrp=$(api -H 'OpenStack-API-Version: placement 1.29' "$PLACEMENT/resource_providers?resources=VCPU:1" \
          2>/dev/null | jq '.resource_providers|length' 2>/dev/null || echo 0)
    [ "${up:-0}" -ge "$NCOMPUTE" ] && [ "${nrp:-0}" -ge "$NCOMPUTE" ] && { say "$up/$NCOMPUTE fake hosts up with inventory"; return; }
    sleep 0.2
  done
  die "only $up/$NCOMPUTE fake hosts up ($nrp in placement) after 120 s"
}

# One host aggregate per AZ. Nova mirrors aggregate membership into Placement, whose
# AZ pre-filter (query_placement_for_availability_zone, on by default) then keeps a
# server inside the AZ it asked for.
make_zones() {
  local next=1 spec name count agg h
  for spec in $AZS; do
    name=${spec%%:*} count=${spec##*:}
    agg=$(api -H 'OpenStack-API-Version: compute 2.41' \
          -d '{"aggregate":{"name":"agg-'$name'","availability_zone":"'$name'"}}' \
          $NOVA/os-aggregates | jq -r .aggregate.id)
    for h in $(seq "$next" $(( next + count - 1 ))); do
      [ "$h" -le "$NCOMPUTE" ] || die "AZS asks for more hosts than NCOMPUTE=$NCOMPUTE"
      api -d '{"add_host":{"host":"fake-'$h'"}}' $NOVA/os-aggregates/$agg/action >/dev/null
    done
    say "availability zone $name: fake-$next..fake-$(( next + count - 1 ))"
    next=$(( next + count ))
  done
}

client_files() {
  cat > "$BASE/openrc" <<EOF
export OS_AUTH_URL=$KS
export OS_USERNAME=admin
export OS_PASSWORD=$PW
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_IDENTITY_API_VERSION=3
export OS_COMPUTE_API_VERSION=2.64
EOF
  # what ims-orch reads (OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml OS_CLOUD=$CLOUD_NAME)
  cat > "$BASE/clouds.yaml" <<EOF
clouds:
  $CLOUD_NAME:
    auth:
      auth_url: $KS
      username: admin
      password: $PW
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
  echo '{"ready": true}' > "$BASE/ready"
}

smoke() { # three servers into a hard anti-affinity group with the openstack CLI, then removed
  . "$BASE/openrc"
  local gid i na
  gid=$(openstack server group create --policy anti-affinity smoke -f value -c id)
  openstack server create --flavor m1.tiny --image tiny --nic none --hint group="$gid" \
    --min 3 --max 3 smoke -f value -c id >/dev/null
  for i in $(seq 1 300); do
    na=$(api "$NOVA/servers/detail" | jq '[.servers[] | select(.status=="ACTIVE")] | length')
    [ "$na" -ge 3 ] && break
    api "$NOVA/servers/detail" | jq -e '[.servers[] | select(.status=="ERROR")] | length == 0' >/dev/null \
      || die "smoke: a server went to ERROR"
    sleep 0.2
  done
  [ "$na" -ge 3 ] || die "smoke: only $na/3 servers ACTIVE after 60 s"
  openstack server delete --wait $(openstack server list -f value -c ID)
  openstack server group delete "$gid"
  say "smoke test OK"
}

install_packages
T0=$EPOCHREALTIME   # timings below are from the start of the services
fresh_state
start_infra
write_configs
bootstrap
start_nova_control
get_token
register_catalog
start_computes
image_and_flavor
wait_hosts
make_zones
client_files
say "STACK IS UP: OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml OS_CLOUD=$CLOUD_NAME (image tiny, flavor m1.tiny, networks none)"
if [ "$SMOKE" = 1 ]; then smoke; fi
