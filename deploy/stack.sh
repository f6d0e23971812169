#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local stack: PostgreSQL, Redis, Kafka (KRaft), Cassandra, MinIO (S3),
# Mailpit (SMTP) and Meilisearch on 127.0.0.1.
# Data, logs, PIDs and generated secrets live under ${STATE_DIR:-<repo>/.state}.
#
#   deploy/stack.sh up              install what is missing, start what is not
#                                   running, wait until ready, write stack.env
#   deploy/stack.sh down            stop the processes this script started
#   deploy/stack.sh status          one line per service; exit 3 if any is down
#   deploy/stack.sh stop SERVICE    stop one service this script started (its
#                                   recorded PID only), e.g. to test an outage
#   deploy/stack.sh start SERVICE   start one stopped service and wait until ready
#   deploy/stack.sh createdb NAME   add a database owned by the platform role
#
# Ports (env): PG_PORT=25432 REDIS_PORT=26379 KAFKA_PORT=29092
#   KAFKA_CONTROLLER_PORT=29093 CQL_PORT=29042 CASSANDRA_STORAGE_PORT=27000
#   CASSANDRA_JMX_PORT=27199 S3_PORT=29000 S3_CONSOLE_PORT=29001 SMTP_PORT=21025
#   MAILPIT_HTTP_PORT=28025 MEILI_PORT=27700
#   All below Linux's ephemeral range (32768-60999): a server restarted while clients
#   hold many connections must never find its port taken as some socket's local port.
# MinIO and Mailpit are built once per machine with `go install` into
#   ${AGORA_BIN_CACHE:-${XDG_CACHE_HOME:-~/.cache}/agora/bin}; MINIO_BIN / MAILPIT_BIN
#   use a given binary instead.
# Meilisearch binary (env): MEILI_BIN, else meilisearch on the PATH, else
#   ../shared/bin/meilisearch next to the repository (copied into the same bin cache,
#   where a checkout elsewhere on the machine then finds it), else that cached copy,
#   else the official release (MEILI_VERSION=v1.50.0) downloaded into the state folder.
# Readiness deadlines in seconds (env): PG_READY_TIMEOUT=60 REDIS_READY_TIMEOUT=60
#   KAFKA_READY_TIMEOUT=60 CASSANDRA_READY_TIMEOUT=120 S3_READY_TIMEOUT=60
#   SMTP_READY_TIMEOUT=60 MEILI_READY_TIMEOUT=60
# Heap (env): KAFKA_HEAP_OPTS="-Xms512m -Xmx1g" CASSANDRA_HEAP_OPTS="-Xms1G -Xmx1G"
# Databases (env): PG_SHARD_DBS=posts_shard_0,posts_shard_1 is what `up` creates
#   and writes to stack.env; `createdb` alone does not change stack.env.
# Python with confluent-kafka and cassandra-driver (env): PYTHON=python3
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(dirname "$DEPLOY_DIR")"
STATE="$(realpath -m "${STATE_DIR:-$REPO_ROOT/.state}")"
PYTHON="${PYTHON:-$(command -v python3 || command -v python || echo python3)}"

# shellcheck source=lib/common.sh
. "$DEPLOY_DIR/lib/common.sh"
# shellcheck source=lib/postgres.sh
. "$DEPLOY_DIR/lib/postgres.sh"
# shellcheck source=lib/redis.sh
. "$DEPLOY_DIR/lib/redis.sh"
# shellcheck source=lib/kafka.sh
. "$DEPLOY_DIR/lib/kafka.sh"
# shellcheck source=lib/cassandra.sh
. "$DEPLOY_DIR/lib/cassandra.sh"
# shellcheck source=lib/minio.sh
. "$DEPLOY_DIR/lib/minio.sh"
# shellcheck source=lib/mailpit.sh
. "$DEPLOY_DIR/lib/mailpit.sh"
# shellcheck source=lib/meilisearch.sh
. "$DEPLOY_DIR/lib/meilisearch.sh"

SERVICES=(postgres redis kafka cassandra minio mailpit meilisearch)
START_ORDER=(cassandra kafka postgres redis minio mailpit meilisearch)   # slowest first
ENV_FILE="$STATE/stack.env"

usage() {
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# One stack.sh at a time per state folder.
take_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 900 9 || die "another deploy/stack.sh is running on $STATE"
}

check_ports() {
  local v
  for v in PG_PORT REDIS_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT CQL_PORT \
    CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT S3_PORT S3_CONSOLE_PORT SMTP_PORT \
    MAILPIT_HTTP_PORT MEILI_PORT; do
    if ! [[ "${!v}" =~ ^[0-9]{1,5}$ ]] || [ "${!v}" -lt 1 ] || [ "${!v}" -gt 65535 ]; then
      die "$v must be a port number, not '${!v}'"
    fi
  done
}

prepare_state_dir() {
  check_ports
  mkdir -p "$STATE"
  # The postgres OS user must be able to traverse it (adds x only).
  chmod a+x "$STATE"
}

check_python_clients() {
  "$PYTHON" -c 'import confluent_kafka, cassandra.cluster' 2>/dev/null ||
    die "$PYTHON lacks confluent-kafka or cassandra-driver (pip install confluent-kafka cassandra-driver)"
}

