# shellcheck shell=bash
# Shared helpers for deploy/stack.sh. Sourced, not executed.
# Expects DEPLOY_DIR, REPO_ROOT and STATE to be set by the caller.

# ---------------------------------------------------------------- messages
info() { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with sub-second precision (bash 5).
now() { local t="${EPOCHREALTIME:-$(date +%s)}"; printf '%s' "${t/,/.}"; }

# elapsed START -> "12.3"
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# Byte sizes of log files when a service is started, so that a failure shows
# only what this start wrote.
declare -A LOG_MARKS=()

log_mark() { # log_mark FILE...
  local f
  for f in "$@"; do
    LOG_MARKS["$f"]="$(stat -c %s "$f" 2>/dev/null || echo 0)"
  done
}

# Prints the last lines each file got since log_mark.
log_tail() {
  local f text
  for f in "$@"; do
    [ -s "$f" ] || continue
    text="$(tail -c "+$((${LOG_MARKS["$f"]:-0} + 1))" "$f" | tail -n "${LOG_TAIL_LINES:-30}")"
    [ -n "$text" ] || continue
    printf -- '----- last lines of %s -----\n%s\n' "$f" "$text" >&2
  done
}

# service_failed NAME MESSAGE LOGFILE... : report, show logs, exit non-zero.
service_failed() {
  local name="$1" msg="$2"
  shift 2
  printf '[stack] ERROR: %s failed: %s\n' "$name" "$msg" >&2
  log_tail "$@"
  exit 1
}

# ---------------------------------------------------------------- templates
# render_template SRC DEST KEY=VALUE... : replaces every @KEY@ in SRC.
render_template() {
  local src="$1" dest="$2" content pair key val
  shift 2
  content="$(<"$src")"
  for pair in "$@"; do
    key="${pair%%=*}"
    val="${pair#*=}"
    content="${content//"@${key}@"/"$val"}"
  done
  if [[ "$content" =~ @[A-Z_]+@ ]]; then
    die "template $src: placeholder ${BASH_REMATCH[0]} left unset"
  fi
  printf '%s\n' "$content" >"$dest.tmp"
  mv -f "$dest.tmp" "$dest"
}

# ---------------------------------------------------------------- secrets
random_hex() { # random_hex NBYTES
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex "$1"
  else
    "$PYTHON" -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"
  fi
}

# secret NAME NBYTES : prints the secret, generating it once.
secret() {
  local file="$STATE/secrets/$1"
  if [ ! -s "$file" ]; then
    (umask 077 && mkdir -p "$STATE/secrets" && random_hex "$2" >"$file.tmp" && mv -f "$file.tmp" "$file")
  fi
  tr -d '\n' <"$file"
}

# ---------------------------------------------------------------- processes
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# pid_owned PID DIR : the process is alive and runs inside DIR (its cwd),
# which is how processes started by this script are told apart from others.
pid_owned() {
  local pid="$1" dir="$2" cwd
  pid_alive "$pid" || return 1
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 1
  [ "$cwd" = "$dir" ] || [[ "$cwd" == "$dir"/* ]]
}

read_pid() { if [ -s "$1" ]; then tr -dc '0-9' <"$1"; fi; }

# launch PIDFILE WORKDIR LOGFILE CMD... : starts CMD in its own session in
# the background, stdout+stderr appended to LOGFILE, and records its PID.
launch() {
  local pidfile="$1" workdir="$2" logfile="$3" deadline
  shift 3
  rm -f "$pidfile"
  (
    cd "$workdir" || exit 1
    # The child writes its own PID and then becomes CMD (exec keeps the PID).
    # shellcheck disable=SC2016
    setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
      "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  )
  deadline=$((SECONDS + 10))
  until [ -s "$pidfile" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "could not start: $*"
    sleep 0.05
  done
}

# port_open PORT : something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_owner PORT : PID of the process listening on 127.0.0.1:PORT (if known).
port_owner() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# describe_pid PID
describe_pid() {
  [ -n "${1:-}" ] || { printf 'unknown process'; return; }
  printf 'pid %s (%s)' "$1" "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-120)"
}

# signal_pid PID SIGNAL
signal_pid() { kill "-$2" "$1" 2>/dev/null || true; }

# wait_gone PID SECONDS : 0 when the process has exited in time.
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while pid_alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- installs
apt_install() { # apt_install PACKAGE...
  [ "$(id -u)" = 0 ] || die "missing $*: install it (apt-get install $*) or run as root"
  info "installing $* with apt-get"
  (
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' own services (default port instances) from starting.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
      apt-get update -q
    fi
    apt-get install -y -q --no-install-recommends "$@" ||
      { apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; }
  ) || die "apt-get install $* failed"
}

# maven_libs POM DEST : copies POM's runtime classpath into DEST once
# (redone when the POM changes).
maven_libs() {
  local pom="$1" dest="$2" stamp sum
  stamp="$dest/.complete"
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || apt_install maven
  info "fetching jars for $(basename "$(dirname "$pom")") with Maven (first run only)"
  rm -rf "$dest"
  mkdir -p "$dest"
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dest" >"$dest.mvn.log" 2>&1; then
    cat "$dest.mvn.log" >&2
    rm -rf "$dest"
    die "mvn could not assemble $dest"
  fi
  rm -f "$dest.mvn.log"
  printf '%s\n' "$sum" >"$stamp"
}

ensure_java() {
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
}

# ---------------------------------------------------------------- service plumbing
# Each service file defines, for service S:
#   S_install   install binaries / jars (idempotent)
#   S_start     prepare config and launch (only called when not running)
#   S_ready     one readiness probe, 0 when ready
#   S_setup     one-time objects after ready (optional)
#   S_logs      log files worth showing on failure
# and the variables S_DIR (cwd of the process), S_PIDFILE, S_PORT (the
# client port), S_EXTRA_PORTS (other listening ports, space separated),
# S_TIMEOUT, S_STOP_SIGNAL, S_STOP_TIMEOUT.

svc_var() { local v="${1}_${2}"; printf '%s' "${!v}"; }

# svc_pid S : recorded PID when that process is alive and ours.
svc_pid() {
  local pid
  pid="$(read_pid "$(svc_var "$1" PIDFILE)")"
  if [ -n "$pid" ] && pid_owned "$pid" "$(svc_var "$1" DIR)"; then
    printf '%s' "$pid"
  fi
}

mark_started() {
  printf -v "${1}_STARTED_AT" '%s' "$(now)"
  printf -v "${1}_STARTED_SEC" '%s' "$SECONDS"
}

# svc_adopt S : when S's PID file was lost but the process listening on its
# port runs from this state folder, records that PID again.
svc_adopt() {
  local s="$1" owner
  [ -z "$(svc_pid "$s")" ] || return 0
  port_open "$(svc_var "$s" PORT)" || return 0
  owner="$(port_owner "$(svc_var "$s" PORT)")"
  if [ -n "$owner" ] && pid_owned "$owner" "$(svc_var "$s" DIR)"; then
    printf '%s\n' "$owner" >"$(svc_var "$s" PIDFILE)"
    info "$s: PID file restored (pid $owner)"
  fi
}

# svc_running S : 0 when S runs from this state folder; 1 when it must be
# started; dies when one of its ports is taken by another process.
svc_running() {
  local s="$1" port
  svc_adopt "$s"
  [ -n "$(svc_pid "$s")" ] && return 0
  for port in $(svc_var "$s" PORT) $(svc_var "$s" EXTRA_PORTS); do
    if port_open "$port"; then
      die "$s: port 127.0.0.1:$port is already in use by $(describe_pid "$(port_owner "$port")"); stop it or set other ports"
    fi
  done
  return 1
}

# svc_ensure_started S : start S unless it is already running.
svc_ensure_started() {
  local s="$1"
  mark_started "$s"
  if svc_running "$s"; then
    info "$s already running (pid $(svc_pid "$s"))"
    return 0
  fi
  rm -f "$(svc_var "$s" PIDFILE)"
  info "starting $s"
  local -a logs
  mapfile -t logs < <("${s}_logs")
  log_mark "${logs[@]}"
  "${s}_start"
}

# svc_wait_ready S : polls S_ready until it succeeds or the deadline passes.
svc_wait_ready() {
  local s="$1" started timeout deadline pid
  started="$(svc_var "$s" STARTED_AT)"
  timeout="$(svc_var "$s" TIMEOUT)"
  deadline=$(($(svc_var "$s" STARTED_SEC) + timeout))
  local -a logs
  mapfile -t logs < <("${s}_logs")
  until "${s}_ready"; do
    pid="$(read_pid "$(svc_var "$s" PIDFILE)")"
    if ! pid_alive "$pid"; then
      service_failed "$s" "process exited during startup" "${logs[@]}"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      service_failed "$s" "not ready after ${timeout}s" "${logs[@]}"
    fi
    sleep 0.5
  done
  info "$s ready on 127.0.0.1:$(svc_var "$s" PORT) ($(elapsed "$started")s)"
}

# svc_stop_begin S : sends the stop signal to the recorded PID.
svc_stop_begin() {
  local s="$1" pid
  svc_adopt "$s"
  pid="$(svc_pid "$s")"
  if [ -z "$pid" ]; then
    rm -f "$(svc_var "$s" PIDFILE)"
    return 0
  fi
  info "stopping $s (pid $pid)"
  signal_pid "$pid" "$(svc_var "$s" STOP_SIGNAL)"
}

# svc_stop_finish S : waits for the exit, SIGKILL after the deadline.
svc_stop_finish() {
  local s="$1" pidfile pid
  pidfile="$(svc_var "$s" PIDFILE)"
  pid="$(read_pid "$pidfile")"
  [ -n "$pid" ] || return 0   # was not running
  if pid_owned "$pid" "$(svc_var "$s" DIR)" && ! wait_gone "$pid" "$(svc_var "$s" STOP_TIMEOUT)"; then
    warn "$s (pid $pid) did not stop in $(svc_var "$s" STOP_TIMEOUT)s; sending SIGKILL"
    signal_pid "$pid" KILL
    wait_gone "$pid" 10 || warn "$s (pid $pid) still alive after SIGKILL"
  fi
  rm -f "$pidfile"
  info "$s stopped"
}

# svc_status S : one line, returns 0 when up.
svc_status() {
  local s="$1" pid port
  pid="$(svc_pid "$s")"
  port="$(svc_var "$s" PORT)"
  if [ -n "$pid" ] && port_open "$port"; then
    printf '%-10s up        pid %-8s 127.0.0.1:%s\n' "$s" "$pid" "$port"
    return 0
  elif [ -n "$pid" ]; then
    printf '%-10s starting  pid %-8s 127.0.0.1:%s (port not open yet)\n' "$s" "$pid" "$port"
  elif port_open "$port"; then
    pid="$(port_owner "$port")"
    if [ -n "$pid" ] && pid_owned "$pid" "$(svc_var "$s" DIR)"; then
      printf '%-10s up        pid %-8s 127.0.0.1:%s (PID file missing; "up" restores it)\n' "$s" "$pid" "$port"
      return 0
    fi
    printf '%-10s down      127.0.0.1:%s is taken by %s\n' "$s" "$port" "$(describe_pid "$pid")"
  else
    printf '%-10s down\n' "$s"
  fi
  return 1
}

# ---------------------------------------------------------------- Go-built servers
# go_binary NAME MODULE VERSION : prints the path of NAME built with
# `go install MODULE@VERSION`, building it once per machine into
# ${AGORA_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/bin}/NAME-VERSION
# (outside the repository; every checkout on the machine shares it). Only the Go
# module proxy is needed. A lock keeps two stacks from building at once.
go_binary() {
  local name="$1" module="$2" version="$3" cache dest
  cache="${AGORA_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/bin}"
  dest="$cache/$name-$version"
  if [ -x "$dest/$name" ]; then
    printf '%s\n' "$dest/$name"
    return 0
  fi
  command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] ||
    die "$name: the Go toolchain (1.24 or later) is needed to build it once; install Go or set ${name^^}_BIN"
  mkdir -p "$cache"
  (
    flock -w 1800 8 || die "$name: another build holds $cache/.build.lock"
    [ -x "$dest/$name" ] && exit 0
    info "$name: building $module@$version with go install (first run on this machine, a few minutes)" >&2
    PATH="$PATH:/usr/local/go/bin" GOBIN="$dest.tmp" GOFLAGS="${GOFLAGS:-} -trimpath" \
      go install "$module@$version" >"$cache/$name-$version.build.log" 2>&1 || {
      tail -n 30 "$cache/$name-$version.build.log" >&2
      rm -rf "$dest.tmp"
      die "$name: go install $module@$version failed (log: $cache/$name-$version.build.log)"
    }
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
  ) 8>"$cache/.build.lock" || exit 1
  printf '%s\n' "$dest/$name"
}

# http_ok URL : the URL answers 2xx within 2 seconds.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }
