"""Dashboard access: users and their argon2 hashes, `lingtan users`, and the sign-in guard."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import dash
import flask
import limits.storage.memory
import psycopg
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from typer.testing import CliRunner
from werkzeug.test import TestResponse

from dashboard.access import (
    COOKIE_NAME,
    CSRF_COOKIE,
    SECRET_FILE,
    AccessState,
    current_language,
    current_role,
    current_username,
)
from dashboard.app import create_dash_app
from lingtan.cli import app as cli
from lingtan.core import users
from lingtan.core.keys import RANK, create_key, revoke_key
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.settings import get_settings
from tests.dashboard.browser import TEST_DASHBOARD_SECRET

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "sunny-roof-panels"


def make_user(url: str, name: str = "li.wei", role: str = "engineer", password: str = PASSWORD,
              language: str | None = None) -> users.UserInfo:
    with get_engine(url).begin() as conn:
        return users.create_user(conn, name, password, role, language)


def verify(url: str, name: str, password: str) -> str | None:
    with get_engine(url).begin() as conn:
        return users.verify(conn, name, password)


def stored_hash(url: str, name: str) -> str:
    with get_engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT password_hash FROM users WHERE username = :u"),
                            {"u": name}).scalar_one()


# --- users and hashing ------------------------------------------------------------------------


def test_user_roles_are_the_api_key_roles() -> None:
    assert tuple(RANK) == users.ROLES


def test_password_is_stored_as_argon2id_and_verifies_case_insensitively(db: str) -> None:
    info = make_user(db, "Li.Wei", language="zh")
    assert (info.username, info.role, info.language) == ("li.wei", "engineer", "zh")
    assert info.last_sign_in_at is None
    hashed = stored_hash(db, "li.wei")
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert verify(db, "LI.WEI ", PASSWORD) == "engineer"
    assert verify(db, "li.wei", PASSWORD.upper()) is None
    assert verify(db, "nobody", PASSWORD) is None
    with get_engine(db).connect() as conn:
        assert users.get_user(conn, "li.wei").last_sign_in_at is not None
    with pytest.raises(users.UserError, match=r"^username: 'li\.wei' already exists"):
        make_user(db, "LI.wei")


def test_the_database_keeps_names_lower_case(db: str) -> None:
    with psycopg.connect(libpq_url(db)) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO users (username, password_hash, role) VALUES ('Li.Wei', 'x', 'viewer')")


@pytest.mark.parametrize(("name", "password", "role", "language", "message"), [
    ("li.wei", "short", "viewer", None, "password: must be at least 10 characters (got 5)"),
    ("li.wei", "x" * 1025, "viewer", None, "password: must be at most 1024"),
    ("li.wei", PASSWORD, "boss", None, "role: must be one of viewer | engineer | admin"),
    ("li.wei", PASSWORD, "viewer", "fr", "language: must be one of zh | en"),
    ("li wei", PASSWORD, "viewer", None, "username: use 1 to 64 letters"),
    ("", PASSWORD, "viewer", None, "username:"),
])
def test_bad_input_names_the_field(db: str, name: str, password: str, role: str, language: str | None,
                                   message: str) -> None:
    with pytest.raises(users.UserError) as error:
        make_user(db, name, role, password, language)
    assert str(error.value).startswith(message)
    with get_engine(db).connect() as conn:
        assert users.list_users(conn) == []


def test_a_disabled_user_cannot_sign_in_and_stays_listed(db: str) -> None:
    make_user(db)
    with get_engine(db).begin() as conn:
        first = users.disable_user(conn, "Li.Wei")
        again = users.disable_user(conn, "li.wei")
        assert users.disable_user(conn, "nobody") is None
    assert first is not None and first.disabled_at is not None
    assert again is not None and again.disabled_at == first.disabled_at  # the first time is kept
    assert verify(db, "li.wei", PASSWORD) is None
    with get_engine(db).connect() as conn:
        assert [u.username for u in users.list_users(conn)] == ["li.wei"]


def test_set_password_replaces_the_old_one(db: str) -> None:
    make_user(db)
    with get_engine(db).begin() as conn:
        with pytest.raises(users.UserError, match=r"^password:"):
            users.set_password(conn, "li.wei", "short")
        assert users.set_password(conn, "nobody", "a new long password") is None
        assert users.set_password(conn, "li.wei", "a new long password") is not None
    assert verify(db, "li.wei", PASSWORD) is None
    assert verify(db, "li.wei", "a new long password") == "engineer"


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_unknown_and_disabled_names_cost_one_hash_like_a_known_one(db: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer must not come back faster for a name that does not exist (no name probing)."""
    make_user(db)
    make_user(db, "gone", "viewer")
    with get_engine(db).begin() as conn:
        users.disable_user(conn, "gone")
    hasher = CountingHasher()
    monkeypatch.setattr(users, "HASHER", hasher)
    for name, password in [("li.wei", "wrong password"), ("nobody", PASSWORD), ("gone", PASSWORD),
                           ("li.wei", PASSWORD)]:
        before = hasher.verified
        verify(db, name, password)
        assert hasher.verified - before == 1, name


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    make_user(db)
    old = stored_hash(db, "li.wei")
    assert "m=8192,t=1,p=1" in old
    monkeypatch.setattr(users, "HASHER", PasswordHasher())
    assert verify(db, "li.wei", "wrong password") is None
    assert stored_hash(db, "li.wei") == old  # a failed sign-in changes nothing
    assert verify(db, "li.wei", PASSWORD) == "engineer"
    new = stored_hash(db, "li.wei")
    assert new != old and not users.HASHER.check_needs_rehash(new)
    assert verify(db, "li.wei", PASSWORD) == "engineer"


