"""The catalogue of node sizes, prices and clinic size classes (catalogue.yaml), as models."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError

from .errors import InputError, problems_from_validation
from .quantities import parse_bytes, parse_millicores
from .tenants import Quantity, Strict
from .yamlio import load_yaml_file

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")


class Reservations(Strict):
    source: str
    memory_per_pod_mib: int = Field(alias="memoryPerPodMiB")
    memory_base_mib: int = Field(alias="memoryBaseMiB")
    memory_max_fraction: float
    eviction_mib: int = Field(alias="evictionMiB")
    cpu_by_cores: dict[int, int]


class NodeSize(Strict):
    vcpu: int
    memory_gib: int = Field(alias="memoryGiB")
    max_data_disks: int
    monthly_usd: float | None = None


class NodeSizes(Strict):
    source: str
    sizes: dict[str, NodeSize]


class DiskTier(Strict):
    tier: str
    size_gib: int = Field(alias="sizeGiB")
    monthly_usd: float


class StoragePrices(Strict):
    source: str
    premium_disk_tiers: list[DiskTier]
    files_premium_per_gib: float = Field(alias="filesPremiumPerGiB")
    files_premium_minimum_gib: int = Field(alias="filesPremiumMinimumGiB")


class ClinicSize(Strict):
    cpu_request: str
    cpu_limit: str
    memory_request: Quantity
    memory_limit: Quantity

    @property
    def cpu_request_m(self) -> int:
        return parse_millicores(self.cpu_request)

    @property
    def memory_request_bytes(self) -> int:
        return parse_bytes(self.memory_request)


class Catalogue(Strict):
    as_of: str
    reservations: Reservations
    node_sizes: NodeSizes
    storage_prices: StoragePrices
    clinic_sizes: dict[str, ClinicSize]

    def with_overrides(self, node_prices: dict[str, float], files_per_gib: float | None) -> Catalogue:
        sizes = {
            name: size.model_copy(update={"monthly_usd": node_prices.get(name, size.monthly_usd)})
            for name, size in self.node_sizes.sizes.items()
        }
        storage = self.storage_prices
        if files_per_gib is not None:
            storage = storage.model_copy(update={"files_premium_per_gib": files_per_gib})
        return self.model_copy(
            update={"node_sizes": self.node_sizes.model_copy(update={"sizes": sizes}), "storage_prices": storage}
        )


@lru_cache(maxsize=1)
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    raw = load_yaml_file(path, path.name)
    try:
        return Catalogue.model_validate(raw)
    except ValidationError as exc:
        raise InputError(problems_from_validation(exc, str(path))) from None
