"""Issue 14: every wall of one cluster and one stack in the planner, refused before any resource; the headroom to
each; and the generated documents that quote them.

Hand figures (catalogue.yaml limits, prod sample settings):
  internal load balancer: the ingress controller's 2 rules (http 80, https 443) + 2 per loadbalancer clinic (8000,
  9400) on every node's IP configuration, at most 300 -> 149 clinics; with PUSH through the ingress 1 per clinic.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from orca_test_support import (
    attempt,
    clinic_doc,
    load_settings,
    program_config,
    raw_settings,
    settings_from,
    stack_file,
    write_yaml,
)

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.errors import InputError
from orca_platform.model.tenants import TenantsFile, parse_tenants
from orca_platform.plan.front_door import MODES
from orca_platform.plan.stack_plan import StackPlan, plan_stack
from orca_platform.plan.walls import Wall
from tools.offline.engine import Run
from tools.offline.stack_export import build_export
from tools.reports import generated_blocks, plan_docs

LB_WALL = "load-balancing rules per node IP configuration"


def small_clinics(n: int, stack: str = "prod") -> dict[str, Any]:
    """n small clinics, each with its own /30 inside the stack's VPN sites (distinct allow-lists, as in life)."""
    settings = load_settings(stack)
    nets = [
        str(sub)
        for site in settings.network.vpn.sites
        for space in site.address_spaces
        for sub in ipaddress.IPv4Network(space).subnets(new_prefix=30)
    ]
    assert len(nets) >= n
    return {"clinics": [clinic_doc(f"clinic-{i:04d}", "small", "32Gi", sourceCidrs=[nets[i]]) for i in range(n)]}


def prod_raw(mode: str, push_through_ingress: bool = False, max_count: int = 12) -> dict[str, Any]:
    raw = copy.deepcopy(raw_settings("prod"))
    raw["frontDoor"] = {"mode": mode, "pushThroughIngress": push_through_ingress}
    raw["cluster"]["orcaPool"]["maxCount"] = max_count
    return raw


def plan_of(raw: dict[str, Any], doc: dict[str, Any], enforce: bool = True) -> StackPlan:
    settings = settings_from(raw, "prod")
    tenants: TenantsFile = parse_tenants(doc, "tenants.test.yaml")
    return plan_stack(
        settings, tenants, load_catalogue(), "tenants.test.yaml", stack_file("prod"), enforce_walls=enforce
    )


def walls_of(plan: StackPlan) -> dict[str, Wall]:
    return {w.id: w for w in plan.walls}


# --- the load balancer wall ---------------------------------------------------------------------------------------


def test_headroom_to_the_rule_wall_is_what_the_rules_leave() -> None:
    # The prod sample: 5 clinics pinned to loadbalancer -> 2 + 5 x 2 = 12 rules. New clinics of a loadbalancer
    # stack add 2 each: (300 - 12) / 2 = 144 more; with PUSH through the ingress the five take 1 each -> 7 used,
    # (300 - 7) / 1 = 293 more; ingress-only clinics add none.
    doc = {"clinics": [c.model_dump(by_alias=True, exclude_none=True) for c in load_tenants_prod().clinics]}
    lb = walls_of(plan_of(prod_raw("loadbalancer"), doc))["lb-rules-per-node"]
    assert (lb.used, lb.limit, lb.per_new_clinic, lb.headroom) == (12, 300, 2, 144)
    push = walls_of(plan_of(prod_raw("loadbalancer", push_through_ingress=True), doc))["lb-rules-per-node"]
    assert (push.used, push.headroom) == (7, 293)
    only = walls_of(plan_of(prod_raw("ingress-only"), doc))["lb-rules-per-node"]
    assert only.used == 12 and only.headroom is None  # the pinned five keep their rules; new clinics add none


def load_tenants_prod() -> TenantsFile:
    from orca_platform.model.tenants import load_tenants
    from tools.offline.engine import PROJECT_DIR

    return load_tenants(PROJECT_DIR / "tenants.yaml")


