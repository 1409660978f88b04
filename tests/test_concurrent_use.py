"""Issue 7, item 3: the dashboard under gunicorn (2 workers) answers a bounded request loop on
127.0.0.1 while three loads run, with no 5xx, no lock or IO error, no traceback, and every
answer showing one complete load.

The warehouse is small and hand-made, so every stage's figures are known by hand (and checked
against `benzo-monitor report --format json` on a copy of the warehouse taken at each stage):

    stage          patients initiated in April 2025   unassigned follow-ups   loads
    base file                   6                              5                 1
    after load 1               11                             10                 2
    after load 2               18                             15                 3
    after load 3               24                             20                 4

Client threads cycle through the app's requests: the shell (GET /), /_dash-layout,
/_dash-dependencies and every page rendered through /_dash-update-component (the way the
browser does), in the three languages and both views. A state-of-play answer shows a stage's
patients initiated (cards, from mart_state_of_play) and unassigned follow-ups (table, from
mart_unassigned_by_month): both must belong to the same stage. A data-page answer lists the
stage's loads. Each client's stages never go back.

Two loads that overlap: DuckDB lets one process write a database file at a time. Load 2 is
paused (SIGSTOP) while it holds the warehouse; load 3 then fails at once with a plain message
("... is in use by another program (process N); wait for it to finish and try again", exit
status 2, no traceback) and changes nothing, and an upload on the data page answers "a load is
running ... nothing was loaded". Load 3 is run again after load 2: nothing is lost.

BENZO_CONCURRENT_REQUESTS (default 2000) and BENZO_CONCURRENT_CLIENTS (default 4) make a bigger
run (with pytest --timeout=0 beyond about 5,000 requests); the figures (requests per status, p50/p95 latency) are printed (pytest -s) and written to
the file BENZO_CONCURRENT_SUMMARY names, if set. BENZO_TEST_PORTS ("8650-8699") is the range of
ports the server may use.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tests.browser as browser
from bench.served import callback_body, find_component, page_body, post_callback, render_page
from etl.base.registry import load_registry
from etl.cli import main as cli_main
from tests.browser import start_gunicorn
from tests.conftest import CANONICAL_HEADER, write_delimited

REQUESTS = int(os.environ.get("BENZO_CONCURRENT_REQUESTS", "2000"))
CLIENTS = int(os.environ.get("BENZO_CONCURRENT_CLIENTS", "4"))
# The loop stops here whatever happens (pytest-timeout is 180 s: give a bigger run --timeout=0).
DEADLINE_S = max(150, REQUESTS / 10)
MONTH = "2025-04"
# (patients initiated in April, unassigned follow-up interviews in April, loads) per stage.
STAGES = [(6, 5, 1), (11, 10, 2), (18, 15, 3), (24, 20, 4)]
PAGES = ("/", "/outcomes", "/fees", "/compliance", "/regions", "/data", "/methodology")
LANGS = ("fr", "nl", "en")
VIEWS = ("analyst", "publication")
ERROR_MARKERS = (
    "Traceback",
    "Could not set lock",
    "Conflicting lock",
    "IO Error",
    "IOException",
    "database is locked",
    "in use by another program",
    "Internal Server Error",
)
OTHER_LINES = 50_000  # lines of other medicines in each loaded file: loads take a while


def _port_in_range() -> int:
    low, high = map(int, os.environ.get("BENZO_TEST_PORTS", "8650-8699").split("-"))
    for port in range(low, high + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _programme_rows(tag: str, initiation_cnk: str, n_initiations: int, day: int) -> list[list]:
    """n initiation interviews and 5 follow-up interviews of patients with no initiation
    (unassigned) in April 2025, plus lines of other medicines (dropped by the loader)."""
    date = f"{day:02d}/04/2025"
    rows = [
        [f"{tag}-P{i}", "PH1", date, initiation_cnk, "1", "23,24"] for i in range(n_initiations)
    ]
    rows += [[f"{tag}-U{i}", "PH2", date, "5522024", "1", "23,24"] for i in range(5)]
    rows += [[f"{tag}-Q{i}", "PH9", date, "1234567", "1", "3,10"] for i in range(OTHER_LINES)]
    return rows


def _exports(folder: Path) -> tuple[Path, list[Path]]:
    base_rows = [
        [f"B-P{i}", "PH1", "01/04/2025", cnk, "1", "23,24"]
        for i, cnk in enumerate(["5521950", "5521950", "5521968", "5521968", "5521976", "5521976"])
    ]
    base_rows += [[f"B-U{i}", "PH2", "01/04/2025", "5522024", "1", "23,24"] for i in range(5)]
    base = write_delimited(folder / "base.csv", CANONICAL_HEADER, base_rows)
    # Load k: its initiations of one scheme (5, 7, then 10 steps) and 5 unassigned follow-ups.
    plan = [("5521950", 5), ("5521968", 7), ("5521976", 6)]
    loads = [
        write_delimited(
            folder / f"load-{k}.csv", CANONICAL_HEADER, _programme_rows(f"L{k}", cnk, n, 1 + k)
        )
        for k, (cnk, n) in enumerate(plan, start=1)
    ]
    return base, loads


def _holds_lock(pid: int) -> bool:
    """Does process `pid` hold a POSIX write lock (DuckDB's lock on the warehouse)?"""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return False
    return any(str(pid) in line.split() and "WRITE" in line.split() for line in lines)


# --- reading answers ---------------------------------------------------------------------------


def _cell_text(component) -> str:
    children = component["props"].get("children") if isinstance(component, dict) else component
    return children if isinstance(children, str) else ""


def _state_stage(body: dict, lang: str) -> tuple[int, int]:
    """(patients initiated in total, unassigned follow-ups) shown by a state-of-play answer."""
    card = find_component(body, "state-card-total-patients_initiated")
    initiated = int(card["props"]["children"])
    table = find_component(body, "state-table")
    label = load_registry().metric("follow_up_interviews").label(lang)
    tbody = table["props"]["children"][1]
    for row in tbody["props"]["children"]:
        cells = row["props"]["children"]
        if _cell_text(cells[0]) == label:
            return initiated, int(_cell_text(cells[-1]))
    raise AssertionError(f"no row {label!r} in the state-of-play table")


def _data_stage(body: dict) -> int:
    """The number of loads in the data page's ledger."""
    return len(find_component(body, "data-ledger")["props"]["rowData"])


def _request_cycle(offset: int) -> list[tuple]:
    """The requests a client makes, in order (each client starts elsewhere in the cycle)."""
    cycle = []
    for lang in LANGS:
        for view in VIEWS:
            search = f"?lang={lang}&view={view}"
            for path in PAGES:
                extra = f"&month={MONTH}" if path == "/" else ""
                cycle.append(("page", path, search + extra, lang))
                if path in ("/", "/data"):  # the pages whose figures are checked: twice as often
                    cycle.append(("page", path, search + extra, lang))
            cycle += [("get", f"/{search}", None, lang), ("get", "/_dash-layout", None, lang)]
            cycle.append(("get", "/_dash-dependencies", None, lang))
    offset %= len(cycle)
    return cycle[offset:] + cycle[:offset]


class Loop:
    """The request loop: client threads until `target` requests are done and the loads are
    over (bounded by DEADLINE_S), recording every answer."""

    def __init__(self, url: str, target: int):
        self.url = url
        self.target = target
        self.lock = threading.Lock()
        self.done = 0
        self.loads_over = threading.Event()
        self.statuses: collections.Counter = collections.Counter()
        self.latencies: list[float] = []
        self.problems: list[str] = []
        self.stages: dict[int, list[tuple[str, int]]] = collections.defaultdict(list)
        self.mixed: list[tuple] = []
        self.deadline = time.monotonic() + DEADLINE_S

    def wait_for(self, fraction: float) -> None:
        while self.done < self.target * fraction and time.monotonic() < self.deadline:
            time.sleep(0.02)

    def _one(self, client: int, request: tuple) -> None:
        kind, path, search, lang = request
        started = time.perf_counter()
        try:
            if kind == "page":
                status, text = post_callback(self.url, page_body(path, search))
            else:
                with urllib.request.urlopen(self.url + path, timeout=30) as response:
                    status = response.status
                    text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            status, text = f"no answer: {exc}", ""
        elapsed = time.perf_counter() - started
        problem = None
        markers = [m for m in ERROR_MARKERS if m in text]
        if status != 200 or markers:
            problem = f"{kind} {path}{search or ''}: {status} {markers} {text[:300]}"
        stage = None
        if problem is None and kind == "page" and path in ("/", "/data"):
            try:
                body = json.loads(text)
                if path == "/":
                    shown = _state_stage(body, lang)
                    matches = [i for i, s in enumerate(STAGES) if s[:2] == shown]
                    if not matches:
                        self.mixed.append((path, search, shown))
                    stage = matches[0] if matches else None
                else:
                    loads = _data_stage(body)
                    stage = loads - 1 if 1 <= loads <= len(STAGES) else None
                    if stage is None:
                        self.mixed.append((path, search, loads))
            except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
                problem = f"{kind} {path}{search}: unreadable answer ({exc!r})"
        with self.lock:
            self.done += 1
            self.statuses[status] += 1
            self.latencies.append(elapsed)
            if problem:
                self.problems.append(problem)
            if stage is not None:
                self.stages[client].append((f"{path}{search}", stage))

    def client(self, client: int) -> None:
        cycle = _request_cycle(client * 7)
        i = 0
        while time.monotonic() < self.deadline:
            if self.done >= self.target and self.loads_over.is_set():
                return
            self._one(client, cycle[i % len(cycle)])
            i += 1

    def summary(self, seconds: float) -> dict:
        ordered = sorted(self.latencies)
        return {
            "requests": len(ordered),
            "clients": CLIENTS,
            "workers": 2,
            "seconds": round(seconds, 1),
            "requests_per_second": round(len(ordered) / seconds, 1),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max_ms": round(1000 * ordered[-1], 1),
            "problems": len(self.problems),
            "stage_answers": collections.Counter(s for v in self.stages.values() for _, s in v),
        }


def _upload_body(path: Path) -> dict:
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    return callback_body(
        # The upload's first callback: its preview, a dry run that needs the warehouse too.
        ["data-upload-result.children", "data-upload-actions.style", "data-upload-pending.data"],
        [("data-upload", "contents", contents)],
        [("data-upload", "filename", path.name), ("url", "search", "?lang=en")],
    )


def test_requests_during_three_loads_see_complete_loads_only(tmp_path, monkeypatch, capsys):
    if not Path("/proc/locks").exists():
        pytest.skip("needs Linux's /proc/locks to see when a load holds the warehouse")
    monkeypatch.setattr(browser, "free_port", _port_in_range)
    # gunicorn serves in production mode, which signs sessions with a configured key.
    monkeypatch.setenv("BENZO_MONITOR_SECRET_KEY", "concurrent-use-test-" + "k" * 32)
    base, files = _exports(tmp_path)
    db = tmp_path / "warehouse.duckdb"
    stages = tmp_path / "stages"
    stages.mkdir()
    cli = [sys.executable, "-m", "etl.cli", "--db", str(db)]

    def load(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, "load", str(path)], capture_output=True, text=True)

    def keep_stage(i: int) -> None:
        for suffix in ("", ".wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copyfile(f"{db}{suffix}", stages / f"stage-{i}.duckdb{suffix}")

    assert load(base).returncode == 0
    keep_stage(0)
    process, url = start_gunicorn(db, workers=2)
    loop = Loop(url, REQUESTS)
    events: list[str] = []
    failures: list[str] = []
    paused: subprocess.Popen | None = None

    def loader() -> None:
        nonlocal paused
        try:
            loop.wait_for(0.2)
            done = load(files[0])
            if done.returncode != 0:
                failures.append(f"load 1: {done.stderr}")
            keep_stage(1)
            events.append("load 1")
            loop.wait_for(0.45)
            # Load 2, paused while it holds the warehouse; load 3 and an upload meanwhile.
            paused = subprocess.Popen(
                [*cli, "load", str(files[1])],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 30
            while not _holds_lock(paused.pid) and paused.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            paused.send_signal(signal.SIGSTOP)
            overlapping = load(files[2])
            message = " ".join(overlapping.stderr.split())  # the console wraps long lines
            events.append(f"overlap: {overlapping.returncode} {message}")
            upload = post_callback(url, _upload_body(files[2]))
            events.append(f"upload: {upload[0]} {upload[1][:400]}")
            time.sleep(0.5)  # readers go on while the paused load holds the warehouse
            paused.send_signal(signal.SIGCONT)
            out, err = paused.communicate(timeout=60)
            if paused.returncode != 0:
                failures.append(f"load 2: {err}")
            keep_stage(2)
            events.append("load 2")
            loop.wait_for(0.7)
            done = load(files[2])  # load 3 again, now alone
            if done.returncode != 0:
                failures.append(f"load 3: {done.stderr}")
            keep_stage(3)
            events.append("load 3")
        except Exception as exc:  # reported by the assertions below
            failures.append(repr(exc))
        finally:
            if paused is not None and paused.poll() is None:
                paused.send_signal(signal.SIGCONT)
            loop.loads_over.set()

    started = time.perf_counter()
    threads = [threading.Thread(target=loop.client, args=(i,)) for i in range(CLIENTS)]
    threads.append(threading.Thread(target=loader))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE_S + 30)
        seconds = time.perf_counter() - started
        # The final state, without a restart.
        final_state = render_page(url, "/", f"?lang=en&month={MONTH}")
        final_data = render_page(url, "/data", "?lang=en")
    finally:
        if paused is not None and paused.poll() is None:
            paused.kill()
        process.terminate()
        process.wait(timeout=10)
    log = next(tmp_path.glob("warehouse.gunicorn.*.log")).read_text(errors="replace")

    summary = loop.summary(seconds)
    text = json.dumps(summary, default=str)
    with capsys.disabled():
        print(f"\nconcurrent use: {text}\nevents: {events}")
    if os.environ.get("BENZO_CONCURRENT_SUMMARY"):
        Path(os.environ["BENZO_CONCURRENT_SUMMARY"]).write_text(text + "\n", encoding="utf-8")

    assert failures == []
    assert loop.done >= REQUESTS
    assert loop.problems == [], loop.problems[:5]
    assert set(loop.statuses) == {200}
    assert "Traceback" not in log and "[ERROR]" not in log, log[-3000:]
    # Every state or data page answer shows one complete stage, and a client's stages never go
    # back; the loop saw the stages before and after the loads.
    assert loop.mixed == []
    for answers in loop.stages.values():
        seen = [stage for _, stage in answers]
        assert seen == sorted(seen)
    assert {0, 3} <= set(summary["stage_answers"])
    # The final state, shown without a restart.
    assert final_state[0] == 200 and _state_stage(final_state[1], "en") == STAGES[3][:2]
    assert final_data[0] == 200 and _data_stage(final_data[1]) == 4

    # Overlapping loads: the second fails at once with a plain message and changes nothing;
    # the upload during the load is refused the same way.
    overlap = next(e for e in events if e.startswith("overlap:"))
    assert overlap.startswith("overlap: 2 error: the warehouse "), overlap
    assert "is in use by another program (process" in overlap
    assert "wait for it to finish and try again" in overlap and "Traceback" not in overlap
    upload = next(e for e in events if e.startswith("upload:"))
    assert upload.startswith("upload: 200 ")
    assert "A load is running; try again in a moment. Nothing was loaded." in upload

    # Each stage's figures, as `benzo-monitor report` computes them on the copy of that stage.
    shown = []
    for i in range(len(STAGES)):
        copy = stages / f"stage-{i}.duckdb"
        status = cli_main(
            ["--db", str(copy), "report", "--month", MONTH, "--format", "json", "--no-suppress"]
        )
        out, err = capsys.readouterr()
        assert status == 0, err
        doc = json.loads(out)
        assert cli_main(["--db", str(copy), "loads", "--format", "json"]) == 0
        ledger = json.loads(capsys.readouterr().out)
        shown.append(
            (
                doc["schemes"]["total"]["patients_initiated"],
                doc["unassigned"]["follow_up_interviews"],
                len(ledger),
            )
        )
    assert shown == STAGES
    # Nothing lost, nothing twice: the final ledger is the base file and the three loads.
    assert [r["file_name"] for r in ledger] == [
        "base.csv",
        "load-1.csv",
        "load-2.csv",
        "load-3.csv",
    ]
