"""Evaluation: which policies select a pod, and whether a connection between two endpoints is admitted both ways."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .policies import (
    NAME_LABEL,
    Endpoint,
    IpBlock,
    Namespace,
    Peer,
    Pod,
    Policy,
    PortMatch,
    Rule,
    cilium_policies,
    pods_from_manifest,
)
from .selectors import PolicyError, Requirement

# Policy kinds this evaluator does not model; their presence makes the proof incomplete, which is a finding.
UNMODELLED_POLICY_KINDS = {
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("networking.k8s.io", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"),
    ("projectcalico.org", "NetworkPolicy"),
    ("crd.projectcalico.org", "NetworkPolicy"),
}


@dataclass
class Cluster:
    namespaces: dict[str, Namespace]
    policies: list[Policy]
    ipblock_selects_pods: bool = True

    def namespace(self, name: str) -> Namespace:
        return self.namespaces.get(name) or Namespace.named(name)

    def selecting(self, pod: Pod, direction: str) -> list[Policy]:
        return [
            p
            for p in self.policies
            if p.namespace == pod.namespace and direction in p.types and p.pod_selector.matches(pod.labels)
        ]

    def isolated(self, pod: Pod, direction: str) -> bool:
        return any(p.isolating(direction) for p in self.selecting(pod, direction))

    def peer_matches(self, peer: Peer, policy_namespace: str, endpoint: Endpoint) -> bool:
        if peer.entity is not None:
            return False
        if peer.ip_block is not None:
            return self._block_matches(peer.ip_block, endpoint)
        if not isinstance(endpoint, Pod):
            return False
        if peer.namespace_selector is None:
            if endpoint.namespace != policy_namespace:
                return False
        elif not peer.namespace_selector.matches(self.namespace(endpoint.namespace).labels):
            return False
        return peer.pod_selector is None or peer.pod_selector.matches(endpoint.labels)

    def _block_matches(self, block: IpBlock, endpoint: Endpoint) -> bool:
        if not isinstance(endpoint, Pod):
            return endpoint in block.addresses()
        return (
            self.ipblock_selects_pods
            and not block.external_only
            and endpoint.ip is not None
            and endpoint.ip in block.addresses()
        )

    @staticmethod
    def port_matches(match: PortMatch, port: int, protocol: str, target: Endpoint) -> bool:
        """Named ports resolve on the pod the traffic goes to (the policy's pod for ingress, the peer for egress)."""
        if match.protocol != protocol:
            return False
        if match.port is None:
            return True
        if isinstance(match.port, str):
            return isinstance(target, Pod) and any(
                cp.name == match.port and cp.port == port and cp.protocol == protocol for cp in target.ports
            )
        return match.port <= port <= (match.end_port or match.port)

    def _admits(self, pod: Pod, direction: str, other: Endpoint, port: int, protocol: str) -> bool:
        selecting = self.selecting(pod, direction)
        if not self.isolated(pod, direction):
            return True  # not isolated: everything is allowed
        target = pod if direction == "Ingress" else other
        for policy in selecting:
            for rule in policy.rules(direction):
                if rule.ports and not any(self.port_matches(m, port, protocol, target) for m in rule.ports):
                    continue
                if not rule.peers or any(self.peer_matches(p, policy.namespace, other) for p in rule.peers):
                    return True
        return False

    def ingress_allowed(self, dst: Pod, src: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._admits(dst, "Ingress", src, port, protocol)

    def egress_allowed(self, src: Pod, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._admits(src, "Egress", dst, port, protocol)

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """A connection needs the source's egress and the destination's ingress (addresses have no policies)."""
        if isinstance(src, Pod) and not self.egress_allowed(src, dst, port, protocol):
            return False
        return not isinstance(dst, Pod) or self.ingress_allowed(dst, src, port, protocol)

    # symbolic questions for the proof

    def admissions(self, pod: Pod, direction: str) -> list[tuple[Policy, Rule, Peer | None]] | None:
        """Every (policy, rule, peer) that lets traffic through in a direction; peer None: the rule admits all.

        None when no policy isolates the pod in that direction, i.e. everything is admitted.
        """
        selecting = self.selecting(pod, direction)
        if not self.isolated(pod, direction):
            return None
        out: list[tuple[Policy, Rule, Peer | None]] = []
        for policy in selecting:
            for rule in policy.rules(direction):
                if not rule.peers:
                    out.append((policy, rule, None))
                out.extend((policy, rule, peer) for peer in rule.peers)
        return out

    def peer_namespaces(self, peer: Peer, policy_namespace: str) -> tuple[set[str], bool]:
        """Which known namespaces a selector peer reaches into, and whether a namespace outside them can match."""
        if peer.ip_block is not None or peer.entity is not None:
            return set(), False
        if peer.pod_selector is not None and not peer.pod_selector.satisfiable():
            return set(), False
        if peer.namespace_selector is None:
            return {policy_namespace}, False
        known = {n for n, ns in self.namespaces.items() if peer.namespace_selector.matches(ns.labels)}
        # Another namespace carries its own name label and labels we cannot see: it matches if the selector can be
        # satisfied with a name none of the known namespaces has.
        outside = peer.namespace_selector.also(
            Requirement(NAME_LABEL, "Exists"), Requirement(NAME_LABEL, "NotIn", frozenset(self.namespaces))
        ).satisfiable()
        return known, outside


def _api_group(doc: Mapping[str, Any]) -> str:
    api = str(doc.get("apiVersion") or "")
    return api.split("/", maxsplit=1)[0] if "/" in api else ""


def build_cluster(
    docs: Iterable[Mapping[str, Any]], ipblock_selects_pods: bool
) -> tuple[Cluster, list[Pod], list[str]]:
    """Namespaces, policies and workload pods of a set of manifests; plus the problems reading them."""
    namespaces: dict[str, Namespace] = {}
    policies: list[Policy] = []
    pods: list[Pod] = []
    problems: list[str] = []
    for doc in docs:
        kind = str(doc.get("kind"))
        name = (doc.get("metadata") or {}).get("name")
        if kind == "Namespace":
            ns = Namespace.from_manifest(doc)
            namespaces[ns.name] = ns
        elif kind == "NetworkPolicy" and _api_group(doc) == "networking.k8s.io":
            try:
                policies.append(Policy.from_manifest(doc))
            except (PolicyError, KeyError, ValueError) as exc:
                problems.append(f"NetworkPolicy {name}: {exc}")
        elif (_api_group(doc), kind) == ("cilium.io", "CiliumNetworkPolicy"):
            try:
                policies.extend(cilium_policies(doc))
            except (PolicyError, KeyError, ValueError) as exc:
                problems.append(f"CiliumNetworkPolicy {name}: {exc}")
        elif (_api_group(doc), kind) in UNMODELLED_POLICY_KINDS:
            problems.append(f"{kind} {name}: this policy kind is not modelled, so isolation cannot be proven")
        else:
            pods.extend(pods_from_manifest(doc))
    return Cluster(namespaces, policies, ipblock_selects_pods), pods, problems
