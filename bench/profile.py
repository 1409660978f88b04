"""Where the time goes: a publication step by step and `report --as-of`, with DuckDB's profiler.

    CHECKOUT/.venv/bin/python bench/profile.py --db /work/perf/s10/history.duckdb \
        [--as-of 2026-08-31] [--month 2026-08] [--top 15] [--json out.json]

Run it with the Python of the checkout to profile (its `etl` is the one imported; nothing of
bench/ is, so the script runs against any checkout, the baseline included). The warehouse is
copied first into a temporary folder (never written), then:

1. publication, step by step as etl/base/publish.py does it: the copy of the database
   (`copy_database`), each core view into a temporary table (`materialise_core`'s statements,
   one by one) and each mart into `published.<mart>`. A checkout whose publish.py lacks those
   steps is timed as one `publish` call, its statements profiled the same way;
   Then the checkout's own `publish()` in one call (`--skip whole` to leave it out): for a
   branch that publishes differently, that is the figure to trust;
2. `report --month M --as-of D --format json` run in this process (the command's own code)
   at an as-of date that is not the snapshot's.

Every statement runs with `PRAGMA enable_profiling='json'`; the profiles are summed per
operator (type and what it computes: a window's expression, a join's condition...) and the
statement it ran in. Operator time is DuckDB's own accounting, summed over its threads, so
the shares are of all operator time, not of wall time. Printed: each step's wall seconds, then
the top operators with their share.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

_REAL_CONNECT = duckdb.connect


class Profiler:
    """Profiles every statement run on the connections it opens or wraps, one JSON file each."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.statements: list[dict] = []  # {label, sql, seconds, operators: [...]}
        self.label = ""
        self._n = 0

    def enable(self, con) -> None:
        """Turn profiling on for `con` (its output file is read after each statement)."""
        self._n += 1
        path = self.folder / f"profile-{self._n}.json"
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{path}'")
        con.execute("set enable_progress_bar = false")
        return path

    def wrap(self, con) -> ProfiledConnection:
        """`con` with profiling on: a proxy whose execute() records each statement."""
        return ProfiledConnection(con, self, self.enable(con))

    def record(self, sql: str, seconds: float, path: Path) -> None:
        """Read the profile DuckDB wrote for the statement just run."""
        try:
            tree = json.loads(path.read_text())
            path.unlink()
        except (OSError, ValueError):
            tree = {}
        operators: list[dict] = []
        for root in tree.get("operator", []) or []:
            _flatten(root, operators)
        self.statements.append({
            "label": self.label, "sql": " ".join(sql.split())[:160], "seconds": seconds,
            "operators": operators,
        })  # fmt: skip


class ProfiledConnection:
    """A DuckDB connection that records each statement's time and profile (Profiler)."""

    def __init__(self, con, profiler: Profiler, path: Path):
        self._con, self._profiler, self._path = con, profiler, path

    def execute(self, sql, *args, **kwargs):
        """Run `sql` as the connection would, then read its profile."""
        start = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        self._profiler.record(str(sql), time.perf_counter() - start, self._path)
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._con.close()


def _what(op: dict) -> str:
    """What an operator computes, short: a window's expression, a join's condition..."""
    info = op.get("extra_info") or {}
    for key in ("Projections", "Conditions", "Aggregates", "Groups", "Table", "Function"):
        if key in info and op.get("type") in ("WINDOW", "STREAMING_WINDOW", "HASH_JOIN",
                                              "HASH_GROUP_BY", "TABLE_SCAN", "PERFECT_HASH_GROUP_BY",
                                              "PIECEWISE_MERGE_JOIN", "ORDER_BY"):  # fmt: skip
            value = info[key]
            text = "; ".join(value) if isinstance(value, list) else str(value)
            return re.sub(r"\s+", " ", text)[:110]
    return ""


def _flatten(op: dict, out: list[dict]) -> None:
    out.append({"type": op.get("type") or op.get("name"), "what": _what(op),
                "seconds": float(op.get("timing") or 0.0)})  # fmt: skip
    for child in op.get("children", []) or []:
        _flatten(child, out)


