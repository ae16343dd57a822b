"""Issue 6: the audit of stack exports, on the program's own exports and on broken ones."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from orca_platform.rules import RULES
from tests.audit_support import (
    FIXTURES,
    as_older_export,
    dump,
    export_of,
    k8s_resources,
    resources,
    with_pending_operations,
    with_plaintext_secret,
    with_public_service,
    with_shown_secrets,
    with_unprotected_pvc,
)
from tools.audit import export as audit_export
from tools.audit import markdown as audit_markdown
from tools.audit import report as audit
from tools.offline.engine import Run, is_secret, reveal
from tools.offline.stack_export import build_export
from tools.offline.stack_export import main as export_main


@pytest.fixture(scope="session")
def dev_export(dev_run: Run) -> dict[str, Any]:
    return export_of(dev_run)


@pytest.fixture(scope="session")
def prod_export(prod_run: Run) -> dict[str, Any]:
    return export_of(prod_run)


def run_audit(tmp_path: Path, doc: dict[str, Any] | Path, *extra: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run the CLI as `make audit` does; return (exit status, JSON report or None, Markdown report)."""
    source = doc if isinstance(doc, Path) else dump(doc, tmp_path / "export.json")
    out = tmp_path / "report"
    status = audit.main(["--export", str(source), "--out", str(out), *extra])
    report = json.loads((out / "audit-report.json").read_text()) if (out / "audit-report.json").exists() else None
    md = (out / "audit-report.md").read_text() if (out / "audit-report.md").exists() else ""
    return status, report, md


def rules_hit(report: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(v["rule"], v["clinic"]) for v in report["violations"]}


# --- the export ------------------------------------------------------------------------------------------------


def test_export_has_the_engine_shape(dev_export: dict[str, Any], dev_run: Run) -> None:
    assert dev_export["version"] == 3
    deployment = dev_export["deployment"]
    assert {"manifest", "secrets_providers", "resources"} <= deployment.keys()
    assert {"time", "magic", "version"} <= deployment["manifest"].keys()
    stack, *rest = resources(dev_export)
    assert stack["type"] == "pulumi:pulumi:Stack" and stack["urn"].endswith("::orca-platform-dev")
    urns = {r["urn"] for r in resources(dev_export)}
    for r in rest:
        # Default providers hang off no parent, as the engine records them.
        assert r.get("parent", stack["urn"]) in urns
        if r.get("provider"):
            provider_urn, provider_id = r["provider"].rsplit("::", 1)
            target = next(p for p in resources(dev_export) if p["urn"] == provider_urn)
            assert target["id"] == provider_id and target["type"].startswith("pulumi:providers:")
    assert len(rest) >= len(dev_run.resources)


def test_export_never_contains_a_plaintext_secret(dev_export: dict[str, Any], dev_run: Run) -> None:
    text = json.dumps(dev_export)
    secrets: set[str] = set()
    for res in dev_run.resources:
        for key in res.additional_secret_outputs:
            value = reveal(res.outputs.get(key))
            if isinstance(value, str):
                secrets.add(value)
        for value in res.inputs.values():
            if is_secret(value):
                inner = reveal(value)
                secrets |= set(inner.values()) if isinstance(inner, dict) else {str(inner)}
    assert secrets, "the dev stack has generated passwords"
    for s in secrets:
        assert s not in text
    assert audit_export.plaintext_secrets(dev_export) == []


def test_export_marks_secrets_the_engine_would(dev_export: dict[str, Any]) -> None:
    """sharedKey comes from a RandomPassword's result (additionalSecretOutputs): the export keeps it secret."""
    conns = [r for r in resources(dev_export) if r["type"].endswith("VirtualNetworkGatewayConnection")]
    assert conns
    for c in conns:
        assert is_secret(c["inputs"]["sharedKey"]) and "ciphertext" in c["inputs"]["sharedKey"]
        assert is_secret(c["outputs"]["sharedKey"])


