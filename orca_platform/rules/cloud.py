"""Azure services and the cluster: private endpoints, hardened storage, a private, Entra-governed control plane."""

from __future__ import annotations

from collections.abc import Iterator

from .context import RuleContext, environment_of, is_prod
from .exposure import ANY_SOURCE
from .registry import A, Domain, M
from .values import as_list, as_map, as_text, dig, is_unknown, truthy, unwrap
from .view import ResourceView

DOMAIN = Domain(
    "Azure services and the cluster",
    (
        "The Azure resources around the clinics: private endpoints, hardened storage, a private control plane "
        "governed by Entra ID."
    ),
)
rule = DOMAIN.rule


@rule(
    "public-network-access-disabled",
    "Azure services are reached over private endpoints only",
    "publicNetworkAccess Enabled puts a service's endpoint (storage, key vault, database) on the Internet, "
    "guarded only by keys or tokens.",
    M,
    what=(
        "no Azure resource sets `publicNetworkAccess: Enabled`; storage accounts set it to `Disabled` (Azure's "
        "default is Enabled)"
    ),
)
def _public_access(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not v.type.startswith("azure-native:"):
        return
    value = v.props.get("publicNetworkAccess")
    if is_unknown(unwrap(value)):
        return
    text = as_text(value)
    if text.lower() == "enabled":
        yield f"{v.display} has publicNetworkAccess Enabled"
    elif not text and v.type == "azure-native:storage:StorageAccount":
        yield f"{v.display} does not set publicNetworkAccess (Azure's default is Enabled)"


@rule(
    "storage-account-hardened",
    "Storage accounts take no shared keys, no anonymous reads, no plain HTTP",
    "Account keys are shared, unaudited credentials that bypass Entra ID; anonymous blob access and HTTP expose "
    "backups of clinic records.",
    M,
    what="storage accounts: `allowSharedKeyAccess: false`, no anonymous blob access, HTTPS only",
)
def _storage_hardened(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:storage:StorageAccount":
        return
    p = v.props
    if truthy(p.get("allowSharedKeyAccess")) is not False and not is_unknown(unwrap(p.get("allowSharedKeyAccess"))):
        yield f"{v.display} allows shared-key access (set allowSharedKeyAccess false)"
    if truthy(p.get("allowBlobPublicAccess")) is True:
        yield f"{v.display} allows anonymous blob access"
    if truthy(p.get("enableHttpsTrafficOnly")) is False:
        yield f"{v.display} accepts plain HTTP"


@rule(
    "storage-tls12",
    "Storage accounts require TLS 1.2 or later",
    "Older TLS versions have known weaknesses; Azure's default for older API versions is TLS 1.0.",
    A,
    what="storage accounts require TLS 1.2 or later",
)
def _storage_tls(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:storage:StorageAccount":
        tls = as_text(v.props.get("minimumTlsVersion"))
        if tls not in ("TLS1_2", "TLS1_3") and not is_unknown(unwrap(v.props.get("minimumTlsVersion"))):
            yield f"{v.display} accepts TLS below 1.2 (minimumTlsVersion {tls or 'unset'})"


@rule(
    "blob-container-private",
    "No blob container allows anonymous access",
    "A container with publicAccess Blob or Container serves its blobs to anyone who guesses the URL.",
    M,
    what="no blob container with `publicAccess` other than `None`",
)
def _container_private(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:storage:BlobContainer":
        access = as_text(v.props.get("publicAccess"))
        if access and access != "None":
            yield f"{v.display} allows anonymous access ({access})"


def _aks_api(v: ResourceView) -> tuple[bool | None, list[str]]:
    profile = as_map(v.props.get("apiServerAccessProfile"))
    ranges = [as_text(r) for r in as_list(profile.get("authorizedIPRanges"))]
    return truthy(profile.get("enablePrivateCluster")), [r for r in ranges if r]


@rule(
    "aks-api-restricted",
    "The AKS API server is private or limited to known addresses",
    "A public API server open to every address invites credential stuffing against the cluster that holds "
    "every clinic.",
    M,
    what="the AKS API server is private or limited by `authorizedIPRanges` (not `0.0.0.0/0`)",
)
def _aks_restricted(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:containerservice:ManagedCluster":
        return
    private, ranges = _aks_api(v)
    if private is True:
        return
    if not ranges:
        yield f"{v.display}: the API server is public and open to every address (no authorizedIPRanges)"
    elif any(r.lower() in ANY_SOURCE for r in ranges):
        yield f"{v.display}: the API server's authorized ranges include the whole Internet"


@rule(
    "aks-private-api-prod",
    "In production the AKS API server is private",
    "Production holds real patients' records: its control plane has no Internet endpoint at all.",
    M,
    what="in production the API server is private",
)
def _aks_private_prod(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:containerservice:ManagedCluster" and is_prod(environment_of(v, ctx)):
        private, _ = _aks_api(v)
        if private is not True:
            yield f"{v.display}: production cluster without a private API server (enablePrivateCluster)"


@rule(
    "aks-local-accounts-disabled",
    "In production AKS local accounts are disabled",
    "Local accounts (the cluster-admin certificate) bypass Entra ID and leave no per-person audit trail.",
    M,
    what="in production `disableLocalAccounts: true`",
)
def _aks_local(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if (
        v.type == "azure-native:containerservice:ManagedCluster"
        and is_prod(environment_of(v, ctx))
        and truthy(v.props.get("disableLocalAccounts")) is not True
    ):
        yield f"{v.display}: production cluster keeps local accounts (disableLocalAccounts is not true)"


@rule(
    "aks-entra-rbac",
    "AKS uses Entra ID with Azure RBAC",
    "Every person and pipeline signs in as themselves and is authorised centrally; access reviews then cover the "
    "cluster too.",
    A,
    what="AKS uses Entra ID with Azure RBAC, Kubernetes RBAC on",
)
def _aks_rbac(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:containerservice:ManagedCluster":
        return
    aad = as_map(v.props.get("aadProfile"))
    if truthy(aad.get("managed")) is not True or truthy(aad.get("enableAzureRBAC")) is not True:
        yield f"{v.display}: Entra ID integration with Azure RBAC is not enabled (aadProfile)"
    if truthy(v.props.get("enableRBAC")) is False:
        yield f"{v.display}: Kubernetes RBAC is disabled"


@rule(
    "no-node-public-ip",
    "No AKS node has a public IP",
    "A node with a public address is reachable from the Internet around every load balancer and NSG on the path.",
    M,
    what="no node pool gives nodes public IPs",
)
def _node_ip(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:containerservice:ManagedCluster":
        for pool in as_list(v.props.get("agentPoolProfiles")):
            if truthy(dig(pool, "enableNodePublicIP")):
                yield f"{v.display}: node pool {as_text(dig(pool, 'name'))} gives nodes public IPs"
    elif v.type == "azure-native:containerservice:AgentPool" and truthy(v.props.get("enableNodePublicIP")):
        yield f"{v.display}: node pool gives nodes public IPs"
