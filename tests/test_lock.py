"""The lock files agree with pyproject.toml, the README installs from them, and `--version`
names the engines (README "Dependencies").

requirements-test.lock pins every package the tests need (pyproject's dependencies and its
`test` extra); requirements.lock pins the same versions for the product alone (the demo and
production). Both are written by the README's refresh command (`uv pip compile ... -o FILE`),
which records itself in each file's header.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from etl.cli.parser import ENGINES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
FROM_PYPROJECT = "benzo-monitor (pyproject.toml)"


@dataclass
class Pin:
    """One `name==version [; marker]` entry of a lock, with its hashes and `# via` parents."""

    name: str
    version: str
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> list[Pin]:
    """The entries of a `uv pip compile --generate-hashes` file (uv's own layout)."""
    pins: list[Pin] = []
    in_via = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: ; (.+?))?(?: \\)?", line)
            assert match, f"{path.name}: not a pinned requirement: {line!r}"
            pins.append(Pin(canonicalize_name(match[1]), match[2], match[3]))
            in_via = False
            continue
        text = line.strip().removesuffix("\\").strip()
        if text.startswith("--hash="):
            pins[-1].hashes.append(text.removeprefix("--hash="))
        elif text == "# via":
            in_via = True
        elif text.startswith("# via "):
            pins[-1].via.append(text.removeprefix("# via "))
        elif in_via and text.startswith("#   "):
            pins[-1].via.append(text.removeprefix("#   "))
        else:
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
    return pins


def direct_requirements(with_test: bool) -> list[Requirement]:
    """pyproject.toml's dependencies (and its `test` extra when `with_test`)."""
    project = PYPROJECT["project"]
    texts = list(project["dependencies"])
    if with_test:
        texts += project["optional-dependencies"]["test"]
    return [Requirement(text) for text in texts]


LOCKS = [
    pytest.param(RUNTIME_LOCK, False, id="requirements.lock"),
    pytest.param(TEST_LOCK, True, id="requirements-test.lock"),
]


@pytest.mark.parametrize(("lock", "with_test"), LOCKS)
def test_every_entry_is_pinned_with_hashes(lock, with_test):
    pins = read_lock(lock)
    assert pins, lock.name
    for pin in pins:
        assert pin.hashes, f"{lock.name}: {pin.name} has no hash"
        for digest in pin.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (pin.name, digest)
        assert pin.via, f"{lock.name}: {pin.name} says nothing of why it is there"


@pytest.mark.parametrize(("lock", "with_test"), LOCKS)
def test_every_direct_dependency_is_pinned_within_its_range(lock, with_test):
    """Each dependency of pyproject.toml is in the lock, and every pin of it (one per marker
    branch, e.g. numpy for Python 3.11 and for 3.12+) lies inside the range pyproject declares."""
    pins = read_lock(lock)
    for requirement in direct_requirements(with_test):
        versions = [p.version for p in pins if p.name == canonicalize_name(requirement.name)]
        assert versions, f"{requirement} is not in {lock.name}: run the refresh command"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {requirement.name}=={version}, outside {requirement}: "
                "run the refresh command (README, Dependencies)"
            )


@pytest.mark.parametrize(("lock", "with_test"), LOCKS)
def test_the_lock_names_nothing_pyproject_does_not_need(lock, with_test):
    """The entries the lock says come straight from pyproject.toml are exactly its direct
    dependencies (a dependency removed from pyproject.toml but still locked fails here), and
    every other entry is needed by an entry of the lock."""
    pins = read_lock(lock)
    names = {p.name for p in pins}
    direct = {canonicalize_name(r.name) for r in direct_requirements(with_test)}
    from_pyproject = {p.name for p in pins if FROM_PYPROJECT in p.via}
    assert from_pyproject == direct, (from_pyproject ^ direct, "run the refresh command")
    for pin in pins:
        # requirements.lock's entries also say "-c requirements-test.lock" (the constraint).
        parents = {
            canonicalize_name(v) for v in pin.via if v != FROM_PYPROJECT and not v.startswith("-c ")
        }
        assert parents <= names, f"{lock.name}: {pin.name} via {parents - names}, not locked"


