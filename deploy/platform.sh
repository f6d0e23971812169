#!/usr/bin/env bash
# The platform's own processes on top of the local stack:
#   deploy/platform.sh up       migrate, start API (:8000), WebSocket push server
#                               (:8001), outbox relay and dataflows; wait until ready
#   deploy/platform.sh down     stop them (by recorded PID)
#   deploy/platform.sh status
# Logs and PIDs: <state>/platform/. API_PORT (8000), API_WORKERS (2) and WS_PORT (8001)
# may be set.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE="$(realpath -m "${STATE_DIR:-$REPO_ROOT/.state}")"
RUN="$STATE/platform"
PYTHON="${PYTHON:-python3}"
API_PORT="${API_PORT:-8000}"
API_WORKERS="${API_WORKERS:-2}"
WS_PORT="${WS_PORT:-8001}"
cd "$REPO_ROOT"
mkdir -p "$RUN"

# name -> command (python module arguments)
declare -A COMMANDS=(
  [api]="-m api --port $API_PORT --workers $API_WORKERS"
  [relay]="-m api.relay"
  [content]="-m dataflows run content"
  [votes]="-m dataflows run votes"
  [ranking]="-m dataflows run ranking"
  [karma]="-m dataflows run karma"
  [mentions]="-m dataflows run mentions"
  [ws]="-m ws --port $WS_PORT"
)
ORDER=(content votes ranking karma mentions relay api ws)

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  local name="$1"
  if running "$name"; then echo "[platform] $name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  # shellcheck disable=SC2086
  nohup "$PYTHON" ${COMMANDS[$name]} >>"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "[platform] started $name (pid $!, log $RUN/$name.log)"
}

wait_ready() {
  local deadline=$((SECONDS + 90))
  until curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; do
    for name in "${ORDER[@]}"; do
      running "$name" || { echo "[platform] $name exited:"; tail -n 30 "$RUN/$name.log"; exit 1; }
    done
    [ $SECONDS -lt $deadline ] || { echo "[platform] API not ready after 90s"; tail -n 30 "$RUN/api.log"; exit 1; }
    sleep 0.5
  done
}

stop() {
  local name="$1" pid
  running "$name" || { rm -f "$RUN/$name.pid"; return; }
  pid="$(cat "$RUN/$name.pid")"
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  echo "[platform] stopped $name"
}

case "${1:-}" in
  up)
    "$PYTHON" -m stores.migrate
    "$PYTHON" -m stores.kafka_admin ensure-topics
    for name in "${ORDER[@]}"; do start "$name"; done
    wait_ready
    echo "[platform] API ready on http://127.0.0.1:$API_PORT (OpenAPI: /api/v1/openapi.json)"
    echo "[platform] WebSocket pushes on ws://127.0.0.1:$WS_PORT/ws?token=<access JWT>"
    ;;
  down) for name in ws api relay mentions karma ranking votes content; do stop "$name"; done ;;
  status)
    for name in "${ORDER[@]}"; do
      if running "$name"; then echo "$name up pid $(cat "$RUN/$name.pid")"; else echo "$name down"; fi
    done
    ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
