"""Who may see the dashboard: sign-in with a user name and password or an API key, or a bearer key.

``install_access(app)`` puts a guard in front of every dashboard route. People sign in on
``/login`` (a small server-rendered form, zh-CN or en) and get a signed session cookie for 12 hours;
scripts and wall-screen kiosks send ``Authorization: Bearer lt_…`` with every request instead. Both
carry a role (viewer < engineer < admin, as API keys do); ``current_role()`` and ``current_user()``
tell the layout and callbacks who is asking.

The session cookie is signed, not encrypted: it holds the user name, role, language and times,
never a password or key. A session is checked against the database once a minute, so a disabled
user, a revoked key, a changed password or a lowered role takes effect within a minute without a
query on every 5-second refresh. While the database is unreachable those checks are skipped: the
dashboard cannot read any data then either, and it should keep showing its banner rather than
throw its viewers out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dash
import flask
import sqlalchemy as sa
from markupsafe import escape

from dashboard.i18n import COOKIE as LANG_COOKIE
from dashboard.i18n import request_lang
from lingtan.core import users
from lingtan.core.keys import RANK, get_key, verify_key
from lingtan.kernel.db import get_engine
from lingtan.kernel.i18n import Lang, catalog
from lingtan.kernel.settings import Settings, get_settings

log = logging.getLogger("lingtan.dashboard.access")

# Not Flask's default "session": cookies are shared by every port of a host, and the dashboard
# often shares one with other web tools on a factory PC.
COOKIE_NAME = "lingtan_dashboard"
SESSION_LIFETIME = timedelta(hours=12)  # one shift; then sign in again
RECHECK_SECONDS = 60.0
FAILED_SIGN_IN_LIMIT = 5
FAILED_SIGN_IN_WINDOW_S = 60.0
SECRET_FILE = "dashboard-secret"
HEALTH_PATH = "health"
# Dash's own XHR endpoints: a redirect to an HTML form would only confuse its renderer.
_XHR_PREFIXES = ("_dash-update-component", "_dash-layout", "_dash-dependencies", "_reload-hash")
# Library JavaScript and the stylesheet carry no plant data; the sign-in page needs none of them,
# but a browser that reloads after its session ended should not see them fail.
_PUBLIC_PREFIXES = ("_dash-component-suites/", "assets/")
_PUBLIC_PATHS = ("login", "logout", HEALTH_PATH, "_favicon.ico")
_BEARER_CACHE_S = 60.0
_BEARER_CACHE_MAX = 1000


@dataclass(frozen=True)
class Identity:
    """Who is asking: a person (``user``) or an API key (``key_id``), and the role they hold."""

    role: str
    user: str | None = None
    user_id: int | None = None
    key_id: int | None = None
    language: str | None = None


def current_identity() -> Identity | None:
    """The signed-in identity of this request; None outside a request or before the guard ran."""
    if not flask.has_request_context():
        return None
    return flask.g.get("lingtan_identity")


def current_role() -> str:
    """The role of this request; "viewer" (the least) when nobody is signed in."""
    ident = current_identity()
    return ident.role if ident else "viewer"


def current_user() -> str | None:
    """The signed-in user's name; None for an API key or nobody."""
    ident = current_identity()
    return ident.user if ident else None


def current_language() -> str | None:
    """The signed-in user's own language setting ("zh" or "en"); None when they have none (then the
    dashboard's usual rule applies: ``?lang=``, its cookie, the browser)."""
    ident = current_identity()
    return ident.language if ident else None


def has_role(minimum: str) -> bool:
    """True when this request's role is at least ``minimum`` (viewer < engineer < admin)."""
    return RANK[current_role()] >= RANK[minimum]


