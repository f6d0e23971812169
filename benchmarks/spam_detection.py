"""Precision, recall and time-to-flag of the spam dataflow's signals on the seeded
workload, driven through the HTTP API.

    python -m benchmarks.spam_detection [--base URL] [--seed 7] [--users 200] \\
        [--rings 3,5,8] [--spammers 4] [--duration 60] [--wait 120]

Needs the platform running with the spam dataflow (`bash deploy/up.sh`) and the
raised quotas of benchmarks/limits.env (the workload's spammers post faster than the
production post quota allows; with the quota they would mostly get 429s). Each run
uses fresh accounts (`--tag`, random by default), so earlier runs do not count.

Per signal, at account level among the workload's accounts: precision = flagged
accounts that are truly abusive / flagged accounts; recall = truly abusive accounts
flagged / truly abusive accounts (rings for `vote_ring`, spammers for
`rapid_posting` and `link_spam`). Time to flag: from a ring's first coordinated vote
(its acceptance by the API) to the first flag row of one of its members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime

import asyncpg

from benchmarks.workload import Driver, Truth, config_of, generate, parse_args
from domain.ids import new_id
from stores.pii import EmailVault
from stores.settings import Settings, get_settings
from stores.users import UserStore

SIGNALS = {"vote_ring": "rings", "rapid_posting": "spammers", "link_spam": "spammers"}


async def user_ids(settings: Settings, names: list[str]) -> dict[str, str]:
    pool = await asyncpg.create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=2)
    try:
        users = UserStore(pool, EmailVault(settings.email_encryption_key, settings.email_hash_key))
        found = {}
        for name in names:
            user = await users.find_user_by_login(name)
            if user is not None:
                found[name] = user.user_id
        return found
    finally:
        await pool.close()


async def flags(settings: Settings, ids: list[str]) -> dict[str, dict[str, datetime]]:
    """signal -> account id -> when its first flag row was written."""
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    try:
        rows = await conn.fetch(
            "SELECT signal, user_id, min(created_at) AS at FROM abuse_flags"
            " WHERE user_id = ANY($1::text[]) GROUP BY signal, user_id",
            ids,
        )
    finally:
        await conn.close()
    out: dict[str, dict[str, datetime]] = {s: {} for s in SIGNALS}
    for r in rows:
        out.setdefault(r["signal"], {})[r["user_id"]] = r["at"]
    return out


def score(truth: Truth, ids: dict[str, str], found: dict[str, dict[str, datetime]]) -> dict:
    ring_members = {ids[m] for ring in truth.rings for m in ring if m in ids}
    spammers = {ids[s] for s in truth.spammers if s in ids}
    report: dict[str, dict[str, float | int]] = {}
    for signal, kind in SIGNALS.items():
        positives = ring_members if kind == "rings" else spammers
        flagged = set(found.get(signal, {}))
        tp = len(flagged & positives)
        report[signal] = {
            "flagged": len(flagged),
            "true_positives": tp,
            "precision": round(tp / len(flagged), 3) if flagged else 1.0,
            "recall": round(tp / len(positives), 3) if positives else 1.0,
        }
    return report


def time_to_flag(
    truth: Truth, ids: dict[str, str], found: dict[str, dict[str, datetime]]
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for index, ring in enumerate(truth.rings):
        first_vote = truth.ring_first_coordinated_vote.get(index)
        times = [found["vote_ring"][ids[m]] for m in ring if ids.get(m) in found["vote_ring"]]
        if first_vote is None or not times:
            out[f"ring {index} ({len(ring)})"] = None
            continue
        out[f"ring {index} ({len(ring)})"] = round(min(times).timestamp() - first_vote, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for flags")
    own, rest = parser.parse_known_args()
    args = parse_args(rest)
    config = config_of(args)
    if not args.tag:
        config = replace(config, tag=new_id()[-4:].lower())
    settings = get_settings()
    workload = generate(config)
    started = time.monotonic()
    truth = Driver(own.base, workload, args.speed).run()
    driven = time.monotonic() - started
    names = [a.actor for a in workload.actions if a.kind == "register"]
    ids = asyncio.run(user_ids(settings, names))
    positives = {ids[m] for ring in truth.rings for m in ring} | {ids[s] for s in truth.spammers}
    deadline = time.monotonic() + own.wait
    found = asyncio.run(flags(settings, list(ids.values())))
    while time.monotonic() < deadline:
        flagged = set().union(*(set(f) for f in found.values()))
        if positives <= flagged:
            break
        time.sleep(2)
        found = asyncio.run(flags(settings, list(ids.values())))
    report = score(truth, ids, found)
    ttf = time_to_flag(truth, ids, found)
    print(
        f"spam detection: seed {config.seed}, {config.users} ordinary users, "
        f"{config.spammers} spammers, rings {list(config.rings)}, workload {driven:.0f}s"
    )
    print("  outcomes: " + ", ".join(f"{k}: {n}" for k, n in truth.outcomes.items()))
    for signal, r in report.items():
        print(
            f"  {signal:14s} precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
            f"({r['true_positives']} of {r['flagged']} flagged are true)"
        )
    for ring, seconds in ttf.items():
        shown = "not flagged" if seconds is None else f"{seconds:.1f} s"
        print(f"  time to flag {ring}: {shown} after its first coordinated vote")
    print(json.dumps({"signals": report, "time_to_flag_seconds": ttf}))


if __name__ == "__main__":
    main()
