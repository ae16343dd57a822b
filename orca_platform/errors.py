"""Input errors that name the file, the clinic and the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    source: str
    field: str
    message: str
    clinic: str | None = None

    def __str__(self) -> str:
        where = f"clinic '{self.clinic}': " if self.clinic else ""
        field = f"field '{self.field}': " if self.field else ""
        return f"{self.source}: {where}{field}{self.message}"


class InputError(Exception):
    """Bad tenants file or stack settings; raised before any resource is registered."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid input: {self.problems[0]}"
        lines = [f"invalid input ({len(self.problems)} problems):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from_validation(
    err: ValidationError,
    source: str,
    *,
    list_key: str | None = None,
    raw: Mapping[str, Any] | None = None,
    id_key: str = "id",
    prefix: str = "",
) -> list[Problem]:
    """Turn pydantic's errors into Problems, naming the clinic by its id when the
    error sits inside the list of clinics (falling back to its position)."""
    problems: list[Problem] = []
    items: Sequence[Any] = []
    if list_key and raw is not None and isinstance(raw.get(list_key), list):
        items = raw[list_key]
    for e in err.errors():
        loc = list(e["loc"])
        clinic: str | None = None
        if list_key and len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            index = loc[1]
            item = items[index] if index < len(items) else None
            ident = item.get(id_key) if isinstance(item, Mapping) else None
            clinic = str(ident) if ident else f"#{index + 1}"
            loc = loc[2:]
        message = str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; the README lists every field)"
        elif e["type"] == "missing":
            message = "is required"
        if "input" in e and e["type"] not in ("missing", "extra_forbidden"):
            shown = e["input"]
            if isinstance(shown, (str, int, float, bool)) and "(got " not in message:
                message += f" (got {shown!r})"
        field = _dotted(loc)
        if prefix:
            field = f"{prefix}{field}"
        problems.append(Problem(source=source, field=field, message=message, clinic=clinic))
    return problems
