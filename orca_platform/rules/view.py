"""One resource as every rule sees it, and the clinic it belongs to."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..conventions import CLINIC_DATA, CLINIC_LABEL, DATA_LABEL
from .values import as_map, as_text

# Namespaces of the platform itself: `orca-<x>` but no clinic.
PLATFORM_NAMESPACES = frozenset({"orca-ingress", "orca-system", "orca-backup", "orca-monitoring"})


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


CLINIC_NAMESPACE = re.compile(r"orca-([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)")


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
        m = CLINIC_NAMESPACE.fullmatch(v.k8s_name) if v.kind == "Namespace" else None
        if m and v.k8s_name not in PLATFORM_NAMESPACES:
            found[v.k8s_name] = m.group(1)
    return found
