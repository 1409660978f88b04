"""Access control of the dashboard: users and roles, sign-in, sessions, CSRF, login throttling,
security headers; and local mode when no users are configured.

- **Users** live in a JSON file beside the warehouse (`<db>.users.json`, or
  `$BENZO_MONITOR_USERS`), managed with `benzo-monitor users`; passwords are stored as scrypt
  hashes (werkzeug.security), never in plain.
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
- **Throttling**: 5 failed sign-ins for a user name, or 20 from one client address, within 15
  minutes refuse further attempts (429) until the oldest failure is 15 minutes old; counters
  are shared by every worker through the same small state file beside the warehouse.
- **Headers** on every response: a Content-Security-Policy that suits Dash (scripts from this
  site plus the hashes of Dash's inline scripts), nosniff, no framing, Referrer-Policy, and
  Cache-Control no-store on everything but static files.

Events (sign-in, sign-out, refusals, uploads, downloads) go to the audit trail (etl/base/audit.py).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import html as html_text
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import flask
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.i18n import LANGUAGES, language, register, t
from etl.base import audit

log = logging.getLogger(__name__)

ROLES = ("analyst", "reviewer")
USERS_ENV = "BENZO_MONITOR_USERS"
SECRET_ENV = "BENZO_MONITOR_SECRET_KEY"
SECRET_FILE_ENV = "BENZO_MONITOR_SECRET_KEY_FILE"
MODE_ENV = "BENZO_MONITOR_ENV"
ORIGINS_ENV = "BENZO_MONITOR_ORIGINS"
PROXIES_ENV = "BENZO_MONITOR_PROXIES"
SESSION_HOURS_ENV = "BENZO_MONITOR_SESSION_HOURS"
IDLE_MINUTES_ENV = "BENZO_MONITOR_IDLE_MINUTES"
MODES = ("development", "production")

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MIN_SECRET = 32
SESSION_HOURS = 8.0
IDLE_MINUTES = 30.0
FAILURE_WINDOW = 15 * 60  # seconds
MAX_FAILURES_USER = 5
MAX_FAILURES_IP = 20  # higher: colleagues behind one office address share it
SESSION_COOKIE = "benzo_monitor_session"
CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads (dash config csrf_token_name)
CSRF_HEADER = "X-CSRFToken"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PROXY_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP")
# What the sign-in page needs; everything else needs a session.
PUBLIC_PATHS = frozenset({"/login", "/logout", "/assets/style.css", "/_favicon.ico"})
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon.ico")
# Callbacks with one of these components among their inputs are for analysts only.
ANALYST_ONLY_INPUTS = frozenset({"data-upload"})
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")

register(
    {
        "auth_sign_in": {"fr": "Connexion", "nl": "Aanmelden", "en": "Sign in"},
        "auth_user_name": {"fr": "Nom d'utilisateur", "nl": "Gebruikersnaam", "en": "User name"},
        "auth_password": {"fr": "Mot de passe", "nl": "Wachtwoord", "en": "Password"},
        "auth_sign_out": {"fr": "Se déconnecter", "nl": "Afmelden", "en": "Sign out"},
        "auth_signed_out": {
            "fr": "Vous êtes déconnecté.",
            "nl": "U bent afgemeld.",
            "en": "You are signed out.",
        },
        "auth_wrong": {
            "fr": "Nom d'utilisateur ou mot de passe incorrect.",
            "nl": "Onjuiste gebruikersnaam of wachtwoord.",
            "en": "Wrong user name or password.",
        },
        "auth_throttled": {
            "fr": "Trop de tentatives échouées : réessayez dans {minutes} minute(s).",
            "nl": "Te veel mislukte pogingen: probeer opnieuw over {minutes} minuut/minuten.",
            "en": "Too many failed attempts: try again in {minutes} minute(s).",
        },
        "auth_expired": {
            "fr": "Votre session a expiré : reconnectez-vous.",
            "nl": "Uw sessie is verlopen: meld u opnieuw aan.",
            "en": "Your session has expired: sign in again.",
        },
        "auth_form_expired": {
            "fr": "Le formulaire a expiré : réessayez.",
            "nl": "Het formulier is verlopen: probeer opnieuw.",
            "en": "The form has expired: try again.",
        },
        "auth_sign_out_question": {
            "fr": "Se déconnecter du tableau de bord ?",
            "nl": "Afmelden van het dashboard?",
            "en": "Sign out of the dashboard?",
        },
        "auth_role_analyst": {"fr": "analyste", "nl": "analist", "en": "analyst"},
        "auth_role_reviewer": {"fr": "relecteur", "nl": "beoordelaar", "en": "reviewer"},
    }
)


class AuthError(Exception):
    """Access control cannot be set up or changed; the message says why in plain words."""


# --- the users file ------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """Changes when the password does: a session signed in before a change ends."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


