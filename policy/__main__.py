"""Entry point of the policy pack: the only place that calls PolicyPack(...), which serves the engine until killed.

`pulumi preview --policy-pack policy` runs this folder with runpy (policy/ first on sys.path, the project root
not at all), in policy/venv. The rules live in the project's pure package orca_platform, so the root is put on
sys.path here: one copy of the rules, no package to build or publish, and nothing of the project is imported but
the rules and the shared names they read (orca_platform/rules/ and orca_platform/conventions.py, standard library
only; pyproject's import contracts keep it so).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402 - needs the root on sys.path first

from policy.orca_policies import PACK_NAME, all_policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=all_policies(),
    # Each policy sets its own level (mandatory where data or exposure is at stake); this is only the fallback.
    enforcement_level=EnforcementLevel.ADVISORY,
)
