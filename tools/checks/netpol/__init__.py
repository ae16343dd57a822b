"""A NetworkPolicy engine: the networking.k8s.io/v1 semantics (and the CiliumNetworkPolicy subset a namespaced policy
needs) as pure functions over rendered manifests. Nothing here knows about clinics; `tools.checks.isolation` builds the
platform's proof on it."""

from .addresses import IPAddress, IPNetwork, IpSet
from .evaluate import UNMODELLED_POLICY_KINDS, Cluster, build_cluster
from .policies import (
    NAME_LABEL,
    WORKLOAD_TEMPLATES,
    ContainerPort,
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
from .selectors import PolicyError, Requirement, Selector

__all__ = [
    "NAME_LABEL",
    "UNMODELLED_POLICY_KINDS",
    "WORKLOAD_TEMPLATES",
    "Cluster",
    "ContainerPort",
    "Endpoint",
    "IPAddress",
    "IPNetwork",
    "IpBlock",
    "IpSet",
    "Namespace",
    "Peer",
    "Pod",
    "Policy",
    "PolicyError",
    "PortMatch",
    "Requirement",
    "Rule",
    "Selector",
    "build_cluster",
    "cilium_policies",
    "pods_from_manifest",
]
