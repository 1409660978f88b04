"""`benzo-monitor audit`: the audit trail."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from etl.base.audit import AUDIT_COLUMNS, AuditError, audit_path, describe, read_events
from etl.base.errors import UserError
from etl.base.warehouse import default_db_path
from etl.cli.terminal import emit


def run_audit(args, config) -> int:
    """`benzo-monitor audit`: the audit trail, latest events last."""
    db = Path(args.db) if args.db else default_db_path()
    limit = args.limit if args.limit is not None else (50 if args.format == "table" else None)
    if limit is not None and limit < 0:
        raise UserError("--limit must be 0 or more")
    try:
        events, bad = read_events(db, limit)
    except AuditError as exc:
        raise UserError(str(exc)) from exc
    if args.format == "json":
        print(json.dumps(events, ensure_ascii=False, indent=2))
    else:
        rows = [
            {"time": e.get("time"), "event": e.get("event"), "user": e.get("user"),
             "details": describe(e)}
            for e in events
        ]  # fmt: skip
        title = f"Audit trail {audit_path(db)} (latest {len(rows)})"
        emit(rows, args.format, title, AUDIT_COLUMNS)
    if bad:
        print(f"{bad} unreadable line(s) skipped in {audit_path(db)}", file=sys.stderr)
    return 0
