"""Issue 19, item 3: special files and oversized mapping files are refused at once.

Before: `load FIFO` was refused ("not a file") and then hung forever holding the warehouse lock,
because the audit hashed the refused path (a read on a FIFO waits for a writer); `load
/dev/zero` spun at 100 % CPU forever for the same reason; `--mapping /dev/zero` ended in a
MemoryError traceback and `--mapping FIFO` hung.

Each case runs the real command (`python -m etl.cli`) on a warehouse holding one load and must:
end within 2 s of the command's own start-up (measured on a missing file), with exit status 1
(a refused file) or 2 (an unusable mapping file, a user error), a plain message naming the
path, no traceback; leave the warehouse as it was; release it (a writable connection opens
right after); and write no hash of the refused path to the audit file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CANONICAL_HEADER, warehouse_content, write_delimited

LIMIT_S = 2.0


def _run(db: Path, *args) -> tuple[int, str, float]:
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress",
         *map(str, args)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return process.returncode, process.stdout + process.stderr, time.perf_counter() - started


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("special")
    db = folder / "warehouse.duckdb"
    good = write_delimited(
        folder / "good.csv", CANONICAL_HEADER, [["A-1", "PH1", "2024-03-04", "5521950", 1, "0"]]
    )
    status, text, _ = _run(db, good)
    assert status == 0, text
    _, _, startup = _run(db, folder / "missing.csv")
    fifo = folder / "pipe.csv"
    os.mkfifo(fifo)
    zero_link = folder / "zero.csv"
    zero_link.symlink_to("/dev/zero")
    return dict(folder=folder, db=db, good=good, fifo=fifo, zero_link=zero_link, startup=startup)


def _audit_hashes(db: Path) -> list[str | None]:
    audit = db.with_name(db.name + ".audit.jsonl")
    lines = audit.read_text(encoding="utf-8").splitlines() if audit.exists() else []
    return [json.loads(line).get("sha256") for line in lines]


def _check(setup, args, status_wanted, words):
    db = setup["db"]
    before = warehouse_content(db)
    audit_before = _audit_hashes(db)
    status, text, seconds = _run(db, *args)
    assert status == status_wanted, text
    assert "Traceback" not in text and "MemoryError" not in text
    for word in words:
        assert word in " ".join(text.split()), text
    assert seconds - setup["startup"] < LIMIT_S, (
        f"{seconds:.2f} s (start-up {setup['startup']:.2f} s)"
    )
    duckdb.connect(str(db)).close()  # the lock was released
    assert warehouse_content(db) == before
    new = _audit_hashes(db)[len(audit_before) :]
    assert all(sha is None for sha in new), new  # the refused path was not read


@pytest.mark.parametrize("name", ["fifo", "zero_link", "dev_zero", "folder"])
def test_a_special_file_is_refused_at_once(setup, name):
    path = {"dev_zero": Path("/dev/zero"), "folder": setup["folder"]}.get(name) or setup[name]
    _check(setup, [path], 1, ["refused:", "not a regular file"])


@pytest.mark.parametrize("name", ["fifo", "zero_link", "dev_zero", "folder", "big"])
def test_a_mapping_file_must_be_a_small_regular_file(setup, name):
    folder = setup["folder"]
    if name == "big":
        path = folder / "big.toml"
        # 1 MiB + 1 byte of valid TOML comments: a mapping is a few lines.
        path.write_bytes(b"#" * (1 << 20) + b"\n")
        words = ["mapping file", "larger than 1 MiB"]
    else:
        path = {"dev_zero": Path("/dev/zero"), "folder": folder}.get(name) or setup[name]
        words = ["mapping file", "not a regular file"]
    _check(setup, ["--mapping", path, setup["good"]], 2, words)
