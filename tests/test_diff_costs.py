"""`make diff` flags cost changes (issue 28 item 2, issue 21 item 5): a new clinic's monthly cost from the planner,
and a pin that keeps it on another storage class or front door than the stack gives new clinics (a copied neighbour's
entry, the case issue 28 found costing about 2.5 times as much).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tools.deploy import costs


def tenants_with(tmp_path: Path, **pins: Any) -> str:
    doc = yaml.safe_load(Path("tenants.dev.yaml").read_text(encoding="utf-8"))
    new = copy.deepcopy(doc["clinics"][2])
    new.update({"id": "test-kaede", "name": "テスト かえで", "sourceCidrs": ["192.168.40.0/24"], **pins})
    new.pop("privateIp", None)
    doc["clinics"].append(new)
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_a_new_clinic_at_the_stacks_defaults_gets_its_monthly_cost_and_no_pin(tmp_path: Path) -> None:
    (line,) = costs.cost_flags("dev", {"test-kaede"}, tenants_with(tmp_path))
    assert line.startswith("clinic test-kaede: $")
    assert "a month pay-as-you-go" in line
    assert "pinned" not in line


def test_a_new_clinic_pinned_off_the_defaults_is_flagged_with_both_costs(tmp_path: Path) -> None:
    (line,) = costs.cost_flags("dev", {"test-kaede"}, tenants_with(tmp_path, storageSku="Premium_ZRS"))
    assert "pinned to" in line and "ZRS" in line
    assert "a new clinic at the stack's defaults costs $" in line


def test_unreadable_inputs_are_a_note_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clinics: [{id: 1}]\n", encoding="utf-8")
    (line,) = costs.cost_flags("dev", {"x"}, str(bad))
    assert line.startswith("cost not computed:")
