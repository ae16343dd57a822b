"""The walls of one cluster, one stack and the subscription they share, for the stack as it would be rendered.

Each wall is a limit (catalogue.yaml `limits`, with its source), what this stack uses of it, and what one more clinic
of the stack's defaults for new clinics (the catalogue's reference clinic, unpinned) would add. `plan_stack` refuses
a stack that crosses a hard wall before any resource is registered, naming the wall and the fix; `make plan` prints
the headroom to each ("N more small clinics before ..."). Pure: no Pulumi, no I/O.

Scopes: "node" walls hold on every node's IP configuration in the internal load balancer's backend pool (AKS puts
every node behind its one internal load balancer, `kubernetes-internal`); "cluster" on that load balancer, its NSG
and the subnets; "stack" on the Pulumi state; "subscription" on everything the stack shares with its neighbours.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orca_platform.model.catalogue import Catalogue
from orca_platform.model.errors import Problem
from orca_platform.model.settings import Settings

from .addressing import usable_hosts
from .front_door import FrontDoorPlan, new_clinic_front_door
from .schedules import runs_per_hour
from .storage import StorageStrategy, strategy

if TYPE_CHECKING:
    from .clinic import ClinicPlan

# Role assignments the stack makes besides one per clinic (components/cluster.py): the control-plane identity on
# the network and data groups; then AcrPull and one per admin group where configured.
CLUSTER_ASSIGNMENTS = 2
# Snapshot runs write twice to the storage management API: the share snapshot, and the deletion of the oldest.
WRITES_PER_SNAPSHOT_RUN = 2


@dataclass(frozen=True)
class Wall:
    id: str
    title: str
    scope: str
    limit: int
    used: float
    # What one more clinic of the stack's defaults for new clinics adds (0: new clinics do not reach this wall).
    per_new_clinic: float
    source: str
    fix: str
    field: str
    hard: bool = True
    # Where crossing it is reported instead ("" = here): the same limit is never reported twice.
    enforced_by: str = ""
    confirmed: bool = True

    @property
    def crossed(self) -> bool:
        return self.used > self.limit

    @property
    def headroom(self) -> int | None:
        """More clinics of the stack's defaults that fit before the wall; None when they never reach it."""
        if self.per_new_clinic <= 0:
            return None
        return max(math.floor((self.limit - self.used) / self.per_new_clinic + 1e-9), 0)

    def bites_at(self, clinics_now: int) -> int | None:
        """The clinic count (now plus new ones) at which the wall is first crossed."""
        room = self.headroom
        return None if room is None else clinics_now + room + 1

    def describe(self) -> str:
        used = f"{self.used:.0f}" if float(self.used).is_integer() else f"{self.used:.1f}"
        note = "" if self.confirmed else " (limit unconfirmed)"
        return f"{self.title}: {used} of {self.limit} ({self.scope}){note}"


@dataclass(frozen=True)
class NewClinic:
    """What the headroom figures add: the reference clinic with the stack's defaults."""

    front_door: FrontDoorPlan
    storage: StorageStrategy
    claim_gib: int
    per_node: int  # reference clinics one ORCA node holds (the stack's own node size and maxPods)


def new_clinic(settings: Settings, catalogue: Catalogue, per_node: int) -> NewClinic:
    store = strategy(settings.storage.strategy, settings.storage.sku, catalogue)
    claim = store.claim_gib(catalogue.reference_clinic.volume_gib * 2**30)
    return NewClinic(new_clinic_front_door(settings), store, claim, per_node)


def _claims(c: ClinicPlan) -> int:
    """Volume generations of a clinic: the original and one per restore, each its own share or disk."""
    return 1 + len(c.clinic.restores)


def _peak_snapshot_runs(clinics: Sequence[ClinicPlan]) -> int:
    """Snapshot runs in the busiest hour of the day, from each Files clinic's rendered schedule (worst case for a
    schedule this cannot read: every run in one hour)."""
    hours = [0] * 24
    for c in clinics:
        if not (c.clinic.active and c.storage.is_files):
            continue
        per_hour = runs_per_hour(c.snapshot_schedule)
        if per_hour is None:
            hours[0] += 60
            continue
        for h, n in enumerate(per_hour):
            hours[h] += n
    return max(hours)


