"""Stack configuration: the only module that reads Pulumi's config. It hands plain data to the pure core."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi_azure_native import containerservice

from orca_platform import bootstrap, naming
from orca_platform.errors import InputError
from orca_platform.inputs import check_stack_inputs
from orca_platform.settings import Settings
from orca_platform.stack_plan import StackPlan

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
