"""Kubernetes NetworkPolicy semantics as pure functions, and the tenant-isolation proof over rendered objects.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
CROSS_CHECK_ALL = 40  # clinics up to which every pair is evaluated concretely
WORKLOAD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# Policy kinds this evaluator does not model; their presence makes the proof incomplete, which is a finding.
UNMODELLED_POLICY_KINDS = {
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("networking.k8s.io", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"),
    ("projectcalico.org", "NetworkPolicy"),
    ("crd.projectcalico.org", "NetworkPolicy"),
}


class PolicyError(ValueError):
    """A NetworkPolicy the API server would reject, or one this evaluator cannot read."""


# --- label selectors -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    """A metav1.LabelSelector: the conjunction of its requirements; no requirement selects everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None) -> Selector:
        if doc is None:
            return cls()
        reqs = [Requirement(k, "In", frozenset([str(v)])) for k, v in sorted((doc.get("matchLabels") or {}).items())]
        for expr in doc.get("matchExpressions") or []:
            op = expr.get("operator")
            values = frozenset(str(v) for v in expr.get("values") or [])
            if op in ("In", "NotIn") and not values:
                raise PolicyError(f"selector requirement {expr.get('key')} {op} needs values")
            if op in ("Exists", "DoesNotExist") and values:
                raise PolicyError(f"selector requirement {expr.get('key')} {op} takes no values")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise PolicyError(f"unknown selector operator {op!r}")
            reqs.append(Requirement(str(expr["key"]), str(op), values))
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def also(self, *extra: Requirement) -> Selector:
        return Selector(self.requirements + extra)

    def witness(self) -> dict[str, str] | None:
        """Labels that satisfy every requirement, or None when no label set can (the selector is empty)."""
        keys: dict[str, list[Requirement]] = {}
        for r in self.requirements:
            keys.setdefault(r.key, []).append(r)
        labels: dict[str, str] = {}
        for key, reqs in keys.items():
            allowed: set[str] | None = None
            forbidden: set[str] = set()
            must_exist = must_not_exist = False
            for r in reqs:
                if r.operator == "In":
                    allowed = set(r.values) if allowed is None else allowed & r.values
                    must_exist = True
                elif r.operator == "NotIn":
                    forbidden |= r.values
                elif r.operator == "Exists":
                    must_exist = True
                else:
                    must_not_exist = True
            if must_not_exist:
                if must_exist:
                    return None
                continue
            if allowed is not None:
                choices = sorted(allowed - forbidden)
                if not choices:
                    return None
                labels[key] = choices[0]
            elif must_exist:
                labels[key] = _fresh(forbidden)
        return labels

    def satisfiable(self) -> bool:
        return self.witness() is not None

    def forces(self, key: str, value: str) -> bool:
        """Whether every label set this selector matches carries key=value."""
        return not self.also(Requirement(key, "NotIn", frozenset([value]))).satisfiable()

    def __str__(self) -> str:
        if not self.requirements:
            return "{}"
        parts = []
        for r in self.requirements:
            if r.operator == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator} ({','.join(sorted(r.values))})")
            else:
                parts.append(f"{r.key} {r.operator}")
        return "{" + ", ".join(parts) + "}"


def _fresh(taken: set[str]) -> str:
    n = 0
    while f"any-{n}" in taken:
        n += 1
    return f"any-{n}"


