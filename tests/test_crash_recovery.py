"""Crashes (issue 7, item 2): a load killed with SIGKILL at a random moment leaves the warehouse
readable and equal to its state before that file or after it, never in between; the next load
works and gives the state after the file.

A real `benzo-monitor load` subprocess loads a generated export (a Windows-1252 CSV with other
medicines, about a second of work) into a copy of one "before" warehouse and is killed after a
seeded random delay spanning the whole command: start-up, reading, checking, the commit and, for
the half of the kills whose warehouse has a snapshot folder (SPEC: readers see published
snapshots, etl/base/publish.py), the publication. After each kill:
- the warehouse opens read-write (DuckDB replays its write-ahead log) and its content is the
  "before" or the "after" content (the after content comes from the same load, not killed);
- the ledger has no row without its lines (each load's rows_new lines are there);
- the snapshot pointer CURRENT names a complete snapshot that opens read-only;
- temporary files left behind (links, transcoded copies, `*.tmp` snapshot copies) do not stop
  the next load, which removes them and gives the after content (and, with a snapshot folder,
  publishes a snapshot of it).

Content compares the data, not the run: loads without ids and times, lines and rejects without
load ids (a killed load may have drawn a load id from the sequence before dying).
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from etl.base.config import load_config
from etl.base.publish import (
    current_snapshot_path,
    ensure_published,
    open_snapshot,
    snapshot_dir,
)
from etl.base.warehouse import connect
from etl.ingest.load import load_paths
from etl.ingest.read import MEMORY_WORKDIR
from tests.hostile import FIGURES_ENV, export_bytes, good_row

KILLS = 20  # half of them with a snapshot folder
SEED = 20250702
LOADS_COLUMNS = (
    "file_name, file_sha256, file_bytes, file_format, encoding, delimiter, mapping_file, "
    "rows_read, rows_new, rows_present, rows_skipped, rows_rejected, min_delivery_date, "
    "max_delivery_date"
)
LINES_COLUMNS = (
    "fingerprint, occurrence, line_number, patient_id, pharmacy_id, delivery_date, cnk, "
    "quantity, amount_eur, billing_month, insurer_code, patient_birth_year, patient_sex, "
    "pharmacy_postcode, prescriber_id"
)


def content(con: duckdb.DuckDBPyConnection) -> dict:
    """The warehouse's data: the ledger rows (sorted) and a digest of lines and rejects."""
    loads = sorted(map(repr, con.execute(f"select {LOADS_COLUMNS} from loads").fetchall()))
    lines = con.execute(
        f"select count(*), coalesce(sum(hash(({LINES_COLUMNS}))), 0) from billing_lines"
    ).fetchone()
    rejects = con.execute(
        "select count(*), coalesce(sum(hash((file_sha256, line_number, reason, raw_values))), 0)"
        " from rejects"
    ).fetchone()
    return {"loads": loads, "billing_lines": lines, "rejects": rejects}


def assert_ledger_consistent(con: duckdb.DuckDBPyConnection) -> None:
    """Every ledger row has exactly its new lines; no line or reject without its ledger row."""
    (bad,) = con.execute(
        """
        select count(*) from loads l
        where rows_new <> (select count(*) from billing_lines b where b.load_id = l.load_id)
           or rows_read <> rows_new + rows_present + rows_skipped + rows_rejected
        """
    ).fetchone()
    assert bad == 0
    (orphans,) = con.execute(
        "select (select count(*) from billing_lines where load_id not in (select load_id from loads))"
        " + (select count(*) from rejects where load_id not in (select load_id from loads))"
    ).fetchone()
    assert orphans == 0


def snapshot_state(db: Path) -> int | None:
    """The max_load_id of the snapshot CURRENT names (which must open read-only and be
    complete); None without a snapshot folder."""
    if not snapshot_dir(db).exists():
        return None
    path = current_snapshot_path(db)
    assert path is not None, "CURRENT names no snapshot file"
    snap = open_snapshot(path)
    try:
        (max_load_id,) = snap.execute("select max_load_id from published.snapshot_meta").fetchone()
        (marts,) = snap.execute(
            "select count(*) from duckdb_tables() where schema_name = 'published'"
        ).fetchone()
        assert marts > 1
        return max_load_id or 0
    finally:
        snap.close()