def _new_clinic_writes(settings: Settings, new: NewClinic) -> float:
    """One more clinic's scheduled writes in the busiest hour: all of them within a window of an hour or less, the
    window's share of them beyond (offsets spread evenly by the hash)."""
    if not new.storage.is_files:
        return 0.0
    window = settings.backup.snapshot_stagger_minutes
    share = 1.0 if window <= 60 else 60 / window
    return WRITES_PER_SNAPSHOT_RUN * share


def load_balancer_walls(
    settings: Settings, clinics: Sequence[ClinicPlan], catalogue: Catalogue, new: NewClinic
) -> list[Wall]:
    lb_clinics = [c for c in clinics if c.front_door.load_balancer]
    rules = catalogue.limit("ingressControllerLbRules") + sum(len(c.front_door.lb_rule_ports) for c in lb_clinics)
    new_rules = len(new.front_door.lb_rule_ports)
    new_lb = 1 if new.front_door.load_balancer else 0
    src = catalogue.limits
    lb_fix = (
        "Put PUSH through the ingress (frontDoor.pushThroughIngress: true, one rule per clinic instead of two), "
        "give new clinics frontDoor.mode: ingress-only (no rule), or open a new cell (docs/scale.md)."
    )
    nsg_sources = {tuple(sorted(c.clinic.source_cidrs)) for c in lb_clinics}
    ilb = ipaddress.IPv4Network(settings.network.ilb_subnet_cidr)
    return [
        Wall(
            "lb-rules-per-node",
            "load-balancing rules per node IP configuration",
            "node",
            catalogue.limit("lbRulesPerIpConfiguration"),
            rules,
            new_rules,
            src["lbRulesPerIpConfiguration"].source,
            lb_fix,
            "orca-platform:frontDoor",
        ),
        Wall(
            "lb-rules-per-lb",
            "rules of the internal load balancer",
            "cluster",
            catalogue.limit("lbRulesPerLoadBalancer"),
            rules,
            new_rules,
            src["lbRulesPerLoadBalancer"].source,
            lb_fix,
            "orca-platform:frontDoor",
        ),
        Wall(
            "lb-frontends",
            "frontend IP configurations of the internal load balancer",
            "cluster",
            catalogue.limit("lbFrontendsPerLoadBalancer"),
            1 + len(lb_clinics),
            new_lb,
            src["lbFrontendsPerLoadBalancer"].source,
            "Give new clinics frontDoor.mode: ingress-only, or open a new cell (docs/scale.md).",
            "orca-platform:frontDoor",
        ),
        Wall(
            "nsg-rules",
            "rules of the AKS node NSG (one per clinic load balancer with source ranges)",
            "cluster",
            catalogue.limit("nsgRulesPerGroup"),
            # The ingress controller's, one per distinct allow-list, and the shared deny once any clinic has one.
            1 + len(nsg_sources) + (1 if lb_clinics or new_lb else 0),
            new_lb,
            src["nsgRulesPerGroup"].source,
            "Give new clinics frontDoor.mode: ingress-only (their allow-list is the ingress Policy, not the NSG).",
            "orca-platform:frontDoor",
        ),
        Wall(
            "ilb-subnet",
            f"addresses of the ILB subnet {ilb}",
            "cluster",
            usable_hosts(ilb),
            1 + len(lb_clinics),
            new_lb,
            "Azure keeps 5 addresses of every subnet; one frontend per clinic load balancer plus the ingress",
            "Widen network.ilbSubnetCidr, or give new clinics frontDoor.mode: ingress-only.",
            "orca-platform:network.ilbSubnetCidr",
            enforced_by="addressing",
        ),
    ]


def _account_groups(clinics: Sequence[ClinicPlan]) -> dict[str, tuple[StorageStrategy, int]]:
    """Azure Files classes in use and their shares (volume generations)."""
    groups: dict[str, tuple[StorageStrategy, int]] = {}
    for c in clinics:
        if c.storage.is_files:
            opt, n = groups.get(c.storage.storage_class, (c.storage, 0))
            groups[c.storage.storage_class] = (opt, n + _claims(c))
    return groups


def _accounts(groups: dict[str, tuple[StorageStrategy, int]]) -> int:
    """Storage accounts (each with its private endpoint) the Files driver makes: one per class that packs every
    share into the first matching account; ceil(shares / shares per account) where accountQuota spreads them."""
    total = 0
    for opt, shares in groups.values():
        total += 1 if opt.shares_per_account is None else math.ceil(shares / opt.shares_per_account)
    return total


