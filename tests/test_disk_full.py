"""Issue 19, item 6: a full disk during a load ends with exit status 3 and a plain message.

Before: three tracebacks (the failed commit, then `rollback` and `drop table` on a connection
whose transaction the failed commit had ended) and exit status 1, the status of a refused file.

The warehouse lives on a real, small file system: a 4 MiB tmpfs mounted for the test (this
needs root or CAP_SYS_ADMIN; without it the test is skipped, and says so). A first load of 3
lines fits; the second file (60,000 programme lines, distinct) does not: DuckDB cannot write
its write-ahead log. The command must end with status 3, the message "disk full — nothing
changed" naming the file, no traceback; the warehouse must equal its content before (every raw
table, row by row); and once there is room (the tmpfs remounted at 64 MiB) the same file loads:
3 + 60,000 lines, ledger = lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CANONICAL_HEADER, query, warehouse_content, write_delimited


def _mount(folder: Path, size: str, remount: bool = False) -> bool:
    options = f"remount,size={size}" if remount else f"size={size}"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return result.returncode == 0


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    if not _mount(folder, "4m"):
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk test did not run")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _load(db: Path, *files: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress",
         *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_a_full_disk_ends_with_status_3_and_changes_nothing(tiny, tmp_path):
    db = tiny / "warehouse.duckdb"
    rows = [
        [f"P{i:06d}", f"PH{i % 500}", f"2024-0{1 + i % 9}-1{i % 9}", "5521950", 1, "0"]
        for i in range(60_000)
    ]
    small = write_delimited(tmp_path / "small.csv", CANONICAL_HEADER,
                            [[f"S{i}", "PH1", "2024-03-04", "5521950", 1, "0"] for i in range(3)])  # fmt: skip
    big = write_delimited(tmp_path / "big.csv", CANONICAL_HEADER, rows)
    status, text = _load(db, small)
    assert status == 0, text
    before = warehouse_content(db)

    status, text = _load(db, big)
    flat = " ".join(text.split())
    assert status == 3, text
    assert "disk full — nothing changed: big.csv was not loaded" in flat
    assert "Traceback" not in text
    assert warehouse_content(db) == before

    assert _mount(tiny, "64m", remount=True)
    status, text = _load(db, big)
    assert status == 0, text
    assert query(db, "select count(*) from billing_lines") == [(60_003,)]
    assert query(db, "select sum(rows_new) from loads") == [(60_003,)]
