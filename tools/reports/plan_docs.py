"""`make plan-readme`: the generated blocks of README.md (the prod sample's density and cost) and docs/scale.md (at
how many clinics each wall bites in each front-door mode), from the planner itself. `--check` fails when a block is
out of date (tests/test_walls.py runs it), so no figure there is ever typed by hand.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from orca_platform.model.catalogue import Catalogue, load_catalogue
from orca_platform.model.settings import Settings
from orca_platform.plan.capacity import NodeFit, reference_per_node
from orca_platform.plan.front_door import MODES, FrontDoorPlan
from orca_platform.plan.stack_plan import plan_stack
from orca_platform.plan.storage import options, strategy, usable
from orca_platform.plan.walls import Wall, all_walls, new_clinic
from tools.reports import generated_blocks, plan_report
from tools.reports import plan as plan_tool

PROJECT_DIR = Path(__file__).resolve().parents[2]
TARGET = "plan-readme"
# docs/scale.md's table: the prod sample's settings, only small clinics, the pool allowed its settings' maximum.
SCALE_STACK = "prod"
SCALE_MAX_COUNT = 100


def readme_rows(rows: list[NodeFit], target: int, keep: int = 10) -> list[NodeFit]:
    """The README's table: the cheapest priced rows that reach the target, and the stack's own."""
    priced = [r for r in rows if r.per_clinic_at_density_usd is not None and r.per_node >= target]
    priced.sort(key=lambda r: (r.per_clinic_at_density_usd or 0.0, r.vcpu, r.vm_size, r.storage_class))
    chosen = priced[:keep]
    chosen += [r for r in rows if r.used_by_stack and r not in chosen]
    return chosen


def readme_block(stack: str = "prod") -> str:
    settings, tenants, config_source, tenants_name = plan_tool.load(stack, "")
    cat = load_catalogue()
    plan = plan_stack(settings, tenants, cat, tenants_name, config_source)
    rows = readme_rows(list(plan.capacity.rows), settings.capacity.density_target)
    body = [plan_tool.render_table(rows, settings.capacity.density_target), "", *plan_report.report(plan)]
    return "```\n" + "\n".join(line.rstrip() for line in body) + "\n```"


def storage_table(stack: str = "prod") -> str:
    """Every modelled storage option with its data-safety properties and what a small clinic's volume costs."""
    settings, _, _, _ = plan_tool.load(stack, "")
    cat = load_catalogue()
    ref = cat.reference_clinic.volume_gib
    own = strategy(settings.storage.strategy, settings.storage.sku, cat).storage_class
    lines = [
        f"| option (`storage` / `storageSku`) | StorageClass | data-disk slot | billed minimum | {ref} GiB a month "
        "| PostgreSQL | zone loss | snapshots, restore | zonal stack |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    for o in options(cat):
        safety = o.safety
        price = o.monthly_usd_gib(o.claim_gib(ref * 2**30), cat)
        mark = "" if o.price_confirmed() else "~"
        verdict = usable(o, zonal_cluster=True) or "usable"
        used = " **(prod default for new clinics)**" if o.storage_class == own else ""
        lines.append(
            f"| {o.label}: `{o.name.value}` / `{o.sku}`{used} | `{o.storage_class}` | "
            f"{'yes' if o.attaches_per_volume else 'no'} | {o.minimum_gib} GiB | ${price:.2f}{mark} | "
            f"hard links {safety.hard_links}, {safety.single_writer} | {safety.zone_loss} | "
            f"{safety.snapshots}; {safety.restore} | {verdict} |"
        )
    return "\n".join(lines)


def scale_settings() -> Settings:
    settings, _, _, _ = plan_tool.load(SCALE_STACK, "")
    cluster = settings.cluster
    pool = cluster.orca_pool.model_copy(update={"max_count": SCALE_MAX_COUNT})
    return settings.model_copy(update={"cluster": cluster.model_copy(update={"orca_pool": pool})})


def scale_walls(settings: Settings, catalogue: Catalogue, door: FrontDoorPlan) -> list[Wall]:
    """The walls of an empty stack with these settings, new clinics arriving through `door`."""
    per_node = reference_per_node(settings, catalogue)
    new = replace(new_clinic(settings, catalogue, per_node), front_door=door)
    return all_walls(settings, [], catalogue, new, settings.capacity.failure_headroom_nodes)


def scale_table() -> str:
    """At how many small clinics each wall bites, per front-door mode (docs/scale.md)."""
    settings = scale_settings()
    cat = load_catalogue()
    store = strategy(settings.storage.strategy, settings.storage.sku, cat)
    columns = [(door.label, {w.id: w for w in scale_walls(settings, cat, door)}) for door in MODES]
    ids = list(columns[0][1])
    lines = [
        "| wall | scope | limit | " + " | ".join(label for label, _ in columns) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    firsts = []
    for _, walls in columns:
        hard = [w for w in walls.values() if w.hard and w.bites_at(0) is not None]
        firsts.append(min(hard, key=lambda w: w.bites_at(0) or 0).id if hard else "")
    for wid in ids:
        base = columns[0][1][wid]
        cells = []
        for n, (_, walls) in enumerate(columns):
            at = walls[wid].bites_at(0)
            text = "never" if at is None else f"{at:,}"
            cells.append(f"**{text}**" if wid == firsts[n] else text)
        soft = "" if base.hard else " (soft)"
        lines.append(f"| {base.title}{soft} | {base.scope} | {base.limit:,} | " + " | ".join(cells) + " |")
    note = (
        f"Small clinics only (200m, 1280Mi, 32Gi), on the `{SCALE_STACK}` sample's settings with "
        f"`orcaPool.maxCount` {SCALE_MAX_COUNT}: {settings.cluster.orca_pool.vm_size}, new clinics on "
        f"{store.label}. Bold: the first wall in each mode."
    )
    return "\n".join([*lines, "", note])


def generated() -> dict[Path, list[tuple[str, str]]]:
    readme = PROJECT_DIR / "README.md"
    return {
        readme: [("storage options", storage_table("prod")), ("prod density and cost", readme_block("prod"))],
        PROJECT_DIR / "docs" / "scale.md": [("walls by front door", scale_table())],
    }


def main(argv: list[str] | None = None) -> int:
    return generated_blocks.main(TARGET, __doc__, generated, argv)


if __name__ == "__main__":
    sys.exit(main())
