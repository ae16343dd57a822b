"""Issue 4: the density planner. Hand-checked numbers, the SMB refusal, monotonic properties, enforcement messages,
and the AgentPool the program registers against the plan.

Figures used below (catalogue.yaml, as recorded in shared/azure-facts.md):
  kube-reserved memory = min(20 MiB x maxPods + 50 MiB, 25 % of VM memory); eviction threshold 100 MiB
  kube-reserved CPU by vCPU: 4 -> 140m, 8 -> 180m, 16 -> 260m
  D4s_v5 4 vCPU 16 GiB 8 disks; D8s_v5 8/32/16; D16s_v5 16/64/32; E8s_v5 8/64/16
  small clinic 200m / 1280Mi, medium 400m / 2Gi, large 1000m / 4Gi
  DaemonSet reserve (default): 600m, 1Gi, 10 pods per node
With maxPods 40 the memory reservation is min(20 x 40 + 50, ...) = 850 MiB, so a node offers to clinics:
  D4s_v5: cpu 4000 - 140 - 600 = 3260m;  memory 16384 - 850 - 100 - 1024 = 14410 MiB
  D8s_v5: cpu 8000 - 180 - 600 = 7220m;  memory 32768 - 850 - 100 - 1024 = 30794 MiB
  D16s_v5: cpu 16000 - 260 - 600 = 15140m; memory 65536 - 850 - 100 - 1024 = 63562 MiB
  pods: 40 - 10 = 30
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import itertools
import math
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from orca_test_support import (
    PROJECT_DIR,
    address_plan,
    attempt,
    azure,
    clinic_doc,
    load_settings,
    only,
    program_config,
    raw_settings,
    settings_from,
    stack_file,
    two_clinics,
    write_yaml,
)

from orca_platform.model.catalogue import Catalogue, load_catalogue
from orca_platform.model.errors import InputError
from orca_platform.model.fields import StorageStrategyName
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic, TenantsFile, load_tenants
from orca_platform.plan.capacity import (
    allocatable_cpu_m,
    allocatable_memory_mib,
    fit,
    kube_reserved_cpu_m,
    kube_reserved_memory_mib,
    plan_capacity,
)
from orca_platform.plan.stack_plan import plan_stack
from orca_platform.plan.storage import StorageRefusedError, strategy
from tools.offline.engine import Run

DISK = StorageStrategyName.AZURE_DISK
NFS = StorageStrategyName.AZURE_FILES_NFS
SMB = StorageStrategyName.AZURE_FILES_SMB
MIB = 2**20
SIZES = ("small", "medium", "large")
# Prices pinned so that the cheapest fix is hand-checkable whatever the catalogue's prices become: the sizes of the
# hand computation at their facts-file prices, every other size out of the running.
HAND_PRICES = {"Standard_D4s_v5": 180.0, "Standard_D8s_v5": 360.0, "Standard_D16s_v5": 720.0, "Standard_E8s_v5": 460.0}
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def planner_raw(
    vm: str = "Standard_D8s_v5",
    storage: str = "azure-files-nfs",
    *,
    max_pods: int = 40,
    target: int = 20,
    headroom: int = 0,
    min_count: int = 1,
    max_count: int = 3,
) -> dict[str, Any]:
    """dev's settings with every figure the planner reads pinned, so the hand computations hold."""
    raw = copy.deepcopy(raw_settings("dev"))
    raw["cluster"]["orcaPool"] = {"vmSize": vm, "minCount": min_count, "maxCount": max_count, "maxPods": max_pods}
    raw["storage"] = {"strategy": storage, "sku": "Premium_LRS"}
    prices = {name: HAND_PRICES.get(name, 10_000.0) for name in load_catalogue().node_sizes.sizes}
    raw["capacity"] = {
        "densityTarget": target,
        "daemonSetReserve": {"cpu": "600m", "memory": "1Gi", "pods": 10},
        "failureHeadroomNodes": headroom,
        "surgeNodes": 1,
        "nodePrices": prices,
        "filesPremiumPerGib": 0.2,
    }
    return raw


