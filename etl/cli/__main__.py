"""`python -m etl.cli`: the same command line as `benzo-monitor`."""

import sys

from etl.cli import main

sys.exit(main())
