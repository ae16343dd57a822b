"""Read a Pulumi.<stack>.yaml without the Pulumi CLI: for tools that plan or check a stack offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputError, Problem
from .settings import NAMESPACE
from .yamlio import load_yaml_file


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `orca-platform:*` keys of a stack file, without the namespace prefix."""
    doc = load_yaml_file(path, path.name) or {}
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise InputError([Problem(path.name, "config", "must be a mapping of stack settings")])
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in config.items():
        if not str(key).startswith(prefix):
            continue
        if isinstance(value, dict) and "secure" in value:
            raise InputError([Problem(path.name, str(key), "is encrypted; offline tools cannot read secrets")])
        raw[str(key)[len(prefix) :]] = value
    return raw
