"""Benchmarks (issue 6), run on demand: `.venv/bin/python -m bench.run [--lines N] [--runs 5]`.

Not part of the timed test suite (tests/test_bench_smoke.py runs a tiny version). Each case runs
in fresh processes, `--runs` times; the medians, min–max and ratios go to
bench/results/latest.json and the tables in docs/performance.md.

Cases:
- load: a generated full monthly export (programme lines plus other medicines) of `--lines`
  lines, as Windows-1252 `;` CSV with decimal commas and as Parquet, loaded by
  `benzo-monitor load` into an empty warehouse: wall time, rows per second, peak memory of the
  process; beside it, in the same run on the same file, the floor: DuckDB's own bare scan
  (`select count(*)` over the same read_csv call the loader makes; for Parquet, a scan that
  reads every column, since a bare count(*) is answered from the file's metadata);
- history, at each `--scales` multiple of national volume (1 = 110 new programmes a week since
  February 2023): loading that history, one more month into it against into an empty warehouse,
  rebuilding every mart for a new as-of date, `report --format json` (process start included)
  and each dashboard page through the app's own server (p50 and p95);
- cold: `benzo-monitor demo` from an empty folder to the first page served.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from bench.served import free_port, render_page, shm_used_bytes, start_server, status_kib
from etl.ingest.columns import match_headers
from etl.ingest.load import other_medicine_sql
from etl.ingest.read import open_source
from etl.synthetic.generate import generate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "performance.md"
HAND_MEASURED = "<!-- measured by hand below: python -m bench.run keeps what follows -->"
PAGES = ("/", "/outcomes", "/fees", "/compliance", "/regions", "/data", "/methodology")


class MemorySampler(threading.Thread):
    """Samples a process's memory every `interval` seconds: its peak resident memory (VmHWM,
    reset at exec, unlike ru_maxrss, which a child inherits from its parent at fork) and the
    growth of /dev/shm, so a peak is RSS plus the shared memory the process put on /dev/shm
    (issue 20: a copy in /dev/shm is RAM that RSS does not show)."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.shm_start = shm_used_bytes()
        self.peak_rss = self.peak_shm = self.peak_total = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            rss = status_kib(self.pid, "VmRSS") * 1024
            shm = max(0, shm_used_bytes() - self.shm_start)
            self.peak_rss = max(self.peak_rss, status_kib(self.pid, "VmHWM") * 1024, rss)
            self.peak_shm = max(self.peak_shm, shm)
            self.peak_total = max(self.peak_total, rss + shm)
            self.done.wait(self.interval)


def run_measured(args: list[str]) -> tuple[float, int, str]:
    """Run a command; (wall seconds, peak memory in bytes, its stdout). The peak is the larger
    of the kernel's peak RSS and the sampled RSS + /dev/shm growth (MemorySampler)."""
    wall, memory, text = run_measured_memory(args)
    return wall, memory["peak_rss_plus_shm_bytes"], text


def run_measured_memory(args: list[str]) -> tuple[float, dict, str]:
    """Run a command; (wall seconds, {peak_rss_bytes, peak_shm_bytes,
    peak_rss_plus_shm_bytes}, its stdout). Sampled (MemorySampler): a lower bound of a peak
    shorter than the sampling interval."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err)
        sampler = MemorySampler(process.pid)
        sampler.start()
        # Reap only after the sampler's last look: /proc/PID stays readable while the
        # finished process is a zombie.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        process.wait()
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {err.read().decode(errors='replace')}")
        memory = {
            "peak_rss_bytes": sampler.peak_rss,
            "peak_shm_bytes": sampler.peak_shm,
            "peak_rss_plus_shm_bytes": max(sampler.peak_rss, sampler.peak_total),
        }
        return wall, memory, out.read().decode(errors="replace")


def cli(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "etl.cli", "--db", str(db), *args]


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


# --- cases --------------------------------------------------------------------------------

FLOOR_SCRIPT = """
import sys, tempfile, time, duckdb
from pathlib import Path
from etl.ingest.read import open_source, as_windows_1252
con = duckdb.connect()
path = Path(sys.argv[1])
source = open_source(con, path)
copy = 0.0
if source.file_format != "parquet" and source.encoding != "utf-8":
    # DuckDB reads latin-1 but not the Windows-1252 bytes 0x80-0x9F: like the loader, read the
    # copy it makes; the floor is DuckDB's scan of that copy (the copy's time is printed apart).
    source.csv_params["needs_transcode"] = True
    start = time.perf_counter()
    source = as_windows_1252(source, Path(tempfile.mkdtemp()))
    copy = time.perf_counter() - start
