"""The preview gate (issue 16, item 3) on recorded `pulumi preview --json` digests of the dev stack.

The fixtures in tests/fixtures/preview/ were built by tests/preview_fixtures.py from runs of the real program (see
its docstring and tests/fixtures/preview/README.md); a few tests below build a digest the same way from two runs.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from orca_test_support import program_config, raw_settings
from preview_fixtures import FIXTURES, Shaper, preview, tenants_doc

from tools.deploy import gate as preview_gate
from tools.deploy import gate_model
from tools.deploy.gate import Context, classify, evaluate, load_preview
from tools.offline.engine import Run, run_program
from tools.offline.engine_urns import engine_urns, parse

PROVIDER = "urn:pulumi:dev::orca-platform::orca:platform:Cluster$pulumi:providers:kubernetes::k8s"


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return doc


def gate(tmp_path: Path, doc: dict[str, Any] | str, *args: str) -> tuple[int, str]:
    """Run the gate's command line on a digest; returns its exit status and what it printed."""
    path = tmp_path / "preview.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    report = tmp_path / "report.txt"
    if "--preview-exit" not in args:  # the Makefile always passes it (required)
        args = (*args, "--preview-exit", "0")
    code = preview_gate.main(["--preview", str(path), "--report", str(report), *args])
    return code, report.read_text(encoding="utf-8") if report.exists() else ""


def outputs_file(tmp_path: Path, outputs: dict[str, Any]) -> str:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs), encoding="utf-8")
    return str(path)


