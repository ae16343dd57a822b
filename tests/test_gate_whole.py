"""The gate judges the whole preview that will run (issue 21, items 1 and 2).

Recorded digests in tests/fixtures/preview/ (tests/preview_fixtures.py); the `gated` ones are in the shape of the
Makefile's preview: `--show-replacement-steps --show-sames --refresh`, so hidden steps and refresh-only resources
reach the gate.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from preview_fixtures import FIXTURES

from tools.deploy import gate as preview_gate
from tools.deploy.gate import evaluate
from tools.deploy.gate_model import Context
from tools.offline.engine_urns import parse


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return doc


def gate(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any] | str, *args: str) -> tuple[int, str]:
    """The gate's command line, as the Makefile calls it; its exit status and everything it printed."""
    path = tmp_path / "preview.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    if "--preview-exit" not in args:
        args = (*args, "--preview-exit", "0")
    code = preview_gate.main(["--preview", str(path), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def ops(doc: dict[str, Any]) -> set[str]:
    return {str(s["op"]) for s in doc["steps"]}


# --- the shape the Makefile's preview prints -------------------------------------------------------------------------


def test_the_gated_routine_fixture_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = fixture("routine-change-gated")
    # What makes it the gated shape: sames shown, the history's read, refresh steps first.
    assert {"same", "read", "refresh", "update"} <= ops(doc)
    assert doc["steps"][0]["op"] == "refresh"
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev")
    assert code == 0, out
    assert "PASSED" in out


def test_the_makefile_preview_shows_hidden_steps_and_sames() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    gate_recipe = makefile.split("\ngate:", 1)[1].split("\n\n", 1)[0]
    assert "--show-replacement-steps" in gate_recipe
    assert "--show-sames" in gate_recipe
    assert "--preview-exit $$rc" in gate_recipe


# --- hidden steps ----------------------------------------------------------------------------------------------------


def test_a_pending_delete_copy_of_a_protected_claim_is_refused_naming_the_clinic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = fixture("claim-pending-delete")
    (step,) = [s for s in doc["steps"] if s["op"] == "delete-replaced"]
    # The engine deletes a pending-delete copy without looking at protect (step.go DeleteStep.Apply: `!s.replacing`),
    # so the preview itself reports no error: only the gate stands in the way.
    assert step["oldState"]["protect"] and step["oldState"]["delete"]
    assert not doc.get("diagnostics")
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev")
    assert code == 1, out
    assert "clinic test-sakura: 1 refused" in out
    assert f"delete-replaced {step['urn']}" in out
    assert "pending-delete copy" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("op", ["delete-replaced", "discard-replaced", "remove-pending-replace", "create-replacement"])
def test_every_hidden_replacement_op_on_a_clinic_claim_is_refused(op: str) -> None:
    doc = fixture("routine-change-gated")
    claim = next(s for s in doc["steps"] if s["op"] == "same" and "PersistentVolumeClaim" in s["urn"])
    hidden = {"op": op, "urn": claim["urn"], "oldState": claim["oldState"], "detailedDiff": None}
    doc["steps"].append(hidden)
    found = {f.urn: f for f in evaluate(doc, Context(stack="dev"))}
    assert list(found) == [claim["urn"]]
    assert found[claim["urn"]].guarded.clinic == parse(claim["urn"]).name.split("-orca-state")[0]


# --- refresh-only losses ---------------------------------------------------------------------------------------------


def test_a_guarded_claim_seen_only_by_the_refresh_is_refused_naming_the_clinic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = fixture("clinic-lost-in-refresh")
    claim = next(s["urn"] for s in doc["steps"] if "PersistentVolumeClaim::test-aoba" in s["urn"])
    assert [s["op"] for s in doc["steps"] if s["urn"] == claim] == ["refresh"]
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev")
    assert code == 1, out
    assert f"refresh {claim}" in out
    assert "clinic test-aoba" in out
    assert "seen only by the refresh" in out


def test_a_refreshed_resource_the_program_still_registers_is_not_refused() -> None:
    doc = fixture("routine-change-gated")
    refreshed = [s["urn"] for s in doc["steps"] if s["op"] == "refresh"]
    assert refreshed and not evaluate(doc, Context(stack="dev"))


# --- whole digests only ----------------------------------------------------------------------------------------------


def _without(doc: dict[str, Any], *, root: bool = False, summary: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    if root:
        doc["steps"] = [s for s in doc["steps"] if parse(s["urn"]).type != "pulumi:pulumi:Stack"]
    if summary:
        doc.pop("changeSummary")
    return doc


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: {}, "not a whole preview"),
        (lambda d: {"steps": []}, "not a whole preview"),
        (lambda d: _without(d, root=True, summary=True), "not a whole preview"),
        (lambda d: _without(d, root=True), "no root Stack step"),
        (lambda d: _without(d, summary=True), "no changeSummary"),
        (lambda d: {**d, "steps": [*d["steps"], {"op": "same", "urn": "not-a-urn"}]}, "not-a-urn"),
    ],
    ids=["empty", "steps-only", "no-root-no-summary", "no-root", "no-summary", "bad-urn"],
)
def test_a_document_that_is_not_a_whole_digest_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, says: str
) -> None:
    code, out = gate(tmp_path, capsys, make(fixture("routine-change-gated")), "--stack", "dev")
    assert code == 2
    assert says in out
    assert "Traceback" not in out


