"""What one clinic costs a month, all in, and what the stack costs before its first clinic.

Per clinic (the catalogue's reference clinic, at density: a full node's share): compute and the node's OS disk, its
volume, its snapshots, its dumps in the backup account, its load-balancing rules and its share of a private endpoint;
pay-as-you-go and with 1- and 3-year compute commitments. Per stack: the spare node(s), the system pool, the
control-plane tier, the VPN gateway, the DNS resolver and the load balancers' base price, which no clinic causes
alone. Every figure marked estimated comes from a catalogue entry marked unconfirmed. Pure: no Pulumi, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orca_platform.backup.tiers import cold_after_days
from orca_platform.model.catalogue import Catalogue
from orca_platform.model.settings import Settings

from .capacity import density_max_pods, reference_clinic, reference_per_node
from .front_door import MODES, FrontDoorPlan, new_clinic_front_door
from .schedules import runs_per_hour
from .storage import StorageStrategy, options, strategy, usable

# Average days in a month, for lifetimes given in days.
DAYS_PER_MONTH = 30.4
# The VPN gateway's public IP (components/network.py, pip-vpn) and the one managed outbound IP of AKS's
# loadBalancer outbound type (AKS docs "Use a public standard load balancer": managedOutboundIPs count defaults to 1).
PUBLIC_IPS = 2
# The stack's own ORCA nodes in stack_cost: the configurations below count them per configuration instead.
SPARE_LINE = "spare ORCA node(s)"


@dataclass(frozen=True)
class Line:
    item: str
    monthly_usd: float | None
    estimated: bool
    note: str = ""
    # Compute is what a reservation discounts; nothing else here is reserved.
    reservable: bool = False


@dataclass(frozen=True)
class ClinicCost:
    vm_size: str
    per_node: int
    storage: StorageStrategy
    front_door: FrontDoorPlan
    lines: tuple[Line, ...]

    def total(self, commitment: str, catalogue: Catalogue) -> float | None:
        factor = catalogue.node_sizes.commitments[commitment]
        if any(line.monthly_usd is None for line in self.lines):
            return None
        return sum((line.monthly_usd or 0.0) * (factor if line.reservable else 1.0) for line in self.lines)

    @property
    def estimated(self) -> bool:
        return any(line.estimated for line in self.lines)


def snapshot_window_days(schedule: str, retention_count: int) -> float:
    """How far back the oldest kept scheduled snapshot reaches: retention count times the schedule's interval."""
    per_hour = runs_per_hour(schedule)
    runs_a_day = sum(per_hour) if per_hour else 24
    return retention_count / max(runs_a_day, 1)


def dump_gib_months(dump_gib: float, daily_days: int, monthly_days: int, minimum_days: int) -> float:
    """GiB kept in the backup account in a steady month: one daily dump a day living daily_days, one monthly dump a
    month living monthly_days, each billed at least the cool tier's minimum days."""
    daily = dump_gib * max(daily_days, minimum_days)
    monthly = dump_gib * max(monthly_days, minimum_days) / DAYS_PER_MONTH
    return daily + monthly


def dumps_monthly_usd(dump_gib: float, daily_days: int, monthly_days: int, sku: str, catalogue: Catalogue) -> float:
    """The dumps' bill in a steady month: daily copies in cool; a monthly copy in cool until cold_after_days, then
    in cold for the rest of its life (both at least their tier's minimum), or in cool throughout when it is too
    short-lived for cold."""
    prices = catalogue.storage_prices
    factor = prices.blob_sku_factor.get(sku, 1.0)
    cool = prices.estimate("blobCoolPerGiB").value * factor
    cool_min = int(prices.estimate("blobCoolMinimumDays").value)
    daily = dump_gib * max(daily_days, cool_min) * cool
    cold_at = cold_after_days(monthly_days) if "blobColdPerGiB" in prices.estimates else None
    if cold_at is None:
        monthly = dump_gib * max(monthly_days, cool_min) / DAYS_PER_MONTH * cool
    else:
        cold = prices.estimate("blobColdPerGiB").value * factor
        monthly = dump_gib * (cold_at * cool + (monthly_days - cold_at) * cold) / DAYS_PER_MONTH
    return daily + monthly


def metrics_monthly_usd(catalogue: Catalogue, per_node: int) -> float | None:
    """A clinic's managed-Prometheus ingestion: its own series and its share of its node's."""
    plat = catalogue.platform_prices
    price, node, own = (
        plat.prometheus_per_10m_samples_usd,
        plat.prometheus_samples_per_node_month,
        plat.prometheus_samples_per_clinic_month,
    )
    if price is None or node is None or own is None:
        return None
    return (own.value + node.value / max(per_node, 1)) / 1e7 * price.value


