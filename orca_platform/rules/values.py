"""Reading property values as the engine hands them: secrets, unknowns and loosely typed scalars.

A preview's properties carry the engine's unknown marker where Azure has not answered yet; an export carries secret
envelopes. Every rule reads values through these functions, so neither ever reaches a comparison as if it were data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..conventions import SECRET_SIG, SIG_KEY, UNKNOWN_VALUES


class _Encrypted:
    """Stands for a secret whose ciphertext the audit cannot (and must not) read."""

    def __repr__(self) -> str:
        return "<encrypted>"


ENCRYPTED = _Encrypted()


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
