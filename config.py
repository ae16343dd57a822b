"""Stack configuration: the only module that reads Pulumi's config. It hands plain data to the pure core."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime.sync_await import _sync_await
from pulumi_azure_native import containerservice

from orca_platform.inputs import check_stack_inputs
from orca_platform.model.errors import InputError
from orca_platform.model.settings import Settings
from orca_platform.plan import naming
from orca_platform.plan.stack_plan import StackPlan
from orca_platform.safety import bootstrap
from orca_platform.safety.history import HISTORY_OUTPUT, LEGACY_OUTPUT, parse_history, review

PROJECT_DIR = Path(__file__).resolve().parent


def engine_config() -> tuple[dict[str, str], set[str]]:
    """Every config key the engine passed, whatever its namespace, and which of them are secrets.

    pulumi.Config can only look keys up, so an unknown key would go unseen. The whole map is there: the language
    host puts it in PULUMI_CONFIG as JSON (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
    constructConfig) and the exec script loads it with set_all_config into pulumi.runtime.config.CONFIG
    (sdk/python/cmd/pulumi-language-python-exec); mocks and automation inline programs call set_all_config
    directly. get_config reads CONFIG first, then the environment: so do we.
    """
    merged: dict[str, str] = {str(k): str(v) for k, v in runtime_config.get_config_env().items()}
    merged.update({str(k): str(v) for k, v in runtime_config.CONFIG.get().items()})
    secret = {k for k in merged if runtime_config.is_config_secret(k)}
    secret |= set(runtime_config.get_config_secret_keys_env())
    return merged, secret


def load_stack_plan() -> StackPlan:
    """Validate config and tenants and plan the stack, or stop with one clear message before any resource exists."""
    config, secret = engine_config()
    try:
        return check_stack_inputs(config, f"Pulumi.{pulumi.get_stack()}.yaml", PROJECT_DIR, secret_keys=secret)
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


def load_deployment(plan: StackPlan) -> Deployment:
    """Compare the plan with what the stack last deployed; stop before any other resource on a refused change. The
    StackReference is the one resource registered before that comparison."""
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
    # A live claim the stack already had never seeds: if it comes back empty, its server stays down (orca_pod.py),
    # unless this update acknowledges seeding it (a first rollout that failed before its seed ran).
    had = result.expect_data
    plan = dataclasses.replace(
        plan, clinics=tuple(dataclasses.replace(c, expect_data=c.id in had) for c in plan.clinics)
    )
    return Deployment(plan=plan, history=result.history.to_output())


# host, port -> None when a TCP connection succeeds, else why it did not.
ApiProbe = Callable[[str, int], "str | None"]


def tcp_probe(host: str, port: int) -> str | None:
    """Resolve and connect within 5 s: what the Kubernetes provider needs before it can create anything."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"{host} does not resolve on this machine: {exc.strerror}"
    failure = f"{host} has no address"
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(5)
                sock.connect(address)
                return None
        except OSError as exc:
            failure = f"no TCP connection to {address[0]}:{port}: {exc}"
    return failure


_api_probe: ApiProbe = tcp_probe


def set_api_probe(probe: ApiProbe) -> ApiProbe:
    """Swap the network check (the offline run answers for the network as its mocks answer for Azure)."""
    global _api_probe
    previous, _api_probe = _api_probe, probe
    return previous


def _deployed_api_server(settings: Settings) -> bootstrap.ApiServer | None:
    """The existing cluster's API server and whether it answers here; None before the cluster exists."""
    try:
        found = containerservice.get_managed_cluster(
            resource_group_name=naming.azure_name(settings, "rg"), resource_name=naming.azure_name(settings, "aks")
        )
    except Exception as exc:
        if "NotFound" in str(exc):  # ResourceNotFound / ResourceGroupNotFound: a first deployment
            return None
        raise
    host = (found.private_fqdn if settings.cluster.private_api_server else found.fqdn) or found.fqdn
    if not host:
        return None
    return bootstrap.ApiServer(host=host, unreachable=_api_probe(host, 443))


def kubernetes_layer(settings: Settings) -> bool:
    """Whether this run deploys the Kubernetes layer; stops, naming the setting, when the API server is out of reach.

    Runs before any resource is registered. The pulumi-kubernetes provider would otherwise mark the cluster
    unreachable and fail (or, where the name resolves to an address it cannot route, hang on) every object
    (provider.go, `clusterUnreachable`).
    """
    config_source = f"Pulumi.{pulumi.get_stack()}.yaml"
    decision = bootstrap.kubernetes_layer(settings, _deployed_api_server(settings), config_source)
    if decision.fatal:
        raise pulumi.RunError(decision.message)
    if decision.message:
        pulumi.log.warn(decision.message)
    return decision.deploy


def source_commit() -> str:
    """The commit of the program being deployed, for the audit trail: set by CI (GITHUB_SHA) or the operator."""
    return os.environ.get("ORCA_SOURCE_COMMIT") or os.environ.get("GITHUB_SHA") or ""
