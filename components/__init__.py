"""Thin ComponentResources: each translates part of the StackPlan into provider resources.

A component never reads config or parses YAML; it receives plain models from `orca_platform`.
"""

from .cluster import Cluster, ClusterArgs
from .ingress_controller import IngressController, IngressControllerArgs
from .network import Network, NetworkArgs
from .orca_tenant import OrcaTenant, OrcaTenantArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "IngressController",
    "IngressControllerArgs",
    "Network",
    "NetworkArgs",
    "OrcaTenant",
    "OrcaTenantArgs",
]
