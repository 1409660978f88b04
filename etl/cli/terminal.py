"""What the command line shows: tables, JSON and CSV on stdout, files written, plain errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from etl.base.errors import UserError
from etl.base.warehouse import WarehouseError, connect
from etl.exports import csv_text

err = Console(stderr=True, highlight=False)


def emit(rows: list[dict], fmt: str, title: str, columns: list[str]) -> None:
    """Rows as JSON, as CSV (cells a spreadsheet would run as a formula defused) or as a table."""
    if fmt == "json":
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        sys.stdout.write(csv_text(columns, [[row.get(k) for k in columns] for row in rows]))
        return
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    Console().print(table)


def read_only(args, config) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the warehouse of --db; a plain message when it cannot open."""
    try:
        return connect(args.db, read_only=True, config=config)
    except WarehouseError as exc:
        raise UserError(str(exc)) from exc


def write_bytes(path: Path, data: bytes) -> None:
    """Write an output file; a plain message when the folder or the disk refuses."""
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from exc


def write_text(path: Path | None, text: str) -> None:
    """Write UTF-8 text to a file, or to stdout without one."""
    if path is None:
        sys.stdout.write(text)
    else:
        write_bytes(path, text.encode("utf-8"))
