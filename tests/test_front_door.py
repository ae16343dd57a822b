"""Issues 13 (seam) and 14 (modes): a clinic's front door in each mode, rendered by the real program offline.

One run of the dev stack with PUSH through the ingress, holding an ingress-only clinic and a loadbalancer one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from orca_test_support import (
    address_plan,
    attempt,
    clinic_doc,
    k8s_named,
    load_settings,
    program_config,
    stack_file,
    write_yaml,
)

from orca_platform.conventions import NO_LB_RULE
from tools.checks import isolation
from tools.checks.run import (
    Rendered,
    allow_lists,
    check_isolation,
    isolation_facts,
    read_rendered,
    stack_settings,
    variant_config,
)
from tools.offline.engine import Run, run_program
from tools.offline.synth import write

NO_RULE_9400 = NO_LB_RULE.format(port=9400)


@pytest.fixture(scope="module")
def two_doors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, Any]]:
    addr = address_plan(load_settings("dev"))
    doc = {
        "clinics": [
            clinic_doc("door-ingress", sourceCidrs=[addr.vpn_cidrs[0]], frontDoor="ingress-only"),
            clinic_doc("door-lb", sourceCidrs=[addr.vpn_cidrs[1]], privateIp=addr.free_ips[0]),
        ]
    }
    path = write_yaml(tmp_path_factory.mktemp("doors") / "tenants.doors.yaml", doc)
    config = program_config("dev", tenants=path, frontDoor={"mode": "loadbalancer", "pushThroughIngress": True})
    result = attempt("dev", config)
    assert result.error is None, result.error
    assert result.run is not None
    return result.run, doc


def _ingress_rules(run: Run, ns: str) -> list[dict[str, Any]]:
    return list(k8s_named(run, "NetworkPolicy", ns, "orca-server").inputs["spec"]["ingress"])


def test_an_ingress_only_clinic_has_no_load_balancer_of_its_own(two_doors: tuple[Run, dict[str, Any]]) -> None:
    run, doc = two_doors
    ns = "orca-door-ingress"
    svc = k8s_named(run, "Service", ns, "orca")
    assert svc.inputs["spec"]["type"] == "ClusterIP"
    assert "loadBalancerSourceRanges" not in svc.inputs["spec"]
    # No load-balancer annotation: only how long Pulumi may wait for its endpoints (the new server's start-up).
    assert set(svc.inputs["metadata"].get("annotations") or {}) == {"pulumi.com/timeoutSeconds"}
    # The Ingress routes both ports to it; its Policy allows the clinic's networks only.
    paths = k8s_named(run, "Ingress", ns, "orca").inputs["spec"]["rules"][0]["http"]["paths"]
    assert {p["path"]: p["backend"]["service"]["port"]["name"] for p in paths} == {"/ws": "push", "/": "glserver"}
    policy = k8s_named(run, "Policy", ns, "clinic-sources")
    assert policy.inputs["spec"]["accessControl"]["allow"] == doc["clinics"][0]["sourceCidrs"]
    # Its networks never reach the pod directly: the only way in is the ingress controller.
    rules = _ingress_rules(run, ns)
    assert len(rules) == 1 and all("ipBlock" not in peer for peer in rules[0]["from"])
    assert k8s_named(run, "ResourceQuota", ns, "orca-quota").inputs["spec"]["hard"]["services.loadbalancers"] == "0"
    # Its "private IP" is the ingress controller's, where its FQDN's A record points.
    ingress_ip = load_settings("dev").ingress.private_ip
    assert run.outputs["clinics"]["door-ingress"]["privateIp"] == ingress_ip


def test_push_through_the_ingress_leaves_one_rule_per_clinic(two_doors: tuple[Run, dict[str, Any]]) -> None:
    run, doc = two_doors
    ns = "orca-door-lb"
    svc = k8s_named(run, "Service", ns, "orca")
    annotations = svc.inputs["metadata"]["annotations"]
    assert svc.inputs["spec"]["type"] == "LoadBalancer"
    # 9400 stays on the Service (the Ingress's /ws needs it) but takes no rule on the load balancer.
    assert annotations[NO_RULE_9400] == "true"
    assert [p["port"] for p in svc.inputs["spec"]["ports"]] == [8000, 9400]
    assert annotations["service.beta.kubernetes.io/azure-load-balancer-ipv4"] == doc["clinics"][1]["privateIp"]
    # The clinic's networks come in directly on 8000 only; PUSH comes through the ingress controller.
    direct = [r for r in _ingress_rules(run, ns) if any("ipBlock" in peer for peer in r["from"])]
    assert [[p["port"] for p in r["ports"]] for r in direct] == [[8000]]
    assert k8s_named(run, "ResourceQuota", ns, "orca-quota").inputs["spec"]["hard"]["services.loadbalancers"] == "1"
    assert run.outputs["clinics"]["door-lb"]["privateIp"] == doc["clinics"][1]["privateIp"]


def test_the_sample_load_balancers_keep_both_rules(prod_run: Run) -> None:
    # The prod sample's five pinned clinics render as before the seam: both ports on the load balancer.
    services = [s for s in prod_run.k8s("Service") if s.inputs["metadata"]["namespace"].startswith("orca-")]
    assert len(services) == 5
    for svc in services:
        assert svc.inputs["spec"]["type"] == "LoadBalancer"
        assert NO_RULE_9400 not in (svc.inputs["metadata"].get("annotations") or {})


def test_a_private_ip_on_an_ingress_only_clinic_is_refused(tmp_path: Path) -> None:
    addr = address_plan(load_settings("dev"))
    doc = {
        "clinics": [
            clinic_doc(
                "door-wrong", sourceCidrs=[addr.vpn_cidrs[0]], privateIp=addr.free_ips[0], frontDoor="ingress-only"
            )
        ]
    }
    path = write_yaml(tmp_path / "tenants.wrong.yaml", doc)
    result = attempt("dev", program_config("dev", tenants=path))
    assert isinstance(result.error, pulumi.RunError)
    assert result.registered == []
    message = str(result.error)
    assert str(path) in message and "clinic 'door-wrong'" in message and "field 'privateIp'" in message
    assert "ingress-only" in message and "frontDoor" in message
    assert stack_file("dev") not in message  # the tenants file is at fault, not the stack


def test_an_unknown_front_door_is_refused(tmp_path: Path) -> None:
    addr = address_plan(load_settings("dev"))
    path = write_yaml(
        tmp_path / "t.yaml", {"clinics": [clinic_doc("door-x", sourceCidrs=[addr.vpn_cidrs[0]], frontDoor="nodeport")]}
    )
    result = attempt("dev", program_config("dev", tenants=path))
    assert isinstance(result.error, pulumi.RunError) and result.registered == []
    assert "field 'frontDoor'" in str(result.error)


# --- the checks' variant with both new front doors ------------------------------------------------------------------


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Rendered], isolation.Facts]:
    stack, config = variant_config("dev+ingress-only")
    run = run_program(stack, config)
    folder = tmp_path_factory.mktemp("variant") / "dev+ingress-only"
    write(run, folder)
    return read_rendered(folder), isolation_facts(run, stack_settings(config, stack))


def test_the_variant_is_isolated_in_every_mode(variant: tuple[list[Rendered], isolation.Facts]) -> None:
    objects, facts = variant
    findings, lines = check_isolation(objects, facts)
    assert findings == []
    modes = {
        (
            o.doc["metadata"]["namespace"],
            o.doc["spec"]["type"],
            NO_RULE_9400 in (o.doc["metadata"].get("annotations") or {}),
        )
        for o in objects
        if o.doc.get("kind") == "Service"
    }
    # Three ingress-only clinics and one load balancer with PUSH through the ingress.
    assert sorted(t for _, t, _ in modes) == ["ClusterIP", "ClusterIP", "ClusterIP", "LoadBalancer"]
    assert [ns for ns, t, no_rule in modes if t == "LoadBalancer" and no_rule] == ["orca-check-kaede"]
    assert any("9400/TCP (ingress only)" in line for line in lines)


def test_an_allow_list_wider_than_the_clinic_is_caught(variant: tuple[list[Rendered], isolation.Facts]) -> None:
    objects, facts = variant
    broken = copy.deepcopy(objects)
    policy = next(
        o for o in broken if o.doc.get("kind") == "Policy" and o.doc["metadata"]["namespace"] == "orca-check-sakura"
    )
    policy.doc["spec"]["accessControl"]["allow"].append("192.168.20.0/24")  # another clinic's network
    ingress = next(
        o for o in broken if o.doc.get("kind") == "Ingress" and o.doc["metadata"]["namespace"] == "orca-check-aoba"
    )
    ingress.doc["metadata"]["annotations"].pop("nginx.org/policies")
    found = allow_lists(broken, facts)
    assert any("orca-check-sakura/Ingress/orca allows ['192.168.20.0/24']" in f for f in found)
    assert any("orca-check-aoba/Ingress/orca names no NGINX Policy" in f for f in found)
    assert allow_lists(objects, facts) == []
