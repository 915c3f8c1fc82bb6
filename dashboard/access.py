"""Who may see the dashboard: sign-in with a user name and password or an API key, or a bearer key.

``install_access(app)`` puts a guard in front of every dashboard route. People sign in on
``/login`` (a small server-rendered form, zh-CN or en) and get a signed session cookie for 12 hours;
scripts and wall-screen kiosks send ``Authorization: Bearer lt_…`` with every request instead. Both
carry a role (viewer < engineer < admin, as API keys do); ``current_role()`` and
``current_username()`` tell the layout and callbacks who is asking.

The maintained Flask extensions do the generic work (docs/architecture.md, "The dashboard"):
Flask-Login keeps who is signed in (its session user id, its ``current_user``, a request loader
for bearer keys), Flask-WTF's ``CSRFProtect`` checks the sign-in form's token and the
``X-CSRFToken`` header Dash's renderer sends with every callback, and Flask-Limiter counts failed
sign-ins. What stays here is the product's own rule: roles, the 12-hour lifetime, the re-check.

The session cookie is signed, not encrypted: it holds the user id, name, role, language and times,
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dash
import flask
import flask_login
import sqlalchemy as sa
from flask_limiter import Limiter, RequestLimit
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
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
# Dash's renderer copies this cookie into the X-CSRFToken header of every callback POST; it holds
# Flask-WTF's signed token, which only matches the session it was made for.
CSRF_COOKIE = "lingtan_csrf"
SESSION_LIFETIME = timedelta(hours=12)  # one shift; then sign in again
RECHECK_SECONDS = 60.0
FAILED_SIGN_IN_LIMIT = 5
FAILED_SIGN_IN_WINDOW_S = 60
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
class Identity(flask_login.UserMixin):
    """Who is asking: a person (``user``) or an API key (``key_id``), and the role they hold."""

    role: str
    user: str | None = None
    user_id: int | None = None
    key_id: int | None = None
    language: str | None = None

    def get_id(self) -> str:
        """Flask-Login's user id, kept in the session: ``user:<id>`` or ``key:<id>``."""
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"


def current_identity() -> Identity | None:
    """The signed-in identity of this request; None outside a request or when nobody is signed in."""
    if not flask.has_request_context():
        return None
    user = flask_login.current_user
    return user if isinstance(user, Identity) else None


def current_role() -> str:
    """The role of this request; "viewer" (the least) when nobody is signed in."""
    ident = current_identity()
    return ident.role if ident else "viewer"


def current_username() -> str | None:
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


@dataclass
class AccessState:
    """Per-app state, kept in ``app.server.extensions["lingtan_access"]`` (tests reach in here)."""

    database_url: str | None
    prefix: str  # Dash's routes_pathname_prefix, e.g. "/"
    public_prefix: str  # Dash's requests_pathname_prefix: what the browser sees
    csrf: CSRFProtect
    limiter: Limiter
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


# --- who is signed in -------------------------------------------------------------------------


def session_facts(ident: Identity, now: float, stamp: str | None = None) -> dict[str, Any]:
    """What a signed-in session holds beside Flask-Login's user id: the role, name and language
    (so a refresh needs no query), the password stamp and the times of sign-in and last check."""
    return {"role": ident.role, "user": ident.user, "lang": ident.language, "stamp": stamp,
            "iat": now, "chk": now}


