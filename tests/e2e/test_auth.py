"""Login, refresh rotation with reuse detection, logout."""

from __future__ import annotations

from tests.processes import wait_for


def refresh(client, token: str):
    return client.http.post("/auth/refresh", json={"refresh_token": token})


def test_login_with_username_or_email(client):
    user = client.register("login")
    by_email = client.login(f"{user.username}@example.com", user.password)
    assert by_email["token_type"] == "bearer" and by_email["expires_in"] > 0
    r = client.http.post("/auth/login", json={"login": user.username, "password": "wrong pass"})
    assert r.status_code == 401
    r = client.http.post("/auth/login", json={"login": "nobody_here", "password": "whatever1"})
    assert r.status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    user = client.register("rot")
    first = refresh(client, user.refresh)
    assert first.status_code == 200
    pair = first.json()
    assert pair["refresh_token"] != user.refresh
    # the new access token works
    me = client.http.post(
        "/communities",
        json={"name": f"x{user.username[-10:]}"},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert me.status_code == 201
    # the old refresh token is revoked; reusing it revokes the whole family
    assert refresh(client, user.refresh).status_code == 401
    assert refresh(client, pair["refresh_token"]).status_code == 401


def test_logout_revokes_the_refresh_token(client):
    user = client.register("out")
    assert client.http.post("/auth/logout", json={"refresh_token": user.refresh}).status_code == 204
    assert refresh(client, user.refresh).status_code == 401


def test_community_lifecycle(client):
    owner, member = client.register("own"), client.register("mem")
    name = client.community(owner)
    again = client.http.post("/communities", json={"name": name.upper()}, headers=owner.headers)
    assert again.status_code == 409
    got = client.http.get(f"/communities/{name}").json()
    assert got["name"] == name and got["member_count"] == 1 and got["visibility"] == "public"
    join = client.http.post(f"/communities/{name}/join", headers=member.headers)
    assert join.json() == {"member_count": 2}
    # joining twice is idempotent
    assert client.http.post(f"/communities/{name}/join", headers=member.headers).json() == {
        "member_count": 2
    }
    assert client.http.post(f"/communities/{name}/leave", headers=member.headers).json() == {
        "member_count": 1
    }

    def listed() -> bool:  # autocomplete reads the search index, fed by the search dataflow
        found = client.http.get(f"/communities?prefix={name[:6]}").json()["items"]
        return name in [c["name"] for c in found]

    wait_for(listed, timeout=60, interval=0.1, what="the community in autocomplete")
    assert client.http.get("/communities/nonexistent_zz").status_code == 404
