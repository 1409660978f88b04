"""The stale-snapshot banner (issue 19, item 9).

Pages read the snapshot the last load published (etl/base/publish.py). A load or an unload
that committed and was then stopped before publishing (killed, a full disk) leaves the
warehouse newer than that snapshot, and the pages would show the old figures without a word
until the next publication. The shell shows this banner meanwhile.

The test (`etl.base.publish.snapshot_behind`) opens the warehouse read-only for a moment, and
only when one of its files changed after the snapshot was written; its answer is kept until
one of them (or the snapshot) changes again, so pages cost a few `stat` calls.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dash import html

from etl.base.i18n import fmt_datetime, t
from etl.base.publish import current_snapshot_path, snapshot_behind

_LOCK = threading.Lock()
_ANSWERS: dict[str, tuple[tuple, bool]] = {}  # warehouse -> (its files' state, behind?)


def _files_state(db_path: Path) -> tuple:
    """What changes when the warehouse or its current snapshot changes."""
    state = [str(current_snapshot_path(db_path))]
    for path in (db_path, Path(f"{db_path}.wal")):
        try:
            info = os.stat(path)
            state.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            state.append(None)
    return tuple(state)


def is_behind(db_path: str | os.PathLike) -> bool:
    """Does the warehouse hold other loads than the published snapshot? (False when it
    cannot tell now: a load is writing it, and will publish when it ends.)"""
    db_path = Path(db_path)
    key = str(db_path)
    state = _files_state(db_path)
    with _LOCK:
        known = _ANSWERS.get(key)
        if known and known[0] == state:
            return known[1]
    answer = snapshot_behind(db_path)
    if answer is None:
        return False
    with _LOCK:
        _ANSWERS[key] = (state, answer)
    return answer


def stale_banner(warehouse, lang: str):
    """The banner for the pages of `warehouse` (dashboard.data.Warehouse), or None."""
    snap = warehouse.snapshot()
    if snap is None or not is_behind(warehouse.db_path):
        return None
    return html.Div(
        t("app_stale_snapshot", lang, published=fmt_datetime(snap.published_at, lang)),
        id="app-stale-banner",
        className="stale-banner",
        role="status",
    )