start = time.perf_counter()
if source.file_format == "parquet":
    # A bare count(*) is answered from the metadata: read every column instead.
    sql = f"select count(*) from read_parquet('{path}') where columns(*) is not null"
else:
    sql = f"select count(*) from {source.relation}"
con.execute(sql).fetchone()
bare = time.perf_counter() - start
values = 0.0
if source.file_format == "parquet":
    # That count does not decode the values (null flags suffice): hash every value instead.
    start = time.perf_counter()
    con.execute(f"select bit_xor(hash(*columns(*))) from read_parquet('{path}')").fetchone()
    values = time.perf_counter() - start
# What the load cannot do without: every column of the rows it keeps (programme lines and
# invalid codes) as text, in file order, into a table; nothing else (no counts, no checks).
from bench.served import free_port, render_page, start_server
from etl.ingest.columns import match_headers
from etl.ingest.load import other_medicine_sql
cnk = source.column_exprs[source.headers.index(match_headers(source.headers, {})['cnk'])]
start = time.perf_counter()
con.execute(
    f"create or replace temp table kept as select case when not {other_medicine_sql(cnk)} "
    f"then [{', '.join(source.column_exprs)}] end as kept from {source.relation}"
)
keep = time.perf_counter() - start
print(bare, copy, keep, values)
for temp in source.temp_files:
    temp.unlink(missing_ok=True)
"""


def bench_load(folder: Path, lines: int, runs: int, weekly_starts: float) -> dict:
    """Full-export load against DuckDB's bare scan of the same file, CSV and Parquet."""
    out = {}
    for fmt in ("csv", "parquet"):
        exports = folder / f"export-{fmt}"
        result = generate(
            exports, file_format=fmt, split="single", style="fr",
            other_lines=lines, weekly_starts=weekly_starts,
        )  # fmt: skip
        (path,) = result.files
        total = result.n_lines + result.n_other_lines
        kept_only = _kept_only_copy(path) if fmt == "parquet" else None
        walls, in_process, peaks, floors, copies, keeps, values, kept_loads = ([] for _ in range(8))
        for i in range(runs):
            db = folder / f"load-{fmt}-{i}.duckdb"
            wall, memory, _ = run_measured_memory(cli(db, "load", str(path), "--no-progress"))
            walls.append(wall)
            in_process.append(_ledger_seconds(db))
            peaks.append(memory)
            # The floor: the scan's own time, printed by the script (process start excluded).
            _, _, printed = run_measured([sys.executable, "-c", FLOOR_SCRIPT, str(path)])
            scan, copy, keep, value = map(float, printed.splitlines()[-1].split())
            floors.append(scan)
            copies.append(copy)
            keeps.append(keep)
            values.append(value)
            db.unlink(missing_ok=True)
            if kept_only:
                run_measured(cli(db, "load", str(kept_only), "--no-progress"))
                kept_loads.append(_ledger_seconds(db))
                db.unlink(missing_ok=True)
        out[fmt] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "lines": total,
            "load_wall_seconds": summary(walls),
            "load_seconds": summary(in_process),
            "floor_seconds": summary(floors),
            "copy_seconds": summary(copies),
            "keep_floor_seconds": summary(keeps),
            "ratio_to_keep_floor": statistics.median(in_process)
            / (statistics.median(keeps) + statistics.median(copies)),
            "ratio_to_floor": statistics.median(in_process) / statistics.median(floors),
            "wall_ratio_to_floor": statistics.median(walls) / statistics.median(floors),
            "rows_per_second": total / statistics.median(in_process),
            "peak_rss_bytes": max(p["peak_rss_bytes"] for p in peaks),
            "peak_shm_bytes": max(p["peak_shm_bytes"] for p in peaks),
            "peak_rss_plus_shm_bytes": max(p["peak_rss_plus_shm_bytes"] for p in peaks),
        }
        if kept_only:
            out[fmt]["values_floor_seconds"] = summary(values)
            out[fmt]["kept_only_load_seconds"] = summary(kept_loads)
            out[fmt]["kept_only_lines"] = result.n_lines
    return out


