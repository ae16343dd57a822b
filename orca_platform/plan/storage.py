"""Storage options for clinic data: what each asks of the cluster, what it keeps safe, and what it costs.

An option is a strategy (Azure Disk, Azure Files NFS) and a SKU. Every one here keeps PostgreSQL's hard links and a
single writer; they differ in what a zone loss does, how a snapshot comes back, the attach slots they take and price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orca_platform.model.catalogue import Catalogue, load_catalogue
from orca_platform.model.fields import StorageStrategyName
from orca_platform.model.quantities import parse_bytes

GIB = 2**30
# Below this a clinic volume cannot hold PostgreSQL safely: its WAL alone may grow to max_wal_size (1 GB by default,
# PostgreSQL docs, "WAL Configuration") before a checkpoint recycles it, beside the ORCA database, its master tables
# and the logs; when pg_wal cannot be written PostgreSQL stops (PANIC) and ORCA with it.
MIN_VOLUME_GIB = 4
# Snapshots the platform takes besides the scheduled ones (one per image upgrade, kept until removed by hand):
# room kept below the storage's snapshot limit so an upgrade's backup never fails for want of a slot.
SNAPSHOT_HEADROOM = 20
# Driver defaults for a provisioned v2 SSD share (azurefile-csi-driver pkg/azurefile/utils.go getDefaultIOPS).
V2_BASE_IOPS = 3000
# The driver caches the account it picked for one minute (pkg/azurefile/azurefile.go accountSearchCache) and puts
# every share created meanwhile there, whatever accountQuota says: leave room for the clinics one update adds.
ACCOUNT_BURST_MARGIN = 8


class StorageRefusedError(ValueError):
    """A strategy that must never hold PostgreSQL data, or a SKU that does not exist for it."""


@dataclass(frozen=True)
class Safety:
    """What the option does for the clinic's data (README, "Storage options")."""

    hard_links: str
    single_writer: str
    snapshots: str
    zone_loss: str
    restore: str


