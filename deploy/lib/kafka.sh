# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# Apache Kafka 4.x, one KRaft node (broker + controller), jars from Maven Central.
# Sourced by deploy/stack.sh.

KAFKA_PORT="${KAFKA_PORT:-29092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-29093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"

kafka_DIR="$STATE/kafka"                  # also the broker's cwd
kafka_LIB="$kafka_DIR/lib"
kafka_DATA="$kafka_DIR/data"
kafka_CONF="$kafka_DIR/server.properties"
kafka_LOGDIR="$kafka_DIR/logs"
kafka_OUT="$kafka_DIR/kafka.out"
kafka_PIDFILE="$kafka_DIR/kafka.pid"
kafka_PORT="$KAFKA_PORT"
kafka_EXTRA_PORTS="$KAFKA_CONTROLLER_PORT"
kafka_TIMEOUT="${KAFKA_READY_TIMEOUT:-60}"
kafka_STOP_SIGNAL=TERM                    # controlled shutdown
kafka_STOP_TIMEOUT=60

kafka_install() {
  ensure_java
  maven_libs "$DEPLOY_DIR/kafka/pom.xml" "$kafka_LIB"
}

# kafka_cmd MAINCLASS ARGS... : sets the array KAFKA_CMD to the java command.
kafka_cmd() {
  local -a heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  KAFKA_CMD=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
    "-Dlog4j2.configurationFile=$DEPLOY_DIR/kafka/log4j2.xml"
    "-Dkafka.logs.dir=$kafka_LOGDIR"
    -cp "$kafka_LIB/*" "$@")
}

kafka_cluster_id() {
  local file="$kafka_DIR/cluster.id" id=""
  if [ ! -s "$file" ]; then
    # 16 random bytes, base64url without padding, not starting with '-'.
    until [ -n "$id" ] && [ "${id:0:1}" != - ]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    done
    printf '%s\n' "$id" >"$file"
  fi
  tr -d '\n' <"$file"
}

kafka_start() {
  mkdir -p "$kafka_DATA" "$kafka_LOGDIR"
  render_template "$DEPLOY_DIR/kafka/server.properties.in" "$kafka_CONF" \
    "PORT=$KAFKA_PORT" "CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" "DATA_DIR=$kafka_DATA"
  if [ ! -f "$kafka_DATA/meta.properties" ]; then
    info "kafka: formatting $kafka_DATA"
    kafka_cmd kafka.tools.StorageTool format -t "$(kafka_cluster_id)" -c "$kafka_CONF" \
      --standalone --ignore-formatted
    (cd "$kafka_DIR" && "${KAFKA_CMD[@]}") >>"$kafka_OUT" 2>&1 ||
      service_failed kafka "storage format failed" "$kafka_OUT"
  fi
  kafka_cmd kafka.Kafka "$kafka_CONF"
  launch "$kafka_PIDFILE" "$kafka_DIR" "$kafka_OUT" "${KAFKA_CMD[@]}"
}

kafka_ready() {
  port_open "$KAFKA_PORT" || return 1
  "$PYTHON" -c 'import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=5)' \
    "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1
}

kafka_logs() { printf '%s\n' "$kafka_OUT" "$kafka_LOGDIR/server.log"; }
