"""Stack settings: the `orca-platform:*` keys of Pulumi.<stack>.yaml as one validated model.

`config.py` at the top level reads them through pulumi.Config; this module only sees plain data.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .errors import InputError, problems_from_validation
from .fields import Cidr, Cron, FrontDoorMode, ImageRef, Lax, StorageSku, StorageStrategyName, Strict
from .ipnets import is_internal
from .monitoring import Monitoring
from .schedule import check_time_zone, posix_tz
from .schema_help import suggest
from .tenants import CLINIC_ID

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


# Azure creates only the zone-redundant SKUs since the 2025 VPN gateway SKU consolidation: a non-AZ SKU is refused
# with NonAzSkusNotAllowedForVPNGateway (MS docs "About VPN Gateway SKU consolidation and migration").
AZ_VPN_SKUS = ("VpnGw1AZ", "VpnGw2AZ", "VpnGw3AZ", "VpnGw4AZ", "VpnGw5AZ")


class Vpn(Strict):
    sku: str = "VpnGw1AZ"
    generation: Literal["Generation1", "Generation2"] = "Generation1"
    sites: list[VpnSite] = Field(default_factory=list)
    point_to_site: PointToSite | None = None

    @field_validator("sku")
    @classmethod
    def _az_sku(cls, value: str) -> str:
        if value in AZ_VPN_SKUS:
            return value
        if f"{value}AZ" in AZ_VPN_SKUS:
            raise ValueError(
                f"Azure no longer creates non-AZ VPN gateway SKUs (NonAzSkusNotAllowedForVPNGateway): use {value}AZ"
            )
        near = suggest(value, AZ_VPN_SKUS)
        hint = f"; did you mean '{near}'?" if near else ""
        raise ValueError(f"must be one of {', '.join(AZ_VPN_SKUS)}{hint}")

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
    # Where the people and runners that deploy and restore sit, as seen over the VPN: only they reach the private
    # API server endpoint and the backup blob endpoint (443). Empty: every VPN range.
    operator_cidrs: list[Cidr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _operators_over_vpn(self) -> Network:
        vpn = [ipaddress.ip_network(c) for site in self.vpn.sites for c in site.address_spaces]
        if self.vpn.point_to_site:
            vpn.append(ipaddress.ip_network(self.vpn.point_to_site.address_pool))
        for cidr in self.operator_cidrs:
            net = ipaddress.ip_network(cidr)
            if not any(net.version == r.version and net.subnet_of(r) for r in vpn):  # type: ignore[arg-type]
                raise ValueError(f"operatorCidrs: {cidr} lies inside no VPN site's address space or pointToSite pool")
        return self


class Pool(Strict):
    vm_size: str
    # AKS allows up to 1,000 nodes per pool; 100 is this platform's own ceiling (the ILB rule limit caps clinics
    # long before: shared/azure-facts.md, "Load balancer").
    min_count: Annotated[int, Field(ge=1, le=100)]
    max_count: Annotated[int, Field(ge=1, le=100)]
    # AKS with Azure CNI (Overlay): 10 to 250 pods per node (AKS docs, "Configure Azure CNI Overlay networking").
    max_pods: Annotated[int, Field(ge=10, le=250, description="AKS takes 10 to 250 pods per node")] = 30

    @model_validator(mode="after")
    def _bounds(self) -> Pool:
        if self.min_count > self.max_count:
            raise ValueError("minCount must not exceed maxCount")
        return self


class MaintenanceWindow(Strict):
    day_of_week: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = "Sunday"
    start_time: Annotated[
        str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description='a time of day in quotes, e.g. "02:00"')
    ] = "02:00"
    # AKS planned maintenance: a window lasts 4 to 24 hours (AKS docs, "Use planned maintenance").
    duration_hours: Annotated[int, Field(ge=4, le=24, description="AKS windows last 4 to 24 hours")] = 4
    utc_offset: Annotated[
        str, Field(pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$", description='an offset in quotes, e.g. "+09:00"')
    ] = "+09:00"


class Cluster(Strict):
    kubernetes_version: Annotated[
        str, Field(pattern=r"^1\.[0-9]{2}(\.[0-9]+)?$", description='a Kubernetes version in quotes, e.g. "1.34"')
    ]
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
    # false: phase 1 of a first deployment, the Azure layer alone (network, VPN gateway, cluster, backup store).
    # A private API server is reachable only over the VPN this phase creates (README, "First deployment").
    kubernetes_layer: bool = True

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
    # Two keep every clinic reachable through a node drain (the chart's PodDisruptionBudget keeps one); ten is this
    # platform's ceiling: every replica sits on the system pool.
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
    postgres_version: Annotated[
        str, Field(pattern=r"^[0-9]{1,2}(\.[0-9])?$", description='a PostgreSQL major version in quotes, e.g. "12"')
    ]
    # The uid of the postgres user inside the image (`docker run --rm <image> id -u postgres`): the WAL shipper
    # sidecar runs as it, to clear what it shipped from the spool and to reach PostgreSQL by peer authentication.
    postgres_uid: Annotated[int, Field(ge=1, le=65534, description="the postgres user's uid in the ORCA image")]
    # Not published anywhere (shared/orca-facts.md): long enough for jma-receipt stop plus a fast PostgreSQL stop.
    termination_grace_seconds: Annotated[int, Field(ge=30, le=900)] = 120
    # Images that run jma-setup at start need minutes before glserver answers.
    startup_budget_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    # Every CronJob's timeZone and the pods' TZ: schedules are read in this zone.
    timezone: str = "Asia/Tokyo"
    # Classic ORCA creates its database in EUC-JP, WebORCA in UTF-8.
    db_encoding: Literal["EUC-JP", "UTF-8"] = "EUC-JP"
    # ORCA downloads master and program updates over HTTPS; everything else outbound stays closed.
    egress_https_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"])
    # Registries (login servers such as myacr.azurecr.io) every ORCA and tools image must come from. Empty: the
    # registry of cluster.containerRegistryId, the one the nodes get AcrPull on (orca_platform/safety/floors.py).
    allowed_registries: list[Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")]] = Field(
        default_factory=list
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        # A zone both Python and Kubernetes accept; the schedules run in it and the monthly dump is decided in it,
        # through its POSIX TZ rule (schedule.posix_tz).
        posix_tz(check_time_zone(value))
        return value


class Storage(Strict):
    # The default for clinics that pin nothing (tenants.yaml `storage` / `storageSku`). A clinic's volume never
    # changes class, so a changed default must only meet new clinics: pin the existing ones first.
    strategy: Annotated[StorageStrategyName, Lax]
    sku: StorageSku = "Premium_LRS"


class FrontDoor(Strict):
    """How clinics are reached (orca_platform/plan/front_door.py); per clinic `frontDoor` overrides the mode."""

    mode: Annotated[FrontDoorMode, Lax] = FrontDoorMode.LOADBALANCER
    # loadbalancer mode: PUSH (9400) only through the FQDN's /ws route, so each clinic costs one load-balancing rule
    # on every node instead of two. Clients configured for ws://<ip>:9400 must move to ws://<fqdn>/ws first.
    push_through_ingress: bool = False


class SubscriptionReserve(Strict):
    """What other stacks and people in the same subscription already use of its shared limits."""

    role_assignments: Annotated[int, Field(ge=0, le=4000)] = 0
    storage_accounts: Annotated[int, Field(ge=0, le=250)] = 0
    management_writes_per_hour: Annotated[int, Field(ge=0, le=1200)] = 0


class Scale(Strict):
    """Budgets for the walls that are not published Azure limits (orca_platform/plan/walls.py)."""

    # The self-managed Pulumi backend rewrites the whole checkpoint at every step (pulumi/pulumi#10960): past this
    # size an update spends its time uploading state. A chosen budget, not an Azure or Pulumi limit.
    checkpoint_budget_mib: Annotated[int, Field(ge=1, le=4096)] = 64
    subscription_reserve: SubscriptionReserve = SubscriptionReserve()


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
    # Azure keeps at most 500 incremental snapshots per managed disk (MS Learn, disks-incremental-snapshots) and 200
    # snapshots per file share (MS Learn, storage-files-scale-targets); the per-strategy limit is checked with the
    # clinics (storage.py), this is the widest.
    snapshot_retention_count: Annotated[int, Field(ge=1, le=500)] = 28
    dump_schedule: Cron = "30 1 * * *"
    # Each clinic's snapshots start at a stable offset (a hash of its id) within this many minutes after the stack's
    # schedule, so that the storage management API is not asked for every snapshot in the same second. 0: no stagger.
    snapshot_stagger_minutes: Annotated[int, Field(ge=0, le=1440)] = 60
    # Immutability periods: 1 to 146,000 days (MS Learn, immutable-time-based-retention-policy-overview); ten and a
    # hundred years are this platform's own ceilings for the daily and the monthly copies.
    daily_retention_days: Annotated[int, Field(ge=1, le=3650)] = 35
    monthly_retention_days: Annotated[int, Field(ge=1, le=36500)] = 1827
    # How long the clinics' records must be kept (医師法第24条: five years for medical records). In prod the monthly
    # copies must be immutable at least this long (orca_platform/safety/prod_floors.py, retention_days_for_years).
    records_retention_years: Annotated[int, Field(ge=1, le=100)] = 5
    # Operator-built image with pg_dump/pg_restore (matching the server's major), azcopy and kubectl.
    tools_image: ImageRef
    storage_sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS", "Standard_RAGZRS"] = (
        "Standard_ZRS"
    )
    # A CanNotDelete management lock on the backup account (prod). Locking the containers' immutability policies
    # is a one-way step Azure only offers as an action: see the README's backup runbook.
    delete_lock: bool = False


class Transition(StrEnum):
    """Changes over time that would lose, hide or roll back clinic data: refused unless acknowledged
    (orca_platform/safety/history.py compares the stack's last history with this update)."""

    CLINIC_REMOVED = "clinic-removed"
    RETIRED_ID_DROPPED = "retired-id-dropped"
    RESTORES_REWRITTEN = "restores-rewritten"
    LIVE_VOLUME_OLDER = "live-volume-older"
    STORAGE_CHANGED = "storage-changed"
    POSTGRES_VERSION_CHANGED = "postgres-version-changed"
    RETENTION_LOWERED = "retention-lowered"
    DELETE_LOCK_OFF = "delete-lock-off"
    IMMUTABILITY_OFF = "immutability-off"
    # Not refused by the program but by the server's seed: an empty live volume of a clinic the history says had
    # data. Acknowledged, it is seeded once (a first rollout that failed before its seed ever ran).
    EMPTY_VOLUME_SEEDED = "empty-volume-seeded"


# What an acknowledgement of a stack-wide transition names instead of a clinic.
STACK_SCOPE = "*stack*"
STACK_TRANSITIONS = frozenset({Transition.RETENTION_LOWERED, Transition.DELETE_LOCK_OFF, Transition.IMMUTABILITY_OFF})


class Acknowledgement(Strict):
    """Lets one named refused transition of one clinic (or of the stack) through one update, on purpose."""

    clinic: str
    transition: Annotated[Transition, Lax]
    # Why, for the audit report: a ticket, a decision, a name.
    reason: Annotated[str, Field(min_length=10, max_length=300)]

    @model_validator(mode="after")
    def _scope(self) -> Acknowledgement:
        if not self.reason.strip():
            raise ValueError("reason must say why (a ticket, a decision)")
        stack_wide = self.transition in STACK_TRANSITIONS
        if stack_wide and self.clinic != STACK_SCOPE:
            raise ValueError(f"{self.transition.value} is a change of the whole stack: name clinic {STACK_SCOPE!r}")
        if not stack_wide and not CLINIC_ID.fullmatch(self.clinic):
            raise ValueError(f"{self.transition.value} is a change of one clinic: name its id (got {self.clinic!r})")
        return self


class Settings(Strict):
    environment: Annotated[Environment, Lax]
    location: str = "japaneast"
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,10}$")] = "orca"
    tenants_file: str = "tenants.yaml"
    tags: dict[str, str] = Field(default_factory=dict)
    network: Network
    cluster: Cluster
    ingress: Ingress
    orca: Orca
    storage: Storage
    front_door: FrontDoor = FrontDoor()
    capacity: Capacity = Capacity()
    scale: Scale = Scale()
    backup: Backup
    # Managed Prometheus, its alert rules and who they notify (orca_platform/model/monitoring.py).
    monitoring: Monitoring
    acknowledgements: list[Acknowledgement] = Field(default_factory=list)

    @field_validator("acknowledgements")
    @classmethod
    def _one_per_transition(cls, value: list[Acknowledgement]) -> list[Acknowledgement]:
        seen: set[tuple[str, str]] = set()
        for a in value:
            key = (a.clinic, a.transition.value)
            if key in seen:
                raise ValueError(f"{a.clinic} / {a.transition.value} is acknowledged twice: keep one")
            seen.add(key)
        return value


# Stack config keys of the `orca-platform` namespace.
CONFIG_KEYS = tuple((info.alias or name) for name, info in Settings.model_fields.items())


def parse_settings(raw: dict[str, Any], source: str, hidden: frozenset[str] = frozenset()) -> Settings:
    """`hidden`: top-level keys whose values are secrets, never shown in a message."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from_validation(exc, source, prefix=f"{NAMESPACE}:", model=Settings, hidden=hidden)
        raise InputError(problems) from None