write_env() {
  local tmp="$ENV_FILE.tmp"
  (
    umask 077
    cat >"$tmp" <<EOF
PG_HOST=127.0.0.1
PG_PORT=$PG_PORT
PG_USER=$PG_USER
PG_PASSWORD=$(secret pg_password 24)
PG_IDENTITY_DB=$PG_IDENTITY_DB
PG_SHARD_DBS=$PG_SHARD_DBS
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
CQL_HOSTS=127.0.0.1
CQL_PORT=$CQL_PORT
CQL_KEYSPACE=$CQL_KEYSPACE
JWT_SECRET=$(secret jwt_secret 32)
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_REGION=us-east-1
S3_ACCESS_KEY=$(secret s3_access_key 10)
S3_SECRET_KEY=$(secret s3_secret_key 24)
S3_BUCKET=agora-media
S3_PUBLIC_URL=http://127.0.0.1:$S3_PORT/agora-media
SMTP_HOST=127.0.0.1
SMTP_PORT=$SMTP_PORT
SMTP_FROM=no-reply@agora.localhost
MAILPIT_URL=http://127.0.0.1:$MAILPIT_HTTP_PORT
EMAIL_ENCRYPTION_KEY=$(secret email_encryption_key 32)
EMAIL_HASH_KEY=$(secret email_hash_key 32)
AGORA_PROFILE=development
MEILI_URL=http://127.0.0.1:$MEILI_PORT
MEILI_MASTER_KEY=$(secret meili_master_key 32)
EOF
  )
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

ensure_topics() {
  [ -f "$REPO_ROOT/stores/kafka_admin.py" ] || return 0
  info "kafka: python -m ops topics ensure"
  (
    cd "$REPO_ROOT"
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
    "$PYTHON" -m ops topics ensure
  ) || die "kafka: 'python -m ops topics ensure' failed"
}

summary() {
  cat <<EOF

Local stack is up ($(elapsed "$1")s). State folder: $STATE
  postgres   127.0.0.1:$PG_PORT  user $PG_USER, dbs $PG_IDENTITY_DB,$PG_SHARD_DBS  log $postgres_LOG
  redis      redis://127.0.0.1:$REDIS_PORT/0  log $redis_LOG
  kafka      127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)  log $kafka_LOGDIR/server.log
  cassandra  CQL 127.0.0.1:$CQL_PORT keyspace $CQL_KEYSPACE  log $cassandra_LOGDIR/system.log
  minio      http://127.0.0.1:$S3_PORT (console $S3_CONSOLE_PORT)  log $minio_LOG
  mailpit    SMTP 127.0.0.1:$SMTP_PORT, inbox http://127.0.0.1:$MAILPIT_HTTP_PORT  log $mailpit_LOG
  meilisearch http://127.0.0.1:$MEILI_PORT ($meilisearch_BIN)  log $meilisearch_LOG
Settings (mode 600): $ENV_FILE
  load them in a shell with: set -a; . $ENV_FILE; set +a
Stop with: $0 down
EOF
}

cmd_up() {
  local t0 s
  t0="$(now)"
  take_lock
  prepare_state_dir
  check_python_clients
  # Fail early on ports taken by something else.
  for s in "${SERVICES[@]}"; do svc_running "$s" || true; done
  for s in "${SERVICES[@]}"; do "${s}_install"; done
  for s in "${START_ORDER[@]}"; do svc_ensure_started "$s"; done
  for s in "${SERVICES[@]}"; do svc_wait_ready "$s"; done
  postgres_setup
  cassandra_setup
  write_env
  ensure_topics
  summary "$t0"
}

cmd_down() {
  local s
  [ -d "$STATE" ] || { info "nothing to stop ($STATE does not exist)"; return 0; }
  take_lock
  # Signal all first, then wait: the services shut down in parallel.
  for s in meilisearch kafka cassandra redis postgres minio mailpit; do svc_stop_begin "$s"; done
  for s in meilisearch kafka cassandra redis postgres minio mailpit; do svc_stop_finish "$s"; done
  info "stack is down"
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do svc_status "$s" || rc=3; done
  printf 'state folder: %s\n' "$STATE"
  return "$rc"
}

known_service() {
  local s
  for s in "${SERVICES[@]}"; do [ "$s" = "$1" ] && return 0; done
  die "unknown service '$1' (one of: ${SERVICES[*]})"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  known_service "$1"
  [ -d "$STATE" ] || { info "nothing to stop ($STATE does not exist)"; return 0; }
  take_lock
  svc_stop_begin "$1"
  svc_stop_finish "$1"
}

cmd_start() {
  [ $# -eq 1 ] || usage
  known_service "$1"
  [ -f "$ENV_FILE" ] || die "the stack is not set up in $STATE; run: $0 up"
  take_lock
  prepare_state_dir
  "${1}_install"  # finds the installed binaries (installs only what is missing)
  svc_ensure_started "$1"
  svc_wait_ready "$1"
}

cmd_createdb() {
  [ $# -eq 1 ] || usage
  [ -d "$STATE/pg" ] || die "postgres is not set up in $STATE; run: $0 up"
  take_lock
  postgres_createdb "$1"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    stop) cmd_stop "$@" ;;
    start) cmd_start "$@" ;;
    createdb) cmd_createdb "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
}

main "$@"
