"""Network exposure: who can reach a clinic's server.

Internal load balancers and the internal ingress only, each front door allow-listed to the clinic's own networks,
PostgreSQL never exposed, and one public IP in the whole platform: the VPN gateway's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..conventions import (
    INTERNAL_LB,
    LB_DENY_OTHERS,
    LB_IPV4,
    NGINX_POLICIES,
    POSTGRES_PORT,
)
from .context import RuleContext, clinic_of, each_clinic_namespace
from .kubernetes import public_lb_in_values
from .registry import Domain, Finding, M
from .values import as_list, as_map, as_text, dig, is_unknown, number
from .view import ResourceView

DOMAIN = Domain(
    "Network exposure",
    (
        "Who can reach a clinic's server: internal load balancers and the internal ingress only, each clinic closed "
        "to the others."
    ),
)
rule = DOMAIN.rule


ANY_SOURCE = frozenset({"*", "internet", "any", "0.0.0.0/0", "::/0"})


@rule(
    "lb-internal",
    "Every LoadBalancer Service is internal",
    "Without the internal annotation AKS gives the Service a public IP: a clinic's ORCA would face the Internet.",
    M,
    what=f'every `LoadBalancer` Service has `{INTERNAL_LB}: "true"`',
)
def _lb_internal(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
        flag = v.annotations.get(INTERNAL_LB)
        if not is_unknown(flag) and as_text(flag).lower() != "true":
            yield f'{v.display} is a public LoadBalancer (annotation {INTERNAL_LB}: "true" is missing)'


@rule(
    "no-nodeport",
    "No NodePort Services and no external IPs",
    "A NodePort opens the port on every node; externalIPs route outside traffic to the Service. Clinics reach ORCA "
    "through their internal load balancer or the internal ingress only.",
    M,
    what="no `NodePort` Service, no `externalIPs`",
)
def _no_nodeport(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Service":
        return
    if as_text(dig(v.props, "spec", "type")) == "NodePort":
        yield f"{v.display} is of type NodePort"
    if as_list(dig(v.props, "spec", "externalIPs")):
        yield f"{v.display} has externalIPs"


@rule(
    "helm-lb-internal",
    "Load balancers created by Helm charts are internal",
    "A chart's Service (the ingress controller's, in front of every clinic) is not a resource of its own in the "
    "stack: its values are where a public load balancer would be asked for.",
    M,
    what="a Helm release's values ask for no LoadBalancer without the internal annotation",
)
def _helm_lb(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type.startswith("kubernetes:helm.sh/"):
        for path in public_lb_in_values(as_map(v.props.get("values")), "values"):
            yield f'Helm release {v.name}: {path} asks for a LoadBalancer without {INTERNAL_LB}: "true"'


@rule(
    "ingress-internal-class",
    "Ingresses use only the internal ingress class",
    "The internal class is served by the controller behind the private load balancer; any other class (or the "
    "cluster default) may be served by a public one.",
    M,
    what=(
        "every Ingress names an internal class (`orca-internal`, or one served by an internal Helm-installed "
        "controller)"
    ),
)
def _ingress_class(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Ingress":
        return
    cls = dig(v.props, "spec", "ingressClassName")
    if is_unknown(cls):
        return
    name = as_text(cls) or as_text(v.annotations.get("kubernetes.io/ingress.class"))
    if not name:
        yield f"{v.display} names no ingress class (the cluster default would serve it)"
    elif name not in ctx.ingress_classes:
        yield f"{v.display} uses class {name}, not an internal one ({', '.join(sorted(ctx.ingress_classes))})"


@rule(
    "clinic-front-door-allow-listed",
    "Every clinic front door admits only the clinic's own networks",
    "Staff reach a clinic through its own internal load balancer or through the shared ingress controller, whose "
    "VPN routes carry every site's ranges: its load balancer needs source ranges enforced on the NSG (the deny-all "
    "annotation), and its Ingress an NGINX Policy allow-list, or another clinic's staff reach its records.",
    M,
    what=(
        "a clinic's LoadBalancer Service has `loadBalancerSourceRanges` and "
        f'`{LB_DENY_OTHERS.rsplit("/", 1)[-1]}: "true"`; a clinic\'s Ingress names an NGINX Policy '
        f"(`{NGINX_POLICIES}`)"
    ),
)
def _front_door_allow_listed(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if clinic_of(v, ctx) is None:
        return
    if v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
        ranges = dig(v.props, "spec", "loadBalancerSourceRanges")
        if not is_unknown(ranges) and not as_list(ranges):
            yield f"{v.display} is a clinic load balancer without loadBalancerSourceRanges"
        flag = v.annotations.get(LB_DENY_OTHERS)
        if not is_unknown(flag) and as_text(flag).lower() != "true":
            yield (
                f'{v.display} lacks {LB_DENY_OTHERS}: "true" (without it the NSG admits the '
                "whole VNet whatever its source ranges)"
            )
    elif v.kind == "Ingress":
        named = v.annotations.get(NGINX_POLICIES)
        if not is_unknown(named) and not as_text(named).strip():
            yield f"{v.display} of a clinic names no allow-list Policy ({NGINX_POLICIES})"


def _port_numbers(port: Mapping[str, Any]) -> set[float]:
    return {n for n in (number(port.get("port")), number(port.get("targetPort"))) if n is not None}


@rule(
    "postgres-not-exposed",
    "PostgreSQL is never exposed outside its pod",
    "ORCA's database listens inside the pod only; a Service or a NetworkPolicy admitting 5432 would let other "
    "workloads (or networks) reach patient data without ORCA's checks.",
    M,
    what="no Service port and no NetworkPolicy ingress rule for 5432",
)
def _postgres(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Service":
        for port in as_list(dig(v.props, "spec", "ports")):
            if POSTGRES_PORT in _port_numbers(as_map(port)):
                yield f"{v.display} exposes port {POSTGRES_PORT}"
    elif v.kind == "NetworkPolicy":
        for rule in as_list(dig(v.props, "spec", "ingress")):
            for port in as_list(dig(rule, "ports")):
                if number(dig(port, "port")) == POSTGRES_PORT:
                    yield f"{v.display} admits traffic to port {POSTGRES_PORT}"


def _nsg_rules(v: ResourceView) -> list[Mapping[str, Any]]:
    if v.type == "azure-native:network:NetworkSecurityGroup":
        return [as_map(r) for r in as_list(v.props.get("securityRules"))]
    if v.type == "azure-native:network:SecurityRule":
        return [v.props]
    return []


@rule(
    "nsg-no-internet-inbound",
    "No network security rule admits the Internet",
    "Clinics reach the platform over the VPN only; an inbound Allow from any source opens the VNet to the world.",
    M,
    what="no NSG rule allows inbound traffic from `*`, `Internet`, `0.0.0.0/0`",
)
def _nsg(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for r in _nsg_rules(v):
        if as_text(r.get("direction")).lower() != "inbound" or as_text(r.get("access")).lower() != "allow":
            continue
        sources = [as_text(r.get("sourceAddressPrefix")), *map(as_text, as_list(r.get("sourceAddressPrefixes")))]
        if any(s.lower() in ANY_SOURCE for s in sources if s):
            yield f"{v.display}: rule {as_text(r.get('name')) or '?'} allows inbound traffic from any source"


PUBLIC_IP_TYPES = ("azure-native:network:PublicIPAddress", "azure-native:network:PublicIPPrefix")


def _references(holder: ResourceView, target: ResourceView) -> bool:
    """Does `holder` point at `target` (by its Azure id in the properties, or by a dependency on its URN)?"""
    if target.urn and target.urn in holder.dependencies:
        return True
    return bool(target.id) and target.id in json.dumps(holder.props, default=str)


@rule(
    "single-public-ip",
    "The platform has exactly one public IP, and it is the VPN gateway's",
    "IPsec needs one reachable peer address; anything else public is an exposure nobody asked for.",
    M,
    scope="stack",
    what="exactly one `PublicIPAddress`/`PublicIPPrefix`, and it is the VPN gateway's",
)
def _single_public_ip(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    ips = [v for v in views if v.type in PUBLIC_IP_TYPES]
    gateways = [v for v in views if v.type == "azure-native:network:VirtualNetworkGateway"]
    if len(ips) != 1:
        names = ", ".join(v.display for v in ips) or "none"
        yield Finding(f"expected exactly one public IP (the VPN gateway's); found {len(ips)}: {names}")
    for ip in ips:
        if not any(_references(g, ip) for g in gateways):
            yield Finding(f"{ip.display} is not attached to the VPN gateway", view=ip)


def _is_default_deny(v: ResourceView) -> bool:
    spec = as_map(v.props.get("spec"))
    selector = as_map(spec.get("podSelector"))
    selects_all = not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))
    types = {as_text(t) for t in as_list(spec.get("policyTypes"))}
    return selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress")


@rule(
    "clinic-default-deny",
    "Every clinic namespace starts closed (default-deny NetworkPolicy)",
    "Only what a policy admits may reach a clinic's pods or leave them; a missing default-deny lets any pod in "
    "the cluster talk to that clinic's ORCA.",
    M,
    scope="stack",
    what=(
        "every clinic namespace has a NetworkPolicy selecting all pods with `policyTypes: [Ingress, Egress]` and no "
        "rules"
    ),
)
def _default_deny(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    denied = {v.namespace for v in views if v.kind == "NetworkPolicy" and _is_default_deny(v)}
    for ns, clinic, namespace in each_clinic_namespace(views, ctx):
        if ns not in denied:
            yield Finding(f"clinic namespace {ns} has no default-deny NetworkPolicy", view=namespace, clinic=clinic)


@rule(
    "unique-clinic-endpoints",
    "No two clinics share a host name or a private IP",
    "A shared name or address sends one clinic's staff to another clinic's patient records.",
    M,
    scope="stack",
    what="no two namespaces share an Ingress host or a pinned load-balancer IP",
)
def _unique_endpoints(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    hosts: dict[str, set[str]] = defaultdict(set)
    ips: dict[str, set[str]] = defaultdict(set)
    for v in views:
        if v.kind == "Ingress":
            for rule in as_list(dig(v.props, "spec", "rules")):
                host = as_text(dig(rule, "host")).lower()
                if host:
                    hosts[host].add(v.namespace)
        elif v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
            ip = as_text(v.annotations.get(LB_IPV4)) or as_text(dig(v.props, "spec", "loadBalancerIP"))
            if ip:
                ips[ip].add(v.namespace)
    for what, seen in (("host name", hosts), ("private IP", ips)):
        for value, namespaces in sorted(seen.items()):
            if len(namespaces) > 1:
                yield Finding(f"{what} {value} is used in several namespaces: {', '.join(sorted(namespaces))}")