def storage_walls(
    settings: Settings, clinics: Sequence[ClinicPlan], catalogue: Catalogue, new: NewClinic, nodes_in_subnet: int
) -> list[Wall]:
    walls: list[Wall] = []
    groups = _account_groups(clinics)
    for cls, (opt, shares) in sorted(groups.items()):
        if opt.shares_per_account is not None:
            continue
        same = new.storage.storage_class == cls
        walls.append(
            Wall(
                f"files-shares:{cls}",
                f"shares in the one Azure Files account of {cls}",
                "cluster",
                catalogue.limit("filesSharesPerAccountV1"),
                shares,
                1 if same else 0,
                catalogue.limits["filesSharesPerAccountV1"].source,
                "Give new clinics a provisioned v2 class (storage.sku PremiumV2_*: accountQuota spreads its shares).",
                "orca-platform:storage.sku",
            )
        )
        iops = sum(
            opt.share_iops + max(c.claim_gib - opt.minimum_gib, 0) for c in clinics if c.storage.storage_class == cls
        )
        walls.append(
            Wall(
                f"files-iops:{cls}",
                f"baseline IOPS promised by the shares of {cls}, against its one account",
                "cluster",
                catalogue.limit("filesAccountIops"),
                iops,
                (opt.share_iops + max(new.claim_gib - opt.minimum_gib, 0)) if same else 0,
                catalogue.limits["filesAccountIops"].source,
                "Soft: the shares then compete for the account's IOPS. New clinics on PremiumV2_* avoid it.",
                "orca-platform:storage.sku",
                hard=False,
                confirmed=catalogue.limits["filesAccountIops"].confirmed,
            )
        )
    per_new_account = 0.0
    if new.storage.is_files and new.storage.shares_per_account:
        per_new_account = 1 / new.storage.shares_per_account
    elif new.storage.is_files and new.storage.storage_class not in groups:
        per_new_account = 1.0
    reserve = settings.scale.subscription_reserve
    accounts = _accounts(groups)
    walls.append(
        Wall(
            "storage-accounts",
            "storage accounts in the region (Files accounts, the backup account, the reserve)",
            "subscription",
            catalogue.limit("storageAccountsPerRegion"),
            accounts + 1 + reserve.storage_accounts,
            per_new_account,
            catalogue.limits["storageAccountsPerRegion"].source,
            "Open the next cell in another subscription (docs/scale.md).",
            "orca-platform:scale.subscriptionReserve",
        )
    )
    node_net = ipaddress.IPv4Network(settings.network.node_subnet_cidr)
    walls.append(
        Wall(
            "node-subnet",
            f"addresses of the node subnet {node_net} (nodes and surge, and the Files private endpoints)",
            "cluster",
            usable_hosts(node_net),
            nodes_in_subnet + accounts,
            per_new_account,
            "Azure keeps 5 addresses of every subnet; the Files driver puts each account's endpoint in the node subnet",
            "Widen network.nodeSubnetCidr.",
            "orca-platform:network.nodeSubnetCidr",
            # Nodes alone are checked by addressing; only the endpoints pushing it over are reported here.
            enforced_by="addressing" if nodes_in_subnet > usable_hosts(node_net) else "",
        )
    )
    files = [c for c in clinics if c.storage.is_files]
    writes = WRITES_PER_SNAPSHOT_RUN * _peak_snapshot_runs(files)
    scheduled = _new_clinic_writes(settings, new)
    walls.append(
        Wall(
            "storage-writes",
            "storage management writes in the busiest hour of the snapshot schedules (snapshots and prunes)",
            "subscription",
            catalogue.limit("storageManagementWritesPerHour"),
            writes + reserve.management_writes_per_hour,
            scheduled,
            catalogue.limits["storageManagementWritesPerHour"].source,
            "Spread the snapshots (backup.snapshotStaggerMinutes up to the schedule's interval), or open the next "
            "cell in another subscription.",
            "orca-platform:backup.snapshotStaggerMinutes",
        )
    )
    # A stack-wide orca.image change snapshots every running server within one update, on top of the schedule.
    active = sum(1 for c in files if c.clinic.active)
    walls.append(
        Wall(
            "storage-writes-upgrade",
            "storage management writes in an hour with a stack-wide image change (every server's pre-upgrade snapshot)",
            "subscription",
            catalogue.limit("storageManagementWritesPerHour"),
            writes + active + reserve.management_writes_per_hour,
            scheduled + (1 if new.storage.is_files else 0),
            catalogue.limits["storageManagementWritesPerHour"].source,
            "Soft: stage the upgrade (per-clinic image in tenants.yaml, a batch per update) so the throttled "
            "snapshots do not time out the pre-upgrade Jobs.",
            "orca-platform:orca.image",
            hard=False,
        )
    )
    return walls


