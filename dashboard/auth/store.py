"""The users file: users and roles, password hashing and checks, user name checks, and the
file lock and private writes that the sign-in state file (throttle.py) uses too.

Users live in a JSON file beside the warehouse (`<db>.users.json`, or `$BENZO_MONITOR_USERS`),
managed with `benzo-monitor users` (etl/cli/serve.py); passwords are stored as scrypt hashes
(werkzeug.security), never in plain. `AuthError` is here, at the bottom of the package, since
every part of access control raises it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

ROLES = ("analyst", "reviewer")
USERS_ENV = "BENZO_MONITOR_USERS"

MIN_PASSWORD = 10
MAX_PASSWORD = 1024

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class AuthError(Exception):
    """Access control cannot be set up or changed; the message says why in plain words."""


@dataclass(frozen=True)
class User:
    """One entry of the users file; the password only as its hash."""

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


def normalise_name(name: str) -> str:
    """A user name as the users file keys it (trimmed, lower case)."""
    return (name or "").strip().lower()


def check_name(name: str) -> str:
    """The normalised name, if allowed for a new user (raises AuthError otherwise)."""
    name = normalise_name(name)
    if not NAME_PATTERN.match(name):
        raise AuthError(
            f"user name {name!r} not allowed: 1 to 64 characters among a-z, 0-9, '.', '_', '@', "
            "'-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """The password, if long enough and not too long (raises AuthError otherwise)."""
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
def file_lock(path: Path):
    """An exclusive lock between processes for changing `path` (a lock on its folder: the file
    itself is replaced by each change)."""
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_private(path: Path, text: str) -> None:
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
    """Write the users file (sorted by name, mode 0600); `change_users` is the locked way."""
    entries = [
        {"name": u.name, "role": u.role, "password_hash": u.password_hash}
        for u in sorted(users.values(), key=lambda u: u.name)
    ]
    write_private(Path(path), json.dumps({"users": entries}, indent=2) + "\n")


def change_users(path: str | os.PathLike, change) -> dict[str, User]:
    """Read, change (`change(users)` edits the dict in place) and write the users file, under
    a lock so that two commands at once do not lose one's change."""
    path = Path(path)
    if not path.parent.is_dir():
        raise AuthError(f"no folder {path.parent} for the users file")
    try:
        with file_lock(path):
            users = read_users(path)
            change(users)
            write_users(path, users)
    except OSError as exc:
        raise AuthError(f"cannot write the users file {path}: {exc.strerror}") from exc
    return users
