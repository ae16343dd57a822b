"""The platform's compliance rules, written once as plain functions over (type, properties, options).

The same functions judge a planned change at `pulumi preview` (the policy pack in policy/ adapts pulumi_policy's
arguments to `ResourceView`) and a deployed stack in an audit (tools/audit.py adapts a `pulumi stack export`).
Properties are the engine's camelCase shape, as a policy's `args.props` and an export's `inputs` both carry them.

Two things a preview cannot see, so the rules that need them run in the audit only (`Rule.at_preview=False`):
- secret markers: pulumi_policy hands `validate` plain values (it unwraps secrets before the call);
- `retainOnDelete`: the analyzer protocol carries no such option.

Pure: stdlib only, no Pulumi import, so the policy pack's own virtualenv can load it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from .conventions import CLINIC_DATA as CLINIC_DATA  # noqa: PLC0414 - re-exported
from .conventions import CLINIC_LABEL as CLINIC_LABEL  # noqa: PLC0414 - re-exported
from .conventions import CLINIC_NAME_ANNOTATION as CLINIC_NAME_ANNOTATION  # noqa: PLC0414 - re-exported
from .conventions import DATA_LABEL as DATA_LABEL  # noqa: PLC0414 - re-exported
from .conventions import INTERNAL_LB as INTERNAL_LB  # noqa: PLC0414 - re-exported
from .conventions import LB_DENY_OTHERS as LB_DENY_OTHERS  # noqa: PLC0414 - re-exported
from .conventions import LB_IPV4 as LB_IPV4  # noqa: PLC0414 - re-exported
from .conventions import NGINX_POLICIES as NGINX_POLICIES  # noqa: PLC0414 - re-exported
from .conventions import POD_SPEC_PATHS as POD_SPEC_PATHS  # noqa: PLC0414 - re-exported
from .conventions import POSTGRES_PORT as POSTGRES_PORT  # noqa: PLC0414 - re-exported
from .conventions import SECRET_SIG as SECRET_SIG  # noqa: PLC0414 - re-exported
from .conventions import SIG_KEY as SIG_KEY  # noqa: PLC0414 - re-exported
from .conventions import UNKNOWN_VALUES as UNKNOWN_VALUES  # noqa: PLC0414 - re-exported
from .prod_floors import (
    ACR_PULL_ROLE,
    DEFAULT_RECORDS_RETENTION_YEARS,
    RECORDS_RETENTION_TAG,
    acr_login_server,
    backup_breaches,
    digest_breach,
    image_parts,
    registry_breach,
)

# --- markers the engine puts in property values (the markers themselves: orca_platform.conventions) -----------


class _Encrypted:
    """Stands for a secret whose ciphertext the audit cannot (and must not) read."""

    def __repr__(self) -> str:
        return "<encrypted>"


ENCRYPTED = _Encrypted()

# --- platform conventions (the shared names: orca_platform.conventions) ---------------------------------------

# Namespaces of the platform itself: `orca-<x>` but no clinic.
PLATFORM_NAMESPACES = frozenset({"orca-ingress", "orca-system", "orca-backup", "orca-monitoring"})
DEFAULT_INGRESS_CLASSES = frozenset({"orca-internal"})
DEFAULT_REGISTRY_SUFFIXES = (".azurecr.io",)
# Pod Security 'baseline' allows adding only these capabilities; anything else is a privilege.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
ANY_SOURCE = frozenset({"*", "internet", "any", "0.0.0.0/0", "::/0"})
# Defaults shipped in public ORCA and PostgreSQL images (shared/orca-facts.md): never acceptable as a credential.
DEFAULT_PASSWORDS = frozenset({"ormaster", "orca_password", "orca", "postgres", "password", "changeme", "admin"})


class Enforcement(StrEnum):
    MANDATORY = "mandatory"  # blocks `pulumi preview`/`up`; fails the audit
    ADVISORY = "advisory"  # reported, never blocks


Scope = Literal["resource", "stack"]


# --- reading values -------------------------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SIG_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    """The value inside a secret marker: the plain value where one is present, else ENCRYPTED."""
    while is_secret(value):
        if "value" in value:
            value = value["value"]
        elif "plaintext" in value:
            text = value["plaintext"]
            try:
                value = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                value = text
        else:
            return ENCRYPTED
    return value


def is_unknown(value: Any) -> bool:
    """True for what cannot be judged: a preview placeholder or an encrypted secret."""
    return value is ENCRYPTED or (isinstance(value, str) and value in UNKNOWN_VALUES)


def dig(obj: Any, *path: str | int) -> Any:
    """Follow keys and indexes through secret markers; None where the path does not exist."""
    cur = unwrap(obj)
    for step in path:
        if isinstance(step, int):
            if not isinstance(cur, list) or not -len(cur) <= step < len(cur):
                return None
            cur = unwrap(cur[step])
        else:
            if not isinstance(cur, Mapping):
                return None
            cur = unwrap(cur.get(step))
    return cur


def as_map(value: Any) -> Mapping[str, Any]:
    value = unwrap(value)
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    value = unwrap(value)
    return list(value) if isinstance(value, list | tuple) else []


def as_text(value: Any) -> str:
    value = unwrap(value)
    return value if isinstance(value, str) and not is_unknown(value) else ""


def truthy(value: Any) -> bool | None:
    """True/False for a known boolean (engines and YAML sometimes hand over "true"), None when unknown or absent."""
    value = unwrap(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def number(value: Any) -> float | None:
    value = unwrap(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --- the view every rule reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceView:
    """One resource as the rules see it, whatever it was read from.

    `retain_on_delete` is None where the source cannot tell (a preview); `secrets_marked` is False where secret
    markers were stripped before we got the properties (a preview), so "is it wrapped?" cannot be asked.
    """

    type: str
    urn: str = ""
    name: str = ""
    props: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool | None = None
    parent: str = ""
    id: str = ""
    dependencies: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()
    secrets_marked: bool = True

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:")

    @property
    def kind(self) -> str:
        """Kubernetes kind from the type token (kubernetes:apps/v1:Deployment -> Deployment); '' otherwise."""
        return self.type.rsplit(":", 1)[-1] if self.is_kubernetes else ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        return as_map(self.props.get("metadata"))

    @property
    def labels(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("annotations"))

    @property
    def k8s_name(self) -> str:
        return as_text(self.metadata.get("name")) or self.name

    @property
    def namespace(self) -> str:
        if self.kind == "Namespace":
            return self.k8s_name
        return as_text(self.metadata.get("namespace"))

    @property
    def display(self) -> str:
        """How a person names it in a report: kind and namespace/name, or type and name."""
        if self.is_kubernetes:
            ns = self.namespace if self.kind != "Namespace" else ""
            return f"{self.kind} {ns + '/' if ns else ''}{self.k8s_name}"
        short = self.type.rsplit(":", 1)[-1] if ":" in self.type else self.type
        return f"{short} {self.name}"

    @property
    def stack(self) -> str:
        """The stack name from the URN (urn:pulumi:<stack>::<project>::...)."""
        m = re.match(r"urn:pulumi:([^:]+)::", self.urn)
        return m.group(1) if m else ""

    def is_clinic_data(self) -> bool:
        return as_text(self.labels.get(DATA_LABEL)) == CLINIC_DATA


@dataclass(frozen=True)
class RuleContext:
    """What a rule may need beyond one resource. `for_stack` fills it from all resources of a stack."""

    environment: str | None = None
    ingress_classes: frozenset[str] = DEFAULT_INGRESS_CLASSES
    registry_suffixes: tuple[str, ...] = DEFAULT_REGISTRY_SUFFIXES
    # namespace -> clinic id, known when every resource is at hand; empty means "derive from orca-<id>".
    clinic_namespaces: Mapping[str, str] = field(default_factory=dict)
    # Login servers images may come from (policy config / audit option); empty: those the stack grants AcrPull on.
    allowed_registries: tuple[str, ...] = ()
    # Years the records must be kept; None: what the stack declares on its backup account, else five.
    records_retention_years: int | None = None

    def for_stack(self, views: Sequence[ResourceView]) -> RuleContext:
        classes = set(self.ingress_classes)
        for v in views:
            classes |= internal_controller_classes(v)
        return replace(self, clinic_namespaces=clinic_namespaces(views), ingress_classes=frozenset(classes))

    def registries(self, views: Sequence[ResourceView]) -> tuple[str, ...]:
        """The registries images may come from: as configured, else every registry the stack grants AcrPull on."""
        if self.allowed_registries:
            return self.allowed_registries
        found = []
        for v in views:
            if v.type == "azure-native:authorization:RoleAssignment" and as_text(
                v.props.get("roleDefinitionId")
            ).endswith(ACR_PULL_ROLE):
                server = acr_login_server(as_text(v.props.get("scope")))
                if server:
                    found.append(server)
        return tuple(sorted(set(found)))

    def retention_years(self, views: Sequence[ResourceView]) -> int:
        """The records' retention to hold the backups to: as configured, else as the stack declares, else five."""
        if self.records_retention_years is not None:
            return self.records_retention_years
        declared = [
            number(as_map(v.props.get("tags")).get(RECORDS_RETENTION_TAG))
            for v in views
            if v.type == "azure-native:storage:StorageAccount"
        ]
        known = [int(d) for d in declared if d is not None]
        return max(known) if known else DEFAULT_RECORDS_RETENTION_YEARS


