"""The argument parser of `benzo-monitor` (SPEC §10): every command and option, in one place."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from importlib import metadata
from pathlib import Path

from etl import __version__

# The monthly report pack's formats (etl/outputs/pack.py); json and csv are the state of play alone.
PACK_FORMATS = ("xlsx", "html", "pdf")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _month(text: str) -> str:
    try:
        dt.datetime.strptime(text, "%Y-%m")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}") from exc
    return text


AS_OF_LATEST = "compute as of this date (default: latest delivery date loaded)"
AS_OF_KNOWN = "the lines known on this date (default: end of the latest billing month loaded)"
NO_SUPPRESS = "exact figures: no disclosure control (SPEC §9)"


def add_document_options(
    parser: argparse.ArgumentParser, as_of_help: str, suppress_help: str | None = NO_SUPPRESS
) -> None:
    """--as-of, --format json|csv, --output and (unless `suppress_help` is None) --no-suppress:
    the options of a command that prints one document of SPEC §10."""
    parser.add_argument("--as-of", type=_date, default=None, dest="as_of", help=as_of_help)
    parser.add_argument("--format", default="json", choices=("json", "csv"))
    parser.add_argument("--output", type=Path, default=None, help="write here instead of stdout")
    if suppress_help is not None:
        parser.add_argument("--no-suppress", action="store_true", help=suppress_help)


def add_global_options(parser: argparse.ArgumentParser, default) -> None:
    """--db and --config, on the main parser (default None) or on a command's (SUPPRESS)."""
    parser.add_argument(
        "--db",
        type=Path,
        default=default,
        help="the DuckDB warehouse (default: $BENZO_MONITOR_DB or data/benzo_monitor.duckdb)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="a TOML file overriding etl/base/config.toml (default: $BENZO_MONITOR_CONFIG)",
    )


def command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's parser below `parser`, sub-commands (users add, ...) included."""
    found = []
    for action in parser._actions:  # argparse keeps its sub-parsers only there
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += [child, *command_parsers(child)]
    return found


# --version: the engines whose versions a bug report needs (their majors change APIs; the ranges
# in pyproject.toml and the pins in requirements*.lock). Read from the installed distributions'
# metadata, so no engine is imported: --version stays as fast as the other commands' start.
ENGINES = ("duckdb", "polars", "pyarrow", "numpy", "dash", "plotly")


