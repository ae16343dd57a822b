"""The parts of `make plan` about walls and money: headroom to every wall, the all-in cost of a small clinic, the
stack's fixed costs and the cheapest cell. tools/reports/plan_docs.py puts them into README.md and docs/scale.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from orca_platform.model.catalogue import Catalogue
from orca_platform.plan.capacity import reference_per_node
from orca_platform.plan.cost import (
    COMPARED_CLINICS,
    ClinicCost,
    cheapest_configuration,
    clinic_cost,
    new_clinic_cost,
    stack_cost,
)
from orca_platform.plan.stack_plan import StackPlan
from orca_platform.plan.walls import Wall

COMMITMENTS = ("payg", "1y", "3y")


def usd(value: float | None, estimated: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" + ("~" if estimated else "")


def wall_lines(walls: Sequence[Wall], new_label: str) -> list[str]:
    lines = [f"walls (headroom in small clinics added as {new_label}):"]
    width = max(len(w.title) for w in walls)
    ordered = sorted(walls, key=lambda w: (w.headroom is None, w.headroom or 0, w.id))
    for w in ordered:
        used = f"{w.used:.0f}" if float(w.used).is_integer() else f"{w.used:.1f}"
        if w.crossed:
            state = "CROSSED" if w.hard else "over (soft: performance, not refused)"
        elif w.headroom is None:
            state = "not reached by new clinics"
        else:
            state = f"{w.headroom} more small clinics before it" + ("" if w.hard else " (soft)")
        flag = "" if w.confirmed else " (limit unconfirmed)"
        lines.append(f"  {w.title.ljust(width)}  {w.scope:<12}  {used:>7} / {w.limit:<6}  {state}{flag}")
    return lines


def cost_lines(cost: ClinicCost, catalogue: Catalogue, title: str) -> list[str]:
    lines = [f"{title}: {cost.vm_size} ({cost.per_node} per node), {cost.storage.label}, {cost.front_door.label}"]
    width = max(len(line.item) for line in cost.lines)
    for line in cost.lines:
        lines.append(f"  {line.item.ljust(width)}  {usd(line.monthly_usd, line.estimated):>8}")
    terms = [name for name in COMMITMENTS if name in catalogue.node_sizes.commitments]
    totals = ", ".join(f"{name} ${usd(cost.total(name, catalogue), cost.estimated)}" for name in terms)
    lines.append(f"  {'all-in per month'.ljust(width)}  {totals}")
    return lines


def existing_costs(plan: StackPlan) -> list[ClinicCost]:
    """What a small clinic costs as this stack's existing small clinics are pinned (other classes or front doors)."""
    s, cat = plan.settings, plan.catalogue
    seen: dict[tuple[str, str], ClinicCost] = {}
    ref = cat.reference_clinic.size
    for c in plan.clinics:
        if c.clinic.size != ref:
            continue
        key = (c.storage.storage_class, c.front_door.label)
        if key in seen:
            continue
        per_node = reference_per_node(s, cat, option=c.storage)
        seen[key] = clinic_cost(s, cat, s.cluster.orca_pool.vm_size, per_node, c.storage, c.front_door)
    return list(seen.values())


def configuration_lines(plan: StackPlan, commitment: str) -> list[str]:
    """The cheapest configuration with this stack's data safety by its whole monthly bill (the fixed costs, the
    spare node and whole nodes, at least one a zone), at this stack's clinic count and at 100, 300 and 1,000."""
    s, cat = plan.settings, plan.catalogue
    lines = [
        "cheapest configuration by the whole bill (fixed costs, spare node, whole nodes; small clinics, "
        f"pay-as-you-go, and with a {commitment} commitment):"
    ]
    for n in sorted({len(plan.clinics), *COMPARED_CLINICS}):
        best = cheapest_configuration(s, cat, n)
        if best is None:
            lines.append(f"  {n:>5} clinics: none reaches the density target")
            continue
        c = best.clinic
        lines.append(
            f"  {n:>5} clinics: {best.nodes} x {c.vm_size} ({c.per_node} per node), {c.storage.label}, "
            f"{c.front_door.label}: ${usd(best.total('payg', cat), best.estimated)} a month, "
            f"${usd(best.per_clinic('payg', cat), best.estimated)} a clinic; "
            f"{commitment} ${usd(best.per_clinic(commitment, cat), best.estimated)} a clinic"
        )
    return lines


def report(plan: StackPlan, commitment: str = "payg") -> list[str]:
    s, cat = plan.settings, plan.catalogue
    new = new_clinic_cost(s, cat)
    label = f"{new.storage.label}, {new.front_door.label}"
    lines = wall_lines(plan.walls, label)
    lines.append("")
    lines += cost_lines(new, cat, "all-in monthly cost of a small clinic added to this stack")
    own = {(new.storage.storage_class, new.front_door.label)}
    for cost in existing_costs(plan):
        if (cost.storage.storage_class, cost.front_door.label) not in own:
            lines.append(
                f"  as this stack's existing small clinics are pinned ({cost.storage.label}, {cost.front_door.label}): "
                f"${usd(cost.total('payg', cat), cost.estimated)} pay-as-you-go"
            )
    fixed = stack_cost(s, cat)
    known = (
        ""
        if fixed.complete
        else " (a lower bound: "
        + ", ".join(line.item for line in fixed.lines if line.monthly_usd is None)
        + " unpriced)"
    )
    n = len(plan.clinics)
    lines.append(
        f"stack fixed costs: ${fixed.total:.2f} a month{known}, ${fixed.total / max(n, 1):.2f} per clinic over the "
        f"{n} clinics today"
    )
    for line in fixed.lines:
        lines.append(f"  {line.item:<46}  {usd(line.monthly_usd, line.estimated):>8}")
    lines += configuration_lines(plan, "3y" if commitment == "payg" else commitment)
    lines.append(
        "'~' = contains an estimate (catalogue.yaml 'confirmed: false'); commitments discount compute only; "
        f"prices as of {cat.as_of}"
    )
    return lines
