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
from tools import audit
from tools.offline import Run, is_secret, reveal
from tools.stack_export import build_export
from tools.stack_export import main as export_main


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
    assert audit.plaintext_secrets(dev_export) == []


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
    assert "Earlier volume generations" in audit.render_markdown(report)


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