def environment_of(view: ResourceView, ctx: RuleContext) -> str:
    """The stack's environment: stated in the context, else the resource's `environment` tag, else the stack name."""
    if ctx.environment:
        return ctx.environment.lower()
    tag = as_text(as_map(view.props.get("tags")).get("environment"))
    return (tag or view.stack).lower()


def is_prod(env: str) -> bool:
    return env in ("prod", "production", "prd") or env.startswith("prod")


_CLINIC_NAMESPACE = re.compile(r"orca-([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)")


def clinic_namespaces(views: Iterable[ResourceView]) -> dict[str, str]:
    """namespace -> clinic id for every namespace the stack marks as a clinic's (by the clinic label).

    Exports of program versions that labelled nothing fall back to the Namespaces named orca-<id>.
    """
    views = list(views)
    found: dict[str, str] = {}
    for v in views:
        clinic = as_text(v.labels.get(CLINIC_LABEL))
        if clinic and v.is_kubernetes and v.namespace:
            found.setdefault(v.namespace, clinic)
    if found:
        return found
    for v in views:
        m = _CLINIC_NAMESPACE.fullmatch(v.k8s_name) if v.kind == "Namespace" else None
        if m and v.k8s_name not in PLATFORM_NAMESPACES:
            found[v.k8s_name] = m.group(1)
    return found


def clinic_of(view: ResourceView, ctx: RuleContext | None = None) -> str | None:
    """The clinic a resource belongs to: its clinic label, else its namespace (orca-<id>), else none."""
    label = as_text(view.labels.get(CLINIC_LABEL))
    if label:
        return label
    if not view.is_kubernetes:
        return None
    ns = view.namespace
    known = ctx.clinic_namespaces if ctx else {}
    if known:
        return known.get(ns)
    m = _CLINIC_NAMESPACE.fullmatch(ns)
    return m.group(1) if m and ns not in PLATFORM_NAMESPACES else None


# --- findings and rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """What a check reports: a message, and for stack checks the resource and clinic it is about."""

    message: str
    view: ResourceView | None = None
    clinic: str | None = None


@dataclass(frozen=True)
class Violation:
    rule: str
    enforcement: Enforcement
    message: str
    urn: str = ""
    resource: str = ""
    resource_type: str = ""
    clinic: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "enforcement": self.enforcement.value,
            "clinic": self.clinic,
            "resource": self.resource,
            "type": self.resource_type,
            "urn": self.urn,
            "message": self.message,
        }


