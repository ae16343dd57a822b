"""`python -m tools.audit`: see tools/audit/report.py."""

import sys

from tools.audit.report import main

sys.exit(main())
