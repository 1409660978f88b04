"""Issue 20's done-when criteria, measured side by side on several checkouts in one run.

    python -m bench.issue20 --checkout main=/work/bench-main --checkout branch=/work/h-x
    python -m bench.issue20 --table bench/results/issue20.json     # the Markdown table again

Each checkout needs its own virtual environment in `<path>/.venv` (the README's install line);
its commands run as a user runs them (`.venv/bin/benzo-monitor`, a new process each time), so
every figure includes process start, imports and whatever the command does after its ledger
entry (publication). Nothing of a checkout is imported here: a checkout is only ever run, so
the baseline (which lacks later modules) and a branch are measured the same way.

In every round each checkout runs once, the order alternating from round to round (medians of
`--runs` rounds, at least 3 for the criteria). Per command: wall seconds, CPU seconds (user +
system of the process and the children it waited for, from the kernel: on a shared machine
CPU time moves far less than wall time) and, for loads, the ledger's seconds.

Cases (the issue's "done when"):
- publish: one month (the file named by `<perf>/s<N>/last`) loaded into a copy of the 1x and
  the 10x history (`<perf>/s<N>/history.duckdb`, never written: copied first), with a current
  snapshot beside it made by the checkout itself before the clock starts (`publish`), so the
  load publishes as it does for a dashboard user. Ratio: 10x / 1x (criterion: <= 2).
  Beside it, the same-size month: the 10x month cut to the 1x month's size (the lines of one
  patient in k, `same_size_month`), loaded into the 10x history the same way; ratio: that /
  the 1x month. The two readings of "one month": the 10x history's own month, ten times the
  lines (what a national user loads), and a month of the same size (how publication grows with
  the history alone, the issue's "4.9x for a month of the same size").
- report: at 10x, after that load, `report --month M --format json` (from the snapshot) and
  `report --month M' --as-of D --format json` for an as-of date D not published (the last day
  of an earlier month, a different one each round). Ratio: as-of / snapshot (criterion: <= 3).
  The answers' SHA-256 are kept: the same round's answers must be identical across checkouts.
- pages: at 1x, after that load, `serve` run by the checkout's Python; the state page at the
  latest date (snapshot opened), then at `--as-of-dates` new as-of dates (first visit and a
  repeat), and the server's resident memory (its process and children) before and after
  (criterion: first visit <= 1 s).
- w1252: a generated full monthly export of `--lines` other medicines (Windows-1252 `;` CSV with
  bytes 0x80-0x9F, as the national exports come) loaded into an empty warehouse, against
  DuckDB's bare scan (`count(*)`) of the same lines in UTF-8 in a process of its own (Python
  start and `import duckdb` included). Peak memory: RSS plus shared memory, sampled every 20 ms
  (criteria: load <= 2.5x the scan; peak <= 1 GiB at 10 million lines). Beside it, the fixed
  cost of any load: a few dozen lines into a new warehouse.

Figures go to `--output` (JSON; default bench/results/issue20.json) and, as a Markdown table,
to standard output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from bench.served import render_page, shm_used_bytes, start_server_env, status_kib

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bench" / "results" / "issue20.json"
PERF = Path("/work/perf")
GIB = 2**30
LIMITS = {  # the "done when"
    "publish_ratio": 2.0,
    "report_ratio": 3.0,
    "first_page_seconds": 1.0,
    "w1252_ratio": 2.5,
    "w1252_peak_bytes": 1 * GIB,
}


# --- processes ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The process ids of `pid` and all its descendants (a server's workers, a helper)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread) used so far by a process and its descendants:
    a request's cost on a busy machine, where its wall time is mostly waiting for a CPU."""
    ticks = 0
    for p in _children(pid):
        try:
            with open(f"/proc/{p}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants, in bytes."""
    return sum(status_kib(p, "VmRSS") for p in _children(pid)) * 1024


def shm_open_bytes(pids: list[int]) -> int:
    """Bytes of the /dev/shm files the processes `pids` hold open (each file counted once):
    the shared memory that is theirs, whoever else writes to /dev/shm meanwhile."""
    sizes = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("/dev/shm/"):
                    sizes[target] = os.stat(f"/proc/{pid}/fd/{fd}").st_blocks * 512
            except OSError:
                pass
    return sum(sizes.values())


class Sampler(threading.Thread):
    """Every `interval` seconds: the process tree's resident memory, the /dev/shm files it
    holds open and the machine's /dev/shm growth since the start. Peaks: RSS (or the kernel's
    VmHWM of the main process, if larger), shm (the larger of the two shm readings: growth
    counts a file the process closed and reopens; open files are immune to other writers),
    RSS + shm at the same instant. Sampled: a lower bound of a peak shorter than `interval`."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.shm_start = shm_used_bytes()
        self.peak_rss = self.peak_shm = self.peak_shm_open = self.peak_total = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = _children(self.pid)
            rss = sum(status_kib(p, "VmRSS") for p in pids) * 1024
            shm_open = shm_open_bytes(pids)
            shm = max(shm_open, shm_used_bytes() - self.shm_start, 0)
            self.peak_rss = max(self.peak_rss, rss, status_kib(self.pid, "VmHWM") * 1024)
            self.peak_shm = max(self.peak_shm, shm)
            self.peak_shm_open = max(self.peak_shm_open, shm_open)
            self.peak_total = max(self.peak_total, rss + shm)
            self.done.wait(self.interval)


def run(argv: list[str], *, memory: bool = False, cwd: Path | None = None) -> dict:
    """Run a command to its end: {wall, cpu, stdout, [peak_rss, peak_shm, peak_shm_open,
    peak_total]} (seconds, bytes). Raises with its error output if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd)
        sampler = Sampler(process.pid) if memory else None
        if sampler:
            sampler.start()
        # Reap only after the sampler's last look: /proc/PID stays readable while the
        # finished process is a zombie.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        if sampler:
            sampler.done.set()
            sampler.join()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {err.read().decode(errors='replace')}")
        result = {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "stdout": out.read().decode(errors="replace"),
        }
        if sampler:
            result.update(
                peak_rss=sampler.peak_rss,
                peak_shm=sampler.peak_shm,
                peak_shm_open=sampler.peak_shm_open,
                peak_total=max(sampler.peak_rss, sampler.peak_total),
            )
        return result