@functools.cache
def planner_settings(
    vm: str = "Standard_D8s_v5",
    storage: str = "azure-files-nfs",
    *,
    max_pods: int = 40,
    target: int = 20,
    headroom: int = 0,
    min_count: int = 1,
    max_count: int = 3,
) -> Settings:
    raw = planner_raw(
        vm, storage, max_pods=max_pods, target=target, headroom=headroom, min_count=min_count, max_count=max_count
    )
    return settings_from(raw)


def clinics_of(sizes: list[str] | tuple[str, ...], storage: str | None = None) -> list[Clinic]:
    extra = {"storage": storage} if storage else {}
    return [
        Clinic.model_validate(clinic_doc(f"c{n:03d}", size, "32Gi", sourceCidrs=["192.168.10.0/24"], **extra))
        for n, size in enumerate(sizes)
    ]


def node_fit(vm: str, storage: StorageStrategyName, sizes: list[str] | tuple[str, ...], **kwargs: Any) -> Any:
    cat = load_catalogue()
    s = planner_settings(vm, **kwargs)
    return fit(vm, cat.node_sizes.sizes[vm], storage, clinics_of(sizes), s, cat)


# --- AKS reservations -----------------------------------------------------------------------------------------------


def test_memory_allocatable_follows_the_aks_formula(catalogue: Catalogue) -> None:
    # The AKS docs' own example: an 8 GiB VM with max 30 pods -> 20 x 30 + 50 = 650 MiB reserved (25 % would be
    # 2048) -> 8192 - 650 - 100 = 7442 MiB allocatable.
    assert kube_reserved_memory_mib(8, 30, catalogue) == 650
    assert allocatable_memory_mib(8, 30, catalogue) == 7442
    # 32 GiB, 40 pods: 850 reserved -> 31818.
    assert allocatable_memory_mib(32, 40, catalogue) == 31818
    # The 25 % cap binds on a small VM with many pods: 2 GiB, 110 pods -> min(2250, 512) = 512 -> 2048-512-100.
    assert kube_reserved_memory_mib(2, 110, catalogue) == 512
    assert allocatable_memory_mib(2, 110, catalogue) == 1436


@pytest.mark.parametrize(("vcpu", "reserved"), [(1, 60), (2, 100), (4, 140), (8, 180), (16, 260), (32, 420), (64, 740)])
def test_cpu_reservation_table(catalogue: Catalogue, vcpu: int, reserved: int) -> None:
    assert kube_reserved_cpu_m(vcpu, catalogue) == reserved
    assert allocatable_cpu_m(vcpu, catalogue) == vcpu * 1000 - reserved


def test_a_vcpu_count_without_a_published_reservation_is_refused(catalogue: Catalogue) -> None:
    with pytest.raises(ValueError, match="3 vCPU"):
        kube_reserved_cpu_m(3, catalogue)


# --- hand-checked fits ----------------------------------------------------------------------------------------------


def test_d8s_v5_with_one_azure_disk_per_clinic_is_capped_at_16_by_data_disks() -> None:
    row = node_fit("Standard_D8s_v5", DISK, ["small"] * 20, headroom=1)
    assert row.by_cpu == 36  # 7220 // 200
    assert row.by_memory == 24  # 30794 // 1280 = 24.06
    assert row.by_pods == 30  # 40 - 10
    assert row.by_disks == 16  # one data-disk slot per clinic, 16 slots
    assert (row.per_node, row.binding) == (16, "data disks")
    assert row.nodes_for_clinics == 2  # ceil(20 / 16)
    assert row.nodes == 3  # plus one spare


def test_d8s_v5_on_nfs_is_bound_by_memory_at_24() -> None:
    row = node_fit("Standard_D8s_v5", NFS, ["small"] * 20)
    assert row.by_disks is None  # an NFS share takes no data-disk slot
    assert (row.per_node, row.binding) == (24, "memory")
    assert row.nodes_for_clinics == 1


