"""Shared fixtures: real warehouse files and real export files written to disk."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import duckdb
import pytest

from etl.cli import main as cli_main

CANONICAL_HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "amount_eur"]


def write_delimited(
    path: Path,
    header: list[str],
    rows: list[list],
    *,
    delimiter: str = ";",
    encoding: str = "utf-8",
    bom: bool = False,
    gz: bool = False,
) -> Path:
    """Write a delimited export the way an office would (quoting only where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def warehouse_content(db: Path) -> dict[str, list]:
    """Every row of the raw tables, sorted: to compare a warehouse before and after."""
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        return {
            t: sorted(map(repr, con.execute(f'select * from "{t}"').fetchall())) for t in tables
        }
    finally:
        con.close()


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def cli(capsys):
    """Run `benzo-monitor ARGS...` in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        status = cli_main([str(a) for a in args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def query(db: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --- browser tests (tests/browser.py) -----------------------------------------------------


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A real `benzo-monitor serve` on a generated warehouse (Feb 2023 - Jun 2025), shared by
    the browser tests. Tests that change its data must restore it or use their own server."""
    from bench.served import start_server
    from tests.browser import Served, build_warehouse

    folder = tmp_path_factory.mktemp("served")
    db = build_warehouse(folder)
    process, url = start_server(db)
    yield Served(url=url, db=db, process=process, data_dir=folder)
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (skipped where it is not installed); downloads go to browser.downloads."""
    from tests.browser import make_driver

    downloads = tmp_path_factory.mktemp("downloads")
    driver = make_driver(downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


def four_line_warehouse(folder: Path) -> Path:
    """A warehouse loaded from one export of four lines, March 2025: P1 (5 steps) initiated on
    the 3rd with a 10-capsule step the same day, P2 and P3 (10 steps) on the 4th and 5th."""
    rows = [
        ["P1", "PH1", "03/03/2025", "5521950", "1", "23,24"],
        ["P2", "PH1", "04/03/2025", "5521976", "1", "23,24"],
        ["P3", "PH2", "05/03/2025", "5521976", "1", "23,24"],
        ["P1", "PH1", "03/03/2025", "5521984", "1", "15,71"],
    ]
    db = folder / "warehouse.duckdb"
    export = write_delimited(folder / "a.csv", CANONICAL_HEADER, rows)
    assert cli_main(["--db", str(db), "load", str(export)]) == 0
    return db
