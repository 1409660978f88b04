"""Issue 20: the UTF-8 copy of a Windows-1252 file, made once and early.

A Windows-1252 file with bytes 0x80-0x9F is copied as UTF-8 before DuckDB scans it: that pass
reads every byte of the file.

- The loader hashes those blocks (on another thread) instead of reading the file a second
  time (etl/ingest/load.py `FileDigest`). What must not change: the digest is hashlib's SHA-256
  over the file's raw bytes, whichever way it was made, and a pass that stops early never
  leaves a digest of part of the file.
- `benzo-monitor load` begins the copy before it opens the warehouse (`PreparedCopy`), so the
  two run side by side; the load takes that copy, with the same results as a copy made by the
  load itself, and a copy no load takes is deleted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from etl.ingest import load as load_module
from etl.ingest.load import FileDigest, PreparedCopy, load_paths
from etl.ingest.read import BLOCK_BYTES, TRANSCODE_ENV, as_windows_1252
from tests.conftest import CANONICAL_HEADER, query

INIT5, RED20 = "5521950", "5521992"
OTHER = "1234567"  # another medicine: skipped


def _export(path: Path, other_lines: int) -> bytes:
    """A Windows-1252 `;` CSV, CRLF: 3 programme lines (lines 2-4, the third without a
    patient: a reject) then `other_lines` lines of another medicine with a euro sign (0x80)
    and 40 bytes of label. Returns the file's bytes."""
    header = ";".join([*CANONICAL_HEADER, "libellé"]) + "\r\n"
    text = header + (
        f"P1;PH‘1’;2024-03-04;{INIT5};1;23,24;Début €\r\n"
        f"P1;PH1;2024-03-18;{RED20};1;15,71;Palier – 20 €\r\n"
        f";PH2;2024-03-05;{INIT5};1;23,24;Œuvre – “€”\r\n"
    )
    other = "".join(
        f"Q{i};PH9;2024-03-04;{OTHER};1;3,10;autre € {'x' * 40}\r\n" for i in range(other_lines)
    )
    data = (text + other).encode("cp1252")
    path.write_bytes(data)
    return data


def test_a_copied_load_hashes_the_file_from_the_copy_blocks(cli, db, tmp_path, monkeypatch):
    """With the copy (BENZO_MONITOR_TRANSCODE=copy), a file of 40,003 lines (about 3.4 MB:
    four 1 MiB blocks) is hashed from the copy's blocks: the loader's own reading of the file
    (`sha256_of`) is made to fail, and the load still succeeds. Its ledger digest is
    hashlib.sha256 of the bytes written above, computed here from those bytes; its rows those
    of SPEC §3 by hand: 40,003 read, 2 new (lines 2 and 3), 40,000 skipped (another
    medicine), 1 rejected (line 4, no patient), with the Windows-1252 characters back
    (PH‘1’, the reject's raw label Œuvre – “€”)."""
    export = tmp_path / "export.csv"
    data = _export(export, 40_000)
    assert len(data) > 3 * BLOCK_BYTES
    monkeypatch.setenv(TRANSCODE_ENV, "copy")

    def no_second_reading(path):
        raise AssertionError(f"{path} read a second time for its digest")

    monkeypatch.setattr(load_module, "sha256_of", no_second_reading)
    status, out, err = cli("--db", db, "load", "--no-progress", export)
    assert status == 0, out + err
    assert query(
        db, "select file_sha256, rows_read, rows_new, rows_skipped, rows_rejected from loads"
    ) == [(hashlib.sha256(data).hexdigest(), 40_003, 2, 40_000, 1)]
    assert query(db, "select pharmacy_id from billing_lines order by line_number") == [
        ("PH‘1’",),
        ("PH1",),
    ]
    ((line, raw),) = query(db, "select line_number, raw_values from rejects")
    assert line == 4 and json.loads(raw)["libellé"] == "Œuvre – “€”"


def test_the_streamed_load_gives_the_same_digest(cli, db, tmp_path, monkeypatch):
    """Through the named pipe nothing reads the file's bytes as they are: its digest comes from
    a reading of its own, and is the same hashlib digest of the same bytes."""
    export = tmp_path / "export.csv"
    data = _export(export, 1_000)
    monkeypatch.setenv(TRANSCODE_ENV, "stream")
    status, out, err = cli("--db", db, "load", "--no-progress", export)
    assert status == 0, out + err
    assert query(db, "select file_sha256, rows_read from loads") == [
        (hashlib.sha256(data).hexdigest(), 1_003)
    ]


@pytest.fixture
def raw_file(tmp_path) -> tuple[Path, bytes]:
    """3 MiB and 5 bytes of every byte value in turn: 4 blocks, the last of 5 bytes."""
    data = bytes(range(256)) * (3 * BLOCK_BYTES // 256) + b"\x80\x9f\r\n;"
    path = tmp_path / "raw.bin"
    path.write_bytes(data)
    return path, data


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + BLOCK_BYTES] for i in range(0, len(data), BLOCK_BYTES)]