ResourceCheck = Callable[[ResourceView, RuleContext], Iterable[Finding | str]]
StackCheck = Callable[[Sequence[ResourceView], RuleContext], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    why: str
    enforcement: Enforcement
    scope: Scope
    check: Callable[..., Iterable[Finding | str]]
    at_preview: bool = True

    def run_resource(self, view: ResourceView, ctx: RuleContext) -> list[Violation]:
        return [self._violation(f, view, ctx) for f in self.check(view, ctx)]

    def run_stack(self, views: Sequence[ResourceView], ctx: RuleContext) -> list[Violation]:
        return [self._violation(f, None, ctx) for f in self.check(views, ctx)]

    def _violation(self, found: Finding | str, default: ResourceView | None, ctx: RuleContext) -> Violation:
        if isinstance(found, str):
            found = Finding(found)
        view = found.view or default
        clinic = found.clinic or (clinic_of(view, ctx) if view else None)
        return Violation(
            rule=self.id,
            enforcement=self.enforcement,
            message=found.message,
            urn=view.urn if view else "",
            resource=view.display if view else "",
            resource_type=view.type if view else "",
            clinic=clinic,
        )


RULES: list[Rule] = []


def _rule(
    rule_id: str, title: str, why: str, enforcement: Enforcement, scope: Scope = "resource", at_preview: bool = True
) -> Callable[[Callable[..., Iterable[Finding | str]]], Callable[..., Iterable[Finding | str]]]:
    def register(fn: Callable[..., Iterable[Finding | str]]) -> Callable[..., Iterable[Finding | str]]:
        RULES.append(Rule(rule_id, title, why, enforcement, scope, fn, at_preview))
        return fn

    return register


M = Enforcement.MANDATORY
A = Enforcement.ADVISORY


def rules_by_id() -> dict[str, Rule]:
    return {r.id: r for r in RULES}


def evaluate(
    views: Sequence[ResourceView], ctx: RuleContext | None = None, *, preview: bool = False
) -> list[Violation]:
    """Every rule over every resource, then the stack rules over them all. `preview` skips audit-only rules."""
    if not views:
        return []
    full = (ctx or RuleContext()).for_stack(views)
    found: list[Violation] = []
    for rule in RULES:
        if preview and not rule.at_preview:
            continue
        if rule.scope == "resource":
            for view in views:
                found.extend(rule.run_resource(view, full))
        else:
            found.extend(rule.run_stack(views, full))
    return found


# --- Kubernetes helpers ---------------------------------------------------------------------------------------

_POD_SPEC_PATHS = POD_SPEC_PATHS


def pod_spec(view: ResourceView) -> Mapping[str, Any] | None:
    path = _POD_SPEC_PATHS.get(view.kind)
    if path is None or not view.is_kubernetes:
        return None
    return as_map(dig(view.props, *path))


def containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for item in as_list(pod.get(key)):
            c = as_map(item)
            if c:
                yield c


def claims_mounted(pod: Mapping[str, Any]) -> list[str]:
    return [
        as_text(dig(v, "persistentVolumeClaim", "claimName"))
        for v in as_list(pod.get("volumes"))
        if as_map(dig(v, "persistentVolumeClaim"))
    ]


def internal_controller_classes(view: ResourceView) -> set[str]:
    """Ingress classes served by a Helm-installed controller whose Services are all internal load balancers."""
    if not view.type.startswith("kubernetes:helm.sh/"):
        return set()
    values = as_map(view.props.get("values"))
    if not values or any(True for _ in _public_lb_in_values(values, "")):
        return set()
    names: set[str] = set()
    for path in (("controller", "ingressClass", "name"), ("controller", "ingressClassResource", "name")):
        name = as_text(dig(values, *path))
        if name:
            names.add(name)
    cls = dig(values, "controller", "ingressClass")
    if isinstance(cls, str) and cls:
        names.add(cls)
    return names


def _public_lb_in_values(node: Any, path: str) -> Iterator[str]:
    """Paths in Helm values that describe a LoadBalancer Service without the internal annotation."""
    node = unwrap(node)
    if isinstance(node, Mapping):
        annotations = as_map(node.get("annotations"))
        if as_text(node.get("type")) == "LoadBalancer" and as_text(annotations.get(INTERNAL_LB)).lower() != "true":
            yield path or "."
        for k, v in node.items():
            yield from _public_lb_in_values(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _public_lb_in_values(v, f"{path}[{i}]")


# --- credential detection -------------------------------------------------------------------------------------

# Last word of a key that names a credential (ORCA_DB_PASS, ormaster-password, webhookToken...).
_CREDENTIAL_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "psk", "kubeconfig", "credential"}
)
# Endings of the joined key that name a credential (sharedKey, AccountKey, connectionString...).
_CREDENTIAL_SUFFIXES = (
    "sharedkey",
    "accountkey",
    "accesskey",
    "privatekey",
    "apikey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "primarykey",
    "secondarykey",
    "masterkey",
    "clientsecret",
    "connectionstring",
    "sastoken",
    "kubeconfig",
    "credentials",
    "password",
    "passwd",
    "pgpass",
)
# A last word that says the key only points at or describes a credential (secretName, secretKeyRef, passwordLength).
_REFERENCE_WORDS = frozenset(
    {
        "name",
        "names",
        "ref",
        "refs",
        "reference",
        "id",
        "ids",
        "type",
        "length",
        "version",
        "path",
        "file",
        "url",
        "uri",
        "enabled",
        "expiry",
        "expiration",
        "policy",
        "count",
        "selector",
        "class",
        "mode",
        "format",
        "hash",
        "seconds",
        "audience",
        "audiences",
    }
)
_VALUE_PATTERNS = (
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    # Connection strings: Key=value; pairs that carry a key or password (not shell variables like $X).
    re.compile(r"(?i)(?:^|;)\s*(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)\s*=\s*[^;$\s]"),
    # Credentials in a URL's user info: scheme://user:password@host
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@$]+:[^/\s@$]+@"),
    re.compile(r"[?&]sig=[A-Za-z0-9%/+=]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"(?m)^\s*(?:client-key-data|token|password):\s*[^\s$]"),
)


def words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def credential_key(key: str) -> bool:
    """Does this property or variable name say it holds a credential?"""
    ws = words(key)
    # existingSecret (a Helm convention) names a Secret object, as secretName does.
    if not ws or ws[-1] in _REFERENCE_WORDS or ws[0] == "existing":
        return False
    joined = "".join(ws)
    return ws[-1] in _CREDENTIAL_WORDS or joined.endswith(_CREDENTIAL_SUFFIXES)


def credential_value(value: str) -> bool:
    """Does this text look like a credential whatever its key (a private key, a connection string with a key...)?"""
    return any(p.search(value) for p in _VALUE_PATTERNS)


def _plain_credentials(node: Any, path: str) -> Iterator[str]:
    """Paths of secret-looking values that are not wrapped as Pulumi secrets."""
    if is_secret(node):
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if is_secret(v):
                continue
            if isinstance(v, str) and v and not is_unknown(v) and not v.startswith("$"):
                if credential_key(str(k)):
                    yield f"{sub} (its name says credential)"
                    continue
                if credential_value(v):
                    yield f"{sub} (its value looks like a credential)"
                    continue
            yield from _plain_credentials(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, str) and not is_unknown(v) and credential_value(v):
                yield f"{path}[{i}] (its value looks like a credential)"
            else:
                yield from _plain_credentials(v, f"{path}[{i}]")


