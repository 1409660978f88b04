"""`benzo-monitor report`, `cohorts`, `compliance`, `outcomes`, `funnel`, `reports` and
`publish`: the figures.

`report --format json|csv`, `cohorts` and `compliance` print the documents of SPEC §10;
`report --format xlsx|html|pdf` issues the monthly report pack (etl.outputs.pack) and records it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

from etl import figures, outcomes
from etl.base.config import Config
from etl.base.disclosure import Disclosure
from etl.base.errors import UserError
from etl.base.publish import ensure_published
from etl.base.warehouse import WarehouseError, connect, default_db_path
from etl.cli.parser import PACK_FORMATS
from etl.cli.terminal import emit, write_bytes, write_text
from etl.exports import csv_text
from etl.outputs import pack, report


def run_report(args, config: Config) -> int:
    """`benzo-monitor report`: the state of play (json, csv), a pack (xlsx, html, pdf), or an
    archived pack written again (--reproduce)."""
    if args.reproduce is not None:
        return run_reproduce(args)
    if args.month is None:
        raise UserError("report needs --month YYYY-MM (or --reproduce ID)")
    if args.format in PACK_FORMATS:
        if args.vintage is not None:
            raise UserError("--vintage applies to the json and csv exports, not to a pack")
        return run_pack(args, config)
    return run_export(args, config)


CSV_LAYOUTS = {
    "report": figures.report_csv_rows,
    "cohorts": figures.cohorts_csv_rows,
    "compliance": figures.compliance_csv_rows,
}


def build_document(con: duckdb.DuckDBPyConnection, args, disclosure: Disclosure) -> dict:
    """The JSON document of args.command (report, cohorts or compliance)."""
    reader = figures.ConnectionReader(con)
    if args.command == "report":
        return figures.state_of_play(reader, args.month, disclosure)
    if args.command == "cohorts":
        return figures.cohorts(reader, disclosure)
    return figures.compliance(reader, disclosure)


def run_export(args, config: Config) -> int:
    """`benzo-monitor report|cohorts|compliance`: print or write the export (SPEC §10)."""
    disclosure = Disclosure(config.suppression_threshold, enabled=not args.no_suppress)
    con = report.open_for_export(
        args.db,
        config,
        args.as_of,
        getattr(args, "month", None),
        vintage=getattr(args, "vintage", None),
    )
    try:
        doc = build_document(con, args, disclosure)
    finally:
        con.close()
    text = (
        report.to_json(doc) if args.format == "json" else csv_text(*CSV_LAYOUTS[args.command](doc))
    )
    write_text(args.output, text)
    return 0


def run_outcomes(args, config: Config) -> int:
    """`benzo-monitor outcomes` and `benzo-monitor funnel`: the evaluation statistics of
    SPEC §16 (etl/outcomes.py) as JSON or CSV."""
    disclosure = Disclosure(config.suppression_threshold, enabled=not args.no_suppress)
    con = report.open_for_export(args.db, config, args.as_of, None)
    try:
        reader = figures.ConnectionReader(con)
        if args.command == "outcomes":
            doc = outcomes.outcomes(reader, disclosure)
            layout = outcomes.outcomes_csv_rows
        else:
            doc = outcomes.funnel(reader, args.measure, args.by, disclosure)
            layout = outcomes.funnel_csv_rows
    finally:
        con.close()
    write_text(
        args.output, report.to_json(doc) if args.format == "json" else csv_text(*layout(doc))
    )
    return 0


def default_output(month: str, lang: str, fmt: str) -> Path:
    """Where a pack goes without --output: report-YYYY-MM-<lang>.<ext> in the working directory."""
    return Path(f"report-{month}-{lang}.{fmt}")


def run_pack(args, config: Config) -> int:
    """`benzo-monitor report --format xlsx|html|pdf`: issue, record and write a pack."""
    output = args.output or default_output(args.month, args.lang, args.format)
    issued = pack.issue_pack(
        args.db,
        args.month,
        args.lang,
        args.format,
        config,
        suppress=not args.no_suppress,
        as_of=args.as_of,
    )
    write_bytes(output, issued.data)
    print(output)
    report_err = (
        f"pack {issued.report_id} recorded in the report archive "
        f"(content SHA-256 {issued.content_sha256[:16]}…)"
    )
    print(report_err, file=sys.stderr)
    return 0


def run_reproduce(args) -> int:
    """`benzo-monitor report --reproduce ID`: write an archived pack again, check its data."""
    if args.format == "csv":
        raise UserError("--reproduce writes a pack: use --format xlsx, html or pdf")
    fmt = args.format if args.format in PACK_FORMATS else None  # json (the default): as issued
    row, issued, data = pack.reproduce_pack(args.db, args.reproduce, fmt)
    output = args.output or default_output(row["month"], row["lang"], fmt or row["format"])
    write_bytes(output, data)
    print(output)
    revision = pack.methodology_revision(row)
    if issued.content_sha256 != row["content_sha256"] and revision != pack.METHODOLOGY_REVISION:
        raise UserError(
            f"pack {row['report_id']} was issued under revision {revision} of the rules; this "
            f"version computes revision {pack.METHODOLOGY_REVISION} (docs/methodology.md, what "
            "changed), so its figures differ by design: content SHA-256 "
            f"{issued.content_sha256} instead of {row['content_sha256']}",
            status=1,
        )
    if issued.content_sha256 != row["content_sha256"]:
        raise UserError(
            f"the data of pack {row['report_id']} differ from the archived pack: content "
            f"SHA-256 {issued.content_sha256} instead of {row['content_sha256']} "
            "(was the warehouse rebuilt or a load removed?)",
            status=1,
        )
    print(
        f"pack {row['report_id']} reproduced: same data (content SHA-256 "
        f"{issued.content_sha256[:16]}… matches the archive)",
        file=sys.stderr,
    )
    return 0


REPORTS_COLUMNS = [
    "report_id",
    "month",
    "as_of_date",
    "lang",
    "format",
    "suppressed",
    "max_load_id",
    "content_sha256",
    "issued_at",
    "issued_by",
]


def run_reports(args, config: Config) -> int:
    """`benzo-monitor reports`: the report archive."""
    path = Path(args.db) if args.db else default_db_path()
    try:
        con = connect(path, read_only=True)
    except WarehouseError as exc:
        raise UserError(str(exc)) from exc
    try:
        rows = pack.archived_packs(con)
    finally:
        con.close()
    for row in rows:
        row["load_ids"] = list(row["load_ids"] or [])
        row["config"] = json.loads(row["config"])
    if args.format == "table":
        shown = [
            {
                **row,
                "content_sha256": row["content_sha256"][:12] + "…",
                "issued_at": row["issued_at"].strftime("%Y-%m-%d %H:%M:%S"),
            }
            for row in rows
        ]
        emit(
            shown, "table", "Report archive (benzo-monitor report --reproduce ID)", REPORTS_COLUMNS
        )
    elif args.format == "json":
        emit(rows, "json", "", list(rows[0]) if rows else REPORTS_COLUMNS)
    else:
        emit(
            [{**r, "load_ids": " ".join(map(str, r["load_ids"]))} for r in rows],
            "csv",
            "",
            [*REPORTS_COLUMNS, "load_ids"],
        )
    return 0


def run_publish(args, config: Config) -> int:
    """`benzo-monitor publish`: compute every mart once into a read-only snapshot."""
    db_path = Path(args.db) if args.db else default_db_path()
    if not db_path.exists():
        raise UserError(f"no warehouse at {db_path}: load an export first")
    try:
        path = ensure_published(db_path, config)
    except WarehouseError as exc:
        raise UserError(str(exc)) from exc
    print(f"published: {path}")
    return 0
