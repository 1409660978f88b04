"""`benzo-monitor demo` and `serve`: synthetic national data -> warehouse -> dashboard."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from etl.warehouse import WarehouseError, connect, default_db_path

DEMO_DIR = Path("data") / "demo"


def serve(db_path: Path, config, host: str, port: int) -> int:
    """Serve the dashboard on host:port until interrupted.

    With no users configured (local mode) only 127.0.0.1/localhost is accepted as host: the
    dashboard then has no sign-in, so it must not be reachable from other machines.
    """
    from etl.cli import UserError

    try:
        from dashboard import auth
        from dashboard.app import create_app
    except ImportError as exc:  # the dashboard is an optional part of an install
        raise UserError(f"the dashboard cannot start: {exc}") from exc
    if not Path(db_path).exists():
        raise UserError(f"no warehouse at {db_path}: run `benzo-monitor demo` or load an export")
    out = Console(soft_wrap=True, highlight=False)
    try:
        security = auth.configure(db_path)
        if not security.users_at_start and host not in auth.LOOPBACK_HOSTS:
            raise UserError(
                f"--host {host} refused: no users are configured ({security.users_file}), so "
                "the dashboard has no sign-in and serves this machine only (127.0.0.1). To "
                "serve other machines, add users first: benzo-monitor users add NAME --role "
                "analyst|reviewer (README, Access control)."
            )
        app = create_app(db_path, config=config)
    except auth.AuthError as exc:
        raise UserError(str(exc)) from exc
    if not security.users_at_start:
        out.print(f"local mode: no users configured, listening on {host} only")
    else:
        users = security.users() or {}
        roles = [u.role for u in users.values()]
        out.print(
            f"access control: {len(users)} user(s) ({roles.count('analyst')} analyst, "
            f"{roles.count('reviewer')} reviewer) from {security.users_file}; "
            f"{security.mode} mode"
        )
        if not security.secret_configured:
            out.print(
                "  random secret key for this process: sessions end when it stops "
                f"(set {auth.SECRET_ENV} to keep them)"
            )
        if host not in auth.LOOPBACK_HOSTS:
            out.print("  plain HTTP here: serve other machines through a TLS reverse proxy")
    out.print(f"Dashboard: [bold]http://{host}:{port}/[/]  (Ctrl+C to stop)")
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