def _bearer_token(request: flask.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _parse_id(user_id: str) -> tuple[str, int] | None:
    kind, _, number = user_id.partition(":")
    if kind not in ("user", "key") or not number.isdigit():
        return None
    return kind, int(number)


def _from_session(state: AccessState, user_id: str) -> Identity | None:
    """Flask-Login's user loader: the session's identity, while it is young enough and, checked
    once a minute, still allowed."""
    if _bearer_token(flask.request) is not None:
        return None  # a request that carries a key is that key's, whatever cookie comes with it
    session = flask.session
    parsed = _parse_id(user_id)
    if parsed is None or session.get("role") not in RANK:
        return None
    now = state.clock()
    issued = float(session.get("iat", 0))
    # The cookie's own expiry is only advice to the browser; the signed time is the rule.
    if not issued <= now + 300 or now - issued > SESSION_LIFETIME.total_seconds():
        session.clear()
        return None
    if now - float(session.get("chk", 0)) >= RECHECK_SECONDS:
        try:
            fresh = _recheck(state, parsed, session.get("stamp"))
        except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("cannot re-check a dashboard session; keeping it",
                        extra={"event": "session_recheck", "error": str(exc)})
        else:
            if fresh is None:
                log.info("dashboard session ended", extra={
                    "event": "session_ended", "username": session.get("user"),
                    "key_id": parsed[1] if parsed[0] == "key" else None,
                    "reason": "disabled, revoked or password changed"})
                session.clear()
                return None
            session["role"], session["chk"] = fresh, now
    kind, number = parsed
    return Identity(role=session["role"], user=session.get("user"),
                    user_id=number if kind == "user" else None, key_id=number if kind == "key" else None,
                    language=session.get("lang"))


def _recheck(state: AccessState, parsed: tuple[str, int], stamp: Any) -> str | None:
    """The session's role now, or None when it must end."""
    kind, number = parsed
    with _connect(state) as conn:
        if kind == "user":
            now = users.standing(conn, number)
            if now is None or not hmac.compare_digest(now.stamp, str(stamp)):
                return None
            return now.role
        key = get_key(conn, number)
        return None if key is None or key.revoked_at is not None else key.role


def _from_bearer(state: AccessState, request: flask.Request) -> Identity | None:
    """Flask-Login's request loader: the bearer key's identity; None if there is none or it is not
    valid. Raises DatabaseUnavailable if it cannot be checked and was not seen valid before."""
    token = _bearer_token(request)
    if token is None:
        return None
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
    action = escape(state.public_prefix + "login")
    hidden = (f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">'
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


def _sign_in(state: AccessState, ident: Identity, next_url: str, stamp: str | None = None
             ) -> flask.Response:
    session = flask.session
    session.clear()  # a new session, not the one the form came with (no session fixation)
    flask_login.login_user(ident)
    session.update(session_facts(ident, state.clock(), stamp))
    session.permanent = True
    response = flask.redirect(next_url, 303)
    if ident.language:
        # The user's own language setting becomes the dashboard's remembered choice, which the
        # language switch can still change.
        response.set_cookie(LANG_COOKIE, ident.language, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


# Failed sign-ins, counted by Flask-Limiter: at most FAILED_SIGN_IN_LIMIT in any window of
# FAILED_SIGN_IN_WINDOW_S (a moving window), then a pause. In memory, per process: the dashboard
# runs as one process, and a restart only forgives an attacker a few more guesses against an
# argon2 hash.
_FAILED_SIGN_INS = f"{FAILED_SIGN_IN_LIMIT} per {FAILED_SIGN_IN_WINDOW_S} seconds"


def _is_key_form() -> bool:
    return "api_key" in flask.request.form


def _name_bucket() -> str:
    return "user:" + flask.request.form.get("username", "").strip().lower()


def _address_bucket() -> str:
    # Keys are 256-bit random, so guessing is hopeless; the limit is per client address and only
    # keeps a broken script from hammering the database.
    return f"key:{flask.request.remote_addr}"


def _failed(response: flask.Response) -> bool:
    return response.status_code == 401


def _limited(state: AccessState, limit: RequestLimit) -> flask.Response:
    """Flask-Limiter's breach: the form again, saying how long to wait."""
    request = flask.request
    lang = _page_language()
    wait = max(1, math.ceil(limit.window.reset_time - state.clock()))
    username = request.form.get("username", "").strip()
    if _is_key_form():
        _log_sign_in("failure", "api_key", "rate_limited")
        username = ""
    else:
        _log_sign_in("failure", "password", "rate_limited", username=username.lower())
    page = _login_page(state, lang, _safe_next(state, request.values.get("next")),
                       error=_texts(lang)["limited"].format(seconds=wait), username=username, status=429)
    page.headers["Retry-After"] = str(wait)
    return page


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
    try:
        state.csrf.protect()
    except CSRFError:
        return _login_page(state, lang, next_url, error=t["csrf"], username=username, status=400)

    if _is_key_form():
        return _login_with_key(state, lang, next_url, form.get("api_key", "").strip())
    password = form.get("password", "")
    if not username or not password:
        return _login_page(state, lang, next_url, error=t["missing"], username=username, status=400)
    try:
        with _connect(state, write=True) as conn:
            user = users.authenticate(conn, username, password)
            standing = users.standing(conn, user.id) if user else None
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        _log_sign_in("failure", "password", "database_unavailable", username=username.lower(),
                     error=str(exc))
        return _login_page(state, lang, next_url, error=t["database"], username=username, status=503)
    if user is None or standing is None:
        _log_sign_in("failure", "password", "bad_credentials", username=username.lower())
        return _login_page(state, lang, next_url, error=t["wrong"], username=username, status=401)
    for limit in state.limiter.current_limits:  # the right password forgives the name's failures
        state.limiter.limiter.clear(limit.limit, *limit.request_args)
    _log_sign_in("success", "password", username=user.username, role=user.role)
    ident = Identity(role=user.role, user=user.username, user_id=user.id, language=user.language)
    return _sign_in(state, ident, next_url, standing.stamp)


def _login_with_key(state: AccessState, lang: Lang, next_url: str, token: str) -> flask.Response:
    t = _texts(lang)
    if not token:
        return _login_page(state, lang, next_url, error=t["missing_key"], status=400)
    try:
        with _connect(state) as conn:
            key = verify_key(conn, token)
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        _log_sign_in("failure", "api_key", "database_unavailable", error=str(exc))
        return _login_page(state, lang, next_url, error=t["database"], status=503)
    if key is None:
        _log_sign_in("failure", "api_key", "bad_key")
        return _login_page(state, lang, next_url, error=t["wrong_key"], status=401)
    _log_sign_in("success", "api_key", key_prefix=key.prefix, key_id=key.id, role=key.role)
    return _sign_in(state, Identity(role=key.role, key_id=key.id), next_url)


def _logout(state: AccessState) -> flask.Response:
    ident = current_identity()
    if ident is not None:
        log.info("dashboard sign-out", extra={"event": "sign_out", "username": ident.user,
                                              "key_id": ident.key_id})
    flask_login.logout_user()
    flask.session.clear()
    return flask.redirect(f"{state.public_prefix}login?signed_out=1", 303)


def _refused(state: AccessState, message: str, status: int = 401) -> flask.Response:
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
    by_key = _bearer_token(request) is not None
    try:
        signed_in = flask_login.current_user.is_authenticated
    except DatabaseUnavailable:
        return _refused(state, "cannot check the API key: the database is unreachable", 503)
    if not signed_in:
        if by_key:
            return _refused(state, "the API key is not valid or has been revoked")
        if request.method not in ("GET", "HEAD") or rel.startswith(_XHR_PREFIXES):
            return _refused(state, "sign-in required: sign in at the login page or send"
                                   " Authorization: Bearer <API key>")
        target = state.public_prefix + rel + (f"?{request.query_string.decode()}" if request.query_string
                                              else "")
        return flask.redirect(f"{state.public_prefix}login?next={quote(target, safe='')}", 302)
    if by_key:
        return None  # a header no other site can make a browser send: nothing to forge
    # A session cookie comes with any request the browser makes, also one another site's page
    # makes it send: a request that changes something must also carry the session's CSRF token.
    try:
        state.csrf.protect()
    except CSRFError as exc:
        return _refused(state, f"CSRF check failed ({exc.description}): reload the page", 400)
    if request.method == "GET":
        flask.g.lingtan_csrf_cookie = True
    return None


def _csrf_cookie(response: flask.Response) -> flask.Response:
    """Hand a signed-in browser its CSRF token where Dash's renderer reads it (the cookie is
    readable by the page's script, which is the point; the token matches only its own session)."""
    if flask.g.get("lingtan_csrf_cookie"):
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax", secure=flask.request.is_secure)
    return response


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
        # The guard calls CSRFProtect itself, after sign-in: a bearer-key request carries no
        # cookie to abuse, and an anonymous one is refused before any token matters.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A wall screen keeps its page for a whole shift; the token lives as long as the session
        # (at most SESSION_LIFETIME) instead of Flask-WTF's default hour.
        WTF_CSRF_TIME_LIMIT=None,
    )
    logins = flask_login.LoginManager(server)
    limiter = Limiter(lambda: flask.request.remote_addr or "", app=server, storage_uri="memory://",
                      strategy="moving-window")
    state = AccessState(
        database_url=settings.database_url,
        prefix=app.config.routes_pathname_prefix,
        public_prefix=app.config.requests_pathname_prefix,
        csrf=CSRFProtect(server),
        limiter=limiter,
    )
    server.extensions["lingtan_access"] = state
    logins.user_loader(lambda user_id: _from_session(state, user_id))
    logins.request_loader(lambda request: _from_bearer(state, request))

    def login() -> flask.Response:
        return _login(state)

    # Only failed sign-ins count (401), per name for the password form, per address for the key form.
    for bucket, exempt in ((_name_bucket, _is_key_form), (_address_bucket, lambda: not _is_key_form())):
        login = limiter.limit(_FAILED_SIGN_INS, key_func=bucket, methods=["POST"], exempt_when=exempt,
                              deduct_when=_failed, on_breach=lambda limit: _limited(state, limit))(login)
    server.add_url_rule(state.prefix + "login", "lingtan_login", login, methods=["GET", "POST"])
    server.add_url_rule(state.prefix + "logout", "lingtan_logout", lambda: _logout(state),
                        methods=["GET", "POST"])
    server.add_url_rule(state.prefix + HEALTH_PATH, "lingtan_health",
                        lambda: flask.jsonify(status="ok"))
    server.before_request(lambda: _guard(state))
    server.after_request(_csrf_cookie)
