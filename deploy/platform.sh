#!/usr/bin/env bash
# The platform's own processes on top of the local stack, run by supervisord:
#   deploy/platform.sh up       migrate, create topics, start supervisord (unless running)
#                               with the API (:8000), WebSocket push server (:8001), outbox
#                               relay and dataflows (content, votes, ranking, karma,
#                               mentions); wait until the API is ready
#   deploy/platform.sh down     stop the programs, then supervisord (by its recorded PID)
#   deploy/platform.sh status   state, PID, uptime and restart count per program; exits
#                               non-zero unless every program is RUNNING
# Config, control socket, logs: <state>/platform/ (supervisord.conf, supervisor.sock,
# supervisord.log, NAME.log). The programs and their settings are in deploy/supervision.py.
# API_PORT (8000), API_WORKERS (2) and WS_PORT (8001) may be set.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE_DIR="$(realpath -m "${STATE_DIR:-$REPO_ROOT/.state}")"
PYTHON="${PYTHON:-python3}"
API_PORT="${API_PORT:-8000}"
export STATE_DIR API_PORT API_WORKERS="${API_WORKERS:-2}" WS_PORT="${WS_PORT:-8001}"
cd "$REPO_ROOT"
supervision() { "$PYTHON" deploy/supervision.py "$@"; }

case "${1:-}" in
  up)
    "$PYTHON" -m ops migrate
    "$PYTHON" -m ops topics ensure
    supervision up
    supervision wait-ready "http://127.0.0.1:$API_PORT/readyz" --timeout 90
    echo "[platform] API ready on http://127.0.0.1:$API_PORT (OpenAPI: /api/v1/openapi.json)"
    echo "[platform] WebSocket pushes on ws://127.0.0.1:$WS_PORT/ws?token=<access JWT>"
    echo "[platform] status: bash deploy/platform.sh status; logs: $STATE_DIR/platform/*.log"
    ;;
  down) supervision down ;;
  status) supervision status ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
