"""Stack configuration: the only module that reads `pulumi.Config`. It hands plain data to the pure core."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from orca_platform.catalogue import load_catalogue
from orca_platform.errors import InputError
from orca_platform.history import HISTORY_OUTPUT, LEGACY_OUTPUT, parse_history, review
from orca_platform.settings import CONFIG_KEYS, NAMESPACE, parse_settings
from orca_platform.stack_plan import StackPlan, plan_stack
from orca_platform.tenants import load_tenants

PROJECT_DIR = Path(__file__).resolve().parent


def read_raw_config() -> dict[str, Any]:
    """Every `orca-platform:*` key, structured values decoded (Pulumi hands objects over as JSON text)."""
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = cfg.get(key)
        if value is None:
            continue
        if value[:1] in ("{", "["):
            value = json.loads(value)
        raw[key] = value
    return raw


def load_stack_plan() -> StackPlan:
    """Validate config and tenants and plan the stack, or stop with one clear message before any resource exists."""
    config_source = f"Pulumi.{pulumi.get_stack()}.yaml"
    try:
        settings = parse_settings(read_raw_config(), config_source)
        path = Path(settings.tenants_file)
        if not path.is_absolute():
            path = PROJECT_DIR / path
        tenants = load_tenants(path, settings.tenants_file)
        return plan_stack(settings, tenants, load_catalogue(), settings.tenants_file, config_source)
    except InputError as exc:
        # RunError prints the message alone, without a traceback, and fails the update before anything changes.
        raise pulumi.RunError(str(exc)) from None


@dataclass(frozen=True)
class Deployment:
    plan: StackPlan
    # The stack output `orcaHistory` of this update: what the next one is compared with.
    history: dict[str, Any]


def self_reference() -> str:
    # The self-managed backends name the organization "organization" (pulumi/pulumi pkg/backend/diy/state.go and
    # store.go, ParseReference); Pulumi Cloud uses the real one. Both come from the engine through get_organization.
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read_previous_outputs() -> dict[str, Any]:
    """The history outputs the stack's last update left, read through a StackReference to the stack itself.

    The engine reads a StackReference through its builtin provider (pkg/resource/deploy/builtins.go, Read ->
    readStackReference -> GetStackOutputs), in previews too ("Read steps run during previews", deploy/step.go), so
    the outputs are known and a preview refuses what the update would. A stack that exists but was never updated
    has no outputs (diy state.go returns an empty map): a first update. During an update the root stack keeps its
    old outputs until the program ends (deploy/step.go SameStep keeps outputs; step_executor.go replaces them at the
    end, and on a failed update keeps the old ones but for outputs that got new values).

    The program waits here, before any other resource is registered, the way the SDK waits for a synchronous invoke
    (pulumi/runtime/invoke.py uses the same _sync_await).
    """
    ref = pulumi.StackReference("orca-history", stack_name=self_reference())
    if not _sync_await(ref.outputs.is_known()):
        raise pulumi.RunError(f"the outputs of stack {self_reference()} are unknown: cannot compare with them")
    found: dict[str, Any] = {}
    for name in (HISTORY_OUTPUT, LEGACY_OUTPUT):
        details = _sync_await(ref.get_output_details(name))
        value = details.value if details.value is not None else details.secret_value
        if value is not None:
            found[name] = value
    return found


def load_deployment() -> Deployment:
    """Plan the stack, then compare it with what the stack last deployed; stop before any other resource on a
    refused change. The StackReference is the one resource registered before that comparison."""
    plan = load_stack_plan()
    config_source = f"Pulumi.{pulumi.get_stack()}.yaml"
    settings = plan.settings
    try:
        previous, warnings = parse_history(read_previous_outputs(), f"the last outputs of stack {self_reference()}")
        result = review(previous, plan, settings.acknowledgements, settings.tenants_file, config_source)
        if result.problems:
            raise InputError(result.problems)
    except InputError as exc:
        raise pulumi.RunError(str(exc)) from None
    for warning in [*warnings, *result.warnings]:
        pulumi.log.warn(warning)
    return Deployment(plan=plan, history=result.history.to_output())
