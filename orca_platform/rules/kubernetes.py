"""Reading Kubernetes workloads: the pod template wherever a kind keeps it, its containers, claims and images.

`each_container` is the helper of the container rules: it yields every container (init and ephemeral ones too) with
the words a finding starts with, so every container rule names the workload and the container the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..conventions import INTERNAL_LB, POD_SPEC_PATHS
from .values import as_list, as_map, as_text, dig, unwrap
from .view import ResourceView


def pod_spec(view: ResourceView) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(view.kind)
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
    if not values or any(True for _ in public_lb_in_values(values, "")):
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


def public_lb_in_values(node: Any, path: str) -> Iterator[str]:
    """Paths in Helm values that describe a LoadBalancer Service without the internal annotation."""
    node = unwrap(node)
    if isinstance(node, Mapping):
        annotations = as_map(node.get("annotations"))
        if as_text(node.get("type")) == "LoadBalancer" and as_text(annotations.get(INTERNAL_LB)).lower() != "true":
            yield path or "."
        for k, v in node.items():
            yield from public_lb_in_values(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from public_lb_in_values(v, f"{path}[{i}]")


def each_container(view: ResourceView) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, container) for every container of a workload; `where` reads "Deployment ns/name: container c"."""
    pod = pod_spec(view)
    if pod is None:
        return
    for c in containers(pod):
        yield f"{view.display}: container {as_text(c.get('name'))}", c


def each_image(view: ResourceView) -> Iterator[tuple[str, str]]:
    """(where, image) for every container of a workload that names an image."""
    for where, c in each_container(view):
        image = as_text(c.get("image"))
        if image:
            yield where, image
