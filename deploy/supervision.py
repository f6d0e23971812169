"""The platform's processes under supervisord (the `supervisor` package).

`deploy/platform.sh` calls this module; tests use it with their own state folder.

    python3 deploy/supervision.py up          render the config, start supervisord if it is
                                              not running, apply config changes, start programs
    python3 deploy/supervision.py wait-ready URL [--timeout S]
                                              until URL answers 200 and every program is
                                              RUNNING; fail early on a FATAL program
    python3 deploy/supervision.py status      state, PID, uptime and restart count per program;
                                              exit 0 only when every program is RUNNING,
                                              1 otherwise, 3 when supervisord is not running
    python3 deploy/supervision.py down        stop the programs, then supervisord (by its PID)
    python3 deploy/supervision.py render      only write the config
    python3 deploy/supervision.py reap        the event listener (supervisord runs it)

Everything lives in `<state>/platform/` (STATE_DIR, default `<repo>/.state`):
`supervisord.conf` (generated on every `up`, paths computed here), `supervisor.sock`
(the control socket: a unix socket, no TCP port), `supervisord.pid`, `supervisord.log`
(supervisord's own events: spawns, exits, give-ups) and one `NAME.log` per program.

Restart counts come from supervisord's log: each `spawned: 'NAME'` line since the last
`supervisord started` line is one start; restarts are starts minus one. A program that
exits within `startsecs` of being spawned is retried with a growing delay (1 s, 2 s, ...)
and after `startretries` retries supervisord gives up on it (state FATAL): status then
reports the crash loop with the number of starts and the last exit instead of hiding it.

supervisord makes each program the leader of its own process group. A program whose main
process dies can leave children behind (the API's worker processes keep its port, so the
restarted API could not bind it); the `reaper` event listener, supervised like the rest,
hears every exit and kills what is left of the dead process's group.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# Longest unix socket path Linux accepts (sun_path is 108 bytes including the NUL).
MAX_SOCKET_PATH = 107
REAPER = "reaper"  # the event listener that clears process groups of exited programs
STOPPED_STATES = {"STOPPED", "EXITED", "FATAL", "UNKNOWN"}
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Program:
    """One supervised process. `argv[0]` is the executable (an absolute path)."""

    name: str
    argv: Sequence[str]
    priority: int = 100  # lower starts first (and stops last)
    startsecs: int = 3  # must stay up this long to count as started
    startretries: int = 5  # failed starts in a row retried before FATAL
    stopwaitsecs: int = 15  # after stopsignal, SIGKILL when still running
    stopsignal: str = "INT"
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"program name {self.name!r}: letters, digits, '-' and '_' only")
        if not self.argv:
            raise ValueError(f"program {self.name}: empty command")


METRICS_BASE = 9101


def platform_programs(
    python: str, api_port: int = 8000, api_workers: int = 2, ws_port: int = 8001
) -> list[Program]:
    """The platform's processes, in start order: dataflows, relay, API, push server."""
    dataflow_stop = 30  # a dataflow takes a last snapshot on SIGINT
    programs = [
        Program(
            name,
            # /metrics of each dataflow on loopback: 9101 content, 9102 votes, ...
            [python, "-m", "dataflows", "run", name, "--metrics-port", str(METRICS_BASE + i)],
            priority=10 + i,
            stopwaitsecs=dataflow_stop,
        )
        for i, name in enumerate(
            ("content", "votes", "ranking", "karma", "mentions", "media", "spam", "search")
        )
    ]
    programs += [
        Program("relay", [python, "-m", "api.relay"], priority=30),
        Program(
            "api",
            [python, "-m", "api", "--port", str(api_port), "--workers", str(api_workers)],
            priority=40,
        ),
        Program("ws", [python, "-m", "ws", "--port", str(ws_port)], priority=50),
    ]
    return programs


def _value(text: str) -> str:
    """A config value: supervisor expands %(name)s, so a literal % is doubled."""
    if "\n" in text:
        raise ValueError(f"newline in config value {text!r}")
    return text.replace("%", "%%")


def _env_value(text: str) -> str:
    if '"' in text or "\n" in text:
        raise ValueError(f"environment value {text!r} may not contain quotes or newlines")
    return '"' + _value(text) + '"'


@dataclass(frozen=True)
class ProgramStatus:
    name: str
    state: str  # supervisor's state name: RUNNING, STARTING, BACKOFF, FATAL, STOPPED, ...
    pid: int
    uptime: float | None  # seconds, when RUNNING
    starts: int  # spawns since supervisord started
    streak: int  # spawns since the program last reached RUNNING (the current crash loop)
    last_exit: str  # e.g. "exit status 3" or "terminated by SIGKILL", with its time
    spawnerr: str
    log: str

    @property
    def restarts(self) -> int:
        return max(self.starts - 1, 0)


