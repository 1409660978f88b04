"""`benzo-monitor unload LOAD_ID`: remove one load (etl/ingest/unload.py)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from etl.base.errors import UserError
from etl.base.warehouse import WarehouseError, connect, default_db_path
from etl.cli.terminal import err
from etl.ingest.unload import UnloadRefused, unload_and_publish

UNLOAD_REFUSED_STATUS = 1  # README, exit statuses: like a refused file, nothing changed


def run_unload(args, config) -> int:
    """`benzo-monitor unload LOAD_ID`: remove the load, say what went; 1 when refused."""
    path = Path(args.db) if args.db else default_db_path()
    if not path.exists():  # (a writable connection would create an empty warehouse)
        raise UserError(f"no warehouse at {escape(str(path))}: nothing to unload")
    try:
        con = connect(path, config=config)
    except WarehouseError as exc:
        raise UserError(escape(str(exc))) from exc
    try:
        summary = unload_and_publish(con, args.load_id, config)
    except UnloadRefused as exc:
        raise UserError(escape(str(exc)), status=UNLOAD_REFUSED_STATUS) from exc
    finally:
        con.close()
    err.print(
        f"unloaded load {summary.load_id} ({escape(summary.file_name)}): "
        f"{summary.billing_lines:,} programme line(s), {summary.bzra_lines:,} BZRA line(s) and "
        f"{summary.rejects:,} rejected row(s) removed. The same file can be loaded again.",
        soft_wrap=True,
    )
    return 0
