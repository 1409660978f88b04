"""The WSGI entry point for production serving (gunicorn), configured by environment variables.

    BENZO_MONITOR_DB=/srv/benzo/benzo_monitor.duckdb \\
    BENZO_MONITOR_SECRET_KEY=... \\
    gunicorn --workers 2 --preload --bind 127.0.0.1:8050 dashboard.wsgi:server

`BENZO_MONITOR_DB` names the warehouse (default data/benzo_monitor.duckdb) and
`BENZO_MONITOR_CONFIG` an optional configuration file. Workers only read published snapshots
(etl/base/publish.py), so any number of them can serve while `benzo-monitor load` writes.

This entry point runs in production mode unless `BENZO_MONITOR_ENV=development`: it refuses to
start without `BENZO_MONITOR_SECRET_KEY` (every worker must sign sessions with the same key)
and sets the Secure flag on cookies (TLS ends at the reverse proxy). See README, "Access
control", and dashboard/auth/settings.py.
"""

from __future__ import annotations

import os
import sys

from dashboard.app import create_app
from dashboard.auth import MODE_ENV, AuthError
from etl.base.config import ConfigError, load_config
from etl.base.warehouse import default_db_path

try:
    app = create_app(
        default_db_path(), load_config(), mode=os.environ.get(MODE_ENV) or "production"
    )
except (AuthError, ConfigError) as exc:
    # A plain message, not a traceback. Exit status 4 is gunicorn's "application failed to
    # load": without --preload its master stops too instead of restarting workers forever.
    print(f"benzo-monitor: cannot start the dashboard: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
server = app.server
