"""Issue 10: bounds for every quantity against what the storage and Kubernetes accept; prod floors that the input,
the policy pack and the audit apply alike; every problem of a run reported at once, in order."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orca_test_support import (
    address_plan,
    attempt,
    clinic_doc,
    load_settings,
    program_config,
    raw_settings,
    settings_from,
    two_clinics,
    write_yaml,
)

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.errors import InputError
from orca_platform.model.tenants import parse_tenants
from orca_platform.plan.stack_plan import stack_problems
from orca_platform.rules import RuleContext, evaluate
from orca_platform.safety import prod_floors
from tests.audit_support import export_of
from tools.audit.report import load_export
from tools.offline.engine import Run, stack_config

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GIB = 2**30


def run_stopped(config: dict[str, str], *fragments: str) -> str:
    result = attempt(config.get("orca-platform:environment", "dev"), config)
    assert isinstance(result.error, pulumi.RunError), f"expected RunError, got {result.error!r}"
    assert result.registered == []
    message = str(result.error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message}"
    return message


# --- bounds ---------------------------------------------------------------------------------------------------------


def one_clinic_problems(volume: str, storage: str | None = None) -> list[str]:
    s = load_settings("dev")
    addr = address_plan(s)
    extra = {"storage": storage} if storage else {}
    doc = {"clinics": [clinic_doc("sakura-naika", volume=volume, sourceCidrs=[addr.vpn_cidrs[0]], **extra)]}
    tenants = parse_tenants(doc, "tenants.yaml")
    return [str(p) for p in stack_problems(s, tenants, load_catalogue(), "tenants.yaml", "Pulumi.dev.yaml")]


@FAST
@given(st.integers(1, 200 * 1024), st.sampled_from([("azure-files-nfs", 100 * 1024), ("azure-disk", 32767)]))
def test_volume_size_bounds_per_storage(gib: int, store: tuple[str, int]) -> None:
    """PostgreSQL needs 4Gi at least; a share holds at most 100 TiB, a Premium SSD disk 32,767 GiB."""
    name, most = store
    problems = [p for p in one_clinic_problems(f"{gib}Gi", name) if "volumeSize" in p]
    if 4 <= gib <= most:
        assert problems == []
    else:
        [problem] = problems
        assert ("too small for PostgreSQL" if gib < 4 else f"more than {name} offers ({most}Gi") in problem


def test_nine_hundred_tebibytes_stop_the_program(tmp_path: Path) -> None:
    doc = two_clinics(address_plan(load_settings("dev")))
    doc["clinics"][1]["volumeSize"] = "900Ti"
    path = write_yaml(tmp_path / "tenants.huge.yaml", doc)
    run_stopped(
        program_config("dev", tenants=path),
        "clinic 'beta-geka': field 'volumeSize' = '900Ti': is 921600Gi, more than azure-files-nfs offers",
        "fix: write at most 102400Gi",
    )


@pytest.mark.parametrize(("keep", "ok"), [(180, True), (181, False), (28, True)])
def test_snapshot_count_fits_the_file_share_limit(keep: int, ok: bool) -> None:
    raw = raw_settings("dev")
    raw["backup"]["snapshotRetentionCount"] = keep
    s = settings_from(raw)
    tenants = parse_tenants(two_clinics(address_plan(s)), "tenants.yaml")
    found = [p for p in stack_problems(s, tenants, load_catalogue(), "t", "c") if "snapshotRetentionCount" in p.field]
    assert (found == []) is ok, found


@pytest.mark.parametrize(
    ("section", "key", "value", "says"),
    [
        ("backup", "dailyRetentionDays", 0, "must be at least 1"),
        ("backup", "monthlyRetentionDays", 40000, "must be at most 36500"),
        ("backup", "snapshotRetentionCount", 501, "must be at most 500"),
        ("backup", "recordsRetentionYears", 0, "must be at least 1"),
        ("ingress", "replicas", 1, "must be at least 2"),
        ("capacity", "surgeNodes", 11, "must be at most 10"),
    ],
)
def test_counts_have_bounds(section: str, key: str, value: int, says: str) -> None:
    raw = raw_settings("dev")
    raw[section][key] = value
    with pytest.raises(InputError) as info:
        settings_from(raw)
    assert any(p.field == f"orca-platform:{section}.{key}" and says in p.message for p in info.value.problems)


def test_pods_per_node_say_what_aks_takes() -> None:
    raw = raw_settings("dev")
    raw["cluster"]["orcaPool"]["maxPods"] = 300
    with pytest.raises(InputError, match="must be at most 250 \\(AKS takes 10 to 250 pods per node\\)"):
        settings_from(raw)


# --- prod floors ------------------------------------------------------------------------------------------------


def prod_with(section: str, **changes: Any) -> dict[str, str]:
    value = raw_settings("prod")[section]
    value.update(changes)
    return stack_config("prod", overrides={f"orca-platform:{section}": value})


@pytest.mark.parametrize(
    ("section", "changes", "field", "says"),
    [
        ("backup", {"monthlyRetentionDays": 5}, "backup.monthlyRetentionDays", "less than the 5 years (1827 days)"),
        ("backup", {"monthlyRetentionDays": 1825}, "backup.monthlyRetentionDays", "less than the 5 years"),
        ("backup", {"recordsRetentionYears": 7}, "backup.monthlyRetentionDays", "7 years (2557 days)"),
        ("backup", {"deleteLock": False}, "backup.deleteLock", "has no CanNotDelete lock"),
        ("orca", {"image": "orcaplatformprod.azurecr.io/orca/jma-receipt:5.2.0-202611"}, "orca.image", "digest"),
        (
            "orca",
            {"image": "docker.io/harukats/jma-receipt@sha256:" + "c" * 64},
            "orca.image",
            "comes from docker.io, not from the stack's registries (orcaplatformprod.azurecr.io)",
        ),
        (
            "backup",
            {"toolsImage": "orcaplatformprod.azurecr.io/orca/backup-tools:1.0.0"},
            "backup.toolsImage",
            "not pinned by digest",
        ),
    ],
)
def test_a_prod_floor_stops_the_program(section: str, changes: dict[str, Any], field: str, says: str) -> None:
    run_stopped(prod_with(section, **changes), f"field 'orca-platform:{field}'", says)


def test_prod_must_name_its_registry() -> None:
    cluster = raw_settings("prod")["cluster"]
    del cluster["containerRegistryId"]
    run_stopped(
        stack_config("prod", overrides={"orca-platform:cluster": cluster}),
        "field 'orca-platform:orca.allowedRegistries'",
        "production must say where its images come from",
    )


def test_dev_keeps_tags_and_short_retention_but_not_foreign_registries(tmp_path: Path) -> None:
    assert attempt("dev", stack_config("dev")).error is None  # tags, 30 days, no lock: dev
    doc = two_clinics(address_plan(load_settings("dev")))
    doc["clinics"][0]["image"] = "ghcr.io/someone/orca:5.2"
    path = write_yaml(tmp_path / "tenants.ghcr.yaml", doc)
    run_stopped(
        program_config("dev", tenants=path),
        "clinic 'alpha-naika': field 'image' = 'ghcr.io/someone/orca:5.2': comes from ghcr.io",
    )
    orca = raw_settings("dev")["orca"] | {"allowedRegistries": ["ghcr.io", "orcaplatformdev.azurecr.io"]}
    assert attempt("dev", program_config("dev", tenants=path, orca=orca)).error is None


def test_five_years_are_counted_with_leap_days() -> None:
    # 2028-01-01 to 2033-01-01 holds 29 February 2028 and 2032.
    from datetime import date

    assert prod_floors.retention_days_for_years(5) == (date(2033, 1, 1) - date(2028, 1, 1)).days == 1827
    for years in range(1, 40):
        longest = max((date(y + years, 1, 1) - date(y, 1, 1)).days for y in range(2001, 2090))
        assert prod_floors.retention_days_for_years(years) == longest


def views_of(run: Run, change: Any = None) -> list[Any]:
    doc = copy.deepcopy(export_of(run))
    if change is not None:
        change(doc)
    return load_export(json.dumps(doc).encode(), "test").views


def test_input_and_audit_judge_the_prod_sample_alike(prod_run: Run) -> None:
    """The sample passes both; the same mistake fails both (the input check at `pulumi up`, the audit after)."""
    floors = {
        "backup-retention-prod",
        "backup-delete-lock-prod",
        "backup-immutable-prod",
        "image-digest-prod",
        "image-allowed-registry",
    }
    assert [v for v in evaluate(views_of(prod_run)) if v.rule in floors] == []

    def no_lock(doc: dict[str, Any]) -> None:
        doc["deployment"]["resources"] = [
            r for r in doc["deployment"]["resources"] if "ManagementLock" not in r["type"]
        ]

    def short_monthly(doc: dict[str, Any]) -> None:
        for r in doc["deployment"]["resources"]:
            if r["type"].endswith("BlobContainerImmutabilityPolicy"):
                r["inputs"]["immutabilityPeriodSinceCreationInDays"] = 1825

    for change, rule, setting in (
        (no_lock, "backup-delete-lock-prod", {"deleteLock": False}),
        (short_monthly, "backup-retention-prod", {"monthlyRetentionDays": 1825}),
    ):
        violations = [v for v in evaluate(views_of(prod_run, change)) if v.rule == rule]
        assert violations, rule
        # The same shortfall, in the same words, stops the program.
        message = run_stopped(prod_with("backup", **setting))
        breach = violations[0].message.removeprefix("backup storage ").removeprefix("the longest immutability policy ")
        assert breach in message, (breach, message)


def test_the_audit_holds_backups_to_the_declared_retention(prod_run: Run) -> None:
    def ten_years(doc: dict[str, Any]) -> None:
        for r in doc["deployment"]["resources"]:
            if r["type"] == "azure-native:storage:StorageAccount":
                r["inputs"]["tags"][prod_floors.RECORDS_RETENTION_TAG] = "10"

    assert [v for v in evaluate(views_of(prod_run, ten_years)) if v.rule == "backup-retention-prod"]
    ctx = RuleContext(records_retention_years=5)
    assert not [v for v in evaluate(views_of(prod_run, ten_years), ctx) if v.rule == "backup-retention-prod"]


# --- every problem in one run ---------------------------------------------------------------------------------------


def test_every_class_of_problem_is_reported_in_one_run_in_order(tmp_path: Path) -> None:
    addr = address_plan(load_settings("dev"))
    doc = copy.deepcopy(two_clinics(addr))
    doc["clinics"].append(clinic_doc("gamma-hifu", sourceCidrs=[addr.vpn_cidrs[2]], volumeSize="10GB"))  # field
    doc["clinics"][1]["sourceCidrs"] = list(doc["clinics"][0]["sourceCidrs"])  # across clinics
    doc["clinics"][0]["privateIp"] = addr.outside_ilb_ip  # against the stack
    path = write_yaml(tmp_path / "tenants.many.yaml", doc)
    config = program_config("dev", tenants=path)
    config["orca-platform:capcity"] = '{"densityTarget": 20}'  # a settings field: yet the tenants are still read
    message = run_stopped(config)
    order = [
        "field 'orca-platform:capcity'",
        "clinic 'gamma-hifu': field 'volumeSize' = '10GB'",
        "clinic 'beta-geka': field 'sourceCidrs'",
    ]
    positions = [message.index(fragment) for fragment in order]
    assert positions == sorted(positions), message
    # With valid settings the stack-level problem joins the others, after them.
    del config["orca-platform:capcity"]
    message = run_stopped(config)
    order = [*order[1:], "clinic 'alpha-naika': field 'privateIp'"]
    positions = [message.index(fragment) for fragment in order]
    assert positions == sorted(positions), message
    assert "3 problems" in message