def users_path(db_path: str | os.PathLike) -> Path:
    """`$BENZO_MONITOR_USERS`, or `<db>.users.json` beside the warehouse."""
    if os.environ.get(USERS_ENV):
        return Path(os.environ[USERS_ENV])
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".duckdb") + ".users.json")


def state_path(db_path: str | os.PathLike) -> Path:
    """Sign-in failures and revoked sessions, shared by every worker: `<db>.auth-state.json`
    beside the warehouse (where the dashboard also writes the audit trail)."""
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".duckdb") + ".auth-state.json")


def normalise_name(name: str) -> str:
    return (name or "").strip().lower()


def check_name(name: str) -> str:
    name = normalise_name(name)
    if not NAME_PATTERN.match(name):
        raise AuthError(
            f"user name {name!r} not allowed: 1 to 64 characters among a-z, 0-9, '.', '_', '@', "
            "'-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AuthError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """A scrypt hash with a random salt (werkzeug.security)."""
    return generate_password_hash(check_password(password), method="scrypt")


_DUMMY_HASH: list[str] = []


def verify_password(user: User | None, password: str) -> bool:
    """Does `password` open `user`? An unknown user costs the same time (a dummy hash is
    checked), so timing does not tell which user names exist."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_hex(16), method="scrypt"))
    if not password or len(password) > MAX_PASSWORD:
        password = "-"  # still spend the hash's time
    if user is None:
        check_password_hash(_DUMMY_HASH[0], password)
        return False
    return check_password_hash(user.password_hash, password)


def read_users(path: str | os.PathLike) -> dict[str, User]:
    """The users of the file at `path` by name (empty when the file does not exist)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuthError(f"cannot read the users file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise AuthError(f"the users file {path} is not valid JSON: {exc}") from exc
    entries = data.get("users") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise AuthError(f'the users file {path} has no "users" list')
    users = {}
    for entry in entries:
        try:
            user = User(str(entry["name"]), str(entry["role"]), str(entry["password_hash"]))
        except (KeyError, TypeError) as exc:
            raise AuthError(f"the users file {path} has an entry without {exc}") from exc
        if user.role not in ROLES:
            raise AuthError(f"the users file {path}: unknown role {user.role!r} of {user.name!r}")
        if not user.password_hash.startswith(("scrypt:", "pbkdf2:")):
            raise AuthError(f"the users file {path}: {user.name!r} has no password hash")
        users[normalise_name(user.name)] = user
    return users


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes for changing `path` (a lock on its folder: the file
    itself is replaced by each change)."""
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file renamed over it), mode 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_users(path: str | os.PathLike, users: dict[str, User]) -> None:
    entries = [
        {"name": u.name, "role": u.role, "password_hash": u.password_hash}
        for u in sorted(users.values(), key=lambda u: u.name)
    ]
    _write_private(Path(path), json.dumps({"users": entries}, indent=2) + "\n")


def change_users(path: str | os.PathLike, change) -> dict[str, User]:
    """Read, change (`change(users)` edits the dict in place) and write the users file, under
    a lock so that two commands at once do not lose one's change."""
    path = Path(path)
    if not path.parent.is_dir():
        raise AuthError(f"no folder {path.parent} for the users file")
    try:
        with _file_lock(path):
            users = read_users(path)
            change(users)
            write_users(path, users)
    except OSError as exc:
        raise AuthError(f"cannot write the users file {path}: {exc.strerror}") from exc
    return users


# --- settings ------------------------------------------------------------------------------


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise AuthError(f"{name} must be a number, got {value!r}") from exc
    if number <= 0:
        raise AuthError(f"{name} must be above 0, got {value!r}")
    return number


def _secret_from_env() -> str | None:
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if os.environ.get(SECRET_FILE_ENV):
        path = Path(os.environ[SECRET_FILE_ENV])
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise AuthError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    return None


