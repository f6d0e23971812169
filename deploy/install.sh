#!/usr/bin/env bash
# Installs the project's Python dependencies (from PyPI) when any is missing.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PYTHON="${PYTHON:-python3}"
cd "$REPO_ROOT"
stamp=".state/.pip-$(sha256sum pyproject.toml | cut -c1-16)"
# The editable install must be this checkout's (another clone may have claimed it).
installed="$(cd / && "$PYTHON" -c 'import stores, pathlib; print(pathlib.Path(stores.__file__).resolve().parent.parent)' 2>/dev/null || true)"
if [ -f "$stamp" ] && [ "$installed" = "$REPO_ROOT" ] \
  && "$PYTHON" -c 'import bytewax, sanic, asyncpg, confluent_kafka, pytest, supervisor' 2>/dev/null; then
  exit 0
fi
echo "[install] pip install -e '.[dev]'"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
mkdir -p .state
touch "$stamp"
