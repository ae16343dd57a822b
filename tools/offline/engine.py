"""Run the real `__main__.py` under Pulumi mocks and record what it registers, with every resource option.

The mock monitor of the SDK keeps inputs only; the engine-facing options (protect, retainOnDelete, parent, provider,
ignoreChanges ...) arrive on the RegisterResource request, so a recording monitor keeps them too. The result feeds
`make synth`, the tests, the audit fixtures and the benchmark.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import runpy
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from orca_platform.conventions import LB_IPV4
from orca_platform.conventions import SECRET_SIG as SECRET_SIG  # noqa: PLC0414 - re-exported
from orca_platform.conventions import SIG_KEY as SIG_KEY  # noqa: PLC0414 - re-exported
from orca_platform.model.config_file import read_stack_file

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROJECT = "orca-platform"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
# The self-managed (diy) backend always names its organization "organization" (pkg/backend/diy/state.go, store.go).
ORGANIZATION = "organization"
STACK_REFERENCE = "pulumi:pulumi:StackReference"


@dataclass
class Registered:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    dependencies: list[str]
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    # A read (ReadResource: a StackReference, a `.get`), not a registration the engine creates or updates.
    external: bool = False

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and self.custom and not self.type.startswith("pulumi:providers:")

    def options(self) -> dict[str, Any]:
        return {
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "ignoreChanges": self.ignore_changes,
            "parent": self.parent,
            "provider": self.provider,
        }


@dataclass
class Run:
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def by_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def k8s(self, kind: str, namespace: str | None = None) -> list[Registered]:
        found = [r for r in self.resources if r.is_kubernetes and r.inputs.get("kind") == kind]
        if namespace is not None:
            found = [r for r in found if (r.inputs.get("metadata") or {}).get("namespace") == namespace]
        return found


@dataclass(frozen=True)
class StackOutputs:
    """A stack's outputs as the engine keeps them after an update: what the StackReference mock answers with."""

    values: dict[str, Any]
    secret_names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, run: Run) -> StackOutputs:
        """What `run` exported, through JSON as the engine stores it (tuples become lists, and so on)."""
        values = json.loads(json.dumps({k: reveal(v) for k, v in run.outputs.items()}))
        return cls(values=values, secret_names=frozenset(run.secret_outputs))

    def without(self, *names: str) -> StackOutputs:
        return StackOutputs({k: v for k, v in self.values.items() if k not in names}, self.secret_names - set(names))

    def answer(self, stack_name: str, expected: str | None = None) -> dict[str, Any]:
        """The engine's StackReference state: {name, outputs, secretOutputNames}, secret outputs marked as secrets
        (pkg/resource/deploy/builtins.go, readStackReference). Another stack than `expected` is unknown, as in
        pkg/backend/backend.go (GetStackOutputs: "unknown stack")."""
        if expected is not None and stack_name != expected:
            raise LookupError(f"unknown stack {stack_name!r}")
        outputs = {
            k: ({SIG_KEY: SECRET_SIG, "value": copy.deepcopy(v)} if k in self.secret_names else copy.deepcopy(v))
            for k, v in self.values.items()
        }
        return {"name": stack_name, "outputs": outputs, "secretOutputNames": sorted(self.secret_names)}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """Unwrap secret markers (for assertions on values, never for writing files)."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """Replace every secret with a marker, as anything written to disk must.

    A secret map or list keeps its shape (each leaf becomes the marker), so a redacted Secret's stringData is still
    a map of strings and the rendered manifest still validates against its schema.
    """
    if is_secret(value):
        return _redact_leaves(reveal(value.get("value")))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _redact_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_leaves(v) for v in value]
    return "[secret]"


def _kubeconfig() -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aks", "cluster": {"server": "https://aks.example.invalid:443"}}],
        "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "clusterUser"}}],
        "current-context": "aks",
        "users": [
            {
                "name": "clusterUser",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        "args": [
                            "get-token",
                            "--environment",
                            "AzurePublicCloud",
                            "--server-id",
                            "6dae42f8-4368-4678-94ff-3960e28e3630",
                            "--client-id",
                            "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                            "--tenant-id",
                            TENANT,
                            "--login",
                            "devicecode",
                        ],
                    }
                },
            }
        ],
    }
    return base64.b64encode(yaml.safe_dump(doc).encode()).decode()


@dataclass(frozen=True)
class World:
    """What Azure and the network answer the offline run. The defaults stand for a run from a machine that reaches
    the stack's API server (inside the VNet or on the VPN) with the cluster already deployed."""

    subscription: str = SUBSCRIPTION
    cluster_exists: bool = True
    api_reachable: bool = True
    # Deployed state that differs from the program's inputs, by Pulumi resource name: what Azure would report
    # for a resource changed outside Pulumi (or whose changes Pulumi ignores).
    state: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class OfflineMocks(mocks.Mocks):
    """Plausible provider answers: what Azure and Kubernetes would hand back, so outputs resolve."""

    def __init__(
        self, world: World | None = None, previous: StackOutputs | None = None, self_reference: str = ""
    ) -> None:
        self.world = world or World()
        # The engine, not the SDK, marks `additionalSecretOutputs` secret; the recording monitor passes them here,
        # per thread (registrations run on a thread pool), so the mocks can do the engine's part.
        self.secret_outputs = threading.local()
        # The stack's outputs after its last update; on a first update the stack exists but has none (the diy
        # backend returns an empty map for a checkpoint without a deployment: pkg/backend/diy/state.go).
        self.previous = previous or StackOutputs({})
        self.self_reference = self_reference

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid, state = self._answer(args)
        state.update(self.world.state.get(args.name, {}))
        for key in getattr(self.secret_outputs, "keys", ()):
            if key in state and not is_secret(state[key]):
                state[key] = {SIG_KEY: SECRET_SIG, "value": state[key]}
        return rid, state

    def _answer(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        typ = args.typ
        if typ == STACK_REFERENCE:
            name = str(args.inputs.get("name"))
            return args.resource_id or name, self.previous.answer(name, self.self_reference or None)
        if typ.startswith("azure-native:"):
            name = next(
                (
                    v
                    for k, v in args.inputs.items()
                    if k.endswith("Name") and k != "resourceGroupName" and isinstance(v, str)
                ),
                args.name,
            )
            group = args.inputs.get("resourceGroupName", "rg")
            rid = f"/subscriptions/{self.world.subscription}/resourceGroups/{group}/{typ}/{name}"
            state.setdefault("name", name)
            if typ == "azure-native:resources:ResourceGroup":
                name = args.inputs.get("resourceGroupName", args.name)
                state["name"] = name
                rid = f"/subscriptions/{self.world.subscription}/resourceGroups/{name}"
            if typ == "azure-native:network:PublicIPAddress":
                state["ipAddress"] = "192.0.2.10"
            if typ == "azure-native:managedidentity:UserAssignedIdentity":
                state["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
                state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, args.name))
            if typ == "azure-native:containerservice:ManagedCluster":
                # Azure answers the identity list with a map keyed by identity id.
                identity = dict(args.inputs.get("identity") or {})
                identity["userAssignedIdentities"] = {i: {} for i in identity.get("userAssignedIdentities") or []}
                state["identity"] = identity
                state["oidcIssuerProfile"] = {"enabled": True, "issuerUrl": f"https://oidc.example.invalid/{name}/"}
                kubelet = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/kubelet"))
                state["identityProfile"] = {"kubeletidentity": {"objectId": kubelet, "clientId": kubelet}}
            if typ == "azure-native:dnsresolver:InboundEndpoint":
                configs = list(args.inputs.get("ipConfigurations") or [])
                state["ipConfigurations"] = [{**c, "privateIpAddress": "10.255.0.4"} for c in configs]
            return rid, state
        if typ.startswith("random:"):
            if typ == "random:index/randomUuid:RandomUuid":
                state["result"] = str(uuid.uuid5(uuid.NAMESPACE_OID, args.name))
            elif typ == "random:index/randomString:RandomString":
                length = int(args.inputs.get("length", 16))
                state["result"] = uuid.uuid5(uuid.NAMESPACE_OID, args.name).hex[:length]
            else:
                state["result"] = "mock-" + uuid.uuid5(uuid.NAMESPACE_OID, args.name).hex[:24]
            return args.name + "-id", state
        if typ == "kubernetes:core/v1:Service":
            annotations = (args.inputs.get("metadata") or {}).get("annotations") or {}
            ip = annotations.get(LB_IPV4)
            # Without a pinned address Azure picks one at deploy time: offline it stays unknown.
            state["status"] = {"loadBalancer": {"ingress": [{"ip": ip}] if ip else []}}
        meta = args.inputs.get("metadata") or {}
        rid = f"{meta.get('namespace', '')}/{meta.get('name', args.name)}".lstrip("/")
        return rid, state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        function = args.token
        if function == "azure-native:authorization:getClientConfig":
            sub = self.world.subscription
            return {"clientId": TENANT, "objectId": TENANT, "subscriptionId": sub, "tenantId": TENANT}, []
        if function == "azure-native:containerservice:getManagedCluster":
            name = args.args.get("resourceName", "aks")
            if not self.world.cluster_exists:
                # A failed invoke, as the engine reports Azure's 404 (the SDK raises "invoke of ... failed: ...").
                return {}, [("resourceName", f"(ResourceNotFound) managed cluster {name} was not found")]
            return {
                "fqdn": f"{name}-dns.hcp.japaneast.azmk8s.io",
                "privateFQDN": f"{name}-dns.00000000.privatelink.japaneast.azmk8s.io",
            }, []
        if function == "azure-native:containerservice:listManagedClusterUserCredentials":
            return {"kubeconfigs": [{"name": "clusterUser", "value": _kubeconfig()}]}, []
        return {}, []


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: mocks.Mocks) -> None:
        super().__init__(mocks_)
        self.registered: list[Registered] = []

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        if isinstance(self.mocks, OfflineMocks):
            self.mocks.secret_outputs.keys = list(request.additionalSecretOutputs)
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        urn = self.make_urn(request.parent, request.type, request.name)
        reg = self.resources.get(urn)
        self.registered.append(
            Registered(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=True,
                parent=request.parent,
                provider=request.provider,
                protect=False,
                retain_on_delete=False,
                delete_before_replace=False,
                ignore_changes=[],
                additional_secret_outputs=list(request.additionalSecretOutputs),
                dependencies=list(request.dependencies),
                inputs=rpc.deserialize_properties(request.properties),
                outputs=dict(reg.state) if reg else {},
                id=request.id,
                external=True,
            )
        )
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        if isinstance(self.mocks, OfflineMocks):
            self.mocks.secret_outputs.keys = list(request.additionalSecretOutputs)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        urn = self.make_urn(request.parent, request.type, request.name)
        reg = self.resources.get(urn)
        self.registered.append(
            Registered(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent,
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                dependencies=list(request.dependencies),
                inputs=inputs,
                outputs=dict(reg.state) if reg else {},
                id=reg.id if reg else "",
            )
        )
        return response


