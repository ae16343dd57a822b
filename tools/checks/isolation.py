"""The tenant-isolation proof over rendered objects, on the NetworkPolicy engine of `tools.checks.netpol`.

The evaluator follows the networking.k8s.io/v1 API: a pod is isolated in a direction once any policy of its namespace
selects it with that policy type; then only the union of those policies' rules admits traffic. A rule with no peers
admits every endpoint, one with no ports every port; a peer with a namespaceSelector reaches into the namespaces it
matches, one without stays in the policy's namespace; an ipBlock admits its CIDR minus its `except` ranges.

Whether an ipBlock also selects *pods* whose addresses fall in its CIDR is left to the implementation by the API
(Calico and Azure NPM match pod addresses; Cilium applies CIDR rules to traffic from and to outside the cluster only).
`Cluster.ipblock_selects_pods` makes that choice explicit, and the proof is run under both readings.

The proof is symbolic where it matters: a tenant who may create pods in some namespace controls their labels, so for
each rule that lets traffic in, the question is which namespaces its peer can reach into at all (rendered namespaces
by evaluation, namespaces outside the stack by satisfiability of the selector) and, for the ingress controller's
namespace, whether the pod selector forces the ingress role. IP peers are compared as address sets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orca_platform.conventions import NO_LB_RULE
from tools.checks.netpol import (
    Cluster,
    IPAddress,
    IpSet,
    Peer,
    Pod,
    Policy,
    build_cluster,
)

CROSS_CHECK_ALL = 40  # clinics up to which every pair is evaluated concretely


# --- the isolation proof over rendered objects -----------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the proof compares the rendered objects with; each comes from a source other than the objects."""

    ingress_namespace: str
    ingress_role: tuple[str, str]  # (label, value) the controller's pods carry
    clinic_label: str  # namespace label naming the clinic
    source_cidrs: Mapping[str, Sequence[str]]  # clinic id -> its own networks (tenants file)
    pod_cidr: str
    service_cidr: str
    ilb_subnet: str  # where every clinic's internal load balancer frontend sits
    ipblock_selects_pods: bool  # the dataplane's reading of ipBlock (False for Cilium)
    # For the outside half (tools/checks/admission.py): clinic id -> the LAN it shares (tenants file), VPN site ->
    # ranges.
    shared_networks: Mapping[str, str] = field(default_factory=dict)
    vpn_ranges: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    pairs_checked: int = 0


def prove_isolation(docs: Sequence[Mapping[str, Any]], facts: Facts) -> Report:
    """Findings under the dataplane's ipBlock reading; advisories for what only the other reading would break."""
    report = _prove(docs, facts, facts.ipblock_selects_pods)
    other = _prove(docs, facts, not facts.ipblock_selects_pods)
    reading = (
        "where ipBlock matches pod addresses" if not facts.ipblock_selects_pods else "where ipBlock never matches pods"
    )
    report.advisories = [f"{f} ({reading})" for f in other.findings if f not in report.findings]
    return report


def _addresses(cidr: str) -> Iterator[IPAddress]:
    net = ipaddress.ip_network(cidr)
    first = int(net.network_address) + 1
    for n in range(first, first + net.num_addresses - 2):
        yield ipaddress.IPv4Address(n) if net.version == 4 else ipaddress.IPv6Address(n)


