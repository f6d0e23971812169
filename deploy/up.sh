#!/usr/bin/env bash
# One command for a newcomer: install, start the local stack and the platform,
# load a little demo data, print where everything is.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
bash deploy/install.sh
bash deploy/stack.sh up
bash deploy/platform.sh up
python3 deploy/demo.py "http://127.0.0.1:${API_PORT:-8000}"
cat <<EOF2

  API          http://127.0.0.1:${API_PORT:-8000}/api/v1   (OpenAPI: /api/v1/openapi.json)
  health       http://127.0.0.1:${API_PORT:-8000}/readyz   metrics: /metrics
  dataflows    python -m dataflows list | run NAME -w N | replay NAME
  settings     .state/stack.env      logs: .state/platform/*.log, .state/*/logs
  processes    bash deploy/platform.sh status   (supervisord: state, uptime, restarts)
  stop         bash deploy/platform.sh down && bash deploy/stack.sh down
EOF2
