"""A dashboard served by a real `benzo-monitor serve` process, driven over HTTP (no browser).

The benchmarks time pages through it; the tests (tests/browser.py) use the same functions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def shm_used_bytes() -> int:
    """Bytes in use on /dev/shm, machine-wide (RAM-backed files that no RSS shows)."""
    try:
        stat = os.statvfs("/dev/shm")
    except FileNotFoundError:
        return 0
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for row in status:
                if row.startswith(field + ":"):
                    return int(row.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_log(db: Path, name: str):
    """A file beside the warehouse for a server's output (kept for reading after a failure)."""
    return open(db.parent / f"{db.stem}.{name}.{os.getpid()}.{time.monotonic_ns()}.log", "wb")


def start_server(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`benzo-monitor serve` on a free port; returns once it answers. The server's output goes
    to a file: an unread pipe fills up with request logs and then blocks the server."""
    return start_server_env(db, {}, *extra)


def render_page(url: str, path: str, search: str = "") -> tuple[int, dict | str]:
    """Ask the running app for the page at `path?search` the way the browser does (the
    dash-pages callback). Returns (HTTP status, JSON response or the error text)."""
    status, text = post_callback(url, page_body(path, search), timeout=30)
    return status, (json.loads(text) if status < 400 else text)


def page_body(path: str, search: str) -> dict:
    """The body of dash-pages' page-rendering callback for `path?search`."""
    return callback_body(
        ["_pages_content.children", "_pages_store.data"],
        [("_pages_location", "pathname", path), ("_pages_location", "search", search)],
    )


def post_callback(url: str, body: dict, timeout: float = 60) -> tuple[int, str]:
    """POST a callback body to the app at `url`: (HTTP status, answer text)."""
    request = urllib.request.Request(
        url + "/_dash-update-component",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def find_component(tree, component_id: str):
    """The component with `component_id` in a rendered layout (JSON), or None."""
    if isinstance(tree, dict):
        props = tree.get("props")
        if isinstance(props, dict) and props.get("id") == component_id:
            return tree
        for value in tree.values():
            found = find_component(value, component_id)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for item in tree:
            found = find_component(item, component_id)
            if found is not None:
                return found
    return None


def callback_body(
    output: str | list[str],
    inputs: list[tuple[str, str, object]],
    state: list[tuple[str, str, object]] = (),
    changed: str | None = None,
) -> dict:
    """The JSON body the browser POSTs to /_dash-update-component for a callback with one
    output ("component-id.property") or several (a list), its inputs and states as (id,
    property, value), after a change of `changed` ("id.property"; default: the first input)."""
    first = inputs[0]
    if isinstance(output, str):
        component, prop = output.split(".", 1)
        outputs: dict | list = {"id": component, "property": prop}
    else:
        outputs = [dict(zip(("id", "property"), o.split(".", 1), strict=True)) for o in output]
        output = ".." + "...".join(output) + ".."
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": [changed or f"{first[0]}.{first[1]}"],
    }


def wait_until_up(process: subprocess.Popen, url: str, log, name: str) -> None:
    """Wait until the server answers (a redirect to the sign-in page counts: urllib follows it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {Path(log.name).read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{name} did not answer within 60 s")


def start_server_env(
    db: Path,
    env: dict[str, str],
    *extra: str,
    python: str | Path | None = None,
    cwd: str | Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """`benzo-monitor serve` on a free port with extra environment variables `env`, run by
    `python` (default: this interpreter) in `cwd`. To serve another checkout's code (bench/
    issue20.py), give its `.venv/bin/python` AND its folder as `cwd`: `python -m` puts the
    working folder first on the import path, so from here it would import this checkout."""
    port = free_port()
    log = server_log(db, "serve")
    process = subprocess.Popen(
        [
            str(python or sys.executable),
            "-m",
            "etl.cli",
            "--db",
            str(db),
            "serve",
            "--port",
            str(port),
            *extra,
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url, log, "serve")
    return process, url