def _step_name(sql: str) -> str:
    m = re.search(r"create (?:or replace )?(?:temp )?table ([\w.]+)", sql, re.I)
    return m.group(1) if m else sql[:60]


def profile_publish(con, profiler: Profiler, work: Path) -> list[tuple[str, float]]:
    """A publication step by step (see the module docstring): [(step, wall seconds)]."""
    from etl.base import publish
    from etl.base.config import load_config
    from etl.base.warehouse import apply_settings

    config = load_config()
    steps: list[tuple[str, float]] = []
    stepwise = all(hasattr(publish, f) for f in ("copy_database", "core_view_names", "mart_names"))
    if not stepwise:
        profiler.label = "publish"
        start = time.perf_counter()
        publish.publish(profiler.wrap(con), config)
        steps.append(("publish (one call: no step-by-step functions)", time.perf_counter() - start))
        return steps
    con.execute("checkpoint")
    target = work / "snapshot.duckdb"
    profiler.label = "copy"
    start = time.perf_counter()
    publish.copy_database(con, target)
    steps.append(("copy", time.perf_counter() - start))
    snap = profiler.wrap(duckdb.connect(str(target)))
    apply_settings(snap, config)
    snap.execute("create schema if not exists published")
    for name in publish.core_view_names():
        profiler.label = f"core {name}"
        start = time.perf_counter()
        snap.execute(f"create or replace temp table {name} as select * from main.{name}")
        steps.append((f"core {name}", time.perf_counter() - start))
    for mart in publish.mart_names(snap):
        profiler.label = f"mart {mart.removeprefix('mart_')}"
        start = time.perf_counter()
        snap.execute(f"create table published.{mart} as select * from main.{mart}")
        steps.append((profiler.label, time.perf_counter() - start))
    snap.close()
    return steps


def profile_report(db: Path, month: str, as_of: dt.date, profiler: Profiler) -> float:
    """`report --month M --as-of D --format json` in this process, every connection profiled.
    Returns its wall seconds (imports excluded: they happened before)."""
    from etl.cli import main as cli_main

    def connect(*args, **kwargs):
        con = _REAL_CONNECT(*args, **kwargs)
        return profiler.wrap(con)

    profiler.label = "report --as-of"
    duckdb.connect = connect
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["--db", str(db), "report", "--month", month, "--as-of",
                             as_of.isoformat(), "--format", "json"])  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        duckdb.connect = _REAL_CONNECT
    if code not in (0, None):
        raise SystemExit(f"report failed ({code})")
    return seconds


def top_operators(statements: list[dict], label_prefix: str, top: int) -> tuple[list, float]:
    """The `top` operators by time over the statements whose label starts with the prefix:
    [(seconds, share, type, what, label)], and the total operator seconds."""
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    for s in statements:
        if not s["label"].startswith(label_prefix):
            continue
        label = s["label"]
        if label.startswith("report"):
            label = (
                _step_name(s["sql"])
                if label_prefix == "report"
                else f"report {_step_name(s['sql'])}"
            )
        for op in s["operators"]:
            sums[op["type"], op["what"], label] += op["seconds"]
    total = sum(sums.values()) or 1.0
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])[:top]
    return [(sec, sec / total, t, w, lab) for (t, w, lab), sec in ranked], total


def by_type(statements: list[dict], label_prefix: str) -> list[tuple[str, float, float]]:
    """Operator time per operator type: [(type, seconds, share)], largest first."""
    sums: dict[str, float] = defaultdict(float)
    for s in statements:
        if s["label"].startswith(label_prefix):
            for op in s["operators"]:
                sums[op["type"]] += op["seconds"]
    total = sum(sums.values()) or 1.0
    return [(t, v, v / total) for t, v in sorted(sums.items(), key=lambda kv: -kv[1])]


