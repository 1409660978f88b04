"""`benzo-monitor unload LOAD_ID` (issue 18, item 5): one load removed in one transaction,
audited, published again; every figure returns exactly to what it was before the load, and the
same file can be loaded again (SPEC §3: idempotency by fingerprint).

Real exports on disk, loaded by the real command line into a real warehouse.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from etl.base.audit import audit_path
from etl.base.publish import current_snapshot_path, open_snapshot
from tests.conftest import warehouse_content, write_delimited
from tests.sqlcase import INIT5, INIT10, RED10, RED20, run_cli

HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "atc"]
BZRA_CNK = "9999999"  # unknown to any reference: a BZRA line by its own ATC (SPEC §14)


def first_file(tmp_path):
    """File A: P1 starts a 10-step programme on 2025-06-02 (and a 10-capsule step), P2 a 5-step
    one on 2025-06-03 (and a 20-capsule step). No BZRA line."""
    return write_delimited(
        tmp_path / "june-a.csv",
        HEADER,
        [
            ["P1", "PH1", "02/06/2025", INIT10, "1", ""],
            ["P1", "PH1", "02/06/2025", RED10, "1", ""],
            ["P2", "PH1", "03/06/2025", INIT5, "1", ""],
            ["P2", "PH1", "03/06/2025", RED20, "1", ""],
        ],
    )


def second_file(tmp_path):
    """File B, lines 2-7: line 2 is file A's line 2 (already present); P3 starts a 10-step
    programme on 2025-06-10 with a step (lines 3, 4: new); a BZRA delivery by its own ATC
    (line 5: new, in bzra_lines); another medicine (line 6: skipped); quantity 0 (line 7:
    rejected, quantity_zero)."""
    return write_delimited(
        tmp_path / "june-b.csv",
        HEADER,
        [
            ["P1", "PH1", "02/06/2025", INIT10, "1", ""],
            ["P3", "PH2", "10/06/2025", INIT10, "1", ""],
            ["P3", "PH2", "10/06/2025", RED10, "1", ""],
            ["P3", "PH2", "05/06/2025", BZRA_CNK, "1", "N05BA01"],
            ["P4", "PH2", "06/06/2025", "1111111", "1", ""],
            ["P5", "PH2", "07/06/2025", INIT5, "0", ""],
        ],
    )


def cli_ok(db, *argv) -> str:
    status, out = run_cli("--db", str(db), *map(str, argv))
    assert status == 0, out
    return out


def figures(db) -> dict[str, str]:
    """The bytes of the documents users take away, by command (SPEC §10)."""
    docs = {
        "report": ("report", "--month", "2025-06"),
        "report_exact": ("report", "--month", "2025-06", "--no-suppress"),
        "report_csv": ("report", "--month", "2025-06", "--format", "csv", "--no-suppress"),
        "cohorts": ("cohorts", "--no-suppress"),
        "compliance": ("compliance", "--no-suppress"),
    }
    return {name: cli_ok(db, *argv) for name, argv in docs.items()}


def digest(docs: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in docs.items()}


def ledger(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select load_id, rows_read, rows_new, rows_present, rows_skipped, rows_rejected, "
            "rows_bzra from loads order by load_id"
        ).fetchall()
    finally:
        con.close()


def events(db) -> list[dict]:
    path = audit_path(db)
    return [json.loads(line) for line in path.read_text().splitlines()]


def snapshot_loads(db) -> list[int]:
    con = open_snapshot(current_snapshot_path(db))
    try:
        return [i for (i,) in con.execute("select load_id from loads order by 1").fetchall()]
    finally:
        con.close()


def test_load_then_unload_gives_back_the_same_bytes(tmp_path):
    db = tmp_path / "w.duckdb"
    cli_ok(db, "load", "--no-progress", first_file(tmp_path))
    cli_ok(db, "publish")  # a dashboard's snapshot folder: loads and unloads publish again
    before = figures(db)
    content_before = warehouse_content(db)
    # Scheme 10 in June 2025: P1 initiated (A); B adds P3. Worked by hand: 1, then 2.
    assert json.loads(before["report_exact"])["schemes"]["10"]["patients_initiated"] == 1
    assert json.loads(before["compliance"])["rules"]["R16"] is None  # no BZRA delivery yet

    cli_ok(db, "load", "--no-progress", second_file(tmp_path))
    # B: 6 rows read; 3 new (lines 3, 4, 5), 1 present (line 2), 1 skipped, 1 rejected, 1 BZRA.
    assert ledger(db) == [(1, 4, 4, 0, 0, 0, 0), (2, 6, 3, 1, 1, 1, 1)]
    loaded = figures(db)
    assert json.loads(loaded["report_exact"])["schemes"]["10"]["patients_initiated"] == 2
    assert json.loads(loaded["compliance"])["rules"]["R16"] is not None
    assert snapshot_loads(db) == [1, 2]

    status, out = run_cli("--db", str(db), "unload", "2")
    assert status == 0, out
    after = figures(db)
    assert digest(after) == digest(before)
    assert after == before
    # The warehouse holds what it held, but the unload's own record (and the sequence).
    content_after = warehouse_content(db)
    removed = content_after.pop("unloads")
    assert len(removed) == 1 and "june-b.csv" in removed[0]
    assert {k: v for k, v in content_after.items() if k != "unloads"} == {
        k: v for k, v in content_before.items() if k != "unloads"
    }
    assert snapshot_loads(db) == [1]  # published again, without load 2

    # Audited like a load: B's line counts removed (2 programme lines, 1 BZRA line, 1 reject).
    unloaded = [e for e in events(db) if e["event"] == "unload"]
    assert len(unloaded) == 1
    assert (unloaded[0]["load_id"], unloaded[0]["file"], unloaded[0]["rows_new"]) == (
        2, "june-b.csv", 2,
    )  # fmt: skip
    assert (unloaded[0]["rows_bzra"], unloaded[0]["rows_rejected"]) == (1, 1)
    assert unloaded[0]["sha256"] == hashlib.sha256(second_file(tmp_path).read_bytes()).hexdigest()

    # The same file loads again as new (its fingerprints are gone): the same counts as at
    # first, under a new id, and the same figures as after the first time.
    cli_ok(db, "load", "--no-progress", second_file(tmp_path))
    assert ledger(db) == [(1, 4, 4, 0, 0, 0, 0), (3, 6, 3, 1, 1, 1, 1)]
    assert figures(db) == loaded
    con = duckdb.connect(str(db), read_only=True)
    try:  # its rejected row is stored again too (line 7), under the new load
        rejects = con.execute("select load_id, line_number, reason from rejects").fetchall()
    finally:
        con.close()
    assert rejects == [(3, 7, "quantity_zero")]


def test_unknown_and_already_unloaded_ids_are_refused_plainly(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    cli_ok(db, "load", "--no-progress", first_file(tmp_path))
    content = warehouse_content(db)
    status, _ = run_cli("--db", str(db), "unload", "7")
    message = capsys.readouterr().err
    assert status == 1
    assert "there is no load 7 in the ledger" in message and "Traceback" not in message
    assert warehouse_content(db) == content
    cli_ok(db, "unload", "1")
    capsys.readouterr()
    status, _ = run_cli("--db", str(db), "unload", "1")
    message = " ".join(capsys.readouterr().err.split())
    assert status == 1
    assert "load 1 (june-a.csv) was already unloaded on" in message
    refused = [e for e in events(db) if e["event"] == "unload_refused"]
    assert [(e["load_id"], e["reason"]) for e in refused] == [(7, "unknown"), (1, "already")]
    # No warehouse at all: a plain message, and no empty warehouse created.
    status, _ = run_cli("--db", str(tmp_path / "none.duckdb"), "unload", "1")
    assert status == 2 and "no warehouse at" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb").exists()


def test_a_load_a_later_overlapping_load_depends_on_is_refused(tmp_path, capsys):
    """Load 2 (file B) counted line 2 as already present: stored once, under load 1. Removing
    load 1 would take that line from under load 2, so it is refused and nothing changes;
    unloading 2 first, then 1, empties the warehouse."""
    db = tmp_path / "w.duckdb"
    cli_ok(db, "load", "--no-progress", first_file(tmp_path))
    cli_ok(db, "load", "--no-progress", second_file(tmp_path))
    content = warehouse_content(db)
    status, _ = run_cli("--db", str(db), "unload", "1")
    message = " ".join(capsys.readouterr().err.split())
    assert status == 1
    assert "later load(s) 2 (june-b.csv)" in message and "nothing changed" in message
    assert warehouse_content(db) == content
    cli_ok(db, "unload", "2")
    cli_ok(db, "unload", "1")
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = [
            con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("loads", "billing_lines", "bzra_lines", "rejects", "unloads")
        ]
    finally:
        con.close()
    assert counts == [0, 0, 0, 0, 2]


def test_a_load_seen_by_an_issued_pack_is_refused(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    cli_ok(db, "load", "--no-progress", first_file(tmp_path))
    cli_ok(db, "report", "--month", "2025-06", "--format", "html", "--output", tmp_path / "p.html")
    content = warehouse_content(db)
    status, _ = run_cli("--db", str(db), "unload", "1")
    message = " ".join(capsys.readouterr().err.split())
    assert status == 1
    assert "was seen by the report pack(s) 1" in message
    assert warehouse_content(db) == content


def test_a_failure_inside_the_transaction_changes_nothing(tmp_path):
    """Atomic: an error after the lines are deleted (here the `unloads` row cannot be written,
    its primary key taken) rolls everything back."""
    from etl.base.warehouse import connect
    from etl.ingest.unload import unload

    db = tmp_path / "w.duckdb"
    cli_ok(db, "load", "--no-progress", first_file(tmp_path))
    con = connect(db)
    try:
        con.execute(
            "insert into unloads values (1, 'x', 'y', null, 0, 0, 0, current_timestamp, null)"
        )
        before = con.execute("select count(*) from billing_lines").fetchone()[0]
        try:
            unload(con, 1)
        except duckdb.ConstraintException:
            pass
        else:
            raise AssertionError("the unload should have failed")
        after = con.execute("select count(*) from billing_lines").fetchone()[0]
        ledger_rows = con.execute("select count(*) from loads").fetchone()[0]
    finally:
        con.close()
    assert (before, after, ledger_rows) == (4, 4, 1)