@dataclass
class _History:
    starts: int = 0
    streak: int = 0
    fresh: bool = False  # the next spawn opens a new streak (after a stop or a give-up)
    last_exit: str = ""


_LOG_LINE = re.compile(r"^(?P<time>\S+ \S+?)(?:,\d+)? \w+ (?P<event>.*)$")
_SPAWNED = re.compile(r"^spawned: '(?P<name>[^']+)' with pid \d+$")
_SUCCESS = re.compile(r"^success: (?P<name>\S+) entered RUNNING state")
_EXITED = re.compile(r"^exited: (?P<name>\S+) \((?P<how>.*)\)$")
_GAVE_UP = re.compile(r"^gave up: (?P<name>\S+) entered FATAL state")
_STOPPED = re.compile(r"^stopped: (?P<name>\S+) \(")
_STARTED = "supervisord started with pid"


def parse_history(lines: Iterable[str]) -> dict[str, _History]:
    """Per program: starts, current crash-loop streak and last exit, from supervisord's log
    since its last start."""
    history: dict[str, _History] = {}
    for raw in lines:
        line = _LOG_LINE.match(raw.rstrip("\n"))
        if not line:
            continue
        event = line["event"]
        if event.startswith(_STARTED):
            history = {}
        elif m := _SPAWNED.match(event):
            h = history.setdefault(m["name"], _History())
            if h.fresh:
                h.streak, h.fresh = 0, False
            h.starts += 1
            h.streak += 1
        elif m := _SUCCESS.match(event):
            history.setdefault(m["name"], _History()).streak = 0
        elif m := _EXITED.match(event):
            how = m["how"].removesuffix("; not expected").removesuffix("; expected")
            history.setdefault(m["name"], _History()).last_exit = f"{how} at {line['time']}"
        elif (m := _GAVE_UP.match(event)) or (m := _STOPPED.match(event)):
            history.setdefault(m["name"], _History()).fresh = True
    return history


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket (the HTTP host name is ignored)."""

    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__()
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def make_connection(self, host: Any) -> Any:
        import http.client
        import socket

        path, timeout = self.socket_path, self.timeout

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(path)
                self.sock = sock

        return Connection("localhost")


class Supervision:
    """supervisord for one state folder: its config, socket, PID file and logs."""

    def __init__(self, state_dir: Path | str, python: str | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.run = self.state_dir / "platform"
        self.conf = self.run / "supervisord.conf"
        self.socket = self.run / "supervisor.sock"
        self.pidfile = self.run / "supervisord.pid"
        self.log = self.run / "supervisord.log"
        self.python = python or sys.executable

    # ---- config ---------------------------------------------------------------------
    def render(self, programs: Sequence[Program], workdir: Path = REPO_ROOT) -> Path:
        """Write supervisord.conf for `programs` and the reaper; every path in it is
        computed here."""
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise SystemExit(
                f"socket path too long for a unix socket ({len(str(self.socket))} > "
                f"{MAX_SOCKET_PATH} bytes): {self.socket}; use a shorter STATE_DIR"
            )
        names = [p.name for p in programs]
        if len(set(names)) != len(names) or REAPER in names:
            raise ValueError(f"duplicate program names in {names}")
        self.run.mkdir(parents=True, exist_ok=True)
        workdir = workdir.resolve()
        out = [
            "; Generated by deploy/supervision.py on every `platform.sh up`: edit that, not this.",
            "[unix_http_server]",
            f"file={_value(str(self.socket))}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={_value(str(self.log))}",
            "logfile_maxbytes=10MB",
            "logfile_backups=5",
            "loglevel=info",
            f"pidfile={_value(str(self.pidfile))}",
            f"directory={_value(str(workdir))}",
            f"childlogdir={_value(str(self.run))}",
            "nodaemon=false",
            "umask=022",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{_value(str(self.socket))}",
            "",
        ]
        for p in programs:
            env = {"STATE_DIR": str(self.state_dir), "PYTHONUNBUFFERED": "1", **p.environment}
            log = self.run / f"{p.name}.log"
            out += [
                f"[program:{p.name}]",
                f"command={_value(shlex.join(p.argv))}",
                f"directory={_value(str(workdir))}",
                f"priority={p.priority}",
                "autostart=true",
                "autorestart=true",
                f"startsecs={p.startsecs}",
                f"startretries={p.startretries}",
                f"stopsignal={p.stopsignal}",
                f"stopwaitsecs={p.stopwaitsecs}",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={_value(str(log))}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=5",
                "environment=" + ",".join(f"{k}={_env_value(v)}" for k, v in env.items()),
                "",
            ]
        reaper = [self.python, str(Path(__file__).resolve()), "--state", str(self.state_dir)]
        out += [
            f"[eventlistener:{REAPER}]",
            f"command={_value(shlex.join([*reaper, 'reap']))}",
            f"directory={_value(str(workdir))}",
            "events=PROCESS_STATE",
            "buffer_size=100",
            "priority=1",
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "startretries=5",
            "stopsignal=TERM",
            "stopwaitsecs=5",
            # stdout is the listener protocol (not logged); what it says goes to stderr
            "stdout_logfile=NONE",
            f"stderr_logfile={_value(str(self.run / f'{REAPER}.log'))}",
            "stderr_logfile_maxbytes=5MB",
            "stderr_logfile_backups=2",
            "",
        ]
        self.conf.write_text("\n".join(out))
        return self.conf

    def order(self) -> list[str]:
        """Program names in the order of the rendered config (the start order)."""
        if not self.conf.exists():
            return []
        parser = configparser.RawConfigParser()
        parser.read(self.conf)
        return [sec.split(":", 1)[1] for sec in parser.sections() if ":" in sec]

    # ---- supervisord ----------------------------------------------------------------
    def rpc(self, timeout: float = 60.0) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            "http://localhost", transport=_UnixTransport(self.socket, timeout)
        )
        return proxy.supervisor

    def daemon_pid(self) -> int | None:
        """supervisord's PID from its PID file, when that process is alive and is supervisord."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"supervisord" not in cmdline.read_bytes():
            return None  # the PID was reused by something else
        return pid

    def start_daemon(self, timeout: float = 30.0) -> bool:
        """Start supervisord unless it runs; True when this call started it."""
        if self.daemon_pid() is not None:
            return False
        if not self.conf.exists():
            raise SystemExit(f"no config at {self.conf}: render it first")
        # supervisord daemonizes: this returns once it has forked into the background.
        subprocess.run(
            [self.python, "-m", "supervisor.supervisord", "-c", str(self.conf)], check=True
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.rpc(timeout=2).getState()["statename"] == "RUNNING":
                    return True
            except (OSError, xmlrpc.client.Error):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"supervisord did not answer on {self.socket}; see {self.log}")
            time.sleep(0.1)

    def apply_config(self) -> list[str]:
        """Make a running supervisord take the rendered config (like `supervisorctl update`)."""
        sup = self.rpc()
        [[added, changed, removed]] = sup.reloadConfig()
        for name in removed + changed:
            sup.stopProcessGroup(name)
            sup.removeProcessGroup(name)
        for name in changed + added:
            sup.addProcessGroup(name)
        return [*added, *changed, *removed]

    def start_programs(self) -> None:
        """Start every program that is not running (those in FATAL included)."""
        self.rpc().startAllProcesses(False)

    def history(self) -> dict[str, _History]:
        files = [self.log.with_name(f"{self.log.name}.{i}") for i in range(9, 0, -1)]
        files.append(self.log)

        def lines() -> Iterable[str]:
            for path in files:
                if path.exists():
                    with path.open(errors="replace") as f:
                        yield from f

        return parse_history(lines())

    def statuses(self) -> list[ProgramStatus]:
        order = {name: i for i, name in enumerate(self.order())}
        infos = sorted(
            self.rpc().getAllProcessInfo(), key=lambda i: (order.get(i["name"], 1 << 30), i["name"])
        )
        history = self.history()
        result = []
        for info in infos:
            h = history.get(info["name"], _History())
            running = info["statename"] == "RUNNING"
            result.append(
                ProgramStatus(
                    name=info["name"],
                    state=info["statename"],
                    pid=int(info["pid"]),
                    uptime=float(info["now"] - info["start"]) if running else None,
                    starts=h.starts,
                    streak=h.streak,
                    last_exit=h.last_exit,
                    spawnerr=info["spawnerr"],
                    log=info["stdout_logfile"] or info["stderr_logfile"],
                )
            )
        return result

    def stop(self, timeout: float = 60.0) -> list[str]:
        """Stop every program (each gets its stopsignal, then SIGKILL after stopwaitsecs),
        then supervisord by its recorded PID. Returns the names of programs stopped."""
        pid = self.daemon_pid()
        if pid is None:
            return []
        stopped: list[str] = []
        try:
            sup = self.rpc()
            rank = {name: i for i, name in enumerate(self.order())}
            infos = sorted(sup.getAllProcessInfo(), key=lambda i: rank.get(i["name"], 1 << 30))
            programs = [i["name"] for i in infos if i["name"] != REAPER]
            pids = {
                i["name"]: int(i["pid"])
                for i in infos
                if i["name"] != REAPER and i["statename"] not in STOPPED_STATES
            }
            running = list(pids)
            for name in reversed(running):  # each waits up to its stopwaitsecs, then SIGKILL
                sup.stopProcess(name, False)
            deadline = time.monotonic() + timeout
            while True:
                states = {i["name"]: i["statename"] for i in sup.getAllProcessInfo()}
                done = [n for n in programs if states.get(n) in STOPPED_STATES]
                if len(done) == len(programs) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            stopped = [n for n in running if n in done]
            for name in stopped:
                left = kill_leftovers(pids[name])
                if left:
                    print(f"[platform] {name}: killed processes it left behind: {left}")
            # supervisord's own shutdown takes a tick per group: leave it only the reaper.
            for name in done:
                sup.removeProcessGroup(name)
        except (OSError, xmlrpc.client.Error) as e:
            # supervisord stops its programs itself on SIGTERM as well.
            print(f"[platform] stop through {self.socket} failed ({e}); signalling supervisord")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise SystemExit(f"supervisord (pid {pid}) still running after {timeout:.0f}s")
            time.sleep(0.1)
        return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_leftovers(pgid: int) -> list[int]:
    """SIGKILL the processes left in the group of `pgid` once its leader is gone."""
    if pgid <= 1 or pgid == os.getpgid(0):
        return []
    left = _group_members(pgid)
    if not left or pgid in left:  # nothing left, or the leader still runs
        return []
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return []
    return left


