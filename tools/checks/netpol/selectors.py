"""metav1.LabelSelector semantics: matching, and satisfiability for label sets a tenant may choose."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PolicyError(ValueError):
    """A NetworkPolicy the API server would reject, or one this evaluator cannot read."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    """A metav1.LabelSelector: the conjunction of its requirements; no requirement selects everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None) -> Selector:
        if doc is None:
            return cls()
        reqs = [Requirement(k, "In", frozenset([str(v)])) for k, v in sorted((doc.get("matchLabels") or {}).items())]
        for expr in doc.get("matchExpressions") or []:
            op = expr.get("operator")
            values = frozenset(str(v) for v in expr.get("values") or [])
            if op in ("In", "NotIn") and not values:
                raise PolicyError(f"selector requirement {expr.get('key')} {op} needs values")
            if op in ("Exists", "DoesNotExist") and values:
                raise PolicyError(f"selector requirement {expr.get('key')} {op} takes no values")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise PolicyError(f"unknown selector operator {op!r}")
            reqs.append(Requirement(str(expr["key"]), str(op), values))
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def also(self, *extra: Requirement) -> Selector:
        return Selector(self.requirements + extra)

    def witness(self) -> dict[str, str] | None:
        """Labels that satisfy every requirement, or None when no label set can (the selector is empty)."""
        keys: dict[str, list[Requirement]] = {}
        for r in self.requirements:
            keys.setdefault(r.key, []).append(r)
        labels: dict[str, str] = {}
        for key, reqs in keys.items():
            allowed: set[str] | None = None
            forbidden: set[str] = set()
            must_exist = must_not_exist = False
            for r in reqs:
                if r.operator == "In":
                    allowed = set(r.values) if allowed is None else allowed & r.values
                    must_exist = True
                elif r.operator == "NotIn":
                    forbidden |= r.values
                elif r.operator == "Exists":
                    must_exist = True
                else:
                    must_not_exist = True
            if must_not_exist:
                if must_exist:
                    return None
                continue
            if allowed is not None:
                choices = sorted(allowed - forbidden)
                if not choices:
                    return None
                labels[key] = choices[0]
            elif must_exist:
                labels[key] = _fresh(forbidden)
        return labels

    def satisfiable(self) -> bool:
        return self.witness() is not None

    def forces(self, key: str, value: str) -> bool:
        """Whether every label set this selector matches carries key=value."""
        return not self.also(Requirement(key, "NotIn", frozenset([value]))).satisfiable()

    def __str__(self) -> str:
        if not self.requirements:
            return "{}"
        parts = []
        for r in self.requirements:
            if r.operator == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator} ({','.join(sorted(r.values))})")
            else:
                parts.append(f"{r.key} {r.operator}")
        return "{" + ", ".join(parts) + "}"


def _fresh(taken: set[str]) -> str:
    n = 0
    while f"any-{n}" in taken:
        n += 1
    return f"any-{n}"
