"""The isolation proof's outside half: which source networks each clinic's server admits, compared across clinics.

tools/checks/isolation.py proves that no pod of another clinic reaches a clinic. This module asks the same of the
networks
outside the cluster, the clinics' LANs behind the VPN. For each clinic namespace it collects, from the rendered
objects, every source range admitted to its server:
- LoadBalancer Services: `spec.loadBalancerSourceRanges` and the `azure-allowed-ip-ranges` annotation (none of
  either: every source). cloud-provider-azure turns them into NSG rules for the frontend; kube-proxy and Cilium
  enforce them on the node as well;
- the ingress allow-list: F5 NGINX `Policy` objects (k8s.nginx.org/v1, `spec.accessControl.allow`, or everything but
  `deny`) named by the clinic's Ingresses in `nginx.org/policies`; an Ingress with no access-control policy admits
  whatever reaches the controller;
- NetworkPolicy (and CiliumNetworkPolicy) ingress ipBlocks;
- Azure NSG rules whose destination is the clinic's own frontend address. Rules for a whole subnet (destination `*`,
  a service tag, or a prefix holding the subnet) are the platform's perimeter, the same for every clinic: they are
  reported as a note, since separating clinics is the other layers' work.

Then for every two clinics that do not share a network (tenants.yaml `sharedNetwork`), nothing admitted to one may
overlap a range of the other: its own sourceCidrs or what its server admits. VPN site ranges that serve no clinic are
notes: a tunnel nobody's server admits is harmless, and often a site being connected before its clinic moves in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orca_platform.conventions import LB_ALLOWED_RANGES, LB_IPV4, NGINX_POLICIES
from tools.checks.isolation import Facts
from tools.checks.netpol import IpSet, build_cluster

LB_RANGES = LB_ALLOWED_RANGES
NSG_TYPE = "azure-native:network:NetworkSecurityGroup"
RULE_TYPE = "azure-native:network:SecurityRule"
# NGINX Ingress Controller resources that route to a Service without an Ingress: not modelled here.
UNMODELLED_ROUTES = {
    ("k8s.nginx.org", "VirtualServer"),
    ("k8s.nginx.org", "VirtualServerRoute"),
    ("k8s.nginx.org", "TransportServer"),
}
# Service tags that stand for every address a VPN site has: VirtualNetwork includes the connected on-premises ranges.
EVERY_SOURCE = {"*", "any", "internet", "virtualnetwork", "0.0.0.0/0"}


@dataclass(frozen=True)
class Admission:
    """One layer's admission to a clinic's server: where it comes from and the addresses it lets in."""

    via: str
    addresses: IpSet


@dataclass
class AdmissionReport:
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pairs_checked: int = 0


def _group(doc: Mapping[str, Any]) -> str:
    api = str(doc.get("apiVersion") or "")
    return api.split("/", maxsplit=1)[0] if "/" in api else ""


def _meta(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return doc.get("metadata") or {}


def _ranges(values: Iterable[Any]) -> IpSet:
    out = IpSet()
    for v in values:
        text = str(v).strip()
        out = out | (IpSet.everything() if text.lower() in EVERY_SOURCE else IpSet.of(text))
    return out


def _service_admissions(doc: Mapping[str, Any]) -> list[Admission]:
    spec = doc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return []
    name = _meta(doc).get("name")
    ranges = list(spec.get("loadBalancerSourceRanges") or [])
    annotated = str((_meta(doc).get("annotations") or {}).get(LB_RANGES) or "")
    ranges += [r for r in annotated.split(",") if r.strip()]
    if not ranges:
        return [Admission(f"Service {name} (no loadBalancerSourceRanges)", IpSet.everything())]
    return [Admission(f"Service {name} loadBalancerSourceRanges", _ranges(ranges))]


def _ingress_admissions(ingress: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]]) -> list[Admission]:
    """What an Ingress lets through the controller: the union over its access-control policies' allow-lists."""
    name = _meta(ingress).get("name")
    named = str((_meta(ingress).get("annotations") or {}).get(NGINX_POLICIES) or "")
    out = []
    for ref in (r.strip() for r in named.split(",") if r.strip()):
        policy = policies.get(ref.split("/")[-1])
        access = ((policy or {}).get("spec") or {}).get("accessControl") if policy else None
        if access is None:
            continue
        if access.get("allow") is not None:
            out.append(Admission(f"Ingress {name} Policy {ref} accessControl.allow", _ranges(access["allow"])))
        else:
            denied = _ranges(access.get("deny") or [])
            out.append(Admission(f"Ingress {name} Policy {ref} accessControl.deny", IpSet.everything() - denied))
    if not out:
        return [Admission(f"Ingress {name} (no {NGINX_POLICIES} access control)", IpSet.everything())]
    return out