def test_a_digest_fed_every_block_is_that_of_the_file(raw_file):
    """Fed the 4 blocks in order then None: hashlib's digest of the 3 MiB + 5 bytes."""
    path, data = raw_file
    digest = FileDigest(path)
    feed = digest.feeder()
    for block in _blocks(data):
        feed(block)
    feed(None)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_digest_fed_part_of_the_file_reads_the_whole_file(raw_file):
    """A pass that stopped after 2 of the 4 blocks (2 MiB of 3 MiB + 5 bytes): the digest is
    not that of the 2 MiB but of the whole file, read again."""
    path, data = raw_file
    digest = FileDigest(path)
    feed = digest.feeder()
    for block in _blocks(data)[:2]:
        feed(block)
    feed(None)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert digest.hexdigest() != hashlib.sha256(data[: 2 * BLOCK_BYTES]).hexdigest()


def test_a_feeder_never_fed_nor_ended_does_not_hang(raw_file):
    """A feeder whose pass never began (the copy refused before its first block): the digest
    ends it and reads the file."""
    path, data = raw_file
    digest = FileDigest(path)
    assert digest.feeder() is not None
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_started_digest_takes_no_feeder(raw_file):
    """A digest already read by its own thread gives no feeder (the copy feeds nothing)."""
    path, data = raw_file
    digest = FileDigest(path)
    digest.start()
    assert digest.feeder() is None
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert FileDigest(path).hexdigest() == hashlib.sha256(data).hexdigest()  # never started


def _copies(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_load_takes_the_copy_prepared_before_the_warehouse_opened(tmp_path, monkeypatch):
    """A copy prepared for the file (as the command does before opening the warehouse) is the
    one the load reads: the file is copied once (as_windows_1252 called once, by the prepared
    copy), the ledger has hashlib's digest of the bytes, and the rows are those of SPEC §3 by
    hand (5,003 read, 2 new, 5,000 skipped, 1 rejected: line 4, no patient, with its label
    Œuvre – “€”). The work folder is empty afterwards."""
    from etl.base import warehouse
    from etl.ingest import load as module

    export = tmp_path / "export.csv"
    data = _export(export, 5_000)
    work = tmp_path / "work"
    monkeypatch.setenv(TRANSCODE_ENV, "copy")
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0].path)
        return as_windows_1252(*args, **kwargs)

    monkeypatch.setattr(module, "as_windows_1252", counted)
    prepared = PreparedCopy(export, work)
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        (outcome,) = load_paths(con, [export], prepared=prepared)
    finally:
        con.close()
    assert outcome.summary is not None, outcome.refused
    assert calls == [export]
    assert (outcome.summary.file_sha256, outcome.summary.rows_read) == (
        hashlib.sha256(data).hexdigest(),
        5_003,
    )
    db = tmp_path / "w.duckdb"
    assert query(db, "select rows_new, rows_skipped, rows_rejected from loads") == [(2, 5_000, 1)]
    ((line, raw),) = query(db, "select line_number, raw_values from rejects")
    assert line == 4 and json.loads(raw)["libellé"] == "Œuvre – “€”"
    assert _copies(work) == []


def test_a_prepared_copy_no_load_takes_is_deleted(tmp_path, monkeypatch):
    """Prepared for one file, then a load of another (or none at all): nothing is left in the
    work folder, and the other file loads as usual (its own digest)."""
    from etl.base import warehouse

    monkeypatch.setenv(TRANSCODE_ENV, "copy")
    first, other = tmp_path / "first.csv", tmp_path / "other.csv"
    _export(first, 2_000)
    data = _export(other, 10)
    work = tmp_path / "work"
    prepared = PreparedCopy(first, work)
    assert prepared.take(other) is None
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        (outcome,) = load_paths(con, [other], prepared=prepared)
    finally:
        con.close()
    assert outcome.summary.file_sha256 == hashlib.sha256(data).hexdigest()
    assert _copies(work) == []

    alone = PreparedCopy(first, work)  # never taken: closed by its owner
    alone.close()
    assert _copies(work) == []


def test_only_a_file_the_load_would_copy_is_prepared(tmp_path, monkeypatch):
    """A UTF-8 file, and a Windows-1252 file without bytes 0x80-0x9F (DuckDB reads it as
    latin-1 itself), need no copy: nothing is prepared, nothing written. The stream (forced)
    needs none either."""
    work = tmp_path / "work"
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text("patient_id;cnk\nP1;5521950\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("patient_id;libellé\nP1;é\n".encode("cp1252"))
    monkeypatch.setenv(TRANSCODE_ENV, "copy")
    for path in (utf8, latin):
        prepared = PreparedCopy(path, work)
        assert prepared.take(path) is None
        prepared.close()
    w1252 = tmp_path / "w1252.csv"
    _export(w1252, 10)
    monkeypatch.setenv(TRANSCODE_ENV, "stream")
    prepared = PreparedCopy(w1252, work)
    assert prepared.take(w1252) is None
    prepared.close()
    assert _copies(work) == []