def reap(stdin: Any = sys.stdin, stdout: Any = sys.stdout) -> None:
    """Event listener: when a program's process is gone (exited, stopped, backing off,
    given up), SIGKILL whatever is left in its process group. supervisord starts each
    program as a group leader, so the group id is the dead process's PID."""
    from supervisor import childutils

    rpc = childutils.getRPCInterface(os.environ).supervisor
    leaders: dict[str, int] = {}  # program -> PID of its current or last process
    gone = {f"PROCESS_STATE_{state}" for state in ("EXITED", "STOPPED", "BACKOFF", "FATAL")}
    while True:
        headers, payload = childutils.listener.wait(stdin, stdout)
        event = headers.get("eventname", "")
        data = childutils.get_headers(payload.split("\n", 1)[0])
        name, group = data.get("processname", ""), data.get("groupname", "")
        try:
            if name and name != REAPER:
                pid = int(data.get("pid", 0))
                if event == "PROCESS_STATE_STARTING":  # forked just after the event
                    pid = int(rpc.getProcessInfo(f"{group}:{name}")["pid"])
                if pid and event not in gone:
                    leaders[name] = pid
                elif event in gone:
                    recorded = leaders.pop(name, 0)
                    pid = pid or recorded
                    current = int(rpc.getProcessInfo(f"{group}:{name}")["pid"])
                    left = kill_leftovers(pid) if pid and pid != current else []
                    if left:
                        print(
                            f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name}: process {pid} is "
                            f"gone ({event.removeprefix('PROCESS_STATE_')}); killed what it "
                            f"left in its group: {left}",
                            file=sys.stderr,
                            flush=True,
                        )
        except (OSError, xmlrpc.client.Error) as e:
            print(f"{name}: {event}: {e}", file=sys.stderr, flush=True)
        childutils.listener.ok(stdout)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}d " * (s >= 86400) + f"{s % 86400 // 3600}:{s % 3600 // 60:02}:{s % 60:02}"


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 4096, 0))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


