"""Density and cost planning for the ORCA node pool.

Given the stack's settings and its clinics, work out for every node size and storage strategy how many clinics a node
holds by CPU, memory, pod slots and data-disk slots, which of those binds, how many nodes the clinics need with
headroom, and what a clinic costs per month. The stack's own choice must reach its density target and fit its pool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from orca_platform.model.catalogue import Catalogue, NodeSize
from orca_platform.model.errors import InputError, Problem, show
from orca_platform.model.fields import StorageStrategyName
from orca_platform.model.quantities import parse_bytes, parse_millicores
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic, TenantsFile

from .storage import (
    SNAPSHOT_HEADROOM,
    StorageRefusedError,
    StorageStrategy,
    options,
    strategy,
    usable,
    volume_size_problem,
)

MIB = 2**20
# Node count reported when some clinic fits on no node of a size at all.
UNPLACEABLE = 10**6
# Pod slots left free on a node planned for its density: the clinics' snapshot and dump jobs run on the ORCA pool.
JOB_POD_MARGIN = 4


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
    storage_sku: str
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
    nodes_for_clinics: int  # active clinics: a suspended clinic has no pod
    nodes: int  # with failure headroom; the autoscaler floor
    # Every clinic resumed, with failure headroom: what maxCount must allow, so a resume needs no config change.
    nodes_all_resumed: int
    node_monthly_usd: float | None
    # This stack's clinics on this size, spare node included: what the bill says today.
    per_clinic_monthly_usd: float | None
    # A full node's share plus storage: what a clinic costs once the platform has grown; compares sizes fairly.
    per_clinic_at_density_usd: float | None
    # True when a price in it is an estimate (catalogue.yaml "confirmed: false").
    cost_estimated: bool
    used_by_stack: bool = False
    # maxPods this row was planned with: the stack's own for its row, else what the density needs.
    max_pods_for_density: int = 0

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


def clinic_strategy(clinic: Clinic, settings: Settings, catalogue: Catalogue | None = None) -> StorageStrategy:
    """A clinic's own pins first (`storage`, `storageSku`), then the stack's default for clinics that pin nothing."""
    return strategy(clinic.storage or settings.storage.strategy, clinic.storage_sku or settings.storage.sku, catalogue)


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
    ordered = sorted(demands, key=lambda d: (d.cpu_m, d.memory_mib), reverse=True)
    if not ordered:
        return 0
    # A node that cannot take the smallest demand left never takes another: drop it from the scan (same result,
    # linear instead of quadratic in clinics for a full pool).
    smallest = [min(d.cpu_m for d in ordered), min(d.memory_mib for d in ordered), 1.0, 0.0]
    fresh = [cpu_m, memory_mib, float(pods), float("inf") if disks is None else float(disks)]
    open_nodes: list[list[float]] = []  # per node: cpu, memory, pod slots, disk slots left
    count = 0
    for d in ordered:
        need = [d.cpu_m, d.memory_mib, 1.0, 1.0 if d.disk else 0.0]
        node = next((n for n in open_nodes if all(left >= want for left, want in zip(n, need, strict=True))), None)
        if node is None:
            if not all(left >= want for left, want in zip(fresh, need, strict=True)):
                return None
            node = list(fresh)
            open_nodes.append(node)
            count += 1
        for i, want in enumerate(need):
            node[i] -= want
        if not all(left >= want for left, want in zip(node, smallest, strict=True)):
            open_nodes.remove(node)
    return count


def _pinned_or(
    default: StorageStrategy, clinic: Clinic, settings: Settings, catalogue: Catalogue, pins: bool = True
) -> StorageStrategy:
    """A pinned clinic keeps its own class (its volume never moves); the others take the row's option."""
    if not pins or (clinic.storage is None and clinic.storage_sku is None):
        return default
    return clinic_strategy(clinic, settings, catalogue)


