from __future__ import annotations

from dataclasses import asdict

from benchmarks.workload import WorkloadConfig, generate


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    config = WorkloadConfig(seed=3, users=40, posts=30, communities=6, rings=(3, 5))
    first, again = generate(config), generate(config)
    assert [asdict(a) for a in first.actions] == [asdict(a) for a in again.actions]
    assert asdict(first.truth) == asdict(again.truth)
    other = generate(WorkloadConfig(seed=4, users=40, posts=30, communities=6, rings=(3, 5)))
    assert [asdict(a) for a in other.actions] != [asdict(a) for a in first.actions]


def test_roles_and_shapes() -> None:
    w = generate(WorkloadConfig(seed=9, users=60, posts=50, spammers=2, rings=(3, 4, 6)))
    t = w.truth
    assert [len(r) for r in t.rings] == [3, 4, 6]
    everyone = set(t.ordinary) | set(t.spammers) | {m for r in t.rings for m in r}
    assert len(everyone) == 60 + 2 + 13
    registered = {a.actor for a in w.actions if a.kind == "register"}
    assert registered == everyone
    # ordinary users never post in bursts
    times: dict[str, list[float]] = {}
    for a in w.actions:
        if a.kind == "post" and a.role == "ordinary":
            times.setdefault(a.actor, []).append(a.at)
    for ts in times.values():
        assert all(b - a >= 30 for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False))
    # every ring member's posts are upvoted by every other member
    for ring in t.rings:
        for a in w.actions:
            if a.kind == "post" and a.role == "ring" and a.actor in ring:
                voters = {v.actor for v in w.actions if v.kind == "vote" and v.ref == a.ref}
                assert voters == set(ring) - {a.actor}
    # heavy tails: the busiest community gets several times the posts of the median one
    per_community: dict[str, int] = {}
    for a in w.actions:
        if a.kind == "post" and a.role == "ordinary":
            per_community[a.community] = per_community.get(a.community, 0) + 1
    counts = sorted(per_community.values())
    assert counts[-1] >= 3 * counts[len(counts) // 2]
    # spam: one domain per spammer, in several communities
    spam = [a for a in w.actions if a.role == "spam"]
    assert len({a.community for a in spam if a.actor == t.spammers[0]}) >= 3