@dataclass
class Security:
    """The access-control settings of one app (from the environment, see `configure`)."""

    db_path: Path
    mode: str
    users_file: Path
    secret_key: str
    secret_configured: bool
    users_at_start: int
    origins: frozenset[str] = frozenset()
    proxies: int = 0
    session_seconds: float = SESSION_HOURS * 3600
    idle_seconds: float = IDLE_MINUTES * 60
    _users_cache: tuple = field(default=(None, {}), repr=False)
    _users_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    state: AuthState | None = field(default=None, repr=False)

    @property
    def production(self) -> bool:
        return self.mode == "production"

    def users(self) -> dict[str, User] | None:
        """The users now (re-read when the file changes); None when the file is unreadable or
        invalid (then nobody may sign in: fail closed)."""
        try:
            st = os.stat(self.users_file)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            key = None
        except OSError:
            return None
        with self._users_lock:
            cached_key, cached = self._users_cache
            if key is not None and key == cached_key:
                return cached
            try:
                users = read_users(self.users_file) if key is not None else {}
            except AuthError as exc:
                log.error("%s: nobody can sign in until it is fixed", exc)
                users = None  # (said once per change of the file)
            self._users_cache = (key, users)
            return users

    def auth_required(self) -> bool:
        """Users configured when the app started, or now (adding users never opens anything;
        removing them all leaves a server that started with users closed)."""
        if self.users_at_start:
            return True
        users = self.users()
        return users is None or bool(users)