def _default_credentials(node: Any, path: str) -> Iterator[str]:
    node = unwrap(node)
    if isinstance(node, Mapping):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            inner = unwrap(v)
            if isinstance(inner, str) and credential_key(str(k)) and inner.strip().lower() in DEFAULT_PASSWORDS:
                yield sub
            else:
                yield from _default_credentials(inner, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _default_credentials(v, f"{path}[{i}]")


def _decoded(value: Any) -> str | None:
    """A Kubernetes Secret's `data` value decoded from base64, when it is text."""
    text = as_text(value)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


# (registry, repository, tag-or-digest) of an image reference, as prod_floors reads it.
_image_tag = image_parts


# ================================================================================================================
# Resource rules
# ================================================================================================================


@_rule(
    "clinic-volume-protected",
    "Clinic data volumes are protected",
    "A clinic's PostgreSQL and ORCA state live on its PersistentVolumeClaim; `protect` makes Pulumi refuse to delete "
    "or replace it, so a removed tenant entry or a `pulumi destroy` cannot take patient records with it.",
    M,
)
def _volume_protected(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "PersistentVolumeClaim" and v.is_clinic_data() and not v.protect:
        yield f"clinic data volume {v.namespace}/{v.k8s_name} is not protected (Pulumi option protect=True)"


@_rule(
    "clinic-volume-retained",
    "Clinic data volumes are retained when Pulumi lets go of them",
    "`retainOnDelete` leaves the claim (and so its disk or share) in the cluster when it leaves the program, "
    "even after someone unprotects it: deletion of clinic data is a person's decision, never a side effect.",
    M,
    at_preview=False,
)
def _volume_retained(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "PersistentVolumeClaim" and v.is_clinic_data() and v.retain_on_delete is False:
        yield f"clinic data volume {v.namespace}/{v.k8s_name} is not retained on delete (retainOnDelete=True)"


@_rule(
    "clinic-namespace-protected",
    "Clinic namespaces are protected",
    "Deleting a namespace deletes every claim in it, whatever the claims' own options say.",
    M,
)
def _namespace_protected(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Namespace" and as_text(v.labels.get(CLINIC_LABEL)):
        if not v.protect:
            yield f"clinic namespace {v.k8s_name} is not protected: deleting it deletes the clinic's volumes"
        elif v.retain_on_delete is False:
            yield f"clinic namespace {v.k8s_name} is not retained on delete (retainOnDelete=True)"


@_rule(
    "clinic-storage-class-retain",
    "StorageClasses for clinic data retain their volumes",
    "With reclaimPolicy Delete (the default, and that of AKS's built-in classes) the disk or share is destroyed "
    "as soon as its claim goes; Retain keeps it until a person deletes it.",
    M,
)
def _class_retain(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data():
        policy = as_text(v.props.get("reclaimPolicy")) or "Delete"
        if policy != "Retain" and not is_unknown(v.props.get("reclaimPolicy")):
            yield f"StorageClass {v.k8s_name} for clinic data has reclaimPolicy {policy}, not Retain"


@_rule(
    "clinic-storage-class-settings",
    "StorageClasses for clinic data can grow and bind where the pod runs",
    "allowVolumeExpansion lets a full clinic volume grow without a restore; WaitForFirstConsumer provisions it "
    "in the zone the pod is scheduled to.",
    A,
)
def _class_settings(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data():
        if truthy(v.props.get("allowVolumeExpansion")) is not True:
            yield f"StorageClass {v.k8s_name} does not allow volume expansion"
        mode = as_text(v.props.get("volumeBindingMode")) or "Immediate"
        if mode != "WaitForFirstConsumer":
            yield f"StorageClass {v.k8s_name} binds {mode}, not WaitForFirstConsumer"


def _is_smb(props: Mapping[str, Any]) -> bool:
    provisioner = as_text(props.get("provisioner"))
    if provisioner == "kubernetes.io/azure-file":
        return True
    protocol = as_text(as_map(props.get("parameters")).get("protocol")).lower()
    return provisioner == "file.csi.azure.com" and protocol != "nfs"


@_rule(
    "clinic-storage-not-smb",
    "No SMB storage for clinic data",
    "PostgreSQL needs hard links (pg_wal) and POSIX ownership, which Azure Files over SMB cannot give: a cluster "
    "on SMB fails to start or corrupts itself. Azure Disk or Azure Files NFS 4.1 only.",
    M,
)
def _class_not_smb(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "StorageClass" and v.is_clinic_data() and _is_smb(v.props):
        yield f"StorageClass {v.k8s_name} for clinic data is Azure Files over SMB"


@_rule(
    "single-writer",
    "A Deployment that mounts a clinic volume uses Recreate and one replica",
    "Two PostgreSQL servers on one data directory corrupt it. One replica (zero while suspended) and Recreate, "
    "so the old pod has stopped before the new one mounts the volume.",
    M,
)
def _single_writer(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Deployment" or clinic_of(v, ctx) is None:
        return
    pod = pod_spec(v) or {}
    claims = [c for c in claims_mounted(pod) if c]
    if not claims:
        return
    strategy = dig(v.props, "spec", "strategy", "type")
    if not is_unknown(strategy) and (as_text(strategy) or "RollingUpdate") != "Recreate":
        yield (
            f"Deployment {v.namespace}/{v.k8s_name} mounts {', '.join(claims)} with strategy "
            f"{as_text(strategy) or 'RollingUpdate (default)'}, not Recreate"
        )
    replicas = dig(v.props, "spec", "replicas")
    count = 1.0 if replicas is None else number(replicas)
    if count is not None and count > 1:
        yield f"Deployment {v.namespace}/{v.k8s_name} mounts {', '.join(claims)} with {int(count)} replicas"


@_rule(
    "clinic-claim-single-writer",
    "Every clinic volume claim is ReadWriteOncePod",
    "Recreate and one replica keep the Deployment to one pod, but only ReadWriteOncePod makes the API server and "
    "the kubelet refuse a second pod on the volume (a Job, a debug pod, a stuck old pod): one PostgreSQL per "
    "data directory, whatever else runs.",
    M,
)
def _claim_single_writer(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "PersistentVolumeClaim" or not v.is_clinic_data():
        return
    modes = dig(v.props, "spec", "accessModes")
    if is_unknown(modes):
        return
    found = [as_text(m) for m in as_list(modes)]
    if found != ["ReadWriteOncePod"]:
        yield (
            f"clinic volume {v.namespace}/{v.k8s_name} has access modes {found or 'none'}, not [ReadWriteOncePod]: "
            "a second pod could mount it"
        )


# Built-in data-plane roles of Azure Blob Storage: Contributor, Owner, Reader.
BLOB_DATA_ROLES = frozenset(
    {
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    }
)
_PATH_PREFIX = re.compile(r"StringStartsWith\s+'([^'/]*)/'")


def blob_role(view: ResourceView) -> bool | None:
    """Whether a role assignment grants a blob data role; None while the role is unknown (a preview)."""
    role = view.props.get("roleDefinitionId")
    if is_unknown(role):
        return None
    return as_text(role).rsplit("/", 1)[-1].lower() in BLOB_DATA_ROLES


@_rule(
    "backup-access-per-clinic",
    "Blob data roles are confined to one clinic's prefix",
    "Each clinic's backup identity may read and write only '<clinic>/' in the archive containers. A role "
    "assignment without that condition lets one clinic's job (or whoever holds its federated token) read every "
    "clinic's dumps: patient records across clinics.",
    M,
)
def _backup_confined(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:authorization:RoleAssignment" or not blob_role(v):
        return
    condition = v.props.get("condition")
    if is_unknown(condition):
        return
    prefixes = set(_PATH_PREFIX.findall(as_text(condition)))
    known = set(ctx.clinic_namespaces.values())
    if not prefixes:
        yield f"role assignment {v.name} grants blob data access with no condition on a clinic's prefix"
    elif len(prefixes) > 1:
        yield f"role assignment {v.name} reaches several prefixes: {', '.join(sorted(prefixes))}"
    elif known and not prefixes <= known:
        yield f"role assignment {v.name} is confined to '{next(iter(prefixes))}/', which is no clinic of this stack"


@_rule(
    "lb-internal",
    "Every LoadBalancer Service is internal",
    "Without the internal annotation AKS gives the Service a public IP: a clinic's ORCA would face the Internet.",
    M,
)
def _lb_internal(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
        flag = v.annotations.get(INTERNAL_LB)
        if not is_unknown(flag) and as_text(flag).lower() != "true":
            yield (
                f"Service {v.namespace}/{v.k8s_name} is a public LoadBalancer "
                f'(annotation {INTERNAL_LB}: "true" is missing)'
            )


@_rule(
    "no-nodeport",
    "No NodePort Services and no external IPs",
    "A NodePort opens the port on every node; externalIPs route outside traffic to the Service. Clinics reach ORCA "
    "through their internal load balancer or the internal ingress only.",
    M,
)
def _no_nodeport(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Service":
        return
    if as_text(dig(v.props, "spec", "type")) == "NodePort":
        yield f"Service {v.namespace}/{v.k8s_name} is of type NodePort"
    if as_list(dig(v.props, "spec", "externalIPs")):
        yield f"Service {v.namespace}/{v.k8s_name} has externalIPs"


@_rule(
    "helm-lb-internal",
    "Load balancers created by Helm charts are internal",
    "A chart's Service (the ingress controller's, in front of every clinic) is not a resource of its own in the "
    "stack: its values are where a public load balancer would be asked for.",
    M,
)
def _helm_lb(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type.startswith("kubernetes:helm.sh/"):
        for path in _public_lb_in_values(as_map(v.props.get("values")), "values"):
            yield f'Helm release {v.name}: {path} asks for a LoadBalancer without {INTERNAL_LB}: "true"'


@_rule(
    "ingress-internal-class",
    "Ingresses use only the internal ingress class",
    "The internal class is served by the controller behind the private load balancer; any other class (or the "
    "cluster default) may be served by a public one.",
    M,
)
def _ingress_class(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind != "Ingress":
        return
    cls = dig(v.props, "spec", "ingressClassName")
    if is_unknown(cls):
        return
    name = as_text(cls) or as_text(v.annotations.get("kubernetes.io/ingress.class"))
    if not name:
        yield f"Ingress {v.namespace}/{v.k8s_name} names no ingress class (the cluster default would serve it)"
    elif name not in ctx.ingress_classes:
        yield (
            f"Ingress {v.namespace}/{v.k8s_name} uses class {name}, not an internal one "
            f"({', '.join(sorted(ctx.ingress_classes))})"
        )


@_rule(
    "clinic-front-door-allow-listed",
    "Every clinic front door admits only the clinic's own networks",
    "Staff reach a clinic through its own internal load balancer or through the shared ingress controller, whose "
    "VPN routes carry every site's ranges: its load balancer needs source ranges enforced on the NSG (the deny-all "
    "annotation), and its Ingress an NGINX Policy allow-list, or another clinic's staff reach its records.",
    M,
)
def _front_door_allow_listed(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if clinic_of(v, ctx) is None:
        return
    if v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
        ranges = dig(v.props, "spec", "loadBalancerSourceRanges")
        if not is_unknown(ranges) and not as_list(ranges):
            yield f"Service {v.namespace}/{v.k8s_name} is a clinic load balancer without loadBalancerSourceRanges"
        flag = v.annotations.get(LB_DENY_OTHERS)
        if not is_unknown(flag) and as_text(flag).lower() != "true":
            yield (
                f'Service {v.namespace}/{v.k8s_name} lacks {LB_DENY_OTHERS}: "true" (without it the NSG admits the '
                "whole VNet whatever its source ranges)"
            )
    elif v.kind == "Ingress":
        named = v.annotations.get(NGINX_POLICIES)
        if not is_unknown(named) and not as_text(named).strip():
            yield f"Ingress {v.namespace}/{v.k8s_name} of a clinic names no allow-list Policy ({NGINX_POLICIES})"


def _port_numbers(port: Mapping[str, Any]) -> set[float]:
    return {n for n in (number(port.get("port")), number(port.get("targetPort"))) if n is not None}


@_rule(
    "postgres-not-exposed",
    "PostgreSQL is never exposed outside its pod",
    "ORCA's database listens inside the pod only; a Service or a NetworkPolicy admitting 5432 would let other "
    "workloads (or networks) reach patient data without ORCA's checks.",
    M,
)
def _postgres(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Service":
        for port in as_list(dig(v.props, "spec", "ports")):
            if POSTGRES_PORT in _port_numbers(as_map(port)):
                yield f"Service {v.namespace}/{v.k8s_name} exposes port {POSTGRES_PORT}"
    elif v.kind == "NetworkPolicy":
        for rule in as_list(dig(v.props, "spec", "ingress")):
            for port in as_list(dig(rule, "ports")):
                if number(dig(port, "port")) == POSTGRES_PORT:
                    yield f"NetworkPolicy {v.namespace}/{v.k8s_name} admits traffic to port {POSTGRES_PORT}"


@_rule(
    "no-host-access",
    "No pod shares the host or runs privileged",
    "hostNetwork/hostPID/hostIPC, hostPath volumes, host ports, privileged containers, privilege escalation and "
    "capabilities beyond Pod Security 'baseline' all let one clinic's pod reach the node and every other clinic.",
    M,
)
def _no_host(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is None:
        return
    what = f"{v.kind} {v.namespace}/{v.k8s_name}"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if truthy(pod.get(key)):
            yield f"{what} sets {key}"
    for vol in as_list(pod.get("volumes")):
        if as_map(dig(vol, "hostPath")):
            yield f"{what} mounts a hostPath volume ({as_text(dig(vol, 'name'))})"
    for c in containers(pod):
        cname = as_text(c.get("name"))
        sc = as_map(c.get("securityContext"))
        if truthy(sc.get("privileged")):
            yield f"{what}: container {cname} is privileged"
        if truthy(sc.get("allowPrivilegeEscalation")):
            yield f"{what}: container {cname} allows privilege escalation"
        extra = sorted(
            cap
            for cap in (as_text(x).upper().removeprefix("CAP_") for x in as_list(dig(sc, "capabilities", "add")))
            if cap and cap not in BASELINE_CAPABILITIES
        )
        if extra:
            yield f"{what}: container {cname} adds capabilities {', '.join(extra)}"
        for port in as_list(c.get("ports")):
            if (number(dig(port, "hostPort")) or 0) > 0:
                yield f"{what}: container {cname} binds a host port"


@_rule(
    "container-resources",
    "Every container has requests and limits",
    "Requests let the scheduler place clinics by what they need (the density plan counts on them); limits stop one "
    "clinic's runaway process from starving or evicting its neighbours on the node.",
    A,
)
def _resources(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is None:
        return
    for c in containers(pod):
        res = as_map(c.get("resources"))
        missing = [
            f"{part}.{what}"
            for part in ("requests", "limits")
            for what in ("cpu", "memory")
            if dig(res, part, what) is None
        ]
        if missing:
            yield f"{v.kind} {v.namespace}/{v.k8s_name}: container {as_text(c.get('name'))} has no {', '.join(missing)}"


@_rule(
    "image-pinned",
    "Every image names a version (tag or digest), never 'latest'",
    "An auditor asks which server a clinic ran: 'latest' or no tag names nothing, and a restart may silently pull "
    "another build.",
    M,
)
def _image_pinned(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is None:
        return
    for c in containers(pod):
        image = as_text(c.get("image"))
        if not image:
            continue
        _, _, tag = _image_tag(image)
        if not tag or tag == "latest":
            yield f"{v.kind} {v.namespace}/{v.k8s_name}: container {as_text(c.get('name'))} runs {image} (no version)"


@_rule(
    "image-private-registry",
    "Images come from the platform's private registry",
    "There is no official ORCA image: the operator builds it. Public images are unreviewed supply chain.",
    A,
)
def _image_registry(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is None:
        return
    for c in containers(pod):
        image = as_text(c.get("image"))
        if image:
            registry, _, _ = _image_tag(image)
            if not registry.endswith(ctx.registry_suffixes):
                yield f"{v.kind} {v.namespace}/{v.k8s_name}: image {image} is not from a private registry"


def _images(v: ResourceView) -> Iterator[tuple[str, str]]:
    """(container name, image) of every container of a workload."""
    pod = pod_spec(v)
    if pod is None:
        return
    for c in containers(pod):
        image = as_text(c.get("image"))
        if image:
            yield as_text(c.get("name")), image


@_rule(
    "image-allowed-registry",
    "Images come only from the registries the stack allows",
    "The nodes pull with AcrPull on the stack's own registry; an image from anywhere else is unreviewed supply chain "
    "for a server that holds patient records, or does not start at all.",
    M,
    scope="stack",
)
def _image_allowed(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    allowed = ctx.registries(views)
    for v in views:
        for name, image in _images(v):
            breach = registry_breach(image, allowed)
            if breach:
                yield Finding(f"{v.display}: container {name} image {image} {breach}", view=v)


@_rule(
    "image-digest-prod",
    "In production, images are pinned by digest",
    "A tag can be pushed again with another build; only a digest names the build an auditor, a restore or a "
    "rollback can rely on.",
    M,
)
def _image_digest(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not is_prod(environment_of(v, ctx)):
        return
    for name, image in _images(v):
        breach = digest_breach(image)
        if breach:
            yield f"{v.display}: container {name} image {image} {breach}"


@_rule(
    "helm-chart-pinned",
    "Helm charts are installed at a pinned version",
    "Without a version every update may install a different controller in front of all clinics.",
    A,
)
def _chart_pinned(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    version = v.props.get("version")
    if v.type.startswith("kubernetes:helm.sh/") and not as_text(version) and not is_unknown(unwrap(version)):
        yield f"Helm release {v.name} installs chart {as_text(v.props.get('chart'))} at no pinned version"


@_rule(
    "clinic-namespace-pod-security",
    "Clinic namespaces enforce Pod Security 'baseline' or stricter",
    "The admission controller then refuses privileged or host-sharing pods even if a rule here were bypassed.",
    A,
)
def _pod_security(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Namespace" and as_text(v.labels.get(CLINIC_LABEL)):
        level = as_text(v.labels.get("pod-security.kubernetes.io/enforce"))
        if level not in ("baseline", "restricted"):
            yield f"clinic namespace {v.k8s_name} enforces Pod Security '{level or 'privileged (none set)'}'"


@_rule(
    "secret-not-plaintext",
    "No secret-looking value is stored unencrypted",
    "Pulumi encrypts a value in its state only when it is marked secret. A password, key, token or connection "
    "string left plain is readable by anyone with the state file or an export.",
    M,
    at_preview=False,
)
def _secret_plaintext(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not v.secrets_marked:
        return
    for part, bag in (("inputs", v.props), ("outputs", v.outputs)):
        # A Secret's data is judged as a whole below, not key by key.
        scanned = {k: x for k, x in bag.items() if not (v.kind == "Secret" and k in ("data", "stringData"))}
        for path in _plain_credentials(scanned, ""):
            yield f"{v.display}: {part}.{path} is stored in clear text"
        for key in v.additional_secret_outputs:
            if part == "outputs" and bag.get(key) not in (None, "", [], {}) and not is_secret(bag.get(key)):
                yield f"{v.display}: outputs.{key} is declared secret (additionalSecretOutputs) but stored in clear"
        if v.kind == "Secret":
            for key in ("data", "stringData"):
                value = bag.get(key)
                if isinstance(value, Mapping) and not is_secret(value):
                    plain = [k for k, x in value.items() if not is_secret(x) and x not in (None, "")]
                    if plain:
                        yield f"{v.display}: {part}.{key} holds {', '.join(sorted(plain))} in clear text"


@_rule(
    "credential-not-inline",
    "Credentials reach pods through Secrets, not inline",
    "Kubernetes stores Deployments, Jobs and ConfigMaps unencrypted and shows them to anyone who may read them; "
    "a password written there leaks whatever Pulumi does with its own copy.",
    M,
)
def _credential_inline(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is not None:
        for c in containers(pod):
            for env in as_list(c.get("env")):
                name = as_text(dig(env, "name"))
                value = dig(env, "value")
                if credential_key(name) and (value is ENCRYPTED or (as_text(value) and not is_unknown(value))):
                    yield (
                        f"{v.kind} {v.namespace}/{v.k8s_name}: container {as_text(c.get('name'))} sets {name} inline "
                        "(use valueFrom.secretKeyRef)"
                    )
    if v.kind == "ConfigMap":
        for part in ("data", "binaryData"):
            for key in as_map(v.props.get(part)):
                if credential_key(str(key)):
                    yield f"ConfigMap {v.namespace}/{v.k8s_name} holds {key}, which names a credential"


@_rule(
    "no-default-credentials",
    "No well-known default password is used",
    "Public ORCA images ship ormaster/ormaster and orca_password; anyone who has read their Dockerfile knows them.",
    M,
)
def _default_credentials_rule(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for path in _default_credentials(v.props, ""):
        yield f"{v.display}: {path} is a well-known default password"
    if v.kind == "Secret":
        for key, value in as_map(v.props.get("data")).items():
            text = _decoded(value)
            if text is not None and credential_key(str(key)) and text.strip().lower() in DEFAULT_PASSWORDS:
                yield f"{v.display}: data.{key} is a well-known default password"


def _nsg_rules(v: ResourceView) -> list[Mapping[str, Any]]:
    if v.type == "azure-native:network:NetworkSecurityGroup":
        return [as_map(r) for r in as_list(v.props.get("securityRules"))]
    if v.type == "azure-native:network:SecurityRule":
        return [v.props]
    return []


@_rule(
    "nsg-no-internet-inbound",
    "No network security rule admits the Internet",
    "Clinics reach the platform over the VPN only; an inbound Allow from any source opens the VNet to the world.",
    M,
)
def _nsg(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for r in _nsg_rules(v):
        if as_text(r.get("direction")).lower() != "inbound" or as_text(r.get("access")).lower() != "allow":
            continue
        sources = [as_text(r.get("sourceAddressPrefix")), *map(as_text, as_list(r.get("sourceAddressPrefixes")))]
        if any(s.lower() in ANY_SOURCE for s in sources if s):
            yield f"{v.display}: rule {as_text(r.get('name')) or '?'} allows inbound traffic from any source"


@_rule(
    "public-network-access-disabled",
    "Azure services are reached over private endpoints only",
    "publicNetworkAccess Enabled puts a service's endpoint (storage, key vault, database) on the Internet, "
    "guarded only by keys or tokens.",
    M,
)
def _public_access(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not v.type.startswith("azure-native:"):
        return
    value = v.props.get("publicNetworkAccess")
    if is_unknown(unwrap(value)):
        return
    text = as_text(value)
    if text.lower() == "enabled":
        yield f"{v.display} has publicNetworkAccess Enabled"
    elif not text and v.type == "azure-native:storage:StorageAccount":
        yield f"{v.display} does not set publicNetworkAccess (Azure's default is Enabled)"


@_rule(
    "storage-account-hardened",
    "Storage accounts take no shared keys, no anonymous reads, no plain HTTP",
    "Account keys are shared, unaudited credentials that bypass Entra ID; anonymous blob access and HTTP expose "
    "backups of clinic records.",
    M,
)
def _storage_hardened(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:storage:StorageAccount":
        return
    p = v.props
    if truthy(p.get("allowSharedKeyAccess")) is not False and not is_unknown(unwrap(p.get("allowSharedKeyAccess"))):
        yield f"{v.display} allows shared-key access (set allowSharedKeyAccess false)"
    if truthy(p.get("allowBlobPublicAccess")) is True:
        yield f"{v.display} allows anonymous blob access"
    if truthy(p.get("enableHttpsTrafficOnly")) is False:
        yield f"{v.display} accepts plain HTTP"


@_rule(
    "storage-tls12",
    "Storage accounts require TLS 1.2 or later",
    "Older TLS versions have known weaknesses; Azure's default for older API versions is TLS 1.0.",
    A,
)
def _storage_tls(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:storage:StorageAccount":
        tls = as_text(v.props.get("minimumTlsVersion"))
        if tls not in ("TLS1_2", "TLS1_3") and not is_unknown(unwrap(v.props.get("minimumTlsVersion"))):
            yield f"{v.display} accepts TLS below 1.2 (minimumTlsVersion {tls or 'unset'})"


@_rule(
    "blob-container-private",
    "No blob container allows anonymous access",
    "A container with publicAccess Blob or Container serves its blobs to anyone who guesses the URL.",
    M,
)
def _container_private(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:storage:BlobContainer":
        access = as_text(v.props.get("publicAccess"))
        if access and access != "None":
            yield f"{v.display} allows anonymous access ({access})"


def _aks_api(v: ResourceView) -> tuple[bool | None, list[str]]:
    profile = as_map(v.props.get("apiServerAccessProfile"))
    ranges = [as_text(r) for r in as_list(profile.get("authorizedIPRanges"))]
    return truthy(profile.get("enablePrivateCluster")), [r for r in ranges if r]


@_rule(
    "aks-api-restricted",
    "The AKS API server is private or limited to known addresses",
    "A public API server open to every address invites credential stuffing against the cluster that holds "
    "every clinic.",
    M,
)
def _aks_restricted(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:containerservice:ManagedCluster":
        return
    private, ranges = _aks_api(v)
    if private is True:
        return
    if not ranges:
        yield f"{v.display}: the API server is public and open to every address (no authorizedIPRanges)"
    elif any(r.lower() in ANY_SOURCE for r in ranges):
        yield f"{v.display}: the API server's authorized ranges include the whole Internet"


@_rule(
    "aks-private-api-prod",
    "In production the AKS API server is private",
    "Production holds real patients' records: its control plane has no Internet endpoint at all.",
    M,
)
def _aks_private_prod(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:containerservice:ManagedCluster" and is_prod(environment_of(v, ctx)):
        private, _ = _aks_api(v)
        if private is not True:
            yield f"{v.display}: production cluster without a private API server (enablePrivateCluster)"


@_rule(
    "aks-local-accounts-disabled",
    "In production AKS local accounts are disabled",
    "Local accounts (the cluster-admin certificate) bypass Entra ID and leave no per-person audit trail.",
    M,
)
def _aks_local(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if (
        v.type == "azure-native:containerservice:ManagedCluster"
        and is_prod(environment_of(v, ctx))
        and truthy(v.props.get("disableLocalAccounts")) is not True
    ):
        yield f"{v.display}: production cluster keeps local accounts (disableLocalAccounts is not true)"


@_rule(
    "aks-entra-rbac",
    "AKS uses Entra ID with Azure RBAC",
    "Every person and pipeline signs in as themselves and is authorised centrally; access reviews then cover the "
    "cluster too.",
    A,
)
def _aks_rbac(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type != "azure-native:containerservice:ManagedCluster":
        return
    aad = as_map(v.props.get("aadProfile"))
    if truthy(aad.get("managed")) is not True or truthy(aad.get("enableAzureRBAC")) is not True:
        yield f"{v.display}: Entra ID integration with Azure RBAC is not enabled (aadProfile)"
    if truthy(v.props.get("enableRBAC")) is False:
        yield f"{v.display}: Kubernetes RBAC is disabled"


@_rule(
    "no-node-public-ip",
    "No AKS node has a public IP",
    "A node with a public address is reachable from the Internet around every load balancer and NSG on the path.",
    M,
)
def _node_ip(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.type == "azure-native:containerservice:ManagedCluster":
        for pool in as_list(v.props.get("agentPoolProfiles")):
            if truthy(dig(pool, "enableNodePublicIP")):
                yield f"{v.display}: node pool {as_text(dig(pool, 'name'))} gives nodes public IPs"
    elif v.type == "azure-native:containerservice:AgentPool" and truthy(v.props.get("enableNodePublicIP")):
        yield f"{v.display}: node pool gives nodes public IPs"


# ================================================================================================================
# Stack rules: need every resource at once
# ================================================================================================================

PUBLIC_IP_TYPES = ("azure-native:network:PublicIPAddress", "azure-native:network:PublicIPPrefix")


def _references(holder: ResourceView, target: ResourceView) -> bool:
    """Does `holder` point at `target` (by its Azure id in the properties, or by a dependency on its URN)?"""
    if target.urn and target.urn in holder.dependencies:
        return True
    return bool(target.id) and target.id in json.dumps(holder.props, default=str)


@_rule(
    "single-public-ip",
    "The platform has exactly one public IP, and it is the VPN gateway's",
    "IPsec needs one reachable peer address; anything else public is an exposure nobody asked for.",
    M,
    scope="stack",
)
def _single_public_ip(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    ips = [v for v in views if v.type in PUBLIC_IP_TYPES]
    gateways = [v for v in views if v.type == "azure-native:network:VirtualNetworkGateway"]
    if len(ips) != 1:
        names = ", ".join(v.display for v in ips) or "none"
        yield Finding(f"expected exactly one public IP (the VPN gateway's); found {len(ips)}: {names}")
    for ip in ips:
        if not any(_references(g, ip) for g in gateways):
            yield Finding(f"{ip.display} is not attached to the VPN gateway", view=ip)


def _is_default_deny(v: ResourceView) -> bool:
    spec = as_map(v.props.get("spec"))
    selector = as_map(spec.get("podSelector"))
    selects_all = not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))
    types = {as_text(t) for t in as_list(spec.get("policyTypes"))}
    return selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress")


def _clinic_namespace_views(views: Sequence[ResourceView], ctx: RuleContext) -> dict[str, ResourceView]:
    return {v.k8s_name: v for v in views if v.kind == "Namespace" and v.k8s_name in ctx.clinic_namespaces}


@_rule(
    "clinic-default-deny",
    "Every clinic namespace starts closed (default-deny NetworkPolicy)",
    "Only what a policy admits may reach a clinic's pods or leave them; a missing default-deny lets any pod in "
    "the cluster talk to that clinic's ORCA.",
    M,
    scope="stack",
)
def _default_deny(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    denied = {v.namespace for v in views if v.kind == "NetworkPolicy" and _is_default_deny(v)}
    namespaces = _clinic_namespace_views(views, ctx)
    for ns, clinic in sorted(ctx.clinic_namespaces.items()):
        if ns not in denied:
            yield Finding(
                f"clinic namespace {ns} has no default-deny NetworkPolicy", view=namespaces.get(ns), clinic=clinic
            )


@_rule(
    "clinic-has-protected-volume",
    "Every clinic has a protected data volume",
    "Answers the auditor's 'was its data protected?' per clinic: a clinic without a labelled, protected claim is "
    "either unprotected or keeps its data somewhere nobody declared.",
    M,
    scope="stack",
)
def _clinic_volume(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    volumes: dict[str, list[ResourceView]] = defaultdict(list)
    for v in views:
        if v.kind == "PersistentVolumeClaim" and v.is_clinic_data():
            volumes[v.namespace].append(v)
    namespaces = _clinic_namespace_views(views, ctx)
    for ns, clinic in sorted(ctx.clinic_namespaces.items()):
        mine = volumes.get(ns, [])
        if not mine:
            yield Finding(
                f"clinic {clinic} has no data volume (a claim labelled {DATA_LABEL}={CLINIC_DATA})",
                view=namespaces.get(ns),
                clinic=clinic,
            )
        elif not any(v.protect and v.retain_on_delete is not False for v in mine):
            yield Finding(f"clinic {clinic} has no data volume that is both protected and retained", clinic=clinic)


@_rule(
    "clinic-volume-class",
    "Clinic volumes use a StorageClass of this stack that retains them",
    "AKS's built-in classes (default, managed-csi, azurefile-csi ...) delete the disk with the claim, and "
    "azurefile is SMB; only classes this program defines are known to Retain.",
    M,
    scope="stack",
)
def _volume_class(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    classes = {v.k8s_name: v for v in views if v.kind == "StorageClass"}
    for v in views:
        if v.kind != "PersistentVolumeClaim" or not v.is_clinic_data():
            continue
        name_value = dig(v.props, "spec", "storageClassName")
        if is_unknown(name_value):
            continue
        name = as_text(name_value)
        sc = classes.get(name)
        if not name:
            yield Finding(f"clinic volume {v.namespace}/{v.k8s_name} names no StorageClass (cluster default)", view=v)
        elif sc is None:
            yield Finding(
                f"clinic volume {v.namespace}/{v.k8s_name} uses StorageClass {name}, which this stack does not define",
                view=v,
            )
        elif not sc.is_clinic_data():
            # Labelled classes are judged by the resource rules; an unlabelled one would slip past them.
            if (as_text(sc.props.get("reclaimPolicy")) or "Delete") != "Retain":
                yield Finding(f"clinic volume {v.namespace}/{v.k8s_name}: StorageClass {name} deletes volumes", view=v)
            if _is_smb(sc.props):
                yield Finding(f"clinic volume {v.namespace}/{v.k8s_name}: StorageClass {name} is SMB", view=v)


@_rule(
    "unique-clinic-endpoints",
    "No two clinics share a host name or a private IP",
    "A shared name or address sends one clinic's staff to another clinic's patient records.",
    M,
    scope="stack",
)
def _unique_endpoints(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    hosts: dict[str, set[str]] = defaultdict(set)
    ips: dict[str, set[str]] = defaultdict(set)
    for v in views:
        if v.kind == "Ingress":
            for rule in as_list(dig(v.props, "spec", "rules")):
                host = as_text(dig(rule, "host")).lower()
                if host:
                    hosts[host].add(v.namespace)
        elif v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
            ip = as_text(v.annotations.get(LB_IPV4)) or as_text(dig(v.props, "spec", "loadBalancerIP"))
            if ip:
                ips[ip].add(v.namespace)
    for what, seen in (("host name", hosts), ("private IP", ips)):
        for value, namespaces in sorted(seen.items()):
            if len(namespaces) > 1:
                yield Finding(f"{what} {value} is used in several namespaces: {', '.join(sorted(namespaces))}")


@_rule(
    "clinic-backup-scheduled",
    "Every clinic has scheduled backups",
    "Protection against deletion is not protection against corruption or ransomware: each clinic needs copies "
    "taken on a schedule (CronJobs in its namespace).",
    A,
    scope="stack",
)
def _backups(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    scheduled = {v.namespace for v in views if v.kind == "CronJob"}
    namespaces = _clinic_namespace_views(views, ctx)
    for ns, clinic in sorted(ctx.clinic_namespaces.items()):
        if ns not in scheduled:
            yield Finding(
                f"clinic {clinic} has no scheduled backup (no CronJob in {ns})",
                view=namespaces.get(ns),
                clinic=clinic,
            )


@_rule(
    "backup-immutable-prod",
    "In production, backup storage is immutable",
    "Medical records must be kept unaltered for years; a WORM policy (immutability) means not even an "
    "administrator or ransomware with their keys can rewrite or delete a stored copy early.",
    M,
    scope="stack",
)
def _immutable(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = [v for v in views if v.type == "azure-native:storage:StorageAccount"]
    if not accounts or not any(is_prod(environment_of(v, ctx)) for v in accounts):
        return
    worm = any(
        v.type == "azure-native:storage:BlobContainerImmutabilityPolicy"
        or truthy(dig(v.props, "immutableStorageWithVersioning", "enabled")) is True
        for v in views
    )
    for breach in backup_breaches(monthly_retention_days=None, records_years=0, delete_lock=None, immutable=worm):
        yield Finding(f"backup storage {breach} (no policy on any container or account)", view=accounts[0])


def _prod_accounts(views: Sequence[ResourceView], ctx: RuleContext) -> list[ResourceView]:
    accounts = [v for v in views if v.type == "azure-native:storage:StorageAccount"]
    return accounts if any(is_prod(environment_of(v, ctx)) for v in accounts) else []


LOCK_TYPES = (
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
    "azure-native:authorization:ManagementLockAtSubscriptionLevel",
    "azure-native:authorization:ManagementLockByScope",
)


@_rule(
    "backup-delete-lock-prod",
    "In production, the backup account has a delete lock",
    "Immutability protects each copy, not the account: without a CanNotDelete lock one call deletes the account "
    "and every clinic's years of copies with it.",
    M,
    scope="stack",
)
def _delete_lock(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = _prod_accounts(views, ctx)
    if not accounts:
        return
    locked = any(_is_delete_lock(v) for v in views)
    for breach in backup_breaches(monthly_retention_days=None, records_years=0, delete_lock=locked, immutable=None):
        yield Finding(f"backup storage {breach}", view=accounts[0])


def _is_delete_lock(v: ResourceView) -> bool:
    """A lock that stops deletion of a storage account: on the account itself, or on its group or subscription."""
    if v.type not in LOCK_TYPES or as_text(v.props.get("level")) not in ("CanNotDelete", "ReadOnly"):
        return False
    # A resource-level lock must sit on a storage account ('' when a preview cannot know yet).
    return v.type != LOCK_TYPES[0] or as_text(v.props.get("resourceType")) in ("", "storageAccounts")


@_rule(
    "backup-retention-prod",
    "In production, backups are immutable at least as long as the records must be kept",
    "The longest-kept copies (the monthly dumps) must stay unalterable for the records' whole retention "
    "(five years for medical records unless the stack declares more), counted with leap days.",
    M,
    scope="stack",
)
def _retention(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    accounts = _prod_accounts(views, ctx)
    periods = [
        number(v.props.get("immutabilityPeriodSinceCreationInDays"))
        for v in views
        if v.type == "azure-native:storage:BlobContainerImmutabilityPolicy"
    ]
    known = [p for p in periods if p is not None]
    if not accounts or not known:
        return
    for breach in backup_breaches(
        monthly_retention_days=max(known),
        records_years=ctx.retention_years(views),
        delete_lock=None,
        immutable=None,
    ):
        yield Finding(f"the longest immutability policy {breach}", view=accounts[0])