def version_text() -> str:
    """`benzo-monitor X`, then one `name version` line for Python and each engine of ENGINES."""
    lines = [f"benzo-monitor {__version__}", f"python {platform.python_version()}"]
    for name in ENGINES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """`--version`: print version_text() and exit 0 (computed only when asked for)."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(version_text() + "\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The parser of `benzo-monitor` and every command (SPEC §10)."""
    parser = argparse.ArgumentParser(
        prog="benzo-monitor",
        description="Monitor of the benzodiazepine / Z-drug withdrawal programme "
        "(Royal Decree of 2 July 2025).",
    )
    parser.add_argument(
        "--version",
        action=VersionAction,
        help="show the versions of benzo-monitor, Python and its engines, and exit",
    )
    add_global_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("load", help="load billing exports (CSV, CSV.gz, Parquet, XLSX)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--mapping", type=Path, help="TOML/JSON file: export header -> canonical column")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("loads", help="list the load ledger")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    # --- issue 18: remove one load ---------------------------------------------------------
    p = sub.add_parser(
        "unload", help="remove one load (its lines, rejects and ledger row), in one transaction"
    )
    p.add_argument(
        "load_id", type=int, metavar="LOAD_ID", help="the load's id (benzo-monitor loads)"
    )
    # --- end of issue 18 block ---------------------------------------------------------------

    p = sub.add_parser("rejects", help="list rejected rows with their reasons")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--load", type=int, dest="load_id", help="only this load id")
    p.add_argument("--limit", type=int, default=50, help="rows to show in the table (default 50)")

    p = sub.add_parser("generate", help="write a seeded synthetic national dataset")
    p.add_argument("--output", type=Path, default=Path("data") / "synthetic")
    p.add_argument("--seed", type=int, default=20250702)
    p.add_argument("--start", type=_date, default=dt.date(2023, 2, 1))
    p.add_argument(
        "--end", type=_date, default=None, help="last delivery date (default: end of last month)"
    )
    p.add_argument(
        "--weekly-starts", type=float, default=110.0, help="new programmes a week (default 110)"
    )
    p.add_argument(
        "--format", dest="file_format", default="csv", choices=("csv", "csv.gz", "parquet", "xlsx")
    )
    p.add_argument(
        "--style",
        default="fr",
        choices=("fr", "nl", "iso"),
        help="headers, dates, decimals and encoding of a French, Dutch or ISO export",
    )
    p.add_argument(
        "--other-lines",
        type=int,
        default=0,
        help="add N lines of other medicines, as in a full billing export",
    )
    p.add_argument(
        "--split",
        default="month",
        choices=("month", "single"),
        help="one file per billing month (default) or a single file",
    )
    p.add_argument(  # SPEC §14
        "--bzra",
        action="store_true",
        help="also write BZRA histories: a pharmacy-software export with an ATC column and the "
        "product reference (products.csv, to load first with `reference load`)",
    )

    for name, helptext in (
        ("report", "the monthly state of play (SPEC §6)"),
        ("cohorts", "cohort outcomes (SPEC §7)"),
        ("compliance", "compliance findings R01-R18 (SPEC §8, §14; R16-R18 need BZRA deliveries)"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "report":
            p.add_argument("--month", type=_month, default=None, help="the month, YYYY-MM")
        p.add_argument(
            "--as-of",
            type=_date,
            default=None,
            dest="as_of",
            help="compute as of this date (default: latest delivery date loaded)",
        )
        if name in ("report", "cohorts"):  # SPEC §15: the figures as known on a date
            p.add_argument(
                "--vintage",
                type=_date,
                default=None,
                help="only the lines known on this date (billed in a month ended by then; "
                "default: every line loaded)",
            )
        formats = ("json", "csv", *PACK_FORMATS) if name == "report" else ("json", "csv")
        p.add_argument("--format", default="json", choices=formats)
        p.add_argument("--output", type=Path, default=None, help="write here instead of stdout")
        p.add_argument(
            "--no-suppress",
            action="store_true",
            help="exact figures: no disclosure control (SPEC §9)",
        )
        if name == "report":
            p.add_argument(
                "--lang",
                default="fr",
                choices=("fr", "nl", "en"),
                help="language of the xlsx/html/pdf pack (default fr)",
            )
            p.add_argument(
                "--reproduce",
                type=int,
                default=None,
                metavar="ID",
                help="write archived pack ID again (benzo-monitor reports) and check its data",
            )

    # --- evaluation statistics (SPEC §16): outcomes over time, funnel plots ---------------
    p = sub.add_parser(
        "outcomes",
        help="cumulative incidence of completion and stop by days since start (SPEC §16)",
    )
    add_document_options(p, AS_OF_LATEST)
    p = sub.add_parser("funnel", help="funnel plot: units against the national value (SPEC §16)")
    p.add_argument("--measure", required=True, choices=("completion", "early_delivery"))
    p.add_argument("--by", required=True, choices=("pharmacy", "province", "region"))
    add_document_options(
        p, AS_OF_LATEST, "every unit and exact figures: no disclosure control (SPEC §9)"
    )

    # --- the actuarial review (SPEC §15) ---
    p = sub.add_parser("nowcast", help="provisional months: nowcast, intervals, backtest (§15)")
    add_document_options(p, AS_OF_KNOWN)
    p = sub.add_parser("budget", help="the year's fees against the annual budget (SPEC §15)")
    p.add_argument("--year", type=int, default=None, help="the year (default: the as-of year)")
    add_document_options(p, AS_OF_KNOWN, suppress_help=None)
    # --- end of the actuarial review ---

    p = sub.add_parser("reports", help="list the report packs issued (the report archive)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = sub.add_parser(
        "demo", help="generate national synthetic data, load it, serve the dashboard"
    )
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--no-serve", action="store_true", help="stop after loading")

    p = sub.add_parser("serve", help="serve the dashboard on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)

    sub.add_parser(
        "publish",
        help="compute the marts once for readers (the dashboard, fast reports); later loads "
        "keep them up to date",
    )

    p = sub.add_parser("users", help="the dashboard's users (access control)")
    users = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    u = users.add_parser("add", help="add a user (password asked, or --password-stdin)")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=("analyst", "reviewer"))
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    u = users.add_parser("list", help="list the users and their roles")
    u.add_argument("--format", choices=("table", "json"), default="table")
    u = users.add_parser("remove", help="remove a user")
    u.add_argument("name")
    u = users.add_parser("passwd", help="change a user's password")
    u.add_argument("name")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    # --- SPEC v2 §14: the product reference (cnk -> ATC) for BZRA lines -------------------
    p = sub.add_parser("reference", help="the product reference (CNK -> ATC) for BZRA lines")
    ref = p.add_subparsers(dest="reference_command", required=True, metavar="ACTION")
    r = ref.add_parser("load", help="load a product table (CSV, CSV.gz, Parquet, XLSX)")
    r.add_argument("file", type=Path, metavar="FILE")
    r = ref.add_parser("list", help="the decree's 19 molecules and the BZRA products loaded")
    r.add_argument("--format", choices=("table", "json"), default="table")
    # --- end of SPEC §14 block --------------------------------------------------------------

    p = sub.add_parser("audit", help="the audit trail: loads, reports, sign-ins, downloads")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument(
        "--limit", type=int, default=None, help="the latest N events (default 50 in the table)"
    )
    for command_parser in command_parsers(parser):
        # SPEC §10: the global options are accepted after the command's name too; there they
        # only replace the value given before it when they are present.
        add_global_options(command_parser, default=argparse.SUPPRESS)
    return parser