# --- checkouts ------------------------------------------------------------------------------


class Checkout:
    """A checkout of benzo-monitor with its own `.venv`, run only through its command line."""

    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root.resolve()
        self.python = self.root / ".venv" / "bin" / "python"
        self.command = self.root / ".venv" / "bin" / "benzo-monitor"
        if not self.command.exists():
            raise SystemExit(f"{name}: no {self.command} (install the checkout's .venv first)")

    def check_imports(self) -> None:
        """Fail unless the checkout's Python, started in its folder as the server is, imports
        the checkout's own `etl` (not another checkout's, through an editable install)."""
        done = subprocess.run([str(self.python), "-c", "import etl; print(etl.__file__)"],
                              cwd=self.root, capture_output=True, text=True, check=True)  # fmt: skip
        found = Path(done.stdout.strip()).resolve()
        if not found.is_relative_to(self.root):
            raise SystemExit(f"{self.name}: its Python imports {found}, not {self.root}/etl")

    def cli(self, db: Path, *args: str) -> list[str]:
        """The checkout's `benzo-monitor --db DB ARGS...`."""
        return [str(self.command), "--db", str(db), *args]

    def describe(self) -> dict:
        """Path and commit (with a `+` when the working tree has changes)."""

        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True,
                                  text=True).stdout.strip()  # fmt: skip

        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return {"path": str(self.root), "commit": commit + ("+" if dirty else "")}


def ledger_seconds(db: Path) -> float | None:
    """The last load's seconds in the warehouse's ledger (`loads`), None if unreadable."""
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("select seconds from loads order by load_id desc limit 1").fetchone()
        return None if row is None or row[0] is None else float(row[0])
    except duckdb.Error:
        return None
    finally:
        con.close()


def snapshots_of(db: Path) -> Path:
    """The snapshot folder beside a warehouse (`<name>.snapshots`, etl/base/publish.py)."""
    return db.with_name(db.name.removesuffix(".duckdb") + ".snapshots")


