"""The audit trail: who loaded, issued, signed in, uploaded or downloaded what, and when.

One JSON object a line in `<db>.audit.jsonl` beside the warehouse (or `$BENZO_MONITOR_AUDIT`):
a file and not a warehouse table, because the dashboard may not open the warehouse while a
load runs and every event must still be written. Each line is appended with one `write` on a
file opened with O_APPEND, so several processes (the CLI, gunicorn workers) can append at the
same time without mixing their lines.

A line holds `time` (UTC, ISO 8601), `event`, `user` (the OS user for the command line, the
signed-in user for the dashboard) and non-identifying details only. The detail keys are a
closed list (`DETAIL_KEYS`): no key can carry a patient or pharmacy pseudonym, a raw value or
a loader message (a refused file's message may quote its header row, which in a file without
one is a row of data), only file names, hashes, counts, ids, months and roles.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

AUDIT_ENV = "BENZO_MONITOR_AUDIT"
EVENTS = (
    "load",
    "load_refused",
    "report_issued",
    "login",
    "login_failed",
    "logout",
    "upload",
    "download",
    "access_denied",
    "user_added",
    "user_removed",
    "password_changed",
    "unload",  # benzo-monitor unload (etl/ingest/unload.py)
    "unload_refused",
)
# Everything a line may say besides time, event and user (see the module docstring).
DETAIL_KEYS = frozenset(
    {
        "file", "sha256", "bytes", "format", "rows_read", "rows_new", "rows_present",
        "rows_skipped", "rows_rejected", "load_id", "seconds", "reason", "report_id", "month",
        "as_of", "lang", "suppressed", "content_sha256", "role", "ip", "method", "path",
        "status", "component", "view", "name", "rows_bzra",
    }
)  # fmt: skip
MAX_TEXT = 200
log = logging.getLogger(__name__)

# Who acts, when the caller does not say: set by the dashboard (the signed-in user).
NOBODY = "\x00nobody"  # pass as `user` for an event of nobody signed in (written as null)
_user_provider: Callable[[], str | None] | None = None


class AuditError(RuntimeError):
    """The audit trail cannot be read; the message says why."""


def audit_path(db_path: str | os.PathLike) -> Path:
    """`$BENZO_MONITOR_AUDIT`, or `<db>.audit.jsonl` beside the warehouse."""
    if os.environ.get(AUDIT_ENV):
        return Path(os.environ[AUDIT_ENV])
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".duckdb") + ".audit.jsonl")


def os_user() -> str | None:
    """The login name of the process (None in containers without one)."""
    try:
        return getpass.getuser()
    except Exception:
        return None


def set_user_provider(provider: Callable[[], str | None] | None) -> None:
    """Let the dashboard name the signed-in user of the current request (None: the OS user)."""
    global _user_provider
    _user_provider = provider


def current_user() -> str | None:
    if _user_provider is not None:
        user = _user_provider()
        if user:
            return user
    return os_user()


def _clean(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def record(db_path: str | os.PathLike | None, event: str, *, user: str | None = None, **details):
    """Append one event; returns the line written as a dict (None when nothing was written).

    `user` None: the current user (`current_user`); `NOBODY`: nobody (null in the file).

    An unknown event or detail key is a programming error (ValueError). A file that cannot be
    written does not stop the action being audited: the reason goes to stderr and the log.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    unknown = set(details) - DETAIL_KEYS
    if unknown:
        raise ValueError(f"audit details not allowed: {sorted(unknown)}")
    if db_path is None and not os.environ.get(AUDIT_ENV):
        return None
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        "user": None if user == NOBODY else _clean(user if user is not None else current_user()),
        **{key: _clean(value) for key, value in details.items()},
    }
    line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    path = audit_path(db_path or "")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write per line: appends from several processes never mix
        finally:
            os.close(fd)
    except OSError as exc:
        message = f"audit trail {path} not written ({exc.strerror}): {event}"
        log.warning(message)
        print(f"warning: {message}", file=sys.stderr)
        return None
    return entry


# --- the loader's events -------------------------------------------------------------------


def _sha256(path: Path) -> str | None:
    # Only a regular file is hashed: reading a refused FIFO waits forever for a writer and
    # /dev/zero never ends, with the warehouse locked meanwhile (issue 19).
    try:
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


# A refused file's reason as a word (its message may quote the file's content: never logged).
REFUSAL_REASONS = (
    ("national register", "not_pseudonymised"),
    ("required column", "required_column_missing"),
    ("no data rows", "empty"),
    ("has no rows", "empty"),
    ("is empty", "empty"),
    ("no such file", "not_found"),
    ("not a file", "not_found"),
    ("utf-16", "unreadable"),
    ("binary content", "unreadable"),
    ("no sheet", "unreadable"),
    ("cannot be read", "unreadable"),
    ("not a readable", "unreadable"),
)


def refusal_reason(message: str) -> str:
    """A refusal message as one of a few fixed words (never the message itself)."""
    text = message.lower()
    return next((word for key, word in REFUSAL_REASONS if key in text), "refused")


def database_file(con) -> Path | None:
    """The file of a DuckDB connection's main database (None in memory)."""
    try:
        (path,) = con.execute(
            "select path from duckdb_databases() where database_name = current_database()"
        ).fetchone()
    except Exception:
        return None
    return Path(path) if path else None


def record_load(con, outcome) -> None:
    """The `load` or `load_refused` event of one file's outcome (etl.ingest.load.FileOutcome)."""
    db = database_file(con)
    if db is None:
        return
    s = outcome.summary
    if s is None:
        path = Path(outcome.path)
        record(
            db,
            "load_refused",
            file=path.name,
            sha256=_sha256(path),
            reason=refusal_reason(outcome.refused or ""),
        )
        return
    record(
        db, "load", file=s.file_name, sha256=s.file_sha256, format=s.file_format,
        rows_read=s.rows_read, rows_new=s.rows_new, rows_present=s.rows_present,
        rows_skipped=s.rows_skipped, rows_rejected=s.rows_rejected, load_id=s.load_id,
        seconds=round(s.seconds, 2),
    )  # fmt: skip


# --- reading it back -----------------------------------------------------------------------


def read_events(db_path: str | os.PathLike, limit: int | None = None) -> tuple[list[dict], int]:
    """(the latest `limit` events, oldest first; the number of unreadable lines skipped)."""
    path = audit_path(db_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise AuditError(f"cannot read the audit trail {path}: {exc.strerror}") from exc
    events, bad = [], 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            bad += 1  # e.g. a line cut by a full disk
            continue
        if isinstance(entry, dict):
            events.append(entry)
        else:
            bad += 1
    if limit is not None:
        events = events[-limit:] if limit > 0 else []
    return events, bad


AUDIT_COLUMNS = ["time", "event", "user", "details"]


def describe(entry: dict) -> str:
    """An event's details as `key=value` words, for a table."""
    return " ".join(
        f"{key}={value}"
        for key, value in entry.items()
        if key not in ("time", "event", "user") and value is not None
    )
