"""Issue 10: one strict reader of the stack config, for the program and every offline tool.

Unknown, misplaced and duplicate keys are errors with the nearest known key; type errors say what to write; every
one stops the program before anything is registered, and `make synth`/`make plan` with exit status 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from orca_test_support import PROJECT_DIR, attempt, raw_settings, stack_file

import config as program_config_module
from orca_platform.model.config_file import read_stack_file, settings_from_config
from orca_platform.model.errors import InputError, Problem
from tools.checks import run as checks
from tools.offline.engine import stack_config

DEV_TEXT = (PROJECT_DIR / stack_file("dev")).read_text(encoding="utf-8")
JARGON = ("Input should", "valid string", "(got ", "pydantic", "extra_forbidden", "Value error")


def stopped(config: dict[str, str], *fragments: str) -> str:
    """The program, run on this config, stops with a RunError holding every fragment, having registered nothing."""
    result = attempt("dev", config)
    assert isinstance(result.error, pulumi.RunError), f"expected RunError, got {result.error!r}"
    assert result.registered == [], [r.urn for r in result.registered]
    message = str(result.error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message}"
    for word in JARGON:
        assert word not in message, f"library jargon {word!r} in {message}"
    return message


def with_keys(**extra: Any) -> dict[str, str]:
    """The dev config as the engine would pass it, plus keys given as 'namespace:key' via `extra`."""
    config = stack_config("dev")
    for key, value in extra.items():
        config[key.replace("__", ":")] = value if isinstance(value, str) else json.dumps(value)
    return config


def section(name: str, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = raw_settings("dev")[name]
    for key, v in changes.items():
        if v is None:
            value.pop(key, None)
        else:
            value[key] = v
    return value


# --- unknown and misplaced keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("capcity", {"densityTarget": 20}, "did you mean 'capacity'?"),
        ("tag", {"dataClass": "medical"}, "did you mean 'tags'?"),
        ("deleteLock", "true", "belongs under orca-platform:backup"),
        ("snapshotRetentionCount", "6", "belongs under orca-platform:backup"),
        ("Network", {"vnetCidr": "10.0.0.0/16"}, "did you mean 'network'?"),
        ("retentionYears", "5", "not a known field"),
    ],
)
def test_an_unknown_top_level_key_stops_the_program_with_the_nearest_key(key: str, value: Any, says: str) -> None:
    stopped(with_keys(**{f"orca-platform__{key}": value}), f"field 'orca-platform:{key}'", says)


@pytest.mark.parametrize(
    ("name", "changes", "field", "says"),
    [
        ("backup", {"deleteLok": True}, "orca-platform:backup.deleteLok", "did you mean 'deleteLock'?"),
        ("storage", {"deleteLock": True}, "orca-platform:storage.deleteLock", "belongs under orca-platform:backup"),
        (
            "cluster",
            {"systemPool": {"vmSize": "Standard_D2s_v5", "minCount": 1, "maxCount": 2, "maxpods": 30}},
            "orca-platform:cluster.systemPool.maxpods",
            "did you mean 'maxPods'?",
        ),
        (
            "network",
            {
                "vpn": {
                    "sku": "VpnGw1",
                    "sites": [{"name": "a-site", "gatewayIp": "203.0.113.10", "addressSpace": ["192.168.10.0/24"]}],
                }
            },
            "orca-platform:network.vpn.sites[0].addressSpace",
            "did you mean 'addressSpaces'?",
        ),
    ],
)
def test_a_nested_unknown_key_is_named_with_its_path(name: str, changes: dict[str, Any], field: str, says: str) -> None:
    stopped(with_keys(**{f"orca-platform__{name}": section(name, **changes)}), f"field '{field}'", says)


def test_a_misspelt_namespace_is_not_taken_for_another_project() -> None:
    stopped(
        with_keys(**{"orca-platfrom__tags": {"dataClass": "medical"}}),
        "field 'orca-platfrom:tags'",
        "did you mean 'orca-platform:tags'?",
    )
    # Other projects' namespaces are none of ours.
    assert attempt("dev", with_keys(**{"azure-native__subscriptionId": "x"})).error is None


def test_the_same_setting_twice_is_refused() -> None:
    # The engine still accepts the old `<ns>:config:<key>` spelling for `<ns>:<key>`: both at once is a duplicate.
    stopped(
        with_keys(**{"orca-platform__config__tags": {"dataClass": "medical"}}),
        "orca-platform:config:tags",
        "same setting as orca-platform:tags",
    )


# --- the stack file itself --------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder of its own, for stack files with mistakes."""
    return tmp_path


def write_stack(folder: Path, text: str, name: str = "dev") -> Path:
    path = folder / stack_file(name)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_second_block_of_the_same_key_is_refused_not_silently_kept(project: Path) -> None:
    text = DEV_TEXT + "  orca-platform:orca:\n    image: orcaplatformdev.azurecr.io/orca/jma-receipt:9.9.9\n"
    write_stack(project, text)
    with pytest.raises(InputError) as info:
        stack_config("dev", project)
    message = str(info.value)
    assert "key 'orca-platform:orca' appears twice" in message and "first on line" in message


def test_every_duplicate_key_of_the_file_is_reported_at_once(project: Path) -> None:
    text = DEV_TEXT.replace("    deleteLock: false\n", "    deleteLock: false\n    deleteLock: true\n")
    text = text.replace("    replicas: 2\n", "    replicas: 2\n    replicas: 3\n")
    write_stack(project, text)
    with pytest.raises(InputError) as info:
        stack_config("dev", project)
    assert {p.message.split(" appears")[0] for p in info.value.problems} == {"key 'deleteLock'", "key 'replicas'"}


