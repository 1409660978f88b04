"""Sign-in throttling and revoked sessions, shared by every worker through a small state file
beside the warehouse (`<db>.auth-state.json`).

5 failed sign-ins for a user name, or 20 from one client address, within 15 minutes refuse
further attempts (429, login.py) until the oldest failure is 15 minutes old. Sign-out records
the session here so that every worker refuses it (guard.py).
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
MAX_FAILURES_USER = 5
MAX_FAILURES_IP = 20  # higher: colleagues behind one office address share it


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

    def _change(self, change) -> None:
        with self._lock:
            if self._memory is None:
                try:
                    with file_lock(self.path):
                        self._cache = (None, {})
                        data = json.loads(json.dumps(self._load()))
                        change(data, time.time())
                        write_private(self.path, json.dumps(data))
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
