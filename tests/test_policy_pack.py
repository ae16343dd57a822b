"""Issue 6: the CrossGuard policy pack, through its validate functions with pulumi_policy's own argument types."""

from __future__ import annotations

import ast
import select
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from orca_platform.rules import RULES, Enforcement
from policy.orca_policies import PACK_NAME, all_policies, plain
from tools.offline.engine import Registered, Run, reveal

PROJECT_DIR = Path(__file__).resolve().parent.parent
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"


def options(protect: bool = False, parent: str = "") -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent or None,
    )


def args_for(res: Registered, props: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """What the engine hands a policy at preview: inputs with secrets already unwrapped, behind the unknown proxy."""
    body = reveal(res.inputs) if props is None else props
    return ResourceValidationArgs(
        res.type, unknown_checking_proxy(body), res.urn, res.name, options(res.protect, res.parent), None
    )


def stack_args(run: Run) -> StackValidationArgs:
    by_urn: dict[str, PolicyResource] = {}
    for res in run.resources:
        by_urn[res.urn] = PolicyResource(
            res.type,
            unknown_checking_proxy(reveal({**res.inputs, **res.outputs})),
            res.urn,
            res.name,
            options(res.protect, res.parent),
            None,
            None,
            [],
            {},
        )
    for res in run.resources:
        pr = by_urn[res.urn]
        pr.parent = by_urn.get(res.parent)
        pr.dependencies = [by_urn[d] for d in res.dependencies if d in by_urn]
    return StackValidationArgs(list(by_urn.values()))


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.calls.append((message, urn))


def resource_policies() -> dict[str, ResourceValidationPolicy]:
    return {p.name: p for p in all_policies() if isinstance(p, ResourceValidationPolicy)}


def stack_policies() -> dict[str, StackValidationPolicy]:
    return {p.name: p for p in all_policies() if isinstance(p, StackValidationPolicy)}


def validate(policy_name: str, args: ResourceValidationArgs) -> list[tuple[str, str | None]]:
    report = Reports()
    resource_policies()[policy_name].validate(args, report)
    return report.calls


# --- the pack's shape -------------------------------------------------------------------------------------------


def test_one_policy_per_rule_a_preview_can_judge() -> None:
    policies = all_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names))
    assert set(names) == {r.id for r in RULES if r.at_preview}
    for rule in RULES:
        if rule.at_preview:
            policy = next(p for p in policies if p.name == rule.id)
            expected = (
                EnforcementLevel.MANDATORY if rule.enforcement is Enforcement.MANDATORY else EnforcementLevel.ADVISORY
            )
            assert policy.enforcement_level == expected
            assert isinstance(policy, StackValidationPolicy if rule.scope == "stack" else ResourceValidationPolicy)


def test_only_main_calls_policypack() -> None:
    """Importable modules must not start the pack's server (PolicyPack(...) never returns)."""
    callers = []
    for path in (PROJECT_DIR / "policy").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PolicyPack":
                callers.append(path.name)
    assert callers == ["__main__.py"]


def test_pack_starts_as_pulumi_starts_it(tmp_path: Path) -> None:
    """`pulumi preview --policy-pack policy` runs `python -m pulumi.policy <engine> <pack dir>` in the pack's venv,
    from elsewhere: the pack must find the project's rules by itself and print the port it serves on."""
    # The pack's own interpreter (policy/venv, pulumi-policy only): a rule that imported pydantic would fail here.
    python = PROJECT_DIR / "policy" / "venv" / "bin" / "python"
    assert python.exists(), "policy/venv is missing: `make unit` builds it (make policy-venv)"
    proc = subprocess.Popen(  # noqa: S603 - fixed arguments
        [str(python), "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PROJECT_DIR / "policy")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        # The pack prints its port once it serves; never wait forever for a pack that hangs silently.
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"policy pack did not start: {line!r} {err}")
        assert int(line) > 0
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert PACK_NAME == "orca-platform"


# --- resource policies on hand-made cases ---------------------------------------------------------------------


def registered(stack: str, type_: str, name: str, inputs: dict[str, Any], **options: bool) -> Registered:
    """A hand-made registration: only the type, name, inputs and the options a test is about."""
    return Registered(
        urn=f"urn:pulumi:{stack}::orca-platform::{type_}::{name}",
        type=type_,
        name=name,
        custom=True,
        parent="",
        provider="",
        protect=options.get("protect", False),
        retain_on_delete=options.get("retain_on_delete", False),
        delete_before_replace=False,
        ignore_changes=[],
        additional_secret_outputs=[],
        dependencies=[],
        inputs=inputs,
    )


def service(annotations: dict[str, str]) -> Registered:
    return registered(
        "prod",
        "kubernetes:core/v1:Service",
        "c1-orca",
        {
            "kind": "Service",
            "metadata": {"name": "orca", "namespace": "orca-c1", "annotations": annotations},
            "spec": {"type": "LoadBalancer"},
        },
    )


def test_public_service_is_refused_with_its_clinic() -> None:
    calls = validate("lb-internal", args_for(service({})))
    assert len(calls) == 1
    message, urn = calls[0]
    assert message.startswith("[clinic c1] Service orca-c1/orca is a public LoadBalancer")
    assert urn == "urn:pulumi:prod::orca-platform::kubernetes:core/v1:Service::c1-orca"
    assert validate("lb-internal", args_for(service({INTERNAL_LB: "true"}))) == []


def test_unknown_values_do_not_stop_or_trip_a_policy() -> None:
    """During a preview an output-derived value is a placeholder: the proxy would raise on access, the rule skips."""
    unknown = args_for(service({INTERNAL_LB: UNKNOWN_STRING}))
    assert validate("lb-internal", unknown) == []
    assert plain(unknown.props)["metadata"]["annotations"][INTERNAL_LB] == UNKNOWN_STRING


def test_unprotected_clinic_volume_is_refused() -> None:
    pvc = registered(
        "dev",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "c1-orca-state",
        {
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "orca-state",
                "namespace": "orca-c1",
                "labels": {"orca-platform.io/clinic": "c1", "orca-platform.io/data": "clinic"},
            },
        },
        retain_on_delete=True,
    )
    assert validate("clinic-volume-protected", args_for(pvc))
    pvc.protect = True
    assert not validate("clinic-volume-protected", args_for(pvc))


