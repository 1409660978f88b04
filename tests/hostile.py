"""Helpers of the hostile-input and crash tests (issue 7): a real warehouse on disk, a digest of
its content, the load invariants of SPEC §3, the real command line, and a tally of the cases.

The invariants every load keeps, whatever the file:
- `load_paths` raises nothing for a bad file: a refusal is a FileRefused, which it reports;
- a refused file leaves the warehouse's loads, billing_lines and rejects exactly as they were
  (same rows: equal count and equal sum of row hashes), and its message is plain text that
  names the file (no traceback, no page-long dump);
- an accepted file accounts for every row it read, in its ledger row: read = new + present +
  skipped + rejected; its new lines and its rejects are exactly those the ledger announces; every
  reject carries one of the reasons of `etl.ingest.load.REASONS`; the lines stored obey SPEC §3's row
  checks; loading it again adds nothing.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import duckdb

from etl.base.warehouse import connect
from etl.ingest.load import REASONS, FileOutcome, load_paths

RAW_TABLES = ("loads", "billing_lines", "rejects")
HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "amount_eur"]
INIT5 = "5521950"  # a programme fee code (SPEC §2)
MAX_MESSAGE = 3000  # characters: a refusal is a message, not a dump of the file
# DuckDB's trim() (the loader trims every value) removes exactly these: Unicode space separators.
SPACES = "".join(chr(i) for i in range(0x3100) if unicodedata.category(chr(i)) == "Zs")

# cases run, by category: {"cases": n, "accepted": n, "refused": n, "cli": n}
TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
FIGURES_ENV = "BENZO_RELIABILITY_FIGURES"  # a JSON file to write the tallies to (optional)


def good_row(i: int, date: str = "14/03/2025", cnk: str = INIT5) -> list[str]:
    return [f"P{i:05d}", "PH01", date, cnk, "1", "23,24"]


def export_bytes(
    rows: list[list[str]],
    header: list[str] | None = HEADER,
    *,
    delimiter: str = ";",
    quoting: int = csv.QUOTE_MINIMAL,
    header_quoting: int | None = None,
) -> str:
    """A delimited export as text, written the way an office would (CRLF line ends)."""
    out = io.StringIO()
    if header is not None:
        csv.writer(
            out,
            delimiter=delimiter,
            lineterminator="\r\n",
            quoting=quoting if header_quoting is None else header_quoting,
        ).writerow(header)
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n", quoting=quoting).writerows(rows)
    return out.getvalue()


def digest(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Per raw table: its row count and the sum of its rows' hashes (equal content, equal
    digest; any row added, removed or changed changes it)."""
    return {
        table: con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {table} t").fetchone()
        for table in RAW_TABLES
    }


def digest_of(db: Path, read_only: bool = False) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(str(db), read_only=read_only)
    try:
        return digest(con)
    finally:
        con.close()


def assert_plain_refusal(message: str, path: Path) -> None:
    assert isinstance(message, str) and message.startswith(f"{path}: "), message[:300]
    assert "Traceback" not in message
    assert len(message) <= MAX_MESSAGE, f"{len(message)} characters: {message[:300]}"


