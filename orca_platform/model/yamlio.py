"""Strict YAML reading: syntax errors and duplicate keys become Problems with a line number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that notes every mapping with the same key twice (PyYAML keeps the last one silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []  # key, first line, repeated line (1-based)


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a list or mapping as key): PyYAML reports it itself
            continue
        if first is not None:
            loader.duplicates.append((key, first + 1, key_node.start_mark.line + 1))
        else:
            seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_text(text: str, source: str) -> Any:
    """The document, or InputError with a syntax error, or with every key that appears twice in its mapping."""
    loader = _UniqueKeyLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError([Problem(source=source, field="", message=f"YAML syntax error at {where}{problem}")]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise InputError(
            [
                Problem(
                    source,
                    str(key),
                    f"key {key!r} appears twice (first on line {first}, again on line {again}): YAML keeps only "
                    "the last, silently",
                    fix="keep one of them",
                )
                for key, first, again in loader.duplicates
            ]
        )
    return doc


def load_yaml_file(path: Path, source: str | None = None) -> Any:
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(source=name, field="", message="file not found")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(source=name, field="", message="file is not UTF-8 text")]) from None
    return load_yaml_text(text, name)
