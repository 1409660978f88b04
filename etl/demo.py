"""`benzo-monitor demo` and `serve`: synthetic national data -> warehouse -> dashboard."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from etl.warehouse import WarehouseError, connect, default_db_path

DEMO_DIR = Path("data") / "demo"


def serve(db_path: Path, config, host: str, port: int) -> int:
    """Serve the dashboard on host:port until interrupted."""
    from etl.cli import UserError

    try:
        from dashboard.app import create_app
    except ImportError as exc:  # the dashboard is an optional part of an install
        raise UserError(f"the dashboard cannot start: {exc}") from exc
    if not Path(db_path).exists():
        raise UserError(f"no warehouse at {db_path}: run `benzo-monitor demo` or load an export")
    app = create_app(db_path, config=config)
    Console(soft_wrap=True).print(f"Dashboard: [bold]http://{host}:{port}/[/]  (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=False)
    return 0


def run_demo_command(args, config) -> int:
    from etl.cli import UserError
    from etl.generate import generate
    from etl.load import load_paths

    out = Console(soft_wrap=True)
    db_path = Path(args.db) if args.db else default_db_path()
    clock = time.perf_counter()
    out.print("Generating the synthetic national dataset ...")
    result = generate(DEMO_DIR)
    out.print(
        f"  {result.n_programmes:,} programmes, {result.n_lines:,} programme lines in "
        f"{len(result.files)} monthly exports under {DEMO_DIR}/"
    )
    out.print(f"Loading into {db_path} ...")
    try:
        con = connect(db_path, config=config)
    except WarehouseError as exc:
        raise UserError(str(exc)) from exc
    try:
        outcomes = load_paths(con, result.files, config=config)
    finally:
        con.close()
    refused = [o for o in outcomes if o.refused]
    if refused:
        raise UserError("; ".join(o.refused for o in refused))
    new = sum(o.summary.rows_new for o in outcomes)
    rejected = sum(o.summary.rows_rejected for o in outcomes)
    out.print(
        f"  {len(outcomes)} files, {new:,} new lines, {rejected:,} rejected "
        f"(see `benzo-monitor rejects`), {time.perf_counter() - clock:.1f} s so far"
    )
    if args.no_serve:
        return 0
    return serve(db_path, config, "127.0.0.1", args.port)


def run_serve_command(args, config) -> int:
    db_path = Path(args.db) if args.db else default_db_path()
    return serve(db_path, config, args.host, args.port)
