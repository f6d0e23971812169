# shellcheck shell=bash
# shellcheck disable=SC2034  # <service>_* variables are read through svc_var
# PostgreSQL: one cluster under $STATE/pg, TCP on 127.0.0.1 with scram auth.
# Sourced by deploy/stack.sh.

PG_PORT="${PG_PORT:-25432}"
PG_USER="${PG_USER:-platform}"
PG_IDENTITY_DB="${PG_IDENTITY_DB:-identity}"
PG_SHARD_DBS="${PG_SHARD_DBS:-posts_shard_0,posts_shard_1}"

postgres_HOME="$STATE/pg"
postgres_DIR="$postgres_HOME/data"        # PGDATA; also the server's cwd
postgres_SOCKET_DIR="$postgres_HOME/run"
postgres_LOG="$postgres_HOME/postgres.log"
postgres_PIDFILE="$postgres_HOME/postgres.pid"
postgres_PORT="$PG_PORT"
postgres_EXTRA_PORTS=""
postgres_TIMEOUT="${PG_READY_TIMEOUT:-60}"
postgres_STOP_SIGNAL=INT                  # "fast" shutdown: ends open sessions
postgres_STOP_TIMEOUT=30

# The server refuses to run as root: as root it runs as the postgres OS user,
# otherwise as the current user.
if [ "$(id -u)" = 0 ]; then
  PG_OS_USER=postgres
else
  PG_OS_USER="$(id -un)"
fi
PG_SUPERUSER="$PG_OS_USER"

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

pg_find_bin() {
  [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/postgres" ] && return 0
  local want="" d
  # An existing cluster pins the major version.
  [ -f "$postgres_DIR/PG_VERSION" ] && want="$(cat "$postgres_DIR/PG_VERSION")"
  if [ -n "$want" ] && [ -x "/usr/lib/postgresql/$want/bin/postgres" ]; then
    PG_BIN="/usr/lib/postgresql/$want/bin"
    return 0
  fi
  d="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1 || true)"
  [ -n "$d" ] || return 1
  PG_BIN="$(dirname "$d")"
  if [ -n "$want" ]; then
    die "postgres: cluster in $postgres_DIR is version $want but only $PG_BIN is installed"
  fi
}

postgres_install() {
  pg_find_bin && return 0
  apt_install postgresql
  pg_find_bin || die "postgres: no server binaries under /usr/lib/postgresql after install"
}

psql_admin() { # psql as the superuser over the unix socket
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$postgres_SOCKET_DIR" -p "$PG_PORT" \
    -U "$PG_SUPERUSER" -d postgres "$@"
}

postgres_start() {
  local sock="$postgres_SOCKET_DIR/.s.PGSQL.$PG_PORT"
  [ "${#sock}" -lt 108 ] || die "postgres: socket path too long (${#sock} > 107): $sock; use a shorter STATE_DIR"

  mkdir -p "$postgres_HOME" "$postgres_SOCKET_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown "$PG_OS_USER:" "$postgres_HOME" "$postgres_SOCKET_DIR"
  fi
  chmod 700 "$postgres_HOME" "$postgres_SOCKET_DIR"
  if ! as_pg test -w "$postgres_HOME" && [ "$(id -u)" = 0 ]; then
    # The server runs as its own OS user: it needs to traverse (not read) every parent.
    local dir="$STATE"
    while [ "$dir" != "/" ]; do
      if ! as_pg test -x "$dir"; then
        info "postgres: allowing traversal of $dir (chmod o+x) so the server can reach its data"
        chmod o+x "$dir"
      fi
      dir="$(dirname "$dir")"
    done
  fi
  as_pg test -w "$postgres_HOME" ||
    die "postgres: user $PG_OS_USER cannot reach $postgres_HOME (make its parent folders traversable, or set STATE_DIR elsewhere)"

  if [ ! -f "$postgres_DIR/PG_VERSION" ]; then
    info "postgres: initdb $postgres_DIR"
    rm -rf "$postgres_DIR"
    as_pg "$PG_BIN/initdb" -D "$postgres_DIR" -U "$PG_SUPERUSER" -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >>"$postgres_LOG" 2>&1 ||
      service_failed postgres "initdb failed" "$postgres_LOG"
  fi

  render_template "$DEPLOY_DIR/postgres/postgresql.conf.in" "$postgres_DIR/stack.conf" \
    "PORT=$PG_PORT" "SOCKET_DIR=$postgres_SOCKET_DIR"
  render_template "$DEPLOY_DIR/postgres/pg_hba.conf.in" "$postgres_DIR/pg_hba.conf" \
    "SUPERUSER=$PG_SUPERUSER"
  if ! grep -qx "include = 'stack.conf'" "$postgres_DIR/postgresql.conf"; then
    printf "\ninclude = 'stack.conf'\n" >>"$postgres_DIR/postgresql.conf"
  fi
  if [ "$(id -u)" = 0 ]; then
    chown "$PG_OS_USER:" "$postgres_DIR/stack.conf" "$postgres_DIR/pg_hba.conf"
    # setpriv execs in place, so the recorded PID is the postmaster's.
    launch "$postgres_PIDFILE" "$postgres_DIR" "$postgres_LOG" \
      setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups \
      "$PG_BIN/postgres" -D "$postgres_DIR"
  else
    launch "$postgres_PIDFILE" "$postgres_DIR" "$postgres_LOG" "$PG_BIN/postgres" -D "$postgres_DIR"
  fi
}

postgres_ready() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2
}

postgres_logs() { printf '%s\n' "$postgres_LOG"; }

# pg_create_databases NAME... : databases owned by $PG_USER, created if missing.
pg_create_databases() {
  local db
  for db in "$PG_USER" "$@"; do
    [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "postgres: invalid name: $db"
  done
  {
    printf '%s\n' "\\set owner '$PG_USER'"
    for db in "$@"; do
      printf '%s\n' "\\set db '$db'" \
        "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')" \
        "  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec"
    done
  } | psql_admin -f - || die "postgres: could not create databases $*"
}

postgres_setup() {
  local pw
  pw="$(secret pg_password 24)"
  # The password goes through stdin, not the command line.
  printf "%s\n" \
    "\\set user '$PG_USER'" \
    "\\set pw '$pw'" \
    "SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \\gexec" \
    "ALTER ROLE :\"user\" WITH LOGIN PASSWORD :'pw';" |
    psql_admin -f - || die "postgres: could not create role $PG_USER"

  local -a dbs
  IFS=, read -r -a dbs <<<"$PG_IDENTITY_DB,$PG_SHARD_DBS"
  pg_create_databases "${dbs[@]}"

  # The application's path: TCP + password.
  PGPASSWORD="$pw" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
    -d "$PG_IDENTITY_DB" -tAc 'SELECT 1' >/dev/null ||
    die "postgres: $PG_USER cannot log in over TCP"
}

# postgres_createdb NAME : used by `stack.sh createdb NAME`.
postgres_createdb() {
  pg_find_bin || die "postgres is not installed; run: deploy/stack.sh up"
  if [ -z "$(svc_pid postgres)" ] || ! postgres_ready; then
    die "postgres is not running; run: deploy/stack.sh up"
  fi
  pg_create_databases "$1"
  info "database $1 (owner $PG_USER) is present"
}
