"""Sign-in throttling and revoked sessions, shared by every worker through a small state file
beside the warehouse (`<db>.auth-state.json`).

5 failed sign-ins for one user name from one client address within 15 minutes refuse further
attempts for that name from that address (429, login.py) until the oldest failure is 15 minutes
old: the owner's right password still opens from another address, and guesses at many names
from one address lock no one out (issue 19). On top, at most 30 failed sign-ins a minute on the
whole site, whatever the names and addresses: beyond it, every attempt waits (at most a minute)
— this bounds guessing from many addresses without locking anyone out for long. An attempt is
counted (reserved) under one lock before its password is checked, so simultaneous attempts
check at most the allowed number; a right password gives its reservation back. Sign-out
records the session here so that every worker refuses it (guard.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from dashboard.auth.store import file_lock, write_private

log = logging.getLogger(__name__)

FAILURE_WINDOW = 15 * 60  # seconds
MAX_FAILURES_PAIR = 5  # per (user name, client address) within FAILURE_WINDOW
SITE_WINDOW = 60  # seconds
MAX_FAILURES_SITE = 30  # per SITE_WINDOW, every name and address together
SITE_KEY = "site"


def state_path(db_path: str | os.PathLike) -> Path:
    """Sign-in failures and revoked sessions, shared by every worker: `<db>.auth-state.json`
    beside the warehouse (where the dashboard also writes the audit trail)."""
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".duckdb") + ".auth-state.json")


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
        """The state's key for a user name or an address (hashed, never as typed)."""
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

    def _change(self, change):
        with self._lock:
            if self._memory is None:
                try:
                    with file_lock(self.path):
                        self._cache = (None, {})
                        data = json.loads(json.dumps(self._load()))
                        result = change(data, time.time())
                        write_private(self.path, json.dumps(data))
                    return result
                except OSError as exc:
                    log.warning(
                        "sign-in state file %s not writable (%s): counters kept per process",
                        self.path,
                        exc.strerror,
                    )
                    self._memory = {}
            return change(self._memory, time.time())

    @staticmethod
    def limits(name: str, address: str) -> dict[str, tuple[int, float]]:
        """The counters a sign-in attempt for `name` from `address` goes through, each with
        its limit and window in seconds: the (name, address) pair and the whole site."""
        return {
            AuthState.key("pair", f"{name}\n{address}"): (MAX_FAILURES_PAIR, FAILURE_WINDOW),
            SITE_KEY: (MAX_FAILURES_SITE, SITE_WINDOW),
        }

    def reserve(self, limits: dict[str, tuple[int, float]]) -> tuple[float, float]:
        """Count one attempt against every counter of `limits`, atomically, before its
        password is checked: (0, the attempt's stamp) when every counter is under its limit,
        else (seconds to wait, 0) and nothing counted. A right password then gives the
        reservation back (`succeeded`); a wrong one leaves it as a failure."""

        def change(data, now):
            failures = data.setdefault("failures", {})
            wait = 0.0
            for key, (limit, window) in limits.items():
                recent = sorted(x for x in failures.get(key, []) if now - x < window)
                if len(recent) >= limit:
                    wait = max(wait, recent[-limit] + window - now)
            if wait > 0:
                return wait, 0.0
            for key, (_limit, window) in limits.items():
                failures[key] = [x for x in failures.get(key, []) if now - x < window] + [now]
            for key in [k for k, v in failures.items() if not v or now - max(v) >= FAILURE_WINDOW]:
                del failures[key]
            return 0.0, now

        return self._change(change)

    def succeeded(self, limits: dict[str, tuple[int, float]], stamp: float) -> None:
        """A right password: forget the failures of its (name, address) pair and give the
        attempt's reservation on the site's counter back."""

        def change(data, _now):
            failures = data.get("failures", {})
            for key in limits:
                if key == SITE_KEY:
                    stamps = failures.get(key, [])
                    if stamp in stamps:
                        stamps.remove(stamp)
                else:
                    failures.pop(key, None)

        self._change(change)

    def revoke(self, session_id: str, until: float) -> None:
        """Record that the session `session_id` is signed out (until its natural end)."""

        def change(data, now):
            revoked = data.setdefault("revoked", {})
            revoked[session_id] = until
            for sid in [s for s, end in revoked.items() if end < now]:
                del revoked[sid]

        self._change(change)

    def revoked(self, session_id: str) -> bool:
        """Has the session `session_id` been signed out?"""
        return session_id in self._load().get("revoked", {})
