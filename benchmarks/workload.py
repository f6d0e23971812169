"""A seeded, reproducible workload: ordinary users, spammers and vote rings.

    python -m benchmarks.workload --seed 7 --users 200 --communities 12 \\
        --spammers 4 --rings 3,5,8 --duration 60 --plan plan.jsonl
    python -m benchmarks.workload --seed 7 --users 200 --api http://127.0.0.1:8000 \\
        --truth truth.json

The same arguments always give the same plan (`generate`): a list of timed actions
(register, community, post, comment, vote) and its ground truth (who is ordinary, who
spams, which accounts form each ring). `--plan` writes the plan as JSON lines;
`--api` drives it through the HTTP API in (scaled) real time and writes the ground
truth with the ids the API gave (`--truth`).

What it models
- Communities of Zipf-distributed popularity (exponent `--zipf`): a few big ones, a
  long tail of small ones; posts and readers pick communities by that weight.
- Ordinary users with heavy-tailed activity (Pareto weights): a few post and vote a
  lot, most rarely; an ordinary user's posts are at least `ordinary_post_gap` seconds
  apart (people do not post in bursts of several a minute). Votes per post are
  heavy-tailed too (popular posts attract many); 80 % up, 20 % down; most arrive
  soon after the post, and some posts get a burst (many votes within seconds, as when
  a post is shared elsewhere).
- Spammers: rapid posting (a post every few seconds) of the same link across many
  communities, with varied titles and bodies (so the duplicate check does not stop
  them; their domains are not on the blocklist).
- Vote rings of the given sizes: every member posts a few times, and the other
  members upvote each of those posts within seconds of it (coordinated); members also
  vote normally on popular posts (camouflage) and vote on each other's posts no more
  often than an active ordinary user votes.

Usernames carry no hint of the role. The driver registers every account through the
API (the platform's development profile lets loopback clients do that), logs in, and
retries votes on posts that are not materialised yet (404) for up to 60 s. Against an
API with the production quotas, spammers meet the post limit (429s are counted and
reported, as they would be in production); the spam benchmark raises the quotas
(`benchmarks/limits.env`) so that the asynchronous detectors are measured.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import httpx

Kind = Literal["register", "community", "post", "comment", "vote"]
WORDS = (
    "river stone garden orbit violet engine harbor maple cedar lantern quiet signal "
    "copper meadow summit ember tidal prism canyon willow falcon ribbon glacier "
    "thunder saffron mosaic compass velvet beacon harvest"
).split()
SPAM_OPENERS = ("Amazing", "Unbelievable", "Limited", "Exclusive", "Hot", "Secret", "Best")
SPAM_THINGS = ("deal", "offer", "discount", "trick", "bargain", "sale", "coupon")


@dataclass(frozen=True)
class WorkloadConfig:
    seed: int = 7
    users: int = 200  # ordinary users
    communities: int = 12
    posts: int = 150  # ordinary posts
    votes_per_post: float = 6.0  # mean of the heavy-tailed ordinary votes per post
    comments: int = 200
    spammers: int = 4
    spam_posts: int = 8  # per spammer
    rings: tuple[int, ...] = (3, 5, 8)
    ring_posts: int = 3  # per ring member
    camouflage_votes: int = 10  # ordinary-looking votes per ring member
    duration: float = 60.0  # seconds the timeline spans
    zipf: float = 1.1
    burst_share: float = 0.1  # posts that get a burst of votes
    tag: str = ""  # prefix of every username and community name (fresh accounts per run)
    ordinary_post_gap: float = 30.0  # seconds between two posts of an ordinary user


@dataclass
class Action:
    at: float  # seconds from the start
    kind: Kind
    actor: str  # username
    community: str = ""
    ref: str = ""  # the post this action creates (post) or targets (vote, comment)
    title: str = ""
    body: str = ""
    url: str = ""
    direction: int = 0
    role: str = ""  # why: ordinary, spam, ring, camouflage, burst, setup


@dataclass
class Truth:
    seed: int
    ordinary: list[str]
    spammers: list[str]
    rings: list[list[str]]
    communities: list[str]
    spam_posts: list[str] = field(default_factory=list)  # post refs (ids once driven)
    ring_posts: list[str] = field(default_factory=list)
    posts: dict[str, str] = field(default_factory=dict)  # ref -> post id (driven)
    ring_first_coordinated_vote: dict[int, float] = field(default_factory=dict)  # wall
    spammer_first_post: dict[str, float] = field(default_factory=dict)  # wall clock
    outcomes: dict[str, int] = field(default_factory=dict)  # "kind status" -> count


@dataclass
class Workload:
    config: WorkloadConfig
    actions: list[Action]
    truth: Truth


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def _name(rng: random.Random, taken: set[str], prefix: str = "") -> str:
    while True:
        name = f"{prefix}{rng.choice(WORDS)}_{rng.choice(WORDS)[:6]}{rng.randrange(1000)}"[:20]
        if name not in taken:
            taken.add(name)
            return name


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def generate(config: WorkloadConfig) -> Workload:
    """The plan for `config`: the same config always gives the same plan."""
    rng = random.Random(config.seed)
    taken: set[str] = set()
    span = config.duration
    tag = config.tag
    ordinary = [_name(rng, taken, tag) for _ in range(config.users)]
    spammers = [_name(rng, taken, tag) for _ in range(config.spammers)]
    rings = [[_name(rng, taken, tag) for _ in range(size)] for size in config.rings]
    members = [m for ring in rings for m in ring]
    everyone = ordinary + spammers + members
    rng.shuffle(everyone)  # registration order tells nothing either
    communities = [_name(rng, taken, "c" + tag)[:21] for _ in range(config.communities)]
    community_weight = _zipf_weights(len(communities), config.zipf)
    activity = {u: rng.paretovariate(1.2) for u in ordinary}
    actors = list(activity)
    actor_weight = [activity[u] for u in actors]

    actions: list[Action] = [Action(0.0, "register", u, role="setup") for u in everyone]
    owners = [ordinary[i % len(ordinary)] for i in range(len(communities))]
    actions += [
        Action(0.0, "community", o, community=c, role="setup")
        for o, c in zip(owners, communities, strict=True)
    ]
    truth = Truth(config.seed, ordinary, spammers, rings, communities)

    # Ordinary posts and their heavy-tailed votes (with bursts) and comments.
    post_times: dict[str, float] = {}
    post_author: dict[str, str] = {}
    popularity: dict[str, float] = {}
    last_post: dict[str, float] = {}
    for i, at in enumerate(sorted(rng.uniform(0.05, 0.7) * span for _ in range(config.posts))):
        ref = f"p{i}"
        community = rng.choices(communities, community_weight)[0]
        # an ordinary user posts now and then, never in a rapid burst
        free = [u for u in actors if at - last_post.get(u, -1e9) >= config.ordinary_post_gap]
        if not free:
            continue
        author = rng.choices(free, [activity[u] for u in free])[0]
        last_post[author] = at
        actions.append(
            Action(
                at,
                "post",
                author,
                community,
                ref,
                _sentence(rng, 5),
                f"{_sentence(rng, 12)} #{ref}",
                role="ordinary",
            )
        )
        post_times[ref], post_author[ref] = at, author
        popularity[ref] = rng.paretovariate(1.5)
    mean_pop = sum(popularity.values()) / max(1, len(popularity))
    for ref, at in post_times.items():
        count = min(len(actors) - 1, round(popularity[ref] / mean_pop * config.votes_per_post))
        voters = _weighted_sample(rng, actors, actor_weight, count, exclude=post_author[ref])
        burst = rng.random() < config.burst_share
        for voter in voters:
            delay = rng.uniform(0.2, 4.0) if burst else rng.expovariate(1 / (0.15 * span))
            direction = 1 if rng.random() < 0.8 else -1
            actions.append(
                Action(
                    min(span, at + delay),
                    "vote",
                    voter,
                    ref=ref,
                    direction=direction,
                    role="burst" if burst else "ordinary",
                )
            )
    refs = list(post_times)
    ref_weight = [popularity[r] for r in refs]
    for i in range(config.comments):
        ref = rng.choices(refs, ref_weight)[0]
        actions.append(
            Action(
                min(span, post_times[ref] + rng.expovariate(1 / (0.1 * span))),
                "comment",
                rng.choices(actors, actor_weight)[0],
                ref=ref,
                body=f"{_sentence(rng, 8)} ({i})",
                role="ordinary",
            )
        )

    # Spammers: the same link in many communities, a post every few seconds.
    for s, spammer in enumerate(spammers):
        domain = f"{rng.choice(WORDS)}-{rng.choice(SPAM_THINGS)}{s}.shop"
        start = rng.uniform(0.1, 0.5) * span
        targets = rng.sample(communities, min(len(communities), config.spam_posts))
        for k in range(config.spam_posts):
            ref = f"s{s}_{k}"
            opener, thing = rng.choice(SPAM_OPENERS), rng.choice(SPAM_THINGS)
            actions.append(
                Action(
                    start + k * rng.uniform(1.0, 3.0),
                    "post",
                    spammer,
                    targets[k % len(targets)],
                    ref,
                    f"{opener} {thing} {rng.randrange(10, 90)}% off",
                    f"{_sentence(rng, 6)} https://{domain}/promo?c={k}",
                    role="spam",
                )
            )
            truth.spam_posts.append(ref)

    # Rings: members post, the others upvote each post within seconds; camouflage.
    for r, ring in enumerate(rings):
        start = rng.uniform(0.1, 0.4) * span
        for m, member in enumerate(ring):
            for k in range(config.ring_posts):
                ref = f"r{r}_{m}_{k}"
                at = start + rng.uniform(0, 0.3 * span)
                community = rng.choices(communities, community_weight)[0]
                actions.append(
                    Action(
                        at,
                        "post",
                        member,
                        community,
                        ref,
                        _sentence(rng, 5),
                        f"{_sentence(rng, 12)} #{ref}",
                        role="ring",
                    )
                )
                truth.ring_posts.append(ref)
                for other in ring:
                    if other != member:
                        actions.append(
                            Action(
                                at + rng.uniform(1.0, 6.0),
                                "vote",
                                other,
                                ref=ref,
                                direction=1,
                                role="ring",
                            )
                        )
            for _ in range(config.camouflage_votes):
                ref = rng.choices(refs, ref_weight)[0]
                actions.append(
                    Action(
                        min(span, post_times[ref] + rng.uniform(1, 0.2 * span)),
                        "vote",
                        member,
                        ref=ref,
                        direction=1 if rng.random() < 0.8 else -1,
                        role="camouflage",
                    )
                )
    actions.sort(key=lambda a: (a.at, a.kind != "register", a.kind != "community"))
    return Workload(config, actions, truth)


def _weighted_sample(
    rng: random.Random, items: list[str], weights: list[float], k: int, exclude: str
) -> list[str]:
    chosen: list[str] = []
    seen = {exclude}
    attempts = 0
    while len(chosen) < k and attempts < k * 20:
        attempts += 1
        pick = rng.choices(items, weights)[0]
        if pick not in seen:
            seen.add(pick)
            chosen.append(pick)
    return chosen


# Driving the plan through the API.

PASSWORD = "workload-password"


class Driver:
    """Runs a plan against the HTTP API in real time divided by `speed`."""

    def __init__(self, base: str, workload: Workload, speed: float = 1.0, threads: int = 8):
        self.base = base
        self.workload = workload
        self.speed = speed
        self.threads = threads
        self.local = threading.local()
        self.tokens: dict[str, str] = {}
        self.post_ids: dict[str, str] = {}
        self.posted = {ref: threading.Event() for ref in self._post_refs()}
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.started = 0.0

    def _post_refs(self) -> list[str]:
        return [a.ref for a in self.workload.actions if a.kind == "post"]

    @property
    def http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "http", None)
        if client is None:
            client = httpx.Client(base_url=f"{self.base}/api/v1", timeout=120)
            self.local.http = client
        return client

    def _count(self, action: Action, status: int) -> None:
        with self.lock:
            self.outcomes[f"{action.kind} {status}"] += 1

    def _headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def register(self, action: Action) -> None:
        body = {"username": action.actor, "email": f"{action.actor}@example.com"}
        r = self.http.post("/auth/register", json={**body, "password": PASSWORD})
        self._count(action, r.status_code)
        r = self.http.post("/auth/login", json={"login": action.actor, "password": PASSWORD})
        r.raise_for_status()
        with self.lock:
            self.tokens[action.actor] = r.json()["access_token"]

    def community(self, action: Action) -> None:
        r = self.http.post(
            "/communities",
            json={"name": action.community, "description": "workload"},
            headers=self._headers(action.actor),
        )
        self._count(action, r.status_code)

    def post(self, action: Action) -> None:
        r = self.http.post(
            f"/communities/{action.community}/posts",
            json={"title": action.title, "kind": "text", "body": action.body},
            headers=self._headers(action.actor),
        )
        self._count(action, r.status_code)
        if r.status_code == 202:
            with self.lock:
                self.post_ids[action.ref] = r.json()["post_id"]
                if action.role == "spam":
                    self.workload.truth.spammer_first_post.setdefault(action.actor, time.time())
        self.posted[action.ref].set()

    def _target(self, ref: str) -> str | None:
        self.posted[ref].wait(120)
        return self.post_ids.get(ref)

    def vote(self, action: Action) -> None:
        post_id = self._target(action.ref)
        if post_id is None:
            self._count(action, 0)  # its post was refused
            return
        body = {"target_id": post_id, "target_type": "post", "direction": action.direction}
        deadline = time.monotonic() + 60
        while True:
            r = self.http.put("/votes", json=body, headers=self._headers(action.actor))
            if r.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # not materialised yet
        self._count(action, r.status_code)
        if r.status_code == 200 and action.role == "ring":
            ring = next(
                i for i, ring in enumerate(self.workload.truth.rings) if action.actor in ring
            )
            with self.lock:
                self.workload.truth.ring_first_coordinated_vote.setdefault(ring, time.time())

    def comment(self, action: Action) -> None:
        post_id = self._target(action.ref)
        if post_id is None:
            self._count(action, 0)
            return
        deadline = time.monotonic() + 60
        while True:
            r = self.http.post(
                f"/posts/{post_id}/comments",
                json={"body": action.body},
                headers=self._headers(action.actor),
            )
            if r.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self._count(action, r.status_code)

    def run(self) -> Truth:
        setup = [a for a in self.workload.actions if a.kind in ("register", "community")]
        timed = [a for a in self.workload.actions if a.kind not in ("register", "community")]
        handlers: dict[str, Callable[[Action], None]] = {
            "register": self.register,
            "community": self.community,
            "post": self.post,
            "vote": self.vote,
            "comment": self.comment,
        }
        # registration hashes passwords (Argon2): a few at a time
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(handlers["register"], [a for a in setup if a.kind == "register"]))
            list(pool.map(handlers["community"], [a for a in setup if a.kind == "community"]))
        self.started = time.monotonic()
        with ThreadPoolExecutor(self.threads * 4) as pool:
            futures = []
            for action in timed:
                delay = self.started + action.at / self.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(handlers[action.kind], action))
            for future in futures:
                future.result()
        truth = self.workload.truth
        truth.posts = dict(self.post_ids)
        truth.spam_posts = [self.post_ids[r] for r in truth.spam_posts if r in self.post_ids]
        truth.ring_posts = [self.post_ids[r] for r in truth.ring_posts if r in self.post_ids]
        truth.outcomes = dict(sorted(self.outcomes.items()))
        return truth


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = WorkloadConfig()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--communities", type=int, default=defaults.communities)
    parser.add_argument("--posts", type=int, default=defaults.posts)
    parser.add_argument("--votes-per-post", type=float, default=defaults.votes_per_post)
    parser.add_argument("--comments", type=int, default=defaults.comments)
    parser.add_argument("--spammers", type=int, default=defaults.spammers)
    parser.add_argument("--spam-posts", type=int, default=defaults.spam_posts)
    parser.add_argument(
        "--rings", default=",".join(map(str, defaults.rings)), help="ring sizes, e.g. 3,5,8"
    )
    parser.add_argument("--ring-posts", type=int, default=defaults.ring_posts)
    parser.add_argument("--camouflage-votes", type=int, default=defaults.camouflage_votes)
    parser.add_argument("--duration", type=float, default=defaults.duration)
    parser.add_argument("--zipf", type=float, default=defaults.zipf)
    parser.add_argument("--tag", default="", help="prefix of names (fresh accounts per run)")
    parser.add_argument("--plan", type=Path, help="write the plan as JSON lines")
    parser.add_argument("--api", help="drive the plan through this API base URL")
    parser.add_argument("--speed", type=float, default=1.0, help="time compression")
    parser.add_argument("--truth", type=Path, help="write the ground truth (JSON)")
    return parser.parse_args(argv)


def config_of(args: argparse.Namespace) -> WorkloadConfig:
    return WorkloadConfig(
        seed=args.seed,
        users=args.users,
        communities=args.communities,
        posts=args.posts,
        votes_per_post=args.votes_per_post,
        comments=args.comments,
        spammers=args.spammers,
        spam_posts=args.spam_posts,
        rings=tuple(int(x) for x in args.rings.split(",") if x.strip()),
        ring_posts=args.ring_posts,
        camouflage_votes=args.camouflage_votes,
        duration=args.duration,
        zipf=args.zipf,
        tag=args.tag,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workload = generate(config_of(args))
    kinds = Counter(a.kind for a in workload.actions)
    print(f"workload seed {args.seed}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    if args.plan:
        with args.plan.open("w") as out:
            for action in workload.actions:
                out.write(json.dumps(asdict(action)) + "\n")
    truth = workload.truth
    if args.api:
        truth = Driver(args.api, workload, args.speed).run()
        print("outcomes: " + ", ".join(f"{k}: {n}" for k, n in truth.outcomes.items()))
    if args.truth:
        args.truth.write_text(json.dumps(asdict(truth), indent=1))
    elif not args.plan:
        json.dump(asdict(truth), sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
