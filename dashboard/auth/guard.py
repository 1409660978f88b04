"""The request guard, run before every request of the app: local mode answers this machine
only; with users, a session is needed (pages redirect to /login, the rest answers 401), a POST
must come from this site and carry the session's CSRF token, and a reviewer may not run an
analyst-only callback (the upload). After every request: the security headers (CSP for Dash,
nosniff, no framing, no-store) and the CSRF cookie dash-renderer sends back.

Also what the rest of the app asks about the current request (`current_user`,
`analyst_view_allowed`, `allowed_views`), and the audit of refusals, uploads and downloads
(etl/base/audit.py). The package docstring (dashboard/auth/__init__.py) has the whole picture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import flask

from dashboard.auth.settings import Security
from dashboard.auth.store import User
from dashboard.i18n import language
from etl.base import audit

log = logging.getLogger(__name__)

SESSION_COOKIE = "benzo_monitor_session"
CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads (dash config csrf_token_name)
CSRF_HEADER = "X-CSRFToken"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PROXY_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP")
# What the sign-in page needs; everything else needs a session.
PUBLIC_PATHS = frozenset({"/login", "/logout", "/assets/style.css", "/_favicon.ico"})
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon.ico")
# Callbacks with one of these components among their inputs are for analysts only.
ANALYST_ONLY_INPUTS = frozenset({"data-upload", "data-upload-confirm"})  # (the preview, the load)


# --- the current request -------------------------------------------------------------------


def security() -> Security | None:
    """The settings of the app serving the current request (None outside a request)."""
    if not flask.has_request_context():
        return None
    return flask.current_app.config.get("BENZO_SECURITY")


def current_user() -> User | None:
    """The signed-in user of the current request (None in local mode or signed out)."""
    return flask.g.get("benzo_user") if flask.has_request_context() else None


def analyst_view_allowed() -> bool:
    """May the current reader see the analyst view (exact figures, pseudonymised ids)? Yes
    outside a request and in local mode; with users, only a signed-in analyst."""
    sec = security()
    if sec is None or not sec.auth_required():
        return True
    user = current_user()
    return user is not None and user.role == "analyst"


def allowed_views() -> tuple[str, ...]:
    """The views the current reader may choose (the shell's view switch)."""
    return ("analyst", "publication") if analyst_view_allowed() else ("publication",)


def client_ip() -> str:
    """The client address of the current request (the proxy's client with ProxyFix)."""
    return flask.request.remote_addr or "unknown"


_SIGNED_IN = object()


def audit_event(event: str, user=_SIGNED_IN, **details) -> None:
    """An audit event of this request: by `user`, by default the signed-in user (nobody when
    signed out; in local mode, the OS user running the dashboard)."""
    sec = security()
    if sec is None:
        return
    if user is _SIGNED_IN:
        if not sec.auth_required():
            audit.record(sec.db_path, event, ip=client_ip(), **details)
            return
        user = current_user().name if current_user() else None
    user = audit.NOBODY if user is None else user
    audit.record(sec.db_path, event, user=user, ip=client_ip(), **details)


def audit_user() -> str | None:
    """The signed-in user's name, for the events the loader records (etl/base/audit.py)."""
    user = current_user()
    return user.name if user else None


def _json_error(status: int, message: str):
    response = flask.jsonify({"error": message})
    response.status_code = status
    return response


def deny(status: int, reason: str, message: str):
    """Refuse the request (JSON, or plain text for a page) and record it in the audit trail."""
    audit_event(
        "access_denied",
        method=flask.request.method,
        path=flask.request.path,
        status=status,
        reason=reason,
        role=current_user().role if current_user() else None,
    )
    return _json_error(status, message)


def _host_name(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _local_request() -> bool:
    """Local mode answers this machine only: a loopback client asking for a loopback host name
    (this also defeats DNS rebinding) with no proxy headers (a proxy would expose it)."""
    request = flask.request
    return (
        _is_loopback(request.remote_addr)
        and _host_name(request.host) in LOOPBACK_HOSTS
        and not any(request.headers.get(h) for h in PROXY_HEADERS)
    )


def same_origin(sec: Security) -> bool:
    """Does this POST come from a page of this site? The Origin header, else the Referer; a
    client sending neither (not a browser) passes this check and still needs the token."""
    request = flask.request
    allowed = {request.host.lower(), *sec.origins}
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc.lower() in allowed
    referer = request.headers.get("Referer")
    if referer:
        return urlsplit(referer).netloc.lower() in allowed
    return True


def token_ok(token: str | None) -> bool:
    """Is `token` the session's CSRF token?"""
    expected = flask.session.get("csrf")
    return bool(token and expected) and hmac.compare_digest(str(token), str(expected))


def csrf_token() -> str:
    """The session's CSRF token (made now if the session has none), for a form to carry."""
    if not flask.session.get("csrf"):
        flask.session["csrf"] = secrets.token_urlsafe(32)
    return flask.session["csrf"]


def session_user(sec: Security) -> tuple[User | None, bool]:
    """(the session's user, whether a session existed but is no longer valid)."""
    session = flask.session
    name = session.get("user")
    if not name:
        return None, False
    users = sec.users() or {}
    user = users.get(name)
    now = time.time()
    valid = (
        user is not None
        and hmac.compare_digest(str(session.get("pw", "")), user.fingerprint)
        and now - float(session.get("login_at", 0)) <= sec.session_seconds
        and now - float(session.get("seen", 0)) <= sec.idle_seconds
        and not (sec.state and sec.state.revoked(str(session.get("sid", ""))))
    )
    return (user, False) if valid else (None, True)


def _is_page(path: str) -> bool:
    return not path.startswith(("/_", "/assets/", "/static/"))


def lang_of(target: str) -> str:
    """The language asked for by a local URL (its `lang` parameter, else the default)."""
    return language((parse_qs(urlsplit(target).query).get("lang") or [None])[0])


def login_url(target: str, **flags) -> str:
    """The sign-in page that goes back to `target`, with the true `flags` (e.g. expired=1)."""
    params = {"next": target, "lang": lang_of(target), **{k: "1" for k, v in flags.items() if v}}
    return "/login?" + urlencode(params)


# --- callbacks seen by the guard: upload and downloads ------------------------------------


def _ids(items) -> list[str]:
    out = []
    for item in items or []:
        if isinstance(item, list):
            out += _ids(item)
        elif isinstance(item, dict):
            ident = item.get("id")
            out.append(ident if isinstance(ident, str) else json.dumps(ident, sort_keys=True))
    return out


def _value(items, component: str, prop: str):
    for item in items or []:
        if isinstance(item, dict) and item.get("id") == component and item.get("property") == prop:
            return item.get("value")
    return None


def _callback_info(body) -> dict:
    if not isinstance(body, dict):
        return {}
    outputs = body.get("outputs")
    outputs = outputs if isinstance(outputs, list) else [outputs]
    inputs = body.get("inputs") or []
    state = body.get("state") or []
    search = _value(state, "url", "search") or _value(inputs, "url", "search") or ""
    return {
        "output": body.get("output"),
        "inputs": set(_ids(inputs)),
        "downloads": [
            o.get("id")
            for o in outputs
            if isinstance(o, dict)
            and o.get("property") == "data"
            and str(o.get("id", "")).endswith("-download")
        ],
        "trigger": " ".join(str(x) for x in body.get("changedPropIds") or []),
        "search": search if isinstance(search, str) else "",
        "upload": _value(inputs, "data-upload", "contents"),
        "filename": _value(state, "data-upload", "filename"),
    }


def _search_param(search: str, key: str) -> str | None:
    return (parse_qs(search.lstrip("?")).get(key) or [None])[0]


def _audit_upload(info: dict) -> None:
    """An accepted upload request (before the loader's own load or load_refused event)."""
    if not info.get("upload"):
        return
    user = current_user()
    _, _, payload = str(info["upload"]).partition(",")
    try:
        data = base64.b64decode(payload)
    except ValueError:
        data = b""
    audit_event(
        "upload",
        file=re.split(r"[\\/]", str(info.get("filename") or ""))[-1] or None,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        role=user.role if user else None,
    )


def _audit_download(info: dict, response) -> None:
    """A download answered (a callback whose output is a dcc.Download's data)."""
    user = current_user()
    role = user.role if user else None
    if info.get("downloads") and response.status_code == 200:
        trigger = info.get("trigger", "")
        fmt = next((f for f in ("csv", "xlsx", "html") if f"-{f}-" in trigger), None)
        search = info.get("search", "")
        asked = _search_param(search, "view")
        audit_event(
            "download",
            component=",".join(info["downloads"]),
            format=fmt or ("csv" if "export" in trigger else None),
            month=_search_param(search, "month"),
            lang=language(_search_param(search, "lang")),
            view="publication"
            if asked == "publication" or not analyst_view_allowed()
            else "analyst",
            role=role,
            bytes=response.calculate_content_length(),
        )


# --- the guard, the headers ----------------------------------------------------------------


def _analyst_only(dash_app, info: dict) -> bool:
    """Is this callback request for a callback only analysts may run? Dash runs the callback
    registered under the body's `output` key, so that key is checked, besides the inputs."""
    if info.get("inputs", set()) & ANALYST_ONLY_INPUTS:
        return True
    callback = dash_app.callback_map.get(info.get("output"))
    return bool(callback) and any(
        item.get("id") in ANALYST_ONLY_INPUTS for item in callback.get("inputs", [])
    )


def guard_request(dash_app):
    """Before every request: None lets it through; otherwise the refusal or redirect."""
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    flask.g.benzo_user = None
    flask.g.benzo_callback = None
    is_callback = request.path.endswith("/_dash-update-component") and request.method == "POST"
    if not sec.auth_required():
        if not _local_request():
            return deny(
                403,
                "local_mode",
                "local mode (no users configured): this dashboard answers this machine only; "
                "add users (benzo-monitor users add NAME --role analyst) to serve others",
            )
        if request.method == "POST" and not same_origin(sec):
            return deny(403, "cross_origin", "request from another site refused")
        if is_callback:
            flask.g.benzo_callback = _callback_info(request.get_json(silent=True))
            _audit_upload(flask.g.benzo_callback)
        return None
    if request.path in PUBLIC_PATHS:
        return None  # the sign-in and sign-out views check their own forms
    user, expired = session_user(sec)
    if user is None:
        if expired:
            flask.session.clear()
        if request.method in ("GET", "HEAD") and _is_page(request.path):
            target = request.full_path if request.query_string else request.path
            return flask.redirect(login_url(target, expired=expired))
        return deny(401, "no_session", "sign in first (/login)")
    flask.g.benzo_user = user
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not same_origin(sec):
            return deny(403, "cross_origin", "request from another site refused")
        if not token_ok(request.headers.get(CSRF_HEADER)):
            return deny(403, "csrf", "missing or wrong CSRF token: reload the page")
        if is_callback:  # (the body is read only now: never for a request without a session)
            info = flask.g.benzo_callback = _callback_info(request.get_json(silent=True))
            if user.role != "analyst" and info and _analyst_only(dash_app, info):
                return deny(403, "role", f"not allowed for the {user.role} role")
            _audit_upload(info)
    now = time.time()
    if now - float(flask.session.get("seen", 0)) > 60:
        flask.session["seen"] = now  # idle time counts from here (written at most once a minute)
    return None


def _csp(app) -> str:
    """The Content-Security-Policy: scripts from this site and Dash's inline scripts (by hash,
    computed once they are all registered); inline styles are needed by plotly and ag-grid."""
    hashes = app.csp_hashes()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(hashes),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def add_headers(dash_app, response):
    """After every request: the audit of a download, the security headers, the CSRF cookie."""
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    info = flask.g.get("benzo_callback")
    if info:
        try:
            _audit_download(info, response)
        except Exception:  # the audit never breaks an answer; the reason goes to the log
            log.exception("audit of a callback failed")
    headers = response.headers
    headers["Content-Security-Policy"] = _csp(dash_app)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith(STATIC_PREFIXES):
        headers["Cache-Control"] = "no-store"
    if sec.production and request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if sec.auth_required() and flask.session.get("csrf"):
        token = flask.session["csrf"]
        if request.cookies.get(CSRF_COOKIE) != token:
            # Not HttpOnly: dash-renderer reads it and sends it back as X-CSRFToken.
            response.set_cookie(
                CSRF_COOKIE, token, secure=sec.production, httponly=False, samesite="Strict"
            )
    return response