# --- address sets ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IpSet:
    """A set of IP addresses as sorted, disjoint, inclusive integer ranges per IP version."""

    ranges: tuple[tuple[int, int, int], ...] = ()  # (version, first, last)

    @classmethod
    def of(cls, *cidrs: str | IPNetwork) -> IpSet:
        out = cls()
        for c in cidrs:
            net = ipaddress.ip_network(c, strict=False) if isinstance(c, str) else c
            out = out | cls(((net.version, int(net.network_address), int(net.broadcast_address)),))
        return out

    @classmethod
    def everything(cls) -> IpSet:
        return cls.of("0.0.0.0/0", "::/0")

    def __or__(self, other: IpSet) -> IpSet:
        merged: list[tuple[int, int, int]] = []
        for v, lo, hi in sorted(self.ranges + other.ranges):
            if merged and merged[-1][0] == v and lo <= merged[-1][2] + 1:
                merged[-1] = (v, merged[-1][1], max(hi, merged[-1][2]))
            else:
                merged.append((v, lo, hi))
        return IpSet(tuple(merged))

    def __sub__(self, other: IpSet) -> IpSet:
        out: list[tuple[int, int, int]] = []
        for v, lo, hi in self.ranges:
            pieces = [(lo, hi)]
            for ov, olo, ohi in other.ranges:
                if ov != v:
                    continue
                nxt: list[tuple[int, int]] = []
                for plo, phi in pieces:
                    if ohi < plo or olo > phi:
                        nxt.append((plo, phi))
                        continue
                    if plo < olo:
                        nxt.append((plo, olo - 1))
                    if ohi < phi:
                        nxt.append((ohi + 1, phi))
                pieces = nxt
            out.extend((v, a, b) for a, b in pieces)
        return IpSet(()) | IpSet(tuple(out))

    def __and__(self, other: IpSet) -> IpSet:
        return self - (self - other)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        n = int(ip)
        return any(v == ip.version and lo <= n <= hi for v, lo, hi in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def issubset(self, other: IpSet) -> bool:
        return not (self - other)

    def cidrs(self) -> list[str]:
        out: list[str] = []
        for v, lo, hi in self.ranges:
            cls = ipaddress.IPv4Address if v == 4 else ipaddress.IPv6Address
            out.extend(str(n) for n in ipaddress.summarize_address_range(cls(lo), cls(hi)))
        return out

    def __str__(self) -> str:
        return ", ".join(self.cidrs()) or "(none)"


# --- the policy model ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IpBlock:
    cidr: str
    except_: tuple[str, ...] = ()
    external_only: bool = False  # Cilium CIDR/world rules: never an endpoint of the cluster, whatever its address

    def addresses(self) -> IpSet:
        return IpSet.of(self.cidr) - IpSet.of(*self.except_)


@dataclass(frozen=True)
class Peer:
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None
    entity: str | None = None  # a Cilium entity that is neither a pod of the cluster's namespaces nor an address

    def __str__(self) -> str:
        if self.entity:
            return f"entity {self.entity}"
        if self.ip_block:
            exc = f" except {', '.join(self.ip_block.except_)}" if self.ip_block.except_ else ""
            return f"ipBlock {self.ip_block.cidr}{exc}"
        ns = f"namespaces {self.namespace_selector}" if self.namespace_selector is not None else "own namespace"
        return f"{ns}, pods {self.pod_selector if self.pod_selector is not None else '{}'}"


@dataclass(frozen=True)
class PortMatch:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol; str: a named container port
    end_port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return f"*/{self.protocol}"
        rng = f"{self.port}-{self.end_port}" if self.end_port else f"{self.port}"
        return f"{rng}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] = ()  # empty: every endpoint
    ports: tuple[PortMatch, ...] = ()  # empty: every port and protocol


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector
    types: frozenset[str]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    isolates: frozenset[str] | None = None  # directions it puts its pods in default deny; None: all its types
    kind: str = "NetworkPolicy"

    def isolating(self, direction: str) -> bool:
        return direction in (self.types if self.isolates is None else self.isolates)

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any]) -> Policy:
        meta = doc.get("metadata") or {}
        spec = doc.get("spec") or {}
        if "podSelector" not in spec:
            raise PolicyError(f"NetworkPolicy {meta.get('name')}: spec.podSelector is required")
        types = spec.get("policyTypes")
        if types is None:
            # The API's default: every policy affects ingress; egress only when it has an egress section.
            types = ["Ingress"] + (["Egress"] if spec.get("egress") is not None else [])
        if not set(types) <= {"Ingress", "Egress"}:
            raise PolicyError(f"NetworkPolicy {meta.get('name')}: unknown policyTypes {types}")
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name")),
            pod_selector=Selector.parse(spec.get("podSelector")),
            types=frozenset(types),
            ingress=tuple(_rule(r, "from") for r in spec.get("ingress") or []),
            egress=tuple(_rule(r, "to") for r in spec.get("egress") or []),
        )

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == "Ingress" else self.egress