def _kept_only_copy(path: Path) -> Path:
    """The same Parquet file with only the rows a load keeps (programme lines, invalid codes):
    what loading costs when there are no other medicines to pass over."""
    kept = path.with_name("kept-only.parquet")
    con = duckdb.connect()
    source = open_source(con, path)  # the CNK column found and read as the loader does
    cnk = source.column_exprs[source.headers.index(match_headers(source.headers, {})["cnk"])]
    con.execute(
        f"copy (select * from {source.relation} where not {other_medicine_sql(cnk)}) "
        f"to '{kept}' (format parquet)"
    )
    con.close()
    return kept


MARTS_SCRIPT = """
import sys, time, datetime as dt, duckdb
from etl.base.config import load_config
from etl.base.publish import mart_names, materialise_core
from etl.base.warehouse import apply_settings
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("set enable_progress_bar = false")
apply_settings(con, load_config(), dt.date.fromisoformat(sys.argv[2]))
# As the tool does it (publish, the dashboard's other as-of dates): core views once, then marts.
start = time.perf_counter()
materialise_core(con)
times = {"core_views": time.perf_counter() - start}
for mart in mart_names(con):
    start = time.perf_counter()
    con.execute(f"create temp table t_{mart} as select * from {mart}")
    times[mart] = time.perf_counter() - start
print(sum(times.values()), max(times, key=times.get), max(times.values()))
"""


def bench_history(
    folder: Path, scale: float, runs: int, page_requests: int, as_of_visits: int = 5
) -> dict:
    """A history of `scale` times national volume since February 2023, and what it costs."""
    result = generate(folder / f"history-{scale:g}", weekly_starts=110.0 * scale)
    files = sorted(result.files)
    *earlier, last = files
    db = folder / f"history-{scale:g}.duckdb"
    # The history: every month but the last, in one command.
    history_wall, history_peak, _ = run_measured(
        cli(db, "load", *map(str, earlier), "--no-progress")
    )
    # One more month into that history, against the same month into an empty warehouse.
    incremental, empty = [], []
    for i in range(runs):
        copy = folder / f"incremental-{i}.duckdb"
        copy.write_bytes(db.read_bytes())
        run_measured(cli(copy, "load", str(last), "--no-progress"))
        incremental.append(_ledger_seconds(copy, last_only=True))
        fresh = folder / f"empty-{i}.duckdb"
        run_measured(cli(fresh, "load", str(last), "--no-progress"))
        empty.append(_ledger_seconds(fresh))
        fresh.unlink()
        if i < runs - 1:
            copy.unlink()
    copy.replace(db)
    month = _latest_month(db)
    counts = _counts(db)
    reports = _report_walls(db, month, runs)
    # Every mart for another as-of date: the last day of the month before the latest.
    as_of = (dt.date.fromisoformat(month + "-01") - dt.timedelta(days=1)).isoformat()
    marts, slowest = [], None
    for _ in range(runs):
        _, _, printed = run_measured([sys.executable, "-c", MARTS_SCRIPT, str(db), as_of])
        total, name, seconds = printed.splitlines()[-1].split()
        marts.append(float(total))
        slowest = (name, float(seconds))
    # Publishing the snapshot the dashboard reads (after each load, once a dashboard exists);
    # the report then reads its marts.
    publish_wall, _, _ = run_measured(cli(db, "publish"))
    reports_published = _report_walls(db, month, runs)
    return {
        "scale": scale,
        "weekly_starts": 110.0 * scale,
        **counts,
        "database_bytes": db.stat().st_size,
        "history_files": len(earlier),
        "history_load_wall_seconds": history_wall,
        "history_load_peak_rss_bytes": history_peak,
        "month": month,
        "incremental_seconds": summary(incremental),
        "empty_seconds": summary(empty),
        "incremental_ratio": statistics.median(incremental) / statistics.median(empty),
        "report_wall_seconds": summary(reports),
        "report_published_wall_seconds": summary(reports_published),
        "marts_as_of": as_of,
        "marts_rebuild_seconds": summary(marts),
        "slowest_mart": {"name": slowest[0], "seconds": slowest[1]},
        "publish_wall_seconds": publish_wall,
        "pages": bench_pages(db, page_requests, month, as_of_visits) if page_requests else {},
    }


def _one(db: Path, sql: str) -> tuple:
    """The single row of `sql` on the warehouse at `db`, opened read-only."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def _ledger_seconds(db: Path, last_only: bool = False) -> float:
    """The load's own time as the ledger recorded it (process start and imports excluded)."""
    where = "where load_id = (select max(load_id) from loads)" if last_only else ""
    return _one(db, f"select sum(seconds) from loads {where}")[0]


