"""The networking.k8s.io/v1 NetworkPolicy model, the pods of rendered workloads, and the CiliumNetworkPolicy subset
a namespaced policy needs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orca_platform.conventions import NAMESPACE_NAME_LABEL, POD_TEMPLATE_PATHS

from .addresses import IPAddress, IpSet
from .selectors import PolicyError, Requirement, Selector

NAME_LABEL = NAMESPACE_NAME_LABEL  # set by the API server on every namespace
WORKLOAD_TEMPLATES = POD_TEMPLATE_PATHS


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
