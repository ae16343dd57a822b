"""Input errors that name the file, the clinic, the field, the value and the fix."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .schema_help import Located, allowed_values, field_at, field_description, known_keys, suggest, where_else


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can.

    `value` is the offending value as the person wrote it (already rendered, see `show`), `fix` what to write instead.
    """

    source: str
    field: str
    message: str
    clinic: str | None = None
    value: str | None = None
    fix: str = ""

    def __str__(self) -> str:
        where = f"clinic '{self.clinic}': " if self.clinic else ""
        field = f"field '{self.field}'" if self.field else ""
        if field and self.value is not None:
            field += f" = {self.value}"
        field = f"{field}: " if field else ""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.source}: {where}{field}{self.message}{fix}"


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


SHOWN_MAX = 120


def show(value: Any) -> str:
    """A value as a person would recognise it from their YAML: text quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str | int | float):
        text = repr(value)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 3] + "..."


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {show(value)}"
    if isinstance(value, int | float):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping (key: value lines)"
    return "null" if value is None else type(value).__name__


def _quote_fix(value: Any) -> str:
    """How to write a number or boolean YAML read where text is meant."""
    if isinstance(value, bool):
        return "quote the text you meant: YAML reads unquoted yes/no/on/off/true/false as a boolean"
    if isinstance(value, float):
        text = repr(value)
        hint = f'"{text}"'
        if "." in text and len(text.split(".")[1]) == 1:
            # 1.30 unquoted arrives as 1.3: offer the reading the person most likely meant too.
            hint += f' (or "{text}0" if that is what you wrote: unquoted, YAML reads {text}0 as the number {text})'
        return f"quote it: {hint}"
    return f'quote it: "{value}"'


@dataclass(frozen=True)
class _Err:
    """One pydantic error with what is known about the place it points at."""

    kind: str
    value: Any
    ctx: Mapping[str, Any]
    model: type[BaseModel] | None
    loc: Sequence[int | str]
    prefix: str

    @property
    def place(self) -> Located | None:
        return field_at(self.model, self.loc) if self.model is not None else None


Said = tuple[str, str]


def _missing(e: _Err) -> Said:
    return "is required", "add it (the README lists every field)"


def _extra(e: _Err) -> Said:
    key = str(e.loc[-1]) if e.loc else ""
    known = known_keys(e.model, e.loc[:-1]) if e.model is not None else []
    near = suggest(key, known)
    if near:
        return "is not a known field", f"did you mean '{near}'?"
    elsewhere = where_else(e.model, key, e.prefix) if e.model is not None else []
    if elsewhere:
        return "is not a field here", f"'{key}' belongs under {' or '.join(elsewhere)}: move it there"
    return "is not a known field", f"remove it or use one of: {', '.join(known) if known else 'none'}"


def _text(e: _Err) -> Said:
    if isinstance(e.value, bool | int | float):
        return f"is {_kind(e.value)}, but text is expected", _quote_fix(e.value)
    return f"must be text, not {_kind(e.value)}", "write it as one value in quotes"


def _whole(e: _Err) -> Said:
    v = e.value
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return "is text, but a whole number is expected", f"write {v.strip()}, not {show(v)}"
    if isinstance(v, float):
        return "must be a whole number", f"write {int(v)} or {int(v) + 1}, without a fraction"
    return f"must be a whole number, not {_kind(v)}", "write a number such as 32, without quotes"


def _number(e: _Err) -> Said:
    v = e.value
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            pass
        else:
            return "is text, but a number is expected", f"write {v.strip()}, not {show(v)}"
    return f"must be a number, not {_kind(v)}", "write a number such as 0.2, without quotes"


def _boolean(e: _Err) -> Said:
    if isinstance(e.value, str):
        return "is text, but true or false is expected", f"write true or false without quotes, not {show(e.value)}"
    return f"must be true or false, not {_kind(e.value)}", "write true or false"


def _choice(e: _Err) -> Said:
    allowed = allowed_values(e.place)
    listed = ", ".join(allowed)
    if isinstance(e.value, bool | int | float) and str(e.value) in allowed:
        return f"is {_kind(e.value)}, but the text {str(e.value)!r} is expected", _quote_fix(e.value)
    near = suggest(str(e.value), allowed)
    if near:
        return f"is not one of: {listed}", f"did you mean '{near}'?"
    return f"is not one of: {listed}", "write one of them exactly (case matters)"


def _mapping(e: _Err) -> Said:
    return f"must be a mapping (key: value lines), not {_kind(e.value)}", "indent its fields under the key"


def _list(e: _Err) -> Said:
    return f"must be a list, not {_kind(e.value)}", "write [a, b] or one '- item' line per entry"


def _count(e: _Err) -> Said:
    short = e.kind == "too_short"
    bound = e.ctx.get("min_length" if short else "max_length")
    return f"must list {'at least' if short else 'at most'} {bound} item{'' if bound == 1 else 's'}", ""


def _length(e: _Err) -> Said:
    short = e.kind == "string_too_short"
    bound = e.ctx.get("min_length" if short else "max_length")
    return f"must be {'at least' if short else 'at most'} {bound} characters long", ""


def _pattern(e: _Err) -> Said:
    described = field_description(e.place)
    if described:
        return f"must be {described}", ""
    return f"is not in the expected form (pattern {e.ctx.get('pattern')})", "see the README for this field"


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _bound(e: _Err) -> Said:
    word, key = _BOUNDS[e.kind]
    described = field_description(e.place)
    return f"must be {word} {e.ctx.get(key)}" + (f" ({described})" if described else ""), ""


_PLAIN: dict[str, Callable[[_Err], Said]] = {
    "missing": _missing,
    "extra_forbidden": _extra,
    "string_type": _text,
    "int_type": _whole,
    "int_parsing": _whole,
    "int_from_float": _whole,
    "float_type": _number,
    "float_parsing": _number,
    "bool_type": _boolean,
    "bool_parsing": _boolean,
    "literal_error": _choice,
    "enum": _choice,
    "model_type": _mapping,
    "model_attributes_type": _mapping,
    "dict_type": _mapping,
    "list_type": _list,
    "too_short": _count,
    "too_long": _count,
    "string_too_short": _length,
    "string_too_long": _length,
    "string_pattern_mismatch": _pattern,
    **dict.fromkeys(_BOUNDS, _bound),
}


def plain_message(
    e: Mapping[str, Any], model: type[BaseModel] | None, loc: Sequence[int | str], prefix: str = ""
) -> Said:
    """(what is wrong, how to fix it) for one pydantic error, in plain words rather than the library's."""
    kind = str(e["type"])
    handler = _PLAIN.get(kind)
    if handler is not None:
        return handler(_Err(kind, e.get("input"), e.get("ctx") or {}, model, loc, prefix))
    return str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, "), ""