def _counts(db: Path) -> dict:
    lines, patients, programmes = _one(
        db,
        "select count(*), count(distinct patient_id), (select count(*) from core_programmes) "
        "from billing_lines",
    )
    return {"billing_lines": lines, "patients": patients, "programmes": programmes}


def _latest_month(db: Path) -> str:
    return _one(db, "select max(delivery_date) from billing_lines")[0].strftime("%Y-%m")


def _report_walls(db: Path, month: str, runs: int) -> list[float]:
    """Wall times of `report --month M --format json`, process start included."""
    return [
        run_measured(cli(db, "report", "--month", month, "--format", "json"))[0]
        for _ in range(runs)
    ]


def bench_pages(db: Path, repeats: int, month: str | None = None, as_of_visits: int = 5) -> dict:
    """p50 / p95 of each page's render through the app's own server (`serve`); with `month`,
    the first and repeat visits at `as_of_visits` new as-of dates and the server's memory after
    them."""
    process, url = start_server(db)
    try:
        out = {}
        for path in PAGES:
            start = time.perf_counter()
            render_page(url, path, "?lang=fr")  # the first answer opens the snapshot
            first = time.perf_counter() - start
            times = []
            for i in range(repeats):
                lang = ("fr", "nl", "en")[i % 3]
                start = time.perf_counter()
                status, _ = render_page(url, path, f"?lang={lang}")
                times.append(time.perf_counter() - start)
                assert status == 200, (path, status)
            times.sort()
            out[path] = {
                "first_ms": 1000 * first,
                "p50_ms": 1000 * statistics.median(times),
                "p95_ms": 1000 * times[min(len(times) - 1, int(0.95 * len(times)))],
                "requests": len(times),
            }
        if month and as_of_visits:
            out["as_of"] = _as_of_visits(process.pid, url, month, as_of_visits)
        return out
    finally:
        process.terminate()
        process.wait(timeout=10)


