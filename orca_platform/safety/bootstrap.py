"""Whether a run deploys the Kubernetes layer: the first deployment of a private cluster takes two phases.

The Azure layer (network, VPN gateway, cluster, backup store) comes first. A private API server answers only inside
the VNet, which that same phase creates together with the VPN into it, so the Kubernetes layer can only follow once
the operator is on the VPN and resolves the cluster's private zone. A run that cannot reach the API server stops here,
naming the setting to change, instead of letting every Kubernetes object time out.
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_platform.model.settings import NAMESPACE, Settings

LAYER_KEY = f"{NAMESPACE}:cluster.kubernetesLayer"
PRIVATE_KEY = f"{NAMESPACE}:cluster.privateApiServer"
RANGES_KEY = f"{NAMESPACE}:cluster.authorizedIpRanges"


@dataclass(frozen=True)
class ApiServer:
    """The deployed cluster's API server as this machine sees it."""

    host: str  # the FQDN the kubeconfig points at (the private one for a private cluster)
    unreachable: str | None  # why a TCP connection to host:443 failed; None when it succeeded


@dataclass(frozen=True)
class Decision:
    deploy: bool
    fatal: bool
    message: str


def private_zone(settings: Settings) -> str:
    """The DNS zone of a private AKS API server in the stack's region (MS docs "Create a private AKS cluster")."""
    return f"privatelink.{settings.location}.azmk8s.io"


def kubernetes_layer(settings: Settings, api: ApiServer | None, config_file: str) -> Decision:
    """Deploy, skip (phase 1) or stop. `api` is None while the cluster does not exist yet."""
    private = settings.cluster.private_api_server
    if not settings.cluster.kubernetes_layer:
        if api is not None and api.unreachable is None:
            return Decision(
                False,
                True,
                f"{config_file}: {LAYER_KEY} is false, but the API server {api.host} answers from here: set it to "
                "true. Without the Kubernetes layer Pulumi would plan to delete this stack's Kubernetes objects.",
            )
        how = (
            f"connect this machine to the VPN with DNS for {private_zone(settings)} forwarded to the stack output "
            "dnsResolverInboundIp"
            if private
            else f"make sure this machine's egress address is in {RANGES_KEY}"
        )
        return Decision(
            False,
            False,
            f"phase 1: the Kubernetes layer is skipped ({LAYER_KEY} is false in {config_file}). Once the Azure layer "
            f'is up, {how}, set {LAYER_KEY} to true and run pulumi up again (README, "First deployment").',
        )
    if api is None:
        if private:
            return Decision(
                False,
                True,
                f"{config_file}: first deployment of a private API server ({PRIVATE_KEY} is true): set {LAYER_KEY} "
                "to false for phase 1. The API server will answer only over the VPN that phase creates; then set "
                'it back to true from a machine on the VPN (README, "First deployment").',
            )
        return Decision(True, False, "")
    if api.unreachable is None:
        return Decision(True, False, "")
    if private:
        fix = (
            f"It is private: run from a machine on the VPN whose DNS forwards {private_zone(settings)} to the stack "
            f"output dnsResolverInboundIp, or set {LAYER_KEY} to false to update the Azure layer alone."
        )
    else:
        fix = f"Add this machine's egress address to {RANGES_KEY}, or set {LAYER_KEY} to false to update Azure alone."
    return Decision(
        False,
        True,
        f"{config_file}: the Kubernetes API server {api.host} cannot be reached from here ({api.unreachable}). {fix}",
    )