def copy_warehouse(source: Path, target: Path) -> None:
    """Copy a warehouse file and its write-ahead log, if any (times kept: a snapshot's
    freshness may be judged on them)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copy2(wal, target.with_name(target.name + ".wal"))


def month_of(export: Path) -> str:
    """`export_2026-10.csv` -> "2026-10"."""
    return export.stem.split("_")[-1][:7]


def month_ends_before(month: str, count: int) -> list[dt.date]:
    """The last days of the `count` months before `month` (YYYY-MM), latest first."""
    first = dt.date.fromisoformat(month + "-01")
    out = []
    for _ in range(count):
        end = first - dt.timedelta(days=1)
        out.append(end)
        first = end.replace(day=1)
    return out


def prepare_history(checkout: Checkout, perf: Path, folder: Path, own: bool) -> Path:
    """A template warehouse for `checkout`: the history (copied from `perf`, or with `own`
    loaded by the checkout itself from `perf`/export, every month but the last) and a current
    snapshot published by the checkout, so that its next load publishes (untimed)."""
    db = folder / "history.duckdb"
    if own:
        last = Path((perf / "last").read_text().strip())
        earlier = sorted(p for p in (perf / "export").iterdir() if p.name != last.name
                         and p.name.startswith("export_"))  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        run(checkout.cli(db, "load", *map(str, earlier), "--no-progress"))
    else:
        copy_warehouse(perf / "history.duckdb", db)
    snapshots_of(db).mkdir(exist_ok=True)
    run(checkout.cli(db, "publish"))
    return db


# --- cases ----------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def publish_round(checkout: Checkout, template: Path, work: Path, last: Path) -> tuple[dict, Path]:
    """One load + publish of `last` into a copy of the template (folder and snapshots)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template.parent, work)
    db = work / template.name
    r = run(checkout.cli(db, "load", str(last), "--no-progress"))
    return {"wall": r["wall"], "cpu": r["cpu"], "ledger": ledger_seconds(db)}, db


def report_round(checkout: Checkout, db: Path, month: str, as_of: dt.date) -> dict:
    """`report` from the snapshot and at a new as-of date: wall, CPU, the answers' digests."""
    snap = run(checkout.cli(db, "report", "--month", month, "--format", "json"))
    new = run(checkout.cli(db, "report", "--month", as_of.strftime("%Y-%m"), "--as-of",
                           as_of.isoformat(), "--format", "json"))  # fmt: skip
    return {
        "snapshot_wall": snap["wall"], "snapshot_cpu": snap["cpu"],
        "as_of_wall": new["wall"], "as_of_cpu": new["cpu"],
        "snapshot_digest": _digest(snap["stdout"]), "as_of_digest": _digest(new["stdout"]),
        "as_of_date": as_of.isoformat(),
    }  # fmt: skip


def pages_round(checkout: Checkout, db: Path, dates: list[dt.date]) -> dict:
    """The state page served by the checkout: at the latest date, then first and repeat visits
    at each new as-of date; the server's resident memory before and after them."""
    process, url = start_server_env(db, {}, python=checkout.python, cwd=checkout.root)
    try:
        start = time.perf_counter()
        status, _ = render_page(url, "/", "?lang=fr")
        latest = time.perf_counter() - start
        assert status == 200, status
        rss_before = tree_rss_bytes(process.pid)
        first, repeat, first_cpu = [], [], []
        for day in dates:
            for times in (first, repeat):
                cpu = tree_cpu_seconds(process.pid)
                start = time.perf_counter()
                status, _ = render_page(url, "/", f"?lang=fr&as_of={day.isoformat()}")
                times.append(time.perf_counter() - start)
                if times is first:
                    first_cpu.append(tree_cpu_seconds(process.pid) - cpu)
                assert status == 200, (day, status)
        return {
            "latest_s": latest, "first_s": first, "repeat_s": repeat,
            "first_median_s": statistics.median(first), "first_max_s": max(first),
            "first_cpu_s": first_cpu, "first_cpu_median_s": statistics.median(first_cpu),
            "repeat_median_s": statistics.median(repeat),
            "rss_before": rss_before, "rss_after": tree_rss_bytes(process.pid),
        }  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=20)


FLOOR = """
import sys, duckdb
duckdb.connect().execute("set enable_progress_bar = false")
print(duckdb.connect().execute(sys.argv[1]).fetchone()[0])
"""


