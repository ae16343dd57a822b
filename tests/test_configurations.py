"""Issue 28 item 3: the planner compares whole configurations by their bill at a clinic count (fixed costs, the
spare node, whole nodes), the catalogue's corrected prices, the monthly dumps in the cold tier, the plan's node count
at the pool's floor, and suspended clinics drawn as reserving nothing.

Catalogue figures used (catalogue.yaml; '~' estimates): P10 OS disk $22.67, E8as_v5 $414~ (0.9 x E8s_v5),
E16as_v5 $828~, 3-year factor 0.5, two public IPs at $3.65~, blob cool $0.015~ and cold $0.0045~ per GiB x2.25~ for
GZRS, cool minimum 30 days and cold 90.
"""

from __future__ import annotations

import math

import pytest
from orca_test_support import azure, load_settings, stack_file

from orca_platform.backup.tiers import cold_after_days
from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.tenants import load_tenants
from orca_platform.plan.cost import (
    COMPARED_CLINICS,
    SPARE_LINE,
    cheapest_cell,
    cheapest_configuration,
    configurations,
    dumps_monthly_usd,
    stack_cost,
)
from orca_platform.plan.placement import place
from orca_platform.plan.stack_plan import plan_stack
from tools.offline.engine import PROJECT_DIR, Run
from tools.reports import plan_report


def test_the_catalogue_carries_the_corrected_prices() -> None:
    cat = load_catalogue()
    assert cat.node_sizes.os_disk_monthly_usd == pytest.approx(22.67)
    assert cat.node_sizes.commitments["3y"] == pytest.approx(0.5)
    amd = cat.node_sizes.sizes["Standard_E8as_v5"]
    assert (amd.vcpu, amd.memory_gib, amd.monthly_usd) == (8, 64, pytest.approx(0.9 * 460))
    assert cat.node_sizes.sizes["Standard_E16as_v5"].memory_gib == 128
    fixed = stack_cost(load_settings("prod"), cat)
    ips = next(line for line in fixed.lines if line.item.startswith("public IPs"))
    assert ips.monthly_usd == pytest.approx(2 * 3.65)


def test_a_configuration_is_priced_whole() -> None:
    settings, cat = load_settings("prod"), load_catalogue()
    fixed = stack_cost(settings, cat)
    shared = sum(line.monthly_usd or 0.0 for line in fixed.lines if not line.item.startswith(SPARE_LINE))
    for n in (7, 100):
        for c in configurations(settings, cat, n)[:20]:
            per_node = c.clinic.per_node
            # Whole nodes: the clinics' nodes rounded up, the spare on top, at least one a zone (prod has three).
            assert c.nodes == max(math.ceil(n / per_node) + settings.capacity.failure_headroom_nodes, 3)
            node = cat.node_sizes.sizes[c.clinic.vm_size].monthly_usd or 0.0
            own = sum(
                line.monthly_usd or 0.0
                for line in c.clinic.lines
                if not line.item.startswith(("compute", "node OS disk"))
            )
            assert c.total("payg", cat) == pytest.approx(c.nodes * (node + 22.67) + n * own + shared)
            assert c.total("3y", cat) == pytest.approx(c.nodes * (node * 0.5 + 22.67) + n * own + shared)


def test_the_cheapest_by_the_whole_bill_is_not_the_cheapest_at_density() -> None:
    """At density the 16-vCPU AMD size wins; at 100 clinics its two half-empty big nodes lose to 8-vCPU ones."""
    settings, cat = load_settings("prod"), load_catalogue()
    cell = cheapest_cell(settings, cat)
    assert cell is not None and cell.vm_size == "Standard_E16as_v5"
    best = cheapest_configuration(settings, cat, 100)
    assert best is not None and best.clinic.vm_size == "Standard_E8as_v5"
    big = min(
        (c for c in configurations(settings, cat, 100) if c.clinic.vm_size == "Standard_E16as_v5"),
        key=lambda c: c.total("payg", cat),
    )
    assert big.total("payg", cat) > best.total("payg", cat)
    for c in configurations(settings, cat, 100):
        assert c.total("payg", cat) >= best.total("payg", cat) - 1e-9


