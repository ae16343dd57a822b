"""`make plan`: the density and cost table for a stack and its clinics, for people and (as JSON) for tools."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orca_platform.capacity import NodeFit, capacity_rows, plan_capacity
from orca_platform.catalogue import load_catalogue
from orca_platform.config_file import read_stack_file
from orca_platform.errors import InputError
from orca_platform.settings import Settings, parse_settings
from orca_platform.stack_plan import plan_stack
from orca_platform.tenants import TenantsFile, load_tenants
from tools import plan_report

PROJECT_DIR = Path(__file__).resolve().parent.parent
COLUMNS = (
    ("node size", 17),
    ("storage", 22),
    ("maxPods", 7),
    ("cpu", 4),
    ("mem", 4),
    ("pods", 4),
    ("disks", 5),
    ("per node", 8),
    ("binding", 10),
    ("nodes", 5),
    ("$/clinic at density", 19),
    ("$/clinic now", 12),
    ("", 6),
)


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
        "<- used" if r.used_by_stack else "",
    ]


def render_table(rows: list[NodeFit], target: int) -> str:
    lines = ["  ".join(name.ljust(width) for name, width in COLUMNS).rstrip()]
    lines.append("  ".join("-" * width for _, width in COLUMNS[:-1]))
    for r in sorted(rows, key=lambda r: (r.per_node < target, r.per_clinic_at_density_usd or 1e9, r.vcpu)):
        lines.append("  ".join(v.ljust(w) for v, (_, w) in zip(_row(r), COLUMNS, strict=True)).rstrip())
    return "\n".join(lines)


def load(stack: str, tenants_override: str) -> tuple[Settings, TenantsFile, str, str]:
    config_source = f"Pulumi.{stack}.yaml"
    settings = parse_settings(read_stack_file(PROJECT_DIR / config_source), config_source)
    tenants_name = tenants_override or settings.tenants_file
    path = Path(tenants_name)
    tenants = load_tenants(path if path.is_absolute() else PROJECT_DIR / path, tenants_name)
    return settings, tenants, config_source, tenants_name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--tenants", default="")
    ap.add_argument("--json", default="", help="where to write the JSON (default build/plan/<stack>.json)")
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
        "(orca_platform/catalogue.yaml); n/a = no price in the facts"
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
    c = plan.chosen
    print(
        f"stack uses {c.vm_size} + {c.storage}: {c.per_node} clinics per node (binding: {c.binding}); "
        f"orca pool minCount {plan.pool_min_count}, maxCount {plan.pool_max_count}, maxPods {plan.max_pods} -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