def test_medium_clinics_on_d8s_v5() -> None:
    row = node_fit("Standard_D8s_v5", NFS, ["medium"] * 10)
    assert (row.by_cpu, row.by_memory) == (18, 15)  # 7220 // 400, 30794 // 2048 = 15.04
    assert (row.per_node, row.binding) == (15, "memory")


def test_d16s_v5_holds_30_bound_by_pod_slots() -> None:
    row = node_fit("Standard_D16s_v5", DISK, ["small"] * 30)
    assert (row.by_cpu, row.by_memory, row.by_disks) == (75, 49, 32)  # 15140//200, 63562//1280, 32 slots
    assert (row.per_node, row.binding) == (30, "pods")


def test_only_clinics_on_disks_take_disk_slots() -> None:
    # Stack default azure-disk, half the clinics override to NFS: each node's 16 slots serve 32 clinics.
    cat = load_catalogue()
    s = planner_settings("Standard_D8s_v5", "azure-disk")
    clinics = clinics_of(["small"] * 10) + clinics_of(["small"] * 10, storage="azure-files-nfs")
    row = fit("Standard_D8s_v5", cat.node_sizes.sizes["Standard_D8s_v5"], DISK, clinics, s, cat)
    assert row.by_disks == 32
    assert (row.per_node, row.binding) == (24, "memory")


# --- SMB ------------------------------------------------------------------------------------------------------------


def test_smb_is_refused_with_its_reason() -> None:
    with pytest.raises(StorageRefusedError) as info:
        strategy(SMB, "Premium_LRS")
    reason = str(info.value)
    assert "hard link" in reason  # PostgreSQL's pg_wal needs them; SMB has none
    assert "azure-files-nfs" in reason and "azure-disk" in reason  # and what to use instead


def test_smb_for_the_stack_stops_the_program_before_any_resource(tmp_path: Path) -> None:
    tenants = write_yaml(tmp_path / "tenants.yaml", two_clinics(address_plan(load_settings("dev"))))
    result = attempt("dev", program_config("dev", tenants=tenants, storage={"strategy": "azure-files-smb"}))
    assert isinstance(result.error, pulumi.RunError)
    assert result.registered == []
    message = str(result.error)
    assert stack_file("dev") in message and "field 'orca-platform:storage.strategy'" in message
    assert "hard link" in message


# --- enforcement ----------------------------------------------------------------------------------------------------


def tenants_of(clinics: list[Clinic]) -> TenantsFile:
    return TenantsFile(clinics=clinics)


def test_below_density_target_names_the_binding_limit_and_the_cheapest_fix(catalogue: Catalogue) -> None:
    # 60 small clinics, D8s_v5 with azure-disk: 16 per node (data disks) < 20. Rows other than the stack's are planned
    # with the maxPods their density needs (a new pool): the lowest of cpu, memory and disks + 10 DaemonSet pods + 4
    # for backup jobs. Keeping azure-disk Premium_LRS (prices pinned, P4 = $6):
    #   D16s_v5: cpu 75, memory 49 (maxPods 46: 65536 - 970 - 100 - 1024 = 63442 // 1280), disks 32 -> 32 per node
    #            720/32 + 6 = 22.50 + 6 = 28.50  <- cheapest keeping the option (v6 sizes priced out)
    # Another option, for new clinics only: Azure Files v2 LRS on E8s_v5: cpu 36 (7220 // 200), memory 49, no disk slot
    #   -> 36 per node, 460/36 + 32 GiB x 0.125 = 12.78 + 4.00 = 16.78.
    s = planner_settings("Standard_D8s_v5", "azure-disk")
    with pytest.raises(InputError) as info:
        plan_capacity(s, tenants_of(clinics_of(["small"] * 60)), catalogue, stack_file("dev"))
    [problem] = info.value.problems
    assert problem.source == stack_file("dev")
    assert problem.field == "orca-platform:cluster.orcaPool.vmSize"
    assert "holds 16 clinics per node" in problem.message
    assert "binding limit: data disks" in problem.message
    assert "density target is 20" in problem.message
    fix = problem.message[problem.message.index("Cheapest fix") :]
    keep, _, other = fix.partition("For new clinics")
    assert "Standard_D16s_v5 (maxPods 46)" in keep and "azure-disk Premium_LRS unchanged" in keep
    assert "32 per node" in keep and "$28.50" in keep
    assert "azure-files-nfs PremiumV2_LRS on Standard_E8s_v5 (36 per node, about $16.78)" in other