def _prove(docs: Sequence[Mapping[str, Any]], facts: Facts, ipblock_selects_pods: bool) -> Report:
    report = Report()
    cluster, pods, problems = build_cluster(docs, ipblock_selects_pods)
    report.findings.extend(problems)
    clinics = {
        name: ns.labels[facts.clinic_label]
        for name, ns in cluster.namespaces.items()
        if facts.clinic_label in ns.labels
    }
    if not clinics:
        report.findings.append(f"no namespace carries the clinic label {facts.clinic_label}: nothing to prove")
        return report
    if facts.ingress_namespace not in cluster.namespaces:
        report.findings.append(f"the ingress controller's namespace {facts.ingress_namespace} is not rendered")
    role_key, role_value = facts.ingress_role
    # Pod addresses for the concrete checks: one per pod, from the pod CIDR.
    hosts = _addresses(facts.pod_cidr)
    controller = Pod(facts.ingress_namespace, {role_key: role_value}, "ingress-controller", ip=next(hosts))
    by_ns: dict[str, list[Pod]] = {ns: [] for ns in clinics}
    for pod in pods:
        if pod.namespace in by_ns:
            by_ns[pod.namespace].append(Pod(pod.namespace, pod.labels, pod.name, pod.ports, next(hosts)))
    for ns in clinics:
        # Anyone who may create a pod in the namespace chooses its labels: an unlabelled pod stands for them.
        by_ns[ns].append(Pod(ns, {}, "any-other-pod", ip=next(hosts)))

    internal = IpSet.of(facts.pod_cidr, facts.service_cidr, facts.ilb_subnet)
    services = [d for d in docs if d.get("kind") == "Service" and (d.get("metadata") or {}).get("namespace") in clinics]
    for ns, clinic in sorted(clinics.items()):
        own = IpSet.of(*facts.source_cidrs.get(clinic, ()))
        if clinic not in facts.source_cidrs:
            report.findings.append(f"{ns}: clinic {clinic} is not in the tenants file")
        for pod in by_ns[ns]:
            report.findings.extend(_ingress_proof(cluster, pod, clinics, own, facts))
            report.findings.extend(_egress_proof(cluster, pod, clinics, internal))
        reach, problems = _reachability(cluster, ns, by_ns[ns], services, controller, own)
        report.findings.extend(problems)
        report.summary.append(f"{ns}: {reach}")
    report.pairs_checked = _cross_check(cluster, by_ns, facts.ingress_role, hosts, report.findings)
    return report


def _cross_check(
    cluster: Cluster,
    by_ns: Mapping[str, Sequence[Pod]],
    ingress_role: tuple[str, str],
    hosts: Iterator[IPAddress],
    findings: list[str],
) -> int:
    """Every pod of every other clinic, also wearing this clinic's labels and the ingress role, against every pod of
    this clinic on each port it declares (and two it does not). Quadratic in clinics, so a large stack compares each
    clinic with its next neighbours only; the symbolic proof covers all of them. Returns the connections evaluated.
    """
    checked = 0
    names = sorted(by_ns)
    for i, ns in enumerate(names):
        targets = by_ns[ns]
        others = names if len(names) <= CROSS_CHECK_ALL else [names[(i + k) % len(names)] for k in (1, 2, 3)]
        for other in others:
            if other == ns:
                continue
            sources = list(by_ns[other])
            sources.extend(Pod(other, dict(t.labels), f"impersonating {t.name}", ip=next(hosts)) for t in targets)
            sources.append(Pod(other, dict([ingress_role]), "impersonating the controller", ip=next(hosts)))
            for src in sources:
                for dst in targets:
                    for port, proto in {(p.port, p.protocol) for p in dst.ports} | {(5432, "TCP"), (443, "TCP")}:
                        checked += 1
                        if cluster.allowed(src, dst, port, proto):
                            findings.append(f"{src} ({src.name}) can connect to {dst} on {port}/{proto}")
    return checked


def _ingress_proof(cluster: Cluster, pod: Pod, clinics: Mapping[str, str], own: IpSet, facts: Facts) -> Iterator[str]:
    admissions = cluster.admissions(pod, "Ingress")
    where = str(pod)
    if admissions is None:
        yield f"{where}: no NetworkPolicy isolates it, so every pod and address reaches it"
        return
    for policy, _rule, peer in admissions:
        via = f"NetworkPolicy {policy.name}"
        if peer is None:
            yield f"{where}: {via} has an ingress rule without peers, admitting every source"
            continue
        if peer.ip_block is not None:
            extra = peer.ip_block.addresses() - own
            if extra:
                yield f"{where}: {via} admits {extra}, outside the clinic's sourceCidrs"
            pod_addresses = peer.ip_block.addresses() & IpSet.of(facts.pod_cidr)
            if cluster.ipblock_selects_pods and not peer.ip_block.external_only and pod_addresses:
                yield f"{where}: {via} {peer} covers pod addresses of every namespace ({facts.pod_cidr})"
            continue
        yield from (f"{where}: {via} {v}" for v in _selector_peer(cluster, pod, policy, peer, clinics, facts))