def test_a_dedented_key_is_refused_with_where_it_belongs(project: Path) -> None:
    # `deleteLock: true` two spaces short sits beside orca-platform:backup, without a namespace.
    text = DEV_TEXT.replace("    deleteLock: false\n", "  deleteLock: true\n")
    write_stack(project, text)
    with pytest.raises(InputError) as info:
        read_stack_file(project / stack_file("dev"))
    [problem] = info.value.problems
    assert problem.field == "deleteLock" and "has no namespace" in problem.message
    assert "indent it under that key" in problem.fix and "orca-platform:backup" in problem.fix


def test_an_encrypted_value_is_named(project: Path) -> None:
    path = write_stack(project, "config:\n  orca-platform:tags:\n    secure: AAAA\n")
    with pytest.raises(InputError, match="orca-platform:tags': is encrypted"):
        read_stack_file(path)


# --- type errors in plain words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "changes", "field", "says"),
    [
        # `kubernetesVersion: 1.30` unquoted arrives as the number 1.3.
        ("cluster", {"kubernetesVersion": 1.3}, "cluster.kubernetesVersion", 'quote it: "1.3" (or "1.30"'),
        ("orca", {"postgresVersion": 12}, "orca.postgresVersion", 'quote it: "12"'),
        ("capacity", {"densityTarget": "20"}, "capacity.densityTarget", "write 20, not '20'"),
        ("backup", {"deleteLock": "false"}, "backup.deleteLock", "write true or false without quotes"),
        ("backup", {"dailyRetentionDays": 7.5}, "backup.dailyRetentionDays", "must be a whole number"),
        (
            "network",
            {"vpn": {"sku": "VpnGW1AZ", "sites": raw_settings("dev")["network"]["vpn"]["sites"]}},
            "network.vpn.sku",
            "did you mean 'VpnGw1AZ'?",
        ),
        ("cluster", {"zones": [1, 2]}, "cluster.zones[0]", 'quote it: "1"'),
        (
            "cluster",
            {"maintenanceWindow": {"startTime": "2:00"}},
            "cluster.maintenanceWindow.startTime",
            'a time of day in quotes, e.g. "02:00"',
        ),
    ],
)
def test_a_type_error_says_what_to_write(name: str, changes: dict[str, Any], field: str, says: str) -> None:
    stopped(with_keys(**{f"orca-platform__{name}": section(name, **changes)}), f"field 'orca-platform:{field}'", says)


def test_the_value_is_shown_as_written() -> None:
    message = stopped(with_keys(**{"orca-platform__orca": section("orca", postgresVersion=12)}))
    assert "field 'orca-platform:orca.postgresVersion' = 12: is the number 12, but text is expected" in message


def test_a_secret_value_is_never_shown() -> None:
    config = stack_config("dev") | {"orca-platform:adminPassword": "hunter2-very-secret"}
    with pytest.raises(InputError) as info:
        settings_from_config(config, "Pulumi.dev.yaml", secret_keys=["orca-platform:adminPassword"])
    assert "orca-platform:adminPassword" in str(info.value)
    assert "hunter2" not in str(info.value)


# --- one reader for the engine's config, synth, plan and checks -------------------------------------------------


def test_the_program_reads_every_key_the_engine_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `pulumi up` the language host hands the whole map over in PULUMI_CONFIG: unknown keys included."""
    from pulumi.runtime import config as runtime_config

    token = runtime_config.CONFIG.set({})
    try:
        engine = with_keys(**{"orca-platform__capcity": {"densityTarget": 20}})
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(engine))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["orca-platform:capcity"]))
        seen, secret = program_config_module.engine_config()
    finally:
        runtime_config.CONFIG.reset(token)
    assert seen["orca-platform:capcity"] == json.dumps({"densityTarget": 20})
    assert "orca-platform:capcity" in secret
    with pytest.raises(InputError, match="did you mean 'capacity'"):
        settings_from_config(seen, "Pulumi.dev.yaml", secret)


@pytest.fixture
def broken_stack() -> Iterator[str]:
    """A stack file in the project itself (synth and plan read Pulumi.<stack>.yaml there) with a misspelt key."""
    name = f"i10test{uuid.uuid4().hex[:8]}"
    path = PROJECT_DIR / stack_file(name)
    path.write_text(DEV_TEXT.replace("  orca-platform:capacity:", "  orca-platform:capcity:"), encoding="utf-8")
    try:
        yield name
    finally:
        path.unlink()


def tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and modules, fixed arguments
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# It writes a stack file into the project itself: never beside a test that copies the project (make unit: loadgroup).
@pytest.mark.xdist_group("project-dir")
def test_synth_plan_and_checks_refuse_the_same_file_alike(broken_stack: str, tmp_path: Path) -> None:
    expected = "field 'orca-platform:capcity': is not a known field; fix: did you mean 'capacity'?"
    synth = tool("tools.offline.synth", "--stack", broken_stack, "--out", str(tmp_path / "out"))
    plan = tool("tools.reports.plan", "--stack", broken_stack, "--json", str(tmp_path / "plan.json"))
    for proc in (synth, plan):
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="did you mean 'capacity'"):
        checks.stack_settings(stack_config(broken_stack), broken_stack)


def test_the_sample_stacks_read_cleanly_everywhere() -> None:
    for stack in ("dev", "prod"):
        config = stack_config(stack)
        assert settings_from_config(config, stack_file(stack)) == checks.stack_settings(config, stack)


def test_problem_shows_value_and_fix() -> None:
    text = str(Problem("t.yaml", "volumeSize", "is too small", "c1", "'1Gi'", "write 4Gi or more"))
    assert text == "t.yaml: clinic 'c1': field 'volumeSize' = '1Gi': is too small; fix: write 4Gi or more"
