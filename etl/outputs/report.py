"""The machine-readable exports of SPEC §10: `report`, `cohorts` and `compliance`.

Every figure comes from a mart (sql/marts/); this module only selects, applies disclosure
control (SPEC §9) and writes JSON or CSV. Which figures are counts, rates or amounts, and which
column holds a rate's denominator, is read from the metric registry (etl/base/registry.py).

JSON and CSV layouts (documented in docs/methodology.md, "Exports"):
- report: {"month", "as_of", "provisional", "schemes": {"5", "7", "10", "total"}, "unassigned"}
- cohorts: {"as_of", "cohorts": [...]} sorted by initiation month, then scheme 5, 7, 10
- compliance: {"as_of", "rules": {"R01".."R18"}, "findings": [...]}
A suppressed count is the string "<5" (with the configured threshold); a suppressed rate is
null; amounts (fees) are never suppressed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import duckdb

from etl.base import publish, warehouse
from etl.base.config import Config
from etl.base.disclosure import Disclosure
from etl.base.errors import UserError, first_line
from etl.base.registry import load_registry
from etl.exports import spreadsheet_safe

CONTRACT_GROUP = "state_of_play"  # SPEC §6 metrics: the keys of each scheme in the JSON
SPLIT_GROUP = "reduction_split"  # the 10/20/30-capsule split, an extra key
SPLIT_KEY = "reduction_steps_by_capsules"
UNASSIGNED_KEYS = (
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
    "fees_estimated_eur",
)
# SPEC §10: the compliance counts include R16-R18 (SPEC §14), which need BZRA deliveries; the
# warehouse holds none yet, so their counts are null ("not observable"), never 0.
NOT_OBSERVABLE_RULES = ("R16", "R17", "R18")
FINDING_KEYS = (
    "rule",
    "severity",
    "programme_id",
    "patient_id",
    "pharmacy_id",
    "delivery_date",
    "cnk",
    "kind",
    "detail",
)


# --- opening the warehouse ----------------------------------------------------------------


def open_warehouse(
    db_path: Path | None, config: Config, as_of: dt.date | None
) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only, with the settings and the as-of date applied.

    Views written by an older version of sql/ are refreshed first (a short writable open).
    Raises UserError when there is no warehouse, it is locked, or it holds no billing lines.
    """
    path = Path(db_path) if db_path else warehouse.default_db_path()
    try:
        con = warehouse.connect(path, read_only=True, config=config)
        if not warehouse.views_current(con):
            con.close()
            warehouse.connect(path).close()  # ensure_schema rewrites the views
            con = warehouse.connect(path, read_only=True, config=config)
    except warehouse.WarehouseError as exc:
        raise UserError(str(exc)) from exc
    except duckdb.Error as exc:
        raise UserError(f"the warehouse {path} cannot be read: {first_line(exc)}") from exc
    (n_lines,) = con.execute("select count(*) from billing_lines").fetchone()
    if n_lines == 0:
        con.close()
        raise UserError(
            f"the warehouse {path} holds no billing lines yet: load an export first "
            "(benzo-monitor load FILE)"
        )
    warehouse.set_as_of(con, as_of)
    return con


def _as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    (as_of,) = con.execute("select as_of_date from stg_settings").fetchone()
    return as_of


# --- the three documents ------------------------------------------------------------------


def set_report_month(con: duckdb.DuckDBPyConnection, month: str) -> None:
    """Make the month spine of the views reach `month` (YYYY-MM), the month reported."""
    month_start = dt.datetime.strptime(month, "%Y-%m").date()
    con.execute("set variable report_month = ?::date", [month_start])


def state_of_play(
    con: duckdb.DuckDBPyConnection,
    month: str,
    disclosure: Disclosure,
    rows: list[dict] | None = None,
) -> dict:
    """SPEC §6 for `month` (YYYY-MM): the JSON document of `benzo-monitor report`.

    `rows`: the month's rows of mart_state_of_play when the caller has read them already
    (after `set_report_month`), in scheme order.
    """
    set_report_month(con, month)
    registry = load_registry()
    contract = registry.group(CONTRACT_GROUP)
    split = registry.group(SPLIT_GROUP)
    if rows is None:
        rows = warehouse.dict_rows(
            con, "select * from mart_state_of_play where month = ? order by scheme_order", [month]
        )
    (unassigned,) = warehouse.dict_rows(
        con, "select * from mart_unassigned_by_month where month = ?", [month]
    )
    schemes = {}
    for row in rows:
        figures = {m.id: disclosure.metric(m, row) for m in contract}
        figures[SPLIT_KEY] = {str(m.capsules): disclosure.metric(m, row) for m in split}
        schemes[row["scheme"]] = figures
    unassigned_figures = {
        key: disclosure.metric(registry.metric(key), unassigned) for key in UNASSIGNED_KEYS
    }
    unassigned_figures[SPLIT_KEY] = {
        str(m.capsules): disclosure.metric(m, unassigned) for m in split
    }
    return {
        "month": month,
        "as_of": rows[0]["as_of_date"].isoformat(),
        "provisional": bool(rows[0]["is_provisional"]),
        "schemes": schemes,
        "unassigned": unassigned_figures,
    }


