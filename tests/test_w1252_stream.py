"""Issue 20, item 3: a Windows-1252 export is read through a stream, not a copy in RAM or on disk.

A Windows-1252 file with bytes 0x80-0x9F (the euro sign, curly quotes) cannot be read by
DuckDB's latin-1 reader ("File is not latin-1 encoded"; DuckDB 2.0 reads no other 8-bit
encoding without its `encodings` extension, which cannot be downloaded here). Its UTF-8 form used
to be copied first to /dev/shm (1.3 GiB of RAM for 10 million lines), then to disk; now a thread
writes it, a block (1 MiB) at a time, into a named pipe that DuckDB reads as a file
(etl/ingest/read.py `Utf8Stream`). The tests run the real command (in a child process where
memory or open files are watched):

- while a 26 MB Windows-1252 load runs, the process never holds a file of /dev/shm (its open
  files and memory maps, sampled every few milliseconds), /dev/shm/benzo-monitor gets nothing,
  and the temporary folder holds only the named pipe (no regular file), gone at the end;
- streaming adds no copy to the peak: a 91 MiB file (91 blocks) loads streamed within 40 MiB of
  the peak of its UTF-8 form loaded directly, where a copy of its text in memory would add at
  least 91 MiB;
- the pseudonym check reads the pipe a second time (warning at 5 of 26 NRNs, refusal at 5 of 25);
- a read error while streaming (the pipe's source cannot be read to its end) refuses the file
  instead of loading the lines read before it;
- (tests/test_compressed_limits.py: the copy on disk, kept for systems without named pipes,
  still checks its disk space first; a streamed load needs none.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pytest

from bench.run import MemorySampler
from etl.ingest.read import FileRefused, Utf8Stream
from tests.conftest import CANONICAL_HEADER, query

INIT5, RED20 = "5521950", "5521992"
OTHER = "1234567"  # not a programme code: another medicine, skipped


def _export(path: Path, other_lines: int, label_bytes: int = 0) -> Path:
    """A Windows-1252 `;` CSV, CRLF: 3 programme lines (lines 2-4, the third without a patient)
    then `other_lines` lines of
    another medicine, each with a euro sign (byte 0x80) and `label_bytes` more of label."""
    header = ";".join([*CANONICAL_HEADER, "libellé"]) + "\r\n"
    programme = [
        f"P1;PH‘1’;2024-03-04;{INIT5};1;23,24;Début €\r\n",
        f"P1;PH1;2024-03-18;{RED20};1;15,71;Palier – 20 €\r\n",
        f";PH2;2024-03-05;{INIT5};1;23,24;Œuvre – “€”\r\n",  # no patient: a reject
    ]
    filler = "x" * label_bytes
    with path.open("wb") as fh:
        fh.write((header + "".join(programme)).encode("cp1252"))
        row = f";PH9;2024-03-04;{OTHER};1;3,10;autre € {filler}\r\n"
        block = []
        for i in range(other_lines):
            block.append(f"Q{i}{row}")
            if len(block) == 10_000:
                fh.write("".join(block).encode("cp1252"))
                block = []
        fh.write("".join(block).encode("cp1252"))
    return path


def _load(db: Path, export: Path, env: dict, watch=None):
    """Run `benzo-monitor load`; (status, output, peak MiB, what `watch` saw). The peak is the
    child's own VmHWM, sampled (bench/run.py MemorySampler; a child's ru_maxrss starts from its
    parent's resident size at the fork, here that of pytest), plus the growth of /dev/shm."""
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress", str(export)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    sampler = MemorySampler(process.pid, interval=0.005)
    sampler.start()
    seen: dict = {}
    done = threading.Event()
    watcher = None
    if watch:
        watcher = threading.Thread(target=watch, args=(process.pid, done, seen), daemon=True)
        watcher.start()
    out = process.stdout.read()
    # Reap only after the last looks (the finished child stays readable until it is reaped).
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    done.set()
    sampler.done.set()
    sampler.join()
    if watcher:
        watcher.join()
    status = process.wait()
    process.stdout.close()
    return status, out, max(sampler.peak_rss, sampler.peak_total) / 2**20, seen


