"""A tiny run of the benchmark suite (bench/run.py): it runs end to end and writes its figures.

The real runs (10 million lines, national history) are on demand: see docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from bench.run import main, run_measured_memory
from etl.cli import main as main_cli


def test_a_tiny_benchmark_run_writes_its_figures(tmp_path):
    output, doc = tmp_path / "latest.json", tmp_path / "performance.md"
    args = ["--lines", "2000", "--runs", "1", "--weekly-starts", "3", "--scales", "0.03",
            "--page-requests", "2", "--as-of-visits", "2", "--output", str(output), "--doc", str(doc),
            "--workdir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    results = json.loads(output.read_text())
    for fmt in ("csv", "parquet"):
        load = results["load"][fmt]
        # 2,000 lines of other medicines plus the programme's own lines.
        assert load["lines"] > 2000
        assert load["load_seconds"]["median"] > 0 and load["floor_seconds"]["median"] > 0
        assert load["peak_rss_bytes"] > 0
        assert load["peak_rss_plus_shm_bytes"] >= load["peak_rss_bytes"]
        assert load["load_wall_seconds"]["median"] >= load["load_seconds"]["median"]
    (history,) = results["history"]
    assert history["scale"] == 0.03 and history["programmes"] > 0
    # The history holds every month but the last; the last is loaded on top of it.
    assert history["history_files"] >= 30
    assert history["incremental_ratio"] > 0 and history["marts_rebuild_seconds"]["runs"] == 1
    assert history["report_wall_seconds"]["runs"] == 1
    assert set(history["pages"]) == {"/", "/outcomes", "/fees", "/compliance", "/regions",
                                     "/data", "/methodology", "as_of"}  # fmt: skip
    visits = history["pages"]["as_of"]
    # Two new as-of dates, the last days of the two months before the latest month.
    assert len(visits["dates"]) == 2 and len(set(visits["dates"])) == 2
    assert all(d.endswith(("-28", "-29", "-30", "-31")) for d in visits["dates"])
    assert visits["server_rss_after_bytes"] > 0
    assert results["cold"]["wall_seconds"]["median"] > 0
    text = doc.read_text()
    assert "| csv |" in text and "| parquet |" in text and "| `/fees` |" in text
    assert "| 0.03× |" in text and "## Demo cold start" in text


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_peak_memory_counts_what_a_process_puts_on_dev_shm(tmp_path):
    """A child that writes 64 MiB to a file in /dev/shm and holds it 0.5 s has a small RSS
    (the bytes go to the file, not its heap), but its peak RSS + shared memory is at least
    64 MiB more than its RSS: that RAM is what ru_maxrss alone does not show (issue 20)."""
    name = f"/dev/shm/bench-smoke-{tmp_path.name}"
    script = (
        "import time\n"
        f"f = open({name!r}, 'wb')\n"
        "chunk = b'x' * 2**20\n"
        "for _ in range(64): f.write(chunk)\n"
        "f.flush(); time.sleep(0.5); f.close()\n"
        f"import os; os.unlink({name!r})\n"
    )
    _, memory, _ = run_measured_memory([sys.executable, "-c", script])
    assert memory["peak_shm_bytes"] >= 64 * 2**20
    assert memory["peak_rss_plus_shm_bytes"] >= memory["peak_rss_bytes"] + 64 * 2**20 - 2**20


def test_side_by_side_loads_of_two_checkouts(tmp_path):
    """bench/ab.py on this checkout twice (its .venv, as the README installs it): each load
    lands in a new warehouse, the first checkout's CPU ratio is 1 by definition, and every
    series has one value per round."""
    from bench.ab import compare
    from etl.synthetic.generate import generate

    root = Path(__file__).resolve().parent.parent
    if not (root / ".venv" / "bin" / "benzo-monitor").exists():
        pytest.skip("no .venv in the checkout (the README's install line makes one)")
    (export,) = generate(tmp_path / "x", weekly_starts=1, split="single").files
    results = compare({"a": root, "b": root}, [export], runs=2, workdir=tmp_path)
    by_name = results[str(export)]
    assert by_name["a"]["cpu_ratio"] == 1.0
    assert by_name["b"]["cpu"]["min"] > 0 and by_name["b"]["ledger"]["max"] > 0
    assert by_name["a"]["wall"]["min"] >= by_name["a"]["ledger"]["min"]


# --- bench/issue20.py and bench/profile.py (issue 20, item 4) ------------------------------


@pytest.fixture(scope="module")
def tiny_perf(tmp_path_factory):
    """A tiny /work/perf lookalike: s1/ with export/ (one file a month, one new programme a
    week), history.duckdb (every month but the last, loaded by this checkout) and `last`
    (the last month's file); s10/ a copy of s1/ (the smoke run needs the layout, not the size)."""
    from etl.synthetic.generate import generate

    perf = tmp_path_factory.mktemp("perf")
    s1 = perf / "s1"
    files = sorted(generate(s1 / "export", weekly_starts=1.0, end=dt.date(2024, 6, 30)).files)
    *earlier, last = files
    assert main_cli(["--db", str(s1 / "history.duckdb"), "load", *map(str, earlier),
                     "--no-progress"]) == 0  # fmt: skip
    (s1 / "last").write_text(str(last))
    shutil.copytree(s1, perf / "s10")
    return perf


def _root_checkout():
    from bench.issue20 import Checkout

    root = Path(__file__).resolve().parent.parent
    if not (root / ".venv" / "bin" / "benzo-monitor").exists():
        pytest.skip("no .venv in the checkout (the README's install line makes one)")
    return root, Checkout


def test_month_ends_before_counts_back_over_a_year_end():
    """The last days of the three months before March 2025, by the calendar: 28 February 2025
    (not a leap year), 31 January 2025, 31 December 2024."""
    from bench.issue20 import month_ends_before

    assert month_ends_before("2025-03", 3) == [
        dt.date(2025, 2, 28), dt.date(2025, 1, 31), dt.date(2024, 12, 31),
    ]  # fmt: skip


def test_issue20_publish_and_report_side_by_side(tiny_perf, tmp_path):
    """Two checkouts that are the same code on the same data: each round loads the last month
    (June 2024) into a copy of each history, which publishes because a snapshot exists, so both
    histories' copies gain one load; the two checkouts' report answers are identical, round by
    round; the as-of dates are the last days of May and April 2024 (one per round, never the
    snapshot's date); the ratios are the medians' quotients."""
    from bench.issue20 import ledger_seconds, measure, table

    root, Checkout = _root_checkout()
    checkouts = [Checkout("a", root), Checkout("b", root)]
    results = measure(checkouts, runs=2, workdir=tmp_path, perf=tiny_perf,
                      cases={"publish", "report"}, log=lambda _: None)  # fmt: skip
    assert results["settings"]["month"] == "2024-06"
    assert results["report_answers_identical"] is True
    for name in ("a", "b"):
        c = results["cases"][name]
        s1, s10 = c["publish_s1"], c["publish_s10"]
        assert s1["wall"]["runs"] == 2 and s1["ledger"]["max"] > 0
        assert s10["cpu"]["median"] > 0 and s1["wall"]["min"] >= s1["ledger"]["min"]
        assert c["publish_ratio"]["cpu"] == s10["cpu"]["median"] / s1["cpu"]["median"]
        same = c["publish_s10_same"]  # s10 is s1's copy: k = 1, the whole month again
        assert same["wall"]["runs"] == 2
        assert c["publish_same_ratio"]["wall"] == same["wall"]["median"] / s1["wall"]["median"]
        report = c["report"]
        assert [r["as_of_date"] for r in report["rounds"]] == ["2024-05-31", "2024-04-30"]
        assert report["ratio"]["wall"] == (
            report["as_of_wall"]["median"] / report["snapshot_wall"]["median"]
        )
    # The source history was only copied: it still holds the months before June alone.
    assert ledger_seconds(tiny_perf / "s1" / "history.duckdb") is not None
    con = duckdb.connect(str(tiny_perf / "s1" / "history.duckdb"), read_only=True)
    try:
        (latest,) = con.execute("select max(delivery_date) from billing_lines").fetchone()
    finally:
        con.close()
    assert latest < dt.date(2024, 6, 1)
    results["checkouts"] = {n: {"commit": "x"} for n in ("a", "b")}
    text = table(results)
    assert "| **s10 / s1, CPU** (≤ 2) |" in text and "| a (x) | b (x) |" in text
    assert "| **same-size month, s10 / s1, wall** (≤ 2) |" in text


def test_same_size_month_keeps_whole_patients_and_the_files_bytes(tmp_path):
    """A Windows-1252 month of 4 patients x 3 lines (12 data lines) cut to the size of a
    month of 6 lines: k = 12 / 6 = 2, so the patients whose SHA-256 bucket (first 8 hex
    digits mod 2) is 0 are kept — P2 alone (SHA-256 of "P2" begins with an even number; P1,
    P3 and P4 with odd ones) — with all 3 of its lines, in the file's order and
    bytes (the header, the 0xE9 of "délivrance", CRLF); a line with an odd number of quotes
    is refused."""
    import hashlib

    from bench.issue20 import same_size_month

    header = "id_patient;date_de_délivrance;code_cnk\r\n".encode("cp1252")
    patients = ["P1", "P2", "P3", "P4", "P5", "P6"]
    body = [
        f"{p};0{d}/10/2026;5521984\r\n".encode("cp1252") for d in (1, 2, 3) for p in patients[:4]
    ]
    large = tmp_path / "large.csv"
    large.write_bytes(header + b"".join(body))
    small = tmp_path / "small.csv"
    small.write_bytes(header + b"".join(body[:6]))
    cut = same_size_month(large, small, tmp_path / "out")
    kept = {p for p in patients[:4] if int(hashlib.sha256(p.encode()).hexdigest()[:8], 16) % 2 == 0}
    expected = header + b"".join(line for line in body if line.split(b";")[0].decode() in kept)
    assert kept == {"P2"}
    assert cut.read_bytes() == expected
    assert b"\xe9" in cut.read_bytes()[: len(header)]
    assert same_size_month(large, small, tmp_path / "out") == cut  # written once
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(header + b'P1;"01/10\r\n')
    with pytest.raises(ValueError, match="quoted line break"):
        same_size_month(quoted, small, tmp_path / "out2")


def test_issue20_pages_and_windows_1252_load(tiny_perf, tmp_path):
    """One round: the state page served by the checkout's own Python at two new as-of dates
    (31 May and 30 April 2024), first and repeat visit, and the server's memory; a
    Windows-1252 export of 300 other medicines loaded against DuckDB's bare scan of its UTF-8
    twin, which counts every record: 300 other lines plus the programme's own."""
    from bench.issue20 import measure

    root, Checkout = _root_checkout()
    results = measure([Checkout("a", root)], runs=1, workdir=tmp_path, perf=tiny_perf,
                      cases={"pages", "w1252"}, lines=300, as_of_dates=2,
                      log=lambda _: None)  # fmt: skip
    pages = results["cases"]["a"]["pages"]
    assert pages["dates"] == ["2024-05-31", "2024-04-30"]
    assert len(pages["rounds"][0]["first_s"]) == 2 and pages["rss_after"]["median"] > 0
    # The server computes the marts for each new date: its CPU time grows with each first visit.
    assert all(cpu > 0 for cpu in pages["rounds"][0]["first_cpu_s"])
    w = results["cases"]["a"]["w1252"]
    floor = results["w1252_floor"]
    assert floor["lines"] > 300 and w["ledger"]["median"] > 0
    assert w["peak_total"] >= w["peak_rss"] > 0
    assert w["fixed_cpu"]["median"] > 0 and w["fixed_wall"]["runs"] == 1
    assert w["ratio"]["cpu"] == w["cpu"]["median"] / floor["cpu"]["median"]
    con = duckdb.connect()
    (count,) = con.execute(floor["sql"]).fetchone()
    assert count == floor["lines"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_issue20_sampler_counts_the_shm_files_a_process_holds_open(tmp_path):
    """A child that holds a 32 MiB file on /dev/shm open for 0.5 s: the shared memory found
    through its open files is at least those 32 MiB, whatever else writes to /dev/shm."""
    from bench.issue20 import run

    name = f"/dev/shm/bench-smoke-open-{tmp_path.name}"
    script = (
        "import os, time\n"
        f"f = open({name!r}, 'wb')\n"
        "chunk = b'x' * 2**20\n"
        "for _ in range(32): f.write(chunk)\n"
        "f.flush(); time.sleep(0.5)\n"
        f"os.unlink({name!r}); f.close()\n"
    )
    r = run([sys.executable, "-c", script], memory=True)
    assert r["peak_shm_open"] >= 32 * 2**20
    assert r["peak_total"] >= r["peak_rss"] + 32 * 2**20 - 2**20


def test_profile_times_each_publication_step_and_the_report(tiny_perf, tmp_path):
    """bench/profile.py run by the checkout's Python on the tiny history: one step for the
    copy, one per core view (sql/core/NN_name.sql), one per mart, and the report's statements
    profiled; the source warehouse is not written (its file's bytes do not change)."""
    root, _ = _root_checkout()
    db = tiny_perf / "s1" / "history.duckdb"
    before = db.read_bytes()
    out = tmp_path / "profile.json"
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), str(root / "bench" / "profile.py"),
                           "--db", str(db), "--json", str(out), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert db.read_bytes() == before
    steps = [name for name, _ in json.loads(out.read_text())["publish_steps"]]
    cores = sorted((root / "sql" / "core").glob("*.sql"))
    assert steps[0] == "copy"
    assert steps[1 : 1 + len(cores)] == [f"core {p.stem.split('_', 1)[1]}" for p in cores]
    assert "mart state_of_play" in steps
    assert json.loads(out.read_text())["publish_whole_seconds"] > 0
    assert "Top operators, report --as-of" in done.stdout
    assert "core core_programme_events" in done.stdout