def test_raw_mock_values_would_be_a_finding(dev_run: Run) -> None:
    """Without the engine's secret tracking (mocks that forget additionalSecretOutputs) the PSK would sit in clear:
    this is what the rule exists to catch."""
    from orca_platform.rules import ResourceView, rules_by_id

    conn = next(r for r in dev_run.resources if r.type.endswith("VirtualNetworkGatewayConnection"))
    view = ResourceView(type=conn.type, urn=conn.urn, name=conn.name, props=reveal(conn.inputs))
    assert rules_by_id()["secret-not-plaintext"].run_resource(view, audit.RuleContext())


def test_export_cli_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    assert export_main(["--stack", "dev", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["version"] == 3
    assert export_main(["--stack", "nope", "--out", str(out)]) == 2


# --- the sample stacks pass ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_sample_stacks_pass_with_one_row_per_clinic(stack: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    run: Run = request.getfixturevalue(f"{stack}_run")
    doc: dict[str, Any] = request.getfixturevalue(f"{stack}_export")
    status, report, md = run_audit(tmp_path, doc)
    assert report is not None
    assert report["violations"] == [] and status == 0
    assert report["summary"] == {
        "result": "pass",
        "clinics": len(run.outputs["clinics"]),
        "mandatory": 0,
        "advisory": 0,
        # Independently: dev's API server is public (limited to its authorized ranges), prod's is private.
        "publicEndpoints": 2 if stack == "dev" else 1,
    }
    # Each row says what the program says it built for that clinic.
    rows = {r["clinic"]: r for r in report["clinics"]}
    assert rows.keys() == run.outputs["clinics"].keys()
    for cid, expected in run.outputs["clinics"].items():
        row = rows[cid]
        assert row["namespace"] == expected["namespace"]
        assert row["fqdn"] == [expected["fqdn"]]
        assert row["privateIp"] == ([expected["privateIp"]] if expected["privateIp"] else [])
        assert row["image"] == [expected["image"]]
        assert row["volume"]["storageClass"] == expected["storageClass"]
        assert row["volume"]["size"] == expected["volume"]
        assert row["volume"]["protected"] is True and row["volume"]["retained"] is True
        assert row["state"] == expected["state"]
        assert row["name"] == expected["name"]
        assert row["backups"], f"{cid} has scheduled backups"
        assert f"| {cid} |" in md
    # The only public address is the VPN gateway's (and dev's API server, limited to the office range).
    kinds = sorted(p["kind"] for p in report["publicEndpoints"])
    assert kinds == (["Kubernetes API server", "public IP address"] if stack == "dev" else ["public IP address"])
    pip = next(p for p in report["publicEndpoints"] if p["kind"] == "public IP address")
    assert pip["usedBy"] == ["VirtualNetworkGateway vgw"]
    assert report["export"]["stack"] == stack and re.fullmatch(r"[0-9a-f]{64}", report["export"]["sha256"])
    assert {r["id"] for r in report["rules"]} == {r.id for r in RULES}


# --- broken exports ------------------------------------------------------------------------------------------------


def test_public_service_names_clinic_and_rule(dev_export: dict[str, Any], tmp_path: Path) -> None:
    doc, clinic = with_public_service(dev_export)
    status, report, md = run_audit(tmp_path, doc)
    assert status == 1 and report is not None
    assert rules_hit(report) == {("lb-internal", clinic)}
    assert report["summary"]["result"] == "fail"
    assert any(p["kind"] == "public load balancer" for p in report["publicEndpoints"])
    assert f"`lb-internal` | {clinic} |" in md


def test_unprotected_volume_names_clinic_and_rules(prod_export: dict[str, Any], tmp_path: Path) -> None:
    doc, clinic = with_unprotected_pvc(prod_export)
    status, report, _ = run_audit(tmp_path, doc)
    assert status == 1 and report is not None
    hit = rules_hit(report)
    assert ("clinic-volume-protected", clinic) in hit and ("clinic-volume-retained", clinic) in hit
    row = next(r for r in report["clinics"] if r["clinic"] == clinic)
    assert row["volume"]["protected"] is False and row["violations"]["mandatory"] >= 2


def test_plaintext_secret_names_clinic_not_value(dev_export: dict[str, Any], tmp_path: Path) -> None:
    doc, clinic = with_plaintext_secret(dev_export)
    status, report, md = run_audit(tmp_path, doc)
    assert status == 1 and report is not None
    assert ("secret-not-plaintext", clinic) in rules_hit(report)
    assert "Zq8pX2mLr4Tn9vWc" not in json.dumps(report) and "Zq8pX2mLr4Tn9vWc" not in md


def test_show_secrets_export_is_refused_and_nothing_written(
    dev_export: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report, md = run_audit(tmp_path, with_shown_secrets(dev_export))
    assert status == 2 and report is None and md == ""
    err = capsys.readouterr().err
    assert "--show-secrets" in err and "revealed-value" not in err and "Traceback" not in err


def test_pending_operations_are_noted_not_fatal(dev_export: dict[str, Any], tmp_path: Path) -> None:
    status, report, md = run_audit(tmp_path, with_pending_operations(dev_export))
    assert status == 0 and report is not None
    assert [p["operation"] for p in report["export"]["pendingOperations"]] == ["creating", "updating"]
    assert any("did not finish" in n for n in report["notes"])
    assert "did not finish" in md


def test_older_export_is_read_with_notes(dev_export: dict[str, Any], tmp_path: Path) -> None:
    status, report, _ = run_audit(tmp_path, as_older_export(dev_export))
    assert status == 0 and report is not None
    notes = " ".join(report["notes"])
    assert "version 2" in notes and "retainOnDelete" in notes and "identified by their URN" in notes
    assert all(r["volume"]["retained"] is None for r in report["clinics"])
    assert len(report["clinics"]) == 3


def test_export_from_stdin(dev_export: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.dumps(dev_export).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "r"
    assert audit.main(["--export", "-", "--out", str(out)]) == 0
    report = json.loads((out / "audit-report.json").read_text())
    assert report["export"]["source"] == "stdin"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not json at all", "is not JSON"),
        (b"[]", "not a stack export"),
        (b'{"version": 9, "deployment": {}}', "deployment version 9"),
        (b'{"deployment": {"resources": []}}', "no deployment version"),
        (b'{"version": 3}', "no deployment"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    content: bytes, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert audit.main(["--export", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.main(["--export", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_empty_stack(tmp_path: Path) -> None:
    status, report, _ = run_audit(tmp_path, {"version": 3, "deployment": {"manifest": {}, "resources": []}})
    assert status == 0 and report is not None and report["clinics"] == []
    assert any("no resources" in n for n in report["notes"])


def test_fail_on_mandatory_only(dev_export: dict[str, Any], tmp_path: Path) -> None:
    doc = json.loads(json.dumps(dev_export))
    for cron in k8s_resources(doc, "CronJob"):
        cron["type"] = "kubernetes:batch/v1:CronJobRemoved"  # no backups: an advisory finding only
    status, report, _ = run_audit(tmp_path, doc, "--fail-on", "mandatory")
    assert report is not None and report["summary"]["advisory"] > 0 and report["summary"]["mandatory"] == 0
    assert status == 0
    assert run_audit(tmp_path, doc)[0] == 1


# --- the hand-made fixtures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status", "expected"),
    [
        ("minimal-clean.json", 0, set()),
        ("public-service.json", 1, {("lb-internal", "hand")}),
        (
            "unprotected-pvc.json",
            1,
            {
                ("clinic-volume-protected", "hand"),
                ("clinic-volume-retained", "hand"),
                ("clinic-has-protected-volume", "hand"),
            },
        ),
        ("plaintext-secret.json", 1, {("secret-not-plaintext", "hand")}),
        ("pending-operations.json", 0, set()),
        ("old-export-v1.json", 0, set()),
    ],
)
def test_hand_made_fixtures(fixture: str, status: int, expected: set[tuple[str, str]], tmp_path: Path) -> None:
    got, report, _ = run_audit(tmp_path, FIXTURES / fixture)
    assert got == status and report is not None
    assert rules_hit(report) == expected
    row = report["clinics"][0]
    assert (row["clinic"], row["namespace"], row["fqdn"], row["privateIp"]) == (
        "hand",
        "orca-hand",
        ["hand.orca.example.jp"],
        ["10.50.8.30"],
    )


def test_hand_made_show_secrets_is_refused(tmp_path: Path) -> None:
    assert run_audit(tmp_path, FIXTURES / "show-secrets.json")[0] == 2


def test_build_export_is_stable_but_secrets_are_not_linkable(dev_run: Run) -> None:
    """Two exports of one run differ only in time and ciphertexts: equal secrets are not recognisable as equal."""
    a, b = build_export(dev_run), build_export(dev_run)
    strip = re.compile(r'"(time|ciphertext)": "[^"]*"')
    assert strip.sub("", json.dumps(a)) == strip.sub("", json.dumps(b))
    sec_a = [r["inputs"]["stringData"]["ciphertext"] for r in resources(a) if r["type"].endswith(":Secret")]
    sec_b = [r["inputs"]["stringData"]["ciphertext"] for r in resources(b) if r["type"].endswith(":Secret")]
    assert not set(sec_a) & set(sec_b)


def test_restored_clinic_shows_the_volume_in_use_and_keeps_the_earlier_one() -> None:
    from orca_platform.rules import RuleContext
    from tests.audit_support import clinic_pvc, deployment, k8s_view

    original = clinic_pvc()
    restored = k8s_view(
        "PersistentVolumeClaim",
        "orca-state-r1",
        labels={"orca-platform.io/clinic": "c1", "orca-platform.io/data": "clinic"},
        protect=True,
        retain=True,
        spec={"storageClassName": "orca-disk", "resources": {"requests": {"storage": "64Gi"}}},
    )
    server = deployment(volumes=[{"name": "state", "persistentVolumeClaim": {"claimName": "orca-state-r1"}}])
    ns = k8s_view("Namespace", "orca-c1", namespace="orca-c1", protect=True)
    views = [ns, original, restored, server]
    ctx = RuleContext().for_stack(views)
    (row,) = audit.clinic_rows(views, ctx, [])
    assert row["volume"]["claim"] == "orca-state-r1"
    assert [(v["claim"], v["inUse"]) for v in row["volumes"]] == [("orca-state", False), ("orca-state-r1", True)]
    report = {
        "export": {
            "stack": "dev",
            "project": "p",
            "sha256": "0",
            "source": "x",
            "updatedAt": "",
            "engine": "",
            "deploymentVersion": 3,
            "resources": 4,
        },
        "summary": {"result": "pass", "clinics": 1, "mandatory": 0, "advisory": 0, "publicEndpoints": 0},
        "generatedAt": "",
        "notes": [],
        "clinics": [row],
        "publicEndpoints": [],
        "vpnSites": [],
        "violations": [],
        "rules": [],
    }
    assert "Earlier volume generations" in audit_markdown.render_markdown(report)


def test_export_of_a_program_that_labelled_nothing(dev_export: dict[str, Any], tmp_path: Path) -> None:
    """Before clinic labels existed, clinics are still found by namespace, and what cannot be shown is reported."""
    doc = json.loads(json.dumps(dev_export))
    for r in resources(doc):
        for part in ("inputs", "outputs"):
            labels = ((r.get(part) or {}).get("metadata") or {}).get("labels")
            if isinstance(labels, dict):
                labels.pop("orca-platform.io/clinic", None)
                labels.pop("orca-platform.io/data", None)
    status, report, _ = run_audit(tmp_path, doc)
    assert report is not None and status == 1
    assert sorted(r["clinic"] for r in report["clinics"]) == ["test-aoba", "test-midori", "test-sakura"]
    assert any("recognised by their namespace names" in n for n in report["notes"])
    # Without the data label nobody can show which volume holds the clinic's data: that is a finding, per clinic.
    assert {c for rule, c in rules_hit(report) if rule == "clinic-has-protected-volume"} == {
        "test-aoba",
        "test-midori",
        "test-sakura",
    }


# --- evidence an auditor can sign (issue 15) --------------------------------------------------------------------


def test_each_clinic_row_carries_its_backup_access_and_restore_evidence(
    prod_export: dict[str, Any], prod_run: Run, tmp_path: Path
) -> None:
    from orca_platform.model.tenants import load_tenants
    from tests.orca_test_support import PROJECT_DIR, load_settings

    settings = load_settings("prod")
    tenants = {c.id: c for c in load_tenants(PROJECT_DIR / settings.tenants_file).clinics}
    _, report, md = run_audit(tmp_path, prod_export)
    assert report is not None
    sites = {s.name: s.address_spaces for s in settings.network.vpn.sites}
    account = prod_run.outputs["backupAccount"]
    for row in report["clinics"]:
        clinic = tenants[row["clinic"]]
        ev = row["evidence"]
        states = {b["name"]: b["state"] for b in ev["backups"]}
        if clinic.active:
            assert states == {"orca-dumps": "running", "orca-snapshots": "running"}
        else:  # hinata-hifuka: suspended, its schedules paused
            assert states == {"orca-dumps": "paused (clinic suspended)", "orca-snapshots": "paused (clinic suspended)"}
        assert ev["backupsAsExpected"] is True
        assert all(b["timeZone"] == settings.orca.timezone for b in ev["backups"])
        assert ev["snapshotsKept"] == settings.backup.snapshot_retention_count
        assert ev["dumpsTo"] == [
            f"https://{account}.blob.core.windows.net/{c}/{clinic.id}/" for c in ("daily", "monthly")
        ]
        assert ev["access"]["loadBalancerSourceRanges"] == sorted(clinic.source_cidrs)
        assert ev["access"]["sameRangesBothPaths"] is True
        expected_sites = [n for n, spaces in sites.items() if any(c in spaces for c in clinic.source_cidrs)]
        assert ev["access"]["vpnSites"] == expected_sites and ev["access"]["outsideEverySite"] == []
        assert ev["restores"] == []
    assert "## Backups, access and restores per clinic" in md
    assert "paused (clinic suspended)" in md


def test_the_report_states_retention_locks_retired_clinics_and_provenance(
    prod_export: dict[str, Any], dev_export: dict[str, Any], tmp_path: Path
) -> None:
    from tests.orca_test_support import load_settings

    b = load_settings("prod").backup
    doc = json.loads(json.dumps(prod_export))
    stack = resources(doc)[0]
    stack["outputs"]["sourceCommit"] = "0123456789abcdef0123456789abcdef01234567"
    for sub in ("prod", "dev"):
        (tmp_path / sub).mkdir()
    _, report, md = run_audit(tmp_path / "prod", doc)
    assert report is not None
    containers = {c["container"]: c for c in report["retention"]["containers"]}
    assert containers["daily"]["immutableDays"] == b.daily_retention_days
    assert containers["monthly"]["immutableDays"] == b.monthly_retention_days
    assert containers["daily"]["deletedAfterDays"] == b.daily_retention_days + 1
    assert [lk["level"] for lk in report["retention"]["locks"]] == ["CanNotDelete"]  # prod: backup.deleteLock
    assert report["provenance"]["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert report["provenance"]["updatedAt"] == doc["deployment"]["manifest"]["time"]
    assert "| Program commit | 0123456789abcdef0123456789abcdef01234567 |" in md
    assert report["retiredClinics"] == {"ids": [], "stillPresent": [], "recorded": True}
    _, dev_report, dev_md = run_audit(tmp_path / "dev", dev_export)
    assert dev_report is not None
    assert dev_report["retiredClinics"]["ids"] == ["test-old-clinic"]  # tenants.dev.yaml retiredClinicIds
    assert dev_report["retention"]["locks"] == []  # dev: no delete lock
    assert "`test-old-clinic`" in dev_md


def test_an_offline_export_records_the_commit_it_was_made_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.orca_test_support import PROJECT_DIR

    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.delenv("ORCA_SOURCE_COMMIT", raising=False)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = tmp_path / "export.json"
    assert export_main(["--stack", "dev", "--out", str(out)]) == 0
    stack = resources(json.loads(out.read_text()))[0]
    assert stack["outputs"]["sourceCommit"] in (head, head + "+dirty")


def test_backups_in_the_wrong_state_are_shown_as_such() -> None:
    from tests.audit_support import k8s_view
    from tools.audit import evidence as audit_evidence

    def cron(suspend: bool) -> Any:
        return k8s_view("CronJob", "orca-dumps", api="batch/v1", spec={"schedule": "30 1 * * *", "suspend": suspend})

    assert [b["state"] for b in audit_evidence.backup_evidence([cron(False)], "suspended")] == [
        "RUNNING although the clinic is suspended"
    ]
    assert [b["expected"] for b in audit_evidence.backup_evidence([cron(True)], "active")] == [False]


DUMP = "daily/c1/x.dump"


def test_restores_are_listed_with_their_sources() -> None:
    from tests.audit_support import k8s_view
    from tools.audit import evidence as audit_evidence

    labels = {"orca-platform.io/clinic": "c1", "orca-platform.io/data": "clinic"}
    from_snapshot = k8s_view(
        "PersistentVolumeClaim",
        "orca-state-r1",
        labels=labels,
        spec={"dataSource": {"kind": "VolumeSnapshot", "name": "orca-state-20261124183000"}},
    )
    from_dump = k8s_view(
        "Job",
        "orca-restore-r2",
        api="batch/v1",
        spec={
            "template": {
                "spec": {"initContainers": [{"name": "fetch", "env": [{"name": "DUMP", "value": "daily/c1/x.dump"}]}]}
            }
        },
    )
    found = audit_evidence.restore_evidence([from_snapshot, from_dump], in_use="orca-state-r2")
    assert found == [
        {"claim": "orca-state-r1", "from": "snapshot", "source": "orca-state-20261124183000", "inUse": False},
        {"claim": "orca-state-r2", "from": "dump", "source": DUMP, "inUse": True},
    ]


# A prod image: from the stack's registry, by digest (prod floors), so the change is the image alone.
NEW_IMAGE = "orcaplatformprod.azurecr.io/orca/jma-receipt@sha256:" + "5" * 64


def test_the_report_says_what_changed_since_the_previous_one(prod_export: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "before").mkdir()
    run_audit(tmp_path / "before", prod_export)
    previous = tmp_path / "before" / "report" / "audit-report.json"
    doc = json.loads(json.dumps(prod_export))
    # kaede-ganka leaves the stack; aoba-seikei gets a new image.
    doc["deployment"]["resources"] = [
        r
        for r in resources(doc)
        if "kaede-ganka" not in r["urn"] and "orca-kaede-ganka" not in json.dumps(r.get("inputs"))
    ]
    dep = next(
        r for r in k8s_resources(doc, "Deployment") if r["inputs"]["metadata"]["namespace"] == "orca-aoba-seikei"
    )
    for part in ("inputs", "outputs"):
        dep[part]["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
    (tmp_path / "after").mkdir()
    _, report, md = run_audit(tmp_path / "after", doc, "--previous", str(previous))
    assert report is not None
    changes = report["changes"]
    assert changes["clinicsRemoved"] == ["kaede-ganka"] and changes["clinicsAdded"] == []
    assert [d["field"] for d in changes["clinicsChanged"]["aoba-seikei"]] == ["image"]
    assert changes["clinicsChanged"]["aoba-seikei"][0]["after"] == [NEW_IMAGE]
    assert set(changes["clinicsChanged"]) == {"aoba-seikei"}
    assert changes["previousReport"]["exportSha256"] == json.loads(previous.read_text())["export"]["sha256"]
    assert "## Changes since the previous report" in md and "Clinics removed: kaede-ganka" in md


def test_a_previous_file_that_is_not_a_report_is_refused(dev_export: dict[str, Any], tmp_path: Path) -> None:
    bogus = dump({"hello": "world"}, tmp_path / "not-a-report.json")
    status, report, _ = run_audit(tmp_path, dev_export, "--previous", str(bogus))
    assert status == 2 and report is None
