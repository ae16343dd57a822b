"""Issue 16, the pure half: the history document, its parser (first update, version 0, later versions, unreadable
input), acknowledgements as stack settings, and the one refusal no config edit of this program can cause (prod
immutability turned off), checked on the comparison itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lifecycle_support import base_tenants
from orca_test_support import raw_settings, settings_from

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.errors import InputError
from orca_platform.model.settings import Transition
from orca_platform.model.tenants import parse_tenants
from orca_platform.plan.stack_plan import StackPlan, plan_stack
from orca_platform.safety.history import HISTORY_OUTPUT, LEGACY_OUTPUT, VERSION, history_of, parse_history, review
from tools.offline.engine import Run, StackOutputs

SOURCE = "the last outputs of stack organization/orca-platform/dev"


def plan_of(stack: str, tenants: dict[str, Any] | None = None, **sections: Any) -> StackPlan:
    raw = raw_settings(stack)
    raw.update(sections)
    settings = settings_from(raw, stack)
    doc = tenants if tenants is not None else base_tenants(stack)
    return plan_stack(settings, parse_tenants(doc, "tenants.yaml"), load_catalogue(), "tenants.yaml", f"{stack}.yaml")


def test_no_outputs_is_a_first_update() -> None:
    assert parse_history(None, SOURCE) == (None, [])
    assert parse_history({}, SOURCE) == (None, [])
    # Outputs without either record (another program's stack): nothing to compare with.
    assert parse_history({"clusterName": "aks"}, SOURCE) == (None, [])


def test_the_history_reads_back_as_written() -> None:
    history = history_of(plan_of("dev"))
    # Through JSON and with the numbers as doubles, as they come back through the engine's protobuf Struct.
    text = json.dumps(history.to_output())
    doubled = json.loads(text, parse_int=float)
    assert doubled["backup"]["dailyRetentionDays"] == float(history.backup.daily_retention_days or 0)
    parsed, warnings = parse_history({HISTORY_OUTPUT: doubled}, SOURCE)
    assert parsed == history
    assert warnings == []


def test_version_0_is_read_from_the_clinics_output(dev_run: Run) -> None:
    """A stack deployed before the history: its `clinics` output (which this program still exports unchanged)."""
    outputs = StackOutputs.of(dev_run).without(HISTORY_OUTPUT).values
    previous, warnings = parse_history(outputs, SOURCE)
    assert previous is not None and previous.version == 0 and warnings == []
    assert previous.clinics.keys() == dev_run.outputs[LEGACY_OUTPUT].keys()
    for cid, legacy in dev_run.outputs[LEGACY_OUTPUT].items():
        record = previous.clinics[cid]
        assert record.storage_class == legacy["storageClass"]
        assert f"{record.claim_gib}Gi" == legacy["volume"]
        assert record.image == legacy["image"]
        # What version 0 never recorded stays unknown, never guessed.
        assert record.volumes is None and record.restores is None and record.postgres_version is None
    assert previous.retired_clinic_ids is None
    assert previous.backup.daily_retention_days is None


def test_a_later_version_is_read_for_what_this_one_knows() -> None:
    doc = history_of(plan_of("dev")).to_output()
    doc["version"] = VERSION + 1
    doc["clinics"]["alpha-naika"]["somethingNew"] = {"x": 1}
    doc["newSection"] = []
    parsed, warnings = parse_history({HISTORY_OUTPUT: doc}, SOURCE)
    assert parsed is not None
    assert parsed.clinics["alpha-naika"].live == "orca-state-r2"
    assert len(warnings) == 1 and "later program version" in warnings[0] and SOURCE in warnings[0]


@pytest.mark.parametrize(
    "bad",
    [
        "not a map",
        {"clinics": {}},  # no version
        {"version": 1, "clinics": {"alpha-naika": {"volumes": "orca-state"}}},
    ],
)
def test_an_unreadable_history_is_refused(bad: Any) -> None:
    with pytest.raises(InputError) as err:
        parse_history({HISTORY_OUTPUT: bad}, SOURCE)
    (problem,) = err.value.problems
    assert problem.source == SOURCE
    assert problem.field == HISTORY_OUTPUT
    assert "pulumi stack" in problem.message


def test_immutability_turned_off_is_refused_in_prod_only() -> None:
    """No setting of this program turns a container's WORM policy off; a history that records one more immutable
    container than this update has (as after a program change that dropped it) is the transition."""
    for stack, refused in (("prod", True), ("dev", False)):
        plan = plan_of(stack)
        previous = history_of(plan)
        assert previous.backup.immutability
        earlier = previous.model_copy(
            update={
                "backup": previous.backup.model_copy(
                    update={"immutability": {**previous.backup.immutability, "yearly": 3650}}
                )
            }
        )
        result = review(earlier, plan, [], "tenants.yaml", f"Pulumi.{stack}.yaml")
        fields = [p.field for p in result.problems]
        assert fields == (["orca-platform:backup"] if refused else [])
        if refused:
            assert "'yearly'" in result.problems[0].message
            assert Transition.IMMUTABILITY_OFF.value in result.problems[0].message


def test_no_change_is_no_problem_and_carries_the_acknowledgement_log() -> None:
    plan = plan_of("dev")
    first = review(None, plan, [], "tenants.yaml", "Pulumi.dev.yaml")
    assert first.problems == [] and first.history.acknowledgements == []
    again = review(first.history, plan, [], "tenants.yaml", "Pulumi.dev.yaml")
    assert again.problems == []
    assert again.history == first.history


# --- acknowledgements as settings ------------------------------------------------------------------------------------


def _ack_problems(acks: list[dict[str, Any]]) -> list[str]:
    raw = raw_settings("dev")
    raw["acknowledgements"] = acks
    with pytest.raises(InputError) as err:
        settings_from(raw, "dev")
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("ack", "says"),
    [
        ({"clinic": "alpha-naika", "transition": "clinic-renamed", "reason": "a good reason"}, "clinic-removed"),
        ({"clinic": "alpha-naika", "transition": "retention-lowered", "reason": "a good reason"}, "*stack*"),
        ({"clinic": "*stack*", "transition": "restores-rewritten", "reason": "a good reason"}, "its id"),
        ({"clinic": "alpha-naika", "transition": "restores-rewritten", "reason": "because"}, "at least 10"),
        ({"clinic": "alpha-naika", "transition": "restores-rewritten"}, "is required"),
    ],
)
def test_a_bad_acknowledgement_names_the_stack_file_and_the_entry(ack: dict[str, Any], says: str) -> None:
    (message,) = _ack_problems([ack])
    assert message.startswith("Pulumi.dev.yaml: field 'orca-platform:acknowledgements[0]")
    assert says in message


def test_one_transition_of_one_clinic_is_acknowledged_once() -> None:
    ack = {"clinic": "alpha-naika", "transition": "restores-rewritten", "reason": "a good reason"}
    (message,) = _ack_problems([ack, {**ack, "reason": "another reason"}])
    assert "acknowledged twice" in message


def test_a_restore_inserted_before_the_last_one_is_refused_as_such() -> None:
    tenants = base_tenants("dev")
    plan = plan_of("dev", tenants)
    previous = history_of(plan)
    alpha = next(c for c in tenants["clinics"] if c["id"] == "alpha-naika")
    alpha["restores"].insert(1, {"id": "r0", "fromDump": "daily/alpha-naika/20261124T163000Z.dump"})
    (problem,) = review(previous, plan_of("dev", tenants), [], "tenants.yaml", "Pulumi.dev.yaml").problems
    assert problem.clinic == "alpha-naika" and problem.field == "restores"
    assert "inserts restore 'r0'" in problem.message
