"""`benzo-monitor serve`, `demo` and `users`: the commands that run the dashboard.

The one module of etl/ that imports `dashboard` (the import-linter contracts in
pyproject.toml say so); the dispatcher imports it only for these commands, so the other
commands start without loading Dash and Plotly.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from dashboard import auth
from dashboard.app import create_app
from etl.base import audit
from etl.base.errors import UserError
from etl.base.warehouse import WarehouseError, connect, default_db_path
from etl.cli.terminal import emit
from etl.ingest.load import load_paths
from etl.ingest.reference import load_reference
from etl.synthetic.generate import generate

DEMO_DIR = Path("data") / "demo"


def serve(db_path: Path, config, host: str, port: int) -> int:
    """Serve the dashboard on host:port until interrupted.

    With no users configured (local mode) only 127.0.0.1/localhost is accepted as host: the
    dashboard then has no sign-in, so it must not be reachable from other machines.
    """
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


def run_demo(args, config) -> int:
    """`benzo-monitor demo`: generate national synthetic data, load it, serve the dashboard."""
    out = Console(soft_wrap=True)
    db_path = Path(args.db) if args.db else default_db_path()
    clock = time.perf_counter()
    out.print("Generating the synthetic national dataset ...")
    # SPEC §14: with BZRA histories, so that the demo shows the outcome after the programme.
    result = generate(DEMO_DIR, bzra=True)
    out.print(
        f"  {result.n_programmes:,} programmes, {result.n_lines:,} programme lines in "
        f"{len(result.files)} monthly exports under {DEMO_DIR}/, and a pharmacy-software "
        f"export of {result.bzra.n_lines:,} BZRA lines"
    )
    out.print(f"Loading into {db_path} ...")
    try:
        con = connect(db_path, config=config)
    except WarehouseError as exc:
        raise UserError(str(exc)) from exc
    try:
        load_reference(con, result.bzra.products)  # the product reference first (SPEC §14)
        outcomes = load_paths(con, [*result.files, result.bzra.export], config=config)
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


def run_serve(args, config) -> int:
    """`benzo-monitor serve`: the dashboard on --host:--port."""
    db_path = Path(args.db) if args.db else default_db_path()
    return serve(db_path, config, args.host, args.port)


# --- `benzo-monitor users` -----------------------------------------------------------------


def _read_new_password(args, name: str) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise auth.AuthError("the two passwords differ: nothing changed")
    return auth.check_password(password)


def run_users(args, config) -> int:
    """`benzo-monitor users add|list|remove|passwd`: the dashboard's users file."""
    db = Path(args.db) if args.db else default_db_path()
    path = auth.users_path(db)
    try:
        if args.users_command == "list":
            users = auth.read_users(path)
            rows = [
                {"name": u.name, "role": u.role}
                for u in sorted(users.values(), key=lambda u: u.name)
            ]
            if args.format == "json":
                print(json.dumps(rows, indent=2))
            else:
                emit(rows, "table", "Users", ["name", "role"])
                print(f"users file: {path}")
                if not rows:
                    print("no users: the dashboard runs in local mode (this machine only)")
            return 0
        name = auth.check_name(args.name)
        if args.users_command == "add":
            if name in auth.read_users(path):
                raise auth.AuthError(f"user {name} exists (benzo-monitor users passwd {name})")
            user = auth.User(name, args.role, auth.hash_password(_read_new_password(args, name)))

            def add(users):
                if name in users:
                    raise auth.AuthError(f"user {name} exists (benzo-monitor users passwd {name})")
                users[name] = user

            auth.change_users(path, add)
            audit.record(db, "user_added", name=name, role=args.role)
            print(f"user {name} ({args.role}) added to {path}")
        elif args.users_command == "remove":

            def remove(users):
                if name not in users:
                    raise auth.AuthError(f"no user {name} in {path}")
                del users[name]

            left = auth.change_users(path, remove)
            audit.record(db, "user_removed", name=name)
            print(f"user {name} removed from {path}")
            if not left:
                print("no users left: nobody can sign in to a dashboard that started with users")
        elif args.users_command == "passwd":
            if name not in auth.read_users(path):
                raise auth.AuthError(f"no user {name} in {path}")
            new_hash = auth.hash_password(_read_new_password(args, name))

            def passwd(users):
                if name not in users:
                    raise auth.AuthError(f"no user {name} in {path}")
                users[name] = auth.User(name, users[name].role, new_hash)

            auth.change_users(path, passwd)
            audit.record(db, "password_changed", name=name)
            print(f"password of {name} changed (its open sessions end)")
    except auth.AuthError as exc:
        raise UserError(str(exc)) from exc
    return 0