def _as_of_visits(pid: int, url: str, month: str, dates: int = 5) -> dict:
    """The home page at `dates` as-of dates not yet published (the last days of the months
    before `month`): first visit (the marts computed for that date) and repeat visit, and the
    server's resident memory before and after (issue 20: what a bounded cache holds)."""
    first_day = dt.date.fromisoformat(month + "-01")
    as_of_dates = []
    for _ in range(dates):
        first_day = (first_day - dt.timedelta(days=1)).replace(day=1)
        as_of_dates.append((first_day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                           - dt.timedelta(days=1))  # fmt: skip
    rss_before = status_kib(pid, "VmRSS") * 1024
    first, repeat = [], []
    for day in as_of_dates:
        for times in (first, repeat):
            start = time.perf_counter()
            status, _ = render_page(url, "/", f"?lang=fr&as_of={day.isoformat()}")
            times.append(time.perf_counter() - start)
            assert status == 200, (day, status)
    return {
        "dates": [day.isoformat() for day in as_of_dates],
        "first_ms": [1000 * t for t in first],
        "first_median_ms": 1000 * statistics.median(first),
        "repeat_median_ms": 1000 * statistics.median(repeat),
        "server_rss_before_bytes": rss_before,
        "server_rss_after_bytes": status_kib(pid, "VmRSS") * 1024,
    }


def bench_cold_start(folder: Path, runs: int) -> dict:
    """`benzo-monitor demo` in an empty folder until the first page is served."""
    import urllib.request

    walls = []
    for i in range(runs):
        workdir = folder / f"cold-{i}"
        workdir.mkdir()
        port = free_port()
        command = [sys.executable, "-m", "etl.cli", "--db", str(workdir / "demo.duckdb"),
                   "demo", "--port", str(port)]  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        with (workdir / "demo.log").open("wb") as log:
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
            try:
                while process.poll() is None:
                    try:
                        with urllib.request.urlopen(url + "/", timeout=2):
                            pass
                        status, _ = render_page(url, "/", "?lang=fr")
                        if status == 200:
                            break
                    except OSError:
                        time.sleep(0.1)
                walls.append(time.perf_counter() - start)
                if process.poll() is not None:
                    raise RuntimeError((workdir / "demo.log").read_text(errors="replace"))
            finally:
                process.terminate()
                process.wait(timeout=20)
    return {"wall_seconds": summary(walls)}


# --- output -------------------------------------------------------------------------------


def machine() -> dict:
    import etl

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "benzo_monitor": etl.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _range(r: dict, digits: int = 2) -> str:
    return f"{r['median']:.{digits}f} ({r['min']:.{digits}f}–{r['max']:.{digits}f})"


def write_doc(results: dict, doc: Path) -> None:
    m = results["machine"]
    lines = [
        "# Performance",
        "",
        "Written by `python -m bench.run` (see bench/run.py); figures are medians over the runs,",
        "with min–max. Raw figures: `bench/results/latest.json`. How cost grows with lines and",
        "with history, and the path beyond one machine: docs/scaling.md.",
        "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs; Python {m['python']}, DuckDB "
        f"{m['duckdb']}, benzo-monitor {m['benzo_monitor']}. Runs: "
        f"{results['settings']['runs']}. Measured: "
        + ", ".join(f"{case} {date}" for case, date in results.get("dates", {}).items())
        + ".",
        "",
    ]
    if "load" in results:
        lines += [
            "## Full export load against DuckDB's bare scan",
            "",
            "Load: the ledger's time of the load (process start excluded; the wall time of the",
            "whole command is in the JSON). Floor: DuckDB's `count(*)` over the same scan. For a",
            "Windows-1252 file with bytes 0x80–0x9F, which DuckDB's latin-1 reader refuses, the",
            "floor scans the copy the loader makes (etl/ingest/read.py `as_windows_1252`); making that",
            "copy (`copy s`) is part of the load, not of the floor. A Parquet floor reads every",
            "column (`where columns(*) is not null`): a bare `count(*)` is answered from the",
            "file's metadata. Keep floor: the least the load must do with DuckDB — the same",
            "scan into a table that keeps the file order (one row per record: every column,",
            "as text, of the rows a load keeps — programme codes and invalid codes — and",
            "nothing of the others); its ratio is to the keep floor plus the copy. The load is",
            "timed by its ledger, which is written before the commit (about 0.3 s here).",
            "Why 1.5× the bare scan is out of reach: docs/scaling.md.",
            "",
            "Whole command: the wall time of `benzo-monitor load` as a user runs it (process",
            "start, imports, schema creation and publication included), and its ratio to the",
            "floor. Peak memory: the process's peak RSS plus what it put on /dev/shm (RAM",
            "that RSS does not show), sampled every 20 ms (a lower bound of the true peak).",
            "",
            "| format | lines | load s | whole command s | floor s | copy s | keep floor s "
            "| ratio to floor | whole command / floor | ratio to keep floor | rows/s "
            "| peak RSS + shm |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for fmt, r in results["load"].items():
            peak = r.get("peak_rss_plus_shm_bytes", r["peak_rss_bytes"])
            whole = r.get("wall_ratio_to_floor")
            lines.append(
                f"| {fmt} | {r['lines']:,} | {_range(r['load_seconds'])} | "
                f"{_range(r['load_wall_seconds'])} | "
                f"{_range(r['floor_seconds'])} | {r['copy_seconds']['median']:.2f} | "
                f"{_range(r['keep_floor_seconds'])} | {r['ratio_to_floor']:.2f} | "
                f"{'' if whole is None else f'{whole:.2f}'} | "
                f"{r['ratio_to_keep_floor']:.2f} | {r['rows_per_second']:,.0f} | "
                f"{peak / 2**20:,.0f} MiB |"
            )
        lines.append("")
        parquet = results["load"].get("parquet", {})
        if "kept_only_load_seconds" in parquet:
            lines += [
                "Parquet, two more floors: DuckDB reading and hashing every value of the file "
                f"(`bit_xor(hash(*columns(*)))`): {_range(parquet['values_floor_seconds'])} s; "
                f"loading a file that holds only the {parquet['kept_only_lines']:,} rows the "
                "load keeps (no other medicines): "
                f"{_range(parquet['kept_only_load_seconds'])} s.",
                "",
            ]
    if results.get("history"):
        lines += [
            "## History",
            "",
            "Scale 1 is national volume (110 new programmes a week since February 2023, as in",
            "the demo). History load: every month but the last, in one `load` command (wall).",
            "Incremental: the last month loaded into that history, against the same file into",
            "an empty warehouse (ledger seconds). Marts: every mart computed for another as-of",
            "date (the dashboard's and the pack's non-default dates): the core views once, then",
            "every mart. Publish: `benzo-monitor publish` (what each load does once a dashboard",
            "is in use: copy, then every mart for the default date). Report: `report --month M",
            "--format json`, process start included, from the views (no snapshot) and from an",
            "up-to-date snapshot.",
            "",
            "| scale | programmes | lines | history load s | incremental s | into empty s "
            "| ratio | marts s | publish s | report s (views) | report s (snapshot) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for h in results["history"]:
            lines.append(
                f"| {h['scale']:g}× | {h['programmes']:,} | {h['billing_lines']:,} | "
                f"{h['history_load_wall_seconds']:.1f} | {_range(h['incremental_seconds'])} | "
                f"{_range(h['empty_seconds'])} | {h['incremental_ratio']:.2f} | "
                f"{_range(h['marts_rebuild_seconds'])} | {h['publish_wall_seconds']:.1f} | "
                f"{_range(h['report_wall_seconds'])} | "
                f"{_range(h['report_published_wall_seconds'])} |"
            )
        lines.append("")
        for h in results["history"]:
            if not h["pages"]:
                continue
            lines += [
                f"### Dashboard pages at {h['scale']:g}× through the app's server",
                "",
                "First: the first answer after start (it opens the snapshot). p50 / p95 over "
                f"{next(iter(h['pages'].values()))['requests']} repeated calls in fr, nl, en.",
                "",
                "| page | first ms | p50 ms | p95 ms |",
                "| --- | ---: | ---: | ---: |",
            ]
            pages = {path: r for path, r in h["pages"].items() if path != "as_of"}
            for path, r in pages.items():
                lines.append(
                    f"| `{path}` | {r['first_ms']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
                )
            lines.append("")
            visits = h["pages"].get("as_of")
            if visits:
                lines += [
                    f"{len(visits['dates'])} new as-of dates ({', '.join(visits['dates'])}): the "
                    "state page's first "
                    f"visit {visits['first_median_ms']:.0f} ms (median; "
                    f"{min(visits['first_ms']):.0f}–{max(visits['first_ms']):.0f}), a repeat "
                    f"visit {visits['repeat_median_ms']:.0f} ms; the server's resident memory "
                    f"{visits['server_rss_before_bytes'] / 2**20:,.0f} MiB before and "
                    f"{visits['server_rss_after_bytes'] / 2**20:,.0f} MiB after them.",
                    "",
                ]
    if "cold" in results:
        lines += [
            "## Demo cold start",
            "",
            "`benzo-monitor demo` in an empty folder (install excluded) until the state page is",
            f"served: {_range(results['cold']['wall_seconds'], 1)} s.",
            "",
        ]
    kept = ""
    if doc.exists():  # sections measured by hand, after HAND_MEASURED, are kept as they are
        text = doc.read_text(encoding="utf-8")
        if HAND_MEASURED in text:
            kept = "\n" + text[text.index(HAND_MEASURED) :]
    doc.write_text("\n".join(lines) + kept, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lines", type=int, default=10_000_000,
        help="lines of other medicines in the full export (the programme's lines come on top)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--weekly-starts", type=float, default=110.0,
        help="new programmes a week in the full export's programme lines (national: 110)",
    )  # fmt: skip
    parser.add_argument(
        "--scales", default="1,3,10",
        help="history sizes, as multiples of national volume (comma-separated)",
    )  # fmt: skip
    parser.add_argument("--page-requests", type=int, default=60)
    parser.add_argument(
        "--as-of-visits", type=int, default=5,
        help="new as-of dates whose first page visit is timed (0: none)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--only", choices=("load", "history", "cold"), action="append")
    args = parser.parse_args(argv)
    only = set(args.only or ("load", "history", "cold"))
    scales = [float(x) for x in args.scales.split(",") if x.strip()]
    results = {}
    if args.only and args.output.exists():
        # Some cases only: keep the other cases' figures from the previous run.
        results = json.loads(args.output.read_text(encoding="utf-8"))
    results["machine"] = machine()
    results["settings"] = {
        **results.get("settings", {}),
        "lines": args.lines, "runs": args.runs, "weekly_starts": args.weekly_starts,
        "scales": scales,
    }  # fmt: skip
    dates = results.setdefault("dates", {})
    for case in only:
        dates[case] = results["machine"]["date"]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        if "load" in only:
            results["load"] = bench_load(folder, args.lines, args.runs, args.weekly_starts)
        if "history" in only:
            results["history"] = [
                bench_history(folder, scale, args.runs, args.page_requests, args.as_of_visits)
                for scale in scales
            ]
        if "cold" in only:
            results["cold"] = bench_cold_start(folder, args.runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_doc(results, args.doc)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