def cohorts(con: duckdb.DuckDBPyConnection, disclosure: Disclosure) -> dict:
    """SPEC §7: the JSON document of `benzo-monitor cohorts`."""
    metrics = load_registry().group("cohorts")
    rows = warehouse.dict_rows(con, "select * from mart_cohorts order by start_month_date, scheme")
    return {
        "as_of": _as_of(con).isoformat(),
        "cohorts": [
            {
                "initiation_month": row["initiation_month"],
                "scheme": str(row["scheme"]),
                **{m.id: disclosure.metric(m, row) for m in metrics},
            }
            for row in rows
        ],
    }


def compliance_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Flagged events per rule id (rules without a finding are absent)."""
    return dict(
        con.execute(
            "select rule_id, count(*) from mart_compliance_findings group by rule_id"
        ).fetchall()
    )


def compliance(con: duckdb.DuckDBPyConnection, disclosure: Disclosure) -> dict:
    """SPEC §8: the JSON document of `benzo-monitor compliance`.

    Counts per rule go through disclosure control; the findings are the analysts' work list
    (pseudonymised identifiers, no figures) and are listed in full.
    """
    rules = load_registry().rules
    severity = {rule.id: rule.severity for rule in rules}
    counts = compliance_counts(con)
    rows = warehouse.dict_rows(
        con,
        """
        select * from mart_compliance_findings
        order by rule_id, delivery_date, patient_id, patient_event_number
        """,
    )
    return {
        "as_of": _as_of(con).isoformat(),
        "rules": {
            **{rule.id: disclosure.count(counts.get(rule.id, 0)) for rule in rules},
            **dict.fromkeys(NOT_OBSERVABLE_RULES),
        },
        "findings": [
            {
                "rule": row["rule_id"],
                "severity": severity[row["rule_id"]],
                "programme_id": row["programme_id"],
                "patient_id": row["patient_id"],
                "pharmacy_id": row["pharmacy_id"],
                "delivery_date": row["delivery_date"].isoformat(),
                "cnk": row["cnk"],
                "kind": row["kind"],
                "detail": row["detail"],
            }
            for row in rows
        ],
    }


# --- CSV: one flat table per command ------------------------------------------------------


def report_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per scheme (5, 7, 10, total) and one for unassigned events; the §6 metrics and
    the 10/20/30-capsule split as columns (empty where a figure does not apply)."""
    registry = load_registry()
    contract = [m.id for m in registry.group(CONTRACT_GROUP)]
    split = registry.group(SPLIT_GROUP)
    header = ["month", "as_of", "provisional", "scheme", *contract, *(m.id for m in split)]
    amounts = {m.id for m in registry.group(CONTRACT_GROUP) if m.disclosure == "amount"}
    rows = []
    for scheme, figures in [*doc["schemes"].items(), ("unassigned", doc["unassigned"])]:
        cells = [
            f"{figures[key]:.2f}" if key in amounts and key in figures else figures.get(key)
            for key in contract
        ]
        rows.append(
            [doc["month"], doc["as_of"], doc["provisional"], scheme, *cells]
            + [figures[SPLIT_KEY][str(m.capsules)] for m in split]
        )
    return header, rows


def cohorts_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per cohort (initiation month x scheme), after an as_of column."""
    keys = ["initiation_month", "scheme", *(m.id for m in load_registry().group("cohorts"))]
    return ["as_of", *keys], [[doc["as_of"], *(c[k] for k in keys)] for c in doc["cohorts"]]


def compliance_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per finding (rule x event), after an as_of column; counts are not repeated."""
    return ["as_of", *FINDING_KEYS], [
        [doc["as_of"], *(f[k] for k in FINDING_KEYS)] for f in doc["findings"]
    ]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return spreadsheet_safe(str(value))


def to_csv(header: list[str], rows: list[list]) -> str:
    """Comma-separated UTF-8 text: true/false for flags, empty cells for null, text a
    spreadsheet would run as a formula defused (etl/exports.py)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    return out.getvalue()


def to_json(doc: dict) -> str:
    """The document as indented JSON (UTF-8 text, not ASCII-escaped)."""
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# --- the command --------------------------------------------------------------------------


def open_for_export(
    db_path: Path | None, config: Config, as_of: dt.date | None, month: str | None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection on which the marts answer one export quickly.

    When the published snapshot (etl/base/publish.py) is up to date and was computed for this
    as-of date and a spine reaching `month`, its marts are read (search path `published`,
    then `main`): milliseconds. Otherwise the warehouse's views, with the core views computed
    once first (temporary tables on this connection; the settings are final by then).
    """
    con = open_warehouse(db_path, config, as_of)
    (max_load_id,) = con.execute("select max(load_id) from loads").fetchone()
    snap = publish.fresh_snapshot(publish.database_path(con), config, max_load_id)
    if snap is not None and as_of in (None, snap.as_of_date):
        try:
            reader = duckdb.connect(str(snap.path), read_only=True)
        except duckdb.Error:
            reader = None  # pruned meanwhile: read the views
        if reader is not None:
            (last,) = reader.execute(
                f"select max(month) from {publish.PUBLISHED_SCHEMA}.mart_state_of_play"
            ).fetchone()
            if month is None or (last is not None and month <= last):
                con.close()
                warehouse.apply_settings(reader, config, as_of)
                reader.execute(f"set search_path = '{publish.PUBLISHED_SCHEMA},main'")
                return reader
            reader.close()
    if month is not None:
        set_report_month(con, month)
    publish.materialise_core(con)
    return con
