"""What a person may write at a place in a model: its known keys, allowed values and description, found by walking
the pydantic models themselves, so that every key someone adds to a model is covered without a list to maintain."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Located:
    """The type found at a location, and the field information attached to it there (None for list/dict items)."""

    annotation: Any
    info: FieldInfo | None


def _strip(annotation: Any) -> tuple[Any, FieldInfo | None]:
    """Annotated[T, Field(...)] -> (T, the FieldInfo); anything else unchanged."""
    info: FieldInfo | None = None
    while get_origin(annotation) is Annotated:
        args = get_args(annotation)
        annotation = args[0]
        for meta in args[1:]:
            if isinstance(meta, FieldInfo):
                info = meta
    return annotation, info


def _members(annotation: Any) -> list[Any]:
    """The non-None members of a union (or the annotation itself)."""
    annotation, _ = _strip(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_strip(a)[0] for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _by_key(model: type[BaseModel], key: str) -> tuple[str, FieldInfo] | None:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return name, info
    return None


def field_at(root: type[BaseModel] | None, loc: Sequence[int | str]) -> Located | None:
    """Follow a pydantic error location from the root model; None where it leaves the models."""
    if root is None:
        return None
    current = Located(root, None)
    for part in loc:
        members = _members(current.annotation)
        nxt: Located | None = None
        for member in members:
            origin = get_origin(member)
            if isinstance(part, str) and isinstance(member, type) and issubclass(member, BaseModel):
                found = _by_key(member, part)
                if found is not None:
                    _, info = found
                    inner, meta = _strip(info.annotation)
                    nxt = Located(info.annotation if meta is None else inner, info)
            elif isinstance(part, int) and origin in (list, tuple):
                item, meta = _strip(get_args(member)[0])
                nxt = Located(item, meta)
            elif isinstance(part, str) and origin is dict:
                item, meta = _strip(get_args(member)[1])
                nxt = Located(item, meta)
            if nxt is not None:
                break
        if nxt is None:
            return None
        current = nxt
    return current


def known_keys(root: type[BaseModel] | None, loc: Sequence[int | str]) -> list[str]:
    """The YAML keys a mapping at `loc` accepts (its model's fields by alias)."""
    found = field_at(root, loc)
    model = _model(found.annotation) if found is not None else None
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def allowed_values(found: Located | None) -> list[str]:
    """The choices of a Literal or Enum field, as text."""
    if found is None:
        return []
    out: list[str] = []
    for member in _members(found.annotation):
        if get_origin(member) is Literal:
            out += [str(a) for a in get_args(member)]
        elif isinstance(member, type) and issubclass(member, Enum):
            out += [str(m.value) for m in member]
    return out


def field_description(found: Located | None) -> str:
    return (found.info.description or "") if found is not None and found.info is not None else ""


def suggest(word: str, options: Sequence[str]) -> str | None:
    """The known word nearest to a misspelt one: the same word in another case first, then difflib's best match."""
    for option in options:
        if option.lower() == word.lower() and option != word:
            return option
    near = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return near[0] if near else None


def where_else(root: type[BaseModel] | None, key: str, prefix: str = "") -> list[str]:
    """Where else in the model tree a key is a field: for a key written at the wrong level."""
    if root is None:
        return []
    found: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            alias = info.alias or name
            here = f"{path}.{alias}" if path else f"{prefix}{alias}"
            if alias == key:
                found.append(path or "the top level")
            for member in _members(info.annotation):
                origin = get_origin(member)
                inner, step = member, here
                if origin in (list, tuple):
                    inner, step = _strip(get_args(member)[0])[0], f"{here}[]"
                elif origin is dict:
                    inner, step = _strip(get_args(member)[1])[0], f"{here}.<name>"
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    walk(inner, step)

    walk(root, "")
    return found
