"""Access control of the dashboard: users and roles, sign-in, sessions, CSRF, login throttling,
security headers; and local mode when no users are configured.

One module per concern, each importing only those below it (an import-linter contract in
pyproject.toml says so):

- `login.py`: the sign-in and sign-out pages and their words, the shell's user badge;
- `guard.py`: the request guard (local mode, sessions, same origin, CSRF token, analyst-only
  callbacks), the security headers, the audit of refusals, uploads and downloads, and what the
  rest of the app asks about the current request (`current_user`, `analyst_view_allowed`);
- `settings.py`: the settings from the environment (`configure`, `Security`, the secret key);
- `throttle.py`: failed sign-ins per (user name, address) and for the site, revoked sessions, in a state
  file shared by every worker;
- `store.py`: the users file (`<db>.users.json`, managed with `benzo-monitor users`), scrypt
  password hashes, name and password checks, `AuthError`.

In short:

- **Local mode** (no users): no sign-in, as before; the app answers requests from this machine
  only (loopback client and host name, no proxy headers), and `serve` binds 127.0.0.1.
- **With users**, every route needs a session except the sign-in page, sign-out and the
  stylesheet: pages redirect to /login, everything else (layout, callbacks, component suites,
  downloads, upload) answers 401. Two roles: `analyst` (today's dashboard) and `reviewer` (the
  publication view forced server-side by `analyst_view_allowed`, which dashboard/ui.py's
  view_state honours, and no upload: the guard refuses the upload callback for anyone else).
- **Sessions**: Flask's signed cookie (HttpOnly, SameSite=Lax, Secure in production), 8 hours at
  most and 30 minutes idle; sign-out revokes the session for every worker (state file).
- **CSRF**: every POST must come from this site (Origin, else Referer) and carry the session's
  token: dash-renderer sends the `_csrf_token` cookie back as the `X-CSRFToken` header; the
  sign-in and sign-out forms carry it as a hidden field.
- **Throttling**: 5 failed sign-ins for one user name from one client address within 15
  minutes refuse further attempts for that pair (429) until the oldest failure is 15 minutes
  old; at most 30 failures a minute on the whole site; attempts are counted before the
  password is checked; counters are shared by every worker through the same small state file
  beside the warehouse.
- **Headers** on every response: a Content-Security-Policy that suits Dash (scripts from this
  site plus the hashes of Dash's inline scripts), nosniff, no framing, Referrer-Policy, and
  Cache-Control no-store on everything but static files.

Events (sign-in, sign-out, refusals, uploads, downloads) go to the audit trail (etl/base/audit.py).

Importers use this package's names (`from dashboard import auth`); `install` puts it all on an
app.
"""

from __future__ import annotations

import datetime as dt

from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.auth.guard import (
    LOOPBACK_HOSTS,
    SESSION_COOKIE,
    add_headers,
    allowed_views,
    analyst_view_allowed,
    audit_user,
    current_user,
    guard_request,
    security,
)
from dashboard.auth.login import login_view, logout_view, user_badge
from dashboard.auth.settings import MODE_ENV, SECRET_ENV, Security, configure
from dashboard.auth.store import (
    AuthError,
    User,
    change_users,
    check_name,
    check_password,
    hash_password,
    read_users,
    users_path,
)
from etl.base import audit

__all__ = [
    "LOOPBACK_HOSTS",
    "MODE_ENV",
    "SECRET_ENV",
    "AuthError",
    "Security",
    "User",
    "allowed_views",
    "analyst_view_allowed",
    "change_users",
    "check_name",
    "check_password",
    "configure",
    "current_user",
    "hash_password",
    "install",
    "max_request_bytes",
    "read_users",
    "security",
    "user_badge",
    "users_path",
]


def max_request_bytes(warehouse) -> int:
    """The largest request the server reads: an upload of the configured size as base64, plus
    1 MiB (`warehouse`: the app's dashboard.data.Warehouse; None: the default 200 MB)."""
    max_mb = warehouse.config.max_upload_mb if warehouse is not None else 200
    return max_mb * (1 << 20) * 4 // 3 + (1 << 20)


def install(dash_app, sec: Security) -> None:
    """Put access control, the security headers and the audit hooks on a Dash app."""
    server = dash_app.server
    server.config["BENZO_SECURITY"] = sec
    server.secret_key = sec.secret_key
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: a view shared by link (filters live in the URL) opens signed in;
        # cross-site POSTs are still refused (no cookie, and Origin + token checks).
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=sec.production,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=sec.session_seconds),
        SESSION_REFRESH_EACH_REQUEST=False,
        # The largest upload (dashboard/pages/data.py, [loading] max_upload_mb of the
        # configuration) as base64 (4/3 of its size) in a callback's JSON, with room to spare.
        MAX_CONTENT_LENGTH=max_request_bytes(server.config.get("BENZO_WAREHOUSE")),
    )
    if sec.proxies:
        server.wsgi_app = ProxyFix(
            server.wsgi_app, x_for=sec.proxies, x_proto=sec.proxies, x_host=sec.proxies
        )
    server.before_request(lambda: guard_request(dash_app))
    server.after_request(lambda response: add_headers(dash_app, response))
    server.add_url_rule("/login", "benzo_login", login_view, methods=["GET", "POST"])
    server.add_url_rule("/logout", "benzo_logout", logout_view, methods=["GET", "POST"])
    audit.set_user_provider(audit_user)
