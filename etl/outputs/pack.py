"""The monthly report pack: what APB/OPHACO send INAMI-RIZIV each month (issue 5).

A pack is a set of data tables — the state of play of the month (SPEC §6), the monthly trend
since the pilot's start, the revisions of the last 12 months, the share of initiations known
after 1-3 months of billing, cohort outcomes (§7), fees per CNK, compliance counts (§8), the
export files it saw and the configuration in force — written as an Excel workbook, one HTML
file or a PDF (that HTML printed by headless Chromium), in French, Dutch or English.

Every figure comes from a mart (sql/marts/), read through etl.figures as every other consumer
reads it; this module lays the figures out as tables, applies disclosure control (SPEC §9,
etl.base.disclosure) and hands the tables to etl.outputs.pack_render.

Reproducible: a pack is fully determined by (month, as-of date, language, suppression,
configuration, max_load_id). Loads only ever add lines, so the lines of loads up to
max_load_id never change; the views see only those when the session variable max_load_id is
set. Each issued pack is recorded in the raw table report_archive with the SHA-256 of its
data tables (`content_sha256`, independent of the file format and language), so
`benzo-monitor report --reproduce ID` writes it again and checks the hash.

For the dashboard:
- `render_pack(con, month, lang, fmt, disclosure, as_of=None)` -> bytes, on a read-only
  connection, records nothing;
- `issue_pack(db_path, month, lang, fmt, config, ...)` -> IssuedPack, which also records it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import getpass
import hashlib
import html
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from etl import figures, nowcast, outcomes
from etl.base import audit, warehouse
from etl.base.config import SCALAR_FIELDS, Config, KeyLetterValue, load_config
from etl.base.disclosure import Disclosure, Line, amount, is_masked
from etl.base.errors import UserError
from etl.base.i18n import LANGUAGES
from etl.base.registry import load_registry
from etl.base.warehouse import dict_rows
from etl.outputs import pack_render, report

PACK_FORMATS = ("xlsx", "html", "pdf")
SCHEMES = ("5", "7", "10")
TREND_SCHEMES = ("total", *SCHEMES)
REVISION_SCHEMES = ("total", *SCHEMES)


# --- the data model: language-neutral tables ----------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a pack table.

    kind says how a cell is written: `label` (an id shown as its label in the language),
    `text`, `month` ('YYYY-MM'), `date`, `datetime`, `flag` (provisional or final), `count`
    (a figure about people or events: disclosure control applies), `revision` (a signed
    count), `number` (an identifier or a setting: never suppressed), `amount` (euros) or
    `rate` (a fraction). `title` is a word key of etl/base/words/ or a registry metric id.
    """

    key: str
    kind: str
    title: str


@dataclass
class Table:
    """One table of the pack: columns and rows of plain values (None: empty cell)."""

    id: str
    columns: list[Column]
    rows: list[list]
    note: str | None = None  # a word key shown under the table