def _nsg_rules(azure: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    for res in azure:
        inputs = res.get("inputs") or {}
        if res.get("type") == NSG_TYPE:
            out += [(f"NSG {res.get('name')} rule {r.get('name')}", r) for r in inputs.get("securityRules") or []]
        elif res.get("type") == RULE_TYPE:
            out.append((f"NSG rule {res.get('name')}", inputs))
    return out


def _prefixes(rule: Mapping[str, Any], which: str) -> list[str]:
    one = rule.get(f"{which}AddressPrefix")
    return [str(p) for p in ([one] if one else []) + list(rule.get(f"{which}AddressPrefixes") or [])]


def _concrete(prefixes: Sequence[str]) -> IpSet | None:
    """The addresses of CIDR/IP prefixes; None when any is `*` or a service tag (a rule for everything there)."""
    out = IpSet()
    for p in prefixes:
        try:
            out = out | IpSet.of(ipaddress.ip_network(p, strict=False))
        except ValueError:
            return None
    return out


def _nsg_admissions(
    azure: Sequence[Mapping[str, Any]], frontends: Mapping[str, ipaddress.IPv4Address], subnet: IpSet, vpn: IpSet
) -> tuple[dict[str, list[Admission]], list[str]]:
    """NSG allow rules per clinic whose frontend they target specifically; notes on subnet-wide ones that let VPN
    sites in."""
    per_clinic: dict[str, list[Admission]] = {}
    notes = []
    for via, rule in _nsg_rules(azure):
        if str(rule.get("access")).lower() != "allow" or str(rule.get("direction")).lower() != "inbound":
            continue
        sources = _prefixes(rule, "source")
        if [s for s in sources if s.lower() == "azureloadbalancer"]:
            continue  # the load balancer's health probes, from 168.63.129.16
        admitted = _ranges(sources)
        destinations = _concrete(_prefixes(rule, "destination"))
        if destinations is None or subnet.issubset(destinations):
            if admitted & vpn:
                notes.append(
                    f"{via} admits VPN ranges {admitted & vpn} to every address of its subnet: clinics are kept "
                    "apart by their Services' source ranges, the ingress allow-list and the NetworkPolicies"
                )
            continue
        for clinic, ip in frontends.items():
            if ip in destinations:
                per_clinic.setdefault(clinic, []).append(Admission(f"{via} (to {ip})", admitted))
    return per_clinic, notes


def admissions(
    docs: Sequence[Mapping[str, Any]], azure: Sequence[Mapping[str, Any]], facts: Facts
) -> tuple[dict[str, list[Admission]], list[str], list[str]]:
    """clinic id -> what its server admits; plus findings (what cannot be read) and notes."""
    clinic_ns = {
        str(_meta(d).get("name")): str((_meta(d).get("labels") or {}).get(facts.clinic_label))
        for d in docs
        if d.get("kind") == "Namespace" and facts.clinic_label in (_meta(d).get("labels") or {})
    }
    found: dict[str, list[Admission]] = {c: [] for c in clinic_ns.values()}
    findings: list[str] = []
    frontends: dict[str, ipaddress.IPv4Address] = {}
    by_ns: dict[str, list[Mapping[str, Any]]] = {}
    for d in docs:
        by_ns.setdefault(str(_meta(d).get("namespace") or ""), []).append(d)
    for ns, clinic in clinic_ns.items():
        objects = by_ns.get(ns, [])
        policies = {
            str(_meta(d).get("name")): d for d in objects if (_group(d), d.get("kind")) == ("k8s.nginx.org", "Policy")
        }
        for d in objects:
            kind = d.get("kind")
            if kind == "Service":
                found[clinic] += _service_admissions(d)
                ip = (_meta(d).get("annotations") or {}).get(LB_IPV4) or (d.get("spec") or {}).get("loadBalancerIP")
                if ip:
                    frontends[clinic] = ipaddress.IPv4Address(str(ip))
            elif kind == "Ingress" and _group(d) == "networking.k8s.io":
                found[clinic] += _ingress_admissions(d, policies)
            elif (_group(d), kind) in UNMODELLED_ROUTES:
                findings.append(f"{ns}: {kind} {_meta(d).get('name')} is not modelled, so its sources are unknown")
    cluster, _pods, _problems = build_cluster(docs, facts.ipblock_selects_pods)
    for policy in cluster.policies:
        owner = clinic_ns.get(policy.namespace)
        if owner is None:
            continue
        for rule in policy.ingress:
            blocks = [p.ip_block for p in rule.peers if p.ip_block is not None]
            for block in blocks:
                found[owner].append(Admission(f"{policy.kind} {policy.name} ipBlock {block.cidr}", block.addresses()))
    vpn = _union(IpSet.of(*ranges) for ranges in facts.vpn_ranges.values())
    nsg, notes = _nsg_admissions(azure, frontends, IpSet.of(facts.ilb_subnet), vpn)
    for clinic, items in nsg.items():
        found.setdefault(clinic, []).extend(items)
    return found, findings, notes


def prove_admission(
    docs: Sequence[Mapping[str, Any]], azure: Sequence[Mapping[str, Any]], facts: Facts
) -> AdmissionReport:
    report = AdmissionReport()
    found, report.findings, report.notes = admissions(docs, azure, facts)
    shared = facts.shared_networks
    own = {c: IpSet.of(*facts.source_cidrs.get(c, ())) for c in found}
    reach = {c: own[c] | _union(a.addresses for a in items) for c, items in found.items()}
    internal = IpSet.of(facts.pod_cidr, facts.service_cidr, facts.ilb_subnet)
    for clinic in sorted(found):
        others = [o for o in sorted(found) if o != clinic and not _trusted(clinic, o, shared)]
        for a in found[clinic]:
            for other in others:
                report.pairs_checked += 1
                overlap = (a.addresses - internal) & reach[other]
                if overlap:
                    report.findings.append(
                        f"clinic {clinic}: {a.via} admits {overlap}, a network of clinic {other} "
                        "(they share no network)"
                    )
    report.notes += _idle_vpn_ranges(facts)
    return report


def _union(sets: Iterable[IpSet]) -> IpSet:
    out = IpSet()
    for s in sets:
        out = out | s
    return out


def _trusted(a: str, b: str, shared: Mapping[str, str]) -> bool:
    return a in shared and shared.get(a) == shared.get(b)


def _idle_vpn_ranges(facts: Facts) -> list[str]:
    """VPN ranges no clinic lists in its sourceCidrs: tunnels that reach no clinic's server."""
    used = _union(IpSet.of(*cidrs) for cidrs in facts.source_cidrs.values())
    notes = []
    for site, ranges in sorted(facts.vpn_ranges.items()):
        for r in ranges:
            if not IpSet.of(r) & used:
                notes.append(f"VPN {site} range {r} serves no clinic (no clinic lists it in sourceCidrs)")
    return notes
