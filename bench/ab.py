"""Side-by-side load timing of several checkouts of benzo-monitor on the same export files.

    python -m bench.ab --runs 5 --checkout before=/path/a --checkout after=/path/b FILE...

Each checkout needs its own virtual environment in `<path>/.venv` (the README's install line).
Every round runs `benzo-monitor load FILE --no-progress` once per checkout into a new empty
warehouse, alternating the order from round to round, and records the command's wall time, its
ledger seconds and its CPU time (user + system, from the kernel). On a shared machine wall time
follows the other work; CPU time moves far less, so the ratios are given on it. Medians and
min–max go to `--output` (JSON) and to standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def load_once(checkout: Path, export: Path, workdir: Path) -> dict:
    """One `load` of `export` by `checkout` into a new warehouse: wall, ledger and CPU seconds."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    db = folder / "w.duckdb"
    try:
        command = [str(checkout / ".venv" / "bin" / "benzo-monitor"), "--db", str(db), "load",
                   str(export), "--no-progress"]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
        con = duckdb.connect(str(db), read_only=True)
        try:
            (ledger,) = con.execute("select sum(seconds) from loads").fetchone()
        finally:
            con.close()
        return {"wall": wall, "ledger": float(ledger), "cpu": usage.ru_utime + usage.ru_stime}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(checkouts: dict[str, Path], exports: list[Path], runs: int, workdir: Path) -> dict:
    """Medians, min and max per export and checkout, and CPU ratios to the first checkout."""
    out = {}
    for export in exports:
        times = {name: {"wall": [], "ledger": [], "cpu": []} for name in checkouts}
        for i in range(runs):
            order = list(checkouts) if i % 2 == 0 else list(reversed(checkouts))
            for name in order:
                for key, value in load_once(checkouts[name], export, workdir).items():
                    times[name][key].append(value)
        first = next(iter(checkouts))
        out[str(export)] = {
            name: {
                **{
                    key: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                    for key, v in series.items()
                },
                "cpu_ratio": statistics.median(series["cpu"])
                / statistics.median(times[first]["cpu"]),
            }
            for name, series in times.items()
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", type=Path)
    parser.add_argument("--checkout", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("bench/results/ab.json"))
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    checkouts = {}
    for item in args.checkout:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"--checkout {item!r}: expected NAME=PATH")
        checkouts[name] = Path(path)
    workdir = args.workdir or Path(tempfile.gettempdir())
    results = compare(checkouts, args.exports, args.runs, workdir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for export, by_name in results.items():
        for name, r in by_name.items():
            print(f"{export} {name}: cpu {r['cpu']['median']:.2f} s "
                  f"(ratio {r['cpu_ratio']:.3f}), wall {r['wall']['median']:.2f} s, "
                  f"ledger {r['ledger']['median']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