def tenants_file(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    doc = tenants_doc()
    edit(doc)
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(path)


def steps(doc: dict[str, Any], op: str | None = None) -> list[dict[str, Any]]:
    return [s for s in doc["steps"] if op is None or s["op"] == op]


def refused(doc: dict[str, Any], ctx: Context | None = None) -> dict[str, preview_gate.Finding]:
    return {f.urn: f for f in evaluate(doc, ctx or Context(stack="dev"))}


def protected(doc: dict[str, Any], op: str) -> set[str]:
    """URNs the digest would `op` whose state says protect: what the program itself protects, not the gate's list."""
    return {s["urn"] for s in steps(doc, op) if (s.get("oldState") or {}).get("protect")}


def without_aoba(doc: dict[str, Any]) -> None:
    doc["clinics"] = [c for c in doc["clinics"] if c["id"] != "test-aoba"]


def retire_aoba(doc: dict[str, Any]) -> None:
    without_aoba(doc)
    doc["retiredClinicIds"] = [*doc.get("retiredClinicIds", []), "test-aoba"]


# --- the recorded scenarios ------------------------------------------------------------------------------------------


def test_a_routine_change_passes(tmp_path: Path) -> None:
    doc = fixture("routine-change")
    ops = {(s["op"], parse(s["urn"]).type) for s in doc["steps"]}
    # What makes it a test: a data volume is updated (grown) and a Job (no data) is deleted.
    assert ("update", "kubernetes:core/v1:PersistentVolumeClaim") in ops
    assert ("delete", "kubernetes:batch/v1:Job") in ops
    code, out = gate(tmp_path, doc, "--stack", "dev")
    assert code == 0, out
    assert "PASSED" in out


def test_a_removed_clinic_is_refused_on_each_of_its_data_resources(tmp_path: Path, dev_run: Run) -> None:
    doc = fixture("clinic-removed")
    code, out = gate(tmp_path, doc, "--stack", "dev", "--tenants", tenants_file(tmp_path, without_aoba))
    assert code == 1
    found = refused(doc)
    # Exactly what the program registers as protected for test-aoba, every one named with its clinic ...
    urns = engine_urns(dev_run)
    program = {urns[r.urn] for r in dev_run.resources if r.protect and "test-aoba" in r.name}
    assert set(found) == program == protected(doc, "delete")
    assert {f.guarded.clinic for f in found.values()} == {"test-aoba"}
    for urn in program:
        assert urn in out
    # ... and what to do instead.
    assert "make decommission CLINIC=test-aoba STACK=dev" in out
    assert "no longer deployed and not in retiredClinicIds" in out
    # Its stateless resources are not refused one by one, but counted: every other delete of the clinic's.
    others = [s for s in doc["steps"] if s["op"] == "delete" and "test-aoba" in s["urn"] and s["urn"] not in program]
    counted = re.search(r"\((\d+) other resources", out)
    assert counted is not None and 0 < int(counted.group(1)) <= len(others)


def _unprotected(doc: dict[str, Any], keep: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """The same removal after `pulumi state unprotect` of every URN but `keep`: the engine reports no error."""
    doc = copy.deepcopy(doc)
    for s in steps(doc, "delete"):
        if s["urn"] not in keep:
            s["oldState"].pop("protect", None)
    doc.pop("diagnostics", None)
    return doc


def test_a_retired_clinic_leaves_the_stack_once_unprotected(tmp_path: Path) -> None:
    doc = _unprotected(fixture("clinic-removed"))
    code, out = gate(tmp_path, doc, "--stack", "dev", "--tenants", tenants_file(tmp_path, retire_aoba))
    assert code == 0, out


def test_a_retired_clinics_protected_claim_is_refused_with_the_unprotect_command(tmp_path: Path) -> None:
    original = fixture("clinic-removed")
    claim = next(u for u in protected(original, "delete") if "PersistentVolumeClaim" in u)
    doc = _unprotected(original, keep={claim})
    code, out = gate(tmp_path, doc, "--stack", "dev", "--tenants", tenants_file(tmp_path, retire_aoba))
    assert code == 1
    assert list(refused(doc, _retired_ctx())) == [claim]
    assert f"pulumi state unprotect --stack dev '{claim}'" in out


def _retired_ctx() -> Context:
    return Context(stack="dev", tenants={"test-sakura", "test-midori"}, retired={"test-aoba"})


def test_a_retired_clinics_namespace_without_retain_on_delete_is_refused() -> None:
    doc = _unprotected(fixture("clinic-removed"))
    ns = next(s for s in steps(doc, "delete") if parse(s["urn"]).type == "kubernetes:core/v1:Namespace")
    assert ns["oldState"].pop("retainOnDelete") is True
    found = refused(doc, _retired_ctx())
    assert list(found) == [ns["urn"]]
    assert "would delete the object in the cluster" in found[ns["urn"]].why


def test_a_replaced_kubernetes_provider_is_refused_with_everything_it_would_take(tmp_path: Path) -> None:
    doc = fixture("provider-replaced")
    code, out = gate(tmp_path, doc, "--stack", "dev")
    assert code == 1
    assert f"replace {PROVIDER}" in out
    found = refused(doc)
    assert set(found) == {PROVIDER} | protected(doc, "replace")
    # The stateless objects replaced with it are not data: the Deployments, for example, are not listed.
    deployments = {s["urn"] for s in steps(doc, "replace") if "apps/v1:Deployment" in s["urn"]}
    assert deployments and not deployments & set(found)
    assert "clusterIdentifier" in found[PROVIDER].todo
    assert all("provider" in f.why for u, f in found.items() if u != PROVIDER)


def test_a_claim_recreated_after_a_refresh_is_refused_with_the_way_to_reattach_it(tmp_path: Path) -> None:
    doc = fixture("claim-recreated-after-refresh")
    created = steps(doc, "create")
    assert len(created) == 1 and len(steps(doc, "refresh")) > 50
    claim = created[0]
    code, out = gate(tmp_path, doc, "--stack", "dev")
    assert code == 1
    assert list(refused(doc)) == [claim["urn"]]
    spec = claim["newState"]["inputs"]["spec"]
    for expected in (
        "refresh found it gone",
        "kubectl patch pv <pv> --type json",
        '"path":"/spec/claimRef"',
        "volumeName: <pv>",
        f"storageClassName: {spec['storageClassName']}",
        "pulumi import --stack dev kubernetes:core/v1:PersistentVolumeClaim test-sakura-orca-state "
        "orca-test-sakura/orca-state",
        "--parent 'urn:pulumi:dev::orca-platform::orca:platform:OrcaTenant::test-sakura'",
        f"--provider '{PROVIDER}'",
    ):
        assert expected in out


def _no_refresh(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["steps"] = [s for s in doc["steps"] if s["op"] != "refresh"]
    return doc


def _restore_claim(doc: dict[str, Any]) -> dict[str, Any]:
    """The same create, for a new volume generation (a restore's claim) instead."""
    doc = copy.deepcopy(doc)
    create = steps(doc, "create")[0]
    create["urn"] += "-r1"
    create["newState"]["urn"] = create["urn"]
    create["newState"]["inputs"]["metadata"]["name"] = "orca-state-r1"
    return doc


@pytest.mark.parametrize(
    ("outputs", "edit", "refuses"),
    [
        ({"clinics": {"test-sakura": {}}}, _no_refresh, True),
        ({"orcaHistory": {"version": 1, "clinics": {"test-sakura": {"volumes": ["orca-state"]}}}}, _no_refresh, True),
        (
            {"orcaHistory": {"version": 1, "clinics": {"test-sakura": {"volumes": ["orca-state"]}}}},
            lambda d: _restore_claim(_no_refresh(d)),
            False,
        ),
        ({"clinics": {"test-sakura": {}}}, lambda d: _restore_claim(_no_refresh(d)), False),
        ({"clinics": {"test-aoba": {}}}, _no_refresh, False),
    ],
    ids=["clinics-output", "history", "history-new-generation", "clinics-new-generation", "other-clinic"],
)
def test_stack_outputs_tell_a_recreated_claim_from_a_new_one(
    tmp_path: Path, outputs: dict[str, Any], edit: Callable[[dict[str, Any]], dict[str, Any]], refuses: bool
) -> None:
    doc = edit(fixture("claim-recreated-after-refresh"))
    code, out = gate(tmp_path, doc, "--stack", "dev", "--outputs", outputs_file(tmp_path, outputs))
    assert code == (1 if refuses else 0), out


def test_without_outputs_or_refresh_a_recreated_claim_cannot_be_told(tmp_path: Path) -> None:
    code, out = gate(tmp_path, _no_refresh(fixture("claim-recreated-after-refresh")), "--stack", "dev")
    assert code == 0
    assert "no stack outputs given" in out


def test_a_recreated_namespace_of_a_deployed_clinic_is_refused(tmp_path: Path) -> None:
    doc = _no_refresh(fixture("claim-recreated-after-refresh"))
    ns = next(
        s["oldState"]
        for s in fixture("claim-recreated-after-refresh")["steps"]
        if s["op"] == "refresh" and s["urn"].endswith("Namespace::test-sakura-ns")
    )
    new = {k: v for k, v in ns.items() if k not in ("id", "created", "modified")}
    doc["steps"].append({"op": "create", "urn": ns["urn"], "newState": new, "detailedDiff": None})
    outputs = outputs_file(tmp_path, {"clinics": {"test-sakura": {}}})
    code, out = gate(tmp_path, doc, "--stack", "dev", "--outputs", outputs)
    assert code == 1
    assert ns["urn"] in out
    assert "kubectl create namespace orca-test-sakura" in out


def test_a_storage_class_change_is_refused_on_the_clinics_claim(tmp_path: Path) -> None:
    doc = fixture("storage-class-changed")
    code, out = gate(tmp_path, doc, "--stack", "dev")
    assert code == 1
    assert "clinic test-aoba: 1 refused" in out
    found = refused(doc)
    assert set(found) == protected(doc, "replace")
    assert len(found) == 1
    (finding,) = found.values()
    assert finding.guarded.clinic == "test-aoba"
    assert "spec.storageClassName" in finding.why
    assert "docs/runbooks.md, 'Restore from a dump'" in finding.todo
    assert steps(doc, "create")  # the new StorageClass is no refusal


def test_a_cluster_replacement_is_refused(tmp_path: Path) -> None:
    doc = fixture("cluster-replaced")
    code, out = gate(tmp_path, doc, "--stack", "dev")
    assert code == 1
    assert "ManagedCluster::aks  [AKS cluster]" in out
    found = refused(doc)
    names = {parse(u).name for u in found}
    assert {"aks", "pool-orca", "k8s"} <= names
    assert set(found) == {PROVIDER} | protected(doc, "replace")
    maintenance = {s["urn"] for s in steps(doc, "replace") if "MaintenanceConfiguration" in s["urn"]}
    assert maintenance and not maintenance & set(found)
    assert "another cluster" in found[PROVIDER].todo


def test_the_recorded_fixtures_still_name_what_the_program_registers(tmp_path: Path) -> None:
    """The refresh fixture lists every resource of its stack: the same URNs as a run of today's program."""
    doc = fixture("claim-recreated-after-refresh")
    tenants = tenants_file(tmp_path, without_aoba)
    run = run_program("dev", program_config("dev", Path(tenants)))
    assert {s["urn"] for s in steps(doc, "refresh")} == set(engine_urns(run).values())


# --- what the gate watches -------------------------------------------------------------------------------------------


def test_the_gate_watches_what_the_program_protects(stack_run: Run) -> None:
    """Every protected resource is guarded; the others guarded are the Kubernetes provider and the delete lock."""
    shaper = Shaper(stack_run)
    guarded, expected = set(), set()
    for urn, res in shaper.by_urn.items():
        state = shaper.state(res, old=True)
        if classify({"op": "update", "urn": urn, "oldState": state, "newState": state}) is not None:
            guarded.add(urn)
        if res.protect or res.type in ("pulumi:providers:kubernetes", gate_model.LOCK):
            expected.add(urn)
    assert guarded == expected
    assert any("PersistentVolumeClaim" in u for u in guarded)


def test_clinic_of_each_data_resource_comes_from_its_tenant(dev_run: Run) -> None:
    shaper = Shaper(dev_run)
    for urn, res in shaper.by_urn.items():
        state = shaper.state(res, old=True)
        g = classify({"op": "delete", "urn": urn, "oldState": state})
        if g is not None and g.category in ("namespace", "claim", "secret", "password"):
            assert g.clinic is not None and res.name.startswith(f"{g.clinic}-"), (urn, g)


# --- updates that hide data ------------------------------------------------------------------------------------------


def _shorter_retention() -> dict[str, Any]:
    backup = raw_settings("dev")["backup"]
    backup["dailyRetentionDays"] = backup["dailyRetentionDays"] - 2
    return backup


def test_a_shorter_immutability_period_is_refused(dev_run: Run) -> None:
    after = run_program("dev", program_config("dev", backup=_shorter_retention()))
    # The program creates each WORM policy once and ignores later period changes (the provider cannot send the ETag
    # an update needs, pulumi-azure-native#2156), and the stack history refuses a lowered retention before that. The
    # gate is the last net should a policy's period change anyway: drop the ignore and the shrink is refused.
    assert not refused(preview(dev_run, after))
    for res in after.resources:
        if res.name == "backup-daily-immutability":
            res.ignore_changes = []
    found = refused(preview(dev_run, after))
    assert [parse(u).name for u in found] == ["backup-daily-immutability"]
    assert "shrink from 7 to 5 days" in next(iter(found.values())).why


@pytest.mark.parametrize("op", ["update", "same"])
def test_protect_removed_from_a_data_resource_is_refused(op: str) -> None:
    doc = fixture("routine-change")
    claim = next(s for s in steps(doc, "update") if "PersistentVolumeClaim" in s["urn"])
    claim["newState"].pop("protect")
    claim["op"] = op
    assert list(refused(doc)) == [claim["urn"]]


def test_an_unknown_operation_on_data_fails_closed() -> None:
    doc = fixture("routine-change")
    claim = next(s for s in steps(doc, "update") if "PersistentVolumeClaim" in s["urn"])
    claim["op"] = "mutate-in-place"
    assert "unknown operation" in refused(doc)[claim["urn"]].why


def test_the_server_moving_back_to_an_older_volume_is_refused(tmp_path: Path) -> None:
    def with_restore(doc: dict[str, Any]) -> None:
        sakura = next(c for c in doc["clinics"] if c["id"] == "test-sakura")
        sakura["restores"] = [{"id": "r1", "fromSnapshot": "orca-state-20261124183000"}]

    before = run_program("dev", program_config("dev", Path(tenants_file(tmp_path, with_restore))))
    after = run_program("dev")
    doc = preview(before, after)
    history = {"test-sakura": {"volumes": ["orca-state", "orca-state-r1"], "live": "orca-state-r1"}}
    found = refused(doc, Context(stack="dev", history=history, known_clinics={"test-sakura"}))
    deployment = next(u for u in found if u.endswith("apps/v1:Deployment::test-sakura-orca"))
    assert "back from orca-state-r1 to the older orca-state" in found[deployment].why
    claim = next(u for u in found if u.endswith("PersistentVolumeClaim::test-sakura-orca-state-r1"))
    assert "append-only" in found[claim].todo


# --- input ----------------------------------------------------------------------------------------------------------


def test_a_failed_preview_without_findings_still_fails(tmp_path: Path) -> None:
    code, out = gate(tmp_path, fixture("routine-change"), "--preview-exit", "255")
    assert code == 1
    assert "PREVIEW FAILED" in out
    assert "policy violations are not part of `--json` output" in out


def test_cli_output_before_the_digest_is_skipped() -> None:
    text = "Installing dependencies...\nFinished installing dependencies\n" + json.dumps(
        fixture("routine-change"), indent=4
    )
    assert load_preview(text, "preview.json")["steps"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty"),
        ('{"type": "preludeEvent"}\n{"type": "summaryEvent"}\n', "PULUMI_ENABLE_STREAMING_JSON_PREVIEW"),
        ("error: no stack named 'dev' found\n", "is not the JSON"),
        ('{"steps": {}}', "no `steps` list"),
    ],
)
def test_unreadable_input_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    code, _ = gate(tmp_path, text)
    assert code == 2
    assert says in capsys.readouterr().err


def test_markdown_for_the_pull_request_comment(tmp_path: Path) -> None:
    code, out = gate(tmp_path, fixture("storage-class-changed"), "--format", "markdown")
    assert code == 1
    assert out.startswith("## preview gate (dev): REFUSED")
    assert out.count("```") == 2