def configure(db_path: str | os.PathLike, mode: str | None = None) -> Security:
    """The access-control settings from the environment (README, "Access control").

    `mode`: development or production (None: $BENZO_MONITOR_ENV, else development). Production
    refuses to start without a secret key of at least 32 characters (raises AuthError).
    """
    mode = (mode or os.environ.get(MODE_ENV) or "development").strip().lower()
    if mode not in MODES:
        raise AuthError(f"{MODE_ENV} must be development or production, got {mode!r}")
    secret = _secret_from_env()
    if mode == "production":
        if not secret:
            raise AuthError(
                f"production mode ({MODE_ENV}=production) needs a secret key to sign sessions: "
                f"set {SECRET_ENV} (or {SECRET_FILE_ENV}) to a random text of at least "
                f"{MIN_SECRET} characters, the same for every worker, e.g. the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if len(secret) < MIN_SECRET:
            raise AuthError(
                f"the secret key ({SECRET_ENV}) is too short: at least {MIN_SECRET} characters"
            )
    users_file = users_path(db_path)
    users = read_users(users_file)
    try:
        proxies = int(os.environ.get(PROXIES_ENV) or 0)
    except ValueError as exc:
        raise AuthError(f"{PROXIES_ENV} must be a whole number of reverse proxies") from exc
    origins = set()
    for origin in (os.environ.get(ORIGINS_ENV) or "").replace(",", " ").split():
        netloc = urlsplit(origin if "//" in origin else f"//{origin}").netloc.lower()
        if netloc:
            origins.add(netloc)
    security = Security(
        db_path=Path(db_path),
        mode=mode,
        users_file=users_file,
        # Development: a random key per process (sessions end with it; gunicorn workers would
        # not share it, hence production's configured key).
        secret_key=secret or secrets.token_urlsafe(48),
        secret_configured=bool(secret),
        users_at_start=len(users),
        origins=frozenset(origins),
        proxies=proxies,
        session_seconds=_env_number(SESSION_HOURS_ENV, SESSION_HOURS) * 3600,
        idle_seconds=_env_number(IDLE_MINUTES_ENV, IDLE_MINUTES) * 60,
    )
    security.state = AuthState(state_path(db_path))
    return security


# --- shared state: sign-in failures and revoked sessions ------------------------------------


class AuthState:
    """Sign-in failures and revoked sessions in a small JSON file beside the warehouse, so that
    every gunicorn worker sees the same counters (this process's memory when the file cannot
    be written). Keys are hashed: an attempted user name is never stored as typed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._memory: dict | None = None
        self._cache: tuple = (None, {})

    @staticmethod
    def key(kind: str, value: str) -> str:
        return kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:24]

    def _load(self) -> dict:
        if self._memory is not None:
            return self._memory
        try:
            st = os.stat(self.path)
        except OSError:
            return {}
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._cache[0] == key:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        self._cache = (key, data)
        return data

    def _change(self, change) -> None:
        with self._lock:
            if self._memory is None:
                try:
                    with _file_lock(self.path):
                        self._cache = (None, {})
                        data = json.loads(json.dumps(self._load()))
                        change(data, time.time())
                        _write_private(self.path, json.dumps(data))
                    return
                except OSError as exc:
                    log.warning(
                        "sign-in state file %s not writable (%s): counters kept per process",
                        self.path,
                        exc.strerror,
                    )
                    self._memory = {}
            change(self._memory, time.time())

    def wait_seconds(self, limits: dict[str, int]) -> float:
        """Seconds until a sign-in may be tried again for these keys (0: now)."""
        now = time.time()
        failures = self._load().get("failures", {})
        wait = 0.0
        for key, limit in limits.items():
            recent = sorted(x for x in failures.get(key, []) if now - x < FAILURE_WINDOW)
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + FAILURE_WINDOW - now)
        return wait

    def add_failure(self, keys: list[str]) -> None:
        def change(data, now):
            failures = data.setdefault("failures", {})
            for key in keys:
                failures[key] = [x for x in failures.get(key, []) if now - x < FAILURE_WINDOW]
                failures[key].append(now)
            for key in [k for k, v in failures.items() if not v or now - max(v) >= FAILURE_WINDOW]:
                del failures[key]

        self._change(change)

    def clear(self, keys: list[str]) -> None:
        def change(data, _now):
            for key in keys:
                data.get("failures", {}).pop(key, None)

        if any(k in self._load().get("failures", {}) for k in keys):
            self._change(change)

    def revoke(self, session_id: str, until: float) -> None:
        def change(data, now):
            revoked = data.setdefault("revoked", {})
            revoked[session_id] = until
            for sid in [s for s, end in revoked.items() if end < now]:
                del revoked[sid]

        self._change(change)

    def revoked(self, session_id: str) -> bool:
        return session_id in self._load().get("revoked", {})


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
    return ("analyst", "publication") if analyst_view_allowed() else ("publication",)


def client_ip() -> str:
    return flask.request.remote_addr or "unknown"


_SIGNED_IN = object()


def _audit(event: str, user=_SIGNED_IN, **details) -> None:
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


def _audit_user() -> str | None:
    user = current_user()
    return user.name if user else None


def _json_error(status: int, message: str):
    response = flask.jsonify({"error": message})
    response.status_code = status
    return response


def _deny(status: int, reason: str, message: str):
    """Refuse the request (JSON, or plain text for a page) and record it in the audit trail."""
    _audit(
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


def _same_origin(sec: Security) -> bool:
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


def _token_ok(token: str | None) -> bool:
    expected = flask.session.get("csrf")
    return bool(token and expected) and hmac.compare_digest(str(token), str(expected))


def _csrf_token() -> str:
    if not flask.session.get("csrf"):
        flask.session["csrf"] = secrets.token_urlsafe(32)
    return flask.session["csrf"]


def _session_user(sec: Security) -> tuple[User | None, bool]:
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


def _lang_of(target: str) -> str:
    from urllib.parse import parse_qs

    return language((parse_qs(urlsplit(target).query).get("lang") or [None])[0])


def login_url(target: str, **flags) -> str:
    params = {"next": target, "lang": _lang_of(target), **{k: "1" for k, v in flags.items() if v}}
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
    from urllib.parse import parse_qs

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
    _audit(
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
        _audit(
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


def _guard(dash_app):
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    flask.g.benzo_user = None
    flask.g.benzo_callback = None
    is_callback = request.path.endswith("/_dash-update-component") and request.method == "POST"
    if not sec.auth_required():
        if not _local_request():
            return _deny(
                403,
                "local_mode",
                "local mode (no users configured): this dashboard answers this machine only; "
                "add users (benzo-monitor users add NAME --role analyst) to serve others",
            )
        if request.method == "POST" and not _same_origin(sec):
            return _deny(403, "cross_origin", "request from another site refused")
        if is_callback:
            flask.g.benzo_callback = _callback_info(request.get_json(silent=True))
            _audit_upload(flask.g.benzo_callback)
        return None
    if request.path in PUBLIC_PATHS:
        return None  # the sign-in and sign-out views check their own forms
    user, expired = _session_user(sec)
    if user is None:
        if expired:
            flask.session.clear()
        if request.method in ("GET", "HEAD") and _is_page(request.path):
            target = request.full_path if request.query_string else request.path
            return flask.redirect(login_url(target, expired=expired))
        return _deny(401, "no_session", "sign in first (/login)")
    flask.g.benzo_user = user
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not _same_origin(sec):
            return _deny(403, "cross_origin", "request from another site refused")
        if not _token_ok(request.headers.get(CSRF_HEADER)):
            return _deny(403, "csrf", "missing or wrong CSRF token: reload the page")
        if is_callback:  # (the body is read only now: never for a request without a session)
            info = flask.g.benzo_callback = _callback_info(request.get_json(silent=True))
            if user.role != "analyst" and info and _analyst_only(dash_app, info):
                return _deny(403, "role", f"not allowed for the {user.role} role")
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


def _headers(dash_app, response):
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


# --- sign-in and sign-out pages ------------------------------------------------------------

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
<input type="hidden" name="csrf_token" value="{esc(_csrf_token())}">
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


def _login():
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    next_path = _safe_next(request.values.get("next"))
    lang = language(request.values.get("lang") or _lang_of(next_path))
    if not sec.auth_required():
        return flask.redirect(next_path)
    if request.method == "GET":
        if _session_user(sec)[0] is not None:
            return flask.redirect(next_path)
        if request.args.get("expired"):
            return _login_page(lang, next_path, t("auth_expired", lang))
        if request.args.get("signed_out"):
            return _login_page(lang, next_path, t("auth_signed_out", lang))
        return _login_page(lang, next_path)
    if not _same_origin(sec) or not _token_ok(request.form.get("csrf_token")):
        _audit("access_denied", method="POST", path="/login", status=403, reason="csrf")
        return _login_page(lang, next_path, t("auth_form_expired", lang), 403)
    name = normalise_name(request.form.get("username", ""))[:64]
    password = request.form.get("password", "")
    ip = client_ip()
    keys = {
        AuthState.key("user", name): MAX_FAILURES_USER,
        AuthState.key("ip", ip): MAX_FAILURES_IP,
    }
    wait = sec.state.wait_seconds(keys)
    users = sec.users() or {}
    user = users.get(name)
    if wait > 0:
        _audit("login_failed", user=user.name if user else None, reason="throttled")
        response = _login_page(
            lang, next_path, t("auth_throttled", lang, minutes=max(1, round(wait / 60))), 429
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not verify_password(user, password):
        sec.state.add_failure(list(keys))
        reason = "wrong_password" if user else "unknown_user"
        _audit("login_failed", user=user.name if user else None, reason=reason)
        return _login_page(lang, next_path, t("auth_wrong", lang), 401)
    sec.state.clear([AuthState.key("user", name)])
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
    _audit("login", user=user.name, role=user.role)
    return flask.redirect(next_path)


def _logout():
    sec: Security = flask.current_app.config["BENZO_SECURITY"]
    request = flask.request
    lang = language(request.values.get("lang"))
    if not sec.auth_required():
        return flask.redirect("/")
    user, _ = _session_user(sec)
    if user is None:
        flask.session.clear()
        return flask.redirect(f"/login?{urlencode({'lang': lang})}")
    if request.method == "GET":  # no change on a GET: a page with the sign-out button
        esc = html_text.escape
        form = f"""<p>{esc(t("auth_sign_out_question", lang))}</p>
<form method="post" action="/logout" id="logout-form">
<input type="hidden" name="csrf_token" value="{esc(_csrf_token())}">
<input type="hidden" name="lang" value="{esc(lang)}">
<button type="submit" id="logout-submit">{esc(t("auth_sign_out", lang))}</button>
</form>"""
        page = _page(lang, t("auth_sign_out", lang), form, next_path="/")
        return flask.Response(page, mimetype="text/html")
    token = request.form.get("csrf_token") or request.headers.get(CSRF_HEADER)
    if not _same_origin(sec) or not _token_ok(token):
        flask.g.benzo_user = user
        return _deny(403, "csrf", "missing or wrong CSRF token: reload the page")
    session = flask.session
    sec.state.revoke(
        str(session.get("sid", "")), float(session.get("login_at", 0)) + sec.session_seconds
    )
    _audit("logout", user=user.name, role=user.role)
    session.clear()
    response = flask.redirect(f"/login?{urlencode({'lang': lang, 'signed_out': '1'})}")
    response.delete_cookie(CSRF_COOKIE)
    return response


def user_badge(lang: str):
    """The shell's signed-in user, role and sign-out button (None in local mode)."""
    from dash import dcc, html

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
            dcc.Input(type="hidden", name="csrf_token", value=_csrf_token(), id="app-logout-token"),
            dcc.Input(type="hidden", name="lang", value=lang, id="app-logout-lang"),
            html.Button(t("auth_sign_out", lang), type="submit", id="app-logout"),
        ],
        action="/logout",
        method="POST",
        id="app-logout-form",
        style={"display": "flex", "gap": "0.5rem", "alignItems": "center", "margin": 0},
    )


# --- installing it on an app ---------------------------------------------------------------


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
        # The largest upload (dashboard/pages/data.py, 200 MB) as base64 in a callback's JSON.
        MAX_CONTENT_LENGTH=300 * 1024 * 1024,
    )
    if sec.proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(
            server.wsgi_app, x_for=sec.proxies, x_proto=sec.proxies, x_host=sec.proxies
        )
    server.before_request(lambda: _guard(dash_app))
    server.after_request(lambda response: _headers(dash_app, response))
    server.add_url_rule("/login", "benzo_login", _login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "benzo_logout", _logout, methods=["GET", "POST"])
    audit.set_user_provider(_audit_user)


# --- `benzo-monitor users` -----------------------------------------------------------------
