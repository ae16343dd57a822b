"""The rule registry: what a rule is, the context it reads, its findings, and `evaluate` over a stack.

Rules register themselves at import through their domain (`Domain.rule`), one module per domain; the package's
`__init__` imports the domains in the order the registry, the policy pack and docs/audit.md list them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from .context import RuleContext, clinic_of
from .view import ResourceView


class Enforcement(StrEnum):
    MANDATORY = "mandatory"  # blocks `pulumi preview`/`up`; fails the audit
    ADVISORY = "advisory"  # reported, never blocks


Scope = Literal["resource", "stack"]


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


# A rule's check: (view, context) for a resource rule, (views, context) for a stack rule; messages or findings.
Check = Callable[..., Iterable[Finding | str]]


@dataclass(frozen=True)
class Rule:
    """One rule: its id and level, what it checks (`what`, for the audit table) and why, and the check itself."""

    id: str
    title: str
    why: str
    enforcement: Enforcement
    scope: Scope
    check: Check
    at_preview: bool = True
    what: str = ""
    domain: str = ""

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


@dataclass(frozen=True)
class Domain:
    """A group of rules with one concern (a module of this package, a section of docs/audit.md)."""

    title: str
    intro: str

    def __post_init__(self) -> None:
        # A domain is a module's, once: a second one of the same title (a module imported twice) would split it.
        if any(d.title == self.title for d in DOMAINS):
            raise ValueError(f"rule domain {self.title!r} is declared twice")
        DOMAINS.append(self)

    def rule(
        self,
        rule_id: str,
        title: str,
        why: str,
        enforcement: Enforcement,
        *,
        what: str,
        scope: Scope = "resource",
        at_preview: bool = True,
    ) -> Callable[[Check], Check]:
        """Registers the decorated check as a rule of this domain; ids are unique across the registry."""

        def register(fn: Check) -> Check:
            if any(r.id == rule_id for r in RULES):
                raise ValueError(f"rule id {rule_id} is registered twice")
            RULES.append(Rule(rule_id, title, why, enforcement, scope, fn, at_preview, what, self.title))
            return fn

        return register

    @property
    def rules(self) -> list[Rule]:
        return [r for r in RULES if r.domain == self.title]


DOMAINS: list[Domain] = []
M = Enforcement.MANDATORY
A = Enforcement.ADVISORY


def order_domains(order: Sequence[Domain]) -> None:
    """Puts the domains, and so the rules, in `order` (each domain keeps its rules in the order they are defined)."""
    if set(order) != set(DOMAINS) or len(order) != len(DOMAINS):
        raise ValueError("order_domains needs every domain exactly once")
    DOMAINS[:] = list(order)
    RULES.sort(key=lambda r: [d.title for d in DOMAINS].index(r.domain))


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