def stack_config(
    stack: str, project_dir: Path = PROJECT_DIR, overrides: dict[str, Any] | None = None
) -> dict[str, str]:
    """The config map the CLI would hand the program: Pulumi.<stack>.yaml, structured values as JSON text.

    Read strictly (orca_platform.model.config_file): a duplicate key anywhere in the file, a key without a namespace or
    an
    encrypted value raise InputError naming the file.
    """
    out = read_stack_file(project_dir / f"Pulumi.{stack}.yaml")
    for key, value in (overrides or {}).items():
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


@contextmanager
def _network(world: World) -> Iterator[None]:
    """Answer the program's API server reachability check for the world, as the mocks answer its invokes."""
    program_config = importlib.import_module("config")  # the project's config.py (PROJECT_DIR is on sys.path)

    def probe(host: str, port: int) -> str | None:
        return None if world.api_reachable else f"{host} does not resolve on this machine"

    previous = program_config.set_api_probe(probe)
    try:
        yield
    finally:
        program_config.set_api_probe(previous)


def run_program(
    stack: str = "dev",
    config: dict[str, str] | None = None,
    main: Path = PROJECT_DIR / "__main__.py",
    world: World | None = None,
    previous_outputs: StackOutputs | Mapping[str, Any] | None = None,
) -> Run:
    """Run the program once, synchronously, and return what it registered. Raises what the program raises.

    `previous_outputs` is the stack's state after its last update, which the program reads through a StackReference
    to itself; None is a first update (the stack exists, with no outputs).
    """
    world = world or World()
    if previous_outputs is not None and not isinstance(previous_outputs, StackOutputs):
        previous_outputs = StackOutputs(dict(previous_outputs))
    answers = OfflineMocks(world, previous_outputs, self_reference=f"{ORGANIZATION}/{PROJECT}/{stack}")
    monitor = RecordingMonitor(answers)
    pulumi.runtime.set_all_config(config if config is not None else stack_config(stack))
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    # A fresh root stack per run: set_mocks keeps an existing one, whose outputs would mix in the previous run's.
    settings.ROOT.set(None)
    mocks.set_mocks(answers, project=PROJECT, stack=stack, preview=False, monitor=monitor, organization=ORGANIZATION)
    root = settings.get_root_resource()
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    cwd = Path.cwd()
    os.chdir(PROJECT_DIR)
    try:

        def program() -> None:
            runpy.run_path(str(main), run_name="__main__")

        with _network(world):
            _sync_await(run_pulumi_func(program))
    finally:
        os.chdir(cwd)
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    for name, value in (getattr(root, "outputs", None) or {}).items():
        out = pulumi.Output.from_input(value)
        outputs[name] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            secret_outputs.add(name)
    return Run(stack=stack, resources=monitor.registered, outputs=outputs, secret_outputs=secret_outputs)
