"""Stack settings: the `orca-platform:*` keys of Pulumi.<stack>.yaml as one validated model.

`config.py` at the top level reads them through pulumi.Config; this module only sees plain data.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .backup_plan import posix_tz
from .errors import InputError, problems_from_validation
from .ipnets import is_internal
from .tenants import Cidr, Cron, ImageRef, StorageStrategyName, Strict

NAMESPACE = "orca-platform"


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class VpnSite(Strict):
    """An on-premises site (a clinic or a group of clinics) joined by a site-to-site IPsec tunnel."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
    gateway_ip: str
    address_spaces: Annotated[list[Cidr], Field(min_length=1)]
    # BGP and custom IPsec policies are not modelled: the Azure defaults (IKEv2) apply.

    @field_validator("gateway_ip")
    @classmethod
    def _public(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError("must be an IPv4 address") from None
        if is_internal(value):
            raise ValueError("must be the site's public IPv4 address")
        return value


class PointToSite(Strict):
    """VPN client access for staff laptops (OpenVPN / IKEv2, certificate authentication)."""

    address_pool: Cidr
    root_certificate_name: Annotated[str, Field(min_length=1, max_length=80)]
    # Base64 DER of the client root CA's *public* certificate: not a secret.
    root_certificate_data: Annotated[str, Field(min_length=20)]


class Vpn(Strict):
    sku: Literal["VpnGw1", "VpnGw2", "VpnGw3", "VpnGw1AZ", "VpnGw2AZ", "VpnGw3AZ", "VpnGw4AZ", "VpnGw5AZ"] = "VpnGw1"
    generation: Literal["Generation1", "Generation2"] = "Generation1"
    sites: list[VpnSite] = Field(default_factory=list)
    point_to_site: PointToSite | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Vpn:
        if not self.sites and self.point_to_site is None:
            raise ValueError("configure at least one site or pointToSite: clinics reach ORCA only over VPN")
        names = [s.name for s in self.sites]
        if len(names) != len(set(names)):
            raise ValueError("site names must be unique")
        return self


class Network(Strict):
    vnet_cidr: Cidr
    node_subnet_cidr: Cidr
    ilb_subnet_cidr: Cidr
    gateway_subnet_cidr: Cidr
    dns_resolver_subnet_cidr: Cidr
    private_endpoint_subnet_cidr: Cidr
    pod_cidr: Cidr
    service_cidr: Cidr
    dns_service_ip: str
    dns_zone: Annotated[str, Field(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")]
    vpn: Vpn


class Pool(Strict):
    vm_size: str
    min_count: Annotated[int, Field(ge=1, le=100)]
    max_count: Annotated[int, Field(ge=1, le=100)]
    max_pods: Annotated[int, Field(ge=10, le=250)] = 30

    @model_validator(mode="after")
    def _bounds(self) -> Pool:
        if self.min_count > self.max_count:
            raise ValueError("minCount must not exceed maxCount")
        return self


class MaintenanceWindow(Strict):
    day_of_week: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = "Sunday"
    start_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "02:00"
    duration_hours: Annotated[int, Field(ge=4, le=24)] = 4
    utc_offset: Annotated[str, Field(pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$")] = "+09:00"


class Cluster(Strict):
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}(\.[0-9]+)?$")]
    sku_tier: Literal["Free", "Standard", "Premium"] = "Standard"
    system_pool: Pool
    orca_pool: Pool
    zones: list[Literal["1", "2", "3"]] = Field(default_factory=list)
    private_api_server: bool = True
    authorized_ip_ranges: list[Cidr] = Field(default_factory=list)
    disable_local_accounts: bool = True
    admin_group_object_ids: list[Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]] = Field(default_factory=list)
    # Entra group whose members alone may delete clinic namespaces, volumes and snapshots (the admission guard,
    # docs/runbooks.md). Unset: nobody may, short of removing the guard's bindings.
    break_glass_group: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")] | None = None
    upgrade_channel: Literal["patch", "stable", "rapid", "node-image", "none"] = "patch"
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch", "Unmanaged", "None"] = "NodeImage"
    maintenance_window: MaintenanceWindow = MaintenanceWindow()
    # Resource id of the operator's Azure Container Registry holding the ORCA and tools images: the kubelet
    # identity gets AcrPull on it. Leave unset only when the images come from elsewhere with their own access.
    container_registry_id: (
        Annotated[
            str,
            Field(
                pattern=r"^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[A-Za-z0-9]{5,50}$"
            ),
        ]
        | None
    ) = None
    # How the Pulumi Kubernetes provider gets a token: kubelogin's login mode on the workstation / CI runner.
    kubelogin_mode: Literal["azurecli", "workloadidentity", "msi", "spn"] = "azurecli"

    @model_validator(mode="after")
    def _api_access(self) -> Cluster:
        if not self.private_api_server and not self.authorized_ip_ranges:
            raise ValueError("a public API server needs authorizedIpRanges; otherwise set privateApiServer: true")
        if self.disable_local_accounts and not self.admin_group_object_ids:
            raise ValueError(
                "with local accounts disabled, list at least one Entra group in adminGroupObjectIds "
                "(the people and the CI identity that run pulumi up), or nobody can manage the cluster"
            )
        return self


class Ingress(Strict):
    private_ip: str
    class_name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "orca-internal"
    namespace: str = "orca-ingress"
    chart: str = "oci://ghcr.io/nginx/charts/nginx-ingress"
    chart_version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    replicas: Annotated[int, Field(ge=2, le=10)] = 2
    # plain-http: HTTP inside the IPsec tunnel (glserver builds its follow-up URLs from its own TLS flag,
    # see README "TLS"); passthrough would need glserver's own certificate and is not modelled yet.
    tls_mode: Literal["plain-http"] = "plain-http"
    # ORCA client sessions stay open for a whole consultation; long reads must not be cut at nginx's 60 s default.
    read_timeout_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    max_body_size: Annotated[str, Field(pattern=r"^[0-9]+[km]$")] = "64m"


class Orca(Strict):
    image: ImageRef
    # Major PostgreSQL version inside the image: names the data directory and the pg_ctlcluster call.
    postgres_version: Annotated[str, Field(pattern=r"^[0-9]{1,2}(\.[0-9])?$")]
    # Not published anywhere (shared/orca-facts.md): long enough for jma-receipt stop plus a fast PostgreSQL stop.
    termination_grace_seconds: Annotated[int, Field(ge=30, le=900)] = 120
    # Images that run jma-setup at start need minutes before glserver answers.
    startup_budget_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    timezone: str = "Asia/Tokyo"
    # Classic ORCA creates its database in EUC-JP, WebORCA in UTF-8.
    db_encoding: Literal["EUC-JP", "UTF-8"] = "EUC-JP"
    # ORCA downloads master and program updates over HTTPS; everything else outbound stays closed.
    egress_https_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"])

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        # The schedules run in it and the monthly dump is decided in it (backup_plan.posix_tz).
        posix_tz(value)
        return value


class Storage(Strict):
    strategy: StorageStrategyName
    sku: Literal["Premium_LRS", "Premium_ZRS"] = "Premium_LRS"


class Resources(Strict):
    cpu: str
    memory: str
    pods: Annotated[int, Field(ge=0, le=100)]


class Capacity(Strict):
    density_target: Annotated[int, Field(ge=1, le=200)] = 20
    # Requests of the DaemonSets on every ORCA node (Cilium, CSI node plugins, cloud-node-manager, monitoring
    # agent...). Not published as one figure: budgeted here, measure with `kubectl describe node` and adjust.
    daemon_set_reserve: Resources = Resources(cpu="600m", memory="1Gi", pods=10)
    # Spare nodes: one to survive a node failure, plus the upgrade surge.
    failure_headroom_nodes: Annotated[int, Field(ge=0, le=10)] = 1
    surge_nodes: Annotated[int, Field(ge=0, le=10)] = 1
    node_prices: dict[str, float] = Field(default_factory=dict)
    files_premium_per_gib: float | None = None


class Backup(Strict):
    snapshot_schedule: Cron = "0 */6 * * *"
    snapshot_retention_count: Annotated[int, Field(ge=1, le=500)] = 28
    dump_schedule: Cron = "30 1 * * *"
    daily_retention_days: Annotated[int, Field(ge=1, le=3650)] = 35
    monthly_retention_days: Annotated[int, Field(ge=1, le=36500)] = 1825
    # Operator-built image with pg_dump/pg_restore (matching the server's major), azcopy and kubectl.
    tools_image: ImageRef
    storage_sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS", "Standard_RAGZRS"] = (
        "Standard_ZRS"
    )
    # A CanNotDelete management lock on the backup account (prod). Locking the containers' immutability policies
    # is a one-way step Azure only offers as an action: see the README's backup runbook.
    delete_lock: bool = False


class Settings(Strict):
    environment: Environment
    location: str = "japaneast"
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,10}$")] = "orca"
    tenants_file: str = "tenants.yaml"
    tags: dict[str, str] = Field(default_factory=dict)
    network: Network
    cluster: Cluster
    ingress: Ingress
    orca: Orca
    storage: Storage
    capacity: Capacity = Capacity()
    backup: Backup


# Stack config keys of the `orca-platform` namespace.
CONFIG_KEYS = tuple((info.alias or name) for name, info in Settings.model_fields.items())


def parse_settings(raw: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise InputError(problems_from_validation(exc, source, prefix=f"{NAMESPACE}:")) from None
