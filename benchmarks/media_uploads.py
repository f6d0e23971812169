"""Uploads: latency to `ready`, throughput with thumbnails, and the API's memory.

    python -m benchmarks.media_uploads [--latency-uploads 30] [--throughput-uploads 48]
        [--clients 4] [--parallel 20] [--big-mb 10]

Needs the local stack (`bash deploy/stack.sh up`, `python -m ops migrate`); starts its
own API (one worker), outbox relay and media dataflow, and stops them at the end.
1. upload -> ready: one 4 MP JPEG (2448 x 1632, camera-like EXIF) at a time, timed
   from the start of POST /media until GET /media/{id} says ready (polled every 20 ms);
2. uploads/s: `--clients` clients uploading 4 MP JPEGs, from the first POST until
   the last upload is ready (thumbnail included);
3. memory: the resident set of the API's processes (main + worker), sampled every
   20 ms, while `--parallel` clients upload `--big-mb` MB JPEGs at once.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from benchmarks.common import percentile, start_process, summary
from domain.ids import new_id

ROOT = Path(__file__).resolve().parent.parent


def jpeg(width: int, height: int, quality: int, seed: int) -> bytes:
    rng = random.Random(seed)
    noise = Image.frombytes(
        "RGB", (width // 8, height // 8), rng.randbytes(width * height * 3 // 64)
    )
    image = noise.resize((width, height), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 26.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def big_jpeg(megabytes: float, seed: int) -> bytes:
    """A JPEG of about `megabytes` MB (fine noise at quality 95)."""
    rng = random.Random(seed)
    side = 1600
    while True:
        image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=95)
        if out.tell() >= megabytes * 1_000_000:
            return out.getvalue()
        side = int(side * 1.15)


def rss_of_tree(root: int) -> int:
    """Resident bytes of `root` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Bench:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=120)
        name = f"bench{new_id()[-8:].lower()}"
        self.http.post(
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "bench-pass"},
        ).raise_for_status()
        token = self.http.post("/auth/login", json={"login": name, "password": "bench-pass"})
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def upload(self, data: bytes) -> str:
        with httpx.Client(base_url=str(self.http.base_url), timeout=120) as http:
            r = http.post("/media", files={"file": ("p.jpg", data)}, headers=self.headers)
        r.raise_for_status()
        media_id: str = r.json()["media_id"]
        return media_id

    def wait_ready(self, media_id: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=str(self.http.base_url), timeout=30) as http:
            while time.monotonic() < deadline:
                status: str = http.get(f"/media/{media_id}", headers=self.headers).json()["status"]
                if status in ("ready", "failed"):
                    return status
                time.sleep(0.02)
        raise RuntimeError(f"{media_id} not processed in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-uploads", type=int, default=30)
    parser.add_argument("--throughput-uploads", type=int, default=48)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--big-mb", type=float, default=10)
    parser.add_argument("--port", type=int, default=8170)
    args = parser.parse_args()

    env = {"RECOVERY_ROOT": tempfile.mkdtemp(prefix="bench-media-recovery-")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "api.relay"], cwd=ROOT, env={**os.environ, **env}
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dataflows", "run", "media"],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        api = start_process(
            ["-m", "api", "--port", str(args.port), "--workers", "1"],
            f"http://127.0.0.1:{args.port}/readyz",
            timeout=300,
            env=env,
        )
        procs.append(api)
        bench = Bench(f"http://127.0.0.1:{args.port}")
        photos = [jpeg(2448, 1632, 90, seed) for seed in range(8)]
        print(f"4 MP JPEG: 2448x1632, {len(photos[0]) / 1e6:.2f} MB")
        bench.wait_ready(bench.upload(photos[0]), timeout=300)  # warm-up (dataflow start)

        latencies: list[float] = []
        for i in range(args.latency_uploads):
            started = time.perf_counter()
            status = bench.wait_ready(bench.upload(photos[i % len(photos)]))
            assert status == "ready", status
            latencies.append(time.perf_counter() - started)
        print(f"upload -> ready (sequential): {summary(latencies)}")

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            ids = list(
                pool.map(
                    lambda i: bench.upload(photos[i % len(photos)]),
                    range(args.throughput_uploads),
                )
            )
            accepted = time.perf_counter() - started
            statuses = list(pool.map(bench.wait_ready, ids))
        elapsed = time.perf_counter() - started
        print(
            f"throughput: {len(ids)} uploads by {args.clients} clients: accepted "
            f"{len(ids) / accepted:.1f}/s, ready with thumbnails {len(ids) / elapsed:.1f}/s "
            f"({statuses.count('ready')} ready)"
        )

        big = [big_jpeg(args.big_mb, seed) for seed in range(4)]
        print(f"big JPEG: {len(big[0]) / 1e6:.1f} MB, {Image.open(io.BytesIO(big[0])).size}")
        baseline = rss_of_tree(api.pid)
        peak = baseline
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_of_tree(api.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            codes = list(pool.map(lambda i: bench.upload(big[i % len(big)]), range(args.parallel)))
        took = time.perf_counter() - started
        stop.set()
        sampler.join()
        print(
            f"{args.parallel} parallel {args.big_mb:.0f} MB uploads: {len(codes)} accepted in "
            f"{took:.1f} s; API RSS before {baseline / 2**20:.0f} MiB, peak {peak / 2**20:.0f} "
            f"MiB (+{(peak - baseline) / 2**20:.0f} MiB)"
        )
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        print(f"upload -> ready p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
