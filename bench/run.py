"""Benchmarks (issue 6), run on demand: `.venv/bin/python -m bench.run [--lines N] [--runs 5]`.

Not part of the timed test suite (tests/test_bench_smoke.py runs a tiny version). Each case runs
in fresh processes, `--runs` times; the medians, min–max and ratios go to
bench/results/latest.json and a table in docs/performance.md.

Cases so far:
- full export load: a generated full monthly export (programme lines plus other medicines) of
  `--lines` lines, as Windows-1252 `;` CSV with decimal commas and as Parquet, loaded by
  `benzo-monitor load` into an empty warehouse: wall time, rows per second, peak memory of the
  process; beside it, in the same run on the same file, the floor: DuckDB's own bare scan
  (`select count(*)` over the same read_csv / read_parquet call the loader makes);
- report: `benzo-monitor report --month M --format json` wall time, process start included;
- dashboard pages: each page's render through the app's own server, p50 and p95.
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
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "performance.md"
PAGES = ("/", "/outcomes", "/fees", "/compliance", "/regions", "/data", "/methodology")


def run_measured(args: list[str]) -> tuple[float, int, str]:
    """Run a command; (wall seconds, peak RSS in bytes of that process, its stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {err.read().decode(errors='replace')}")
        return wall, usage.ru_maxrss * 1024, out.read().decode(errors="replace")


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
from etl.read import open_source, csv_scan_sql, as_windows_1252
con = duckdb.connect()
path = Path(sys.argv[1])
source = open_source(con, path)
transcode = 0.0
if source.file_format != "parquet" and source.encoding != "utf-8":
    # DuckDB reads latin-1 but not the Windows-1252 bytes 0x80-0x9F: like the loader, read a
    # UTF-8 copy; the floor is the scan of that copy (the copy's time is printed apart).
    source.csv_params["needs_transcode"] = True
    start = time.perf_counter()
    source = as_windows_1252(source, Path(tempfile.mkdtemp()))
    transcode = time.perf_counter() - start
start = time.perf_counter()
if source.file_format == "parquet":
    sql = f"select count(*) from read_parquet('{path}')"
else:
    sql = f"select count(*) from ({csv_scan_sql(source)})"
con.execute(sql).fetchone()
print(time.perf_counter() - start, transcode)
"""


def bench_load(folder: Path, lines: int, runs: int, weekly_starts: float) -> dict:
    """Full-export load against DuckDB's bare scan of the same file, CSV and Parquet."""
    from etl.generate import generate

    out = {}
    for fmt in ("csv", "parquet"):
        exports = folder / f"export-{fmt}"
        result = generate(
            exports, file_format=fmt, split="single", style="fr",
            other_lines=lines, weekly_starts=weekly_starts,
        )  # fmt: skip
        (path,) = result.files
        total = result.n_lines + result.n_other_lines
        walls, in_process, peaks, floors, transcodes = [], [], [], [], []
        for i in range(runs):
            db = folder / f"load-{fmt}-{i}.duckdb"
            wall, peak, _ = run_measured(cli(db, "load", str(path), "--no-progress"))
            walls.append(wall)
            in_process.append(_ledger_seconds(db))
            peaks.append(peak)
            # The floor: the scan's own time, printed by the script (process start excluded).
            _, _, printed = run_measured([sys.executable, "-c", FLOOR_SCRIPT, str(path)])
            scan, transcode = map(float, printed.split())
            floors.append(scan)
            transcodes.append(transcode)
            db.unlink(missing_ok=True)
        out[fmt] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "lines": total,
            "load_wall_seconds": summary(walls),
            "load_seconds": summary(in_process),
            "floor_seconds": summary(floors),
            "transcode_seconds": summary(transcodes),
            "ratio_to_floor": statistics.median(in_process) / statistics.median(floors),
            "rows_per_second": total / statistics.median(in_process),
            "peak_rss_bytes": max(peaks),
        }
    return out


