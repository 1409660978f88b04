"""The actuarial review's figures for the pages (SPEC §15), computed once per published snapshot.

etl.nowcast reads mart_vintage_figures at the vintage ending each month of data (the views once
per month): far too slow for a callback (about a minute on a national warehouse). Here the
vintage history and the nowcast document (and, on demand, the budget documents) are computed
once per snapshot and nowcast date, in a background thread started by the first request, on a
cursor of their own over that snapshot (Warehouse.with_cursor: the views, never the published
tables, with the configuration in force), and kept until newer snapshots replace them — like
the marts' cache of dashboard/data.py. Only etl.nowcast's public functions are used, so the
figures are those of `benzo-monitor nowcast` and `budget`.

The nowcast date: the page's as-of date when the URL gives one, else the end of the latest
billing month loaded (the default of `benzo-monitor nowcast`), so that the last month's lines
count as known. A month the vintage does not reach (an as-of date's own month, before its last
day) has no nowcast: the pages show it shaded and marked provisional, nothing more.
"""

from __future__ import annotations

import atexit
import datetime as dt
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from dashboard.data import Warehouse
from etl import nowcast
from etl.base.warehouse import apply_settings

CACHE_ENTRIES = 4  # (snapshot, nowcast date) pairs kept


@dataclass
class Review:
    """The actuarial review of one snapshot on one nowcast date."""

    as_of: dt.date
    history: nowcast.VintageHistory
    document: dict  # nowcast.nowcast_document, exact figures
    history_months: int  # nowcast_history_months in force
    budgets: dict[int, dict] = field(default_factory=dict)  # year -> budget_document

    def vintage(self) -> int:
        """The month number of the vintage the nowcast reads."""
        return min(nowcast.vintage_month(self.as_of), self.history.last)

    def years(self) -> list[int]:
        """The years with a delivery month up to the vintage, latest first."""
        return list(range(self.vintage() // 12, self.history.first // 12 - 1, -1))


PENDING = "pending"  # review(): still being computed


@dataclass
class _Job:
    """One computation of a review, in a thread of its own."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Review | None = None
    error: BaseException | None = None


_jobs: OrderedDict[tuple, _Job] = OrderedDict()
_lock = threading.Lock()


def review(wh: Warehouse, as_of: dt.date | None, wait: float | None = None):
    """The review of the current snapshot on `as_of` (None: the end of the latest billing
    month): a Review; None before any data or when no line was known on `as_of`; PENDING
    while it is still being computed.

    The first request for a snapshot and date starts the computation in a background thread
    (a national warehouse takes about a minute: one pass of the views per month of data) and
    waits for it up to `wait` seconds (None: until it is done); later requests wait only with
    `wait` None, so pages stay quick while it runs. One computation runs at a time (each uses
    every core DuckDB has); a page that cannot wait shows what it has and asks again later.
    """
    snap = wh.snapshot()
    if snap is None:
        return None
    key = (id(wh), snap.path, as_of)
    with _lock:
        job = _jobs.get(key)
        started = job is None
        if started:
            job = _jobs[key] = _Job()
            threading.Thread(target=_run, args=(job, wh, as_of, snap.path), daemon=True).start()
            stale = [k for k, j in _jobs.items() if j.done.is_set() and k != key]
            for old in stale[: max(0, len(_jobs) - CACHE_ENTRIES)]:
                del _jobs[old]
        _jobs.move_to_end(key)
    if not job.done.wait(wait if started or wait is None else 0):
        return PENDING
    if job.error is not None:
        raise job.error
    return job.result


_running = threading.Lock()  # one computation at a time
_cursors: list = []  # the cursor of the computation under way
_stopping = threading.Event()  # set when the process exits
EXIT_WAIT = 5  # seconds a process that exits gives a computation to stop (within a server's stop)


@atexit.register
def _finish() -> None:
    """Stop a computation under way before the interpreter kills its thread (DuckDB aborts
    the process when a thread is killed inside a query): its queries are interrupted, and
    the exit does not wait for the whole review (a server's worker must stop quickly)."""
    _stopping.set()  # computations still queued will not start
    deadline = time.monotonic() + EXIT_WAIT
    while _running.locked() and time.monotonic() < deadline:
        for cursor in list(_cursors):
            cursor.interrupt()
        time.sleep(0.05)


def _run(job: _Job, wh: Warehouse, as_of: dt.date | None, snapshot) -> None:
    def work(cursor):
        _cursors.append(cursor)
        try:
            return _compute(cursor, wh, as_of, snapshot)
        finally:
            _cursors.remove(cursor)

    try:
        with _running:
            if not _stopping.is_set():
                job.result = wh.with_cursor(work)
    except BaseException as exc:  # handed to the page that asks (review())
        job.error = exc
    finally:
        job.done.set()


# The vintage history of each snapshot, computed once (a pass of the views over every month of
# data) and cut for each nowcast date (VintageHistory.up_to: the figures at a vintage do not
# depend on later vintages), so a new as-of date costs the nowcast document only.
_histories: OrderedDict[tuple, nowcast.VintageHistory] = OrderedDict()
HISTORIES_KEPT = 2  # snapshots whose history is kept (the current one and the one before)


def _compute(cursor, wh: Warehouse, as_of: dt.date | None, snapshot=None) -> Review | None:
    apply_settings(cursor, wh.config)
    bounds = nowcast.data_bounds(cursor)
    if bounds is None:
        return None
    first, last = bounds
    as_of = as_of or nowcast.month_end(last)
    upto = min(nowcast.vintage_month(as_of), last)
    if upto < first:
        return None
    key = (id(wh), snapshot, first, last)
    whole = _histories.get(key)
    if whole is None:
        whole = nowcast.vintage_history(cursor, wh.config, first, last)
        _histories[key] = whole
        while len(_histories) > HISTORIES_KEPT:
            _histories.popitem(last=False)
    history = whole.up_to(upto)
    document = nowcast.nowcast_document(history, as_of, wh.config)
    return Review(as_of, history, document, wh.config.nowcast_history_months)


_budget_lock = threading.Lock()


def budget(wh: Warehouse, found: Review, year: int) -> dict:
    """The budget document of `year` (etl.nowcast.budget_document) on the review's date,
    computed once per review."""
    with _budget_lock:
        if year not in found.budgets:
            found.budgets[year] = nowcast.budget_document(
                found.history, year, found.as_of, wh.config
            )
        return found.budgets[year]


def nowcasts(found, threshold: int | None = None) -> dict[tuple, dict]:
    """The nowcast rows by (month, metric, scheme) of a review (none when it is None or
    PENDING); with a `threshold`, after SPEC §9 (etl.nowcast.disclose_nowcast, as every
    export)."""
    if not isinstance(found, Review):
        return {}
    doc = found.document
    if threshold is not None:
        doc = nowcast.disclose_nowcast(doc, threshold)
    return {(r["month"], r["metric"], r["scheme"]): r for r in doc["months"]}


def completion_factors(found: Review, metric: str, scheme: str) -> list[dict]:
    """Per lag k of a provisional month (0 up to the vintage minus the last complete month,
    exclusive): the share of their final figure the history months had reached at lag k
    (chain ladder, see etl.nowcast: the figures summed over the months) and the completion
    factor 1 / share."""
    vintage = found.vintage()
    _, _, final = nowcast.nowcast_as_of(found.history, found.as_of, found.history_months)
    rows = []
    for lag in range(vintage - max(final) if final else 0):
        cast = nowcast.nowcast_month(found.history, vintage - lag, scheme, metric, vintage, final)
        share = cast.share_known
        rows.append(
            {
                "lag": lag,
                "share_known": None if share is None else round(share, 4),
                "factor": None if not share else round(1 / share, 4),
            }
        )
    return rows
