"""Resource URNs as the Pulumi engine writes them, for tools that print or match real stacks' URNs.

The engine qualifies a resource's type with its parent's whole qualified type, and leaves the root Stack out:
`urn:pulumi:<stack>::<project>::<parent types joined by $>$<type>::<name>` (pulumi/pulumi
pkg/resource/deploy/deployment.go `generateURN`, which registration uses, calling sdk/go/common/resource/urn/urn.go
`New`). The SDK's
mock monitor (`pulumi.runtime.mocks.MockMonitor.make_urn`) keeps only the parent's last type and keeps the Stack's,
so the offline run's URNs are translated here before they are shown to anyone who will paste them into the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.offline.engine import PROJECT, Run

PREFIX = "urn:pulumi:"
ROOT_STACK = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Urn:
    stack: str
    project: str
    types: tuple[str, ...]  # outermost parent first, the resource's own type last
    name: str

    @property
    def type(self) -> str:
        return self.types[-1]

    @property
    def parent_types(self) -> tuple[str, ...]:
        return self.types[:-1]


def parse(urn: str) -> Urn:
    """Split a URN into its parts; ValueError for anything that is not one."""
    if not urn.startswith(PREFIX):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    parts = urn[len(PREFIX) :].split("::", 3)
    if len(parts) != 4 or not all(parts[:3]):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    stack, project, qualified, name = parts
    return Urn(stack, project, tuple(qualified.split("$")), name)


def stack_urn(stack: str, project: str = PROJECT) -> str:
    return f"{PREFIX}{stack}::{project}::{ROOT_STACK}::{project}-{stack}"


def child_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The URN of a resource registered with `parent` (an engine URN, the root Stack's or '')."""
    if not parent or parse(parent).types == (ROOT_STACK,):
        return f"{PREFIX}{stack}::{project}::{type_}::{name}"
    return f"{parent.rsplit('::', 1)[0]}${type_}::{name}"


def engine_urns(run: Run, project: str = PROJECT) -> dict[str, str]:
    """Recorded (mock) URN -> the URN the engine gives the same registration; the root Stack maps to itself."""
    by_urn = {r.urn: r for r in run.resources}
    root = stack_urn(run.stack, project)
    out: dict[str, str] = {}

    def resolve(urn: str) -> str:
        if urn in out:
            return out[urn]
        res = by_urn.get(urn)
        if res is None:  # the root Stack (the mock names it like the engine does)
            return root
        out[urn] = child_urn(run.stack, project, resolve(res.parent) if res.parent else "", res.type, res.name)
        return out[urn]

    for res in run.resources:
        resolve(res.urn)
    return out


def provider_reference(reference: str, urns: dict[str, str]) -> str:
    """A provider reference `<urn>::<id>` with its URN translated."""
    if not reference:
        return ""
    urn, _, id_ = reference.rpartition("::")
    return f"{urns.get(urn, urn)}::{id_}"
