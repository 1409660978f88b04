"""Helpers for tests written by hand from the spec: a tiny warehouse of billing lines.

Lines go straight into `billing_lines` of a real DuckDB file made by etl.base.warehouse.connect,
so the views under test are exactly those the command line reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import shutil
import tempfile
from pathlib import Path

from etl import cli
from etl.base.codes import (
    FOLLOW_UP_CNK,
    INITIATION_CNK_BY_SCHEME,
    REDUCTION_CNK_BY_CAPSULES,
    STABILISATION_CNK,
)
from etl.base.config import load_config
from etl.base.warehouse import connect, set_as_of

# SPEC §6's metrics, in the order of its table (written out from the spec, not from the code).
SPEC_STATE_OF_PLAY_METRICS = (
    "patients_initiated",
    "patients_initiated_repeat",
    "initiations_billed",
    "patients_initiated_cumulative",
    "active_programmes_end_of_month",
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
    "programmes_completed",
    "programmes_stopped",
    "fees_estimated_eur",
    "fees_flagged_eur",
)

INIT5 = INITIATION_CNK_BY_SCHEME[5]
INIT7 = INITIATION_CNK_BY_SCHEME[7]
INIT10 = INITIATION_CNK_BY_SCHEME[10]
RED10 = REDUCTION_CNK_BY_CAPSULES[10]
RED20 = REDUCTION_CNK_BY_CAPSULES[20]
RED30 = REDUCTION_CNK_BY_CAPSULES[30]
STAB = STABILISATION_CNK
FOLLOW = FOLLOW_UP_CNK

# Fees with the default configuration: round(2.2193 x 10.47, 2) and round(2.2193 x 7.08, 2).
INTERVIEW_FEE = 23.24
PREPARATION_FEE = 15.71


def d(text: str) -> dt.date:
    """A date from 'YYYY-MM-DD'."""
    return dt.date.fromisoformat(text)


def line(patient: str, date: str, cnk: str, quantity: int = 1, pharmacy: str = "PH1", **extra):
    """One billing line as a dict of canonical values."""
    return {
        "patient_id": patient,
        "pharmacy_id": pharmacy,
        "delivery_date": d(date),
        "cnk": cnk,
        "quantity": quantity,
        **extra,
    }


def programme(
    patient: str,
    start: str,
    scheme_cnk: str,
    steps: list[tuple[str, str]],
    pharmacy: str = "PH1",
) -> list[dict]:
    """An initiation on `start` and then (date, cnk) lines, all at one pharmacy."""
    return [line(patient, start, scheme_cnk, pharmacy=pharmacy)] + [
        line(patient, date, cnk, pharmacy=pharmacy) for date, cnk in steps
    ]


def every(first: str, days: int, count: int, cnk: str) -> list[tuple[str, str]]:
    """`count` deliveries of `cnk`, the first on `first`, then every `days` days."""
    start = d(first)
    return [((start + dt.timedelta(days=days * i)).isoformat(), cnk) for i in range(count)]


_EMPTY_WAREHOUSE: list[Path] = []


def _empty_warehouse() -> Path:
    """A warehouse with its tables and views but no lines, made once per test session."""
    if not _EMPTY_WAREHOUSE:
        path = Path(tempfile.mkdtemp(prefix="benzo-empty-")) / "empty.duckdb"
        connect(path).close()
        _EMPTY_WAREHOUSE.append(path)
    return _EMPTY_WAREHOUSE[0]


def build(tmp_path: Path, lines: list[dict], name: str = "w.duckdb") -> Path:
    """A warehouse file holding exactly these billing lines (load 1, one line each).

    Optional values a line may carry: load_id, amount_eur, patient_birth_year, prescriber_id.
    """
    db = tmp_path / name
    shutil.copyfile(_empty_warehouse(), db)
    if not lines:
        return db
    con = connect(db)
    try:
        con.executemany(
            """
            insert into billing_lines (
                fingerprint, occurrence, load_id, line_number, patient_id, pharmacy_id,
                delivery_date, cnk, quantity, amount_eur, patient_birth_year, prescriber_id
            ) values (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                (
                    i,
                    row.get("load_id", 1),
                    i + 2,
                    row["patient_id"],
                    row["pharmacy_id"],
                    row["delivery_date"],
                    row["cnk"],
                    row["quantity"],
                    row.get("amount_eur"),
                    row.get("patient_birth_year"),
                    row.get("prescriber_id"),
                )
                for i, row in enumerate(lines)
            ],
        )
    finally:
        con.close()
    return db


def query(db: Path, sql: str, as_of: str | None = None, params=None, config=None) -> list[dict]:
    """Rows of `sql` (as dicts) on the warehouse, as of `as_of` (default: latest delivery)."""
    con = connect(db, read_only=True, config=config or load_config())
    try:
        set_as_of(con, d(as_of) if as_of else None)
        cursor = con.execute(sql, params or [])
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def one(db: Path, sql: str, as_of: str | None = None, params=None) -> dict:
    """The single row of `sql`."""
    rows = query(db, sql, as_of, params)
    assert len(rows) == 1, rows
    return rows[0]


@functools.lru_cache(maxsize=64)
def _state_rows(db: Path, modified_ns: int, month: str, as_of: str | None) -> dict:
    rows = query(db, "select * from mart_state_of_play where month = ?", as_of, [month])
    return {row["scheme"]: row for row in rows}


def state(db: Path, month: str, scheme: str, as_of: str | None = None) -> dict:
    """The mart_state_of_play row of one month and scheme ('5', '7', '10' or 'total').

    The month's four rows are read once per warehouse file version and as-of date.
    """
    return dict(_state_rows(db, db.stat().st_mtime_ns, month, as_of)[scheme])


def findings(db: Path, as_of: str | None = None) -> list[tuple[str, str, str]]:
    """(rule, delivery date, cnk) of every compliance finding, sorted."""
    rows = query(db, "select * from mart_compliance_findings", as_of)
    return sorted((r["rule_id"], r["delivery_date"].isoformat(), r["cnk"]) for r in rows)


def run_cli(*argv: str) -> tuple[int, str]:
    """Run `benzo-monitor argv...` in-process: (exit status, standard output)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(list(argv))
    return status, out.getvalue()


def cli_json(db: Path, *argv: str):
    """The JSON printed by `benzo-monitor --db db argv...` (asserting exit status 0)."""
    status, out = run_cli("--db", str(db), *argv)
    assert status == 0, out
    return json.loads(out)


def generated_warehouse(folder: Path, *, start: str, end: str, weekly_starts: int, seed: int):
    """A warehouse holding a generated dataset's monthly exports (`benzo-monitor generate`
    then `load`), in `folder`: the path of the warehouse."""
    exports, db = folder / "exports", folder / "w.duckdb"
    status, _ = run_cli(
        "generate", "--output", str(exports), "--start", start, "--end", end,
        "--weekly-starts", str(weekly_starts), "--seed", str(seed),
    )  # fmt: skip
    assert status == 0
    status, _ = run_cli(
        "--db", str(db), "load", "--no-progress", *map(str, sorted(exports.glob("export_*.csv")))
    )
    assert status == 0
    return db
