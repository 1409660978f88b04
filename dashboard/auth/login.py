"""The sign-in and sign-out pages (plain HTML forms, outside Dash), their words, and the
shell's signed-in user badge.

Sign-in checks the form's origin and CSRF token, then the throttle (throttle.py: 429 with
Retry-After), then the password; a new session (and token) starts at each sign-in. Sign-out
is a POST with the token; it revokes the session for every worker. Both go to the audit trail.
"""

from __future__ import annotations

import html as html_text
import secrets
import time
from urllib.parse import urlencode, urlsplit

import flask
from dash import dcc, html

from dashboard.auth.guard import (
    CSRF_COOKIE,
    CSRF_HEADER,
    audit_event,
    client_ip,
    csrf_token,
    current_user,
    deny,
    lang_of,
    same_origin,
    session_user,
    token_ok,
)
from dashboard.auth.settings import Security
from dashboard.auth.store import normalise_name, verify_password
from dashboard.auth.throttle import AuthState
from dashboard.i18n import language
from etl.base.i18n import LANGUAGES, t


def _safe_next(target: str | None) -> str:
    """A local path to go back to after sign-in (anything else: the home page)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 33 or ord(c) == 127 for c in target):  # browsers drop tabs: "/\t/evil"
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{heading} — benzo-monitor</title>
<link rel="stylesheet" href="/assets/style.css">
<style>
.auth {{ max-width: 24rem; margin: 4rem auto; background: #fff; border: 1px solid #e2e2e2;
        border-radius: 6px; padding: 1.2rem 1.5rem; }}
.auth h1 {{ font-size: 1.05rem; margin: 0 0 1rem 0; }}
.auth h2 {{ font-size: 1.2rem; margin: 0 0 0.8rem 0; }}
.auth label {{ display: block; margin: 0.7rem 0 0.2rem 0; }}
.auth input[type=text], .auth input[type=password] {{ width: 100%; box-sizing: border-box;
        padding: 0.4rem; font-size: 14px; }}
.auth button {{ margin-top: 1rem; }}
.auth nav a {{ margin-right: 0.6rem; color: #0b4f8a; }}
</style>
</head>
<body>
<main class="auth">
<h1>{app_title}</h1>
<nav class="auth-languages">{languages}</nav>
<h2>{heading}</h2>
{message}
{form}
</main>
</body>
</html>
"""


def _page(lang: str, heading: str, form: str, message: str = "", *, next_path: str = "/"):
    esc = html_text.escape
    languages = " ".join(
        f'<a href="{esc(flask.request.path)}?{esc(urlencode({"next": next_path, "lang": code}))}"'
        f' id="auth-lang-{code}">{code.upper()}</a>'
        for code in LANGUAGES
    )
    if message:
        message = f'<p class="message error" id="auth-message" role="alert">{esc(message)}</p>'
    return PAGE.format(
        lang=lang,
        heading=esc(heading),
        app_title=esc(t("app_title", lang)),
        languages=languages,
        message=message,
        form=form,
    )


def _login_page(lang: str, next_path: str, message: str = "", status: int = 200):
    esc = html_text.escape
    form = f"""<form method="post" action="/login" id="login-form">
<input type="hidden" name="csrf_token" value="{esc(csrf_token())}">
<input type="hidden" name="next" value="{esc(next_path)}">
<input type="hidden" name="lang" value="{esc(lang)}">
<label for="login-username">{esc(t("auth_user_name", lang))}</label>
<input type="text" id="login-username" name="username" autocomplete="username" required>
<label for="login-password">{esc(t("auth_password", lang))}</label>
<input type="password" id="login-password" name="password" autocomplete="current-password"
 required>
<button type="submit" id="login-submit">{esc(t("auth_sign_in", lang))}</button>
</form>"""
    body = _page(lang, t("auth_sign_in", lang), form, message, next_path=next_path)
    return flask.Response(body, status=status, mimetype="text/html")