def leftovers(db: Path, workdir: Path) -> list[str]:
    """Temporary files of loads and publications: links and copies of the export (in the
    work folder or the memory one, etl/ingest/read.py), snapshot copies (`*.tmp`)."""
    names = [
        p.name for folder in (workdir, MEMORY_WORKDIR) if folder.exists() for p in folder.iterdir()
    ]
    folder = snapshot_dir(db)
    if folder.exists():
        names += [p.name for p in folder.glob("*.tmp*")]
    return sorted(names)


def cli_load(db: Path, export: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress", str(export)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The export, the before warehouses (without and with a snapshot folder), the after
    content of each (the same load, not killed) and how long that load takes."""
    from etl.synthetic.generate import generate

    folder = tmp_path_factory.mktemp("crash")
    config = load_config()
    result = generate(
        folder / "export", start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31),
        weekly_starts=10, other_lines=50_000, split="single", today=dt.date(2025, 7, 15),
    )  # fmt: skip
    (export,) = result.files
    # A euro sign (byte 0x80 in Windows-1252) in the first row: the loader first copies the
    # file to read it (etl/ingest/read.py as_windows_1252), one more phase to be killed in.
    header, _, rows = export.read_bytes().partition(b"\r\n")
    export.write_bytes(header + b"\r\n" + rows.replace(b"g\xe9lules", b"g\xe9lules \x80", 1))
    first = folder / "first.csv"
    first.write_text(export_bytes([good_row(i) for i in range(5)]))
    env = {**os.environ, "TMPDIR": str(folder / "tmp")}
    (folder / "tmp").mkdir()
    variants = {}
    for published in (False, True):
        db = folder / f"before-{int(published)}" / "warehouse.duckdb"
        db.parent.mkdir()
        con = connect(db, config=config)
        (outcome,) = load_paths(con, [first], config=config)
        assert outcome.summary and outcome.summary.rows_new == 5
        before = content(con)
        con.close()
        if published:
            ensure_published(db, config)
        reference = folder / f"after-{int(published)}" / "warehouse.duckdb"
        shutil.copytree(db.parent, reference.parent)
        started = time.perf_counter()
        process = cli_load(reference, export, env)
        assert process.wait(timeout=120) == 0, process.stderr.read()
        seconds = time.perf_counter() - started
        con = duckdb.connect(str(reference))
        after = content(con)
        assert_ledger_consistent(con)
        (export_new,) = con.execute(
            "select rows_new from loads where file_name = ?", [export.name]
        ).fetchone()
        con.close()
        assert after != before and export_new > 0
        assert snapshot_state(reference) == (2 if published else None)
        variants[published] = dict(
            db=db, before=before, after=after, seconds=seconds, export_new=export_new
        )
    # How long the command takes to start and open the warehouse (a refused file: no load).
    empty = folder / "empty.csv"
    empty.write_bytes(b"")
    started = time.perf_counter()
    process = cli_load(folder / "after-0" / "warehouse.duckdb", empty, env)
    process.wait(timeout=60)
    startup = time.perf_counter() - started
    return dict(folder=folder, export=export, env=env, variants=variants, startup=startup,
                config=config)  # fmt: skip


@pytest.mark.slow
def test_killed_loads_leave_before_or_after_and_the_next_load_works(setup, monkeypatch):
    folder, export, config = setup["folder"], setup["export"], setup["config"]
    workdir = folder / "tmp" / "benzo-monitor"
    # The next load runs in this process: its temporary files go where the killed ones went.
    monkeypatch.setattr(tempfile, "tempdir", str(folder / "tmp"))
    rng = random.Random(SEED)
    # Seeded, stratified delays over each variant's whole run: 3 kills in the start-up (Python
    # and the warehouse opening), the others one in each equal slice of the rest of the run.
    per_variant = KILLS // 2
    startup = setup["startup"]
    plan = [(published, i, rng.random()) for published in (False, True) for i in range(per_variant)]
    rng.shuffle(plan)
    duration = {published: v["seconds"] for published, v in setup["variants"].items()}

    def delay_of(published: bool, i: int, u: float) -> float:
        if i < 3:
            return startup * (i + u) / 3
        rest = max(duration[published] - startup, 0.05)
        return startup + rest * (i - 3 + u) / (per_variant - 3)

    found, phases, kills, ended = collections.Counter(), collections.Counter(), [], 0
    started_all = time.perf_counter()
    while plan:
        published, i, u = plan.pop()
        variant = setup["variants"][published]
        run = folder / f"run-{len(kills) + ended:02d}"
        db = run / "warehouse.duckdb"
        shutil.copytree(variant["db"].parent, run)
        before_snapshot = snapshot_state(db)
        delay = delay_of(published, i, u)

        process = cli_load(db, export, setup["env"])
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        errors = process.stderr.read().decode(errors="replace")
        assert "Traceback" not in errors, errors[-3000:]
        killed = process.returncode == -signal.SIGKILL

        left = leftovers(db, workdir)
        wal = Path(f"{db}.wal").exists()
        con = duckdb.connect(str(db))  # read-write: replays the write-ahead log
        state = content(con)
        assert_ledger_consistent(con)
        con.close()
        assert state in (variant["before"], variant["after"]), f"run {run.name}: a state between"
        which = "after" if state == variant["after"] else "before"
        snap = snapshot_state(db)
        if published:
            assert snap in (before_snapshot, 2), snap  # the old snapshot or the new one, whole
        mine = [n for n in left if f"-{process.pid}-" in n]
        if not killed:  # it ended before the delay: the run is shorter than measured
            assert which == "after" and process.returncode == 0
            duration[published] = min(duration[published], delay) * 0.97
            plan.append((published, i, u))
            ended += 1
        elif delay < setup["startup"] and which == "before" and not mine:
            phase = "start-up"
        elif which == "before":
            copied = any(n.startswith("transcoded") for n in mine)  # the copy lives until the end
            phase = (
                "reading its copy, before the commit" if copied else "loading, before the commit"
            )
        elif published and any(n.endswith((".tmp", ".tmp.wal")) for n in left):
            phase = "publishing"
        elif published and snap != 2:
            phase = "committed, not yet publishing"
        else:
            phase = "committed, ending"

        # The next load: not killed, it works, cleans up and gives the after content.
        con = connect(db, config=config)
        try:
            (outcome,) = load_paths(con, [export], config=config)
            assert outcome.summary is not None, outcome.refused
            assert_ledger_consistent(con)
            got = content(con)
            (max_load_id,) = con.execute("select max(load_id) from loads").fetchone()
        finally:
            con.close()
        want = dict(variant["after"])
        if which == "after":  # the file was in already: one more ledger row, nothing new
            assert (outcome.summary.rows_new, outcome.summary.rows_present) == (
                0, variant["export_new"],
            )  # fmt: skip
            want["loads"] = sorted(want["loads"] + [reload_row(got, want)])
        assert got == want, f"run {run.name}: the next load did not give the after content"
        assert [n for n in leftovers(db, workdir) if f"-{process.pid}-" in n or ".tmp" in n] == []
        if published:
            assert snapshot_state(db) == max_load_id
        shutil.rmtree(run)
        if killed:
            found[which] += 1
            phases[phase] += 1
            kills.append((published, round(delay, 2), phase, which, wal, left))
        assert ended <= KILLS, "the runs keep ending before the kill"
    seconds = time.perf_counter() - started_all

    assert len(kills) == KILLS
    assert found["before"] and found["after"], found  # the kills spanned the commit
    record_figures(setup, found, phases, kills, ended, seconds)


def reload_row(got: dict, want: dict) -> str:
    """The ledger row the next load added when the killed one had committed (a reload)."""
    extra = collections.Counter(got["loads"]) - collections.Counter(want["loads"])
    assert sum(extra.values()) == 1, extra
    return next(iter(extra))


def record_figures(setup, found, phases, kills, ended, seconds) -> None:
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    import json

    path = Path(target)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures["crash_recovery"] = {
        "kills": len(kills),
        "runs_ended_before_the_kill": ended,
        "states_found": dict(found),
        "phases": dict(phases),
        "load_seconds": {str(k): round(v["seconds"], 2) for k, v in setup["variants"].items()},
        "startup_seconds": round(setup["startup"], 2),
        "test_seconds": round(seconds, 1),
        "wal_replayed": sum(k[4] for k in kills),
        "kills_detail": [list(k[:5]) + [",".join(k[5])] for k in kills],
    }
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
