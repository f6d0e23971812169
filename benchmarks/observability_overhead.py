"""What tracing and metrics cost on the vote path, measured in one run.

    python -m benchmarks.observability_overhead [--seconds 10] [--rounds 3]
        [--connections 64] [--workers 2]

Needs the platform running (`bash deploy/up.sh`: the content dataflow materialises the
seeded posts) and `wrk`. The benchmark starts its
own API processes on free ports, alternately in two modes, and drives each with the
`votes_http` wrk script (PUT /votes from many users over many posts):

- `on`:  every request traced (a span per request, always sampled, exported to files
  by the batch span processor, trace context into the Kafka headers) and request
  metrics recorded in the multiprocess registry, as in production;
- `off`: no tracer provider (OpenTelemetry's no-op API) and `METRICS=off`.

Alternating rounds (off, on, off, on, ...) spread the machine's noise over both modes;
the figure is the ratio of the medians. Dataflows are not started: this is the API's
share, which is where a vote spends most of its CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import mint_tokens, run_wrk, seed_posts, start_process
from benchmarks.cpu import children_of, tree_seconds
from benchmarks.votes_http import vote_script
from stores.settings import get_settings
from tests.processes import free_port

MODES = ("off", "on", "sampled")


def mode_env(mode: str, trace_dir: Path) -> dict[str, str]:
    if mode == "on":
        return {"TRACE_DIR": str(trace_dir), "METRICS": "on", "OTEL_TRACES_SAMPLER": "always_on"}
    if mode == "sampled":  # what production runs: 1 % of new traces, every continued one
        return {
            "TRACE_DIR": str(trace_dir),
            "METRICS": "on",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        }
    return {
        "TRACE_DIR": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "METRICS": "off",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    settings = get_settings()
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    # The API's own CPU per vote in each mode: what the machine's noise does not move.
    cpu: dict[str, float] = {mode: 0.0 for mode in MODES}
    votes: dict[str, int] = {mode: 0 for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "votes.lua"
        trace_dir = Path(tmp) / "traces"
        trace_dir.mkdir()
        for round_no in range(args.rounds):
            for mode in MODES:
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                api = start_process(
                    ["-m", "api", "--port", str(port), "--workers", str(args.workers)],
                    f"{base}/readyz",
                    timeout=120,
                    env=mode_env(mode, trace_dir),
                )
                try:
                    if not script.exists():
                        posts = seed_posts(base, args.posts).post_ids
                        script.write_text(vote_script(mint_tokens(settings, args.users), posts))
                    before = tree_seconds(api.pid, children_of())
                    result = run_wrk(base, str(script), args.seconds, args.connections)
                    cpu[mode] += tree_seconds(api.pid, children_of()) - before
                    votes[mode] += result.requests
                finally:
                    api.terminate()
                    api.wait(30)
                results[mode].append((result.requests_per_second, result.p99_ms))
                print(
                    f"round {round_no + 1} {mode:>3}: {result.requests_per_second:7.0f} votes/s"
                    f"  p99 {result.p99_ms:6.1f} ms  non-2xx {result.non_2xx}"
                )
        spans = sum(1 for f in trace_dir.iterdir() for _ in f.open())
    rate = {mode: statistics.median(r for r, _ in results[mode]) for mode in MODES}
    p99 = {mode: statistics.median(p for _, p in results[mode]) for mode in MODES}
    overhead = 1 - rate["on"] / rate["off"]
    sampled_overhead = 1 - rate["sampled"] / rate["off"]
    print(
        f"median votes/s: off {rate['off']:.0f}, on {rate['on']:.0f}, sampled"
        f" {rate['sampled']:.0f} (tracing+metrics cost {overhead * 100:.1f}% of throughput,"
        f" {sampled_overhead * 100:.1f}% sampling 1 %; {spans} spans written)"
    )
    per_vote = {mode: cpu[mode] * 1e6 / max(votes[mode], 1) for mode in MODES}
    print(
        f"API CPU per vote: off {per_vote['off']:.0f} us, on {per_vote['on']:.0f} us"
        f" ({(per_vote['on'] / per_vote['off'] - 1) * 100:+.1f}%), sampled"
        f" {per_vote['sampled']:.0f} us ({(per_vote['sampled'] / per_vote['off'] - 1) * 100:+.1f}%)"
    )
    print(
        json.dumps(
            {
                "api_cpu_us_per_vote_off": round(per_vote["off"]),
                "api_cpu_us_per_vote_on": round(per_vote["on"]),
                "api_cpu_us_per_vote_sampled": round(per_vote["sampled"]),
                "votes_per_second_sampled": round(rate["sampled"]),
                "overhead_percent_sampled": round(sampled_overhead * 100, 1),
                "votes_per_second_off": round(rate["off"]),
                "votes_per_second_on": round(rate["on"]),
                "p99_ms_off": p99["off"],
                "p99_ms_on": p99["on"],
                "overhead_percent": round(overhead * 100, 1),
                "spans": spans,
            }
        )
    )


if __name__ == "__main__":
    main()