class FailedSignIns:
    """At most ``limit`` failed sign-ins per name in any ``window_s`` seconds, then a pause.

    In memory, per process: the dashboard runs as one process, and a restart only forgives
    an attacker a few more guesses against an argon2 hash.
    """

    MAX_NAMES = 10_000

    def __init__(self, limit: int = FAILED_SIGN_IN_LIMIT, window_s: float = FAILED_SIGN_IN_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._failures.get(name, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, name: str) -> float:
        """Seconds until ``name`` may try again; 0 when it may now."""
        with self._lock:
            now = self.clock()
            times = self._recent(name, now)
            if len(times) < self.limit:
                return 0.0
            return max(0.0, times[-self.limit] + self.window_s - now)

    def fail(self, name: str) -> None:
        with self._lock:
            now = self.clock()
            if name not in self._failures and len(self._failures) >= self.MAX_NAMES:
                # Someone is spraying names: forget the names with no recent failures first.
                for old in [n for n, t in self._failures.items() if not self._recent(n, now)]:
                    del self._failures[old]
                while len(self._failures) >= self.MAX_NAMES:
                    del self._failures[next(iter(self._failures))]
            times = self._recent(name, now)
            times.append(now)
            self._failures[name] = times

    def reset(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


@dataclass
class AccessState:
    """Per-app state, kept in ``app.server.extensions["lingtan_access"]`` (tests reach in here)."""

    database_url: str | None
    prefix: str  # Dash's routes_pathname_prefix, e.g. "/"
    public_prefix: str  # Dash's requests_pathname_prefix: what the browser sees
    limiter: FailedSignIns = field(default_factory=FailedSignIns)
    # Wall clock, not monotonic: session times travel in the cookie and outlive the process.
    clock: Callable[[], float] = time.time
    # blake2b(key) -> (identity, when verified): a kiosk refreshing every 5 s needs no query each time.
    bearer_cache: dict[bytes, tuple[Identity, float]] = field(default_factory=dict)
    bearer_salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    lock: threading.Lock = field(default_factory=threading.Lock)


class DatabaseUnavailable(Exception):
    pass


def _connect(state: AccessState, write: bool = False) -> Any:
    if not state.database_url:
        raise DatabaseUnavailable("LINGTAN_DATABASE_URL is not set")
    engine = get_engine(state.database_url)
    return engine.begin() if write else engine.connect()


# --- the secret -------------------------------------------------------------------------------


def dashboard_secret(settings: Settings) -> str:
    """LINGTAN_DASHBOARD_SECRET, else the one kept in data_dir (made on first use, mode 0600)."""
    if settings.dashboard_secret is not None:
        return settings.dashboard_secret.get_secret_value()
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: a second process
        # starting at the same moment finds either no file or the complete one, never half.
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # the other process won; use its secret
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        log.warning("dashboard secret file was readable by others; made it private",
                    extra={"path": str(path)})
        path.chmod(0o600)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; delete it to make a new one,"
                           " or set LINGTAN_DASHBOARD_SECRET")
    return secret


# --- sessions ---------------------------------------------------------------------------------


def session_data(role: str, now: float, *, user: str | None = None, user_id: int | None = None,
                 key_id: int | None = None, language: str | None = None, stamp: str | None = None
                 ) -> dict[str, Any]:
    """What a signed-in session cookie holds (no secrets: the cookie is signed, not encrypted)."""
    return {"role": role, "user": user, "uid": user_id, "kid": key_id, "lang": language,
            "stamp": stamp, "iat": now, "chk": now}


def _identity(data: Any) -> Identity:
    return Identity(role=data["role"], user=data.get("user"), user_id=data.get("uid"),
                    key_id=data.get("kid"), language=data.get("lang"))


def _from_session(state: AccessState) -> Identity | None:
    session = flask.session
    role = session.get("role")
    if role not in RANK:
        return None
    now = state.clock()
    issued = float(session.get("iat", 0))
    # The cookie's own expiry is only advice to the browser; the signed time is the rule.
    if not issued <= now + 300 or now - issued > SESSION_LIFETIME.total_seconds():
        session.clear()
        return None
    if now - float(session.get("chk", 0)) >= RECHECK_SECONDS:
        try:
            fresh = _recheck(state, session)
        except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("cannot re-check a dashboard session; keeping it",
                        extra={"event": "session_recheck", "error": str(exc)})
        else:
            if fresh is None:
                log.info("dashboard session ended", extra={
                    "event": "session_ended", "username": session.get("user"),
                    "key_id": session.get("kid"), "reason": "disabled, revoked or password changed"})
                session.clear()
                return None
            session["role"], session["chk"] = fresh, now
    return _identity(session)


def _recheck(state: AccessState, session: Any) -> str | None:
    """The session's role now, or None when it must end."""
    with _connect(state) as conn:
        if session.get("uid") is not None:
            now = users.standing(conn, int(session["uid"]))
            if now is None or not hmac.compare_digest(now.stamp, str(session.get("stamp"))):
                return None
            return now.role
        if session.get("kid") is not None:
            key = get_key(conn, int(session["kid"]))
            return None if key is None or key.revoked_at is not None else key.role
    return None


def _from_bearer(state: AccessState, token: str) -> Identity | None:
    """The key's identity; None if it is not valid. Raises DatabaseUnavailable if it cannot
    be checked and was not seen valid before."""
    digest = hashlib.blake2b(token.encode(), key=state.bearer_salt, digest_size=32).digest()
    now = state.clock()
    with state.lock:
        cached = state.bearer_cache.get(digest)
    if cached is not None and now - cached[1] < _BEARER_CACHE_S:
        return cached[0]
    try:
        with _connect(state) as conn:
            key = verify_key(conn, token)
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        if cached is not None:
            return cached[0]  # valid a minute ago; the database is out, so is any revocation
        raise DatabaseUnavailable(str(exc)) from exc
    with state.lock:
        if key is None:
            state.bearer_cache.pop(digest, None)
            return None
        if len(state.bearer_cache) >= _BEARER_CACHE_MAX:
            state.bearer_cache.clear()
        ident = Identity(role=key.role, key_id=key.id)
        state.bearer_cache[digest] = (ident, now)
    return ident


# --- language and texts -----------------------------------------------------------------------

def _texts(lang: Lang) -> dict[str, str]:
    """The sign-in page's texts (the catalog's ``signin.*`` keys) by their short names."""
    return {key.removeprefix("signin."): text for (ctx, key), text in catalog(lang).items()
            if ctx is None and key.startswith("signin.")}


def _page_language() -> str:
    """The dashboard's own rule (dashboard.i18n), so the form speaks as the page behind it will."""
    request = flask.request
    return request_lang(request.values, request.cookies, request.headers.get("Accept-Language"))


_STYLE = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
background:#f4f6f5;color:#1d2a24;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.25rem;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);
width:min(22rem,90vw)}
h1{font-size:1.35rem;margin:0 0 .25rem}
.langs{font-size:.85rem;margin:0 0 1.25rem}.langs a{color:#2b7a4b}
label{display:block;font-size:.9rem;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.55rem .6rem;font-size:1rem;border:1px solid #b9c4be;
border-radius:6px}
button{margin-top:1.1rem;width:100%;padding:.6rem;font-size:1rem;border:0;border-radius:6px;
background:#2b7a4b;color:#fff;cursor:pointer}
details{margin-top:1.5rem;font-size:.9rem}summary{cursor:pointer;color:#2b7a4b}
.error{background:#fdecea;color:#8a1c12;padding:.6rem .75rem;border-radius:6px}
.notice{background:#e8f4ec;padding:.6rem .75rem;border-radius:6px}
"""


def _login_page(state: AccessState, lang: Lang, next_url: str, *, error: str = "", notice: str = "",
                username: str = "", status: int = 200) -> flask.Response:
    from dashboard.layout import PRODUCT

    t = _texts(lang)
    session = flask.session
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    action = escape(state.public_prefix + "login")
    hidden = (f'<input type="hidden" name="csrf_token" value="{escape(session["csrf"])}">'
              f'<input type="hidden" name="next" value="{escape(next_url)}">'
              f'<input type="hidden" name="lang" value="{lang}">')
    message = ""
    if error:
        message = f'<p class="error" role="alert" id="login-error">{escape(error)}</p>'
    elif notice:
        message = f'<p class="notice" id="login-notice">{escape(notice)}</p>'
    switch = quote(next_url, safe="")
    html = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(t['title'])} · {escape(PRODUCT)}</title><style>{_STYLE}</style></head>
<body><main>
<h1>{escape(PRODUCT)} · {escape(t['title'])}</h1>
<p class="langs"><a href="?lang=zh&amp;next={switch}" hreflang="zh-CN">中文</a> ·
<a href="?lang=en&amp;next={switch}" hreflang="en">English</a></p>
{message}
<form method="post" action="{action}" id="password-form">{hidden}
<label for="username">{escape(t['username'])}</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" required autofocus
 value="{escape(username)}">
<label for="password">{escape(t['password'])}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">{escape(t['submit'])}</button>
</form>
<details><summary>{escape(t['or_key'])}</summary>
<form method="post" action="{action}" id="key-form">{hidden}
<label for="api_key">{escape(t['api_key'])}</label>
<input id="api_key" name="api_key" type="password" autocomplete="off" required>
<button type="submit" id="sign-in-key">{escape(t['submit_key'])}</button>
</form></details>
</main></body></html>"""
    response = flask.make_response(html, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    # The page loads nothing; nothing may frame it (clickjacking a sign-in form).
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Frame-Options"] = "DENY"
    return response


# --- the routes and the guard -----------------------------------------------------------------


def _safe_next(state: AccessState, value: str | None) -> str:
    """Only a path on this server: ``next`` must not turn the form into an open redirect."""
    home = state.public_prefix
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return home
    return value


def _relative(state: AccessState) -> str | None:
    path = flask.request.path
    if not path.startswith(state.prefix):
        return None
    return path[len(state.prefix):]


def _log_sign_in(outcome: str, method: str, reason: str = "", **fields: Any) -> None:
    extra = {"event": "sign_in", "outcome": outcome, "method": method,
             "remote_addr": flask.request.remote_addr, **fields}
    if reason:
        extra["reason"] = reason
    if outcome == "success":
        log.info("dashboard sign-in", extra=extra)
    else:
        log.warning("dashboard sign-in failed", extra=extra)


def _sign_in(state: AccessState, data: dict[str, Any], next_url: str) -> flask.Response:
    session = flask.session
    session.clear()  # a new session, not the one the form came with (no session fixation)
    session.update(data)
    session.permanent = True
    response = flask.redirect(next_url, 303)
    if data.get("lang"):
        # The user's own language setting becomes the dashboard's remembered choice, which the
        # language switch can still change.
        response.set_cookie(LANG_COOKIE, data["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def _login(state: AccessState) -> flask.Response:
    request = flask.request
    lang = _page_language()
    t = _texts(lang)
    next_url = _safe_next(state, request.values.get("next"))
    if request.method != "POST":
        notice = t["signed_out"] if request.args.get("signed_out") else ""
        return _login_page(state, lang, next_url, notice=notice)

    form = request.form
    username = form.get("username", "").strip()
    expected = flask.session.get("csrf")
    if not expected or not hmac.compare_digest(str(expected), form.get("csrf_token", "")):
        flask.session.pop("csrf", None)
        return _login_page(state, lang, next_url, error=t["csrf"], username=username, status=400)

    if "api_key" in form:
        return _login_with_key(state, lang, next_url, form.get("api_key", "").strip())
    password = form.get("password", "")
    if not username or not password:
        return _login_page(state, lang, next_url, error=t["missing"], username=username, status=400)
    bucket = "user:" + username.lower()
    wait = state.limiter.retry_after(bucket)
    if wait > 0:
        _log_sign_in("failure", "password", "rate_limited", username=username.lower())
        page = _login_page(state, lang, next_url, error=t["limited"].format(seconds=math.ceil(wait)),
                           username=username, status=429)
        page.headers["Retry-After"] = str(math.ceil(wait))
        return page
    try:
        with _connect(state, write=True) as conn:
            user = users.authenticate(conn, username, password)
            standing = users.standing(conn, user.id) if user else None
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        _log_sign_in("failure", "password", "database_unavailable", username=username.lower(),
                     error=str(exc))
        return _login_page(state, lang, next_url, error=t["database"], username=username, status=503)
    if user is None or standing is None:
        state.limiter.fail(bucket)
        _log_sign_in("failure", "password", "bad_credentials", username=username.lower())
        return _login_page(state, lang, next_url, error=t["wrong"], username=username, status=401)
    state.limiter.reset(bucket)
    _log_sign_in("success", "password", username=user.username, role=user.role)
    return _sign_in(state, session_data(user.role, state.clock(), user=user.username, user_id=user.id,
                                        language=user.language, stamp=standing.stamp), next_url)


def _login_with_key(state: AccessState, lang: Lang, next_url: str, token: str) -> flask.Response:
    t = _texts(lang)
    if not token:
        return _login_page(state, lang, next_url, error=t["missing_key"], status=400)
    # Keys are 256-bit random, so guessing is hopeless; the limit is per client address and only
    # keeps a broken script from hammering the database.
    bucket = f"key:{flask.request.remote_addr}"
    wait = state.limiter.retry_after(bucket)
    if wait > 0:
        _log_sign_in("failure", "api_key", "rate_limited")
        page = _login_page(state, lang, next_url, error=t["limited"].format(seconds=math.ceil(wait)),
                           status=429)
        page.headers["Retry-After"] = str(math.ceil(wait))
        return page
    try:
        with _connect(state) as conn:
            key = verify_key(conn, token)
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        _log_sign_in("failure", "api_key", "database_unavailable", error=str(exc))
        return _login_page(state, lang, next_url, error=t["database"], status=503)
    if key is None:
        state.limiter.fail(bucket)
        _log_sign_in("failure", "api_key", "bad_key")
        return _login_page(state, lang, next_url, error=t["wrong_key"], status=401)
    _log_sign_in("success", "api_key", key_prefix=key.prefix, key_id=key.id, role=key.role)
    return _sign_in(state, session_data(key.role, state.clock(), key_id=key.id), next_url)


def _logout(state: AccessState) -> flask.Response:
    session = flask.session
    if session.get("role"):
        log.info("dashboard sign-out", extra={"event": "sign_out", "username": session.get("user"),
                                              "key_id": session.get("kid")})
    session.clear()
    return flask.redirect(f"{state.public_prefix}login?signed_out=1", 303)


def _unauthorized(state: AccessState, message: str, status: int = 401) -> flask.Response:
    response = flask.jsonify(error=message, login=state.public_prefix + "login")
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lingtan-dashboard"'
    return response


def _guard(state: AccessState) -> flask.Response | None:
    rel = _relative(state)
    if rel is None or rel in _PUBLIC_PATHS or rel.startswith(_PUBLIC_PREFIXES):
        return None
    request = flask.request
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            ident = _from_bearer(state, header[7:].strip())
        except DatabaseUnavailable:
            return _unauthorized(state, "cannot check the API key: the database is unreachable", 503)
        if ident is None:
            return _unauthorized(state, "the API key is not valid or has been revoked")
    else:
        ident = _from_session(state)
    if ident is not None:
        flask.g.lingtan_identity = ident
        return None
    if request.method not in ("GET", "HEAD") or rel.startswith(_XHR_PREFIXES):
        return _unauthorized(state, "sign-in required: sign in at the login page or send"
                                    " Authorization: Bearer <API key>")
    target = state.public_prefix + rel + (f"?{request.query_string.decode()}" if request.query_string else "")
    return flask.redirect(f"{state.public_prefix}login?next={quote(target, safe='')}", 302)


def install_access(app: dash.Dash) -> None:
    """Require a signed-in session or a bearer API key for every dashboard route but the
    sign-in page, static assets and the health check."""
    settings = get_settings()
    server = app.server
    server.secret_key = dashboard_secret(settings)
    server.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The session's age is checked from its signed issue time; re-sending the cookie on every
        # 5-second refresh would only add bytes.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    state = AccessState(
        database_url=settings.database_url,
        prefix=app.config.routes_pathname_prefix,
        public_prefix=app.config.requests_pathname_prefix,
    )
    server.extensions["lingtan_access"] = state
    server.add_url_rule(state.prefix + "login", "lingtan_login", lambda: _login(state),
                        methods=["GET", "POST"])
    server.add_url_rule(state.prefix + "logout", "lingtan_logout", lambda: _logout(state),
                        methods=["GET", "POST"])
    server.add_url_rule(state.prefix + HEALTH_PATH, "lingtan_health",
                        lambda: flask.jsonify(status="ok"))
    server.before_request(lambda: _guard(state))
