"""The WSGI entry point for production serving (gunicorn), configured by environment variables.

    BENZO_MONITOR_DB=/srv/benzo/benzo_monitor.duckdb \\
    gunicorn --workers 2 --preload --bind 127.0.0.1:8050 dashboard.wsgi:server

`BENZO_MONITOR_DB` names the warehouse (default data/benzo_monitor.duckdb) and
`BENZO_MONITOR_CONFIG` an optional configuration file. Workers only read published snapshots
(etl/publish.py), so any number of them can serve while `benzo-monitor load` writes.
"""

from __future__ import annotations

from dashboard.app import create_app
from etl.config import load_config
from etl.warehouse import default_db_path

app = create_app(default_db_path(), load_config())
server = app.server
