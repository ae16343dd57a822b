"""Issue 16: the stack over time. The real program runs two or more times under mocks, each run fed the previous run's
own stack outputs through the StackReference to the stack itself.

An edit that would lose, hide or roll back a clinic's data stops the run with a RunError naming the file, the clinic
and the field, and nothing is registered but the StackReference. The ordinary edits pass and keep every URN of the
clinics they do not touch. Each row of the "Changes over time" table (docs/changes.md) names one of these tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lifecycle_support import (
    HISTORY,
    SNAPSHOT_OF_FIRST_VOLUME,
    STACK_REFERENCE,
    Lifecycle,
    base_tenants,
    clinic,
    history,
    passed,
    protected,
    refusal,
    section,
    urns,
)
from orca_test_support import address_plan, clinic_doc, k8s_named, load_settings

from tools.offline.engine import Run, StackOutputs

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def dev_first_update(tmp_path_factory: pytest.TempPathFactory) -> Lifecycle:
    """The first update of a dev stack with the base tenants: run once, shared (read-only) by the tests."""
    life = Lifecycle(tmp_path_factory.mktemp("lifecycle-dev"), "dev")
    passed(life.deploy(base_tenants("dev")))
    return life


@pytest.fixture
def dev(dev_first_update: Lifecycle, tmp_path: Path) -> tuple[Lifecycle, Doc]:
    """A dev stack after its first successful update of the base tenants: the next deploy is its second update."""
    life = Lifecycle(tmp_path, "dev", previous=dev_first_update.previous, runs=list(dev_first_update.runs))
    return life, base_tenants("dev")


def ack(clinic_id: str, transition: str, reason: str = "restore rehearsal on dev, agreed with the clinic") -> Doc:
    return {"clinic": clinic_id, "transition": transition, "reason": reason}


# --- the first update and the history it leaves ----------------------------------------------------------------------


def test_first_update_reads_its_own_stack_and_exports_the_history(tmp_path: Path) -> None:
    life = Lifecycle(tmp_path, "dev")
    run = passed(life.deploy(base_tenants("dev")))
    ref = [r for r in run.resources if r.type == STACK_REFERENCE]
    assert len(ref) == 1
    # A self-reference: <organization>/<project>/<stack>; the self-managed backend's organization is "organization".
    assert ref[0].inputs["name"] == "organization/orca-platform/dev"
    assert HISTORY not in run.secret_outputs
    doc = history(run)
    assert doc["version"] == 1
    alpha = doc["clinics"]["alpha-naika"]
    assert alpha["volumes"] == ["orca-state", "orca-state-r1", "orca-state-r2"]
    assert alpha["live"] == "orca-state-r2"
    assert alpha["restores"] == [
        {"id": "r1", "fromSnapshot": SNAPSHOT_OF_FIRST_VOLUME},
        {"id": "r2", "fromDump": "daily/alpha-naika/20261125T163000Z.dump"},
    ]
    assert doc["clinics"]["beta-geka"]["live"] == "orca-state"
    assert doc["retiredClinicIds"] == ["gamma-old"]
    dev_backup = load_settings("dev").backup
    assert doc["backup"]["dailyRetentionDays"] == dev_backup.daily_retention_days
    assert doc["backup"]["monthlyRetentionDays"] == dev_backup.monthly_retention_days
    # The claim the Deployment mounts is the live volume of the history.
    mounted = {
        v["persistentVolumeClaim"]["claimName"]
        for d in run.k8s("Deployment", "orca-alpha-naika")
        for v in d.inputs["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert mounted == {alpha["live"]}


def test_an_unchanged_second_update_registers_the_same_urns(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    second = passed(life.deploy(doc))
    assert urns(second) == urns(life.runs[0])
    assert history(second) == history(life.runs[0])


# --- safe edits: they pass, and keep what they do not change ----------------------------------------------------------


def test_adding_a_clinic_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    addr = address_plan(load_settings("dev"))
    doc["clinics"].append(clinic_doc("delta-ganka", sourceCidrs=[addr.vpn_cidrs[2]], privateIp=addr.free_ips[2]))
    second = passed(life.deploy(doc))
    first = life.runs[0]
    assert urns(first) <= urns(second)
    assert urns(second, "delta-ganka")
    assert "delta-ganka" in history(second)["clinics"]


def test_reordering_clinics_changes_no_urn(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    doc["clinics"].reverse()
    second = passed(life.deploy(doc))
    assert urns(second) == urns(life.runs[0])


def test_suspend_and_resume_keep_every_urn(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["state"] = "suspended"
    suspended = passed(life.deploy(doc))
    assert history(suspended)["clinics"]["beta-geka"]["state"] == "suspended"
    clinic(doc, "beta-geka")["state"] = "active"
    resumed = passed(life.deploy(doc))
    assert urns(suspended) == urns(life.runs[0]) == urns(resumed)


def test_growing_a_volume_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["volumeSize"] = "200Gi"
    second = passed(life.deploy(doc))
    assert urns(second) == urns(life.runs[0])
    assert history(second)["clinics"]["beta-geka"]["claimGib"] == 200


def test_appending_a_restore_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["restores"] = [{"id": "r1", "fromDump": "daily/beta-geka/20261201T163000Z.dump"}]
    second = passed(life.deploy(doc))
    first = life.runs[0]

    # The server's pod changes (a new volume): its pre-upgrade backup Jobs are new ones, named by the new pod
    # (completed Jobs hold no data); everything else of the first run stays.
    def lasting(run: Run) -> set[str]:
        return {u for u in urns(run) if "-pre-upgrade-" not in u}

    assert lasting(first) <= lasting(second)
    assert {u for u in urns(second) - urns(first) if "beta-geka-backup-pre-upgrade-" in u}
    # Every protected (data) resource of the first run is still registered, still protected.
    assert {r.urn for r in protected(first)} <= {r.urn for r in protected(second)}
    beta = history(second)["clinics"]["beta-geka"]
    assert beta["volumes"] == ["orca-state", "orca-state-r1"]
    assert beta["live"] == "orca-state-r1"


def test_changing_an_image_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["image"] = "orcaplatformdev.azurecr.io/orca/jma-receipt:5.2.0-202701"
    second = passed(life.deploy(doc))
    first = life.runs[0]
    assert urns(second, "alpha-naika") == urns(first, "alpha-naika")
    assert {r.urn for r in protected(first)} == {r.urn for r in protected(second)}
    assert history(second)["clinics"]["beta-geka"]["image"].endswith(":5.2.0-202701")


def test_retiring_a_clinic_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    doc["clinics"] = [c for c in doc["clinics"] if c["id"] != "beta-geka"]
    doc["retiredClinicIds"].append("beta-geka")
    second = passed(life.deploy(doc))
    assert urns(second, "alpha-naika") == urns(life.runs[0], "alpha-naika")
    assert not urns(second, "beta-geka")
    doc_after = history(second)
    assert "beta-geka" not in doc_after["clinics"]
    assert "beta-geka" in doc_after["retiredClinicIds"]
    # ... and the next update, with the clinic retired, passes too.
    passed(life.deploy(doc))


def test_raising_retention_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    backup = section("dev", "backup")
    backup["dailyRetentionDays"] += 7
    backup["monthlyRetentionDays"] += 30
    second = passed(life.deploy(doc, backup=backup))
    assert history(second)["backup"]["dailyRetentionDays"] == backup["dailyRetentionDays"]


# --- refused edits: a RunError naming file, clinic and field, and nothing registered but the StackReference ----------


def test_removing_a_clinic_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    doc["clinics"] = [c for c in doc["clinics"] if c["id"] != "beta-geka"]
    message = refusal(life.deploy(doc))
    assert life.tenants_source() in message
    assert "clinic 'beta-geka'" in message
    assert "retiredClinicIds" in message
    assert "decommission" in message.lower()


def test_renaming_a_clinic_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["id"] = "beta-seikei"
    message = refusal(life.deploy(doc))
    assert life.tenants_source() in message
    assert "clinic 'beta-geka'" in message
    # The new id is named as the likely rename, and the message says an id cannot change.
    assert "beta-seikei" in message
    assert "rename" in message.lower()


def test_dropping_a_retired_id_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    doc["retiredClinicIds"] = []
    message = refusal(life.deploy(doc))
    assert "clinic 'gamma-old'" in message
    assert "retiredClinicIds" in message


def test_reordering_restores_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    alpha = clinic(doc, "alpha-naika")
    # r2 first, then r1: r1's snapshot is still of an earlier volume, so only the history can tell.
    alpha["restores"] = [alpha["restores"][1], alpha["restores"][0]]
    message = refusal(life.deploy(doc))
    assert life.tenants_source() in message
    assert "clinic 'alpha-naika'" in message
    assert "field 'restores'" in message
    assert "reorder" in message.lower()
    assert "append" in message.lower()


def test_removing_the_last_restore_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "alpha-naika")["restores"].pop()
    message = refusal(life.deploy(doc))
    assert "clinic 'alpha-naika'" in message
    assert "field 'restores'" in message
    assert "'r2'" in message
    # The live volume would move back to r1, stranding what was written on r2.
    assert "orca-state-r2" in message
    assert "orca-state-r1" in message


def test_editing_a_restore_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "alpha-naika")["restores"][1]["fromDump"] = "daily/alpha-naika/20261126T163000Z.dump"
    message = refusal(life.deploy(doc))
    assert "clinic 'alpha-naika'" in message
    assert "field 'restores'" in message
    assert "'r2'" in message
    assert "edit" in message.lower()


def test_the_live_volume_moving_to_an_older_generation_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    alpha = clinic(doc, "alpha-naika")
    alpha["restores"] = alpha["restores"][:1]
    message = refusal(life.deploy(doc))
    assert "live volume" in message
    assert "from orca-state-r2 back to orca-state-r1" in message


def test_shrinking_a_volume_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["volumeSize"] = "110Gi"
    message = refusal(life.deploy(doc))
    assert "clinic 'beta-geka'" in message
    assert "field 'volumeSize'" in message
    assert "120" in message


def test_changing_the_storage_class_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    storage = section("dev", "storage")
    storage["sku"] = "Premium_ZRS"
    message = refusal(life.deploy(doc, storage=storage))
    assert "Pulumi.dev.yaml" in message
    assert "orca-platform:storage" in message
    assert "clinic 'alpha-naika'" in message
    assert "clinic 'beta-geka'" in message
    assert "orca-nfs-premium-lrs" in message
    assert "restore" in message.lower()


def test_changing_a_clinics_storage_strategy_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "beta-geka")["storage"] = "azure-disk"
    message = refusal(life.deploy(doc))
    assert life.tenants_source() in message
    assert "clinic 'beta-geka'" in message
    assert "field 'storage'" in message
    assert "azure-files-nfs" in message
    assert "clinic 'alpha-naika'" not in message


def test_changing_postgres_version_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    orca = section("dev", "orca")
    orca["postgresVersion"] = "16"
    message = refusal(life.deploy(doc, orca=orca))
    assert "Pulumi.dev.yaml" in message
    assert "orca-platform:orca.postgresVersion" in message
    assert "clinic 'alpha-naika'" in message
    assert "clinic 'beta-geka'" in message
    assert "fromDump" in message


def test_changing_postgres_version_with_a_dump_restore_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    orca = section("dev", "orca")
    orca["postgresVersion"] = "16"
    clinic(doc, "alpha-naika")["restores"].append({"id": "r3", "fromDump": "daily/alpha-naika/20261201T163000Z.dump"})
    clinic(doc, "beta-geka")["restores"] = [{"id": "pg16", "fromDump": "daily/beta-geka/20261201T163000Z.dump"}]
    second = passed(life.deploy(doc, orca=orca))
    assert history(second)["clinics"]["beta-geka"]["postgresVersion"] == "16"


def test_lowering_daily_retention_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    backup = section("dev", "backup")
    backup["dailyRetentionDays"] -= 1
    message = refusal(life.deploy(doc, backup=backup))
    assert "Pulumi.dev.yaml" in message
    assert "orca-platform:backup.dailyRetentionDays" in message


def test_lowering_monthly_retention_is_refused(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    backup = section("dev", "backup")
    backup["monthlyRetentionDays"] -= 1
    message = refusal(life.deploy(doc, backup=backup))
    assert "Pulumi.dev.yaml" in message
    assert "orca-platform:backup.monthlyRetentionDays" in message


def test_turning_off_the_prod_delete_lock_is_refused(tmp_path: Path) -> None:
    life = Lifecycle(tmp_path, "prod")
    doc = base_tenants("prod")
    passed(life.deploy(doc))
    backup = section("prod", "backup")
    assert backup["deleteLock"] is True
    backup["deleteLock"] = False
    message = refusal(life.deploy(doc, backup=backup))
    assert "Pulumi.prod.yaml" in message
    assert "orca-platform:backup.deleteLock" in message


def test_turning_off_the_dev_delete_lock_passes(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    backup = section("dev", "backup")
    backup["deleteLock"] = True
    passed(life.deploy(doc, backup=backup))
    backup["deleteLock"] = False
    passed(life.deploy(doc, backup=backup))


def test_every_refusal_of_one_update_is_reported_together(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    doc["clinics"] = [c for c in doc["clinics"] if c["id"] != "beta-geka"]
    clinic(doc, "alpha-naika")["restores"].pop()
    backup = section("dev", "backup")
    backup["dailyRetentionDays"] -= 1
    message = refusal(life.deploy(doc, backup=backup))
    assert "clinic 'beta-geka'" in message
    assert "clinic 'alpha-naika'" in message
    assert "dailyRetentionDays" in message


# --- acknowledgements ------------------------------------------------------------------------------------------------


def test_an_acknowledged_transition_passes_and_is_listed(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "alpha-naika")["restores"].pop()
    acks = [ack("alpha-naika", "restores-rewritten"), ack("alpha-naika", "live-volume-older")]
    second = passed(life.deploy(doc, acknowledgements=acks))
    listed = history(second)["acknowledgements"]
    assert [(a["clinic"], a["transition"], a["reason"]) for a in listed] == [
        (a["clinic"], a["transition"], a["reason"]) for a in acks
    ]
    assert all(a["what"] for a in listed)
    assert history(second)["unusedAcknowledgements"] == []
    assert history(second)["clinics"]["alpha-naika"]["live"] == "orca-state-r1"


def test_an_acknowledgement_lets_only_its_own_transition_through(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    clinic(doc, "alpha-naika")["restores"].pop()
    # The restores edit is acknowledged, the live volume moving back is not: still refused, for that reason only.
    message = refusal(life.deploy(doc, acknowledgements=[ack("alpha-naika", "restores-rewritten")]))
    assert message.startswith("invalid input: "), "exactly one problem expected"
    assert "live volume" in message
    assert "append-only" not in message
    # An acknowledgement for another clinic lets nothing through.
    message = refusal(life.deploy(doc, acknowledgements=[ack("beta-geka", "restores-rewritten")]))
    assert "clinic 'alpha-naika'" in message


def test_an_acknowledgement_is_used_once(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    acks = [ack("alpha-naika", "restores-rewritten"), ack("alpha-naika", "live-volume-older")]
    clinic(doc, "alpha-naika")["restores"].pop()
    passed(life.deploy(doc, acknowledgements=acks))
    # Left in the config, it is reported as unused, and it is still listed as used by the earlier update.
    third = passed(life.deploy(doc, acknowledgements=acks))
    unused = history(third)["unusedAcknowledgements"]
    assert {(a["clinic"], a["transition"]) for a in unused} == {("alpha-naika", "restores-rewritten")} | {
        ("alpha-naika", "live-volume-older")
    }
    assert len(history(third)["acknowledgements"]) == 2
    # It cannot let a second, later rewrite through.
    clinic(doc, "alpha-naika")["restores"].pop()
    message = refusal(life.deploy(doc, acknowledgements=acks))
    assert "already used" in message
    assert "orca-platform:acknowledgements" in message


def test_a_stack_acknowledgement_lets_retention_be_lowered(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    backup = section("dev", "backup")
    backup["dailyRetentionDays"] -= 1
    acks = [ack("*stack*", "retention-lowered", "dev keeps a week less of test dumps (ticket OPS-12)")]
    second = passed(life.deploy(doc, backup=backup, acknowledgements=acks))
    assert history(second)["acknowledgements"][0]["clinic"] == "*stack*"


def test_the_audit_lists_every_acknowledgement(dev: tuple[Lifecycle, Doc]) -> None:
    from tools.audit.report import build_report, load_export, render_markdown
    from tools.offline.stack_export import build_export

    life, doc = dev
    clinic(doc, "alpha-naika")["restores"].pop()
    acks = [ack("alpha-naika", "restores-rewritten"), ack("alpha-naika", "live-volume-older")]
    second = passed(life.deploy(doc, acknowledgements=acks))
    import json

    data = json.dumps(build_export(second)).encode()
    report, _ = build_report(load_export(data, "export.json"))
    listed = report["acknowledgements"]
    assert [(a["clinic"], a["transition"], a["reason"], a["status"]) for a in listed] == [
        ("alpha-naika", "restores-rewritten", acks[0]["reason"], "used"),
        ("alpha-naika", "live-volume-older", acks[1]["reason"], "used"),
    ]
    text = render_markdown(report)
    assert "## Acknowledged transitions" in text
    assert acks[0]["reason"] in text


def test_the_audit_notes_an_export_without_a_history(dev: tuple[Lifecycle, Doc]) -> None:
    import json

    from tools.audit.report import build_report, load_export
    from tools.offline.stack_export import build_export

    life, _ = dev
    doc = build_export(life.runs[0])
    root = doc["deployment"]["resources"][0]
    assert root["type"] == "pulumi:pulumi:Stack"
    del root["outputs"][HISTORY]
    report, _ = build_report(load_export(json.dumps(doc).encode(), "old-export.json"))
    assert report["acknowledgements"] == []
    assert any("acknowledged transitions are unknown" in n for n in report["notes"])


# --- a stack deployed by the program before the history existed -------------------------------------------------------


def _legacy(life: Lifecycle) -> None:
    """What the previous program version exported: the same outputs without orcaHistory (its `clinics` output is
    unchanged)."""
    assert life.previous is not None
    life.previous = life.previous.without(HISTORY)


def test_an_upgraded_stack_refuses_a_clinic_removal_from_its_first_run(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    _legacy(life)
    doc["clinics"] = [c for c in doc["clinics"] if c["id"] != "beta-geka"]
    message = refusal(life.deploy(doc))
    assert "clinic 'beta-geka'" in message


def test_an_upgraded_stack_refuses_a_storage_class_change(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    _legacy(life)
    storage = section("dev", "storage")
    storage["sku"] = "Premium_ZRS"
    message = refusal(life.deploy(doc, storage=storage))
    assert "clinic 'beta-geka'" in message


def test_an_upgraded_stack_passes_an_unchanged_update_and_writes_the_history(dev: tuple[Lifecycle, Doc]) -> None:
    life, doc = dev
    _legacy(life)
    # What version 0 cannot tell (restores, the live generation) is not guessed: the first run passes.
    clinic(doc, "alpha-naika")["restores"].pop()
    second = passed(life.deploy(doc))
    assert history(second)["version"] == 1
    # From here on the history is there: the next run refuses an edit of a restore.
    clinic(doc, "alpha-naika")["restores"][0]["fromSnapshot"] = "orca-state-20261124190000"
    message = refusal(life.deploy(doc))
    assert "clinic 'alpha-naika'" in message
    assert "field 'restores'" in message


def test_the_mock_answers_only_a_reference_to_the_stack_itself(tmp_path: Path) -> None:
    """The StackReference mock is an engine stand-in: another stack's name is an unknown stack, as in the engine."""
    life = Lifecycle(tmp_path, "dev")
    first = passed(life.deploy(base_tenants("dev")))
    outputs = StackOutputs.of(first)
    assert outputs.values[HISTORY] == history(first)
    assert outputs.answer("organization/orca-platform/dev")["outputs"][HISTORY] == history(first)
    with pytest.raises(LookupError):
        outputs.answer("organization/orca-platform/prod", expected="organization/orca-platform/dev")


