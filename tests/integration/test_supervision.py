"""The platform's process supervision (deploy/supervision.py) with a real supervisord.

A supervisord of its own (temporary state folder, its own unix socket) runs two small
programs: a sleeper with a child process of its own (like the API and its workers) and
one that exits at once every time. Killing the sleeper with SIGKILL must bring it back
under a new PID with its restart count up by one and its old child gone; the other must
end FATAL and `status` must report the crash loop and exit non-zero. The real
platform's config is rendered and read back by supervisor's own parser.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "supervision.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("supervision", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["supervision"] = module
    spec.loader.exec_module(module)
    return module


supervision = _load()
STARTRETRIES = 2  # the crasher is spawned 1 + STARTRETRIES times before FATAL


@pytest.fixture(scope="module")
def sup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state = tmp_path_factory.mktemp("supervised")
    s = supervision.Supervision(state)
    py, sh = sys.executable, shutil.which("sh") or "sh"
    s.render(
        [
            supervision.Program(  # a child in its process group, then the sleeper itself
                "sleeper",
                [sh, "-c", f"sleep 600 & exec {shlex.quote(py)} -c 'import time; time.sleep(600)'"],
                startsecs=1,
                stopwaitsecs=5,
            ),
            supervision.Program(  # a shell starts fast even on a busy machine
                "crasher",
                [sh, "-c", "echo 'no config, giving up'; exit 3"],
                startsecs=2,
                startretries=STARTRETRIES,
            ),
        ],
        workdir=state,
    )
    assert s.start_daemon(), "a fresh state folder has no supervisord yet"
    assert not s.start_daemon(), "a second start finds it running"
    yield s
    s.stop(timeout=20)


def status_of(s: Any, name: str) -> Any:
    return next(st for st in s.statuses() if st.name == name)


def status_cli(s: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--state", str(s.state_dir), "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_sigkilled_program_comes_back_with_a_new_pid_and_a_restart_counted(sup: Any) -> None:
    def running(pid_not: int = 0) -> Any:
        st = status_of(sup, "sleeper")
        return st if st.state == "RUNNING" and st.pid not in (0, pid_not) else None

    first = wait_for(running, timeout=15, what="sleeper RUNNING")
    assert first.restarts == 0
    child = wait_for(
        lambda: [p for p in supervision._group_members(first.pid) if p != first.pid],
        timeout=10,
        what="the sleeper's child",
    )

    os.kill(first.pid, signal.SIGKILL)
    again = wait_for(lambda: running(pid_not=first.pid), timeout=15, what="sleeper back")
    # The reaper (a supervisor event listener) kills what the dead process left behind.
    wait_for(lambda: not any(supervision._alive(p) for p in child), timeout=10, what="child gone")

    assert again.pid != first.pid
    assert again.restarts == first.restarts + 1
    assert again.last_exit.startswith("terminated by SIGKILL")
    line = next(ln for ln in status_cli(sup).stdout.splitlines() if ln.startswith("sleeper"))
    assert f"pid {again.pid}" in line and "restarts 1" in line and "uptime" in line
    reaper = status_of(sup, "reaper")
    assert reaper.state == "RUNNING" and reaper.restarts == 0
    assert str(first.pid) in Path(reaper.log).read_text()


def test_program_exiting_at_once_ends_fatal_and_status_reports_the_crash_loop(sup: Any) -> None:
    fatal = wait_for(
        lambda: (st := status_of(sup, "crasher")).state == "FATAL" and st,
        timeout=25,
        what="crasher FATAL",
    )
    assert fatal.streak == 1 + STARTRETRIES
    assert fatal.restarts == STARTRETRIES

    result = status_cli(sup)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("crasher"))
    assert "FATAL" in line
    assert f"crash loop: {1 + STARTRETRIES} starts" in line
    assert "last exit: exit status 3" in line
    assert "no config, giving up" in result.stdout  # the program's last log line

    # FATAL stays FATAL: supervisord does not respawn it behind our back.
    assert status_of(sup, "crasher").streak == 1 + STARTRETRIES

    # `up` starts programs in FATAL again: a new loop is counted from one.
    sup.start_programs()
    st = wait_for(
        lambda: (st := status_of(sup, "crasher")).starts > fatal.starts and st,
        timeout=10,
        what="crasher restarted",
    )
    assert st.streak == st.starts - fatal.starts


def test_down_stops_programs_and_supervisord(sup: Any) -> None:
    daemon = sup.daemon_pid()
    sleeper = status_of(sup, "sleeper").pid
    assert daemon and sleeper
    family = wait_for(lambda: supervision._group_members(sleeper), what="sleeper's group")
    assert len(family) == 2

    stopped = sup.stop(timeout=20)

    assert "sleeper" in stopped
    assert sup.daemon_pid() is None
    assert not any(supervision._alive(p) for p in [daemon, *family])
    result = status_cli(sup)
    assert result.returncode == 3 and "supervisord is not running" in result.stdout


def test_platform_config_names_every_program_and_reads_back(tmp_path: Path) -> None:
    s = supervision.Supervision(tmp_path)
    programs = supervision.platform_programs(sys.executable, api_port=18000, ws_port=18001)
    conf = s.render(programs)

    assert conf == tmp_path.resolve() / "platform" / "supervisord.conf"
    parser = configparser.RawConfigParser()
    parser.read(conf)
    names = [s.removeprefix("program:") for s in parser.sections() if s.startswith("program:")]
    assert parser["eventlistener:reaper"]["events"] == "PROCESS_STATE"
    assert names == [
        "content",
        "votes",
        "ranking",
        "karma",
        "mentions",
        "media",
        "spam",
        "search",
        "relay",
        "api",
        "ws",
    ]
    assert "inet_http_server" not in parser.sections()  # the control socket is a unix socket
    assert parser["unix_http_server"]["file"] == str(s.socket)
    api = parser["program:api"]
    assert api["command"].split()[:4] == [sys.executable, "-m", "api", "--port"]
    assert "18000" in api["command"] and "18001" in parser["program:ws"]["command"]
    votes = parser["program:votes"]
    assert votes["stopsignal"] == "INT" and votes["autorestart"] == "true"
    assert int(votes["stopwaitsecs"]) >= 30 and int(votes["startretries"]) == 5
    assert votes["stdout_logfile"] == str(s.run / "votes.log")
    assert f'STATE_DIR="{tmp_path.resolve()}"' in votes["environment"]
    priorities = [int(parser[f"program:{n}"]["priority"]) for n in names]
    assert priorities == sorted(priorities)

    # supervisor's own config reader accepts it.
    from supervisor.options import ServerOptions

    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    assert [g.name for g in sorted(options.process_group_configs)] == ["reaper", *names]