def stack_walls(
    settings: Settings,
    clinics: Sequence[ClinicPlan],
    catalogue: Catalogue,
    new: NewClinic,
    pool_nodes: int,
) -> list[Wall]:
    """Walls of the pool, the subscription's role assignments and the Pulumi state."""
    cluster = settings.cluster
    reserve = settings.scale.subscription_reserve
    fixed = CLUSTER_ASSIGNMENTS + (1 if cluster.container_registry_id else 0) + len(cluster.admin_group_object_ids)
    budget_kib = settings.scale.checkpoint_budget_mib * 1024
    per_clinic_kib = catalogue.limit("pulumiCheckpointKiBPerClinic")
    return [
        Wall(
            "orca-pool",
            f"nodes of the ORCA pool (maxCount), every suspended clinic resumed, {new.per_node} small per node",
            "cluster",
            cluster.orca_pool.max_count,
            pool_nodes,
            1 / new.per_node if new.per_node else 0.0,
            "the stack's own cluster.orcaPool.maxCount (AKS allows up to 1,000 nodes a pool)",
            "Raise cluster.orcaPool.maxCount (and check the node subnet).",
            "orca-platform:cluster.orcaPool.maxCount",
            enforced_by="capacity",
        ),
        Wall(
            "role-assignments",
            "role assignments in the subscription (one per clinic's backup identity, the cluster's, the reserve)",
            "subscription",
            catalogue.limit("roleAssignmentsPerSubscription"),
            fixed + len(clinics) + reserve.role_assignments,
            1,
            catalogue.limits["roleAssignmentsPerSubscription"].source,
            "Open the next cell in another subscription (docs/scale.md).",
            "orca-platform:scale.subscriptionReserve",
        ),
        Wall(
            "pulumi-checkpoint",
            "Pulumi checkpoint rewritten at every step (KiB)",
            "stack",
            budget_kib,
            catalogue.limit("pulumiCheckpointKiBBase") + per_clinic_kib * len(clinics),
            per_clinic_kib,
            f"a chosen budget (scale.checkpointBudgetMib); {catalogue.limits['pulumiCheckpointKiBPerClinic'].source}",
            "Split the clinics into cells, one stack each (docs/scale.md), or raise scale.checkpointBudgetMib.",
            "orca-platform:scale.checkpointBudgetMib",
        ),
    ]


def nodes_in_node_subnet(settings: Settings) -> int:
    """Every node both pools may reach plus their upgrade surge (as addressing counts them)."""
    c = settings.cluster
    return c.system_pool.max_count + c.orca_pool.max_count + 1 + settings.capacity.surge_nodes


def all_walls(
    settings: Settings,
    clinics: Sequence[ClinicPlan],
    catalogue: Catalogue,
    new: NewClinic,
    pool_nodes: int,
) -> list[Wall]:
    return (
        load_balancer_walls(settings, clinics, catalogue, new)
        + storage_walls(settings, clinics, catalogue, new, nodes_in_node_subnet(settings))
        + stack_walls(settings, clinics, catalogue, new, pool_nodes)
    )


def wall_problems(walls: Sequence[Wall], config_source: str) -> list[Problem]:
    return [
        Problem(config_source, w.field, f"wall crossed: {w.describe()}. Source: {w.source}. Fix: {w.fix}")
        for w in walls
        if w.hard and w.crossed and not w.enforced_by
    ]


def nearest(walls: Sequence[Wall]) -> Wall | None:
    """The first hard wall new clinics meet."""
    reached = [w for w in walls if w.hard and w.headroom is not None]
    return min(reached, key=lambda w: (w.headroom, w.id)) if reached else None
