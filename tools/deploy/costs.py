"""Cost flags for `make diff`: each new clinic's monthly cost from the planner, and a pin that keeps it off the
storage class or front door the stack gives new clinics (usually a neighbour's entry copied with its pins).

The cost is the planner's all-in figure for a small clinic in that configuration (orca_platform/plan/cost.py
`clinic_cost`, as `make plan` prints it), pay-as-you-go, on the stack's ORCA pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.config_file import read_stack_file, settings_from_config
from orca_platform.model.errors import InputError
from orca_platform.model.tenants import load_tenants
from orca_platform.plan.capacity import reference_per_node
from orca_platform.plan.cost import clinic_cost, new_clinic_cost
from orca_platform.plan.stack_plan import plan_stack
from tools.offline.engine import PROJECT_DIR


def cost_flags(stack: str, clinics: Iterable[str], tenants: str = "", project: Path = PROJECT_DIR) -> list[str]:
    """One line per new clinic of the working tree's `stack`: its monthly cost and, if pinned, what it costs instead."""
    wanted = set(clinics)
    if not wanted:
        return []
    source = f"Pulumi.{stack}.yaml"
    try:
        settings = settings_from_config(read_stack_file(project / source), source)
        name = tenants or settings.tenants_file
        path = Path(name) if Path(name).is_absolute() else project / name
        catalogue = load_catalogue()
        plan = plan_stack(settings, load_tenants(path, name), catalogue, name, source, enforce_walls=False)
    except (InputError, OSError) as exc:
        return [f"cost not computed: {str(exc).splitlines()[0]}"]
    default = new_clinic_cost(settings, catalogue)
    lines = []
    for c in plan.clinics:
        if c.clinic.id not in wanted:
            continue
        per_node = reference_per_node(settings, catalogue, option=c.storage)
        cost = clinic_cost(settings, catalogue, settings.cluster.orca_pool.vm_size, per_node, c.storage, c.front_door)
        total = cost.total("payg", catalogue)
        shown = "n/a" if total is None else f"{total:.2f}{'~' if cost.estimated else ''}"
        pins = []
        if c.storage.storage_class != default.storage.storage_class:
            pins.append(f"storage {c.storage.label} (new clinics get {default.storage.label})")
        if c.front_door.label != default.front_door.label:
            pins.append(f"front door {c.front_door.label} (new clinics get {default.front_door.label})")
        line = f"clinic {c.clinic.id}: ${shown} a month pay-as-you-go"
        if pins:
            usual = default.total("payg", catalogue)
            line += f"; pinned to {', '.join(pins)}: a new clinic at the stack's defaults costs ${usual or 0:.2f}"
        lines.append(line)
    return lines
