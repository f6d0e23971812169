# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# Mailpit: a real SMTP server for development and tests, with a web inbox and an
# HTTP API (GET /api/v1/messages) that tests read codes from. Built from the Go
# module proxy once per machine (go_binary); 127.0.0.1 only; mail kept in
# $STATE/mailpit. Production points the SMTP_* settings at any relay.
# Sourced by deploy/stack.sh.

SMTP_PORT="${SMTP_PORT:-21025}"
MAILPIT_HTTP_PORT="${MAILPIT_HTTP_PORT:-28025}"
MAILPIT_MODULE="github.com/axllent/mailpit"
MAILPIT_VERSION="${MAILPIT_VERSION:-v1.33.1}"

mailpit_DIR="$STATE/mailpit"
mailpit_LOG="$mailpit_DIR/mailpit.log"
mailpit_PIDFILE="$mailpit_DIR/mailpit.pid"
mailpit_PORT="$SMTP_PORT"
mailpit_EXTRA_PORTS="$MAILPIT_HTTP_PORT"
mailpit_TIMEOUT="${SMTP_READY_TIMEOUT:-60}"
mailpit_STOP_SIGNAL=TERM
mailpit_STOP_TIMEOUT=15
MAILPIT_EXE=""

mailpit_install() {
  if [ -n "${MAILPIT_BIN:-}" ]; then
    [ -x "$MAILPIT_BIN" ] || die "mailpit: MAILPIT_BIN=$MAILPIT_BIN is not executable"
    MAILPIT_EXE="$MAILPIT_BIN"
  else
    MAILPIT_EXE="$(go_binary mailpit "$MAILPIT_MODULE" "$MAILPIT_VERSION")"
  fi
}

mailpit_start() {
  mkdir -p "$mailpit_DIR"
  launch "$mailpit_PIDFILE" "$mailpit_DIR" "$mailpit_LOG" "$MAILPIT_EXE" \
    --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_HTTP_PORT" \
    --database "$mailpit_DIR/mailpit.db" --disable-version-check --max 5000
}

mailpit_ready() {
  port_open "$SMTP_PORT" && http_ok "http://127.0.0.1:$MAILPIT_HTTP_PORT/readyz"
}

mailpit_logs() { printf '%s\n' "$mailpit_LOG"; }