def w1252_export(folder: Path, lines: int) -> tuple[Path, Path, int, str]:
    """The Windows-1252 full export of `lines` other medicines (generated once into `folder`,
    reused while its size matches), its UTF-8 twin, its line count and the scan's SQL."""
    from etl.synthetic.generate import generate  # this checkout's generator: data, not a subject

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text())["lines"] == lines:
        meta = json.loads(done.read_text())
    else:
        result = generate(folder / "w1252", file_format="csv", split="single", style="fr",
                          other_lines=lines, weekly_starts=110.0)  # fmt: skip
        (path,) = result.files
        utf8 = folder / "export_utf8.csv"
        with open(path, encoding="cp1252", newline="") as src, \
                open(utf8, "w", encoding="utf-8", newline="") as dst:  # fmt: skip
            shutil.copyfileobj(src, dst, 2**22)
        meta = {"lines": lines, "path": str(path), "utf8": str(utf8),
                "records": result.n_lines + result.n_other_lines}  # fmt: skip
        done.write_text(json.dumps(meta))
    utf8 = Path(meta["utf8"])
    sql = f"select count(*) from {scan_relation(utf8)}"
    return Path(meta["path"]), utf8, meta["records"], sql


def scan_relation(utf8: Path) -> str:
    """The read_csv call the loader makes for this file (etl/ingest/read.py open_source), or a
    plain one if that cannot be had without temporary files."""
    try:
        from etl.ingest.read import open_source

        con = duckdb.connect()
        source = open_source(con, utf8)
        if not source.temp_files and source.relation:
            return source.relation
    except Exception:  # noqa: BLE001 — the plain scan below does
        pass
    return (f"read_csv('{utf8}', delim=';', header=true, all_varchar=true, "
            "encoding='utf-8')")  # fmt: skip


def tiny_export(folder: Path) -> Path:
    """A two-month export of one new programme a week (a few dozen lines), generated once:
    what a load costs whatever the file (process start, imports, a new warehouse's schema)."""
    from etl.synthetic.generate import generate

    path = folder / "tiny" / "export.csv"
    if not path.exists():
        generate(path.parent, weekly_starts=1.0, split="single", end=dt.date(2023, 3, 31))
    return path


def same_size_month(large: Path, small: Path, folder: Path) -> Path:
    """The month `large` (an export of the large history) cut to about the size of the month
    `small`: the header and the lines of one patient in k, k = the ratio of their data lines
    rounded (at least 1); a patient's bucket is the first 8 hex digits of the SHA-256 of the
    first field (the patient id, quotes and spaces stripped) modulo k, bucket 0 kept. The
    file's own bytes (encoding, delimiter, line ends) are kept, so it loads as the original
    does; its patients continue the large history's programmes, as the small month's do theirs.
    Written once into `folder`; a line with an odd number of quotes (a quoted line break) is
    refused (a cut by lines would split the record)."""
    path = folder / f"{large.stem}_same_size{large.suffix}"
    if path.exists():
        return path
    lines = large.read_bytes().splitlines(keepends=True)
    with small.open("rb") as f:
        small_lines = sum(1 for _ in f) - 1
    k = max(1, round((len(lines) - 1) / max(small_lines, 1)))
    delimiter = b";" if lines[0].count(b";") >= lines[0].count(b",") else b","
    kept = [lines[0]]
    for line in lines[1:]:
        if line.count(b'"') % 2:
            raise ValueError(f"{large}: a quoted line break; cannot cut the file by lines")
        patient = line.split(delimiter, 1)[0].strip().strip(b'"').strip()
        if int(hashlib.sha256(patient).hexdigest()[:8], 16) % k == 0:
            kept.append(line)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(kept))
    tmp.replace(path)
    return path