def test_default_password_is_refused_at_preview(dev_run: Run) -> None:
    """pulumi_policy unwraps secrets before validate: a well-known default is visible there and is refused."""
    sec = next(r for r in dev_run.k8s("Secret") if r.inputs["metadata"]["name"] == "orca-credentials")
    props = reveal(sec.inputs)
    assert not validate("no-default-credentials", args_for(sec, props))
    props["stringData"]["db-password"] = "orca_password"
    calls = validate("no-default-credentials", args_for(sec, props))
    # Refused, and the message never repeats the value it found.
    assert calls and "orca_password" not in calls[0][0]


def test_policy_config_names_the_environment() -> None:
    aks = registered(
        "staging",
        "azure-native:containerservice:ManagedCluster",
        "aks",
        {"apiServerAccessProfile": {"authorizedIPRanges": ["198.51.100.0/28"]}},
    )
    args = args_for(aks)
    assert not validate("aks-private-api-prod", args)
    configured = ResourceValidationArgs(
        args.resource_type, args.props, args.urn, args.name, args.opts, None, config={"environment": "prod"}
    )
    assert validate("aks-private-api-prod", configured)


# --- the program's own resources pass at preview ---------------------------------------------------------------


def test_every_resource_policy_passes_on_the_sample_stacks(stack_run: Run) -> None:
    found = []
    for res in stack_run.resources:
        args = args_for(res)
        for policy in resource_policies().values():
            report = Reports()
            policy.validate(args, report)
            found += [(policy.name, m) for m, _ in report.calls]
    assert found == []


def test_every_stack_policy_passes_on_the_sample_stacks(stack_run: Run) -> None:
    args = stack_args(stack_run)
    for policy in stack_policies().values():
        report = Reports()
        policy.validate(args, report)
        assert report.calls == [], policy.name


def test_stack_policies_catch_a_second_public_ip_and_a_missing_default_deny(dev_run: Run) -> None:
    args = stack_args(dev_run)
    pip = next(r for r in args.resources if r.resource_type == "azure-native:network:PublicIPAddress")
    extra = PolicyResource(pip.resource_type, pip.props, pip.urn + "-2", pip.name + "-2", pip.opts, None, None, [], {})
    deny = [
        r
        for r in args.resources
        if r.resource_type.endswith(":NetworkPolicy") and r.name.startswith("test-aoba") and "default-deny" in r.name
    ]
    assert len(deny) == 1
    broken = StackValidationArgs([r for r in args.resources if r is not deny[0]] + [extra])
    report = Reports()
    stack_policies()["single-public-ip"].validate(broken, report)
    assert any("found 2" in m for m, _ in report.calls)
    report = Reports()
    stack_policies()["clinic-default-deny"].validate(broken, report)
    [(message, urn)] = report.calls
    assert message == "[clinic test-aoba] clinic namespace orca-test-aoba has no default-deny NetworkPolicy"
    # Reported against the namespace that lacks it, so the preview points at the right clinic.
    assert urn.endswith("$kubernetes:core/v1:Namespace::test-aoba-ns")
