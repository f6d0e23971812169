"""What the running platform costs with no load at all, per process, in % of one core.

On a two-core box the idle cost is spread over every vote of a load run (at 500 votes/s,
30 % of a core is 600 µs per vote), so it is worth measuring on its own. Needs the
platform running (`bash deploy/up.sh`) and nothing else using it.

    python -m benchmarks.idle_cost [--seconds 20] [--rounds 2]

Compare dataflow settings by restarting the platform with them between runs, e.g.
`DATAFLOW_IDLE_PAUSE_MAX_MS=80 DATAFLOW_SNAPSHOT_SECONDS=10 bash deploy/platform.sh up`.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.cpu import BENCHMARK, LOAD_GENERATOR, CpuMeter
from dataflows.bootstrap import JOBS


def measure(seconds: float) -> dict[str, float]:
    """% of one core per process over `seconds` of no load."""
    meter = CpuMeter()
    meter.start()
    time.sleep(seconds)
    spent = meter.stop()
    return {
        name: 100 * used / seconds
        for name, used in spent.items()
        if name not in (BENCHMARK, LOAD_GENERATOR)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        share = measure(args.seconds)
        flows = sum(share.get(f, 0.0) for f in JOBS)
        total = sum(share.values())
        print(f"round {round_}, {args.seconds:.0f}s idle, % of one core:")
        for name, pct in sorted(share.items(), key=lambda kv: -kv[1]):
            if pct >= 0.05:
                print(f"    {name:<14} {pct:6.1f}")
        print(f"    {'dataflows':<14} {flows:6.1f}")
        print(f"    {'platform total':<14} {total:6.1f}")
        print(
            json.dumps(
                {"round": round_, "dataflows_pct": round(flows, 1), "total_pct": round(total, 1)}
            )
        )


if __name__ == "__main__":
    main()