def w1252_round(checkout: Checkout, export: Path, tiny: Path, work: Path) -> dict:
    """One load of the Windows-1252 export into a new warehouse, memory sampled; then the
    fixed cost: the tiny export into another new warehouse."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db = work / "w.duckdb"
    r = run(checkout.cli(db, "load", str(export), "--no-progress"), memory=True)
    out = {k: r[k] for k in ("wall", "cpu", "peak_rss", "peak_shm", "peak_shm_open",
                             "peak_total")}  # fmt: skip
    out["ledger"] = ledger_seconds(db)
    fixed = run(checkout.cli(work / "tiny.duckdb", "load", str(tiny), "--no-progress"))
    out["fixed_wall"], out["fixed_cpu"] = fixed["wall"], fixed["cpu"]
    shutil.rmtree(work)
    return out


# --- the run --------------------------------------------------------------------------------


def summary(values: list[float | None]) -> dict | None:
    """Median, min, max and count of the values that exist."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}  # fmt: skip


def summarise(rounds: list[dict], keys: list[str]) -> dict:
    """{key: summary over the rounds} for the numeric keys."""
    return {key: summary([r.get(key) for r in rounds]) for key in keys}


def measure(
    checkouts: list[Checkout],
    runs: int,
    workdir: Path,
    perf: Path = PERF,
    cases: set[str] = frozenset({"publish", "report", "pages", "w1252"}),
    lines: int = 1_000_000,
    as_of_dates: int = 5,
    own_history: bool = False,
    scales: tuple[str, str] = ("s1", "s10"),
    export_cache: Path | None = None,
    log=print,
) -> dict:
    """Every case, `runs` alternating rounds over the checkouts; the figures as a dict."""
    small, large = scales
    history_cases = cases & {"publish", "report", "pages"}
    needed = sorted({small} | ({large} if cases & {"publish", "report"} else set()))
    for c in checkouts:
        c.check_imports()
    templates: dict[tuple[str, str], Path] = {}
    if history_cases:
        for c in checkouts:
            for scale in needed:
                log(f"preparing {c.name} {scale}")
                templates[c.name, scale] = prepare_history(
                    c, perf / scale, workdir / "templates" / c.name / scale, own_history
                )
    last = {s: Path((perf / s / "last").read_text().strip()) for s in needed}
    month = month_of(last[needed[0]])
    page_dates = month_ends_before(month, as_of_dates)
    report_dates = month_ends_before(month, runs)  # a new one each round
    same = None
    if "publish" in cases and large in needed:
        same = same_size_month(last[large], last[small], workdir / "same")
    if "w1252" in cases:
        export, _, records, floor_sql = w1252_export(export_cache or workdir / "w1252", lines)
        tiny = tiny_export(export_cache or workdir / "w1252")
    raw: dict[str, dict[str, list]] = {c.name: {} for c in checkouts}
    floors = []
    for i in range(runs):
        order = checkouts if i % 2 == 0 else checkouts[::-1]
        for c in order:
            rounds = raw[c.name]
            work = workdir / "run" / c.name
            if "publish" in cases or "report" in cases or "pages" in cases:
                for scale in needed:
                    if scale == large and not cases & {"publish", "report"}:
                        continue
                    r, db = publish_round(c, templates[c.name, scale], work / scale, last[scale])
                    rounds.setdefault(f"publish_{scale}", []).append(r)
                    log(f"round {i + 1} {c.name} publish {scale}: {r}")
                    if scale == large and same is not None:
                        rs, _ = publish_round(c, templates[c.name, scale],
                                              work / f"{scale}_same", same)  # fmt: skip
                        rounds.setdefault(f"publish_{scale}_same", []).append(rs)
                        log(f"round {i + 1} {c.name} publish {scale}, same-size month: {rs}")
                    if scale == large and "report" in cases:
                        rr = report_round(c, db, month, report_dates[i])
                        rounds.setdefault("report", []).append(rr)
                        log(f"round {i + 1} {c.name} report: {rr}")
                    if scale == small and "pages" in cases:
                        pr = pages_round(c, db, page_dates)
                        rounds.setdefault("pages", []).append(pr)
                        log(f"round {i + 1} {c.name} pages: first {pr['first_s']}, "
                            f"rss after {pr['rss_after'] / 2**20:.0f} MiB")  # fmt: skip
                shutil.rmtree(work, ignore_errors=True)
            if "w1252" in cases:
                r = w1252_round(c, export, tiny, work / "w1252")
                rounds.setdefault("w1252", []).append(r)
                log(f"round {i + 1} {c.name} w1252: {r}")
        if "w1252" in cases:
            f = run([sys.executable, "-c", FLOOR, floor_sql], memory=True)
            floors.append({k: f[k] for k in ("wall", "cpu", "peak_rss", "peak_total")})
            log(f"round {i + 1} floor: {floors[-1]}")
    results: dict = {"cases": {}}
    for c in checkouts:
        rounds, out = raw[c.name], {}
        for scale in needed:
            for key in (f"publish_{scale}", f"publish_{scale}_same"):
                if key in rounds:
                    out[key] = summarise(rounds[key], ["wall", "cpu", "ledger"])
        if "publish" in cases:
            a, b = out[f"publish_{small}"], out[f"publish_{large}"]
            out["publish_ratio"] = {k: b[k]["median"] / a[k]["median"] for k in ("wall", "cpu")}
            if f"publish_{large}_same" in out:
                b = out[f"publish_{large}_same"]
                out["publish_same_ratio"] = {
                    k: b[k]["median"] / a[k]["median"] for k in ("wall", "cpu")
                }
        if "report" in rounds:
            rep = summarise(rounds["report"], ["snapshot_wall", "snapshot_cpu", "as_of_wall",
                                               "as_of_cpu"])  # fmt: skip
            rep["ratio"] = {
                k: rep[f"as_of_{k}"]["median"] / rep[f"snapshot_{k}"]["median"]
                for k in ("wall", "cpu")
            }
            rep["rounds"] = [{k: r[k] for k in ("as_of_date", "snapshot_digest", "as_of_digest")}
                             for r in rounds["report"]]  # fmt: skip
            out["report"] = rep
        if "pages" in rounds:
            pg = summarise(rounds["pages"], ["latest_s", "first_median_s", "first_cpu_median_s",
                                             "first_max_s", "repeat_median_s", "rss_before",
                                             "rss_after"])  # fmt: skip
            pg["dates"] = [d.isoformat() for d in page_dates]
            pg["rounds"] = [{k: r.get(k) for k in ("first_s", "first_cpu_s", "repeat_s", "rss_after")}
                            for r in rounds["pages"]]  # fmt: skip
            out["pages"] = pg
        if "w1252" in rounds:
            w = summarise(rounds["w1252"], ["wall", "cpu", "ledger", "fixed_wall", "fixed_cpu"])
            for key in ("peak_rss", "peak_shm", "peak_shm_open", "peak_total"):
                w[key] = max(r[key] for r in rounds["w1252"])
            floor = summarise(floors, ["wall", "cpu"])
            w["ratio"] = {k: w[k]["median"] / floor[k]["median"] for k in ("wall", "cpu")}
            out["w1252"] = w
        results["cases"][c.name] = out
    if "w1252" in cases:
        results["w1252_floor"] = {
            **summarise(floors, ["wall", "cpu"]),
            "peak_rss": max(f["peak_rss"] for f in floors),
            "lines": records, "file": str(export), "bytes": export.stat().st_size,
            "sql": floor_sql,
        }  # fmt: skip
    if "report" in cases:  # the same round's answers must agree across checkouts
        per_round = list(zip(*(raw[c.name]["report"] for c in checkouts), strict=True))
        results["report_answers_identical"] = all(
            len({r["snapshot_digest"] for r in rs}) == 1
            and len({r["as_of_digest"] for r in rs}) == 1
            for rs in per_round
        )
    results["settings"] = {
        "runs": runs, "lines": lines, "as_of_dates": as_of_dates, "own_history": own_history,
        "perf": str(perf), "scales": list(scales), "month": month,
    }  # fmt: skip
    return results