def test_too_small_a_pool_names_the_binding_limit_and_the_count_needed(catalogue: Catalogue) -> None:
    # 60 small on D8s_v5 nfs: 24 per node (memory) -> ceil(60/24) = 3 nodes + 1 spare = 4 > maxCount 3.
    s = planner_settings("Standard_D8s_v5", "azure-files-nfs", headroom=1, max_count=3)
    with pytest.raises(InputError) as info:
        plan_capacity(s, tenants_of(clinics_of(["small"] * 60)), catalogue, stack_file("dev"))
    [problem] = info.value.problems
    assert problem.field == "orca-platform:cluster.orcaPool.maxCount"
    assert "binding limit: memory" in problem.message
    assert "raise maxCount to 4" in problem.message


def test_a_size_outside_the_catalogue_is_named(catalogue: Catalogue) -> None:
    s = planner_settings("Standard_D8s_v5")
    raw = planner_raw("Standard_X99_v9")
    with pytest.raises(InputError) as info:
        plan_capacity(settings_from(raw), tenants_of(clinics_of(["small"] * 3)), catalogue, stack_file("dev"))
    assert info.value.problems[0].field == "orca-platform:cluster.orcaPool.vmSize"
    assert "Standard_X99_v9" in info.value.problems[0].message
    assert plan_capacity(s, tenants_of(clinics_of(["small"] * 3)), catalogue).chosen.vm_size == "Standard_D8s_v5"


def test_density_enforcement_stops_the_program_before_any_resource(tmp_path: Path) -> None:
    # Two small clinics on D8s_v5 with azure-disk: min(36 cpu, 24 memory, 30 pods, 16 disks) = 16 < 20.
    tenants = write_yaml(tmp_path / "tenants.yaml", two_clinics(address_plan(load_settings("dev"))))
    raw = planner_raw("Standard_D8s_v5", "azure-disk")
    result = attempt("dev", program_config("dev", tenants=tenants, storage=raw["storage"], capacity=raw["capacity"]))
    assert isinstance(result.error, pulumi.RunError)
    assert result.registered == []
    message = str(result.error)
    assert "orca-platform:cluster.orcaPool.vmSize" in message
    assert "binding limit: data disks" in message and "Cheapest fix" in message


# --- properties -----------------------------------------------------------------------------------------------------

vm_sizes = st.sampled_from(sorted(load_catalogue().node_sizes.sizes))
strategies = st.sampled_from([DISK, NFS])
size_lists = st.lists(st.sampled_from(SIZES), min_size=1, max_size=40)
small_size_lists = st.lists(st.sampled_from(SIZES), max_size=14)


def _bigger_or_equal(big: str, small: str, cat: Catalogue) -> bool:
    a, b = cat.node_sizes.sizes[big], cat.node_sizes.sizes[small]
    return a.vcpu >= b.vcpu and a.memory_gib >= b.memory_gib


@PROPERTY
@given(size_lists, st.integers(10, 250), strategies)
def test_a_bigger_node_never_holds_fewer_clinics_by_cpu_or_memory(
    sizes: list[str], max_pods: int, storage: StorageStrategyName
) -> None:
    cat = load_catalogue()
    rows = {vm: node_fit(vm, storage, sizes, max_pods=max_pods) for vm in cat.node_sizes.sizes}
    for big, small in itertools.permutations(rows, 2):
        if _bigger_or_equal(big, small, cat):
            assert rows[big].by_cpu >= rows[small].by_cpu, (big, small)
            assert rows[big].by_memory >= rows[small].by_memory, (big, small)


