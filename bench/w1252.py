"""Issue 20, item 3: a Windows-1252 export's load, side by side with DuckDB's bare scan of the
same lines in UTF-8, whole processes: `python -m bench.w1252 FILE.csv [--runs 3]`.

FILE is a Windows-1252 CSV with bytes 0x80-0x9F (bench/run.py's full export: `generate(...,
file_format="csv", split="single", style="fr", other_lines=10_000_000)`); its UTF-8 form is
written once beside it (`FILE.utf8.csv`). Each round runs, in turn, one process of each case:

- `floor`: DuckDB's bare scan (`select count(*)` over the loader's read_csv call) of the UTF-8
  form, in a process that imports DuckDB and the loader's reader and nothing else;
- `load`: `BIN --db NEW load FILE --no-progress` for each `--bin` given as NAME=PATH (for
  example a checkout of main, which copies the file to disk, and this one, which streams it);
  with `--utf8-load NAME`, that binary also loads the UTF-8 form (no transcoding at all: what
  the best way of reading Windows-1252 could come to);
- `scan-*`: the bare scan of FILE itself by each way of reading Windows-1252 (copy to disk then
  scan; a named pipe fed by a thread, `Utf8Stream`; pyarrow's CSV reader with
  encoding='cp1252' streaming record batches into DuckDB).

Per case: wall seconds, CPU seconds (user + system, from the reaped child), peak RSS, peak growth
of /dev/shm and their sum (bench/run.py MemorySampler); medians of the runs, max of the peaks.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from bench.run import run_measured_memory

FLOOR = """
import sys, time, duckdb
from pathlib import Path
from etl.ingest.read import open_source
con = duckdb.connect()
con.execute("set enable_progress_bar = false")
source = open_source(con, Path(sys.argv[1]))
start = time.perf_counter()
con.execute(f"select count(*) from {source.relation}").fetchone()
print(time.perf_counter() - start)
"""

SCAN = """
import sys, tempfile, time, duckdb
from pathlib import Path
from etl.ingest.read import as_windows_1252, open_source
how, path = sys.argv[1], Path(sys.argv[2])
con = duckdb.connect()
con.execute("set enable_progress_bar = false")
source = open_source(con, path)
start = time.perf_counter()
if how == "pyarrow":
    import pyarrow as pa, pyarrow.csv as pc
    names = source.column_names
    reader = pc.open_csv(
        path,
        read_options=pc.ReadOptions(encoding="cp1252", skip_rows=1, column_names=names),
        parse_options=pc.ParseOptions(
            delimiter=source.csv_params["delim"], newlines_in_values=True,
            invalid_row_handler=lambda row: "skip",
        ),
        convert_options=pc.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    con.register("arrow_source", reader)
    con.execute("select count(*) from arrow_source").fetchone()
else:
    source.csv_params["needs_transcode"] = True
    source = as_windows_1252(source, Path(tempfile.mkdtemp()), stream=how == "pipe")
    con.execute(f"select count(*) from {source.relation}").fetchone()
    for stream in source.streams:
        stream.close()
    for temp in source.temp_files:
        temp.unlink()
print(time.perf_counter() - start)
"""


def utf8_form(path: Path) -> Path:
    """The same lines in UTF-8 (decoded as Windows-1252), written once beside `path`."""
    out = path.with_suffix(".utf8.csv")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block.decode("cp1252", errors="replace").encode("utf-8"))
    return out


def measured(args: list[str]) -> dict:
    """One whole process: wall, CPU, memory (bench/run.py run_measured_memory), printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, memory, out = run_measured_memory(args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, **memory, "printed": out.strip().splitlines()[-1:]}


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table (and the raw runs as JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m bench.w1252", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bin", action="append", default=[], help="NAME=path/to/benzo-monitor")
    parser.add_argument(
        "--utf8-load", metavar="NAME", help="also load FILE's UTF-8 form with --bin NAME"
    )
    parser.add_argument("--scans", default="copy,pipe,pyarrow")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    utf8 = utf8_form(args.file)
    cases: dict[str, list[str] | None] = {"floor": [sys.executable, "-c", FLOOR, str(utf8)]}
    files = {}
    for spec in args.bin:
        name, _, binary = spec.partition("=")
        cases[f"load {name}"], files[f"load {name}"] = [binary], args.file
        if name == args.utf8_load:
            cases[f"load {name} utf-8"], files[f"load {name} utf-8"] = [binary], utf8
    for how in filter(None, args.scans.split(",")):
        cases[f"scan {how}"] = [sys.executable, "-c", SCAN, how, str(args.file)]
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="w1252-") as tmp:
        for i in range(args.runs):
            for name, command in cases.items():
                if name in files:
                    db = Path(tmp) / f"{i}.duckdb"
                    command = [*command, "--db", str(db), "load", str(files[name]), "--no-progress"]
                runs[name].append(measured(command))
                for leftover in Path(tmp).glob("*.duckdb*"):
                    leftover.unlink()
                print(name, i, {k: v for k, v in runs[name][-1].items()}, file=sys.stderr)
    floor = statistics.median(r["wall"] for r in runs["floor"])
    floor_cpu = statistics.median(r["cpu"] for r in runs["floor"])
    print("| case | wall s | CPU s | peak RSS MiB | /dev/shm MiB | RSS + shm MiB | wall / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in runs.items():
        wall = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        rss = max(r["peak_rss_bytes"] for r in rows) / 2**20
        shm = max(r["peak_shm_bytes"] for r in rows) / 2**20
        total = max(r["peak_rss_plus_shm_bytes"] for r in rows) / 2**20
        print(
            f"| {name} | {wall:.2f} ({min(r['wall'] for r in rows):.2f}–"
            f"{max(r['wall'] for r in rows):.2f}) | {cpu:.2f} | {rss:,.0f} | {shm:,.0f} | "
            f"{total:,.0f} | {wall / floor:.2f} (CPU {cpu / floor_cpu:.2f}) |"
        )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
