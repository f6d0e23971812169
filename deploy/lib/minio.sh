# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# MinIO (S3-compatible object store) built from the Go module proxy once per
# machine (go_binary), on 127.0.0.1 with generated root credentials; data in
# $STATE/minio/data. The platform talks to it with boto3 only, so AWS S3 or any
# S3-compatible server works unchanged. Sourced by deploy/stack.sh.

S3_PORT="${S3_PORT:-29000}"
S3_CONSOLE_PORT="${S3_CONSOLE_PORT:-29001}"
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

minio_DIR="$STATE/minio"
minio_LOG="$minio_DIR/minio.log"
minio_PIDFILE="$minio_DIR/minio.pid"
minio_PORT="$S3_PORT"
minio_EXTRA_PORTS="$S3_CONSOLE_PORT"
minio_TIMEOUT="${S3_READY_TIMEOUT:-60}"
minio_STOP_SIGNAL=TERM
minio_STOP_TIMEOUT=20
MINIO_EXE=""

minio_install() {
  if [ -n "${MINIO_BIN:-}" ]; then
    [ -x "$MINIO_BIN" ] || die "minio: MINIO_BIN=$MINIO_BIN is not executable"
    MINIO_EXE="$MINIO_BIN"
  else
    MINIO_EXE="$(go_binary minio "$MINIO_MODULE" "$MINIO_VERSION")"
  fi
}

minio_start() {
  mkdir -p "$minio_DIR/data"
  launch "$minio_PIDFILE" "$minio_DIR" "$minio_LOG" env \
    MINIO_ROOT_USER="$(secret s3_access_key 10)" \
    MINIO_ROOT_PASSWORD="$(secret s3_secret_key 24)" \
    MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    "$MINIO_EXE" server "$minio_DIR/data" --quiet --anonymous \
    --address "127.0.0.1:$S3_PORT" --console-address "127.0.0.1:$S3_CONSOLE_PORT"
}

minio_ready() { http_ok "http://127.0.0.1:$S3_PORT/minio/health/ready"; }

minio_logs() { printf '%s\n' "$minio_LOG"; }