@PROPERTY
@given(vm_sizes, strategies, size_lists, st.sampled_from(SIZES))
def test_adding_a_clinic_at_least_as_large_as_all_never_needs_fewer_nodes(
    vm: str, storage: StorageStrategyName, sizes: list[str], extra: str
) -> None:
    largest = max(SIZES.index(s) for s in sizes)
    extra = SIZES[max(largest, SIZES.index(extra))]
    assert node_fit(vm, storage, [*sizes, extra]).nodes >= node_fit(vm, storage, sizes).nodes


@PROPERTY
@given(vm_sizes, strategies, size_lists, st.sampled_from(SIZES))
# 13 clinics on D4s_v5: average memory 26880/13 = 2068 MiB -> 14410 // 2068 = 6 per node -> 3 nodes; one more small
# clinic: 28160/14 = 2011 -> 7 per node -> 2 nodes.
@example("Standard_D4s_v5", DISK, ["small"] * 5 + ["medium"] * 6 + ["large"] * 2, "small")
def test_more_clinics_never_need_fewer_nodes(
    vm: str, storage: StorageStrategyName, sizes: list[str], extra: str
) -> None:
    assert node_fit(vm, storage, [*sizes, extra]).nodes >= node_fit(vm, storage, sizes).nodes


def can_hold(sizes: list[str], nodes: int, vm: str, storage: StorageStrategyName) -> bool:
    """Exactly: can `nodes` nodes of `vm` hold these clinics, each node within its CPU, memory, pod and disk room?"""
    cat = load_catalogue()
    s = planner_settings(vm)
    node = cat.node_sizes.sizes[vm]
    ds = s.capacity.daemon_set_reserve
    cpu_room = allocatable_cpu_m(node.vcpu, cat) - 600
    mem_room = allocatable_memory_mib(node.memory_gib, s.cluster.orca_pool.max_pods, cat) - 1024
    slots = s.cluster.orca_pool.max_pods - ds.pods
    if storage is DISK:
        slots = min(slots, node.max_data_disks)
    classes = [cat.clinic_sizes[name] for name in SIZES]
    counts = tuple(sizes.count(name) for name in SIZES)
    loads = [
        load
        for load in itertools.product(*(range(c + 1) for c in counts))
        if sum(load) <= slots
        and sum(n * k.cpu_request_m for n, k in zip(load, classes, strict=True)) <= cpu_room
        and sum(n * k.memory_request_bytes // MIB for n, k in zip(load, classes, strict=True)) <= mem_room
    ]
    remaining = {counts}
    for _ in range(nodes):
        remaining = {
            tuple(max(r - n, 0) for r, n in zip(rest, load, strict=True)) for rest in remaining for load in loads
        }
    return (0, 0, 0) in remaining


def test_the_exact_packing_check_itself() -> None:
    # 16 small clinics on one D8s_v5 with disks: exactly the 16 slots. 17 do not fit on one node, but on two.
    assert can_hold(["small"] * 16, 1, "Standard_D8s_v5", DISK)
    assert not can_hold(["small"] * 17, 1, "Standard_D8s_v5", DISK)
    assert can_hold(["small"] * 17, 2, "Standard_D8s_v5", DISK)
    # A D4s_v5 offers 3260m and 14410 MiB: 3 large and a small (3200m, 13568 MiB) fit, 3 large and a medium
    # (3400m) do not, nor do 4 large (4000m, 16384 MiB).
    assert can_hold(["large"] * 3 + ["small"], 1, "Standard_D4s_v5", NFS)
    assert not can_hold(["large"] * 3 + ["medium"], 1, "Standard_D4s_v5", NFS)
    assert not can_hold(["large"] * 4, 1, "Standard_D4s_v5", NFS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["Standard_D4s_v5", "Standard_E4s_v5"]), strategies, st.lists(st.sampled_from(SIZES), max_size=14)
)
# 10 large, 5 medium, 5 small on E4s_v5 (3260m, 30794 MiB, 8 disks): 13000m in all, average 650m -> 5 per node by CPU
# -> 4 nodes (13040m). But a node holds at most 3 large (with one small: 3200m), so two nodes take 6 large and 2 small
# at most, leaving 4 large, 5 medium and 3 small = 6600m for the other two nodes' 6520m: 4 nodes cannot hold them.
@example("Standard_E4s_v5", DISK, ["large"] * 10 + ["medium"] * 5 + ["small"] * 5)
def test_the_planned_nodes_can_hold_the_clinics(vm: str, storage: StorageStrategyName, sizes: list[str]) -> None:
    if not sizes:
        return
    row = node_fit(vm, storage, sizes)
    assert can_hold(sizes, row.nodes_for_clinics, vm, storage), (row.nodes_for_clinics, row.per_node)