def clinic_cost(
    settings: Settings,
    catalogue: Catalogue,
    vm_size: str,
    per_node: int,
    storage: StorageStrategy,
    front_door: FrontDoorPlan,
) -> ClinicCost:
    cat = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    node = cat.node_sizes.sizes[vm_size]
    ref = cat.reference_clinic
    size = cat.clinic_sizes[ref.size]
    prices = cat.storage_prices
    net = cat.network_prices
    backup = settings.backup
    lines: list[Line] = []
    compute = None if node.monthly_usd is None or not per_node else node.monthly_usd / per_node
    lines.append(
        Line(f"compute ({vm_size} / {per_node})", compute, not node.price_confirmed, node.price_note, reservable=True)
    )
    lines.append(Line("node OS disk share", cat.node_sizes.os_disk_monthly_usd / max(per_node, 1), True))
    claim = storage.claim_gib(ref.volume_gib * 2**30)
    lines.append(
        Line(
            f"volume ({storage.label}, {claim} GiB)",
            storage.monthly_usd_gib(claim, cat),
            not storage.price_confirmed(),
        )
    )
    days = snapshot_window_days(backup.snapshot_schedule, backup.snapshot_retention_count)
    changed = size.changed_gib_per_day * days
    lines.append(
        Line(
            f"snapshots ({days:.1f} days kept, {changed:.1f} GiB changed, assumed)",
            storage.snapshot_monthly_usd(changed, cat),
            True,
        )
    )
    minimum = int(prices.estimate("blobCoolMinimumDays").value)
    gib_months = dump_gib_months(size.dump_gib, backup.daily_retention_days, backup.monthly_retention_days, minimum)
    tiers = "cool, monthly ones cold" if cold_after_days(backup.monthly_retention_days) is not None else "cool"
    lines.append(
        Line(
            f"dumps ({size.dump_gib} GiB each, assumed; {gib_months:.0f} GiB kept, {tiers} {backup.storage_sku})",
            dumps_monthly_usd(
                size.dump_gib, backup.daily_retention_days, backup.monthly_retention_days, backup.storage_sku, cat
            ),
            True,
        )
    )
    metrics = metrics_monthly_usd(cat, per_node)
    if metrics is not None:
        lines.append(Line("managed Prometheus ingestion (its series, its node's share)", metrics, True))
    rules = len(front_door.lb_rule_ports)
    lines.append(
        Line(f"load-balancing rules ({rules}, {front_door.label})", rules * net.lb_rule_monthly_usd.value, rules > 0)
    )
    if storage.is_files:
        fill = storage.shares_per_account or max(cat.limit("filesAccountIops") // max(storage.share_iops, 1), 1)
        lines.append(
            Line(f"private endpoint share (1 per {fill} shares)", net.private_endpoint_monthly_usd.value / fill, True)
        )
    lines.append(Line("backup identity, role assignment, DNS record", 0.0, False, "no charge"))
    return ClinicCost(vm_size, per_node, storage, front_door, tuple(lines))


@dataclass(frozen=True)
class StackCost:
    lines: tuple[Line, ...]

    @property
    def total(self) -> float:
        """Known items only; unknown ones (None) make it a lower bound."""
        return sum(line.monthly_usd or 0.0 for line in self.lines)

    @property
    def complete(self) -> bool:
        return all(line.monthly_usd is not None for line in self.lines)


def stack_cost(settings: Settings, catalogue: Catalogue) -> StackCost:
    cat = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    c = settings.cluster
    sizes = cat.node_sizes.sizes
    plat = cat.platform_prices
    net = cat.network_prices

    def price(vm: str, count: int) -> float | None:
        node = sizes.get(vm)
        if node is None or node.monthly_usd is None:
            return None
        return (node.monthly_usd + cat.node_sizes.os_disk_monthly_usd) * count

    spare = settings.capacity.failure_headroom_nodes
    lines = [
        Line(
            f"system pool ({c.system_pool.min_count} x {c.system_pool.vm_size})",
            price(c.system_pool.vm_size, c.system_pool.min_count),
            True,
        ),
        Line(f"{SPARE_LINE} ({spare} x {c.orca_pool.vm_size})", price(c.orca_pool.vm_size, spare), True),
        Line(f"AKS {c.sku_tier} tier", plat.aks_tier_monthly_usd.get(c.sku_tier), True),
        Line(
            f"VPN gateway {settings.network.vpn.sku}",
            plat.vpn_gateway_monthly_usd.get(settings.network.vpn.sku),
            settings.network.vpn.sku != "VpnGw1",
        ),
        Line("DNS Private Resolver inbound endpoint", plat.dns_resolver_inbound_endpoint_monthly_usd, True),
        Line("private DNS zone", plat.private_dns_zone_monthly_usd, True),
        Line(
            f"public IPs ({PUBLIC_IPS}: VPN gateway, AKS outbound)",
            None if plat.public_ip_monthly_usd is None else PUBLIC_IPS * plat.public_ip_monthly_usd.value,
            True,
        ),
        # The internal one (ingress and clinic load balancers) and AKS's outbound one: each bills its first rules.
        Line("load balancers' base (2 x first five rules)", 2 * net.lb_first_five_rules_monthly_usd.value, True),
    ]
    return StackCost(tuple(lines))


def share_of(stack: StackCost, clinics: int) -> float | None:
    return None if clinics <= 0 else stack.total / clinics


def new_clinic_cost(settings: Settings, catalogue: Catalogue) -> ClinicCost:
    """A small clinic added to this stack as configured: its pool's size and maxPods, its defaults for new clinics."""
    store = strategy(settings.storage.strategy, settings.storage.sku, catalogue)
    vm = settings.cluster.orca_pool.vm_size
    per_node = reference_per_node(settings, catalogue)
    return clinic_cost(settings, catalogue, vm, per_node, store, new_clinic_front_door(settings))


def cheapest_cell(settings: Settings, catalogue: Catalogue) -> ClinicCost | None:
    """The cheapest catalogued node size, storage option and front door for a small clinic in a new cell with this
    stack's data safety (zone-redundant storage where the cluster has zones) and density target, pay-as-you-go."""
    cat = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    zonal = bool(settings.cluster.zones)
    clinics = [reference_clinic(cat)]
    best: tuple[float, ClinicCost] | None = None
    for vm, node in cat.node_sizes.sizes.items():
        if node.monthly_usd is None:
            continue
        for option in options(cat):
            if usable(option, zonal) is not None:
                continue
            pods = density_max_pods(vm, node, option, clinics, settings, cat)
            per_node = reference_per_node(settings, cat, vm, option, pods)
            if per_node < settings.capacity.density_target:
                continue
            for door in MODES:
                cost = clinic_cost(settings, cat, vm, per_node, option, door)
                total = cost.total("payg", cat)
                if total is not None and (best is None or total < best[0] - 1e-9):
                    best = (total, cost)
    return best[1] if best else None


# The clinic counts `make plan` prices the cheapest configuration at, beside the stack's own.
COMPARED_CLINICS = (100, 300, 1000)


@dataclass(frozen=True)
class Configuration:
    """A whole cell for `clinics` small clinics on one node size, storage option and front door: whole nodes
    (the clinics' plus the spare ones, at least one a zone), every clinic's own costs and the fixed costs."""

    clinics: int
    clinic: ClinicCost  # one clinic's lines; its compute and OS-disk lines are replaced by whole nodes here
    nodes: int
    node_monthly_usd: float  # VM list price
    os_disk_monthly_usd: float
    fixed_monthly_usd: float  # the stack's fixed costs but its spare ORCA nodes (counted in `nodes`)
    estimated: bool

    def per_clinic_usd(self, catalogue: Catalogue) -> float:
        """What every clinic's own resources cost, without compute and node disks (counted per node)."""
        skip = ("compute", "node OS disk")
        return sum(line.monthly_usd or 0.0 for line in self.clinic.lines if not line.item.startswith(skip))

    def total(self, commitment: str, catalogue: Catalogue) -> float:
        factor = catalogue.node_sizes.commitments[commitment]
        nodes = self.nodes * (self.node_monthly_usd * factor + self.os_disk_monthly_usd)
        return nodes + self.clinics * self.per_clinic_usd(catalogue) + self.fixed_monthly_usd

    def per_clinic(self, commitment: str, catalogue: Catalogue) -> float:
        return self.total(commitment, catalogue) / max(self.clinics, 1)


def configurations(settings: Settings, catalogue: Catalogue, clinics: int) -> list[Configuration]:
    """Every catalogued node size, usable storage option and front door that holds `clinics` small clinics at the
    stack's density target without crossing the per-node load-balancing wall, priced whole."""
    cat = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    zonal = bool(settings.cluster.zones)
    reference = [reference_clinic(cat)]
    fixed = stack_cost(settings, cat)
    fixed_usd = sum(line.monthly_usd or 0.0 for line in fixed.lines if not line.item.startswith(SPARE_LINE))
    rules_left = cat.limit("lbRulesPerIpConfiguration") - cat.limit("ingressControllerLbRules")
    floor = max(len(settings.cluster.zones or []), 1)
    found: list[Configuration] = []
    for vm, node in cat.node_sizes.sizes.items():
        if node.monthly_usd is None:
            continue
        for option in options(cat):
            if usable(option, zonal) is not None:
                continue
            pods = density_max_pods(vm, node, option, reference, settings, cat)
            per_node = reference_per_node(settings, cat, vm, option, pods)
            if per_node < settings.capacity.density_target:
                continue
            nodes = max(math.ceil(clinics / per_node) + settings.capacity.failure_headroom_nodes, floor)
            for door in MODES:
                if clinics * len(door.lb_rule_ports) > rules_left:
                    continue  # the 300 rules on every node's IP configuration (walls.py)
                cost = clinic_cost(settings, cat, vm, per_node, option, door)
                estimated = cost.estimated or not fixed.complete
                found.append(
                    Configuration(
                        clinics,
                        cost,
                        nodes,
                        node.monthly_usd,
                        cat.node_sizes.os_disk_monthly_usd,
                        fixed_usd,
                        estimated,
                    )
                )
    return found


def cheapest_configuration(settings: Settings, catalogue: Catalogue, clinics: int) -> Configuration | None:
    """The configuration whose whole monthly bill at `clinics` clinics is lowest, pay-as-you-go."""
    found = configurations(settings, catalogue, clinics)
    return min(found, key=lambda c: c.total("payg", catalogue), default=None)