def machine() -> dict:
    """Where and when it ran (load average: how busy the machine was)."""
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "duckdb": duckdb.__version__,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
    }  # fmt: skip


# --- the table ------------------------------------------------------------------------------


def _m(s: dict | None, digits: int = 2) -> str:
    return "–" if s is None else f"{s['median']:.{digits}f}"


def _mr(s: dict | None, digits: int = 2) -> str:
    if s is None:
        return "–"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _verdict(value: float, limit: float) -> str:
    return f"{value:.2f} {'✓' if value <= limit else '✗'}"


def table(results: dict) -> str:
    """The figures as a Markdown table: one column per checkout, each criterion against its
    limit (✓ met, ✗ not met, on the median of whole processes)."""
    names = list(results["cases"])
    rows: list[tuple[str, list[str]]] = []
    by = results["cases"]
    small, large = results["settings"]["scales"]

    def add(label: str, fn) -> None:
        cells = []
        for n in names:
            try:
                cells.append(fn(by[n]))
            except (KeyError, TypeError):
                cells.append("–")
        if any(cell != "–" for cell in cells):
            rows.append((label, cells))

    for scale in dict.fromkeys((small, large)):
        add(
            f"load + publish one month, {scale}: wall s",
            lambda c, s=scale: _mr(c[f"publish_{s}"]["wall"]),
        )
        add(
            f"load + publish one month, {scale}: CPU s",
            lambda c, s=scale: _mr(c[f"publish_{s}"]["cpu"]),
        )
        add(
            f"load + publish one month, {scale}: ledger s",
            lambda c, s=scale: _mr(c[f"publish_{s}"]["ledger"]),
        )
    limit = LIMITS["publish_ratio"]
    add(
        f"**{large} / {small}, wall** (≤ {limit:g})",
        lambda c: _verdict(c["publish_ratio"]["wall"], limit),
    )
    add(
        f"**{large} / {small}, CPU** (≤ {limit:g})",
        lambda c: _verdict(c["publish_ratio"]["cpu"], limit),
    )
    add(
        f"load + publish a same-size month into {large}: wall s",
        lambda c: _mr(c[f"publish_{large}_same"]["wall"]),
    )
    add(
        f"load + publish a same-size month into {large}: CPU s",
        lambda c: _mr(c[f"publish_{large}_same"]["cpu"]),
    )
    add(
        f"**same-size month, {large} / {small}, wall** (≤ {limit:g})",
        lambda c: _verdict(c["publish_same_ratio"]["wall"], limit),
    )
    add(
        f"**same-size month, {large} / {small}, CPU** (≤ {limit:g})",
        lambda c: _verdict(c["publish_same_ratio"]["cpu"], limit),
    )
    add(f"report from the snapshot, {large}: wall s", lambda c: _mr(c["report"]["snapshot_wall"]))
    add(f"report from the snapshot, {large}: CPU s", lambda c: _mr(c["report"]["snapshot_cpu"]))
    add(f"report --as-of a new date, {large}: wall s", lambda c: _mr(c["report"]["as_of_wall"]))
    add(f"report --as-of a new date, {large}: CPU s", lambda c: _mr(c["report"]["as_of_cpu"]))
    limit = LIMITS["report_ratio"]
    add(
        f"**as-of / snapshot, wall** (≤ {limit:g})",
        lambda c: _verdict(c["report"]["ratio"]["wall"], limit),
    )
    add(
        f"**as-of / snapshot, CPU** (≤ {limit:g})",
        lambda c: _verdict(c["report"]["ratio"]["cpu"], limit),
    )
    add(
        f"state page at the latest date after start, {small}: s",
        lambda c: _mr(c["pages"]["latest_s"]),
    )
    limit = LIMITS["first_page_seconds"]
    add(f"**state page, first visit at a new as-of, {small}: s** (≤ {limit:g})",
        lambda c: _verdict(c["pages"]["first_median_s"]["median"], limit))  # fmt: skip
    add("  its server CPU s", lambda c: _mr(c["pages"]["first_cpu_median_s"]))
    add("  slowest of the dates: s", lambda c: _mr(c["pages"]["first_max_s"]))
    add("  repeat visit: s", lambda c: _mr(c["pages"]["repeat_median_s"]))
    add("server RSS before the as-of dates: MiB",
        lambda c: f"{c['pages']['rss_before']['median'] / 2**20:,.0f}")  # fmt: skip
    add(f"server RSS after {results['settings']['as_of_dates']} as-of dates: MiB",
        lambda c: _mr({k: (v / 2**20 if k != 'runs' else v)
                       for k, v in c["pages"]["rss_after"].items()}, 0))  # fmt: skip
    floor = results.get("w1252_floor")
    if floor:
        lines = f"{floor['lines']:,}"
        add(f"Windows-1252 load, {lines} lines: wall s", lambda c: _mr(c["w1252"]["wall"]))
        add(f"Windows-1252 load, {lines} lines: CPU s", lambda c: _mr(c["w1252"]["cpu"]))
        add("  its ledger s", lambda c: _mr(c["w1252"]["ledger"]))
        add("  fixed cost (a few dozen lines into a new warehouse): CPU s",
            lambda c: _mr(c["w1252"]["fixed_cpu"]))  # fmt: skip
        add(f"DuckDB bare scan, UTF-8, whole process: wall s {_mr(floor['wall'])}, CPU s",
            lambda c: _mr(floor["cpu"]))  # fmt: skip
        limit = LIMITS["w1252_ratio"]
        add(
            f"**load / scan, wall** (≤ {limit:g})",
            lambda c: _verdict(c["w1252"]["ratio"]["wall"], limit),
        )
        add(
            f"**load / scan, CPU** (≤ {limit:g})",
            lambda c: _verdict(c["w1252"]["ratio"]["cpu"], limit),
        )
        limit = LIMITS["w1252_peak_bytes"] / GIB
        add(f"**peak RSS + shm: GiB** (≤ {limit:g} at 10M lines)",
            lambda c: f"{c['w1252']['peak_total'] / GIB:.2f}")  # fmt: skip
        add("  of which peak RSS / shm: GiB",
            lambda c: f"{c['w1252']['peak_rss'] / GIB:.2f} / {c['w1252']['peak_shm'] / GIB:.2f}")  # fmt: skip
    m = results.get("machine", {})
    head = [
        f"Measured {m.get('date', '?')} on {m.get('cpus', '?')} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in m.get('load_average', []))}; "
        f"{results['settings']['runs']} alternating rounds, median (min–max).",
        "",
        "| | " + " | ".join(f"{n} ({results['checkouts'][n]['commit']})" for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    body = [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    tail = []
    if "report_answers_identical" in results:
        tail = ["", "Report answers identical across checkouts, round by round: "
                + ("yes" if results["report_answers_identical"] else "**no**") + "."]  # fmt: skip
    return "\n".join(head + body + tail)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.issue20", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkout", action="append", metavar="NAME=PATH", default=[])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--lines",
        type=int,
        default=1_000_000,
        help="other medicines in the Windows-1252 export (the issue: 10,000,000; fewer lines "
        "weigh the load's fixed cost more, so the ratio to the scan is higher)",
    )
    parser.add_argument("--as-of-dates", type=int, default=5)
    parser.add_argument(
        "--case",
        action="append",
        choices=("publish", "report", "pages", "w1252"),
        help="only these cases (default: all)",
    )
    parser.add_argument(
        "--perf",
        type=Path,
        default=PERF,
        help="folder with s1/ and s10/ (history.duckdb, last, export/)",
    )
    parser.add_argument("--scales", default="s1,s10", help="the small and the large history")
    parser.add_argument(
        "--own-history",
        action="store_true",
        help="each checkout loads the history itself instead of copying it",
    )
    parser.add_argument(
        "--export-cache",
        type=Path,
        default=None,
        help="keep the generated Windows-1252 export here between runs",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--table",
        type=Path,
        default=None,
        metavar="JSON",
        help="print the table of an earlier run and stop",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.table:
        print(table(json.loads(args.table.read_text(encoding="utf-8"))))
        return 0
    if not args.checkout:
        parser.error("at least one --checkout NAME=PATH")
    checkouts = []
    for item in args.checkout:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"--checkout {item!r}: expected NAME=PATH")
        checkouts.append(Checkout(name, Path(path)))
    small, _, large = args.scales.partition(",")
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="issue20-") as tmp:
        results = measure(
            checkouts, args.runs, Path(tmp), perf=args.perf,
            cases=set(args.case or ("publish", "report", "pages", "w1252")), lines=args.lines,
            as_of_dates=args.as_of_dates, own_history=args.own_history, scales=(small, large),
            export_cache=args.export_cache, log=lambda text: print(text, file=sys.stderr, flush=True),
        )  # fmt: skip
    results["machine"] = machine()
    results["checkouts"] = {c.name: c.describe() for c in checkouts}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
