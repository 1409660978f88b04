"""The `benzo-monitor` command line (SPEC §10).

`main` parses the arguments (etl/cli/parser.py) and runs the command's function from the
module of its group: load.py (load, loads, rejects), figures.py (report, cohorts, compliance,
reports, publish), synthetic.py (generate), audit.py (audit) and serve.py (serve, demo, users:
the only module that imports the dashboard). Errors a user can act on (etl.base.errors.UserError,
a bad configuration) become one plain message and an exit status, never a traceback.
"""

from __future__ import annotations

from etl.base.config import ConfigError, load_config
from etl.base.errors import UserError
from etl.cli import audit, figures, synthetic
from etl.cli import load as ingest
from etl.cli.parser import build_parser
from etl.cli.terminal import err

__all__ = ["build_parser", "main"]


def _serve_group(function: str):
    """A command of etl/cli/serve.py, imported when it runs: the dashboard's packages (Dash,
    Plotly) load only for serve, demo and users."""

    def run(args, config) -> int:
        try:
            from etl.cli import serve
        except ImportError as exc:  # an install without the dashboard's packages
            raise UserError(f"{args.command} needs the dashboard's packages: {exc}") from exc
        return getattr(serve, function)(args, config)

    return run


COMMANDS = {
    "load": ingest.run_load,
    "loads": ingest.run_loads,
    "rejects": ingest.run_rejects,
    "generate": synthetic.run_generate,
    "report": figures.run_report,
    "cohorts": figures.run_export,
    "compliance": figures.run_export,
    "reports": figures.run_reports,
    "publish": figures.run_publish,
    "audit": audit.run_audit,
    "demo": _serve_group("run_demo"),
    "serve": _serve_group("run_serve"),
    "users": _serve_group("run_users"),
}


def main(argv: list[str] | None = None) -> int:
    """Run `benzo-monitor` with `argv` (default: the process's); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        return COMMANDS[args.command](args, config) or 0
    except (UserError, ConfigError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        return getattr(exc, "status", 2)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was changed by the unfinished file")
        return 130
