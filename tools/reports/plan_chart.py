"""The plan as a picture: the ORCA pool's nodes filled with the stack's clinics, the binding limit and the headroom.

`make plan` writes it (build/plan/<stack>.svg) beside the table; `make pictures` refreshes docs/plan-prod.svg, which
the README shows. Drawn by tools/reports/svg.py from orca_platform/plan/placement.py: the same packing as the capacity
plan.
"""

from __future__ import annotations

from pathlib import Path

from orca_platform.model.catalogue import Catalogue
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import TenantsFile
from orca_platform.plan.capacity import CapacityPlan
from orca_platform.plan.placement import Node, Placement, place
from tools.reports.svg import Svg, text_width

WIDTH = 960
LEFT = 150  # labels
BAR_X = 160
BAR_W = 600
BAR_H = 20
ROW = 28
SIZE_COLOURS = {"small": "#7fb3d5", "medium": "#5d8fc2", "large": "#34609a"}
SUSPENDED = "#d5dde6"
BINDING = "#c0392b"
RESOURCES = ("cpu", "memory", "pods", "data disks")


def _bars(p: Placement) -> list[tuple[str, float, str]]:
    """(resource, capacity per node, unit) for the resources that can bind on this row."""
    bars = [("cpu", p.cpu_m, "m"), ("memory", p.memory_mib, "MiB"), ("pods", float(p.pods), "")]
    if p.disks is not None:
        bars.append(("data disks", float(p.disks), ""))
    return bars


def _demand(resource: str, cpu: float, memory: float, disk: bool) -> float:
    return {"cpu": cpu, "memory": memory, "pods": 1.0, "data disks": 1.0 if disk else 0.0}[resource]


def _amount(value: float, unit: str) -> str:
    if unit == "m":
        return f"{value / 1000:.1f} cores"
    if unit == "MiB":
        return f"{value / 1024:.1f} GiB"
    return f"{value:g}"


def _node(svg: Svg, y: float, index: int, node: Node, p: Placement) -> float:
    row = p.row
    svg.text(20, y + 14, f"node {index}", size=13, weight="bold")
    svg.text(20, y + 30, f"{len(node.clinics)} clinic{'s' if len(node.clinics) != 1 else ''}", size=11, fill="#555")
    used = node.used()
    hidden: list[str] = []
    for i, (resource, capacity, unit) in enumerate(_bars(p)):
        by = y + i * ROW
        binds = resource == row.binding
        svg.text(
            LEFT,
            by + 14,
            resource,
            size=11,
            anchor="end",
            weight="bold" if binds else None,
            fill=BINDING if binds else "#333",
        )
        x = float(BAR_X)
        for placed in sorted(node.clinics, key=lambda c: c.clinic.id):
            share = _demand(resource, placed.cpu_m, placed.memory_mib, placed.disk) / capacity if capacity else 0.0
            w = share * BAR_W
            if w <= 0:
                continue
            colour = SIZE_COLOURS.get(placed.clinic.size, "#888") if placed.clinic.active else SUSPENDED
            svg.rect(x, by, w, BAR_H, fill=colour, stroke="#fff", stroke_width=1)
            if binds:
                label = placed.clinic.id
                if text_width(label, 10) + 6 <= w:
                    svg.text(
                        x + w / 2,
                        by + 14,
                        label,
                        size=10,
                        anchor="middle",
                        fill="#fff" if placed.clinic.active else "#333",
                    )
                else:
                    hidden.append(label)
            x += w
        svg.rect(BAR_X, by, BAR_W, BAR_H, stroke=BINDING if binds else "#999", stroke_width=2 if binds else 1)
        value = used[RESOURCES.index(resource)]
        note = f"{_amount(value, unit)} of {_amount(capacity, unit)}"
        svg.text(
            BAR_X + BAR_W + 10,
            by + 14,
            note + ("  binding" if binds else ""),
            size=11,
            fill=BINDING if binds else "#333",
            weight="bold" if binds else None,
        )
    height = len(_bars(p)) * ROW
    if hidden:
        lead = "also on this node: " if len(hidden) < len(node.clinics) else "on this node: "
        svg.text(BAR_X, y + height + 10, lead + ", ".join(hidden), size=10, fill="#555")
        height += 16
    return height + 18


