# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# Apache Cassandra 5.0.x, one local node, jars from Maven Central.
# Sourced by deploy/stack.sh.

CQL_PORT="${CQL_PORT:-29042}"
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-27000}"
CASSANDRA_JMX_PORT="${CASSANDRA_JMX_PORT:-27199}"
CASSANDRA_HEAP_OPTS="${CASSANDRA_HEAP_OPTS:--Xms1G -Xmx1G}"
CQL_KEYSPACE="${CQL_KEYSPACE:-platform}"

cassandra_DIR="$STATE/cassandra"          # also the node's cwd
cassandra_LIB="$cassandra_DIR/lib"
cassandra_DATA="$cassandra_DIR/storage"
cassandra_CONF="$cassandra_DIR/cassandra.yaml"
cassandra_LOGDIR="$cassandra_DIR/logs"
cassandra_OUT="$cassandra_DIR/cassandra.out"
cassandra_PIDFILE="$cassandra_DIR/cassandra.pid"
cassandra_PORT="$CQL_PORT"
cassandra_EXTRA_PORTS="$CASSANDRA_STORAGE_PORT $CASSANDRA_JMX_PORT"
cassandra_TIMEOUT="${CASSANDRA_READY_TIMEOUT:-120}"
cassandra_STOP_SIGNAL=TERM                # runs the drain hook
cassandra_STOP_TIMEOUT=60

cassandra_install() {
  ensure_java
  maven_libs "$DEPLOY_DIR/cassandra/pom.xml" "$cassandra_LIB"
}

cassandra_start() {
  mkdir -p "$cassandra_DATA" "$cassandra_LOGDIR" "$cassandra_DIR/triggers"
  render_template "$DEPLOY_DIR/cassandra/cassandra.yaml.in" "$cassandra_CONF" \
    "CQL_PORT=$CQL_PORT" "STORAGE_PORT=$CASSANDRA_STORAGE_PORT" "DATA_DIR=$cassandra_DATA"

  local -a heap opts nolock=()
  read -r -a heap <<<"$CASSANDRA_HEAP_OPTS"
  mapfile -t opts < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$DEPLOY_DIR/cassandra/jvm.options")
  # As root the node would mlockall() its whole heap: slower start (~3 s) and
  # 1 GiB pinned in RAM. Without CAP_IPC_LOCK it logs a warning and goes on.
  if [ "$(id -u)" = 0 ]; then
    nolock=(setpriv --bounding-set=-ipc_lock)
  fi
  launch "$cassandra_PIDFILE" "$cassandra_DIR" "$cassandra_OUT" "${nolock[@]}" \
    java "${heap[@]}" "${opts[@]}" \
    -Dcassandra-foreground=yes \
    "-Dcassandra.config=file://$cassandra_CONF" \
    "-Dcassandra.storagedir=$cassandra_DATA" \
    "-Dcassandra.logdir=$cassandra_LOGDIR" \
    "-Dcassandra.triggers_dir=$cassandra_DIR/triggers" \
    "-Dlogback.configurationFile=file://$DEPLOY_DIR/cassandra/logback.xml" \
    "-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT" \
    "-Dcom.sun.management.jmxremote.rmi.port=$CASSANDRA_JMX_PORT" \
    -Djava.rmi.server.hostname=127.0.0.1 \
    -cp "$cassandra_LIB/*" org.apache.cassandra.service.CassandraDaemon
}

# cql PYTHON_SNIPPET : runs the snippet with `session` connected.
cql() {
  "$PYTHON" -c "import sys, logging
logging.disable(logging.CRITICAL)
from cassandra.cluster import Cluster
cluster = Cluster(['127.0.0.1'], port=int(sys.argv[1]), connect_timeout=5)
try:
    session = cluster.connect()
$(printf '%s\n' "$1" | sed 's/^/    /')
finally:
    cluster.shutdown()" "$CQL_PORT"
}

cassandra_ready() {
  port_open "$CQL_PORT" || return 1
  cql "session.execute('SELECT release_version FROM system.local').one()" >/dev/null 2>&1
}

cassandra_setup() {
  [[ "$CQL_KEYSPACE" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "cassandra: invalid keyspace name $CQL_KEYSPACE"
  cql "session.execute(\"CREATE KEYSPACE IF NOT EXISTS $CQL_KEYSPACE WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}\")" ||
    die "cassandra: could not create keyspace $CQL_KEYSPACE"
}

cassandra_logs() { printf '%s\n' "$cassandra_OUT" "$cassandra_LOGDIR/system.log"; }
