"""The README's commands and command-line reference cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from etl.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _fenced_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_two_commands_demo_and_tests():
    demo, tests = _fenced_commands()[:2]
    assert demo.startswith("python3 -m venv .venv") and demo.endswith(
        ".venv/bin/benzo-monitor demo"
    )
    assert tests.startswith("python3 -m venv .venv") and tests.endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command():
    tests = _fenced_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()


def test_every_command_and_option_is_in_the_readme():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        assert f"`benzo-monitor {name}" in README, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert flag in README, f"{name} {flag}"