def fit(
    vm_size: str,
    node: NodeSize,
    default_storage: StorageStrategyName | StorageStrategy,
    clinics: list[Clinic],
    settings: Settings,
    catalogue: Catalogue,
    max_pods: int | None = None,
    *,
    packing: bool = True,
    resumed: bool = True,
    pins: bool = True,
    floor: int = 0,
) -> NodeFit:
    """One node size with one storage option for the clinics that pin none. max_pods: the pool's (default: the
    stack's); suspended clinics take no CPU, memory, pod or disk slot, but maxCount must let them all resume.
    packing=False skips the node counts (per-node limits only); resumed=False skips the all-resumed count;
    pins=False puts every clinic on the row's option (a comparison: what this mix would cost there). floor: the
    pool's minCount, which the autoscaler never goes below: the stack's own row counts (and bills) those nodes."""
    cap = settings.capacity
    ds = cap.daemon_set_reserve
    if max_pods is None:
        max_pods = settings.cluster.orca_pool.max_pods
    cpu_free = allocatable_cpu_m(node.vcpu, catalogue) - parse_millicores(ds.cpu)
    mem_free_mib = allocatable_memory_mib(node.memory_gib, max_pods, catalogue) - parse_bytes(ds.memory) // MIB
    default = (
        default_storage
        if isinstance(default_storage, StorageStrategy)
        else strategy(default_storage, settings.storage.sku, catalogue)
    )
    # The per-node figures describe the clinics' mix, suspended ones included (they come back); the node counts
    # below place only the clinics that have a pod. One pass over the clinics: this runs for every row.
    n = len(clinics)
    classes = {
        name: (size.cpu_request_m, size.memory_request_bytes / MIB) for name, size in catalogue.clinic_sizes.items()
    }
    strategies = [_pinned_or(default, c, settings, catalogue, pins) for c in clinics]
    avg_cpu = sum(classes[c.size][0] for c in clinics) / n
    avg_mem_mib = sum(classes[c.size][1] for c in clinics) / n
    disk_share = sum(1 for st in strategies if st.attaches_per_volume) / n

    by_cpu = max(int(cpu_free // avg_cpu), 0)
    by_memory = max(int(mem_free_mib // avg_mem_mib), 0)
    by_pods = max(max_pods - ds.pods, 0)
    by_disks = int(node.max_data_disks // disk_share) if disk_share else None
    limits = {"cpu": by_cpu, "memory": by_memory, "pods": by_pods}
    if by_disks is not None:
        limits["data disks"] = by_disks
    binding = min(limits, key=lambda k: (limits[k], k != "data disks"))
    per_node = limits[binding]

    demands = [Demand(*classes[c.size], st.attaches_per_volume) for c, st in zip(clinics, strategies, strict=True)]
    active = [d for d, c in zip(demands, clinics, strict=True) if c.active]

    def nodes_for(group: list[Demand]) -> int:
        packed = pack(group, cpu_free, mem_free_mib, by_pods, node.max_data_disks if disk_share else None)
        return packed if packed is not None else UNPLACEABLE

    nodes_for_clinics = nodes_for(active) if packing and active else 0
    if not packing:
        everyone = 0
    elif resumed and len(active) != len(demands):
        everyone = nodes_for(demands)
    else:
        everyone = nodes_for_clinics
    nodes = max(nodes_for_clinics + cap.failure_headroom_nodes, floor)
    all_strategies = strategies
    storage_usd = 0.0
    if packing:
        storage_usd = sum(st.monthly_usd(c.volume_bytes, catalogue) for st, c in zip(strategies, clinics, strict=True))
    per_clinic = None if node.monthly_usd is None else (node.monthly_usd * nodes + storage_usd) / n
    at_density = None
    if node.monthly_usd is not None and per_node:
        at_density = node.monthly_usd / per_node + storage_usd / n
    estimated = not node.price_confirmed or not all(s.price_confirmed() for s in all_strategies)
    return NodeFit(
        vm_size=vm_size,
        storage=default.name.value,
        storage_sku=default.sku,
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
        nodes_all_resumed=(everyone + cap.failure_headroom_nodes) if everyone != UNPLACEABLE else UNPLACEABLE,
        node_monthly_usd=node.monthly_usd,
        per_clinic_monthly_usd=None if per_clinic is None else round(per_clinic, 2),
        per_clinic_at_density_usd=None if at_density is None else round(at_density, 2),
        cost_estimated=estimated,
        max_pods_for_density=max_pods,
    )


def density_max_pods(
    vm_size: str, node: NodeSize, default: StorageStrategy, clinics: list[Clinic], settings: Settings, cat: Catalogue
) -> int:
    """The maxPods a new pool of this size would be created with: what its density needs (fewer pods reserve less
    memory) plus the DaemonSets and room for the backup jobs, within AKS's 250 and the settings' 10 to 250."""
    ceiling = cat.limit("aksMaxPodsPerNode")
    max_pods = ceiling
    for _ in range(4):
        row = fit(vm_size, node, default, clinics, settings, cat, max_pods, packing=False, pins=False)
        others = [row.by_cpu, row.by_memory] + ([row.by_disks] if row.by_disks is not None else [])
        wanted = min(ceiling, max(min(others) + settings.capacity.daemon_set_reserve.pods + JOB_POD_MARGIN, 10))
        if wanted == max_pods:
            break
        max_pods = wanted
    return max_pods


def reference_clinic(catalogue: Catalogue) -> Clinic:
    """The catalogue's reference clinic (the "small clinic" of the headroom and cost figures), as a tenant entry."""
    ref = catalogue.reference_clinic
    return Clinic.model_validate(
        {
            "id": "reference",
            "name": "reference",
            "size": ref.size,
            "volumeSize": f"{ref.volume_gib}Gi",
            "sourceCidrs": ["192.168.0.0/24"],
        }
    )


def reference_per_node(
    settings: Settings,
    catalogue: Catalogue,
    vm_size: str | None = None,
    option: StorageStrategy | None = None,
    max_pods: int | None = None,
) -> int:
    """Reference clinics one node holds: by default of the stack's size and maxPods with its storage for new clinics,
    which is what "N more small clinics" counts in."""
    catalogue = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    vm = vm_size or settings.cluster.orca_pool.vm_size
    store = option or strategy(settings.storage.strategy, settings.storage.sku, catalogue)
    clinics = [reference_clinic(catalogue)]
    node = catalogue.node_sizes.sizes[vm]
    return fit(vm, node, store, clinics, settings, catalogue, max_pods, packing=False).per_node


def storage_problems(settings: Settings, tenants: TenantsFile, source: str, config_source: str) -> list[Problem]:
    """Strategies that must not hold PostgreSQL, volumes outside what their storage offers, snapshots beyond it."""
    problems: list[Problem] = []
    used: dict[str, StorageStrategy] = {}
    zonal = bool(settings.cluster.zones)
    try:
        default = strategy(settings.storage.strategy, settings.storage.sku)
        if default.requires_zonal_nodes and not zonal:
            problems.append(Problem(config_source, "orca-platform:storage.sku", _ZONAL))
    except StorageRefusedError as exc:
        problems.append(Problem(config_source, "orca-platform:storage.strategy", str(exc)))
    for clinic in tenants.clinics:
        field = "storage" if clinic.storage is not None else "storageSku"
        try:
            store = clinic_strategy(clinic, settings)
        except StorageRefusedError as exc:
            # The stack's own default is reported once, above.
            if clinic.storage is not None or clinic.storage_sku is not None:
                problems.append(Problem(source, field, str(exc), clinic.id))
            continue
        if (clinic.storage is not None or clinic.storage_sku is not None) and store.requires_zonal_nodes and not zonal:
            problems.append(Problem(source, "storageSku", _ZONAL, clinic.id))
        used[store.storage_class] = store
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


_ZONAL = "Premium SSD v2 attaches only to VMs in a zone: set cluster.zones, or use Premium_LRS / Premium_ZRS"


def capacity_rows(settings: Settings, tenants: TenantsFile, catalogue: Catalogue) -> list[NodeFit]:
    """One row per catalogued node size and storage option usable by this stack, the stack's own choice marked.
    Rows other than the stack's put every clinic on their option and plan with the maxPods their density needs (a
    new pool would be created): what this mix of clinics would cost there."""
    catalogue = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    pool = settings.cluster.orca_pool
    clinics = list(tenants.clinics)
    zonal = bool(settings.cluster.zones)
    try:
        own: StorageStrategy | None = strategy(settings.storage.strategy, settings.storage.sku, catalogue)
    except StorageRefusedError:
        own = None  # storage_problems names it; the other rows still compare
    own_class = own.storage_class if own else ""
    # Options as redundant as the stack's own (a zonal stack's must be zone-redundant anyway, see storage.usable).
    redundant = own.zone_redundant if own else zonal
    candidates = [
        o
        for o in options(catalogue)
        if (usable(o, zonal) is None and o.zone_redundant == redundant) or o.storage_class == own_class
    ]
    if own is not None and own_class not in {o.storage_class for o in candidates}:
        candidates.append(own)
    rows: list[NodeFit] = []
    for vm_size, node in catalogue.node_sizes.sizes.items():
        for option in candidates:
            used = vm_size == pool.vm_size and option.storage_class == own_class
            if used:
                row = fit(vm_size, node, option, clinics, settings, catalogue, floor=pool.min_count)
            else:
                pods = density_max_pods(vm_size, node, option, clinics, settings, catalogue)
                row = fit(vm_size, node, option, clinics, settings, catalogue, pods, resumed=False, pins=False)
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
                    config_source,
                    where,
                    f"{pool.vm_size} is not in the node catalogue (orca_platform/model/catalogue.yaml)",
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
    elif chosen.nodes_all_resumed > pool.max_count:
        suspended = sum(1 for c in tenants.clinics if not c.active)
        resumed = f", every suspended clinic ({suspended}) resumed," if suspended else ""
        problems.append(
            Problem(
                config_source,
                "orca-platform:cluster.orcaPool.maxCount",
                f"{len(tenants.clinics)} clinics{resumed} need {chosen.nodes_all_resumed} {chosen.vm_size} nodes "
                f"(at {chosen.per_node} per node, binding limit: {chosen.binding}, plus "
                f"{settings.capacity.failure_headroom_nodes} spare), but maxCount is {pool.max_count}. "
                f"Cheapest fix: raise maxCount to {chosen.nodes_all_resumed}.",
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
    """The cheapest catalogued change that reaches the target, keeping the storage option first: existing clinic
    volumes cannot change class (their claims are protected), so another option only suits new clinics (pinning the
    existing ones) or a stack with none yet."""
    good = [r for r in rows if r.per_node >= target and r.per_clinic_at_density_usd is not None]
    current = next((r.storage_class for r in rows if r.used_by_stack), None)

    def cost(r: NodeFit) -> tuple[float, int]:
        return (r.per_clinic_at_density_usd or 0.0, r.vcpu)

    keeping = sorted((r for r in good if r.storage_class == current), key=cost)
    other = sorted((r for r in good if r.storage_class != current), key=cost)
    parts = []
    if keeping:
        best = keeping[0]
        parts.append(
            f"Cheapest fix: orcaPool.vmSize {best.vm_size} (maxPods {best.max_pods_for_density}) with storage "
            f"{best.storage} {best.storage_sku} unchanged ({best.per_node} per node, about "
            f"${best.per_clinic_at_density_usd:.2f} per clinic per month at density; a new VM size replaces the ORCA "
            "pool and moves every clinic once)."
        )
    if other and (not keeping or cost(other[0]) < cost(keeping[0])):
        alt = other[0]
        parts.append(
            f"For new clinics (pin the existing ones first) or a stack with no clinic volumes yet: storage "
            f"{alt.storage} {alt.storage_sku} on {alt.vm_size} ({alt.per_node} per node, about "
            f"${alt.per_clinic_at_density_usd:.2f})."
        )
    parts.append("Or lower capacity.densityTarget.")
    return " ".join(parts)