def test_a_windows_1252_load_writes_nothing_to_dev_shm_nor_a_copy_to_disk(tmp_path):
    """300,000 lines of another medicine (about 26 MB), each with a euro sign, after 3
    programme lines. By hand: rows read 300,003; new 2; skipped 300,000; rejected 1 (line 4, no
    patient); the values come back as written (‘ ’ – “ ” € Œ: bytes 0x91 0x92 0x96 0x93 0x94 0x80
    0x8C), in a stored line and in the reject's raw values."""
    workdir = tmp_path / "tmp"
    workdir.mkdir()
    export = _export(tmp_path / "export.csv", 300_000, label_bytes=40)
    assert export.stat().st_size > 20 << 20
    shm_folder = Path("/dev/shm/benzo-monitor")
    shm_before = sorted(shm_folder.iterdir()) if shm_folder.exists() else []

    def watch(pid: int, done: threading.Event, seen: dict) -> None:
        seen.update(shm=set(), temp=set(), looks=0)
        while not done.is_set():
            try:
                paths = [
                    os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
                ]
                with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
                    paths += [row.split(None, 5)[-1].strip() for row in maps]
            except OSError:
                paths = []  # (a descriptor closed between the listing and the link)
            seen["shm"] |= {p for p in paths if p.startswith("/dev/shm")}
            folder = workdir / "benzo-monitor"
            for entry in folder.iterdir() if folder.exists() else []:
                try:
                    kind = "pipe" if stat.S_ISFIFO(entry.lstat().st_mode) else "file"
                except FileNotFoundError:
                    continue
                seen["temp"].add((entry.name, kind))
            seen["looks"] += 1
            time.sleep(0.002)

    db = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "TMPDIR": str(workdir), "BENZO_MONITOR_TRANSCODE": "stream"}
    status, out, _peak, seen = _load(db, export, env, watch)
    assert status == 0, out
    assert seen["looks"] > 10, seen
    assert seen["shm"] == set()
    assert (sorted(shm_folder.iterdir()) if shm_folder.exists() else []) == shm_before
    kinds = {kind for _name, kind in seen["temp"]}
    assert kinds == {"pipe"}, seen["temp"]  # the stream was used, and no copy was written
    assert all(name.startswith("transcoded-") for name, _kind in seen["temp"])
    assert list((workdir / "benzo-monitor").iterdir()) == []
    assert query(
        db, "select rows_read, rows_new, rows_skipped, rows_rejected, encoding from loads"
    ) == [(300_003, 2, 300_000, 1, "windows-1252")]
    assert query(db, "select pharmacy_id from billing_lines order by line_number") == [
        ("PH‘1’",),
        ("PH1",),
    ]
    ((line, raw),) = query(db, "select line_number, raw_values from rejects")
    assert line == 4 and json.loads(raw)["libellé"] == "Œuvre – “€”"


def test_streaming_adds_no_copy_to_peak_memory(tmp_path):
    """480,000 lines of about 200 bytes (a 150-byte label), each with a euro sign: about
    91 MiB, some 91 blocks of 1 MiB. Loaded streamed, and its UTF-8 form (the same lines, each
    two bytes longer: the euro sign is E2 82 AC) loaded directly, which needs no transcoding.
    By hand: a copy of the text in memory (as in /dev/shm before) would add at least its 91 MiB
    to the streamed load's peak; the stream adds a few blocks. The child's own peak (VmHWM plus
    /dev/shm growth) of the streamed load stays within 40 MiB of the direct one. Rows read
    480,003, 2 new."""
    workdir = tmp_path / "tmp"
    workdir.mkdir()
    env = {**os.environ, "TMPDIR": str(workdir), "BENZO_MONITOR_TRANSCODE": "stream"}
    export = _export(tmp_path / "export.csv", 480_000, label_bytes=150)
    utf8 = tmp_path / "export-utf8.csv"
    utf8.write_bytes(export.read_bytes().decode("cp1252").encode("utf-8"))
    text_mib = export.stat().st_size / 2**20
    assert 90 < text_mib < 100
    peaks = {}
    for name, path in (("streamed", export), ("utf-8", utf8)):
        db = tmp_path / f"warehouse-{name}.duckdb"
        status, out, peak, _ = _load(db, path, env)
        assert status == 0, out
        assert query(db, "select rows_read, rows_new, encoding from loads") == [
            (480_003, 2, "windows-1252" if name == "streamed" else "utf-8")
        ]
        peaks[name] = peak
    print(f"\npeaks (MiB) of a {text_mib:.0f} MiB file: {peaks}")
    assert peaks["streamed"] - peaks["utf-8"] < 40, peaks


