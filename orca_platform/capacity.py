"""Density and cost planning for the ORCA node pool.

Given the stack's settings and its clinics, work out for every node size and storage strategy how many clinics a node
holds by CPU, memory, pod slots and data-disk slots, which of those binds, how many nodes the clinics need with
headroom, and what a clinic costs per month. The stack's own choice must reach its density target and fit its pool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .catalogue import Catalogue, NodeSize
from .errors import InputError, Problem, show
from .quantities import parse_bytes, parse_millicores
from .settings import Settings
from .storage import SNAPSHOT_HEADROOM, StorageRefusedError, StorageStrategy, strategy, volume_size_problem
from .tenants import Clinic, StorageStrategyName, TenantsFile

MIB = 2**20
# Node count reported when some clinic fits on no node of a size at all.
UNPLACEABLE = 10**6
PLANNED_STRATEGIES = (StorageStrategyName.AZURE_DISK, StorageStrategyName.AZURE_FILES_NFS)


def kube_reserved_memory_mib(memory_gib: int, max_pods: int, catalogue: Catalogue) -> int:
    """AKS 1.29+: min(20 MiB x max pods + 50 MiB, 25 % of the VM's memory)."""
    r = catalogue.reservations
    return int(min(r.memory_per_pod_mib * max_pods + r.memory_base_mib, r.memory_max_fraction * memory_gib * 1024))


def allocatable_memory_mib(memory_gib: int, max_pods: int, catalogue: Catalogue) -> int:
    """What the kubelet offers to pods: VM memory minus kube-reserved minus the 100 MiB eviction threshold."""
    reserved = kube_reserved_memory_mib(memory_gib, max_pods, catalogue)
    return memory_gib * 1024 - reserved - catalogue.reservations.eviction_mib


def kube_reserved_cpu_m(vcpu: int, catalogue: Catalogue) -> int:
    table = catalogue.reservations.cpu_by_cores
    if vcpu not in table:
        raise ValueError(f"no AKS CPU reservation figure for {vcpu} vCPU in the catalogue")
    return table[vcpu]


def allocatable_cpu_m(vcpu: int, catalogue: Catalogue) -> int:
    return vcpu * 1000 - kube_reserved_cpu_m(vcpu, catalogue)


@dataclass(frozen=True)
class NodeFit:
    vm_size: str
    storage: str
    storage_class: str
    vcpu: int
    memory_gib: int
    max_pods: int
    by_cpu: int
    by_memory: int
    by_pods: int
    by_disks: int | None  # None: the strategy takes no data-disk slot
    per_node: int
    binding: str
    nodes_for_clinics: int
    nodes: int  # with failure headroom; the autoscaler floor
    node_monthly_usd: float | None
    # This stack's clinics on this size, spare node included: what the bill says today.
    per_clinic_monthly_usd: float | None
    # A full node's share plus storage: what a clinic costs once the platform has grown; compares sizes fairly.
    per_clinic_at_density_usd: float | None
    cost_is_lower_bound: bool
    used_by_stack: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CapacityPlan:
    clinics: int
    density_target: int
    chosen: NodeFit
    rows: tuple[NodeFit, ...]
    pool_min_count: int
    pool_max_count: int
    max_pods: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "clinics": self.clinics,
            "densityTarget": self.density_target,
            "pool": {"minCount": self.pool_min_count, "maxCount": self.pool_max_count, "maxPods": self.max_pods},
            "chosen": self.chosen.as_dict(),
            "rows": [r.as_dict() for r in self.rows],
        }


def clinic_strategy(clinic: Clinic, settings: Settings) -> StorageStrategy:
    return strategy(clinic.storage or settings.storage.strategy, settings.storage.sku)


@dataclass(frozen=True)
class Demand:
    cpu_m: int
    memory_mib: float
    disk: bool


def pack(demands: list[Demand], cpu_m: float, memory_mib: float, pods: int, disks: int | None) -> int | None:
    """Nodes needed to place every clinic, by first-fit decreasing over CPU, memory, pod and disk slots.

    The scheduler places real pods, not an average clinic: mixed sizes fragment, and an average can promise
    fewer nodes than the clinics need. None when one clinic alone does not fit on an empty node.
    """
    free: list[list[float]] = []  # per node: cpu, memory, pod slots, disk slots left
    fresh = [cpu_m, memory_mib, float(pods), float("inf") if disks is None else float(disks)]
    for d in sorted(demands, key=lambda d: (d.cpu_m, d.memory_mib), reverse=True):
        need = [d.cpu_m, d.memory_mib, 1.0, 1.0 if d.disk else 0.0]
        node = next((n for n in free if all(left >= want for left, want in zip(n, need, strict=True))), None)
        if node is None:
            if not all(left >= want for left, want in zip(fresh, need, strict=True)):
                return None
            node = list(fresh)
            free.append(node)
        for i, want in enumerate(need):
            node[i] -= want
    return len(free)