def test_load_balanced_front_doors_drop_out_past_the_rules_wall() -> None:
    settings, cat = load_settings("prod"), load_catalogue()
    assert any(c.clinic.front_door.load_balancer for c in configurations(settings, cat, 100))
    # 300 clinics x 2 rules (or 1 with PUSH through the ingress) exceed the 298 a node's IP configuration has left.
    assert not any(c.clinic.front_door.load_balancer for c in configurations(settings, cat, 300))


def test_make_plan_prints_the_cheapest_at_each_count() -> None:
    settings, cat = load_settings("prod"), load_catalogue()
    tenants = load_tenants(PROJECT_DIR / "tenants.yaml")
    plan = plan_stack(settings, tenants, cat, "tenants.yaml", stack_file("prod"))
    text = "\n".join(plan_report.configuration_lines(plan, "3y"))
    for n in (len(tenants.clinics), *COMPARED_CLINICS):
        best = cheapest_configuration(settings, cat, n)
        assert best is not None
        assert f"{n:>5} clinics: {best.nodes} x {best.clinic.vm_size}" in text
        assert f"${best.total('payg', cat):.2f}~ a month" in text


def test_monthly_dumps_go_cold_only_when_they_live_long_enough() -> None:
    assert cold_after_days(1827) == 30 and cold_after_days(120) == 30
    assert cold_after_days(119) is None and cold_after_days(30) is None
    cat = load_catalogue()
    # prod: 0.5 GiB a day kept 35 days, and one a month kept 1,827: 30 days cool, then cold.
    gzrs = 2.25
    daily = 0.5 * 35 * 0.015 * gzrs
    monthly = 0.5 * (30 * 0.015 + 1797 * 0.0045) * gzrs / 30.4
    assert dumps_monthly_usd(0.5, 35, 1827, "Standard_GZRS", cat) == pytest.approx(daily + monthly)
    # dev: monthly copies kept 30 days never go cold (the 90-day cold minimum would bill days after their deletion).
    assert dumps_monthly_usd(0.5, 7, 30, "Standard_LRS", cat) == pytest.approx((0.5 * 30 + 0.5 * 30 / 30.4) * 0.015)


def _lifecycle(run: Run) -> dict[str, dict[str, object]]:
    [policy] = azure(run, "storage:ManagementPolicy")
    rules = policy.inputs["policy"]["rules"]
    return {r["name"]: r["definition"]["actions"]["baseBlob"] for r in rules}


def test_prod_moves_its_monthly_copies_to_cold_and_dev_does_not(prod_run: Run, dev_run: Run) -> None:
    prod = _lifecycle(prod_run)
    assert prod["expire-monthly"]["tierToCold"] == {"daysAfterModificationGreaterThan": 30}
    assert "tierToCold" not in prod["expire-daily"]
    assert all("tierToArchive" not in r for r in prod.values())
    assert all("tierToCold" not in r for r in _lifecycle(dev_run).values())


def test_the_plans_node_count_is_the_pools_floor_and_a_suspended_clinic_reserves_nothing() -> None:
    settings, cat = load_settings("prod"), load_catalogue()
    tenants = load_tenants(PROJECT_DIR / "tenants.yaml")
    plan = plan_stack(settings, tenants, cat, "tenants.yaml", stack_file("prod")).capacity
    assert settings.cluster.orca_pool.min_count == 3
    assert plan.chosen.nodes == plan.pool_min_count == 3
    # "now": the pool's three nodes and the clinics' volumes over its five clinics.
    storage = plan.chosen.per_clinic_monthly_usd or 0.0
    assert storage * len(tenants.clinics) > 3 * 360
    placement = place(settings, tenants, cat, plan.chosen)
    placed = {p.clinic.id for node in placement.nodes for p in node.clinics}
    suspended = {c.id for c in tenants.clinics if not c.active}
    assert suspended == {"hinata-hifuka"} and not placed & suspended
    assert {c.id for c in placement.suspended} == suspended
    assert len(placement.nodes) == plan.chosen.nodes_for_clinics