def login_view():
    """/login: the sign-in form (GET) and its check (POST)."""
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    next_path = _safe_next(request.values.get("next"))
    lang = language(request.values.get("lang") or lang_of(next_path))
    if not sec.auth_required():
        return flask.redirect(next_path)
    if request.method == "GET":
        if session_user(sec)[0] is not None:
            return flask.redirect(next_path)
        if request.args.get("expired"):
            return _login_page(lang, next_path, t("auth_expired", lang))
        if request.args.get("signed_out"):
            return _login_page(lang, next_path, t("auth_signed_out", lang))
        return _login_page(lang, next_path)
    if not same_origin(sec) or not token_ok(request.form.get("csrf_token")):
        audit_event("access_denied", method="POST", path="/login", status=403, reason="csrf")
        return _login_page(lang, next_path, t("auth_form_expired", lang), 403)
    name = normalise_name(request.form.get("username", ""))[:64]
    password = request.form.get("password", "")
    limits = AuthState.limits(name, client_ip())
    wait, stamp = sec.state.reserve(limits)  # counted before the check: see throttle.py
    users = sec.users() or {}
    user = users.get(name)
    if wait > 0:
        audit_event("login_failed", user=user.name if user else None, reason="throttled")
        response = _login_page(
            lang, next_path, t("auth_throttled", lang, minutes=max(1, round(wait / 60))), 429
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not verify_password(user, password):
        reason = "wrong_password" if user else "unknown_user"
        audit_event("login_failed", user=user.name if user else None, reason=reason)
        return _login_page(lang, next_path, t("auth_wrong", lang), 401)
    sec.state.succeeded(limits, stamp)
    now = time.time()
    session = flask.session
    session.clear()  # a new session (and token) at each sign-in
    session.permanent = True
    session.update(
        user=name,  # the users file's key (normalised name)
        pw=user.fingerprint,
        sid=secrets.token_urlsafe(16),
        login_at=now,
        seen=now,
        csrf=secrets.token_urlsafe(32),
    )
    flask.g.benzo_user = user
    audit_event("login", user=user.name, role=user.role)
    return flask.redirect(next_path)


def logout_view():
    """/logout: a page with the sign-out button (GET) and the sign-out itself (POST)."""
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    lang = language(request.values.get("lang"))
    if not sec.auth_required():
        return flask.redirect("/")
    user, _ = session_user(sec)
    if user is None:
        flask.session.clear()
        return flask.redirect(f"/login?{urlencode({'lang': lang})}")
    if request.method == "GET":  # no change on a GET: a page with the sign-out button
        esc = html_text.escape
        form = f"""<p>{esc(t("auth_sign_out_question", lang))}</p>
<form method="post" action="/logout" id="logout-form">
<input type="hidden" name="csrf_token" value="{esc(csrf_token())}">
<input type="hidden" name="lang" value="{esc(lang)}">
<button type="submit" id="logout-submit">{esc(t("auth_sign_out", lang))}</button>
</form>"""
        page = _page(lang, t("auth_sign_out", lang), form, next_path="/")
        return flask.Response(page, mimetype="text/html")
    token = request.form.get("csrf_token") or request.headers.get(CSRF_HEADER)
    if not same_origin(sec) or not token_ok(token):
        flask.g.benzo_user = user
        return deny(403, "csrf", "missing or wrong CSRF token: reload the page")
    session = flask.session
    sec.state.revoke(
        str(session.get("sid", "")), float(session.get("login_at", 0)) + sec.session_seconds
    )
    audit_event("logout", user=user.name, role=user.role)
    session.clear()
    response = flask.redirect(f"/login?{urlencode({'lang': lang, 'signed_out': '1'})}")
    response.delete_cookie(CSRF_COOKIE)
    return response


def user_badge(lang: str):
    """The shell's signed-in user, role and sign-out button (None in local mode)."""
    user = current_user()
    if user is None:
        return None
    return html.Form(
        [
            html.Span(
                f"{user.name} ({t(f'auth_role_{user.role}', lang)})",
                id="app-user-name",
                className="app-user-name",
            ),
            dcc.Input(type="hidden", name="csrf_token", value=csrf_token(), id="app-logout-token"),
            dcc.Input(type="hidden", name="lang", value=lang, id="app-logout-lang"),
            html.Button(t("auth_sign_out", lang), type="submit", id="app-logout"),
        ],
        action="/logout",
        method="POST",
        id="app-logout-form",
        style={"display": "flex", "gap": "0.5rem", "alignItems": "center", "margin": 0},
    )
