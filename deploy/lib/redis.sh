# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# Redis (Debian's redis-server): 127.0.0.1 only, append-only file in $STATE/redis.
# Sourced by deploy/stack.sh.

REDIS_PORT="${REDIS_PORT:-26379}"

redis_DIR="$STATE/redis"
redis_CONF="$redis_DIR/redis.conf"
redis_LOG="$redis_DIR/redis.log"
redis_PIDFILE="$redis_DIR/redis.pid"
redis_PORT="$REDIS_PORT"
redis_EXTRA_PORTS=""
redis_TIMEOUT="${REDIS_READY_TIMEOUT:-60}"
redis_STOP_SIGNAL=TERM                    # flushes the AOF and exits
redis_STOP_TIMEOUT=30

redis_install() {
  command -v redis-server >/dev/null 2>&1 && return 0
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis: redis-server missing after install"
}

redis_start() {
  mkdir -p "$redis_DIR"
  render_template "$DEPLOY_DIR/redis/redis.conf.in" "$redis_CONF" \
    "PORT=$REDIS_PORT" "DIR=$redis_DIR"
  launch "$redis_PIDFILE" "$redis_DIR" "$redis_LOG" redis-server "$redis_CONF"
}

redis_ready() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
  else
    "$PYTHON" -c 'import sys, redis; redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=2).ping()' \
      "$REDIS_PORT" 2>/dev/null
  fi
}

redis_logs() { printf '%s\n' "$redis_LOG"; }