# --- lingtan users ------------------------------------------------------------------------------


@pytest.fixture
def run(api_db: str) -> Callable[..., object]:
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli, ["users", *args], input=input)


def test_cli_create_asks_twice_then_lists_disables_and_changes_the_password(api_db: str, run) -> None:
    made = run("create", "Li.Wei", "--role", "viewer", "--language", "zh", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    assert "user li.wei (viewer) created" in made.output
    assert PASSWORD not in made.output  # the prompt is hidden
    assert verify(api_db, "li.wei", PASSWORD) == "viewer"

    listed = run("list")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if "li.wei" in line)
    assert row.split()[1:4] == ["li.wei", "viewer", "zh"] and row.rstrip().endswith("-")

    changed = run("password", "li.wei", input="another long one\nanother long one\n")
    assert changed.exit_code == 0, changed.output
    assert verify(api_db, "li.wei", PASSWORD) is None
    assert verify(api_db, "li.wei", "another long one") == "viewer"

    disabled = run("disable", "LI.WEI")
    assert disabled.exit_code == 0 and "user li.wei (viewer) disabled" in disabled.output
    assert verify(api_db, "li.wei", "another long one") is None
    row = next(line for line in run("list").output.splitlines() if "li.wei" in line)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d$", row.rstrip())


def test_cli_bad_input_exits_2_with_the_field_named(api_db: str, run) -> None:
    short = run("create", "li.wei", "--role", "viewer", input="short\nshort\n")
    assert short.exit_code == 2 and "password: must be at least 10 characters" in short.output
    role = run("create", "li.wei", "--role", "boss")  # refused before any password is asked for
    assert role.exit_code == 2 and "role: must be one of viewer | engineer | admin" in role.output
    assert "Password" not in role.output
    name = run("create", "li wei", "--role", "viewer")
    assert name.exit_code == 2 and "username:" in name.output
    assert run("create", "li.wei", "--role", "viewer", "--password-stdin", input=PASSWORD).exit_code == 0
    again = run("create", "Li.Wei", "--role", "admin", "--password-stdin", input=PASSWORD)
    assert again.exit_code == 2 and "already exists" in again.output
    assert verify(api_db, "li.wei", PASSWORD) == "viewer"  # the first one is untouched
    missing = run("disable", "nobody")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output
    assert run("password", "nobody", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 1


def test_cli_password_stdin_in_a_real_process(api_db: str) -> None:
    env = {**os.environ, "LINGTAN_DATABASE_URL": api_db}
    done = subprocess.run([sys.executable, "-m", "lingtan.cli", "users", "create", "ops", "--role", "admin",
                           "--password-stdin"], input=f" {PASSWORD} \n", env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "user ops (admin) created" in done.stdout
    assert verify(api_db, "ops", f" {PASSWORD} ") == "admin"  # only the final newline is dropped


# --- the sign-in guard --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dash_app(api_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dash.Dash]:
    monkeypatch.setenv("LINGTAN_DASHBOARD_SECRET", TEST_DASHBOARD_SECRET)
    get_settings.cache_clear()
    app = create_dash_app()

    # A page that says who the guard let in, as the layout and callbacks will ask.
    @app.server.route("/_test/whoami")
    def whoami() -> flask.Response:
        return flask.jsonify(user=current_username(), role=current_role(), language=current_language())

    yield app
    get_settings.cache_clear()


@pytest.fixture
def clock(dash_app: dash.Dash, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The guard's clock, moved by the test instead of waiting. Flask-Limiter keeps its counts in
    the limits package's in-memory storage, which reads time.time(): it reads this clock too."""
    fake = Clock()
    access_state(dash_app).clock = fake
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=fake))
    return fake


@pytest.fixture
def client(dash_app: dash.Dash, clock: Clock) -> FlaskClient:
    return english(dash_app.server.test_client())


def english(client: FlaskClient) -> FlaskClient:
    """A browser that prefers English (the dashboard's default is Chinese), for readable asserts."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    return client


def access_state(app: dash.Dash) -> AccessState:
    return app.server.extensions["lingtan_access"]


def csrf_token(client: FlaskClient, headers: dict[str, str] | None = None) -> str:
    page = client.get("/login", headers=headers)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str, next_url: str = "/") -> TestResponse:
    return client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                       "password": password, "next": next_url})


def whoami(client: FlaskClient, headers: dict[str, str] | None = None) -> dict:
    response = client.get("/_test/whoami", headers=headers)
    assert response.status_code == 200, response.status_code
    return response.get_json()


def test_an_anonymous_browser_is_sent_to_sign_in(client: FlaskClient) -> None:
    home = client.get("/?site=demo-plant")
    assert home.status_code == 302
    assert home.headers["Location"] == "/login?next=%2F%3Fsite%3Ddemo-plant"
    unknown = client.get("/no/such/page")  # nothing, not even "404", before signing in
    assert unknown.status_code == 302 and unknown.headers["Location"].startswith("/login?next=")
    assert client.get("/login").status_code == 200
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/assets/style.css").status_code == 200
    assert client.get("/_dash-component-suites/dash/no-such.js").status_code not in (302, 401)


def test_dash_requests_without_sign_in_get_401_json(client: FlaskClient) -> None:
    for method, path in [("GET", "/_dash-layout"), ("GET", "/_dash-dependencies"),
                         ("POST", "/_dash-update-component"), ("POST", "/")]:
        response = client.open(path, method=method, json={})
        assert response.status_code == 401, path
        assert response.get_json()["login"] == "/login"
        assert "sign-in required" in response.get_json()["error"]


def test_sign_in_with_a_password(api_db: str, client: FlaskClient, clock: Clock) -> None:
    make_user(api_db, "li.wei", "viewer", language="zh")
    answer = sign_in(client, "Li.Wei", PASSWORD, next_url="/?site=demo-plant")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/?site=demo-plant"
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith(f"{COOKIE_NAME}="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    expires = datetime.strptime(re.search(r"Expires=([^;]+)", cookie).group(1), "%a, %d %b %Y %H:%M:%S GMT")
    hours = (expires.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() / 3600
    assert 11.9 < hours <= 12.0
    assert whoami(client) == {"user": "li.wei", "role": "viewer", "language": "zh"}
    lang = client.get_cookie("lingtan_lang")  # the user's setting becomes the dashboard's language
    assert lang is not None and lang.value == "zh"
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200


def test_the_session_ends_after_12_hours(api_db: str, client: FlaskClient, clock: Clock) -> None:
    make_user(api_db)
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303
    clock.now += 11.9 * 3600
    assert client.get("/").status_code == 200
    clock.now += 0.2 * 3600
    assert client.get("/").status_code == 302


def test_sign_in_with_an_api_key(api_db: str, client: FlaskClient, clock: Clock) -> None:
    with get_engine(api_db).begin() as conn:
        key, plain = create_key(conn, "admin", "wall screen")
    answer = client.post("/login", data={"csrf_token": csrf_token(client), "api_key": plain, "next": "/"})
    assert answer.status_code == 303
    assert whoami(client) == {"user": None, "role": "admin", "language": None}
    # a revoked key ends the session at the next check, within a minute
    with get_engine(api_db).begin() as conn:
        revoke_key(conn, key.id)
    clock.now += 61
    assert client.get("/").status_code == 302
    wrong = client.post("/login", data={"csrf_token": csrf_token(client), "api_key": plain})
    assert wrong.status_code == 401 and "not valid or has been revoked" in wrong.text


def test_a_bearer_key_needs_no_session(api_db: str, client: FlaskClient, clock: Clock) -> None:
    with get_engine(api_db).begin() as conn:
        key, plain = create_key(conn, "viewer", "kiosk")
    bearer = {"Authorization": f"Bearer {plain}"}
    assert client.get("/", headers=bearer).status_code == 200
    assert client.post("/_dash-update-component", headers=bearer, json={}).status_code != 401
    assert whoami(client, bearer) == {"user": None, "role": "viewer", "language": None}
    assert client.get_cookie(COOKIE_NAME) is None  # nothing to remember
    bad = client.get("/", headers={"Authorization": "Bearer lt_nope_nope"})
    assert bad.status_code == 401 and "not valid" in bad.get_json()["error"]  # a script: no redirect
    with get_engine(api_db).begin() as conn:
        revoke_key(conn, key.id)
    clock.now += 61  # checked again after a minute
    assert client.get("/", headers=bearer).status_code == 401


def test_wrong_password_and_unknown_name_get_the_same_answer(api_db: str, client: FlaskClient,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    make_user(api_db)
    caplog.set_level(logging.INFO, "lingtan.dashboard.access")
    wrong = sign_in(client, "li.wei", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    for answer in (wrong, unknown):
        assert "The user name or password is wrong." in answer.text
    assert 'value="li.wei"' in wrong.text  # the name is kept for the next try, the password not
    assert client.get("/").status_code == 302
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303
    events = [(r.outcome, r.method, r.username, getattr(r, "reason", "")) for r in caplog.records
              if getattr(r, "event", "") == "sign_in"]
    assert events == [("failure", "password", "li.wei", "bad_credentials"),
                      ("failure", "password", "nobody", "bad_credentials"),
                      ("success", "password", "li.wei", "")]
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "not the password" not in logged and PASSWORD not in logged


def test_a_disabled_user_is_refused_and_signed_out(api_db: str, client: FlaskClient, clock: Clock) -> None:
    make_user(api_db)
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303
    with get_engine(api_db).begin() as conn:
        users.disable_user(conn, "li.wei")
    assert client.get("/").status_code == 200  # until the next check …
    clock.now += 61
    assert client.get("/").status_code == 302  # … a minute at most
    refused = sign_in(client, "li.wei", PASSWORD)
    assert refused.status_code == 401 and "wrong" in refused.text


def test_a_new_password_or_role_reaches_open_sessions(api_db: str, client: FlaskClient, clock: Clock) -> None:
    make_user(api_db, role="admin")
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303
    with get_engine(api_db).begin() as conn:
        conn.execute(sa.text("UPDATE users SET role = 'viewer' WHERE username = 'li.wei'"))
    clock.now += 61
    assert whoami(client)["role"] == "viewer"
    with get_engine(api_db).begin() as conn:
        users.set_password(conn, "li.wei", "a brand new password")
    clock.now += 61
    assert client.get("/").status_code == 302


def test_failed_sign_ins_are_limited_per_name(api_db: str, client: FlaskClient, clock: Clock) -> None:
    make_user(api_db)
    make_user(api_db, "wang.fang", "viewer")
    for _ in range(5):
        assert sign_in(client, "li.wei", "a wrong guess").status_code == 401
    limited = sign_in(client, "LI.WEI", PASSWORD)  # even the right password, for now
    assert limited.status_code == 429
    assert "Too many failed sign-ins for this name. Try again in 60 s." in limited.text
    assert limited.headers["Retry-After"] == "60"
    assert sign_in(client, "wang.fang", PASSWORD).status_code == 303  # other names are not affected
    clock.now += 30
    assert "Try again in 30 s" in sign_in(client, "li.wei", PASSWORD).text
    clock.now += 30
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303


def test_failed_key_sign_ins_are_limited_per_address(api_db: str, client: FlaskClient, clock: Clock) -> None:
    with get_engine(api_db).begin() as conn:
        _, plain = create_key(conn, "viewer", "wall screen")
    make_user(api_db)

    def with_key(key: str) -> TestResponse:
        return client.post("/login", data={"csrf_token": csrf_token(client), "api_key": key})

    for _ in range(5):
        assert with_key("lt_wrong_key").status_code == 401
    limited = with_key(plain)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert sign_in(client, "li.wei", PASSWORD).status_code == 303  # the password form counts by name
    clock.now += 60
    assert with_key(plain).status_code == 303


def test_a_callback_needs_the_sessions_csrf_token(api_db: str, client: FlaskClient) -> None:
    """Dash's renderer sends the token of the CSRF cookie as X-CSRFToken with every callback; a
    request another site makes the browser send carries the session cookie, but not the token."""
    make_user(api_db)
    sign_in(client, "li.wei", PASSWORD)
    assert client.get("/").status_code == 200
    token = client.get_cookie(CSRF_COOKIE)
    assert token is not None and token.http_only is False  # the page's script must read it
    forged = client.post("/_dash-update-component", json=ROUTE_TO_METERS)
    assert forged.status_code == 400 and "CSRF" in forged.get_json()["error"]
    other = dash_client_token(client)
    assert client.post("/_dash-update-component", json=ROUTE_TO_METERS,
                       headers={"X-CSRFToken": other}).status_code == 400
    sent = client.post("/_dash-update-component", json=ROUTE_TO_METERS, headers={"X-CSRFToken": token.value})
    assert sent.status_code == 200 and '"id": "meters-body"' in json.dumps(sent.get_json())


# the router's callback as the renderer sends it when the reader opens the Meters page
ROUTE_TO_METERS = {
    "output": "..page-content.children...rendered-path.data..",
    "outputs": [{"id": "page-content", "property": "children"}, {"id": "rendered-path", "property": "data"}],
    "inputs": [{"id": "url", "property": "pathname", "value": "/meters"}],
    "state": [{"id": "lang", "property": "data", "value": "en"},
              {"id": "refresh-ms", "property": "data", "value": 5000},
              {"id": "rendered-path", "property": "data", "value": None}],
    "changedPropIds": ["url.pathname"],
}


def dash_client_token(client: FlaskClient) -> str:
    """A valid CSRF token of somebody else's session on the same dashboard."""
    other = english(client.application.test_client())
    return csrf_token(other)


def test_the_form_needs_its_csrf_token(api_db: str, client: FlaskClient, dash_app: dash.Dash) -> None:
    make_user(api_db)
    csrf_token(client)
    missing = client.post("/login", data={"username": "li.wei", "password": PASSWORD})
    assert missing.status_code == 400 and "expired" in missing.text
    other = dash_app.server.test_client()  # a token from somebody else's session
    forged = client.post("/login", data={"csrf_token": csrf_token(other), "username": "li.wei",
                                         "password": PASSWORD})
    assert forged.status_code == 400
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil"])
def test_next_stays_on_this_site(api_db: str, client: FlaskClient, target: str) -> None:
    make_user(api_db)
    assert sign_in(client, "li.wei", PASSWORD, next_url=target).headers["Location"] == "/"


def test_sign_out(api_db: str, client: FlaskClient) -> None:
    make_user(api_db)
    sign_in(client, "li.wei", PASSWORD)
    assert client.get("/").status_code == 200
    out = client.get("/logout", headers={"Accept-Language": "zh-CN"})
    assert out.status_code == 303 and out.headers["Location"] == "/login?signed_out=1"
    assert "您已退出登录" in client.get(out.headers["Location"], headers={"Accept-Language": "zh-CN"}).text
    assert client.get("/").status_code == 302


def test_the_sign_in_page_speaks_the_browser_language_and_loads_nothing(client: FlaskClient) -> None:
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in zh.text and "用户名" in zh.text and "密码" in zh.text
    en = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in en.text and "User name" in en.text and "Password" in en.text
    assert "用户名" in client.get("/login?lang=zh", headers={"Accept-Language": "en"}).text
    assert "用户名" in client.get("/login", headers={"Accept-Language": "fr"}).text  # the dashboard's default
    client.set_cookie("lingtan_lang", "en")  # the dashboard's language switch remembers a choice
    assert "User name" in client.get("/login", headers={"Accept-Language": "zh-CN"}).text
    assert not re.findall(r'(?:src|href|action)="(?:https?:)?//', zh.text)
    assert "default-src 'none'" in zh.headers["Content-Security-Policy"]
    assert zh.headers["X-Frame-Options"] == "DENY"


def test_a_viewer_is_a_viewer(api_db: str, client: FlaskClient) -> None:
    make_user(api_db, "wall", "viewer")
    sign_in(client, "wall", PASSWORD)
    with client.application.test_request_context():
        assert current_role() == "viewer" and current_username() is None  # nobody signed in here
    assert whoami(client) == {"user": "wall", "role": "viewer", "language": None}


def test_an_unreachable_database_is_said_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGTAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    monkeypatch.setenv("LINGTAN_DASHBOARD_SECRET", TEST_DASHBOARD_SECRET)
    get_settings.cache_clear()
    try:
        client = english(create_dash_app().server.test_client())
    finally:
        get_settings.cache_clear()
    answer = client.post("/login", data={"csrf_token": csrf_token(client), "username": "li.wei",
                                         "password": PASSWORD})
    assert answer.status_code == 503 and "database is unreachable" in answer.text
    bearer = client.get("/", headers={"Authorization": "Bearer lt_abcd1234_secret"})
    assert bearer.status_code == 503


def test_without_a_configured_secret_one_is_kept_private_in_the_data_dir(
        api_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINGTAN_DASHBOARD_SECRET", raising=False)
    monkeypatch.setenv("LINGTAN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    make_user(api_db)
    try:
        first = create_dash_app().server.test_client()
        secret_file = tmp_path / "data" / SECRET_FILE
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert len(secret_file.read_text().strip()) >= 32
        assert sign_in(first, "li.wei", PASSWORD).status_code == 303
        cookie = first.get_cookie(COOKIE_NAME)
        assert cookie is not None
        restarted = create_dash_app().server.test_client()  # the same secret after a restart …
        restarted.set_cookie(COOKIE_NAME, cookie.value)
        assert restarted.get("/").status_code == 200  # … keeps the user signed in
    finally:
        get_settings.cache_clear()
