"""Input hygiene through the real API: no text field, path or query parameter accepts a
control character (tab and newline only in multi-line bodies); nothing is written."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from api import commands
from domain.ids import new_id
from tests.e2e.test_bad_input import assert_error
from tests.processes import wait_for

FAKE_COMMENT = "01JD0000000000000000000000-01JD0000000000000000000000-01JD0000000000000000000000"


@pytest.fixture(scope="module")
def setup(client):
    user = client.register("hyg")
    community = client.community(user)
    post_id = client.post(user, community)
    return user, community, post_id


def requests(setup) -> dict[tuple[str, str], tuple[str, str, dict[str, Any], bool]]:
    """(command, field) -> (method, path, a valid body, signed in)."""
    user, community, post_id = setup
    register = {"username": "hygiene_x", "email": "h@example.com", "password": "long enough"}
    post = {"title": "t", "kind": "text", "body": "b"}
    link = {"title": "t", "kind": "link", "url": "https://example.com/x"}
    media = {"title": "t", "kind": "media", "media_id": "m1"}
    vote = {"target_id": post_id, "target_type": "post", "direction": 1}
    table: dict[tuple[str, str], tuple[str, str, dict[str, Any], bool]] = {}

    def add(command: str, method: str, path: str, body: dict, auth: bool, *fields: str) -> None:
        for field in fields or tuple(body):
            table[(command, field)] = (method, path, body, auth)

    add("Register", "POST", "/auth/register", register, False)
    add("Login", "POST", "/auth/login", {"login": user.username, "password": "x"}, False)
    add("RefreshToken", "POST", "/auth/refresh", {"refresh_token": "x"}, False)
    add("CreateCommunity", "POST", "/communities", {"name": "hyg", "description": "d"}, True)
    add("CreateCommunity", "POST", "/communities", {"name": "hyg", "visibility": "public"}, True)
    add("CreatePost", "POST", f"/communities/{community}/posts", post, True)
    add("CreatePost", "POST", f"/communities/{community}/posts", link, True, "url")
    add("CreatePost", "POST", f"/communities/{community}/posts", media, True, "media_id")
    add("CastVote", "PUT", "/votes", vote, True, "target_id", "target_type")
    add("PinPost", "POST", f"/communities/{community}/moderation/pin", {"post_id": post_id}, True)
    add("EditComment", "PATCH", f"/comments/{FAKE_COMMENT}", {"body": "b"}, True)
    comment = {"body": "b", "parent_id": "p"}
    add("CreateComment", "POST", f"/posts/{post_id}/comments", comment, True)
    add("MarkRead", "POST", "/notifications/read", {"ids": ["n1", "n2"]}, True)
    settings = {"description": "d", "rules": "r", "visibility": "public"}
    add("UpdateCommunity", "PATCH", f"/communities/{community}", settings, True)
    add("Username", "POST", f"/communities/{community}/moderators", {"username": "abc"}, True)
    edit = {"title": "t", "body": "b"}
    add("EditPost", "PATCH", f"/posts/{post_id}", edit, True)
    add("EditPost", "PATCH", f"/posts/{post_id}", {"url": "https://example.com/y"}, True)
    moderation = f"/communities/{community}/moderation"
    target = {"target_id": post_id, "reason": "r"}
    add("ModerateContent", "POST", f"{moderation}/remove", target, True)
    sanction = {"username": "abc", "reason": "r"}
    add("Sanction", "POST", f"{moderation}/ban", sanction, True)
    add("LiftSanction", "POST", f"{moderation}/unban", sanction, True)
    add("ShadowBan", "POST", f"{moderation}/shadow-ban", sanction, True)
    add("LockPost", "POST", f"{moderation}/lock", {"post_id": post_id}, True)
    add("FlairPost", "POST", f"{moderation}/flair", {"post_id": post_id, "flair": "f"}, True)
    add("FileReport", "POST", "/reports", target, True)
    email = {"email": "h@example.com"}
    add("EmailAddress", "POST", "/auth/password-reset", email, False)
    add("VerifyEmail", "POST", "/auth/verify-email", {**email, "code": "123456"}, False)
    reset = {**email, "code": "123456", "new_password": "long enough"}
    add("ConfirmPasswordReset", "POST", "/auth/password-reset/confirm", reset, False)
    add("DeleteAccount", "DELETE", "/users/me", {"password": "x"}, True)
    return table


def text_fields() -> set[tuple[str, str]]:
    """Every field of every command that takes a string (alone or in a list)."""

    def takes_text(annotation: Any) -> bool:
        if annotation is str:
            return True
        if typing.get_origin(annotation) is typing.Literal:
            return any(isinstance(a, str) for a in typing.get_args(annotation))
        return any(takes_text(a) for a in typing.get_args(annotation))

    found = set()
    for name in dir(commands):
        model = getattr(commands, name)
        if (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and model is not commands.Command
        ):
            for field, info in model.model_fields.items():
                if takes_text(info.annotation) or field == "email":
                    found.add((name, field))
    return found


def with_text(body: dict[str, Any], field: str, text: str) -> dict[str, Any]:
    value = body[field]
    bad: Any = [value[0], value[1] + text] if isinstance(value, list) else value + text
    return {**body, field: bad}


def test_every_text_field_is_covered(setup):
    assert text_fields() == set(requests(setup)), "add new command fields to requests()"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\r"])
def test_every_text_field_refuses_control_characters(client, setup, char):
    user = setup[0]
    for (command, field), (method, path, body, auth) in sorted(requests(setup).items()):
        r = client.http.request(
            method,
            path,
            json=with_text(body, field, f"a{char}b"),
            headers=user.headers if auth else None,
        )
        err = assert_error(r, 400, field)
        assert err["code"] == "validation_failed", (command, field, err)
        assert field in err["details"], (command, field, err)
        assert "control character" in err["details"][field], (command, field, err)


@pytest.mark.parametrize(
    ("command", "field"),
    [("CreatePost", "title"), ("CreateCommunity", "name"), ("Login", "login")],
)
def test_single_line_fields_refuse_tab_and_newline(client, setup, command, field):
    user = setup[0]
    method, path, body, auth = requests(setup)[(command, field)]
    for char in ("\t", "\n"):
        r = client.http.request(
            method, path, json=with_text(body, field, char), headers=user.headers if auth else None
        )
        assert_error(r, 400, field)


def test_multiline_bodies_accept_tab_and_newline(client, setup):
    user, community, post_id = setup
    name = f"c{new_id()[-12:].lower()}"
    r = client.http.post(
        "/communities",
        json={"name": name, "description": "line one\n\tline two"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    assert client.community_info(name)["description"] == "line one\n\tline two"

    text = "first line\n\tindented\r\nwindows line end"
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": "multi-line", "kind": "text", "body": text},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    new_post = r.json()["post_id"]
    stored = text.replace("\r\n", "\n")
    wait_for(
        lambda: client.http.get(f"/posts/{new_post}").status_code == 200,
        timeout=20,
        what="the multi-line post",
    )
    assert client.get_post(new_post)["body"] == stored

    r = client.http.post(
        f"/posts/{post_id}/comments", json={"body": "a\n\tb"}, headers=user.headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["body"] == "a\n\tb"


def test_nul_in_community_description_writes_nothing(client, setup):
    user = setup[0]
    name = f"c{new_id()[-12:].lower()}"
    r = client.http.post(
        "/communities", json={"name": name, "description": "bad\x00"}, headers=user.headers
    )
    assert_error(r, 400, "description")
    assert_error(client.http.get(f"/communities/{name}"), 404)


def test_nul_in_a_post_writes_nothing(client, setup):
    user = setup[0]
    community = client.community(user)
    for body in (
        {"title": "bad\x00", "kind": "text"},
        {"title": "t", "kind": "text", "body": "bad\x00"},
    ):
        r = client.http.post(f"/communities/{community}/posts", json=body, headers=user.headers)
        assert_error(r, 400)
    good = client.post(user, community, "the only post")

    # A community's posts are applied in log order: once the good post is listed, a bad
    # one published before it would be listed too.
    def listed() -> list[str] | None:
        items = client.listing(f"/communities/{community}/posts?sort=new")["items"]
        ids = [p["post_id"] for p in items]
        return ids if good in ids else None

    assert wait_for(listed, timeout=30, what="the good post to be listed") == [good]


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/communities?prefix=ab%00", "prefix"),
        ("/communities?limit=1%00", "limit"),
        ("/communities/{community}/posts?sort=%00hot", "sort"),
        ("/communities/{community}/posts?sort=top&t=day%1F", "t"),
        ("/communities/{community}/posts?cursor=%7F", "cursor"),
        ("/posts/{post}/comments?parent_id=%00", "parent_id"),
        ("/posts/{post}/comments?depth=%0A3", "depth"),
        ("/notifications?unread=%00", "unread"),
        ("/users/{user}/comments?cursor=%1B", "cursor"),
        ("/communities/{community}?x%00=1", "query"),
    ],
)
def test_query_parameters_refuse_control_characters(client, setup, path, param):
    user, community, post_id = setup
    url = path.format(community=community, post=post_id, user=user.username)
    assert_error(client.http.get(url, headers=user.headers), 400, param)


@pytest.mark.parametrize(
    "path",
    [
        "/communities/%00",
        "/communities/ab%00cd/posts",
        "/posts/%00",
        "/posts/%00/comments",
        "/users/%00",
        "/users/%00/comments",
    ],
)
def test_path_parameters_with_control_characters_are_4xx(client, setup, path):
    r = client.http.get(path, headers=setup[0].headers)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) == {"error"}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/communities?prefix=%FF%FE", 200),  # an autocomplete that matches nothing
        ("/communities/{community}/posts?cursor=%FF", 400),
        ("/posts/{post}/comments?cursor=%C3%28", 400),
    ],
)
def test_undecodable_query_parameters_are_not_errors_of_the_server(client, setup, path, status):
    _user, community, post_id = setup
    r = client.http.get(path.format(community=community, post=post_id))
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["items"] == []


def test_invalid_utf8_body_is_a_400(client, setup):
    user, community, _post = setup
    r = client.http.post(
        f"/communities/{community}/posts",
        content=b'{"title": "caf\xe9", "kind": "text"}',
        headers={**user.headers, "content-type": "application/json"},
    )
    err = assert_error(r, 400, "body")
    assert "UTF-8" in err["message"]
    r = client.http.post(
        "/auth/login",
        content=b'{"login": "\xff\xfe", "password": "x"}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "body")
