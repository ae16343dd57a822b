"""`python -m tools.checks`: see tools/checks/run.py."""

import sys

from tools.checks.run import main

sys.exit(main())