def _rule(doc: Mapping[str, Any], peers_key: str) -> Rule:
    peers = []
    for p in doc.get(peers_key) or []:
        block = p.get("ipBlock")
        if block is not None and (p.get("podSelector") is not None or p.get("namespaceSelector") is not None):
            raise PolicyError("a peer with an ipBlock may not also have selectors")
        if block is not None:
            cidr = str(block["cidr"])
            excepts = tuple(str(e) for e in block.get("except") or [])
            outer = ipaddress.ip_network(cidr, strict=False)
            for e in excepts:
                inner = ipaddress.ip_network(e, strict=False)
                if inner.version != outer.version or not inner.subnet_of(outer):  # type: ignore[arg-type]
                    raise PolicyError(f"ipBlock except {e} is not inside {cidr}")
            peers.append(Peer(ip_block=IpBlock(cidr, excepts)))
            continue
        pod_sel, ns_sel = p.get("podSelector"), p.get("namespaceSelector")
        if pod_sel is None and ns_sel is None:
            raise PolicyError("a peer needs a podSelector, a namespaceSelector or an ipBlock")
        peers.append(
            Peer(
                pod_selector=Selector.parse(pod_sel) if pod_sel is not None else None,
                namespace_selector=Selector.parse(ns_sel) if ns_sel is not None else None,
            )
        )
    ports = []
    for port in doc.get("ports") or []:
        value = port.get("port")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        end = port.get("endPort")
        ports.append(PortMatch(str(port.get("protocol") or "TCP"), value, int(end) if end is not None else None))
    return Rule(tuple(peers), tuple(ports))


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any]) -> Namespace:
        meta = doc.get("metadata") or {}
        return cls.named(str(meta["name"]), meta.get("labels") or {})

    @classmethod
    def named(cls, name: str, labels: Mapping[str, str] | None = None) -> Namespace:
        return cls(name, {**(labels or {}), NAME_LABEL: name})


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    name: str = "pod"
    ports: tuple[ContainerPort, ...] = ()
    ip: IPAddress | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


Endpoint = Pod | IPAddress


def pods_from_manifest(doc: Mapping[str, Any]) -> list[Pod]:
    """The pod a workload object creates (its template), or the Pod itself; nothing for other kinds."""
    kind = str(doc.get("kind"))
    meta = doc.get("metadata") or {}
    if kind == "Pod":
        template: Mapping[str, Any] = doc
    elif kind in WORKLOAD_TEMPLATES:
        node: Any = doc
        for key in WORKLOAD_TEMPLATES[kind]:
            node = (node or {}).get(key)
        template = node or {}
    else:
        return []
    spec = template.get("spec") or {}
    ports = tuple(
        ContainerPort(int(p["containerPort"]), str(p.get("protocol") or "TCP"), p.get("name"))
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
    )
    labels = (template.get("metadata") or {}).get("labels") or {}
    return [Pod(str(meta.get("namespace") or "default"), dict(labels), f"{kind}/{meta.get('name')}", ports)]


# --- CiliumNetworkPolicy (the subset a namespaced policy needs) ------------------------------------------------

CILIUM_NAMESPACE_KEY = "io.kubernetes.pod.namespace"
CILIUM_NAMESPACE_LABELS = "io.cilium.k8s.namespace.labels."
# Entities (Cilium docs, "Entities based"): cluster and all include every pod; world is outside the cluster; the
# rest are the node, the API server and Cilium's own endpoints, none of them a pod in a namespace.
CILIUM_OTHER_ENTITIES = {"host", "remote-node", "kube-apiserver", "health", "init", "ingress", "unmanaged", "none"}
_CILIUM_PEER_KEYS = {
    "Ingress": {"fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"},
    "Egress": {"toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs"},
}
_CILIUM_OTHER_KEYS = {"toPorts", "icmps", "authentication"}


def cilium_policies(doc: Mapping[str, Any]) -> list[Policy]:
    """A CiliumNetworkPolicy as policies of this model: allow rules are unioned with every other policy's, and a
    direction with rules isolates its endpoints unless enableDefaultDeny turns that off. Deny rules only take away,
    so leaving them out over-approximates what is allowed, which is the safe side for a proof. Anything else
    (toServices, toGroups, toRequires, node selectors) is refused rather than guessed.
    """
    meta = doc.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    name = str(meta.get("name"))
    specs = ([doc["spec"]] if doc.get("spec") else []) + list(doc.get("specs") or [])
    out = []
    for spec in specs:
        if "endpointSelector" not in spec:
            raise PolicyError("only endpointSelector policies are modelled (not nodeSelector)")
        peer = _cilium_endpoints(spec["endpointSelector"])
        if peer.namespace_selector is not None:
            raise PolicyError("an endpointSelector may not name a namespace in a namespaced policy")
        rules: dict[str, tuple[Rule, ...]] = {}
        for direction, key in (("Ingress", "ingress"), ("Egress", "egress")):
            if spec.get(key) is not None or spec.get(key + "Deny") is not None:
                rules[direction] = tuple(_cilium_rule(r, direction) for r in spec.get(key) or [])
        deny = spec.get("enableDefaultDeny") or {}
        out.append(
            Policy(
                namespace=ns,
                name=name,
                pod_selector=peer.pod_selector or Selector(),
                types=frozenset(rules),
                ingress=rules.get("Ingress", ()),
                egress=rules.get("Egress", ()),
                isolates=frozenset(d for d in rules if deny.get(d.lower(), True)),
                kind="CiliumNetworkPolicy",
            )
        )
    return out


