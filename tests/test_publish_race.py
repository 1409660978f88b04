"""Issue 19, item 1: a second writer started while a load publishes its snapshot.

`benzo-monitor load` holds DuckDB's lock on the warehouse from its first connection to the
end (etl/base/publish.py). On Linux that lock is a POSIX record lock, and closing ANY file
descriptor a process has on a file drops every such lock the process holds on it: the old
publication copied the warehouse with `shutil.copyfile`, which opened and closed the file, so
from the copy to the end of the load another process could open the warehouse for writing.

Here a real `python -m etl.cli load` (the first writer) loads a small file into a warehouse
whose snapshot folder exists (so it publishes). A second real `python -m etl.cli load` of
another file is started at a delay chosen to reach its connection during the first's
publication (its start-up, about 0.7 s, is measured first), spread over 20 runs; neither is
paused. Per run:

- each ends with status 0, or with status 2 and the plain line "... is in use by another
  program ..." (refused before reading its file, nothing in the ledger); no traceback; at the
  shortest delays the second may be the one that gets in first, and the first is refused;
- the two never write at once: when both loaded, the later one's ledger `started_at` is after
  the earlier one's snapshot's `published_at` (a load publishes at the very end of its run,
  holding the lock; a writer that got in during the publication started before that instant);
- over the 20 runs at least one writer was refused (the delays did reach the lock).

At the end the refused second files are loaded in one more process, and the ledger must
equal the lines: each of the 42 files (the base, the timed one and 2 per run) once in `loads`,
each with its 3 programme lines (the hand-made rows below: 3 programme lines and 1 other
medicine per file, distinct patients), so 42 x 3 = 126 rows in `billing_lines` and
sum(rows_new) = 126.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from etl.base.config import load_config
from etl.base.publish import ensure_published, snapshot_dir
from tests.conftest import CANONICAL_HEADER, write_delimited

RUNS = 20


def _export(path: Path, tag: str) -> Path:
    """3 programme lines (initiation interview 5521950, SPEC §2) and 1 other medicine."""
    rows = [
        [f"{tag}-a", "PH1", "2024-03-04", "5521950", 1, "0"],
        [f"{tag}-b", "PH1", "2024-03-05", "5521950", 1, "0"],
        [f"{tag}-c", "PH2", "2024-03-06", "5521950", 1, "0"],
        [f"{tag}-d", "PH2", "2024-03-06", "1234567", 1, "3,10"],
    ]
    return write_delimited(path, CANONICAL_HEADER, rows)


def _cli(db: Path, *files: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress",
         *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _published_at(db: Path, load_id: int) -> dt.datetime:
    """When the snapshot the load `load_id` published was computed (its own metadata)."""
    (path,) = [p for p in snapshot_dir(db).glob(f"*-{load_id}.duckdb")]
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select published_at from published.snapshot_meta").fetchone()[0]
    finally:
        con.close()


def test_a_second_writer_never_gets_in_during_publication(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    config = load_config()
    base = _export(tmp_path / "base.csv", "base")
    first = _cli(db, base)
    assert first.wait(60) == 0, first.stderr
    ensure_published(db, config)  # the snapshot folder exists: every load now publishes

    # Start-up of the command until it opens the warehouse (a missing file: no load).
    started = time.perf_counter()
    probe = _cli(db, tmp_path / "missing.csv")
    probe.communicate(timeout=60)
    startup = time.perf_counter() - started
    # One load and its publication, timed, to aim the second writer at the publication.
    timed = _cli(db, _export(tmp_path / "timed.csv", "timed"))
    started = time.perf_counter()
    assert timed.wait(60) == 0
    whole = time.perf_counter() - started

    refused: list[Path] = []
    overlaps = 0
    for run in range(RUNS):
        one = _export(tmp_path / f"first-{run}.csv", f"f{run}")
        two = _export(tmp_path / f"second-{run}.csv", f"s{run}")
        # The second connects at about delay + startup; spread that over the last 60 % of the
        # first's run (its publication and the load before it), run by run.
        delay = max(0.0, whole * (0.4 + 0.6 * run / (RUNS - 1)) - startup)
        p1 = _cli(db, one)
        time.sleep(delay)
        p2 = _cli(db, two)
        outcomes = []
        for process, export in ((p1, one), (p2, two)):
            out, err = process.communicate(timeout=60)
            assert "Traceback" not in out + err, (run, err)
            if process.returncode == 2:
                assert "is in use by another program" in err, (run, err)
                refused.append(export)
            else:
                assert process.returncode == 0, (run, err)
                outcomes.append(export)
        assert outcomes, f"run {run}: both writers refused"
        con = duckdb.connect(str(db), read_only=True)
        try:
            started = dict(con.execute("select file_name, started_at from loads").fetchall())
            load_ids = dict(con.execute("select file_name, load_id from loads").fetchall())
        finally:
            con.close()
        assert not any(export.name in started for export in refused if export in (one, two))
        if len(outcomes) == 2:
            earlier, later = sorted(outcomes, key=lambda export: started[export.name])
            published = _published_at(db, load_ids[earlier.name])
            overlaps += started[later.name] < published
            assert started[later.name] >= published, (
                f"run {run}: {later.name} started its load at {started[later.name]}, during "
                f"the publication of {earlier.name} (published at {published})"
            )
    assert refused, "no second writer reached the warehouse while the first held it"
    if refused:
        last = _cli(db, *refused)
        assert last.wait(60) == 0, last.stderr.read()

    con = duckdb.connect(str(db), read_only=True)
    try:
        files = [r[0] for r in con.execute("select file_name from loads").fetchall()]
        (lines,) = con.execute("select count(*) from billing_lines").fetchone()
        (new,) = con.execute("select sum(rows_new) from loads").fetchone()
    finally:
        con.close()
    assert sorted(files) == sorted(
        ["base.csv", "timed.csv"]
        + [f"first-{r}.csv" for r in range(RUNS)]
        + [f"second-{r}.csv" for r in range(RUNS)]
    )
    assert lines == new == 3 * (2 + 2 * RUNS)
    print(f"\nrace: {RUNS} runs, {len(refused)} writers refused, {overlaps} overlaps, startup {startup:.2f} s, "
          f"load+publish {whole:.2f} s")  # fmt: skip