def test_a_read_error_while_streaming_refuses_the_file(tmp_path):
    """A stream whose source fails half-way (a gzip file cut short after its sample was
    checked: `zlib`/EOF error while streaming) must not pass for a shorter file: `check`
    raises FileRefused, and the reader saw the text end early."""
    import gzip

    plain = _export(tmp_path / "export.csv", 100_000)
    packed = tmp_path / "export.csv.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(plain.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    stream = Utf8Stream(cut, gzipped=True, workdir=tmp_path / "work")
    try:
        con = duckdb.connect()
        n = con.execute(
            f"select count(*) from read_csv('{stream.path}', header = true, delim = ';', "
            "auto_detect = false, columns = {'a': 'VARCHAR'}, ignore_errors = true)"
        ).fetchone()[0]
        assert n < 100_003
        with pytest.raises(FileRefused, match="cannot be read"):
            stream.check()
    finally:
        stream.close()
    assert not stream.path.exists()


def _nrn(first9: str) -> str:
    """An NRN with its check digits (SPEC §3: 97 - first 9 digits mod 97), born before 2000."""
    return first9 + f"{97 - int(first9) % 97:02d}"


FIVE_NRNS = [_nrn(f"8507301{i:02d}") for i in range(5)]


def _nrn_export(path: Path, n_other_ids: int) -> Path:
    """One programme line per patient id (5 NRNs, then P0, P1, ...), each at pharmacy `PH€`."""
    ids = FIVE_NRNS + [f"P{i}" for i in range(n_other_ids)]
    text = ";".join(CANONICAL_HEADER) + "\r\n"
    text += "".join(f"{p};PH€;14/03/2025;{INIT5};1;1\r\n" for p in ids)
    path.write_bytes(text.encode("cp1252"))
    return path


def test_the_pseudonym_check_reads_the_stream_a_second_time(cli, db, tmp_path):
    """When the scan finds values like national register numbers, the loader reads the patient
    column of the whole file again (SPEC §3's share of distinct ids): a second opening of the
    pipe, which streams the text again from its start. 5 NRNs among 26 distinct ids: 5/26 =
    19.2 % < 20 %: loaded, with the warning "5 of 26", all 26 lines stored with pharmacy PH€.
    The writer thread ends and its pipe is deleted when the load ends."""
    path = _nrn_export(tmp_path / "a.csv", 21)
    threads = threading.active_count()
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0, out
    assert "5 of 26" in " ".join(out.split())
    assert query(db, "select count(*), min(pharmacy_id), max(pharmacy_id) from billing_lines") == [
        (26, "PH€", "PH€")
    ]
    assert query(db, "select encoding from loads") == [("windows-1252",)]
    assert threading.active_count() == threads
    workdir = Path(tempfile.gettempdir()) / "benzo-monitor"
    mine = f"transcoded-{os.getpid()}-"
    assert [p for p in workdir.iterdir() if p.name.startswith(mine)] == []


def test_a_refusal_after_a_second_reading_of_the_stream(cli, db, tmp_path):
    """5 NRNs among 25 distinct ids: 5/25 = 20 %, at the threshold: refused (SPEC §3), nothing
    loaded; the refusal counts come from the second reading of the pipe."""
    path = _nrn_export(tmp_path / "b.csv", 20)
    status, out, _ = cli("--db", db, "load", path)
    assert status != 0
    assert "5 of 25 distinct patient identifiers (20%)" in " ".join(out.split()), out
    assert not db.exists() or query(db, "select count(*) from billing_lines") == [(0,)]


