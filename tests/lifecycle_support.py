"""A stack over time (issue 16): the real program run again and again, each run fed the previous run's stack outputs.

The StackReference mock answers with what the previous run really exported (tools.offline.engine.StackOutputs.of), never
with a hand-written dict. A refused run leaves the stack's outputs as they were, as the engine does when the program
fails (pkg/resource/deploy/step_executor.go keeps the old stack outputs on an errored update).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from orca_test_support import Attempt, address_plan, attempt, load_settings, program_config, site_clinic, write_yaml

from tools.offline.engine import Registered, Run, StackOutputs

STACK_REFERENCE = "pulumi:pulumi:StackReference"
HISTORY = "orcaHistory"
SNAPSHOT_OF_FIRST_VOLUME = "orca-state-20261124183000"


def base_tenants(stack: str = "dev") -> dict[str, Any]:
    """Two clinics: one with two restores behind it (three volume generations), one plain, and a retired id."""
    addr = address_plan(load_settings(stack))
    return {
        "clinics": [
            site_clinic(
                addr,
                0,
                "alpha-naika",
                "32Gi",
                restores=[
                    {"id": "r1", "fromSnapshot": SNAPSHOT_OF_FIRST_VOLUME},
                    {"id": "r2", "fromDump": "daily/alpha-naika/20261125T163000Z.dump"},
                ],
            ),
            site_clinic(addr, 1, "beta-geka", "120Gi"),
        ],
        "retiredClinicIds": ["gamma-old"],
    }


def clinic(doc: dict[str, Any], cid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in doc["clinics"] if c["id"] == cid)
    return found


def section(stack: str, key: str) -> dict[str, Any]:
    """A whole `orca-platform:<key>` section of the stack file, as data to change one field of."""
    from orca_test_support import raw_settings

    value: dict[str, Any] = copy.deepcopy(raw_settings(stack)[key])
    return value


@dataclass
class Lifecycle:
    """One stack's successive deployments. `previous` is what the last successful run exported."""

    tmp: Path
    stack: str = "dev"
    previous: StackOutputs | None = None
    runs: list[Run] = field(default_factory=list)
    count: int = 0

    def deploy(self, tenants: dict[str, Any], **sections: Any) -> Attempt:
        self.count += 1
        path = write_yaml(self.tmp / f"tenants-{self.count}.yaml", tenants)
        config = program_config(self.stack, path, **sections)
        result = attempt(self.stack, config, previous_outputs=self.previous)
        if result.error is None:
            assert result.run is not None
            self.previous = StackOutputs.of(result.run)
            self.runs.append(result.run)
        return result

    def tenants_source(self) -> str:
        return str(self.tmp / f"tenants-{self.count}.yaml")


def refusal(result: Attempt) -> str:
    """The RunError's message, after checking that nothing but the StackReference was registered before it."""
    assert result.error is not None, "the run was expected to be refused"
    assert isinstance(result.error, pulumi.RunError), f"expected a RunError, got {result.error!r}"
    types = [r.type for r in result.registered]
    # At most the StackReference that reads the history: input checks (prod floors) may refuse even before it.
    assert types in ([STACK_REFERENCE], []), f"registered before the refusal: {[r.urn for r in result.registered]}"
    return str(result.error)


def passed(result: Attempt) -> Run:
    assert result.error is None, f"the run was expected to pass: {result.error}"
    assert result.run is not None
    return result.run


def history(run: Run) -> dict[str, Any]:
    doc: dict[str, Any] = run.outputs[HISTORY]
    return doc


def urns(run: Run, clinic_id: str | None = None) -> set[str]:
    """Every URN the run registered (of one clinic's OrcaTenant and its children, when given)."""
    found = {r.urn for r in run.resources if r.type != STACK_REFERENCE}
    if clinic_id is None:
        return found
    return {u for u in found if u.rsplit("::", 1)[-1].startswith(f"{clinic_id}-") or u.endswith(f"::{clinic_id}")}


def protected(run: Run) -> list[Registered]:
    return [r for r in run.resources if r.protect]
