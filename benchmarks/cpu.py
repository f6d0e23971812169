"""CPU time each platform process spends during a benchmark, read from the OS.

Throughput moves with the machine and its neighbours; CPU time per accepted request is
what holds from one box to the next, and it says which process to make cheaper. A
`CpuMeter` reads `/proc/<pid>/stat` (user + system time, plus that of reaped children)
for every process tree of the local stack (the PID files `deploy/stack.sh` writes:
Postgres with its backends, Redis, Kafka, Cassandra, ...) and of the platform's
supervised programs (the API with its workers, each dataflow, the push server, the
relay), before and after the measured phase; the load generator (`wrk`, a child of this
process) and this process itself are measured with `getrusage`.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator (wrk)"
BENCHMARK = "benchmark process"
RUNNING = re.compile(r"^(?P<name>\S+)\s+RUNNING\s+pid (?P<pid>\d+)", re.MULTILINE)


def state_dir() -> Path:
    return Path(os.environ.get("STATE_DIR") or ROOT / ".state")


def stack_roots(state: Path) -> dict[str, int]:
    """The stack's servers by the PID files `deploy/stack.sh` keeps (`<service>.pid`)."""
    roots = {}
    for pidfile in sorted(state.glob("*/*.pid")):
        try:
            roots[pidfile.stem] = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return roots


def platform_roots(state: Path) -> dict[str, int]:
    """The supervised programs that are running, as `deploy/platform.sh status` lists
    them (none when supervisord is not running)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "platform.sh"), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "STATE_DIR": str(state)},
        timeout=60,
        check=False,
    ).stdout
    return {m["name"]: int(m["pid"]) for m in RUNNING.finditer(out)}


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd on (state, ppid, ...)


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie waiting to be reaped."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]], others: frozenset[int]) -> list[int]:
    """`pid` and its descendants, short of the subtrees of `others` (measured on their own:
    supervisord's programs are its children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(child for child in tree.get(current, []) if child not in others)
    return found


def tree_seconds(
    root: int, tree: dict[int, list[int]], others: frozenset[int] = frozenset()
) -> float:
    """User + system time of a process tree: every live member, plus what its members
    collected from children they reaped (a Postgres backend that ended, say)."""
    ticks = 0
    for pid in descendants(root, tree, others):
        fields = _stat(pid)
        if fields is not None:  # utime stime cutime cstime are fields 14-17
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / TICKS


def own_seconds() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@dataclass
class CpuMeter:
    """`start()` before the measured phase, `stop()` after it: CPU seconds per process."""

    state: Path = field(default_factory=state_dir)
    roots: dict[str, int] = field(default_factory=dict)
    _before: dict[str, float] = field(default_factory=dict)

    def read(self) -> dict[str, float]:
        tree = children_of()
        roots = frozenset(self.roots.values())
        seconds = {name: tree_seconds(pid, tree, roots) for name, pid in self.roots.items()}
        mine, kids = own_seconds()
        seconds[BENCHMARK] = mine
        seconds[LOAD_GENERATOR] = kids
        return seconds

    def start(self, extra: dict[str, int] | None = None) -> None:
        """`extra`: processes the benchmark started itself (its own API, say)."""
        self.roots = {**stack_roots(self.state), **platform_roots(self.state), **(extra or {})}
        self._before = self.read()

    def stop(self) -> dict[str, float]:
        after = self.read()
        return {name: after[name] - self._before.get(name, 0.0) for name in after}


def cost_table(spent: dict[str, float], units: int, unit: str = "vote") -> str:
    """Microseconds of CPU per `unit`, per process, and the platform's total (the load
    generator and the benchmark process excluded)."""
    units = max(units, 1)
    outside = (LOAD_GENERATOR, BENCHMARK)
    rows = sorted(spent.items(), key=lambda kv: -kv[1])
    lines = [f"  CPU per {unit} (us), {units} {unit}s:"]
    lines += [
        f"    {name:<24} {seconds * 1e6 / units:8.1f}"
        for name, seconds in rows
        if name not in outside
    ]
    total = sum(s for name, s in spent.items() if name not in outside)
    lines.append(f"    {'platform total':<24} {total * 1e6 / units:8.1f}")
    lines += [f"    {name:<24} {spent.get(name, 0.0) * 1e6 / units:8.1f}" for name in outside]
    return "\n".join(lines)


def platform_total(spent: dict[str, float], units: int) -> float:
    return (
        sum(s for n, s in spent.items() if n not in (LOAD_GENERATOR, BENCHMARK))
        * 1e6
        / max(units, 1)
    )
