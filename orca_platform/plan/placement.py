"""Which clinic lands on which node of the chosen size: the packing capacity.pack counts, with names (for the chart).

The same first-fit-decreasing over CPU, memory, pod slots and disk slots as orca_platform/plan/capacity.py; the chart's
node count is checked against the plan's in tests/test_pictures.py, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orca_platform.model.catalogue import Catalogue
from orca_platform.model.quantities import parse_bytes, parse_millicores
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic, TenantsFile

from .capacity import MIB, NodeFit, allocatable_cpu_m, allocatable_memory_mib, clinic_strategy


@dataclass(frozen=True)
class Placed:
    clinic: Clinic
    cpu_m: int
    memory_mib: float
    disk: bool


@dataclass
class Node:
    clinics: list[Placed] = field(default_factory=list)

    def used(self) -> tuple[float, float, int, int]:
        return (
            sum(p.cpu_m for p in self.clinics),
            sum(p.memory_mib for p in self.clinics),
            len(self.clinics),
            sum(1 for p in self.clinics if p.disk),
        )


@dataclass(frozen=True)
class Placement:
    """The chosen row's nodes with their clinics, what each node offers, and the spare nodes on top."""

    row: NodeFit
    nodes: tuple[Node, ...]
    cpu_m: float  # per node, for clinics: allocatable minus the DaemonSet reserve
    memory_mib: float
    pods: int
    disks: int | None  # None when the storage strategy attaches no disk per clinic
    spare_nodes: int
    # No pod, so nothing reserved on any node (README, "Density and cost"); a resume finds room or a new node.
    suspended: tuple[Clinic, ...] = ()

    @property
    def headroom_clinics(self) -> int:
        """Clinics of today's average size that still fit on the nodes the clinics need (no new node)."""
        return max(self.row.per_node * len(self.nodes) - sum(len(n.clinics) for n in self.nodes), 0)


def place(settings: Settings, tenants: TenantsFile, catalogue: Catalogue, row: NodeFit) -> Placement:
    catalogue = catalogue.with_overrides(settings.capacity.node_prices, settings.capacity.files_premium_per_gib)
    node = catalogue.node_sizes.sizes[row.vm_size]
    ds = settings.capacity.daemon_set_reserve
    cpu = allocatable_cpu_m(node.vcpu, catalogue) - parse_millicores(ds.cpu)
    memory = allocatable_memory_mib(node.memory_gib, row.max_pods, catalogue) - parse_bytes(ds.memory) // MIB
    pods = max(row.max_pods - ds.pods, 0)
    demands = []
    for c in tenants.clinics:
        if not c.active:
            continue
        size = catalogue.clinic_sizes[c.size]
        store = clinic_strategy(c, settings)
        demands.append(Placed(c, size.cpu_request_m, size.memory_request_bytes / MIB, store.attaches_per_volume))
    disks = node.max_data_disks if any(d.disk for d in demands) else None
    nodes: list[Node] = []
    for d in sorted(demands, key=lambda d: (d.cpu_m, d.memory_mib), reverse=True):

        def fits(n: Node, d: Placed = d) -> bool:
            used_cpu, used_mem, used_pods, used_disks = n.used()
            disk_ok = disks is None or not d.disk or used_disks + 1 <= disks
            return used_cpu + d.cpu_m <= cpu and used_mem + d.memory_mib <= memory and used_pods + 1 <= pods and disk_ok

        target = next((n for n in nodes if fits(n)), None)
        if target is None:
            target = Node()
            nodes.append(target)
        target.clinics.append(d)
    return Placement(
        row=row,
        nodes=tuple(nodes),
        cpu_m=cpu,
        memory_mib=memory,
        pods=pods,
        disks=disks,
        spare_nodes=settings.capacity.failure_headroom_nodes,
        suspended=tuple(c for c in tenants.clinics if not c.active),
    )