def test_more_than_300_rules_on_a_node_is_refused_before_any_resource(tmp_path: Path) -> None:
    # 150 loadbalancer clinics: 2 + 150 x 2 = 302 rules on every node. Nothing else is near its wall: the pool needs
    # ceil(150 / 24) + 1 = 8 of 12 nodes, the ILB subnet 151 of 251 addresses.
    tenants = write_yaml(tmp_path / "tenants.150.yaml", small_clinics(150))
    raw = prod_raw("loadbalancer")
    result = attempt("prod", program_config("prod", tenants=tenants, frontDoor=raw["frontDoor"]))
    assert isinstance(result.error, pulumi.RunError)
    assert result.registered == []
    message = str(result.error)
    assert f"{LB_WALL}: 302 of 300" in message
    assert "field 'orca-platform:frontDoor'" in message and stack_file("prod") in message
    assert "pushThroughIngress" in message and "ingress-only" in message  # the fix
    assert "load-balancer-limits.md" in message  # the source
    assert message.count("wall crossed") == 1  # only that wall


def test_149_loadbalancer_clinics_fit_and_the_150th_does_not() -> None:
    raw = prod_raw("loadbalancer")
    fits = plan_of(raw, small_clinics(149))
    assert walls_of(fits)["lb-rules-per-node"].used == 300 and walls_of(fits)["lb-rules-per-node"].headroom == 0
    with pytest.raises(InputError) as info:
        plan_of(raw, small_clinics(150))
    assert [p.field for p in info.value.problems] == ["orca-platform:frontDoor"]


def test_200_small_clinics_with_their_own_load_balancers_are_refused_by_the_rule_wall() -> None:
    with pytest.raises(InputError) as info:
        plan_of(prod_raw("loadbalancer", max_count=20), small_clinics(200))
    assert f"{LB_WALL}: 402 of 300" in str(info.value)


def test_200_small_clinics_with_push_through_the_ingress_fit_every_wall() -> None:
    plan = plan_of(prod_raw("loadbalancer", push_through_ingress=True, max_count=20), small_clinics(200))
    walls = walls_of(plan)
    assert walls["lb-rules-per-node"].used == 202  # 2 + 200 x 1
    assert not [w.id for w in plan.walls if w.crossed]