def test_a_dev_digest_given_as_prod_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = gate(tmp_path, capsys, fixture("routine-change-gated"), "--stack", "prod")
    assert code == 2
    assert "stack dev" in out and "--stack prod" in out
    assert "pulumi state" not in out  # no prod advice on dev URNs


def test_a_digest_of_another_project_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(fixture("routine-change-gated")).replace("::orca-platform::", "::other-project::")
    code, out = gate(tmp_path, capsys, text, "--stack", "dev")
    assert code == 2
    assert "other-project" in out


def test_a_failed_preview_fails_whatever_its_exit_status_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = fixture("routine-change-gated")
    doc["diagnostics"] = [{"message": "error: Preview failed: boom\n", "severity": "error"}]
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev", "--preview-exit", "0")
    assert code == 1
    assert "PREVIEW FAILED" in out and "boom" in out
    doc = fixture("routine-change-gated")
    doc["maybeCorrupt"] = True
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev", "--preview-exit", "0")
    assert code == 1
    assert "maybeCorrupt" in out


def test_the_preview_exit_status_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        preview_gate.main(["--preview", "-", "--stack", "dev"])
    assert stop.value.code == 2
    assert "--preview-exit" in capsys.readouterr().err


# --- what else the update does (issue 21 item 5, issue 28 item 2) ----------------------------------------------------


def test_the_report_lists_restarting_servers_and_their_pre_upgrade_backups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = fixture("routine-change-gated")
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev")
    assert code == 0
    # test-sakura's image changed: its server restarts, after the pre-upgrade backup Job the program adds.
    assert "servers that stop or restart: 1" in out
    line = next(x for x in out.splitlines() if "clinic test-sakura:" in x)
    assert "restarts: new image" in line and "pre-upgrade backup runs first (orca-pre-upgrade-" in line
    assert "-stop-" not in line
    # test-aoba's volume grew (a claim update, no template change): its server keeps running.
    assert "clinic test-aoba" not in out


def test_the_report_flags_a_range_reaching_the_api_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = fixture("routine-change-gated")
    cluster = next(s for s in doc["steps"] if s["op"] == "same" and s["urn"].endswith("ManagedCluster::aks"))
    cluster["op"] = "update"
    cluster["detailedDiff"] = {"apiServerAccessProfile.authorizedIPRanges[4]": {"kind": "add", "inputDiff": False}}
    code, out = gate(tmp_path, capsys, doc, "--stack", "dev")
    assert code == 0  # not a data loss: flagged for the reviewer, not refused
    assert "exposure changes: 1" in out
    assert "the API server: ManagedCluster apiServerAccessProfile.authorizedIPRanges[4]" in out


def test_a_suspended_clinic_is_listed_as_stopping() -> None:
    from tools.deploy.effects import server_change

    assert server_change(["spec.replicas"], (1, 0)) == ["stops (replicas 0: suspended)"]
    assert server_change(["spec.template.spec.volumes[0].persistentVolumeClaim.claimName"]) == [
        "restarts: another volume generation"
    ]
    assert server_change(["spec.template.metadata.annotations.x"]) == [
        "restarts: pod template (spec.template.metadata.annotations.x)"
    ]
    assert server_change(["spec.strategy.type"]) == []