def _ledger_seconds(db: Path) -> float:
    """The load's own time as the ledger recorded it (process start and imports excluded)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select sum(seconds) from loads").fetchone()[0]
    finally:
        con.close()


def bench_report(folder: Path, runs: int, weekly_starts: float) -> tuple[Path, dict]:
    """A national warehouse (the demo's data), then `report --format json` timed."""
    from etl.config import load_config
    from etl.generate import generate
    from etl.load import load_paths
    from etl.warehouse import connect

    result = generate(folder / "national", weekly_starts=weekly_starts)
    db = folder / "national.duckdb"
    con = connect(db, config=load_config())
    try:
        load_paths(con, result.files)
    finally:
        con.close()
    month = _latest_month(db)
    walls = []
    for _ in range(runs):
        wall, _, _ = run_measured(cli(db, "report", "--month", month, "--format", "json"))
        walls.append(wall)
    return db, {"month": month, "wall_seconds": summary(walls)}


def _latest_month(db: Path) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        (latest,) = con.execute("select max(delivery_date) from billing_lines").fetchone()
    finally:
        con.close()
    return latest.strftime("%Y-%m")


def bench_pages(db: Path, repeats: int) -> dict:
    """p50 / p95 of each page's render through the app's own server (`serve`)."""
    sys.path.insert(0, str(ROOT))
    from tests.browser import render_page, start_server

    process, url = start_server(db)
    try:
        out = {}
        for path in PAGES:
            render_page(url, path, "?lang=fr")  # first answer opens the snapshot
            times = []
            for i in range(repeats):
                lang = ("fr", "nl", "en")[i % 3]
                start = time.perf_counter()
                status, _ = render_page(url, path, f"?lang={lang}")
                times.append(time.perf_counter() - start)
                assert status == 200, (path, status)
            times.sort()
            out[path] = {
                "p50_ms": 1000 * statistics.median(times),
                "p95_ms": 1000 * times[min(len(times) - 1, int(0.95 * len(times)))],
                "requests": len(times),
            }
        return out
    finally:
        process.terminate()
        process.wait(timeout=10)


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


def write_doc(results: dict, doc: Path) -> None:
    m = results["machine"]
    lines = [
        "# Performance",
        "",
        "Written by `python -m bench.run` (see bench/run.py); figures are medians over the runs,",
        "with min–max. Raw figures: `bench/results/latest.json`.",
        "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs; Python {m['python']}, DuckDB "
        f"{m['duckdb']}, benzo-monitor {m['benzo_monitor']}; {m['date']}.",
        "",
    ]
    if "load" in results:
        lines += [
            "## Full export load against DuckDB's bare scan",
            "",
            "Load: the ledger's time of the load (process start excluded; the wall time of the",
            "whole command is in the JSON). Floor: DuckDB's `count(*)` over the same scan. For a",
            "Windows-1252 file with bytes 0x80–0x9F, which DuckDB's latin-1 reader refuses, the",
            "floor scans the UTF-8 copy the loader makes; making that copy",
            "(`transcode_seconds` in the JSON) is part of the load, not of the floor. A Parquet",
            "`count(*)` is answered from the file's metadata, so its floor is close to zero.",
            "",
            "| format | lines | load s (min–max) | floor s (min–max) | ratio | rows/s | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for fmt, r in results["load"].items():
            ls, fs = r["load_seconds"], r["floor_seconds"]
            lines.append(
                f"| {fmt} | {r['lines']:,} | {ls['median']:.2f} ({ls['min']:.2f}–{ls['max']:.2f})"
                f" | {fs['median']:.2f} ({fs['min']:.2f}–{fs['max']:.2f}) | "
                f"{r['ratio_to_floor']:.2f} | {r['rows_per_second']:,.0f} | "
                f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB |"
            )
        lines.append("")
    if "report" in results:
        w = results["report"]["wall_seconds"]
        lines += [
            "## `report --format json` (process start included)",
            "",
            f"Month {results['report']['month']}: {w['median']:.2f} s "
            f"({w['min']:.2f}–{w['max']:.2f}, {w['runs']} runs).",
            "",
        ]
    if "pages" in results:
        lines += ["## Dashboard pages through the app's server", "", "| page | p50 ms | p95 ms |",
                  "| --- | ---: | ---: |"]  # fmt: skip
        for path, r in results["pages"].items():
            lines.append(f"| `{path}` | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
        lines.append("")
    doc.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lines", type=int, default=10_000_000,
        help="lines of other medicines in the full export (the programme's lines come on top)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--weekly-starts", type=float, default=110.0,
        help="new programmes a week in the generated data (national: 110)",
    )  # fmt: skip
    parser.add_argument("--page-requests", type=int, default=60)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--only", choices=("load", "report", "pages"), action="append")
    args = parser.parse_args(argv)
    only = set(args.only or ("load", "report", "pages"))
    results = {
        "machine": machine(),
        "settings": {"lines": args.lines, "runs": args.runs, "weekly_starts": args.weekly_starts},
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        if "load" in only:
            results["load"] = bench_load(folder, args.lines, args.runs, args.weekly_starts)
        if only & {"report", "pages"}:
            db, report = bench_report(folder, args.runs, args.weekly_starts)
            if "report" in only:
                results["report"] = report
            if "pages" in only:
                results["pages"] = bench_pages(db, args.page_requests)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_doc(results, args.doc)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