def test_a_folder_without_named_pipes_falls_back_to_the_copy(tmp_path, monkeypatch):
    """Some file systems refuse named pipes (mkfifo fails with EPERM): the reader then makes the
    checked copy on disk instead of failing. The 3 programme lines' pharmacies read back as
    written (PH‘1’, PH1, PH2: bytes 0x91 and 0x92 restored) from the copy."""
    import duckdb

    from etl.ingest.read import as_windows_1252, open_source, restore_cp1252

    export = _export(tmp_path / "export.csv", 10)
    con = duckdb.connect()
    source = open_source(con, export)
    assert source.csv_params["needs_transcode"]

    def refuse(*_args, **_kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mkfifo", refuse)
    new = as_windows_1252(source, tmp_path / "work", stream=True)
    try:
        assert new.streams == [] and len(new.temp_files) == 1
        assert new.temp_files[0].is_file()
        rows = con.execute(f"select c1 from {new.relation} limit 3").fetchall()
        assert [restore_cp1252(r[0]) for r in rows] == ["PH‘1’", "PH1", "PH2"]
    finally:
        for temp in new.temp_files:
            temp.unlink()


def test_by_default_the_copy_when_the_disk_has_room_else_the_stream(tmp_path, monkeypatch):
    """The loader's choice (etl/ingest/read.py transcode_by_stream): the checked copy on disk
    when the work folder has room for twice the text (measured faster on a quiet machine: a
    file is scanned on every thread, a pipe on one), else the stream; the variable forces
    either. By hand: a 10-line file needs a few KiB, which any work folder has (copy); a text
    said to expand to 10**18 bytes fits nowhere (stream)."""
    import duckdb

    from etl.ingest.read import TRANSCODE_ENV, open_source, transcode_by_stream

    export = _export(tmp_path / "export.csv", 10)
    source = open_source(duckdb.connect(), export)
    work = tmp_path / "work"
    monkeypatch.delenv(TRANSCODE_ENV, raising=False)
    assert transcode_by_stream(source, work) is False
    source.csv_params["expanded_bytes"] = 10**18
    assert transcode_by_stream(source, work) is True
    monkeypatch.setenv(TRANSCODE_ENV, "copy")
    assert transcode_by_stream(source, work) is False
    source.csv_params["expanded_bytes"] = None
    monkeypatch.setenv(TRANSCODE_ENV, "stream")
    assert transcode_by_stream(source, work) is True


def test_a_default_load_with_room_reads_a_copy_and_removes_it(tmp_path):
    """With room in TMPDIR and no variable, the 300,003-line export is read through a copy on
    disk (a regular file transcoded-<pid>-*.csv, no pipe), removed after the load; same rows
    as the stream: read 300,003, new 2, skipped 300,000, rejected 1."""
    workdir = tmp_path / "tmp"
    workdir.mkdir()
    export = _export(tmp_path / "export.csv", 300_000, label_bytes=40)

    def watch(pid: int, done: threading.Event, seen: dict) -> None:
        seen.update(temp=set())
        folder = workdir / "benzo-monitor"
        while not done.is_set():
            for entry in folder.iterdir() if folder.exists() else []:
                try:
                    kind = "pipe" if stat.S_ISFIFO(entry.lstat().st_mode) else "file"
                except FileNotFoundError:
                    continue
                seen["temp"].add((entry.name, kind))
            time.sleep(0.002)

    env = {k: v for k, v in os.environ.items() if k != "BENZO_MONITOR_TRANSCODE"}
    db = tmp_path / "warehouse.duckdb"
    status, out, _peak, seen = _load(db, export, {**env, "TMPDIR": str(workdir)}, watch)
    assert status == 0, out
    assert {kind for _name, kind in seen["temp"]} == {"file"}, seen["temp"]
    assert list((workdir / "benzo-monitor").iterdir()) == []
    assert query(
        db, "select rows_read, rows_new, rows_skipped, rows_rejected, encoding from loads"
    ) == [(300_003, 2, 300_000, 1, "windows-1252")]