def format_status(statuses: Sequence[ProgramStatus]) -> tuple[str, int]:
    """One line per program and the exit code: 0 when every program is RUNNING, else 1."""
    width = max((len(s.name) for s in statuses), default=0)
    lines, code = [], 0
    for s in statuses:
        head = f"{s.name:<{width}}  {s.state:<8}"
        counts = f"restarts {s.restarts}"
        if s.state == "RUNNING":
            uptime = _duration(s.uptime or 0)
            lines.append(f"{head}  pid {s.pid:<7}  uptime {uptime:>8}  {counts}")
            continue
        code = 1
        last = f", last exit: {s.last_exit}" if s.last_exit else ""
        if s.state == "FATAL":
            if s.streak:
                detail = f"crash loop: {s.streak} starts{last}; gave up"
            else:
                detail = f"could not start: {s.spawnerr or 'see log'}"
            tail = _last_line(s.log)
            lines.append(f"{head}  ({detail})  {counts}  log {s.log}")
            if tail:
                lines.append(f"{'':<{width}}  last log line: {tail}")
        elif s.state == "BACKOFF":
            lines.append(f"{head}  (restarting: {s.streak} starts in a row{last})  {counts}")
        elif s.state == "STARTING":
            lines.append(f"{head}  pid {s.pid:<7}  {counts}")
        else:
            lines.append(f"{head}  ({s.spawnerr or 'not running'}{last})  {counts}")
    return "\n".join(lines), code


