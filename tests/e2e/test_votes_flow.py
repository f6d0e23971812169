"""Register, create a community, post, vote through every transition; read it back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.processes import wait_for

# A walk over directions that takes every one of the nine (previous, new) pairs.
WALK = [1, 1, 0, 0, -1, -1, 1, -1, 0, 1, 0]


def counts(post: dict) -> tuple[int, int, int]:
    return post["score"], post["upvotes"], post["downvotes"]


def test_two_users_vote_through_every_transition(client):
    alice, bob = client.register("alice"), client.register("bob")
    community = client.community(alice)
    assert client.http.post(f"/communities/{community}/join", headers=bob.headers).json() == {
        "member_count": 2
    }
    post_id = client.post(alice, community, "nine transitions")

    pairs = set()
    state = {alice.user_id: 0, bob.user_id: 0}
    for i, direction in enumerate(WALK):
        for user in (alice, bob):
            d = direction if user is alice else WALK[(i + 3) % len(WALK)]
            pairs.add((state[user.user_id], d))
            state[user.user_id] = d
            r = client.vote(user, post_id, d)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["direction"] == d and body["target_id"] == post_id
            assert body["score"] == sum(state.values())  # instant score from the API
    assert len(pairs) == 9

    ups = sum(1 for d in state.values() if d == 1)
    downs = sum(1 for d in state.values() if d == -1)
    expected = (ups - downs, ups, downs)
    wait_for(
        lambda: counts(client.get_post(post_id)) == expected, timeout=10, what=f"tally {expected}"
    )
    assert client.get_post(post_id, alice)["my_vote"] == state[alice.user_id]

    def listed() -> list:
        items = client.listing(f"/communities/{community}/posts?sort=new")["items"]
        return items if items and counts(items[0]) == expected else []

    items = wait_for(listed, timeout=10, what="the post listed with its tally")
    assert [p["post_id"] for p in items] == [post_id]


def test_racing_requests_of_one_user_converge(client):
    author, voter = client.register("auth"), client.register("racer")
    community = client.community(author)
    post_id = client.post(author, community)
    directions = [1, -1, 0, 1, -1, 1, 0, -1] * 4
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda d: client.vote(voter, post_id, d), directions))
    assert all(r.status_code == 200 for r in results)
    final = client.get_post(post_id, voter)["my_vote"]  # the user's state in Redis
    expected = (final, int(final == 1), int(final == -1))
    wait_for(
        lambda: counts(client.get_post(post_id)) == expected,
        timeout=10,
        what=f"dataflow tally to match Redis state {expected}",
    )
    again = client.vote(voter, post_id, final)
    assert again.json()["score"] == final  # the live score agrees too


def test_list_paging_is_stable(client):
    author = client.register("pager")
    community = client.community(author)
    posts = [client.post(author, community, f"p{i}") for i in range(5)]
    wait_for(
        lambda: len(client.listing(f"/communities/{community}/posts?sort=new")["items"]) == 5,
        timeout=10,
        what="all five posts ranked",
    )
    seen: list[str] = []
    cursor = None
    while True:
        url = f"/communities/{community}/posts?sort=new&limit=2"
        r = client.http.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200
        seen += [p["post_id"] for p in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(posts))
