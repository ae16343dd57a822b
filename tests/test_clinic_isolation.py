"""Clinic isolation beyond ingress: what a clinic's pods may open, and what the load balancer enforces at the NSG."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from tools.offline.engine import Registered, Run, stack_config

RFC1918 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def network_settings(stack: str) -> dict[str, Any]:
    """The stack's network settings, read from Pulumi.<stack>.yaml independently of the program."""
    value: dict[str, Any] = json.loads(stack_config(stack)["orca-platform:network"])
    return value


def covered(cidr: str, excepts: list[str]) -> bool:
    net = ipaddress.ip_network(cidr)
    return any(net.subnet_of(ipaddress.ip_network(e)) for e in excepts)  # type: ignore[arg-type]


def policy(run: Run, namespace: str, name: str) -> dict[str, Any]:
    [found] = [p for p in run.k8s("NetworkPolicy", namespace) if p.inputs["metadata"]["name"] == name]
    spec: dict[str, Any] = found.inputs["spec"]
    return spec


def https_rule(spec: dict[str, Any], endpoint: str | None = None) -> dict[str, Any]:
    """The one HTTPS rule to public addresses; with `endpoint`, beside it exactly one to that CIDR on 443 (the ORCA
    pod's WAL shipper and the backup account's private endpoint, issue 24)."""
    rules = [r for r in spec["egress"] if any("ipBlock" in peer for peer in r.get("to", []))]
    if endpoint is not None:
        backup = [r for r in rules if r["to"] == [{"ipBlock": {"cidr": endpoint}}]]
        assert len(backup) == 1 and backup[0]["ports"] == [{"protocol": "TCP", "port": 443}]
        rules = [r for r in rules if r not in backup]
    assert len(rules) == 1, "one ipBlock egress rule, the HTTPS one"
    rule: dict[str, Any] = rules[0]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    return rule


def dns_only(spec: dict[str, Any]) -> None:
    others = [r for r in spec["egress"] if not any("ipBlock" in peer for peer in r.get("to", []))]
    assert len(others) == 1
    [peer] = others[0]["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted(p["port"] for p in others[0]["ports"]) == [53, 53]


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> tuple[str, Run]:
    run: Run = request.getfixturevalue(f"{request.param}_run")
    return request.param, run


def test_orca_server_opens_nothing_but_dns_and_public_https(stack: tuple[str, Run]) -> None:
    name, run = stack
    net = network_settings(name)
    # Other clinics' pods, Services and load balancers, their offices over the VPN, the backup endpoint: all private.
    internal = [*RFC1918, net["podCidr"], net["serviceCidr"], net["ilbSubnetCidr"], net["vnetCidr"]]
    internal += [c for site in net["vpn"]["sites"] for c in site["addressSpaces"]]
    for cid in run.outputs["clinics"]:
        spec = policy(run, f"orca-{cid}", "orca-server")
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        dns_only(spec)
        for peer in https_rule(spec, net["privateEndpointSubnetCidr"])["to"]:
            block = peer["ipBlock"]
            excepts = block.get("except", [])
            for cidr in internal:
                if covered(cidr, [block["cidr"]]):
                    assert covered(cidr, excepts), f"{cid}: HTTPS egress reaches {cidr}"


def test_backup_pods_never_reach_other_clinics(stack: tuple[str, Run]) -> None:
    name, run = stack
    net = network_settings(name)
    for cid in run.outputs["clinics"]:
        spec = policy(run, f"orca-{cid}", "orca-backup")
        assert spec["podSelector"]["matchLabels"]["orca-platform.io/role"] == "backup"
        assert "ingress" not in spec or not spec["ingress"], "backup pods accept no connection"
        dns_only(spec)
        [peer] = https_rule(spec)["to"]
        # The API server and the backup account's private endpoint have VNet addresses; other clinics' pods,
        # Services and load balancer frontends do not get through.
        for cidr in (net["podCidr"], net["serviceCidr"], net["ilbSubnetCidr"]):
            assert covered(cidr, peer["ipBlock"]["except"]), f"{cid}: backup egress reaches {cidr}"


def test_every_clinic_load_balancer_enforces_its_sources_at_the_nsg(stack: tuple[str, Run]) -> None:
    _, run = stack
    for cid, clinic in run.outputs["clinics"].items():
        [svc] = [s for s in run.k8s("Service", f"orca-{cid}") if s.inputs["spec"]["type"] == "LoadBalancer"]
        annotations = svc.inputs["metadata"]["annotations"]
        assert annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
        # Without this the NSG's default rule admits the whole VNet and the source ranges are moot.
        assert annotations["service.beta.kubernetes.io/azure-deny-all-except-load-balancer-source-ranges"] == "true"
        ranges = svc.inputs["spec"]["loadBalancerSourceRanges"]
        assert ranges and "0.0.0.0/0" not in ranges
        if clinic["privateIp"]:
            assert annotations["service.beta.kubernetes.io/azure-load-balancer-ipv4"] == clinic["privateIp"]


def test_credentials_are_kept_like_the_volume(stack: tuple[str, Run]) -> None:
    _, run = stack
    for cid in run.outputs["clinics"]:
        secrets: list[Registered] = [
            s for s in run.k8s("Secret", f"orca-{cid}") if s.inputs["metadata"]["name"] == "orca-credentials"
        ]
        assert len(secrets) == 1
        # The passwords are in the clinic's database: losing the Secret locks ORCA out of its own data.
        assert secrets[0].protect and secrets[0].retain_on_delete