# --- the AgentPool the program registers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_medium(tmp_path_factory: pytest.TempPathFactory) -> Run:
    addr = address_plan(load_settings("dev"))
    # Each clinic its own /27 inside the VPN ranges: overlapping networks would be refused (issue 10).
    own = [str(s) for c in addr.vpn_cidrs[:3] for s in ipaddress.IPv4Network(c).subnets(new_prefix=27)]
    doc = {"clinics": [clinic_doc(f"clinic-{n:02d}", "medium", "32Gi", sourceCidrs=[own[n]]) for n in range(8)]}
    path = write_yaml(tmp_path_factory.mktemp("density") / "tenants.8.yaml", doc)
    raw = planner_raw("Standard_D4s_v5", "azure-files-nfs", target=5, headroom=1, min_count=1, max_count=4)
    config = program_config(
        "dev", tenants=path, cluster=raw["cluster"], storage=raw["storage"], capacity=raw["capacity"]
    )
    result = attempt("dev", config)
    assert result.error is None, result.error
    assert result.run is not None
    return result.run


def test_agent_pool_matches_the_hand_computed_plan(eight_medium: Run) -> None:
    # 8 medium (400m, 2048 MiB) on D4s_v5 nfs: min(3260 // 400 = 8 cpu, 14410 // 2048 = 7 memory, 30 pods) = 7 per
    # node -> ceil(8 / 7) = 2 nodes + 1 spare = 3; minCount = max(configured 1, 3) = 3; maxCount as configured, 4.
    pool = only(azure(eight_medium, "containerservice:AgentPool"), "ORCA AgentPool").inputs
    assert pool["vmSize"] == "Standard_D4s_v5"
    assert (pool["minCount"], pool["count"], pool["maxCount"], pool["maxPods"]) == (3, 3, 4, 40)
    capacity = eight_medium.outputs["capacity"]
    assert (capacity["clinicsPerNode"], capacity["bindingLimit"], capacity["nodes"]) == (7, "memory", 3)


def test_agent_pool_matches_the_plan_on_each_stack(stack_run: Run) -> None:
    s = load_settings(stack_run.stack)
    tenants = load_tenants(PROJECT_DIR / s.tenants_file)
    plan = plan_stack(s, tenants, load_catalogue(), s.tenants_file, stack_file(stack_run.stack)).capacity
    registered = only(azure(stack_run, "containerservice:AgentPool"), "ORCA AgentPool")
    pool = registered.inputs
    assert pool["vmSize"] == plan.chosen.vm_size == s.cluster.orca_pool.vm_size
    assert pool["minCount"] == plan.pool_min_count == max(s.cluster.orca_pool.min_count, plan.chosen.nodes)
    assert pool["count"] == pool["minCount"]
    assert pool["maxCount"] == plan.pool_max_count == s.cluster.orca_pool.max_count
    assert pool["maxPods"] == plan.max_pods == s.cluster.orca_pool.max_pods
    assert pool["enableAutoScaling"] is True
    assert "count" in registered.ignore_changes  # the autoscaler owns the live count
    assert pool["upgradeSettings"]["maxSurge"] == str(s.capacity.surge_nodes)
    # The plan's node count holds every clinic with a pod (a suspended clinic has none); maxCount holds them all
    # resumed, so a resume needs no change of settings.
    active = sum(1 for c in tenants.clinics if c.active)
    assert plan.chosen.nodes_for_clinics * plan.chosen.per_node >= active
    assert math.ceil(active / plan.chosen.per_node) == plan.chosen.nodes_for_clinics
    assert plan.chosen.nodes_all_resumed <= pool["maxCount"]
