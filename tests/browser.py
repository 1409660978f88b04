"""Browser tests' tools: a real `benzo-monitor serve` process and headless Debian Chromium.

The fixtures `served` (a running dashboard on a generated warehouse) and `browser` (a Selenium
driver of /usr/bin/chromium through /usr/bin/chromedriver) are declared in conftest.py. Browser
tests are skipped, with the reason, where Chromium or its driver is not installed (CI installs
both: see .ci/run).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.served import (
    free_port,
    server_log,
    wait_until_up,
)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Console messages that are not errors of the app (Chromium's own noise).
IGNORED_CONSOLE = ("favicon.ico", "DevTools", "Autofocus processing was blocked")


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None when either is missing."""
    browser = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@dataclass
class Served:
    """A dashboard served by a real `benzo-monitor serve` process."""

    url: str
    db: Path
    process: subprocess.Popen
    data_dir: Path

    def cli(self, *args: str | Path) -> subprocess.CompletedProcess:
        """Run `benzo-monitor --db <this warehouse> ARGS...` in a separate process."""
        return subprocess.run(
            [sys.executable, "-m", "etl.cli", "--db", str(self.db), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )


def build_warehouse(folder: Path) -> Path:
    """A warehouse of generated national data from Feb 2023 to Jun 2025, at a quarter of the
    national rate of new starts (quick to build, with every page's material)."""
    from etl.base.config import load_config
    from etl.base.warehouse import connect
    from etl.ingest.load import load_paths
    from etl.synthetic.generate import generate

    exports = folder / "exports"
    result = generate(
        exports, start=dt.date(2023, 2, 1), end=dt.date(2025, 6, 30), weekly_starts=25,
        today=dt.date(2025, 7, 15),
    )  # fmt: skip
    db = folder / "warehouse.duckdb"
    con = connect(db, config=load_config())
    try:
        outcomes = load_paths(con, result.files)
    finally:
        con.close()
    assert not [o for o in outcomes if o.refused]
    return db


def make_driver(download_dir: Path):
    """Headless Chromium driven by Selenium, with console logs and downloads enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        pytest.skip("Chromium and chromedriver are not installed (CI installs them: .ci/run)")
    browser, driver = paths
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--window-size=1366,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(download_dir), "download.prompt_for_download": False},
    )
    return webdriver.Chrome(service=Service(driver), options=options)


def open_page(driver, url: str, ready_id: str, timeout: float = 20):
    """Load `url` and wait until the element `ready_id` is displayed and Dash is idle."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait_for(driver, ready_id, timeout)
    WebDriverWait(driver, timeout).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
    )
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.ID, ready_id)))


def wait_for(driver, element_id: str, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.visibility_of_element_located((By.ID, element_id))
    )


def wait_for_text(driver, element_id: str, text: str, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        ec.text_to_be_present_in_element((By.ID, element_id), text)
    )
    return driver.find_element(By.ID, element_id)


def console_errors(driver) -> list[str]:
    """Severe browser console messages since the last call (the log is drained on reading)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(s in entry["message"] for s in IGNORED_CONSOLE)
    ]


def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


# --- the app's own server, without a browser ------------------------------------------------


def start_gunicorn(db: Path, workers: int = 2) -> tuple[subprocess.Popen, str]:
    """The documented production command (gunicorn, dashboard.wsgi:server) on a free port;
    production mode (dashboard/wsgi.py's default) needs a secret key to start."""
    key = os.environ.get("BENZO_MONITOR_SECRET_KEY") or secrets.token_urlsafe(48)
    return start_gunicorn_env(db, {"BENZO_MONITOR_SECRET_KEY": key}, workers)


def download_of(response_json: dict, output: str) -> tuple[str, bytes]:
    """(file name, bytes) of a dcc.Download callback answer for `output` ("id.data")."""
    import base64

    component, prop = output.split(".", 1)
    data = response_json["response"][component][prop]
    content = data["content"]
    raw = base64.b64decode(content) if data.get("base64") else content.encode("utf-8")
    return data["filename"], raw


# --- access control (tests/test_auth*.py) ---------------------------------------------------


def gunicorn_command(port: int, workers: int = 2) -> list[str]:
    """The documented production command (README, "Production serving") on `port`."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return [str(gunicorn), "--workers", str(workers), "--preload", "--bind",
            f"127.0.0.1:{port}", "dashboard.wsgi:server"]  # fmt: skip


def start_gunicorn_env(
    db: Path, env: dict[str, str], workers: int = 2
) -> tuple[subprocess.Popen, str]:
    """gunicorn (production mode unless `env` says otherwise) with extra environment `env`."""
    port = free_port()
    log = server_log(db, "gunicorn")
    process = subprocess.Popen(
        gunicorn_command(port, workers),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "BENZO_MONITOR_DB": str(db), "PYTHONUNBUFFERED": "1", **env},
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url, log, "gunicorn")
    return process, url


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server started here (kill it if it does not stop within 10 s)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def add_user(db: Path, name: str, role: str, password: str) -> subprocess.CompletedProcess:
    """`benzo-monitor --db DB users add NAME --role ROLE --password-stdin`."""
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "users", "add", name, "--role", role,
         "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def sign_in_form(driver, url: str, name: str, password: str, path: str = "/?lang=en"):
    """Open `path` (redirected to the sign-in page) and sign in through the form."""
    from selenium.webdriver.common.by import By

    driver.get(url + path)
    wait_for(driver, "login-username")
    driver.find_element(By.ID, "login-username").send_keys(name)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


_BUILT: list[Path] = []


def warehouse_copy(folder: Path) -> Path:
    """A copy, in `folder`, of one build_warehouse warehouse built once per test process (the
    access-control tests each need their own server on the same generated data)."""
    import atexit
    import tempfile

    if not _BUILT:
        built = Path(tempfile.mkdtemp(prefix="benzo-warehouse-"))
        atexit.register(shutil.rmtree, built, ignore_errors=True)
        _BUILT.append(build_warehouse(built))
    db = Path(folder) / "warehouse.duckdb"
    shutil.copyfile(_BUILT[0], db)
    return db


# --- the language of a page (tests/test_dashboard_language.py) --------------------------

# Every text node the reader sees and every attribute read out or shown on hover: [kind, tag,
# text]. Identifiers (in <code>/<pre>) are left out; hidden nodes too (a closed menu).
PAGE_TEXTS_JS = r"""
const out = [];
const ATTRS = ['title', 'aria-label', 'placeholder', 'alt', 'data-title', 'aria-description',
               'aria-roledescription', 'aria-valuetext'];
const skip = (el) => el.closest('code, pre, script, style, noscript, #app-locale');
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
let node;
while ((node = walker.nextNode())) {
  const text = node.nodeValue.trim();
  const el = node.parentElement;
  if (!text || !el || skip(el)) continue;
  if (el.checkVisibility && !el.checkVisibility({visibilityProperty: true})) continue;
  out.push(['text', el.tagName, text]);
}
for (const el of document.body.querySelectorAll('*')) {
  if (skip(el)) continue;
  for (const name of ATTRS) {
    const value = el.getAttribute(name);
    if (value && value.trim()) out.push([name, el.tagName, value.trim()]);
  }
}
out.push(['title', 'TITLE', document.title]);
return out;
"""


def page_texts(driver) -> list[tuple[str, str, str]]:
    """(kind, tag, text) of what the page shows or reads out: visible text nodes, and the
    title, aria-label, placeholder, alt and Plotly's data-title attributes of every element."""
    return [tuple(item) for item in driver.execute_script(PAGE_TEXTS_JS)]