def test_every_row_of_the_readme_transition_table_names_a_test() -> None:
    """The "Changes over time" table (docs/changes.md, linked from the README's section): each row names at least one
    test, and each named test exists."""
    import re

    root = Path(__file__).resolve().parent
    text = (root.parent / "docs" / "changes.md").read_text(encoding="utf-8")
    table = text.split("## Every edit", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| edit")]
    rows = [r for r in rows if not r.startswith("| ---")]
    assert len(rows) >= 20
    for row in rows:
        cell = row.rstrip(" |").rsplit(" | ", 1)[-1]
        named = re.findall(r"`([^`]+)`", cell)
        assert named, f"a row without a test: {row}"
        for name in named:
            module, _, func = name.rpartition("::")
            path = root.parent / module if module else root / "test_lifecycle.py"
            assert re.search(rf"^def {re.escape(func)}\(", path.read_text(encoding="utf-8"), re.M), name


# --- a new clinic whose first rollout never seeded ---------------------------------------------------------------


def _seed_policy(run: Run, clinic_id: str) -> str:
    value: str = k8s_named(run, "ConfigMap", f"orca-{clinic_id}", "orca-seed-policy").inputs["data"]["EXPECT_DATA"]
    return value


def test_an_acknowledged_empty_volume_is_seeded_once(dev: tuple[Lifecycle, Doc]) -> None:
    """A clinic's first update can fail before its server ever started (no capacity in its disk's zone, an image
    that does not pull): the history already lists its claim, so the next update would refuse its empty volume for
    good. `empty-volume-seeded`, acknowledged for that clinic, lets one update seed it; the update after expects data
    again, and the spent acknowledgement lets nothing through twice."""
    life, doc = dev
    second = passed(life.deploy(doc))
    assert _seed_policy(second, "alpha-naika") == "1"
    acks = [ack("alpha-naika", "empty-volume-seeded", "first rollout failed before its seed ran (ticket 42)")]
    third = passed(life.deploy(doc, acknowledgements=acks))
    assert _seed_policy(third, "alpha-naika") == "0"
    assert _seed_policy(third, "beta-geka") == "1"
    used = history(third)["acknowledgements"]
    assert [(a["clinic"], a["transition"]) for a in used] == [("alpha-naika", "empty-volume-seeded")]
    assert "orca-state" in used[0]["what"]
    # Left in the config it is spent: the volume is expected to hold data again, and the acknowledgement is refused.
    message = refusal(life.deploy(doc, acknowledgements=acks))
    assert "already used" in message
    fourth = passed(life.deploy(doc))
    assert _seed_policy(fourth, "alpha-naika") == "1"


def test_a_new_clinic_needs_no_acknowledgement_to_seed(dev: tuple[Lifecycle, Doc]) -> None:
    """Nothing to let through on a clinic the history does not know: the acknowledgement is reported as unused."""
    life, doc = dev
    acks = [ack("alpha-naika", "empty-volume-seeded", "first rollout failed before its seed ran (ticket 42)")]
    first = Lifecycle(life.tmp / "fresh", "dev")
    (life.tmp / "fresh").mkdir()
    run = passed(first.deploy(doc, acknowledgements=acks))
    assert _seed_policy(run, "alpha-naika") == "0"
    assert [a["transition"] for a in history(run)["unusedAcknowledgements"]] == ["empty-volume-seeded"]