@pytest.fixture(scope="module")
def ingress_only_200(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """200 small clinics on the prod settings, ingress-only, the pool allowed 20 nodes: the real program, offline."""
    tenants = write_yaml(tmp_path_factory.mktemp("walls") / "tenants.200.yaml", small_clinics(200))
    raw = prod_raw("ingress-only", max_count=20)
    result = attempt(
        "prod", program_config("prod", tenants=tenants, frontDoor=raw["frontDoor"], cluster=raw["cluster"])
    )
    assert result.error is None, result.error
    assert result.run is not None
    return result.run


def test_200_ingress_only_clinics_render_within_every_load_balancer_limit(ingress_only_200: Run) -> None:
    # Counted on what was rendered, not taken from the planner: every LoadBalancer Service's ports that take a rule,
    # plus the ingress controller's (its chart's http and https ports), against the catalogue's limits.
    cat = load_catalogue()
    services = ingress_only_200.k8s("Service")
    lbs = [s for s in services if s.inputs["spec"].get("type") == "LoadBalancer"]
    rules = 2 + sum(len(s.inputs["spec"]["ports"]) for s in lbs)
    assert rules <= cat.limit("lbRulesPerIpConfiguration")
    assert 1 + len(lbs) <= cat.limit("lbFrontendsPerLoadBalancer")
    clinic_services = [s for s in services if (s.inputs["metadata"].get("namespace") or "").startswith("orca-clinic-")]
    assert len(clinic_services) == 200 and all(s.inputs["spec"]["type"] == "ClusterIP" for s in clinic_services)
    # One role assignment per clinic plus the cluster's, within the subscription's 4,000.
    assignments = ingress_only_200.by_type("azure-native:authorization:RoleAssignment")
    assert 200 < len(assignments) <= cat.limit("roleAssignmentsPerSubscription")
    # The pool the program registered holds them all (24 small per D8s_v5 node: 9 nodes + 1 spare).
    pool = next(r for r in ingress_only_200.by_type("azure-native:containerservice:AgentPool"))
    assert pool.inputs["minCount"] == 10 and pool.inputs["maxCount"] == 20
    # Every clinic's address is the ingress controller's.
    ingress_ip = load_settings("prod").ingress.private_ip
    assert {c["privateIp"] for c in ingress_only_200.outputs["clinics"].values()} == {ingress_ip}


def test_200_ingress_only_clinics_stagger_their_snapshots(ingress_only_200: Run) -> None:
    minutes = [
        int(c.inputs["spec"]["schedule"].split()[0])
        for c in ingress_only_200.k8s("CronJob")
        if c.inputs["metadata"]["name"] == "orca-snapshots"
    ]
    assert len(minutes) == 200
    # Within the hour after the stack's minute 0, and spread: no minute carries more than a tenth of them.
    assert all(0 <= m < 60 for m in minutes)
    assert max(minutes.count(m) for m in set(minutes)) <= 20 and len(set(minutes)) >= 40


# --- other walls ----------------------------------------------------------------------------------------------------


def test_the_checkpoint_budget_is_a_wall() -> None:
    # 400 KiB + 194 KiB per clinic: 64 MiB (65,536 KiB) holds 335 clinics, a 4 MiB budget 19.
    raw = prod_raw("ingress-only")
    raw["scale"] = {"checkpointBudgetMib": 4}
    assert walls_of(plan_of(raw, small_clinics(19)))["pulumi-checkpoint"].headroom == 0
    with pytest.raises(InputError) as info:
        plan_of(raw, small_clinics(20))
    assert "Pulumi checkpoint" in str(info.value) and "cells" in str(info.value)
    assert walls_of(plan_of(prod_raw("ingress-only"), small_clinics(1)))["pulumi-checkpoint"].headroom == 334


def test_role_assignments_count_what_the_subscription_already_holds() -> None:
    raw = prod_raw("ingress-only")
    # The prod sample's cluster makes 4 (control plane x 2, AcrPull, one admin group); 1 per clinic.
    raw["scale"] = {"subscriptionReserve": {"roleAssignments": 3990}}
    assert walls_of(plan_of(raw, small_clinics(6)))["role-assignments"].used == 4000
    with pytest.raises(InputError) as info:
        plan_of(raw, small_clinics(7))
    assert "role assignments in the subscription" in str(info.value) and ": 4001 of 4000" in str(info.value)


def test_storage_writes_follow_the_rendered_schedules() -> None:
    # Without stagger every snapshot runs at minute 0 of the same hours: 2 writes per clinic (snapshot, prune);
    # 1,200 an hour hold 600. A stack-wide image change adds each server's pre-upgrade snapshot (a soft wall).
    raw = prod_raw("ingress-only", max_count=30)
    raw["backup"] = {**raw["backup"], "snapshotStaggerMinutes": 0}
    walls = walls_of(plan_of(raw, small_clinics(10)))
    assert (walls["storage-writes"].used, walls["storage-writes"].per_new_clinic) == (20, 2)
    assert walls["storage-writes-upgrade"].used == 30 and not walls["storage-writes-upgrade"].hard
    # With half the subscription's budget used elsewhere, 300 clinics fill it and the 301st is refused.
    raw["scale"] = {"subscriptionReserve": {"managementWritesPerHour": 600}}
    assert walls_of(plan_of(raw, small_clinics(300)))["storage-writes"].used == 1200
    with pytest.raises(InputError) as info:
        plan_of(raw, small_clinics(301))
    assert "storage management writes" in str(info.value) and "snapshotStaggerMinutes" in str(info.value)
    raw.pop("scale")
    # An explicit per-clinic schedule every 5 minutes: 12 runs an hour, 24 writes, beside the other's 1 run.
    doc = small_clinics(2)
    doc["clinics"][0]["backup"] = {"snapshotSchedule": "*/5 * * * *"}
    assert walls_of(plan_of(raw, doc))["storage-writes"].used == 24 + 2
    # Spread over the 6-hour interval, the busiest hour holds a fraction of them, and 301 fit.
    raw["backup"]["snapshotStaggerMinutes"] = 360
    spread = walls_of(plan_of(raw, small_clinics(301)))["storage-writes"]
    assert spread.used < 301 and spread.per_new_clinic == pytest.approx(2 * 60 / 360)


def test_an_ilb_subnet_too_small_is_reported_once_by_the_address_plan() -> None:
    raw = prod_raw("loadbalancer")
    raw["network"]["ilbSubnetCidr"] = "10.50.8.0/27"  # 27 usable
    with pytest.raises(InputError) as info:
        plan_of(raw, small_clinics(30))
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 1 and "27 usable addresses; 31 are needed" in messages[0]


def test_a_crossed_soft_wall_is_shown_but_not_refused() -> None:
    # 40 clinics on premium v1 in one account promise 40 x 3,100 baseline IOPS > 102,400: a warning, not a stop.
    raw = prod_raw("ingress-only")
    raw["storage"] = {"strategy": "azure-files-nfs", "sku": "Premium_ZRS"}
    plan = plan_of(raw, small_clinics(40))
    iops = walls_of(plan)["files-iops:orca-nfs-premium-zrs"]
    assert iops.crossed and not iops.hard and iops.used == 40 * 3100


# --- the documents quote the planner --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["README.md", "docs/scale.md"])
def test_generated_blocks_are_current(path: str) -> None:
    blocks = {p.name: b for p, b in plan_docs.generated().items()}[Path(path).name]
    text = (plan_docs.PROJECT_DIR / path).read_text(encoding="utf-8")
    for name, block in blocks:
        fresh = generated_blocks.replace_block(text, plan_docs.TARGET, name, block)
        assert fresh == text, f"run `make plan-readme`: {path} ({name}) is stale"


def test_a_stale_block_is_caught() -> None:
    text = "a\n" + generated_blocks.begin("t", "x") + "\nold\n" + generated_blocks.end("x") + "\nb\n"
    assert generated_blocks.replace_block(text, "t", "x", "new") != text
    with pytest.raises(ValueError, match="markers"):
        generated_blocks.replace_block("no markers", "t", "x", "new")


def test_scale_table_matches_the_hand_figures() -> None:
    rows = {
        line.split(" | ")[0].lstrip("| "): [c.strip(" |*") for c in line.split(" | ")[3:]]
        for line in plan_docs.scale_table().splitlines()
        if line.startswith("| ") and not line.startswith("| wall")
    }
    assert [m.label for m in MODES] == ["loadbalancer", "loadbalancer, PUSH through the ingress", "ingress-only"]
    # loadbalancer: (300 - 2) / 2 = 149 fit, the 150th crosses; PUSH through the ingress: 298 fit; ingress-only: never.
    assert rows[LB_WALL] == ["150", "299", "never"]
    # A /24 ILB subnet: 251 addresses, one is the ingress's: the 251st load-balanced clinic has none.
    assert rows["addresses of the ILB subnet 10.50.8.0/24"] == ["251", "251", "never"]
    # (64 MiB - 400 KiB) / 194 KiB = 335 clinics fit in every mode.
    assert rows["Pulumi checkpoint rewritten at every step (KiB)"] == ["336", "336", "336"]


# --- the state each clinic adds ---------------------------------------------------------------------------------------


def _clinic_bytes(export: dict[str, Any], clinic_ids: list[str]) -> Iterator[int]:
    for cid in clinic_ids:
        mine = [
            r
            for r in export["deployment"]["resources"]
            if (name := r["urn"].rsplit("::", 1)[-1]) == cid or name.startswith(cid + "-") or name.endswith("-" + cid)
        ]
        yield sum(len(json.dumps(r)) for r in mine)


def test_the_checkpoint_figures_are_not_below_what_a_clinic_writes(prod_run: Run) -> None:
    export = build_export(prod_run)
    cat = load_catalogue()
    per_clinic = list(_clinic_bytes(export, list(prod_run.outputs["clinics"])))
    assert max(per_clinic) <= cat.limit("pulumiCheckpointKiBPerClinic") * 1024
    platform = len(json.dumps(export)) - sum(per_clinic)
    assert platform <= cat.limit("pulumiCheckpointKiBBase") * 1024


def test_the_readme_prose_quotes_the_planner() -> None:
    """The figures the README's prose discusses are the planner's (the generated block holds the rest)."""
    from orca_platform.plan.cost import cheapest_cell, new_clinic_cost

    settings = load_settings("prod")
    cat = load_catalogue()
    text = (plan_docs.PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    prose = text[text.index("**Is a small clinic under $20 a month on the prod sample?**") :]
    new = new_clinic_cost(settings, cat)
    cell = cheapest_cell(settings, cat)
    assert cell is not None and cell.vm_size == "Standard_E16as_v5"
    for figure in (new.total("payg", cat), cell.total("payg", cat), cell.total("3y", cat)):
        assert figure is not None and f"${figure:.2f}~" in prose
    assert (new.total("payg", cat) or 0) > 20 >= (cell.total("payg", cat) or 99)
    # The pinned clinics' figure and the stack's own row at density.
    from tools.reports.plan_report import existing_costs

    plan = plan_stack(settings, load_tenants_prod(), cat, "tenants.yaml", stack_file("prod"))
    [pinned] = existing_costs(plan)
    assert f"${pinned.total('payg', cat):.2f}~ each as they are pinned" in prose
    own = next(r for r in plan.capacity.rows if r.used_by_stack)
    assert f"${own.per_clinic_at_density_usd:.2f}~ at density" in prose