def _selector_peer(
    cluster: Cluster, pod: Pod, policy: Policy, peer: Peer, clinics: Mapping[str, str], facts: Facts
) -> Iterator[str]:
    """What a pod/namespace-selector peer admits beyond the clinic's own namespace and the ingress controller."""
    role_key, role_value = facts.ingress_role
    known, outside = cluster.peer_namespaces(peer, policy.namespace)
    if outside:
        yield f"admits pods of namespaces outside the stack ({peer})"
    for ns in sorted(known - {pod.namespace}):
        if ns == facts.ingress_namespace and peer.pod_selector is not None:
            if not peer.pod_selector.forces(role_key, role_value):
                yield f"admits pods of {ns} without the {role_key}={role_value} label ({peer})"
        elif ns in clinics:
            yield f"admits pods of clinic namespace {ns} ({peer})"
        else:
            yield f"admits pods of namespace {ns} ({peer})"


def _egress_proof(cluster: Cluster, pod: Pod, clinics: Mapping[str, str], internal: IpSet) -> Iterator[str]:
    admissions = cluster.admissions(pod, "Egress")
    where = str(pod)
    if admissions is None:
        yield f"{where}: no NetworkPolicy limits its egress, so it reaches every other clinic"
        return
    for policy, _rule, peer in admissions:
        via = f"NetworkPolicy {policy.name}"
        if peer is None:
            yield f"{where}: {via} has an egress rule without peers, reaching every other clinic"
            continue
        if peer.ip_block is not None:
            # Service and load-balancer addresses are translated to pod addresses before policy applies; where
            # ipBlock matches pods, a range covering them reaches other clinics' pods.
            covered = peer.ip_block.addresses() & internal
            if cluster.ipblock_selects_pods and not peer.ip_block.external_only and covered:
                yield f"{where}: {via} egress {peer} covers cluster-internal addresses {covered}"
            continue
        known, _outside = cluster.peer_namespaces(peer, policy.namespace)
        for ns in sorted(known & set(clinics)):
            if ns != pod.namespace:
                yield f"{where}: {via} egress reaches pods of clinic namespace {ns} ({peer})"


def _reachability(
    cluster: Cluster,
    ns: str,
    pods: Sequence[Pod],
    services: Sequence[Mapping[str, Any]],
    controller: Pod,
    own: IpSet,
) -> tuple[str, list[str]]:
    """The positive side: the clinic's Service backends answer the ingress controller, and the clinic's networks on
    the ports its own load balancer carries (none for a ClusterIP Service: those clinics come in through the ingress;
    a port annotated `port_<n>_no_lb_rule` is reached through the ingress too)."""
    problems: list[str] = []
    parts: list[str] = []
    probe = [ipaddress.ip_address(c.split("/")[0]) for c in own.cidrs()]
    for svc in services:
        if (svc.get("metadata") or {}).get("namespace") != ns:
            continue
        spec = svc.get("spec") or {}
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        direct = {
            int(p.get("port") or 0)
            for p in spec.get("ports") or []
            if spec.get("type") == "LoadBalancer"
            and str(annotations.get(NO_LB_RULE.format(port=p.get("port")))).lower() != "true"
        }
        selector = spec.get("selector") or {}
        backends = [p for p in pods if selector and all(p.labels.get(k) == v for k, v in selector.items())]
        svc_name = (svc.get("metadata") or {}).get("name")
        if not backends:
            problems.append(f"{ns}: Service {svc_name} selects no rendered pod")
        for backend in backends:
            for cp in backend.ports:
                port = f"{cp.port}/{cp.protocol}"
                if not cluster.allowed(controller, backend, cp.port, cp.protocol):
                    problems.append(f"{ns}: the ingress controller cannot reach {backend} on {port}")
                for ip in probe if cp.port in direct else []:
                    if not cluster.ingress_allowed(backend, ip, cp.port, cp.protocol):
                        problems.append(f"{ns}: the clinic's network {ip} cannot reach {backend} on {port}")
                parts.append(port + ("" if cp.port in direct else " (ingress only)"))
    reach = ", ".join(sorted(set(parts))) or "no ports"
    return f"reached on {reach} by the ingress controller and {own} only", problems