# ---- command line ------------------------------------------------------------------------
def _legacy_pids(sup: Supervision, names: Iterable[str]) -> dict[str, int]:
    """Processes started by the earlier nohup-based platform.sh (one NAME.pid per program)."""
    found = {}
    for name in names:
        try:
            pid = int((sup.run / f"{name}.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        found[name] = pid
    return found


def _stop_legacy(sup: Supervision, names: Iterable[str]) -> None:
    for name, pid in _legacy_pids(sup, names).items():
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        (sup.run / f"{name}.pid").unlink(missing_ok=True)
        print(f"[platform] stopped {name} (pid {pid}, started without supervisord)")


def _wait_ready(sup: Supervision, url: str, timeout: float) -> int:
    """Until `url` answers 200 and every program is RUNNING; 1 when one gives up (FATAL)
    or on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = sup.statuses()
        fatal = [s for s in statuses if s.state == "FATAL"]
        if fatal:
            print(format_status(statuses)[0])
            for s in fatal:
                print(f"[platform] {s.name} gave up; last lines of {s.log}:")
                print(_tail(s.log, 30))
            return 1
        if all(s.state == "RUNNING" for s in statuses) and _answers(url):
            return 0
        if time.monotonic() > deadline:
            print(f"[platform] not ready after {timeout:.0f}s ({url} or a program):")
            print(format_status(statuses)[0])
            return 1
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _tail(path: str, n: int) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--state",
        default=os.environ.get("STATE_DIR", str(REPO_ROOT / ".state")),
        help="state folder (default: $STATE_DIR or <repo>/.state)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("render", "up", "status", "down", "reap"):
        sub.add_parser(name)
    ready = sub.add_parser("wait-ready")
    ready.add_argument("url")
    ready.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)

    sup = Supervision(args.state)
    programs = platform_programs(
        sup.python,
        api_port=int(os.environ.get("API_PORT", "8000")),
        api_workers=int(os.environ.get("API_WORKERS", "2")),
        ws_port=int(os.environ.get("WS_PORT", "8001")),
    )
    names = [p.name for p in programs]

    if args.command == "reap":
        reap()
    elif args.command == "render":
        print(sup.render(programs))
    elif args.command == "up":
        legacy = _legacy_pids(sup, names)
        if legacy:
            running = ", ".join(f"{n} (pid {p})" for n, p in legacy.items())
            print(f"[platform] running without supervisord: {running}; run `down` first")
            return 1
        sup.render(programs)
        if sup.start_daemon():
            print(f"[platform] supervisord started (pid {sup.daemon_pid()}, socket {sup.socket})")
        else:
            changed = sup.apply_config()
            print(
                f"[platform] supervisord already running (pid {sup.daemon_pid()})"
                + (f"; config changed for {', '.join(changed)}" if changed else "")
            )
        sup.start_programs()
        print(f"[platform] programs: {', '.join(names)}; logs {sup.run}/NAME.log")
    elif args.command == "wait-ready":
        return _wait_ready(sup, args.url, args.timeout)
    elif args.command == "status":
        if sup.daemon_pid() is None:
            for name in names:
                print(f"{name} down")
            print("[platform] supervisord is not running")
            return 3
        try:
            text, code = format_status(sup.statuses())
        except (OSError, xmlrpc.client.Error) as e:
            print(f"[platform] supervisord (pid {sup.daemon_pid()}) does not answer: {e}")
            return 1
        print(text)
        return code
    elif args.command == "down":
        if sup.daemon_pid() is None:
            print("[platform] supervisord is not running")
        for name in sup.stop():
            print(f"[platform] stopped {name}")
        if sup.daemon_pid() is None and sup.pidfile.exists():
            sup.pidfile.unlink(missing_ok=True)
        _stop_legacy(sup, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