def month_before(month: str) -> dt.date:
    """The last day of the month before `month` (YYYY-MM)."""
    return dt.date.fromisoformat(month + "-01") - dt.timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db", type=Path, required=True, help="the warehouse (copied, not written)"
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        help="default: the last day of the month before the latest delivery",
    )
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument(
        "--skip", choices=("publish", "whole", "report"), action="append", default=[]
    )
    parser.add_argument("--json", type=Path, default=None, help="write every step and operator")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="profile-") as tmp:
        work = Path(tmp)
        db = work / "w.duckdb"
        shutil.copy2(args.db, db)
        wal = args.db.with_name(args.db.name + ".wal")
        if wal.exists():
            shutil.copy2(wal, db.with_name(db.name + ".wal"))
        profiler = Profiler(work)
        import etl

        out: dict = {"db": str(args.db), "bytes": args.db.stat().st_size, "etl": etl.__file__}
        print(f"Profiling the code of {Path(etl.__file__).parent.parent}")
        # Opened as the checkout opens it for a load: its schema created or upgraded (a branch
        # may add views or stored tables to a warehouse written by older code), untimed.
        from etl.base.warehouse import connect as open_warehouse

        con = open_warehouse(db)
        con.execute("set enable_progress_bar = false")
        (latest,) = con.execute("select max(delivery_date) from billing_lines").fetchone()
        as_of = args.as_of or month_before(latest.strftime("%Y-%m"))
        if "publish" not in args.skip:
            steps = profile_publish(con, profiler, work)
            out["publish_steps"] = steps
            print(f"Publication of {args.db} ({args.db.stat().st_size / 2**20:,.0f} MiB), "
                  "wall seconds per step:")  # fmt: skip
            for name, seconds in steps:
                print(f"  {name:<34} {seconds:7.2f}")
            print(f"  {'total':<34} {sum(s for _, s in steps):7.2f}")
        if "whole" not in args.skip:
            # The checkout's own publish, in one call: if a branch publishes differently from
            # the steps above, this is the figure to trust (and the steps only a guide).
            from etl.base import publish
            from etl.base.config import load_config

            start = time.perf_counter()
            publish.publish(con, load_config())
            out["publish_whole_seconds"] = time.perf_counter() - start
            print(f"\npublish() as the checkout does it, one call: "
                  f"{out['publish_whole_seconds']:.2f} s")  # fmt: skip
        con.close()
        if "report" not in args.skip:
            n = len(profiler.statements)
            seconds = profile_report(db, as_of.strftime("%Y-%m"), as_of, profiler)
            out["report_seconds"] = seconds
            print(f"\nreport --month {as_of:%Y-%m} --as-of {as_of} --format json, in process: "
                  f"{seconds:.2f} s wall over {len(profiler.statements) - n} statements; "
                  "the slowest:")  # fmt: skip
            slow = sorted(profiler.statements[n:], key=lambda s: -s["seconds"])[: args.top]
            for s in slow:
                print(f"  {s['seconds']:7.2f}  {_step_name(s['sql'])}")
        for prefix, title in (("core", "publication: core views"), ("mart", "publication: marts"),
                              ("", "publication and report together"),
                              ("report", "report --as-of")):  # fmt: skip
            if prefix == "" and (args.skip or not profiler.statements):
                continue
            rows, total = top_operators(profiler.statements, prefix, args.top)
            if not rows:
                continue
            print(f"\nTop operators, {title} (operator seconds summed over threads; total "
                  f"{total:.2f} s):")  # fmt: skip
            for sec, share, kind, what, label in rows:
                print(f"  {share:6.1%} {sec:6.2f}  {kind:<16} {label:<28} {what}")
            types = by_type(profiler.statements, prefix)[:6]
            print("  by type: " + ", ".join(f"{t} {share:.0%}" for t, _, share in types))
            out[f"top_{prefix or 'all'}"] = rows
            out[f"types_{prefix or 'all'}"] = types
        if args.json:
            out["statements"] = profiler.statements
            args.json.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
