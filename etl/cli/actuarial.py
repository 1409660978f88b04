"""`benzo-monitor nowcast` and `budget`: the actuarial review (SPEC §15).

Both read the figures of every vintage (etl.nowcast.vintage_history: every vintage in one pass
of the views, a few seconds on a national warehouse), then print the document of SPEC §10.
"""

from __future__ import annotations

import datetime as dt

from etl import nowcast
from etl.base.config import Config
from etl.base.errors import UserError
from etl.cli.terminal import write_text
from etl.exports import csv_text
from etl.outputs import report


def _history(args, config: Config) -> tuple[nowcast.VintageHistory, dt.date]:
    """The vintages up to --as-of (default: the end of the latest billing month loaded)."""
    con = report.open_warehouse(args.db, config, None)
    try:
        bounds = nowcast.data_bounds(con)
        if bounds is None:
            raise UserError("the warehouse holds no billing lines yet")
        first, last = bounds
        as_of = args.as_of or nowcast.month_end(last)
        upto = min(nowcast.vintage_month(as_of), last)
        if upto < first:
            raise UserError(f"no line was known on {as_of.isoformat()}")
        return nowcast.vintage_history(con, config, first, upto), as_of
    finally:
        con.close()


def run_nowcast(args, config: Config) -> int:
    """`benzo-monitor nowcast`: provisional months, nowcast with intervals, and backtest."""
    history, as_of = _history(args, config)
    doc = nowcast.nowcast_document(history, as_of, config)
    if not args.no_suppress:
        doc = nowcast.disclose_nowcast(doc, config.suppression_threshold)
    if args.format == "json":
        text = report.to_json(doc)
    else:
        text = csv_text(*nowcast.nowcast_csv_rows(doc))
    write_text(args.output, text)
    return 0


def run_budget(args, config: Config) -> int:
    """`benzo-monitor budget`: the year's fees against the budget, projection and backtest."""
    history, as_of = _history(args, config)
    year = args.year or as_of.year
    doc = nowcast.budget_document(history, year, as_of, config)
    if args.format == "json":
        text = report.to_json(doc)
    else:
        text = csv_text(*nowcast.budget_csv_rows(doc))
    write_text(args.output, text)
    return 0
