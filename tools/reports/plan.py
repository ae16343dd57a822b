"""`make plan`: the density and cost table for a stack and its clinics, for people and (as JSON) for tools."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.config_file import read_stack_file, settings_from_config
from orca_platform.model.errors import InputError
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import TenantsFile, load_tenants
from orca_platform.plan.capacity import NodeFit, capacity_rows, plan_capacity
from orca_platform.plan.stack_plan import plan_stack
from tools.cli import run
from tools.reports import plan_report
from tools.reports.plan_chart import write_chart

PROJECT_DIR = Path(__file__).resolve().parents[2]
# (heading, width); GROUPS label runs of columns on a line above the headings.
COLUMNS = (
    ("node size", 17),
    ("storage", 22),
    ("maxPods", 7),
    ("cpu", 4),
    ("memory", 6),
    ("pods", 4),
    ("disks", 5),
    ("per node", 8),
    ("binding limit", 13),
    ("nodes", 5),
    ("at density", 10),
    ("now", 8),
    ("", 7),
)
GROUPS = ((3, 7, "clinics per node by"), (10, 12, "$ per clinic-month"))


def _row(r: NodeFit) -> list[str]:
    def usd(value: float | None) -> str:
        if value is None:
            return "n/a"
        return f"{value:.2f}" + ("~" if r.cost_estimated else "")

    return [
        r.vm_size,
        r.storage_class,
        str(r.max_pods_for_density),
        str(r.by_cpu),
        str(r.by_memory),
        str(r.by_pods),
        "-" if r.by_disks is None else str(r.by_disks),
        str(r.per_node),
        r.binding,
        str(r.nodes),
        usd(r.per_clinic_at_density_usd),
        usd(r.per_clinic_monthly_usd),
        "<- this stack" if r.used_by_stack else "",
    ]


def render_table(rows: list[NodeFit], target: int) -> str:
    """Priced rows only, the stack's own row first (priced or not), then by cost at density."""
    shown = [r for r in rows if r.used_by_stack] + sorted(
        (r for r in rows if not r.used_by_stack and r.per_clinic_at_density_usd is not None),
        key=lambda r: (r.per_node < target, r.per_clinic_at_density_usd or 0.0, r.vcpu),
    )
    starts = [sum(w + 2 for _, w in COLUMNS[:i]) for i in range(len(COLUMNS))]
    groups = ""
    for first, last, label in GROUPS:
        span = starts[last] - starts[first] - 2
        groups = groups.ljust(starts[first]) + label.center(span, "-")
    lines = [groups.rstrip(), "  ".join(name.ljust(width) for name, width in COLUMNS).rstrip()]
    lines.append("  ".join("-" * width for _, width in COLUMNS[:-1]))
    for r in shown:
        lines.append("  ".join(v.ljust(w) for v, (_, w) in zip(_row(r), COLUMNS, strict=True)).rstrip())
    return "\n".join(lines)


def unpriced(rows: list[NodeFit]) -> list[NodeFit]:
    return [r for r in rows if r.per_clinic_at_density_usd is None and not r.used_by_stack]


def load(stack: str, tenants_override: str) -> tuple[Settings, TenantsFile, str, str]:
    config_source = f"Pulumi.{stack}.yaml"
    settings = settings_from_config(read_stack_file(PROJECT_DIR / config_source), config_source)
    tenants_name = tenants_override or settings.tenants_file
    path = Path(tenants_name)
    tenants = load_tenants(path if path.is_absolute() else PROJECT_DIR / path, tenants_name)
    return settings, tenants, config_source, tenants_name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--tenants", default="")
    ap.add_argument("--json", default="", help="where to write the JSON (default build/plan/<stack>.json)")
    ap.add_argument("--chart", default="", help="where to draw the nodes as SVG (default build/plan/<stack>.svg)")
    ap.add_argument("--commitment", default="payg", choices=["payg", "1y", "3y"], help="for the cheapest-cell line")
    args = ap.parse_args(argv)
    catalogue = load_catalogue()
    try:
        settings, tenants, config_source, tenants_name = load(args.stack, args.tenants)
        rows = capacity_rows(settings, tenants, catalogue)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = settings.capacity.density_target
    pool = settings.cluster.orca_pool
    print(
        f"{args.stack}: {len(tenants.clinics)} clinics from {tenants_name}, density target {target} per node, "
        f"maxPods {pool.max_pods}, storage SKU {settings.storage.sku}"
    )
    shown = [r for r in rows if r.used_by_stack or (r.per_node >= target and r.per_clinic_at_density_usd is not None)]
    print(render_table(shown, target))
    print(f"({len(rows) - len(shown)} more rows below the density target or without a price: see the JSON)")
    print(
        "at density = node price / clinics per node + storage; now = (node price x nodes incl. spare + storage) / "
        f"clinics; '~' = contains an estimate; prices as of {catalogue.as_of} "
        "(orca_platform/model/catalogue.yaml); n/a = no price in the facts"
    )
    hidden = unpriced(rows)
    if hidden:
        sizes = sorted({r.vm_size for r in hidden})
        print(
            f"{len(hidden)} rows without a price not shown ({', '.join(sizes)}): "
            "price them with capacity.nodePrices to compare; build/plan/<stack>.json has every row"
        )
    out = Path(args.json) if args.json else PROJECT_DIR / "build" / "plan" / f"{args.stack}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        plan = plan_capacity(settings, tenants, catalogue, config_source)
        stack = plan_stack(settings, tenants, catalogue, tenants_name, config_source, enforce_walls=False)
        print("\n".join(plan_report.report(stack, args.commitment)))
        plan_stack(settings, tenants, catalogue, tenants_name, config_source)
    except InputError as exc:
        out.write_text(json.dumps({"rows": [r.as_dict() for r in rows], "error": str(exc)}, indent=2) + "\n")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.write_text(json.dumps(plan.as_dict(), indent=2) + "\n")
    chart = write_chart(
        settings, tenants, catalogue, plan, args.stack, Path(args.chart) if args.chart else out.with_suffix(".svg")
    )
    c = plan.chosen
    print(
        f"stack uses {c.vm_size} + {c.storage}: {c.per_node} clinics per node (binding: {c.binding}); "
        f"orca pool minCount {plan.pool_min_count}, maxCount {plan.pool_max_count}, maxPods {plan.max_pods} -> {out}, "
        f"{chart}"
    )
    return 0


if __name__ == "__main__":
    run(main)
