#!/usr/bin/env bash
# The test command: install what is missing, bring the local stack up, run every test.
# Extra arguments go to pytest (e.g. `bash deploy/test.sh tests/unit -x`).
# A stack this script had to start is stopped again when the tests end.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
bash deploy/install.sh
if ! bash deploy/stack.sh status >/dev/null 2>&1; then
  trap 'bash deploy/stack.sh down' EXIT
fi
bash deploy/stack.sh up
python3 -m ops migrate
python3 -m ops topics ensure
# Servers-free tests first, then integration, then the end-to-end suite (whose
# platform processes, the outbox relay among them, stay up until the session ends).
if [ $# -eq 0 ]; then set -- tests/unit tests/integration tests/e2e; fi
python3 -m pytest -p no:cacheprovider -q -ra --durations=20 "$@"
