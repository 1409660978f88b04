"""The `benzo-monitor` command line (SPEC §10).

`main` parses the arguments (etl/cli/parser.py) and runs the command's function from the
module of its group: load.py (load, loads, rejects), figures.py (report, cohorts, compliance,
reports, publish), synthetic.py (generate), audit.py (audit), actuarial.py (nowcast, budget),
reference.py (reference load|list), unload.py (unload) and serve.py (serve, demo, users:
the only module that imports the dashboard). Errors a user can act on (etl.base.errors.UserError,
a bad configuration) become one plain message and an exit status, never a traceback.
"""

from __future__ import annotations

import importlib

from etl.base.config import ConfigError, load_config
from etl.base.errors import UserError
from etl.cli.parser import build_parser
from etl.cli.terminal import err

__all__ = ["build_parser", "main"]

# command -> (module of etl.cli, function). Each command imports only its own group when it
# runs, so `load` does not pay for Polars (the generator) or Dash and Plotly (the dashboard):
# about 0.25 s of start-up a command, which the tests and scripts pay many times.
COMMANDS = {
    "load": ("load", "run_load"),
    "loads": ("load", "run_loads"),
    "rejects": ("load", "run_rejects"),
    "generate": ("synthetic", "run_generate"),
    "report": ("figures", "run_report"),
    "cohorts": ("figures", "run_export"),
    "compliance": ("figures", "run_export"),
    "reports": ("figures", "run_reports"),
    "outcomes": ("figures", "run_outcomes"),
    "funnel": ("figures", "run_outcomes"),
    "publish": ("figures", "run_publish"),
    "audit": ("audit", "run_audit"),
    "nowcast": ("actuarial", "run_nowcast"),
    "budget": ("actuarial", "run_budget"),
    "demo": ("serve", "run_demo"),
    "serve": ("serve", "run_serve"),
    "users": ("serve", "run_users"),
    "reference": ("reference", "run_reference"),  # SPEC §14
    "unload": ("unload", "run_unload"),  # issue 18: remove one load
}


def command(name: str):
    """The function that runs command `name` (its group's module imported now)."""
    module_name, function = COMMANDS[name]
    try:
        module = importlib.import_module(f"etl.cli.{module_name}")
    except ImportError as exc:  # e.g. an install without the dashboard's packages
        raise UserError(f"{name} cannot run here: {exc}") from exc
    return getattr(module, function)


def main(argv: list[str] | None = None) -> int:
    """Run `benzo-monitor` with `argv` (default: the process's); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        return command(args.command)(args, config) or 0
    except (UserError, ConfigError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        return getattr(exc, "status", 2)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was changed by the unfinished file")
        return 130