@dataclass
class Pack:
    """A monthly report pack: its tables and what they were computed from."""

    month: str
    as_of: dt.date
    is_provisional: bool
    provisional_months: list[str]
    suppressed: bool
    threshold: int
    max_load_id: int | None
    load_ids: list[int]
    config: Config
    tables: dict[str, Table]
    report_id: int | None = None  # set once recorded in the archive
    issued_at: dt.datetime | None = None
    content: dict = field(default_factory=dict)

    def data(self) -> dict:
        """Everything the pack says, without words: what `content_sha256` hashes."""
        return {
            "month": self.month,
            "as_of": self.as_of.isoformat(),
            "provisional": self.is_provisional,
            "provisional_months": self.provisional_months,
            "suppressed": self.suppressed,
            "suppression_threshold": self.threshold,
            "max_load_id": self.max_load_id,
            "tables": {
                table.id: {
                    "columns": [c.key for c in table.columns],
                    "rows": [[_plain(v) for v in row] for row in table.rows],
                }
                for table in self.tables.values()
            },
        }

    @property
    def content_sha256(self) -> str:
        """SHA-256 of the pack's data (canonical JSON): equal for equal figures, whatever the
        file format or the language."""
        text = json.dumps(self.data(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


# --- the configuration as recorded in the archive -----------------------------------------


# The revision of the rules the figures follow (docs/methodology.md, "What changed in v2"),
# recorded with each pack: a pack issued under other rules cannot reproduce the same figures.
# Packs archived without it were issued under revision 1.
METHODOLOGY_REVISION = 2


# The revision of the pack's contents. 2 (issue 16, 18): the tables of the nowcast and the
# budget (SPEC §15) and those the charts are drawn from (cumulative incidence, SPEC §16; fees
# by month). A pack archived without it was issued under revision 1, without those tables: it
# is built again without them, so its content hash still matches.
PACK_REVISION = 2
REVISION_2_TABLES = ("nowcast", "budget", "budget_projection", "outcome_curves", "fees_by_month")


def pack_revision(row: dict) -> int:
    """The revision of the contents of an archived pack (a report_archive row)."""
    return json.loads(row["config"]).get("pack_revision", 1)


def methodology_revision(row: dict) -> int:
    """The revision of the rules an archived pack (a report_archive row) was issued under."""
    return json.loads(row["config"]).get("methodology_revision", 1)


def config_to_dict(config: Config) -> dict:
    """The configuration's values as JSON-ready data (dates as YYYY-MM-DD), with the revision
    of the rules in force."""
    data = {name: _plain(getattr(config, name)) for name in SCALAR_FIELDS}
    data["methodology_revision"] = METHODOLOGY_REVISION
    data["pack_revision"] = PACK_REVISION
    data["key_letter_values"] = [
        {"valid_from": kv.valid_from.isoformat(), "value": kv.value}
        for kv in config.key_letter_values
    ]
    return data


def config_from_dict(data: dict) -> Config:
    """The Config recorded by `config_to_dict`."""
    values = {}
    for name in SCALAR_FIELDS:
        if name not in data:  # recorded before the setting existed: its default
            continue
        value = data[name]
        values[name] = dt.date.fromisoformat(value) if name.endswith("_start") else value
    values["key_letter_values"] = tuple(
        KeyLetterValue(dt.date.fromisoformat(kv["valid_from"]), kv["value"])
        for kv in data["key_letter_values"]
    )
    return Config(**values, source=("report archive",))


# --- building the pack --------------------------------------------------------------------


def latest_load_id(con: duckdb.DuckDBPyConnection) -> int | None:
    """The highest load id in the warehouse (lines or ledger), None when empty."""
    (value,) = con.execute(
        "select max(load_id) from (select load_id from loads union all "
        "select max(load_id) from billing_lines)"
    ).fetchone()
    return value


def next_report_id(con: duckdb.DuckDBPyConnection) -> int:
    """The id the next recorded pack will get."""
    (value,) = con.execute("select coalesce(max(report_id), 0) + 1 from report_archive").fetchone()
    return value


def build_pack(
    con: duckdb.DuckDBPyConnection,
    month: str,
    disclosure: Disclosure,
    config: Config,
    *,
    as_of: dt.date | None = None,
    max_load_id: int | None = None,
    report_id: int | None = None,
    revision: int = PACK_REVISION,
) -> Pack:
    """The pack's tables for `month` ('YYYY-MM'), computed on `con`.

    Sets the session variables of `con` (configuration, as-of date, max_load_id, report_id):
    give it a connection or cursor of its own. `max_load_id` None: every load, recorded as
    the latest load id. `report_id`: the id the pack will have in the archive (archived packs
    with a lower id count as "first reported" in the revision table); None: every archived
    pack counts.
    """
    if max_load_id is None:
        max_load_id = latest_load_id(con)
    warehouse.apply_settings(con, config, as_of, max_load_id)
    con.execute("set variable report_id = ?::integer", [report_id])
    registry = load_registry()
    report.set_report_month(con, month)
    reader = figures.ConnectionReader(con)
    # mart_state_of_play once, up to the month: the state of play and the trend.
    state_rows = figures.state_of_play_rows(reader, up_to=month)
    month_rows = [row for row in state_rows if row["month"] == month]
    state = figures.state_of_play(reader, month, disclosure, month_rows)
    as_of_date = dt.date.fromisoformat(state["as_of"])
    tables: dict[str, Table] = {}

    loads = figures.loads_seen(reader)
    line_loads = figures.line_load_ids(reader)
    tables["loads"] = Table(
        "loads",
        [
            Column("load_id", "number", "data_col_load_id"),
            Column("file_name", "text", "data_col_file"),
            Column("file_sha256", "text", "data_col_sha256"),
            Column("loaded_at", "datetime", "loaded_at"),
            Column("min_delivery_date", "date", "data_col_first_delivery"),
            Column("max_delivery_date", "date", "data_col_last_delivery"),
            Column("rows_new", "number", "rows_new"),
        ],
        [
            [
                r["load_id"],
                r["file_name"],
                r["file_sha256"],
                r["finished_at"].replace(microsecond=0),
                r["min_delivery_date"],
                r["max_delivery_date"],
                r["n_rows_new"],
            ]
            for r in loads
        ],
    )

    tables["state_of_play"] = _state_of_play_table(state)
    trend, provisional_months = _trend_table(state_rows, config, disclosure)
    tables["trend"] = trend
    tables["revisions"] = _revisions_table(reader, disclosure)
    tables["billing_delay"] = _billing_delay_table(reader, disclosure, registry)
    tables["cohorts"] = _cohorts_table(reader, month, disclosure, registry)
    tables["bzra_free"] = _bzra_free_table(reader, disclosure)
    tables["fees"] = _fees_table(reader, month, disclosure)
    tables["compliance"] = _compliance_table(reader, disclosure, registry)
    tables["configuration"] = _configuration_table(config)
    if revision >= 2:
        tables["outcome_curves"] = _outcome_curves_table(reader, disclosure)
        tables["fees_by_month"] = _fees_by_month_table(
            reader, config, month, state_rows, disclosure
        )
        # Last: reading the vintages resets the connection's as-of date.
        tables.update(_actuarial_tables(con, config, month, as_of_date, disclosure))
    return Pack(
        month=month,
        as_of=as_of_date,
        is_provisional=state["provisional"],
        provisional_months=provisional_months,
        suppressed=disclosure.enabled,
        threshold=disclosure.threshold,
        max_load_id=max_load_id,
        load_ids=sorted({r["load_id"] for r in loads} | set(line_loads)),
        config=config,
        tables=tables,
        report_id=report_id,
    )


def _state_of_play_table(state: dict) -> Table:
    """SPEC §6: one row per metric (and the 10/20/30 split), one column per scheme, the total
    and the unassigned events — the values of the JSON report, as they are."""
    rows = [[metric.id, *cells, metric.id] for metric, cells in figures.state_of_play_table(state)]
    columns = [Column("metric", "label", "indicator")]
    columns += [Column(s, "metric", f"step_scheme_{s}") for s in SCHEMES]
    columns += [
        Column("total", "metric", "scheme_total"),
        Column("unassigned", "metric", "unassigned_events"),
    ]
    columns += [Column("metric_id", "text", "code")]
    return Table("state_of_play", columns, rows)


def _trend_table(
    state_rows: list[dict], config: Config, disclosure: Disclosure
) -> tuple[Table, list[str]]:
    """Patients initiated per month and scheme, from the pilot's start to the month."""
    first = config.programme_start.replace(day=1)
    rows = [row for row in state_rows if row["month_start_date"] >= first]
    exact: dict[str, dict] = {}
    for row in rows:
        entry = exact.setdefault(row["month"], {"provisional": row["is_provisional"]})
        entry[row["scheme"]] = row["patients_initiated"]
    # SPEC §9: each month's schemes with their total, a line of the complementary rule.
    line = Line(tuple(s for s in TREND_SCHEMES if s != "total"), "total")
    by_month = {
        m: {
            "provisional": v["provisional"],
            **disclosure.table({s: v[s] for s in TREND_SCHEMES}, [line]),
        }
        for m, v in exact.items()
    }
    table = Table(
        "trend",
        [Column("month", "month", "month"), Column("status", "flag", "status")]
        + [
            Column(s, "count", "scheme_total" if s == "total" else f"step_scheme_{s}")
            for s in TREND_SCHEMES
        ],
        [[m, bool(v["provisional"]), *(v[s] for s in TREND_SCHEMES)] for m, v in by_month.items()],
    )
    provisional = [m for m, v in by_month.items() if v["provisional"]]
    return table, provisional


def revision_cell(disclosure: Disclosure, first: int, now: int, difference: int):
    """A revision after disclosure control: hidden (the mask) when either figure is hidden or
    when its size is from 1 to threshold - 1 (it would tell a small count)."""
    if not disclosure.enabled:
        return difference
    hidden = isinstance(disclosure.count(first), str) or isinstance(disclosure.count(now), str)
    if hidden or 0 < abs(difference) < disclosure.threshold:
        return disclosure.mask
    return difference


def _revisions_table(reader: figures.Reader, disclosure: Disclosure) -> Table:
    rows = figures.state_of_play_revisions(reader)
    by_month: dict[str, dict] = {}
    for row in rows:
        entry = by_month.setdefault(
            row["month"],
            {
                "provisional": row["is_provisional"],
                "source": row["first_reported_source"],
                "source_id": row["first_reported_report_id"]
                if row["first_reported_source"] == "archive"
                else row["first_reported_load_id"],
                "as_of": row["first_reported_as_of_date"],
            },
        )
        first, now = row["patients_initiated_first_reported"], row["patients_initiated"]
        entry[row["scheme"]] = (
            disclosure.count(first),
            disclosure.count(now),
            revision_cell(disclosure, first, now, row["patients_initiated_revision"]),
        )
    columns = [
        Column("month", "month", "month"),
        Column("status", "flag", "status"),
        Column("first_reported_source", "source", "first_reported_from"),
        Column("first_reported_as_of_date", "date", "first_reported_as_of"),
    ]
    for scheme in REVISION_SCHEMES:
        group = "scheme_total" if scheme == "total" else f"step_scheme_{scheme}"
        columns += [
            Column(f"{scheme}_first_reported", "count", f"{group}|first_reported"),
            Column(f"{scheme}_now", "count", f"{group}|now"),
            Column(f"{scheme}_revision", "revision", f"{group}|difference"),
        ]
    table_rows = []
    for month, v in by_month.items():
        cells = [month, bool(v["provisional"]), [v["source"], v["source_id"]], v["as_of"]]
        for scheme in REVISION_SCHEMES:
            cells += list(v[scheme])
        table_rows.append(cells)
    return Table("revisions", columns, table_rows)


def _billing_delay_table(reader: figures.Reader, disclosure: Disclosure, registry) -> Table:
    metric = registry.metric("initiations_known_share")
    rows = figures.billing_delay(reader)
    note = None
    if rows and rows[0]["n_months"] == 0:
        note = "no_final_month"
    elif rows and rows[0]["n_initiations"] > 0 and rows[0]["n_initiations_with_billing_month"] == 0:
        note = "no_billing_month"
    return Table(
        "billing_delay",
        [
            Column("n_billing_months", "number", "n_billing_months"),
            Column("billed_up_to", "text", "billed_up_to"),
            Column("first_month", "month", "first_month"),
            Column("last_month", "month", "last_month"),
            Column("n_months", "number", "months_pooled"),
            Column("n_initiations_known", "count", "n_initiations_known"),
            Column("n_initiations_with_billing_month", "count", "n_initiations_with_billing_month"),
            Column("share_known", "rate", "initiations_known_share"),
        ],
        [
            [
                r["n_billing_months"],
                "M" if r["n_billing_months"] == 1 else f"M+{r['n_billing_months'] - 1}",
                r["first_month"],
                r["last_month"],
                r["n_months"],
                disclosure.count(r["n_initiations_known"]),
                disclosure.count(r["n_initiations_with_billing_month"]),
                disclosure.metric(metric, r),
            ]
            for r in rows
        ],
        note,
    )


def _cohorts_table(reader: figures.Reader, month: str, disclosure: Disclosure, registry) -> Table:
    """SPEC §7, the cohorts that started up to the month (values of `benzo-monitor cohorts`)."""
    metrics = registry.group("cohorts")
    doc = figures.cohorts(reader, disclosure)
    return Table(
        "cohorts",
        [
            Column("initiation_month", "month", "outcomes_start_month"),
            Column("scheme", "number", "scheme"),
        ]
        + [Column(m.id, "rate" if m.disclosure == "rate" else "count", m.id) for m in metrics],
        [
            [c["initiation_month"], int(c["scheme"]), *(c[m.id] for m in metrics)]
            for c in doc["cohorts"]
            if c["initiation_month"] <= month
        ],
    )


def _bzra_free_table(reader: figures.Reader, disclosure: Disclosure) -> Table:
    """SPEC §14, after the programme: BZRA-free at 90, 180 and 365 days per scheme, for the
    completed and for all closed programmes of every start year, with the observable
    programmes (the denominator); as the outcomes page shows them (figures.bzra_free). An
    empty BZRA-free cell: not observable with the exports loaded (the note says so)."""
    doc = figures.bzra_free(reader, disclosure)
    return Table(
        "bzra_free",
        [
            Column("scheme", "number", "scheme"),
            Column("programmes_group", "bzra_group", "pack_bzra_group"),
            Column("days", "number", "pack_bzra_days"),
            Column("observable", "count", "pack_bzra_observable"),
            Column("bzra_free", "count", "pack_bzra_free"),
            Column("bzra_free_rate", "rate", "pack_bzra_rate"),
        ],
        [
            [
                int(r["scheme"]),
                r["programmes_group"],
                r["days"],
                r["observable"],
                r["bzra_free"],
                r["bzra_free_rate"],
            ]
            for r in doc["rows"]
        ],  # fmt: skip
        "pack_bzra_note" if doc["observable"] else "outcomes_bzra_none",
    )


def _fees_table(reader: figures.Reader, month: str, disclosure: Disclosure) -> Table:
    """SPEC §2: events and estimated fees per CNK in the month, and their total. SPEC §9: the
    CNKs' events (and unassigned events) with their total are lines of the complementary rule;
    a fee is empty where its events are masked (fee / unit fee would give the count), the
    total's where any CNK's are."""
    rows = figures.fees_by_cnk(reader, month, month)
    keys = [r["cnk"] or "total" for r in rows]
    cells = {}
    for key, r in zip(keys, rows, strict=True):
        cells[(key, "n_events")] = r["n_events"]
        cells[(key, "n_unassigned_events")] = r["n_unassigned_events"]
    parts = [k for k in keys if k != "total"]
    lines = [
        Line(tuple((k, column) for k in parts), ("total", column))
        for column in ("n_events", "n_unassigned_events")
        if "total" in keys
    ]
    shown = disclosure.table(cells, lines)
    # The total's fees sum every CNK's events at different unit fees: with two CNKs masked,
    # their counts and the total fee would be two equations. Empty when any count is masked.
    any_masked = any(is_masked(v) for v in shown.values())
    table_rows = []
    for key, r in zip(keys, rows, strict=True):
        events, unassigned = shown[(key, "n_events")], shown[(key, "n_unassigned_events")]
        hidden = disclosure.enabled and (
            is_masked(events) or is_masked(unassigned) or (key == "total" and any_masked)
        )
        table_rows.append(
            [
                key,
                key,
                events,
                unassigned,
                None if hidden else amount(r["fees_estimated_eur"]),
                None if hidden else amount(r["amount_billed_eur"]),
            ]
        )
    return Table(
        "fees",
        [
            Column("cnk", "text", "methodology_col_cnk"),
            Column("service", "fee_code", "service"),
            Column("n_events", "count", "data_col_n_events"),
            Column("n_unassigned_events", "count", "n_unassigned_events"),
            Column("fees_estimated_eur", "amount", "fees_estimated_eur"),
            Column("amount_billed_eur", "amount", "amount_billed_eur"),
        ],
        table_rows,
    )


def _compliance_table(reader: figures.Reader, disclosure: Disclosure, registry) -> Table:
    """SPEC §8: flagged events per rule (counts only, no identifiers)."""
    counts = figures.compliance_rule_counts(reader)
    return Table(
        "compliance",
        [
            Column("rule", "text", "compliance_rule"),
            Column("label", "label", "indicator"),
            Column("severity", "severity", "compliance_col_severity"),
            Column("flagged_events", "count", "flagged_events"),
        ],
        [[r.id, r.id, r.severity, disclosure.count(counts[r.id])] for r in registry.rules],
    )


def _outcome_curves_table(reader: figures.Reader, disclosure: Disclosure) -> Table:
    """SPEC §16: the cumulative incidence of completion and of stop per scheme (all start
    years) at 90-360 days, as `benzo-monitor outcomes` gives it (the outcomes chart)."""
    curves = outcomes.outcome_curves(outcomes.outcome_times(reader), disclosure, by_year=False)
    return Table(
        "outcome_curves",
        [
            Column("scheme", "number", "scheme"),
            Column("day", "number", "pack_col_day"),
            Column("event", "text", "pack_col_event"),
            Column("cumulative_incidence", "rate", "pack_col_cumulative_incidence"),
            Column("lower_95", "rate", "pack_col_lower_95"),
            Column("upper_95", "rate", "pack_col_upper_95"),
            Column("programmes", "count", "pack_col_programmes"),
        ],
        [
            [
                int(c["scheme"]),
                c["day"],
                c["event"],
                c["cumulative_incidence"],
                c["lower_95"],
                c["upper_95"],
                c["programmes"],
            ]
            for c in curves
        ],  # fmt: skip
    )


FEE_COUNTS = (
    "initiations_billed",
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
)


def _fees_by_month_table(
    reader: figures.Reader, config: Config, month: str, state_rows: list[dict], disclosure
) -> Table:
    """SPEC §2: estimated fees per month (every kind of service) from the pilot's start to the
    month, as the fees page shows them (the fees chart). SPEC §9, as the fees table: a month's
    fees are empty when one of its counts of events (scheme total) is from 1 to threshold - 1."""
    first = config.programme_start.strftime("%Y-%m")
    small = {
        r["month"]
        for r in state_rows
        if disclosure.enabled
        and r["scheme"] == "total"
        and any(disclosure.small(r[c]) for c in FEE_COUNTS)
    }
    rows = [r for r in figures.fees_by_month(reader, first, month) if r["kind"] is None]
    return Table(
        "fees_by_month",
        [
            Column("month", "month", "month"),
            Column("status", "flag", "status"),
            Column("fees_estimated_eur", "amount", "fees_estimated_eur"),
        ],
        [
            [
                r["month"],
                bool(r["is_provisional"]),
                None if r["month"] in small else amount(r["fees_estimated_eur"]),
            ]
            for r in rows
        ],
    )


NOWCAST_COLUMNS = ("observed", "nowcast", "lower_80", "upper_80", "lower_95", "upper_95")


def _actuarial_tables(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    month: str,
    as_of: dt.date,
    disclosure: Disclosure,
) -> dict[str, Table]:
    """SPEC §15 on the pack's as-of date, from etl.nowcast: the provisional months (figure
    known, nowcast, 80 % and 95 % intervals, as `benzo-monitor nowcast` gives them: counts to
    one decimal, euros to the cent) and the budget of
    the month's year (fees per billing and per delivery month, the year-end projection)."""
    history = None
    bounds = nowcast.data_bounds(con)
    if bounds is not None:
        first, last = bounds
        upto = min(nowcast.vintage_month(as_of), last)
        if upto >= first:
            history = _vintages(con, config, first, upto)
    casts: list[dict] = []
    budget: dict | None = None
    if history is not None:
        doc = nowcast.nowcast_document(history, as_of, config)
        if disclosure.enabled:
            doc = nowcast.disclose_nowcast(doc, disclosure.threshold)
        casts = doc["months"]
        budget = nowcast.budget_document(history, int(month[:4]), as_of, config)
    months = _budget_table(budget, history, disclosure)
    return {
        "nowcast": _nowcast_table(casts, config),
        "budget": months,
        "budget_projection": _projection_table(budget, months),
    }


# The vintages read for a pack, kept per (database file, its state, loads seen, configuration,
# months): reading them is the costly part of the pack (a view query per month of data), and
# the dashboard asks for the same month's pack in several formats and languages.
_VINTAGES: OrderedDict[tuple, nowcast.VintageHistory] = OrderedDict()
_VINTAGES_LOCK = threading.Lock()
VINTAGES_KEPT = 4


def _vintages(
    con: duckdb.DuckDBPyConnection, config: Config, first: int, upto: int
) -> nowcast.VintageHistory:
    """etl.nowcast.vintage_history(con, config, first, upto), kept for the next pack of the
    same warehouse state (a published snapshot never changes; a load changes the file and
    its max_load_id)."""
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    try:
        stat = Path(path).stat()
        state = (stat.st_mtime_ns, stat.st_size)
    except (OSError, TypeError):
        state = None
    (max_load_id,) = con.execute("select getvariable('max_load_id')").fetchone()
    fingerprint = json.dumps(config_to_dict(config), sort_keys=True)
    key = (path, state, max_load_id, fingerprint, first, upto)
    if state is not None:
        with _VINTAGES_LOCK:
            if key in _VINTAGES:
                _VINTAGES.move_to_end(key)
                return _VINTAGES[key]
    history = nowcast.vintage_history(con, config, first, upto)
    if state is not None:
        with _VINTAGES_LOCK:
            _VINTAGES[key] = history
            while len(_VINTAGES) > VINTAGES_KEPT:
                _VINTAGES.popitem(last=False)
    return history


def _nowcast_table(casts: list[dict], config: Config) -> Table:
    return Table(
        "nowcast",
        [
            Column("metric", "label", "indicator"),
            Column("month", "month", "month"),
            Column("scheme", "scheme_name", "scheme"),
            Column("observed", "metric", "pack_col_observed"),
            *(Column(key, "estimate", f"pack_col_{key}") for key in NOWCAST_COLUMNS[1:]),
            Column("share_known", "rate", "pack_col_share_known"),
        ],
        [
            [
                r["metric"],
                r["month"],
                r["scheme"],
                *(r[key] for key in NOWCAST_COLUMNS),
                r["share_known"],
            ]
            for metric in nowcast.METRICS
            for r in casts
            if r["metric"] == metric
        ],
        "pack_nowcast_method",
    )


BUDGET_COLUMNS = (
    "fees_billed_eur",
    "fees_billed_cumulative_eur",
    "fees_known_eur",
    "fees_nowcast_eur",
    "lower_95",
    "upper_95",
)


def _budget_table(budget: dict | None, history, disclosure: Disclosure) -> Table:
    """The budget's months under SPEC §9 (fees / unit fee would give a small count back):
    - a delivery month's fees (known, nowcast) are empty when its patients initiated or
      reduction steps (scheme total, as known) are from 1 to threshold - 1, as the nowcast
      hides them;
    - a billing month's fees are empty when the patients initiated and reduction steps its
      lines added (the sum over delivery months of the changes of those figures at its
      vintage) are from 1 to threshold - 1; the cumulative fees from the first such month of
      the year on are empty too (two cumulative figures would give the month back)."""
    rows, hidden_before = [], False
    for r in budget["months"] if budget else []:
        cells = [r[key] for key in BUDGET_COLUMNS]
        index = nowcast.month_index(r["month"])
        if disclosure.enabled and history.first <= index <= history.last:
            small = any(
                disclosure.small(history.at(index, "total", metric, history.last))
                for metric in nowcast.COUNT_METRICS
            )
            if small:
                cells[2:] = [None] * 4
            if disclosure.small(_events_billed(history, index)):
                hidden_before = True
                cells[0] = None
            if hidden_before:
                cells[1] = None
        rows.append([r["month"], r["provisional"], *cells])
    return Table(
        "budget",
        [
            Column("month", "month", "month"),
            Column("status", "flag", "status"),
            *(Column(key, "amount", f"pack_col_{key}") for key in BUDGET_COLUMNS),
        ],
        rows,
        "pack_budget_method",
    )


def _events_billed(history, month: int) -> int:
    """The patients initiated and reduction steps (scheme total) that the lines billed in
    `month` added: sum over delivery months of |C(m, month) - C(m, month - 1)|."""
    return int(
        sum(
            abs(history.at(m, "total", metric, month) - history.at(m, "total", metric, month - 1))
            for metric in nowcast.COUNT_METRICS
            for m in range(history.first, month + 1)
        )
    )


def _projection_table(budget: dict | None, months: Table) -> Table:
    """The budget in a few lines: the envelope, billed to date (the last cumulative figure of
    the months table: empty when disclosure control empties it), the year-end projection."""
    rows = []
    if budget:
        known = [r for r in budget["months"] if r["fees_billed_cumulative_eur"] is not None]
        to_date = months.rows[len(known) - 1][3] if known else None
        envelope = budget["annual_budget_eur"]
        p = budget["projection"]
        share = round(to_date / envelope, 4) if to_date is not None and envelope else None
        rows = [
            ["annual_budget_eur", envelope, "amount"],
            ["billed_to_date", to_date, "amount"],
            ["billed_share", share, "rate"],
            ["year_end", p["fees_year_end_eur"], "amount"],
            ["lower_80", p["lower_80"], "amount"],
            ["upper_80", p["upper_80"], "amount"],
            ["lower_95", p["lower_95"], "amount"],
            ["upper_95", p["upper_95"], "amount"],
            ["year_end_share", p["share_of_budget"], "rate"],
            ["run_rate", p["run_rate_eur"], "amount"],
            ["months_remaining", p["months_remaining"], "number"],
        ]
    return Table(
        "budget_projection",
        [
            Column("item", "word", "pack_col_item"),
            Column("value", "row_kind", "methodology_col_value"),
            Column("kind", "hidden", "pack_col_item"),
        ],
        [[f"pack_budget_{key}", value, kind] for key, value, kind in rows],
    )


# Settings the pack's figures do not use (the actuarial review: `nowcast`, `budget`). Left out
# of its configuration table, so a pack archived before they existed reproduces with the
# same content hash.
NOT_IN_PACK = ("annual_budget_eur", "nowcast_history_months")  # the nowcast and budget
# tables (revision 2) carry their effect: the configuration table stays as it was.


def _configuration_table(config: Config) -> Table:
    rows = [
        [name, name, getattr(config, name)] for name in SCALAR_FIELDS if name not in NOT_IN_PACK
    ]
    rows += [
        ["key_letter_values", f"key_letter_value ({kv.valid_from.isoformat()})", kv.value]
        for kv in config.key_letter_values
    ]
    return Table(
        "configuration",
        [
            Column("setting_id", "hidden", "methodology_col_setting"),
            Column("setting", "text", "methodology_col_setting"),
            Column("value", "setting_value", "methodology_col_value"),
        ],
        rows,
    )


# --- rendering and issuing ----------------------------------------------------------------


def _check_format(lang: str, fmt: str) -> None:
    if lang not in LANGUAGES:
        raise UserError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    if fmt not in PACK_FORMATS:
        raise UserError(f"unknown pack format {fmt!r}: use one of {', '.join(PACK_FORMATS)}")
    if fmt == "pdf":
        pack_render.find_chromium()  # fails early, with a plain message


def render(pack: Pack, lang: str, fmt: str) -> bytes:
    """The pack as a file in `fmt` (xlsx, html or pdf), in `lang` (fr, nl or en)."""
    if fmt == "xlsx":
        return pack_render.to_xlsx(pack, lang)
    if fmt == "html":
        return pack_render.to_html(pack, lang).encode("utf-8")
    executable = pack_render.find_chromium()
    document = pack_render.to_html(pack, lang, executable=executable)
    return pack_render.to_pdf(document, footer=html.escape(pack_render.footer_text(pack, lang)))


def render_pack(
    con: duckdb.DuckDBPyConnection,
    month: str,
    lang: str,
    fmt: str,
    disclosure: Disclosure,
    as_of: dt.date | None = None,
    config: Config | None = None,
) -> bytes:
    """The monthly report pack of `month` ('YYYY-MM') as file bytes; records nothing.

    - `con`: a connection (read-only is fine) or cursor to the warehouse. Its session
      variables are set here (configuration, as-of, max_load_id, report month): give it a
      cursor of its own (`con.cursor()`).
    - `lang`: 'fr', 'nl' or 'en'; `fmt`: 'xlsx', 'html' or 'pdf' (pdf needs Chromium:
      raises etl.cli.UserError with a plain message when none is installed).
    - `disclosure`: etl.outputs.Disclosure(threshold, enabled) — SPEC §9 on or off.
    - `as_of`: the as-of date (None: the latest delivery date loaded).
    - `config`: the configuration in force (None: etl.base.config.load_config()).
    """
    _check_format(lang, fmt)
    config = config or load_config()
    pack = build_pack(con, month, disclosure, config, as_of=as_of)
    return render(pack, lang, fmt)


@dataclass(frozen=True)
class IssuedPack:
    """A pack written and recorded in the report archive."""

    report_id: int
    content_sha256: str
    data: bytes
    pack: Pack


def issue_pack(
    db_path: Path | None,
    month: str,
    lang: str,
    fmt: str,
    config: Config,
    *,
    suppress: bool = True,
    as_of: dt.date | None = None,
    issued_by: str | None = None,
) -> IssuedPack:
    """Build the pack of `month`, render it, and record it in the report archive.

    Opens the warehouse at `db_path` (None: the default) read-only to compute, then writable
    for a moment to record the pack; raises etl.cli.UserError (plain message) when the
    warehouse is missing, empty or in use by a load. In one process DuckDB refuses a writable
    connection while a read-only one to the same file is open: close yours first.
    """
    _check_format(lang, fmt)
    disclosure = Disclosure(config.suppression_threshold, enabled=suppress)
    con = report.open_warehouse(db_path, config, as_of)
    try:
        report_id = next_report_id(con)
        pack = build_pack(con, month, disclosure, config, as_of=as_of, report_id=report_id)
    finally:
        con.close()
    pack.issued_at = dt.datetime.now().replace(microsecond=0)
    data = render(pack, lang, fmt)
    _record(db_path, pack, lang, fmt, issued_by)
    return IssuedPack(pack.report_id, pack.content_sha256, data, pack)


def _record(db_path: Path | None, pack: Pack, lang: str, fmt: str, issued_by: str | None) -> None:
    path = Path(db_path) if db_path else warehouse.default_db_path()
    try:
        con = warehouse.connect(path)
    except warehouse.WarehouseError as exc:
        raise UserError(f"{exc}; the pack was not issued (it is recorded when issued)") from exc
    try:
        if next_report_id(con) != pack.report_id:
            raise UserError("another pack was issued at the same moment: run the command again")
        con.execute(
            "insert into report_archive values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                pack.report_id,
                pack.month,
                pack.as_of,
                lang,
                fmt,
                pack.suppressed,
                pack.max_load_id,
                pack.load_ids,
                json.dumps(config_to_dict(pack.config), sort_keys=True),
                pack.content_sha256,
                pack.issued_at,
                issued_by if issued_by is not None else _user(),
            ],
        )
    finally:
        con.close()
    audit.record(
        path, "report_issued", user=issued_by, report_id=pack.report_id, month=pack.month,
        as_of=pack.as_of, lang=lang, format=fmt, suppressed=pack.suppressed,
        content_sha256=pack.content_sha256,
    )  # fmt: skip


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


def archived_packs(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The report archive, oldest first (empty for a warehouse that never issued a pack)."""
    try:
        return dict_rows(con, "select * from report_archive order by report_id")
    except duckdb.CatalogException:
        return []


def reproduce_pack(
    db_path: Path | None, report_id: int, fmt: str | None = None
) -> tuple[dict, Pack, bytes]:
    """Write archived pack `report_id` again: (its archive row, the pack, the file bytes).

    Same month, as-of date, language, suppression, configuration and loads (max_load_id) as
    recorded; `fmt` None: the recorded format. The caller compares the content hashes.
    """
    base = load_config()
    con = report.open_warehouse(db_path, base, None)
    try:
        rows = dict_rows(con, "select * from report_archive where report_id = ?", [report_id])
        if not rows:
            raise UserError(f"no pack {report_id} in the report archive (benzo-monitor reports)")
        row = rows[0]
        fmt = fmt or row["format"]
        _check_format(row["lang"], fmt)
        config = config_from_dict(json.loads(row["config"]))
        disclosure = Disclosure(config.suppression_threshold, enabled=row["suppressed"])
        pack = build_pack(
            con,
            row["month"],
            disclosure,
            config,
            as_of=row["as_of_date"],
            max_load_id=row["max_load_id"],
            report_id=row["report_id"],
            revision=pack_revision(row),
        )
    finally:
        con.close()
    pack.issued_at = row["issued_at"]
    return row, pack, render(pack, row["lang"], fmt)


# --- the commands -------------------------------------------------------------------------