def test_the_product_lock_pins_the_versions_the_tests_ran_on():
    """requirements.lock is requirements-test.lock less the test tools: same versions, same
    hashes, and none of the test extra's own packages (pytest, ruff, selenium, ...)."""
    tested = {(p.name, p.marker): p for p in read_lock(TEST_LOCK)}
    product = read_lock(RUNTIME_LOCK)
    for pin in product:
        twin = tested.get((pin.name, pin.marker))
        assert twin is not None, f"{pin.name} ({pin.marker}) is not in requirements-test.lock"
        assert (pin.version, sorted(pin.hashes)) == (twin.version, sorted(twin.hashes)), pin.name
    product_names = {p.name for p in product}
    for name in ("pytest", "ruff", "selenium", "hypothesis", "import-linter"):
        assert name not in product_names, name


def test_the_locked_setuptools_builds_the_package():
    """The README installs the package with --no-build-isolation, so the editable install is
    built by the locked setuptools (dash needs it at run time): it must satisfy
    [build-system] requires. If a refresh drops setuptools, add it back to the locks."""
    requires = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    for lock in (RUNTIME_LOCK, TEST_LOCK):
        locked = {p.name: p.version for p in read_lock(lock)}
        for requirement in requires:
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{name} (build-system) is not in {lock.name}"
            assert requirement.specifier.contains(locked[name]), (lock.name, name)


def test_engines_have_an_upper_bound_below_their_next_major():
    """duckdb, polars, pyarrow, numpy, dash and plotly change APIs with their majors: each has
    `<N` in pyproject.toml with N at most the next major after the locked version (e.g.
    duckdb 2.0.1 locked -> `<3`)."""
    requirements = {canonicalize_name(r.name): r for r in direct_requirements(False)}
    locked = {p.name: Version(p.version) for p in read_lock(RUNTIME_LOCK)}
    for engine in ENGINES:
        uppers = [s for s in requirements[engine].specifier if s.operator == "<"]
        assert uppers, f"{engine} has no upper bound in pyproject.toml"
        bound = Version(uppers[0].version)
        assert locked[engine] < bound <= Version(f"{locked[engine].major + 1}"), (engine, bound)


def _fenced(body_start: str) -> str:
    commands = [c for c in re.findall(r"```sh\n(.+?)\n```", README, re.S) if body_start in c]
    assert len(commands) == 1, body_start
    return commands[0]


def test_the_readme_commands_install_from_the_locks():
    demo, tests = re.findall(r"```sh\n(.+?)\n```", README)[:2]
    install = "--no-deps --no-build-isolation -e ."
    assert "--require-hashes -r requirements.lock &&" in demo and install in demo
    assert "--require-hashes -r requirements-test.lock &&" in tests and install in tests
    for command in (demo, tests):
        assert "\n" not in command
        assert "'.[test]'" not in command  # nothing installed outside the lock


def test_the_locks_were_written_by_the_readme_refresh_command():
    """Each lock's header records the command that wrote it: it must be the README's, so the
    documented refresh is the one that made the committed files."""
    refresh = _fenced("uv pip compile")
    for lock in (RUNTIME_LOCK, TEST_LOCK):
        header = lock.read_text(encoding="utf-8").splitlines()[1]
        command = header.removeprefix("#").strip()
        assert command.startswith("uv pip compile") and f".venv/bin/{command}" in refresh, (
            lock.name,
            command,
        )


def test_version_names_python_and_each_engine():
    """`benzo-monitor --version` prints one line per engine, with the version the engine itself
    reports (its module's __version__, not the metadata the command reads), and imports neither
    Dash nor Plotly to do so."""
    import dash
    import duckdb
    import numpy
    import plotly
    import polars
    import pyarrow

    expected = {
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
        "dash": dash.__version__,
        "plotly": plotly.__version__,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "etl.cli", "--version"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "benzo-monitor 0.1.0"
    assert dict(line.split(" ", 1) for line in lines[1:]) == expected
    probe = (
        "import sys\nfrom etl.cli import main\ntry:\n    main(['--version'])\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print(sorted({'dash', 'plotly', 'polars'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
