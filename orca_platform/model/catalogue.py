"""The catalogue of node sizes, prices, limits and clinic size classes (catalogue.yaml), as models."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError

from .errors import InputError, problems_from_validation
from .fields import Quantity, Strict
from .quantities import parse_bytes, parse_millicores
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
    # False: an estimate (derivation in price_note), not a figure of shared/azure-facts.md.
    price_confirmed: bool = True
    price_note: str = ""


class NodeSizes(Strict):
    source: str
    sizes: dict[str, NodeSize]
    os_disk_monthly_usd: float = 0.0
    commitments: dict[str, float] = Field(default_factory=lambda: {"payg": 1.0})


class Estimate(Strict):
    """A figure with how sure we are of it."""

    value: float
    confirmed: bool = True
    note: str = ""


class Limit(Strict):
    value: int
    source: str
    confirmed: bool = True


class DiskTier(Strict):
    tier: str
    size_gib: int = Field(alias="sizeGiB")
    monthly_usd: float


class StoragePrices(Strict):
    source: str
    premium_disk_tiers: list[DiskTier]
    files_premium_per_gib: float = Field(alias="filesPremiumPerGiB")
    files_premium_minimum_gib: int = Field(alias="filesPremiumMinimumGiB")
    estimates: dict[str, Estimate] = Field(default_factory=dict)
    blob_sku_factor: dict[str, float] = Field(default_factory=dict)

    def estimate(self, key: str) -> Estimate:
        if key not in self.estimates:
            raise KeyError(f"catalogue.yaml: storagePrices.estimates has no {key!r}")
        return self.estimates[key]


class NetworkPrices(Strict):
    source: str
    lb_first_five_rules_monthly_usd: Estimate
    lb_rule_monthly_usd: Estimate
    private_endpoint_monthly_usd: Estimate


class PlatformPrices(Strict):
    source: str
    aks_tier_monthly_usd: dict[str, float]
    dns_resolver_inbound_endpoint_monthly_usd: float | None = None
    private_dns_zone_monthly_usd: float | None = None
    vpn_gateway_monthly_usd: dict[str, float | None] = Field(default_factory=dict)
    public_ip_monthly_usd: Estimate | None = None
    prometheus_per_10m_samples_usd: Estimate | None = Field(default=None, alias="prometheusPer10MSamplesUsd")
    prometheus_samples_per_node_month: Estimate | None = None
    prometheus_samples_per_clinic_month: Estimate | None = None


class ReferenceClinic(Strict):
    size: str
    volume_gib: int = Field(alias="volumeGiB")


class ClinicSize(Strict):
    cpu_request: str
    cpu_limit: str
    memory_request: Quantity
    memory_limit: Quantity
    # Not published: assumptions for the cost table (catalogue.yaml says how to measure them).
    dump_gib: float = Field(default=0.0, alias="dumpGiB")
    changed_gib_per_day: float = Field(default=0.0, alias="changedGiBPerDay")

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
    network_prices: NetworkPrices
    platform_prices: PlatformPrices
    limits: dict[str, Limit]
    clinic_sizes: dict[str, ClinicSize]
    reference_clinic: ReferenceClinic

    def limit(self, key: str) -> int:
        if key not in self.limits:
            raise KeyError(f"catalogue.yaml: limits has no {key!r}")
        return self.limits[key].value

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
