"""Stack configuration: the only module that reads `pulumi.Config`. It hands plain data to the pure core."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from pulumi_azure_native import containerservice

from orca_platform import bootstrap, naming
from orca_platform.catalogue import load_catalogue
from orca_platform.errors import InputError
from orca_platform.settings import CONFIG_KEYS, NAMESPACE, Settings, parse_settings
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
