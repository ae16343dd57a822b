"""What a rule may know beyond one resource: the stack's environment, clinics, ingress classes and registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from orca_platform.safety.prod_floors import (
    ACR_PULL_ROLE,
    DEFAULT_RECORDS_RETENTION_YEARS,
    RECORDS_RETENTION_TAG,
    acr_login_server,
)

from ..conventions import CLINIC_LABEL
from .kubernetes import internal_controller_classes
from .values import as_map, as_text, number
from .view import CLINIC_NAMESPACE, PLATFORM_NAMESPACES, ResourceView, clinic_namespaces

DEFAULT_INGRESS_CLASSES = frozenset({"orca-internal"})


DEFAULT_REGISTRY_SUFFIXES = (".azurecr.io",)


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
    m = CLINIC_NAMESPACE.fullmatch(ns)
    return m.group(1) if m and ns not in PLATFORM_NAMESPACES else None


def each_clinic_namespace(
    views: Sequence[ResourceView], ctx: RuleContext
) -> Iterator[tuple[str, str, ResourceView | None]]:
    """(namespace, clinic, its Namespace object if the stack has one) per clinic, in namespace order: what a stack
    rule walks to say which clinic lacks something, pointing at the namespace."""
    objects = {v.k8s_name: v for v in views if v.kind == "Namespace" and v.k8s_name in ctx.clinic_namespaces}
    for ns, clinic in sorted(ctx.clinic_namespaces.items()):
        yield ns, clinic, objects.get(ns)
