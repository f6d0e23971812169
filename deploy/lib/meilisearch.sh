# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# Meilisearch: 127.0.0.1 only, database, dumps and snapshots in $STATE/meilisearch,
# a generated master key (written to stack.env as MEILI_MASTER_KEY).
# The binary is, in this order: $MEILI_BIN, `meilisearch` on the PATH,
# ../shared/bin/meilisearch next to the repository (built from Meilisearch's public
# source on machines without a registry that ships it; copied into the machine's bin
# cache, so a checkout elsewhere on the machine finds it there next), the copy in that
# cache, else the official release downloaded once into $STATE/meilisearch/bin.
# Sourced by deploy/stack.sh.

MEILI_PORT="${MEILI_PORT:-27700}"
MEILI_VERSION="${MEILI_VERSION:-v1.50.0}"

meilisearch_DIR="$STATE/meilisearch"
meilisearch_LOG="$meilisearch_DIR/meilisearch.log"
meilisearch_PIDFILE="$meilisearch_DIR/meilisearch.pid"
meilisearch_PORT="$MEILI_PORT"
meilisearch_EXTRA_PORTS=""
meilisearch_TIMEOUT="${MEILI_READY_TIMEOUT:-60}"
meilisearch_STOP_SIGNAL=TERM
meilisearch_STOP_TIMEOUT=30
meilisearch_BIN=""

meilisearch_download() {
  local dest="$meilisearch_DIR/bin/meilisearch" arch url
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) die "meilisearch: no official build for $(uname -m); set MEILI_BIN" ;;
  esac
  url="https://github.com/meilisearch/meilisearch/releases/download/$MEILI_VERSION/meilisearch-linux-$arch"
  if [ ! -x "$dest" ]; then
    info "meilisearch: downloading $url"
    mkdir -p "$(dirname "$dest")"
    curl -fsSL --retry 3 -o "$dest.tmp" "$url" || die "meilisearch: download of $url failed; set MEILI_BIN"
    chmod 755 "$dest.tmp"
    mv -f "$dest.tmp" "$dest"
  fi
  printf '%s' "$dest"
}

# meilisearch_cache SOURCE : copies SOURCE into the machine's bin cache (the one
# go_binary uses) unless an identical copy is there, and prints the copy's path.
meilisearch_cache() {
  local dest
  dest="${AGORA_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/bin}/meilisearch/meilisearch"
  if ! cmp -s "$1" "$dest"; then
    mkdir -p "$(dirname "$dest")"
    cp "$1" "$dest.tmp.$$" && chmod 755 "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest" ||
      die "meilisearch: could not copy $1 into $(dirname "$dest")"
  fi
  printf '%s' "$dest"
}

meilisearch_install() {
  local shared cached
  shared="$(realpath -m "$REPO_ROOT/../shared/bin/meilisearch")"
  cached="${AGORA_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/bin}/meilisearch/meilisearch"
  if [ -n "${MEILI_BIN:-}" ]; then
    [ -x "$MEILI_BIN" ] || die "meilisearch: MEILI_BIN=$MEILI_BIN is not an executable"
    meilisearch_BIN="$MEILI_BIN"
  elif command -v meilisearch >/dev/null 2>&1; then
    meilisearch_BIN="$(command -v meilisearch)"
  elif [ -x "$shared" ]; then
    meilisearch_BIN="$(meilisearch_cache "$shared")"
  elif [ -x "$cached" ]; then
    meilisearch_BIN="$cached"
  else
    meilisearch_BIN="$(meilisearch_download)"
  fi
}

meilisearch_start() {
  mkdir -p "$meilisearch_DIR/data" "$meilisearch_DIR/dumps" "$meilisearch_DIR/snapshots"
  # The master key is passed in the environment, not on the command line (ps shows that).
  # Indexing memory is bounded: by default Meilisearch sizes its indexing arenas at 2/3 of
  # the machine's RAM and pays for that on every batch (about 0.7-1 s for a one-document
  # batch on a 24 GiB box against 0.1 s with 256 MiB), which is what freshness waits on.
  MEILI_MASTER_KEY="$(secret meili_master_key 32)" MEILI_NO_ANALYTICS=true \
    launch "$meilisearch_PIDFILE" "$meilisearch_DIR" "$meilisearch_LOG" "$meilisearch_BIN" \
    --db-path "$meilisearch_DIR/data" --http-addr "127.0.0.1:$MEILI_PORT" \
    --env production --no-analytics --max-indexing-threads "${MEILI_INDEXING_THREADS:-1}" \
    --max-indexing-memory "${MEILI_MAX_INDEXING_MEMORY:-256MiB}" \
    --dump-dir "$meilisearch_DIR/dumps" --snapshot-dir "$meilisearch_DIR/snapshots"
}

meilisearch_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$MEILI_PORT/health" 2>/dev/null | grep -q '"available"'
}

meilisearch_logs() { printf '%s\n' "$meilisearch_LOG"; }