class Warehouse:
    """A real warehouse file, loaded through `load_paths` with the invariants checked."""

    def __init__(self, db: Path):
        self.db = db
        self.con = connect(db)

    def close(self) -> None:
        self.con.close()

    def check_load(
        self,
        path: Path,
        category: str,
        *,
        mapping: Path | None = None,
        reload: bool = True,
    ) -> FileOutcome:
        """Load `path`, check the invariants (module docstring) and count the case."""
        before = digest(self.con)
        (outcome,) = load_paths(self.con, [path], mapping)
        TALLY[category]["cases"] += 1
        if outcome.refused is not None:
            TALLY[category]["refused"] += 1
            assert digest(self.con) == before, f"refused {path.name!r} changed the warehouse"
            assert_plain_refusal(outcome.refused, path)
            return outcome
        TALLY[category]["accepted"] += 1
        self.assert_accounted(outcome, before)
        if reload:
            self.assert_reload_adds_nothing(path, outcome, mapping)
        return outcome

    def ledger(self, load_id: int) -> tuple:
        return self.con.execute(
            "select file_name, file_sha256, rows_read, rows_new, rows_present, rows_skipped, "
            "rows_rejected from loads where load_id = ?",
            [load_id],
        ).fetchone()

    def assert_accounted(self, outcome: FileOutcome, before: dict) -> None:
        s = outcome.summary
        con = self.con
        row = self.ledger(s.load_id)
        assert row is not None, "an accepted file has no ledger row"
        name, sha, read, new, present, skipped, rejected = row
        assert name == outcome.path.name
        assert read == new + present + skipped + rejected, row
        assert (read, new, present, skipped, rejected) == (
            s.rows_read, s.rows_new, s.rows_present, s.rows_skipped, s.rows_rejected,
        )  # fmt: skip
        after = digest(con)
        assert after["loads"][0] == before["loads"][0] + 1
        (lines,) = con.execute(
            "select count(*) from billing_lines where load_id = ?", [s.load_id]
        ).fetchone()
        assert lines == new, "the lines stored are not the new lines the ledger announces"
        assert after["billing_lines"][0] == before["billing_lines"][0] + new
        (own_rejects,) = con.execute(
            "select count(*) from rejects where load_id = ?", [s.load_id]
        ).fetchone()
        assert after["rejects"][0] == before["rejects"][0] + own_rejects
        # Rejects are kept once per file content and line (SPEC §3: nothing counted twice).
        n_rejects, n_lines, reasons = con.execute(
            "select count(*), count(distinct line_number), list(distinct reason) "
            "from rejects where file_sha256 = ?",
            [sha],
        ).fetchone()
        assert n_rejects == n_lines == rejected, (n_rejects, n_lines, rejected)
        assert set(reasons or []) <= set(REASONS), reasons
        # What is stored obeys the row checks of SPEC §3.
        (bad,) = con.execute(
            """
            select count(*) from billing_lines
            where load_id = ? and not (
                delivery_date between date '2020-01-01' and current_date
                and quantity between -3 and 3 and quantity <> 0
                and regexp_full_match(cnk, '[0-9]{7}')
                and trim(patient_id) <> '' and trim(pharmacy_id) <> '')
            """,
            [s.load_id],
        ).fetchone()
        assert bad == 0

    def assert_reload_adds_nothing(
        self, path: Path, outcome: FileOutcome, mapping: Path | None
    ) -> None:
        s = outcome.summary
        before = digest(self.con)
        (again,) = load_paths(self.con, [path], mapping)
        assert again.refused is None, again.refused
        a = again.summary
        assert a.rows_new == 0
        assert a.rows_present == s.rows_new + s.rows_present
        assert (a.rows_read, a.rows_skipped, a.rows_rejected) == (
            s.rows_read, s.rows_skipped, s.rows_rejected,
        )  # fmt: skip
        assert a.previously_loaded_as is not None and a.previously_loaded_as <= s.load_id
        after = digest(self.con)
        assert after["billing_lines"] == before["billing_lines"]
        assert after["rejects"] == before["rejects"]
        assert after["loads"][0] == before["loads"][0] + 1


def run_cli(*args: str | Path, timeout: float = 120) -> tuple[int, str, str]:
    """The real `benzo-monitor` in a subprocess: (exit status, stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "etl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "132"},
    )
    return result.returncode, result.stdout, result.stderr


def assert_cli_load(db: Path, files: list[Path], refused: list[bool], category: str) -> None:
    """Load `files` with the real command: a plain summary, no traceback; exit status 1 when a
    file was refused (SPEC §10), else 0."""
    status, out, err = run_cli("--db", db, "load", "--no-progress", *files)
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert status == (1 if any(refused) else 0), (status, out[-2000:], err[-2000:])
    assert "Load summary" in out
    assert out.count("refused:") == sum(refused), out[-3000:]
    TALLY[category]["cli_runs"] += 1


def write_figures() -> None:
    """Add the tallies to the JSON file named by $BENZO_RELIABILITY_FIGURES, if set."""
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    path = Path(target)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures.setdefault("hostile_input", {}).update({k: dict(v) for k, v in TALLY.items()})
    figures["written_at"] = dt.datetime.now().isoformat(timespec="seconds")
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
