"""Storage strategies for clinic data: what each asks of the cluster, and what it costs in attach slots and money."""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalogue import Catalogue
from .quantities import parse_bytes
from .tenants import StorageStrategyName

GIB = 2**30
# Below this a clinic volume cannot hold PostgreSQL safely: its WAL alone may grow to max_wal_size (1 GB by default,
# PostgreSQL docs, "WAL Configuration") before a checkpoint recycles it, beside the ORCA database, its master tables
# and the logs; when pg_wal cannot be written PostgreSQL stops (PANIC) and ORCA with it.
MIN_VOLUME_GIB = 4
# Snapshots the platform takes besides the scheduled ones (one per image upgrade, kept until removed by hand):
# room kept below the storage's snapshot limit so an upgrade's backup never fails for want of a slot.
SNAPSHOT_HEADROOM = 20


class StorageRefusedError(ValueError):
    """A strategy that must never hold PostgreSQL data."""


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

    @property
    def storage_class(self) -> str:
        short = {"azure-disk": "disk", "azure-files-nfs": "nfs"}[self.name.value]
        return f"orca-{short}-{self.sku.lower().replace('_', '-')}"

    def claim_gib(self, requested_bytes: int) -> int:
        """What the PVC asks for: the clinic's size rounded up to whole GiB and to the strategy's minimum."""
        return max(-(-requested_bytes // GIB), self.minimum_gib)

    def monthly_usd(self, requested_bytes: int, catalogue: Catalogue) -> float:
        size = self.claim_gib(requested_bytes)
        prices = catalogue.storage_prices
        if self.name is StorageStrategyName.AZURE_FILES_NFS:
            return size * prices.files_premium_per_gib
        for tier in prices.premium_disk_tiers:
            if size <= tier.size_gib:
                return tier.monthly_usd
        largest = prices.premium_disk_tiers[-1]
        return largest.monthly_usd * size / largest.size_gib


SMB_REFUSAL = (
    "Azure Files over SMB cannot hold PostgreSQL data: SMB has no hard links (PostgreSQL creates pg_wal/xlogtemp.* "
    "by hard link) and breaks initdb's ownership and symlink handling (docker-library/postgres#548, "
    "zalando/postgres-operator#1665). Use azure-files-nfs or azure-disk."
)


def strategy(name: StorageStrategyName, sku: str) -> StorageStrategy:
    if name is StorageStrategyName.AZURE_FILES_SMB:
        raise StorageRefusedError(SMB_REFUSAL)
    if name is StorageStrategyName.AZURE_DISK:
        return StorageStrategy(
            name=name,
            sku=sku,
            provisioner="disk.csi.azure.com",
            # Host caching off: PostgreSQL fsyncs its WAL and must not be told a write landed when it sits in a cache.
            parameters={"skuName": sku, "cachingMode": "None"},
            attaches_per_volume=True,
            minimum_gib=1,
            # Premium SSD: at most 32,767 GiB (P80) per disk (MS Learn, "Azure managed disk types").
            maximum_gib=32767,
            # At most 500 incremental snapshots per disk (MS Learn, "Create an incremental snapshot", restrictions).
            max_snapshots=500,
            snapshot_driver="disk.csi.azure.com",
            why="one Managed Disk per clinic: simple and fast, but each clinic takes one of the node's data-disk slots",
        )
    return StorageStrategy(
        name=name,
        sku=sku,
        provisioner="file.csi.azure.com",
        parameters={
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
        },
        # nconnect/noresvport/actimeo as recommended by the AKS docs for NFS shares; 'hard' (the NFS default)
        # makes I/O wait through a blip instead of returning errors to PostgreSQL.
        mount_options=["nconnect=4", "noresvport", "actimeo=30", "hard"],
        attaches_per_volume=False,
        minimum_gib=100,
        # A file share holds at most 100 TiB and keeps at most 200 share snapshots (MS Learn,
        # "Scalability and performance targets for Azure Files").
        maximum_gib=100 * 1024,
        max_snapshots=200,
        snapshot_driver="file.csi.azure.com",
        why=(
            "one premium NFS 4.1 share per clinic: POSIX modes, symlinks and hard links work for PostgreSQL, and no "
            "data-disk slot is used, so density is set by CPU and memory; each share bills at least 100 GiB"
        ),
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


def for_bytes_label(n_bytes: int) -> str:
    return f"{-(-n_bytes // GIB)}Gi"


__all__ = [
    "MIN_VOLUME_GIB",
    "SMB_REFUSAL",
    "SNAPSHOT_HEADROOM",
    "StorageRefusedError",
    "StorageStrategy",
    "for_bytes_label",
    "parse_bytes",
    "snapshot_parameters",
    "strategy",
    "volume_size_problem",
]