def chart(settings: Settings, p: Placement, stack: str, clinics: int, pool_nodes: int) -> str:
    """`pool_nodes`: the pool's floor (the plan's minCount), at least the clinics' nodes plus the spares."""
    row = p.row
    bars = len(_bars(p))
    needed = len(p.nodes)
    floor_only = max(pool_nodes - needed - p.spare_nodes, 0)
    height = 135 + (needed * (bars * ROW + 34)) + (p.spare_nodes + floor_only) * 52 + 70
    svg = Svg(WIDTH, height, f"{stack}: ORCA pool plan")
    svg.text(
        20,
        30,
        f"{stack}: {clinics} clinics on {needed + p.spare_nodes + floor_only} x {row.vm_size} ({row.storage})",
        size=18,
        weight="bold",
    )
    svg.text(
        20,
        52,
        f"Binding limit: {row.binding}, {row.per_node} clinics per node (cpu {row.by_cpu}, memory {row.by_memory}, "
        f"pods {row.by_pods}" + (f", data disks {row.by_disks}" if row.by_disks is not None else "") + ")",
        size=12,
        fill=BINDING,
    )
    svg.text(
        20,
        70,
        f"Headroom: about {p.headroom_clinics} more clinics of today's average size on the {needed} node"
        f"{'s' if needed != 1 else ''} the clinics need, then the pool's floor rises by a node; "
        f"{p.spare_nodes} spare node{'s' if p.spare_nodes != 1 else ''} on top.",
        size=12,
    )
    for k, line in enumerate(
        (
            "Each bar is one node's room for clinics (allocatable minus the DaemonSet reserve); a segment is one "
            "clinic's request.",
            "Clinics are packed as the plan counts nodes; the scheduler itself spreads the pods over the whole pool.",
        )
    ):
        svg.text(20, 88 + 15 * k, line, size=11, fill="#555")
    y = 127.0
    for i, node in enumerate(p.nodes, start=1):
        y += _node(svg, y, i, node, p)
    for j in range(p.spare_nodes):
        svg.rect(20, y, WIDTH - 40, 38, stroke="#999", dash="6 4", rx=4)
        svg.text(
            34,
            y + 24,
            f"node {needed + j + 1}: spare, empty by design (capacity.failureHeadroomNodes): it takes "
            "a failed node's clinics",
            size=12,
            fill="#555",
        )
        y += 52
    for k in range(floor_only):
        svg.rect(20, y, WIDTH - 40, 38, stroke="#bbb", dash="2 4", rx=4)
        number = needed + p.spare_nodes + k + 1
        svg.text(
            34,
            y + 24,
            f"node {number}: needed by no clinic, kept by orcaPool.minCount ({pool_nodes}; e.g. one per zone)",
            size=12,
            fill="#777",
        )
        y += 52
    lx = 20.0
    for label, colour in [(f"{k} clinic", v) for k, v in SIZE_COLOURS.items()]:
        svg.rect(lx, y + 6, 14, 14, fill=colour)
        svg.text(lx + 20, y + 17, label, size=11)
        lx += 30 + text_width(label, 11)
    if p.suspended:
        names = ", ".join(c.id for c in p.suspended)
        svg.rect(lx, y + 6, 14, 14, fill=SUSPENDED)
        svg.text(lx + 20, y + 17, f"suspended, no pod, nothing reserved: {names}", size=11)
    surge = settings.capacity.surge_nodes
    svg.text(
        20,
        y + 42,
        f"Upgrades add {surge} surge node{'s' if surge != 1 else ''} for the drain; maxCount "
        f"{settings.cluster.orca_pool.max_count}, maxPods {row.max_pods}. Source: make plan STACK={stack}.",
        size=11,
        fill="#555",
    )
    return svg.render()


def write_chart(
    settings: Settings, tenants: TenantsFile, catalogue: Catalogue, plan: CapacityPlan, stack: str, out: Path
) -> Path:
    placement = place(settings, tenants, catalogue, plan.chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = chart(settings, placement, stack, len(tenants.clinics), plan.pool_min_count)
    out.write_text(text, encoding="utf-8")
    return out
