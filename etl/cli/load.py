"""`benzo-monitor load`, `loads` and `rejects`: the ingest commands."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from etl.base.errors import UserError
from etl.base.warehouse import WarehouseError, connect
from etl.cli.terminal import emit, read_only
from etl.ingest.columns import MappingError
from etl.ingest.load import REASONS, DiskFull, load_paths, prepare_copy

DISK_FULL_STATUS = 3  # README, exit statuses: a full disk (nothing changed; free space, load again)


def run_load(args, config) -> int:
    """`benzo-monitor load FILE...`: load the files, print the summary; 1 when one was refused."""
    # File names, headers and messages are text, not rich markup: a header such as "[/]" would
    # otherwise end in a MarkupError traceback. (UserError messages are printed as markup.)
    out = Console(width=None if sys.stdout.isatty() else 132)
    # A Windows-1252 file's UTF-8 copy runs beside the opening of the warehouse (issue 20).
    prepared = prepare_copy(args.files)
    try:
        con = connect(args.db, config=config)
    except BaseException as exc:
        if prepared is not None:
            prepared.close()
        if isinstance(exc, WarehouseError):
            raise UserError(escape(str(exc))) from exc
        raise
    show_progress = not args.no_progress and sys.stderr.isatty()
    progress_bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=True,
    )

    def factory(path: Path):
        task = progress_bar.add_task(escape(path.name), total=100)
        return lambda pct: progress_bar.update(task, completed=pct)

    try:
        with progress_bar:
            outcomes = load_paths(con, args.files, args.mapping, factory, config, prepared)
    except MappingError as exc:
        raise UserError(escape(str(exc))) from exc
    except DiskFull as exc:
        raise UserError(escape(str(exc)), status=DISK_FULL_STATUS) from exc
    finally:
        con.close()

    table = Table(title="Load summary", title_justify="left")
    for name in ("load", "file", "format", "rows read", "new", "already present", "skipped",
                 "rejected", "seconds"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("file", "format") else "right")
    for outcome in outcomes:
        s = outcome.summary
        if s is None:
            table.add_row("-", escape(outcome.path.name), "[red]refused[/]", *[""] * 6)
            continue
        fmt = s.file_format + (f" {s.encoding} '{s.delimiter}'" if s.encoding else "")
        table.add_row(
            str(s.load_id), escape(s.file_name), fmt, f"{s.rows_read:,}", f"{s.rows_new:,}",
            f"{s.rows_present:,}", f"{s.rows_skipped:,}", f"{s.rows_rejected:,}",
            f"{s.seconds:.1f}",
        )  # fmt: skip
    out.print(table)
    for outcome in outcomes:
        s = outcome.summary
        if outcome.refused:
            out.print(
                f"[bold red]refused:[/] {escape(outcome.refused)}", highlight=False, soft_wrap=True
            )
        elif s and s.previously_loaded_as is not None:
            out.print(
                f"{escape(s.file_name)}: the same file was loaded before "
                f"(load {s.previously_loaded_as}); nothing was counted twice.",
                soft_wrap=True,
            )
        if s and (s.rows_bzra or s.rows_clonazepam):  # SPEC §14
            apart = (
                f"; {s.rows_clonazepam:,} clonazepam line(s) kept apart (not counted)"
                if s.rows_clonazepam
                else ""
            )
            out.print(
                f"{escape(s.file_name)}: {s.rows_bzra:,} BZRA line(s) (benzodiazepines and "
                f"Z-drugs) kept as deliveries{apart}.",
                soft_wrap=True,
            )
        for warning in s.warnings if s else []:  # issue 19: loaded, but worth a look
            out.print(
                f"[bold yellow]warning:[/] {escape(s.file_name)}: {escape(warning)}",
                highlight=False,
                soft_wrap=True,
            )
        if s and s.rows_rejected:
            out.print(
                f"{escape(s.file_name)}: {s.rows_rejected:,} row(s) rejected - "
                f"see: benzo-monitor rejects --load {s.load_id}",
                soft_wrap=True,
            )
    return 1 if any(o.refused for o in outcomes) else 0


def run_loads(args, config) -> int:
    """`benzo-monitor loads`: the load ledger."""
    con = read_only(args, config)
    cur = con.execute("select * from loads order by load_id")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    columns = names if args.format != "table" else [
        "load_id", "file_name", "file_format", "rows_read", "rows_new", "rows_present",
        "rows_skipped", "rows_rejected", "finished_at", "file_sha256",
    ]  # fmt: skip
    if args.format == "table":
        for row in rows:
            row["file_sha256"] = row["file_sha256"][:12] + "…"
            row["finished_at"] = row["finished_at"].strftime("%Y-%m-%d %H:%M:%S")
    emit(rows, args.format, "Load ledger", columns)
    return 0


def run_rejects(args, config) -> int:
    """`benzo-monitor rejects`: rejected rows with their reasons."""
    con = read_only(args, config)
    where, params = ("where load_id = ?", [args.load_id]) if args.load_id else ("", [])
    cur = con.execute(f"select * from rejects {where} order by load_id, line_number", params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    if args.format != "table":
        emit(rows, args.format, "Rejected rows", names)
        return 0
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    emit(
        [{"reason": k, "meaning": REASONS.get(k, ""), "rows": v} for k, v in sorted(counts.items())],
        "table", "Rejected rows by reason", ["reason", "meaning", "rows"],
    )  # fmt: skip
    shown = rows[: args.limit]
    emit(
        shown, "table",
        f"Rejected rows ({len(shown)} of {len(rows)}; --format csv for all)",
        ["load_id", "file_name", "line_number", "reason", "detail", "raw_values"],
    )  # fmt: skip
    return 0
