"""The access-control settings of one app, from the environment (README, "Access control"):
development or production mode, the secret key that signs sessions, the allowed origins, the
number of reverse proxies, the session and idle limits; `Security` holds them with the users
file and the sign-in state (`configure` builds it).

Sessions are Flask's signed cookie, 8 hours at most and 30 minutes idle by default.
Production refuses to start without a secret key of at least 32 characters.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dashboard.auth.store import AuthError, User, read_users, users_path
from dashboard.auth.throttle import AuthState, state_path

log = logging.getLogger(__name__)

SECRET_ENV = "BENZO_MONITOR_SECRET_KEY"
SECRET_FILE_ENV = "BENZO_MONITOR_SECRET_KEY_FILE"
MODE_ENV = "BENZO_MONITOR_ENV"
ORIGINS_ENV = "BENZO_MONITOR_ORIGINS"
PROXIES_ENV = "BENZO_MONITOR_PROXIES"
SESSION_HOURS_ENV = "BENZO_MONITOR_SESSION_HOURS"
IDLE_MINUTES_ENV = "BENZO_MONITOR_IDLE_MINUTES"
MODES = ("development", "production")

MIN_SECRET = 32
SESSION_HOURS = 8.0
IDLE_MINUTES = 30.0


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
