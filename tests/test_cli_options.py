"""SPEC §10: the global options (--db, --config) are accepted before or after the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.base.warehouse import connect
from etl.cli import build_parser, main
from etl.cli.parser import command_parsers


@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "w.duckdb", "load", "a.csv"],
        ["load", "a.csv", "--db", "w.duckdb"],
        ["load", "--db", "w.duckdb", "a.csv", "b.csv"],
    ],
)
def test_db_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert args.db == Path("w.duckdb")
    assert args.files[0] == Path("a.csv")


def test_after_the_command_wins_and_absent_keeps_the_first():
    parser = build_parser()
    args = parser.parse_args(
        ["--db", "a.duckdb", "report", "--month", "2025-03", "--db", "b.duckdb"]
    )
    assert args.db == Path("b.duckdb")
    args = parser.parse_args(["--db", "a.duckdb", "--config", "c.toml", "cohorts"])
    assert (args.db, args.config) == (Path("a.duckdb"), Path("c.toml"))
    args = parser.parse_args(["compliance", "--config", "c.toml"])
    assert (args.db, args.config) == (None, Path("c.toml"))


def test_sub_commands_take_them_too():
    args = build_parser().parse_args(
        ["users", "add", "ann", "--role", "analyst", "--db", "x.duckdb"]
    )
    assert (args.users_command, args.name, args.db) == ("add", "ann", Path("x.duckdb"))


def test_every_command_takes_both_options():
    for command_parser in command_parsers(build_parser()):
        options = {o for action in command_parser._actions for o in action.option_strings}
        assert {"--db", "--config"} <= options, command_parser.prog


def test_db_after_the_command_end_to_end(tmp_path, capsys):
    """A real warehouse named after the command: the ledger of an empty warehouse."""
    db = tmp_path / "after.duckdb"
    connect(db).close()
    assert main(["loads", "--format", "json", "--db", str(db)]) == 0
    assert capsys.readouterr().out.strip() == "[]"