def _cilium_endpoints(doc: Mapping[str, Any]) -> Peer:
    """An endpoint selector: pod labels, plus the namespace name and namespace labels Cilium exposes as labels."""
    pod: list[Requirement] = []
    namespace: list[Requirement] = []
    for r in Selector.parse(doc).requirements:
        key = r.key.split(":", 1)[1] if r.key.startswith(("k8s:", "any:")) else r.key
        if key == CILIUM_NAMESPACE_KEY:
            namespace.append(Requirement(NAME_LABEL, r.operator, r.values))
        elif key.startswith(CILIUM_NAMESPACE_LABELS):
            namespace.append(Requirement(key.removeprefix(CILIUM_NAMESPACE_LABELS), r.operator, r.values))
        else:
            pod.append(Requirement(key, r.operator, r.values))
    return Peer(pod_selector=Selector(tuple(pod)), namespace_selector=Selector(tuple(namespace)) if namespace else None)


def _cilium_entity(entity: str, world: list[Peer]) -> list[Peer]:
    if entity == "cluster":
        return [Peer(pod_selector=Selector(), namespace_selector=Selector())]
    if entity == "all":
        return [Peer(pod_selector=Selector(), namespace_selector=Selector()), *world]
    if entity in ("world", "world-ipv4", "world-ipv6"):
        return world
    if entity in CILIUM_OTHER_ENTITIES:
        return [Peer(entity=entity)]
    raise PolicyError(f"unknown entity {entity!r}")


def _cilium_port(port: Mapping[str, Any]) -> list[PortMatch]:
    raw = str(port.get("port") or "")
    value: int | str | None = int(raw) if raw.isdigit() else raw or None
    if value == 0:
        value = None  # port 0 means every port
    end = port.get("endPort")
    protocol = str(port.get("protocol") or "ANY")
    return [
        PortMatch(p, value, int(end) if end else None)
        for p in (("TCP", "UDP", "SCTP") if protocol == "ANY" else (protocol,))
    ]


def _cilium_rule(doc: Mapping[str, Any], direction: str) -> Rule:
    unknown = set(doc) - _CILIUM_PEER_KEYS[direction] - _CILIUM_OTHER_KEYS
    if unknown:
        raise PolicyError(f"{direction.lower()} rule fields not modelled: {', '.join(sorted(unknown))}")
    prefix = "from" if direction == "Ingress" else "to"
    world = [Peer(ip_block=IpBlock(c, external_only=True)) for c in ("0.0.0.0/0", "::/0")]
    peers: list[Peer] = [_cilium_endpoints(e) for e in doc.get(prefix + "Endpoints") or []]
    for entity in doc.get(prefix + "Entities") or []:
        peers.extend(_cilium_entity(str(entity), world))
    peers.extend(Peer(ip_block=IpBlock(str(c), external_only=True)) for c in doc.get(prefix + "CIDR") or [])
    for c in doc.get(prefix + "CIDRSet") or []:
        if "cidr" not in c:
            raise PolicyError("only CIDRSet entries with a cidr are modelled (not cidrGroupRef)")
        peers.append(Peer(ip_block=IpBlock(str(c["cidr"]), tuple(str(e) for e in c.get("except") or []), True)))
    if doc.get("toFQDNs"):
        peers.extend(world)  # names resolve to addresses outside the cluster
    ports = [m for block in doc.get("toPorts") or [] for port in block.get("ports") or [{}] for m in _cilium_port(port)]
    has_peers = any(doc.get(k) for k in _CILIUM_PEER_KEYS[direction])
    if has_peers and not peers:
        raise PolicyError("a rule whose peers select nothing is not modelled")
    return Rule(tuple(peers), tuple(ports))


# --- evaluation ------------------------------------------------------------------------------------------------


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


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    pairs_checked: int = 0


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
            and str(annotations.get(f"service.beta.kubernetes.io/port_{p.get('port')}_no_lb_rule")).lower() != "true"
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
