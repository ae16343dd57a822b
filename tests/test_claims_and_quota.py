"""Issue 13: bugs the suite used to let through, each now caught: a claim smaller than the clinic asked for, and a
namespace quota that admits more than the clinic's objects need (five LoadBalancers would be five private frontends,
each a rule on every node and a path around the allow-list)."""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_CEILING, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orca_platform.model.fields import StorageStrategyName
from orca_platform.model.quantities import parse_bytes
from orca_platform.plan.storage import GIB, strategy
from tools.offline.engine import Run

UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
STRATEGIES = [
    strategy(StorageStrategyName.AZURE_DISK, "Premium_ZRS"),
    strategy(StorageStrategyName.AZURE_FILES_NFS, "Premium_ZRS"),
]


@settings(max_examples=500, deadline=None)
@given(
    whole=st.integers(min_value=0, max_value=70_000),
    fraction=st.one_of(st.none(), st.integers(min_value=1, max_value=999)),
    unit=st.sampled_from(sorted(UNITS)),
    store=st.sampled_from(STRATEGIES),
)
def test_a_claim_is_never_smaller_than_the_request(whole: int, fraction: int | None, unit: str, store: object) -> None:
    text = f"{whole}.{fraction:03d}{unit}" if fraction is not None else f"{whole}{unit}"
    exact = Decimal(text[: -len(unit)]) * UNITS[unit]
    if exact <= 0:
        return
    requested = parse_bytes(text)
    # Kubernetes rounds a fractional quantity up to the next byte: never down.
    assert requested == int(exact.to_integral_value(rounding=ROUND_CEILING))
    assert isinstance(store, type(STRATEGIES[0]))
    claim = store.claim_gib(requested)
    assert claim * GIB >= requested
    assert claim >= store.minimum_gib
    # And no more than one GiB of rounding above the larger of the two.
    assert claim <= max(-(-requested // GIB), store.minimum_gib)


def _hard(run: Run, namespace: str) -> dict[str, str]:
    quotas = run.k8s("ResourceQuota", namespace)
    assert len(quotas) == 1, f"{namespace} has {len(quotas)} ResourceQuotas"
    return dict(quotas[0].inputs["spec"]["hard"])


def test_each_clinic_quota_fits_what_the_clinic_has(stack_run: Run) -> None:
    namespaces = [
        ns.inputs["metadata"]["name"]
        for ns in stack_run.k8s("Namespace")
        if ns.inputs["metadata"].get("labels", {}).get("orca-platform.io/clinic")
    ]
    assert namespaces
    for ns in namespaces:
        hard = _hard(stack_run, ns)
        services = Counter(s.inputs["spec"].get("type", "ClusterIP") for s in stack_run.k8s("Service", ns))
        # Exactly the LoadBalancers the clinic's front door renders: not one more.
        assert int(hard["services.loadbalancers"]) == services["LoadBalancer"], ns
        claims = len(stack_run.k8s("PersistentVolumeClaim", ns))
        # Every volume generation, plus the one a restore in progress adds before the program registers it.
        assert claims <= int(hard["persistentvolumeclaims"]) <= claims + 1, ns
        # The server and one pod of every Job and CronJob may run at once (a dump during a pre-upgrade backup).
        jobs = len(stack_run.k8s("Job", ns)) + len(stack_run.k8s("CronJob", ns))
        assert int(hard["pods"]) >= 1 + jobs, ns
        assert int(hard["pods"]) <= 1 + jobs + 4, f"{ns}: pod quota far above what the clinic can run"