def fit(
    vm_size: str,
    node: NodeSize,
    default_storage: StorageStrategyName,
    clinics: list[Clinic],
    settings: Settings,
    catalogue: Catalogue,
) -> NodeFit:
    cap = settings.capacity
    ds = cap.daemon_set_reserve
    max_pods = settings.cluster.orca_pool.max_pods
    cpu_free = allocatable_cpu_m(node.vcpu, catalogue) - parse_millicores(ds.cpu)
    mem_free_mib = allocatable_memory_mib(node.memory_gib, max_pods, catalogue) - parse_bytes(ds.memory) // MIB
    default = strategy(default_storage, settings.storage.sku)
    n = len(clinics)
    sizes = [catalogue.clinic_sizes[c.size] for c in clinics]
    avg_cpu = sum(s.cpu_request_m for s in sizes) / n
    avg_mem_mib = sum(s.memory_request_bytes for s in sizes) / n / MIB
    strategies = [strategy(c.storage, settings.storage.sku) if c.storage else default for c in clinics]
    disk_share = sum(1 for s in strategies if s.attaches_per_volume) / n

    by_cpu = max(int(cpu_free // avg_cpu), 0)
    by_memory = max(int(mem_free_mib // avg_mem_mib), 0)
    by_pods = max(max_pods - ds.pods, 0)
    by_disks = int(node.max_data_disks // disk_share) if disk_share else None
    limits = {"cpu": by_cpu, "memory": by_memory, "pods": by_pods}
    if by_disks is not None:
        limits["data disks"] = by_disks
    binding = min(limits, key=lambda k: (limits[k], k != "data disks"))
    per_node = limits[binding]
    demands = [
        Demand(s.cpu_request_m, s.memory_request_bytes / MIB, st.attaches_per_volume)
        for s, st in zip(sizes, strategies, strict=True)
    ]
    packed = pack(demands, cpu_free, mem_free_mib, by_pods, node.max_data_disks if disk_share else None)
    nodes_for_clinics = packed if packed is not None else UNPLACEABLE
    nodes = nodes_for_clinics + cap.failure_headroom_nodes
    storage_usd = sum(s.monthly_usd(c.volume_bytes, catalogue) for s, c in zip(strategies, clinics, strict=True))
    per_clinic = None if node.monthly_usd is None else (node.monthly_usd * nodes + storage_usd) / n
    at_density = None
    if node.monthly_usd is not None and per_node:
        at_density = node.monthly_usd / per_node + storage_usd / n
    zrs = settings.storage.sku.endswith("ZRS")
    return NodeFit(
        vm_size=vm_size,
        storage=default_storage.value,
        storage_class=default.storage_class,
        vcpu=node.vcpu,
        memory_gib=node.memory_gib,
        max_pods=max_pods,
        by_cpu=by_cpu,
        by_memory=by_memory,
        by_pods=by_pods,
        by_disks=by_disks,
        per_node=per_node,
        binding=binding,
        nodes_for_clinics=nodes_for_clinics,
        nodes=nodes,
        node_monthly_usd=node.monthly_usd,
        per_clinic_monthly_usd=None if per_clinic is None else round(per_clinic, 2),
        per_clinic_at_density_usd=None if at_density is None else round(at_density, 2),
        cost_is_lower_bound=zrs,
    )


def storage_problems(settings: Settings, tenants: TenantsFile, source: str, config_source: str) -> list[Problem]:
    """Strategies that must not hold PostgreSQL, volumes outside what their storage offers, snapshots beyond it."""
    problems: list[Problem] = []
    used: dict[str, StorageStrategy] = {}
    default: StorageStrategy | None = None
    try:
        default = strategy(settings.storage.strategy, settings.storage.sku)
    except StorageRefusedError as exc:
        problems.append(Problem(config_source, "orca-platform:storage.strategy", str(exc)))
    for clinic in tenants.clinics:
        store = default
        if clinic.storage is not None:
            try:
                store = strategy(clinic.storage, settings.storage.sku)
            except StorageRefusedError as exc:
                problems.append(Problem(source, "storage", str(exc), clinic.id))
                continue
        if store is None:
            continue
        used[store.name.value] = store
        wrong = volume_size_problem(store, clinic.volume_bytes)
        if wrong:
            message, fix = wrong
            problems.append(Problem(source, "volumeSize", message, clinic.id, show(clinic.volume_size), fix))
    keep = settings.backup.snapshot_retention_count
    for store in used.values():
        room = store.max_snapshots - SNAPSHOT_HEADROOM
        if keep > room:
            problems.append(
                Problem(
                    config_source,
                    "orca-platform:backup.snapshotRetentionCount",
                    f"keeps {keep} snapshots per volume; {store.name.value} keeps at most {store.max_snapshots}, "
                    f"and {SNAPSHOT_HEADROOM} are left for the snapshots taken before each upgrade",
                    value=show(keep),
                    fix=f"keep {room} or fewer",
                )
            )
    return problems


def capacity_rows(settings: Settings, tenants: TenantsFile, catalogue: Catalogue) -> list[NodeFit]:
    """One row per catalogued node size and storage strategy, the stack's own choice marked."""
    catalogue = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    pool = settings.cluster.orca_pool
    # Suspended clinics count: they may be resumed at any time without a pool change.
    clinics = list(tenants.clinics)
    rows: list[NodeFit] = []
    for vm_size, node in catalogue.node_sizes.sizes.items():
        for name in PLANNED_STRATEGIES:
            row = fit(vm_size, node, name, clinics, settings, catalogue)
            used = vm_size == pool.vm_size and name is settings.storage.strategy
            rows.append(replace(row, used_by_stack=used))
    return rows


def plan_capacity(
    settings: Settings, tenants: TenantsFile, catalogue: Catalogue, config_source: str = "stack config"
) -> CapacityPlan:
    """The stack's own row, enforced: raises InputError when the stack cannot hold its clinics or its target."""
    pool = settings.cluster.orca_pool
    rows = capacity_rows(settings, tenants, catalogue)
    chosen = next((r for r in rows if r.used_by_stack), None)
    where = "orca-platform:cluster.orcaPool.vmSize"
    if chosen is None:
        raise InputError(
            [
                Problem(
                    config_source, where, f"{pool.vm_size} is not in the node catalogue (orca_platform/catalogue.yaml)"
                )
            ]
        )
    target = settings.capacity.density_target
    problems: list[Problem] = []
    if chosen.nodes_for_clinics == UNPLACEABLE:
        problems.append(
            Problem(
                config_source,
                where,
                f"some clinic's size class needs more CPU or memory than one {chosen.vm_size} node offers. "
                f"{cheapest_fix(rows, target)}",
            )
        )
    elif chosen.per_node < target:
        problems.append(
            Problem(
                config_source,
                where,
                f"{chosen.vm_size} with {chosen.storage} holds {chosen.per_node} clinics per node "
                f"(binding limit: {chosen.binding}); the density target is {target}. {cheapest_fix(rows, target)}",
            )
        )
    elif chosen.nodes > pool.max_count:
        problems.append(
            Problem(
                config_source,
                "orca-platform:cluster.orcaPool.maxCount",
                f"{len(tenants.clinics)} clinics need {chosen.nodes} {chosen.vm_size} nodes "
                f"({chosen.nodes_for_clinics} at {chosen.per_node} per node, binding limit: {chosen.binding}, plus "
                f"{settings.capacity.failure_headroom_nodes} spare), but maxCount is {pool.max_count}. "
                f"Cheapest fix: raise maxCount to {chosen.nodes}.",
            )
        )
    if problems:
        raise InputError(problems)
    return CapacityPlan(
        clinics=len(tenants.clinics),
        density_target=target,
        chosen=chosen,
        rows=tuple(rows),
        pool_min_count=max(pool.min_count, chosen.nodes),
        pool_max_count=pool.max_count,
        max_pods=pool.max_pods,
    )


def cheapest_fix(rows: list[NodeFit], target: int) -> str:
    """The cheapest catalogued change that reaches the target, keeping the storage strategy first: existing clinic
    volumes cannot change class (their claims are protected), so another strategy only suits a stack with none yet."""
    good = [r for r in rows if r.per_node >= target and r.per_clinic_at_density_usd is not None]
    current = next((r.storage for r in rows if r.used_by_stack), None)

    def cost(r: NodeFit) -> tuple[float, int]:
        return (r.per_clinic_at_density_usd or 0.0, r.vcpu)

    keeping = sorted((r for r in good if r.storage == current), key=cost)
    other = sorted((r for r in good if r.storage != current), key=cost)
    parts = []
    if keeping:
        best = keeping[0]
        parts.append(
            f"Cheapest fix: orcaPool.vmSize {best.vm_size} with storage.strategy {best.storage} unchanged "
            f"({best.per_node} per node, about ${best.per_clinic_at_density_usd:.2f} per clinic per month at "
            "density; a new VM size replaces the ORCA pool and moves every clinic once)."
        )
    if other and (not keeping or cost(other[0]) < cost(keeping[0])):
        alt = other[0]
        parts.append(
            f"A stack with no clinic volumes yet could instead use storage.strategy {alt.storage} on {alt.vm_size} "
            f"({alt.per_node} per node, about ${alt.per_clinic_at_density_usd:.2f})."
        )
    parts.append("Or lower capacity.densityTarget.")
    return " ".join(parts)
