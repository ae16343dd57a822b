"""The SDK's floor for the program's own payload: every custom resource the program registered, re-registered as a
plain CustomResource with the inputs it was recorded with, flat (no components, parents, dependencies or applies).

Run by bench/run.py under the same mocks; the recorded resources come from a JSON file named in the environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pulumi

recorded = json.loads(Path(os.environ["BENCH_REPLAY_FILE"]).read_text(encoding="utf-8"))
for i, res in enumerate(recorded):
    pulumi.CustomResource(res["type"], f"r{i}-{res['name']}", res["inputs"])