@dataclass(frozen=True)
class StorageStrategy:
    name: StorageStrategyName
    sku: str
    provisioner: str
    parameters: dict[str, str]
    mount_options: list[str] = field(default_factory=list)
    # True when every volume takes one of the VM's data-disk slots (the density wall).
    attaches_per_volume: bool = False
    # Azure bills at least this much per volume, whatever the claim asks for.
    minimum_gib: int = 0
    # The largest volume the storage offers, and the most snapshots it keeps of one volume.
    maximum_gib: int = 0
    max_snapshots: int = 0
    snapshot_driver: str = ""
    # ReadWriteOncePod: the API server refuses a second pod on the volume, whatever the node (both Azure CSI
    # drivers advertise SINGLE_NODE_SINGLE_WRITER).
    access_mode: str = "ReadWriteOncePod"
    why: str = ""
    zone_redundant: bool = False
    # Premium SSD v2 attaches only to VMs placed in a zone.
    requires_zonal_nodes: bool = False
    # Azure Files: shares one account holds before the driver moves on (accountQuota), None when it packs them all
    # into the first matching account (no accountQuota).
    shares_per_account: int | None = None
    # Azure Files: the IOPS each share is provisioned with (v1: its baseline), counted against its account.
    share_iops: int = 0
    safety: Safety = field(default_factory=lambda: Safety(*(["not assessed"] * 5)))

    @property
    def storage_class(self) -> str:
        short = {"azure-disk": "disk", "azure-files-nfs": "nfs"}[self.name.value]
        return f"orca-{short}-{self.sku.lower().replace('_', '-')}"

    @property
    def is_files(self) -> bool:
        return self.name is StorageStrategyName.AZURE_FILES_NFS

    @property
    def label(self) -> str:
        kind = {
            ("azure-files-nfs", False): "Azure Files NFS premium v1",
            ("azure-files-nfs", True): "Azure Files NFS provisioned v2 SSD",
            ("azure-disk", False): "Premium SSD",
            ("azure-disk", True): "Premium SSD v2",
        }[(self.name.value, self.sku.startswith("PremiumV2"))]
        return f"{kind} {self.sku.rsplit('_', 1)[-1]}"

    def claim_gib(self, requested_bytes: int) -> int:
        """What the PVC asks for: the clinic's size rounded up to whole GiB and to the strategy's minimum."""
        return max(-(-requested_bytes // GIB), self.minimum_gib)

    def monthly_usd(self, requested_bytes: int, catalogue: Catalogue) -> float:
        return self.monthly_usd_gib(self.claim_gib(requested_bytes), catalogue)

    def monthly_usd_gib(self, size: int, catalogue: Catalogue) -> float:
        prices = catalogue.storage_prices
        v2 = self.sku.startswith("PremiumV2")
        if self.is_files:
            per_gib = prices.estimate("filesV2PerGiB").value if v2 else prices.files_premium_per_gib
            factor = prices.estimate("filesZrsFactor").value if self.zone_redundant else 1.0
            return size * per_gib * factor
        if v2:
            return size * prices.estimate("premiumV2DiskPerGiB").value
        factor = prices.estimate("diskZrsFactor").value if self.zone_redundant else 1.0
        for tier in prices.premium_disk_tiers:
            if size <= tier.size_gib:
                return tier.monthly_usd * factor
        largest = prices.premium_disk_tiers[-1]
        return largest.monthly_usd * size / largest.size_gib * factor

    def snapshot_monthly_usd(self, retained_changed_gib: float, catalogue: Catalogue) -> float:
        """Snapshots bill the data changed since the oldest one kept (both drivers take differential snapshots)."""
        key = "filesSnapshotPerGiB" if self.is_files else "diskSnapshotPerGiB"
        return retained_changed_gib * catalogue.storage_prices.estimate(key).value

    def price_confirmed(self) -> bool:
        """True only for the figures shared/azure-facts.md gives: v1 premium files and Premium SSD, both LRS."""
        return not self.zone_redundant and not self.sku.startswith("PremiumV2")


SMB_REFUSAL = (
    "Azure Files over SMB cannot hold PostgreSQL data: SMB has no hard links (PostgreSQL creates pg_wal/xlogtemp.* "
    "by hard link) and breaks initdb's ownership and symlink handling (docker-library/postgres#548, "
    "zalando/postgres-operator#1665). Use azure-files-nfs or azure-disk."
)
DISK_V2_ZRS_REFUSAL = (
    "Premium SSD v2 exists only as PremiumV2_LRS (zonal): pin storageSku Premium_ZRS for a zone-redundant disk"
)

_NFS_RESTORE = (
    "a new share from a snapshot (AzCopy: 403 on private-endpoint accounts unless useDataPlaneAPI: oauth, "
    "azurefile-csi-driver#2914), or the dump"
)


def _files_safety(zrs: bool) -> Safety:
    return Safety(
        hard_links="yes (NFS 4.1)",
        single_writer="ReadWriteOncePod",
        snapshots="share snapshots (CSI, at most 200 a share)",
        zone_loss="survives: three zones hold the data" if zrs else "down with its zone; the dumps (GZRS) remain",
        restore=_NFS_RESTORE,
    )


def _disk_safety(zrs: bool, v2: bool) -> Safety:
    return Safety(
        hard_links="yes (ext4 on a block device)",
        single_writer="ReadWriteOncePod",
        snapshots="incremental disk snapshots (CSI)",
        zone_loss=(
            "survives: the disk re-attaches to a node in another zone"
            if zrs
            else "down with its zone; restore a snapshot in another zone (loses the changes since it)"
        ),
        restore="new disk from a snapshot" + (" (zonal: same zone as its node)" if v2 else ""),
    )


def files_shares_per_account(sku: str, catalogue: Catalogue) -> int:
    """How many shares the driver may put in one provisioned v2 account: its share limit, and its IOPS shared by
    shares each provisioned with at least 3,000 (+1 per GiB) IOPS, less the margin for one update's new clinics."""
    minimum = int(catalogue.storage_prices.estimate("filesV2MinimumGiB").value)
    by_iops = catalogue.limit("filesAccountIops") // (V2_BASE_IOPS + minimum)
    hard = min(catalogue.limit("filesSharesPerAccountV2"), by_iops)
    return max(hard - ACCOUNT_BURST_MARGIN, 1)


def strategy(name: StorageStrategyName, sku: str, catalogue: Catalogue | None = None) -> StorageStrategy:
    if name is StorageStrategyName.AZURE_FILES_SMB:
        raise StorageRefusedError(SMB_REFUSAL)
    cat = catalogue or load_catalogue()
    zrs = sku.endswith("ZRS")
    v2 = sku.startswith("PremiumV2")
    if name is StorageStrategyName.AZURE_DISK:
        if v2 and zrs:
            raise StorageRefusedError(DISK_V2_ZRS_REFUSAL)
        return StorageStrategy(
            name=name,
            sku=sku,
            provisioner="disk.csi.azure.com",
            # Host caching off: PostgreSQL fsyncs its WAL and must not be told a write landed when it sits in a cache
            # (Premium SSD v2 has no host caching at all).
            parameters={"skuName": sku, "cachingMode": "None"},
            attaches_per_volume=True,
            minimum_gib=1,
            # Premium SSD: at most 32,767 GiB (P80) per disk (MS Learn, "Azure managed disk types").
            maximum_gib=32767,
            # At most 500 incremental snapshots per disk (MS Learn, "Create an incremental snapshot", restrictions).
            max_snapshots=500,
            snapshot_driver="disk.csi.azure.com",
            why="one Managed Disk per clinic: simple and fast, but each clinic takes one of the node's data-disk slots",
            zone_redundant=zrs,
            requires_zonal_nodes=v2,
            safety=_disk_safety(zrs, v2),
        )
    parameters = {
        "protocol": "nfs",
        "skuName": sku,
        # The share is reached over a private endpoint the driver creates: no public storage endpoint.
        "networkEndpointType": "privateEndpoint",
        # PostgreSQL chowns its data directory as root during start-up; root squash would break that.
        "rootSquashType": "NoRootSquash",
        # The driver's default is 0777; the image sets its own modes on first start.
        "mountPermissions": "0700",
        # Data-plane calls with an OAuth token carry AKS's trusted-service claim, which a private-endpoint
        # account admits; with keys or SAS, snapshot restore's AzCopy gets 403 (azurefile-csi-driver#2914,
        # #2121; docs/driver-parameters.md "Using useDataPlaneAPI: oauth against private storage accounts").
        # The control-plane identity holds Storage File Data Privileged Contributor for it (cluster.py).
        "useDataPlaneAPI": "oauth",
    }
    shares: int | None = None
    if v2:
        minimum = int(cat.storage_prices.estimate("filesV2MinimumGiB").value)
        shares = files_shares_per_account(sku, cat)
        # The driver skips an account once its shares' quotas exceed this (controllerserver.go, GB): with the
        # smallest shares it then holds `shares` of them, with larger ones fewer.
        parameters["accountQuota"] = str(max(minimum * (shares - 1), 100))
    else:
        minimum = cat.storage_prices.files_premium_minimum_gib
    return StorageStrategy(
        name=name,
        sku=sku,
        provisioner="file.csi.azure.com",
        parameters=parameters,
        # nconnect/noresvport/actimeo as recommended by the AKS docs for NFS shares; 'hard' (the NFS default)
        # makes I/O wait through a blip instead of returning errors to PostgreSQL.
        mount_options=["nconnect=4", "noresvport", "actimeo=30", "hard"],
        attaches_per_volume=False,
        minimum_gib=minimum,
        # A file share holds at most 100 TiB and keeps at most 200 share snapshots (MS Learn,
        # "Scalability and performance targets for Azure Files").
        maximum_gib=100 * 1024,
        max_snapshots=200,
        snapshot_driver="file.csi.azure.com",
        why=(
            "one premium NFS 4.1 share per clinic: POSIX modes, symlinks and hard links work for PostgreSQL, and no "
            f"data-disk slot is used, so density is set by CPU and memory; each share bills at least {minimum} GiB"
        ),
        zone_redundant=zrs,
        shares_per_account=shares,
        share_iops=V2_BASE_IOPS + minimum,
        safety=_files_safety(zrs),
    )


def snapshot_parameters(driver: str) -> dict[str, str]:
    """VolumeSnapshotClass parameters of a CSI driver (azurefile / azuredisk driver-parameters.md)."""
    if driver == "disk.csi.azure.com":
        return {"incremental": "true"}
    if driver == "file.csi.azure.com":
        # Snapshot create/delete and restore through the data plane with OAuth, as for the StorageClass above.
        return {"useDataPlaneAPI": "oauth"}
    return {}


def volume_size_problem(store: StorageStrategy, requested_bytes: int) -> tuple[str, str] | None:
    """(what is wrong, the fix) when a clinic's volume is too small for PostgreSQL or too large for its storage."""
    gib = -(-requested_bytes // GIB)
    if requested_bytes < MIN_VOLUME_GIB * GIB:
        return (
            f"is below {MIN_VOLUME_GIB}Gi, too small for PostgreSQL: its WAL alone may take 1Gi before a checkpoint",
            f"write {MIN_VOLUME_GIB}Gi or more (32Gi is a usual start)",
        )
    if gib > store.maximum_gib:
        return (
            f"is {gib}Gi, more than {store.name.value} offers ({store.maximum_gib}Gi per volume)",
            f"write at most {store.maximum_gib}Gi",
        )
    return None


def options(catalogue: Catalogue | None = None) -> list[StorageStrategy]:
    """Every modelled option (Elastic SAN through Azure Container Storage is not: see the README)."""
    files, disk = StorageStrategyName.AZURE_FILES_NFS, StorageStrategyName.AZURE_DISK
    skus = [(files, s) for s in ("Premium_LRS", "Premium_ZRS", "PremiumV2_LRS", "PremiumV2_ZRS")]
    skus += [(disk, s) for s in ("Premium_LRS", "Premium_ZRS", "PremiumV2_LRS")]
    return [strategy(name, sku, catalogue) for name, sku in skus]


def usable(option: StorageStrategy, zonal_cluster: bool) -> str | None:
    """Why an option cannot serve a stack (None: it can). A zonal stack keeps its data in every zone."""
    if option.requires_zonal_nodes and not zonal_cluster:
        return "needs zonal nodes (cluster.zones)"
    if zonal_cluster and not option.zone_redundant:
        return "no: not zone-redundant"
    return None


def for_bytes_label(n_bytes: int) -> str:
    return f"{-(-n_bytes // GIB)}Gi"


__all__ = [
    "MIN_VOLUME_GIB",
    "SMB_REFUSAL",
    "SNAPSHOT_HEADROOM",
    "Safety",
    "StorageRefusedError",
    "StorageStrategy",
    "for_bytes_label",
    "options",
    "parse_bytes",
    "snapshot_parameters",
    "strategy",
    "usable",
    "volume_size_problem",
]