def problems_from_validation(
    err: ValidationError,
    source: str,
    *,
    list_key: str | None = None,
    raw: Mapping[str, Any] | None = None,
    id_key: str = "id",
    prefix: str = "",
    model: type[BaseModel] | None = None,
    hidden: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Turn pydantic's errors into Problems, naming the clinic by its id when the error sits inside the list of
    clinics (falling back to its position). `model` lets unknown keys and bad choices get a did-you-mean; values of
    top-level keys in `hidden` (secrets) are never shown."""
    problems: list[Problem] = []
    items: Sequence[Any] = []
    if list_key and raw is not None and isinstance(raw.get(list_key), list):
        items = raw[list_key]
    for e in err.errors():
        full = list(e["loc"])
        loc = list(full)
        clinic: str | None = None
        if list_key and len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            index = loc[1]
            item = items[index] if index < len(items) else None
            ident = item.get(id_key) if isinstance(item, Mapping) else None
            clinic = str(ident) if ident else f"#{index + 1}"
            loc = loc[2:]
        message, fix = plain_message(e, model, full, prefix)
        value: str | None = None
        if "input" in e and e["type"] != "missing" and not (full and str(full[0]) in hidden):
            shown = e["input"]
            if isinstance(shown, str | int | float | bool) or (
                isinstance(shown, list) and all(isinstance(v, str | int | float | bool) for v in shown)
            ):
                value = show(shown)
        field = _dotted(loc)
        if prefix:
            field = f"{prefix}{field}"
        problems.append(Problem(source=source, field=field, message=message, clinic=clinic, value=value, fix=fix))
    return problems


__all__ = ["InputError", "Problem", "problems_from_validation", "show"]
