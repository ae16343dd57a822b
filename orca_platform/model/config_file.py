"""The one strict reader of a stack's `orca-platform:*` config, from the engine's config map or from the file.

Under `pulumi up`/`preview` the engine hands the program the whole config map (config.py); offline tools read
Pulumi.<stack>.yaml into the same shape (`read_stack_file`). Both then go through `settings_from_config`, so the
program, synth, plan, checks and the tests judge a stack file alike:
- every `orca-platform:*` key is read, not just the known ones: an unknown key is an error with the nearest known key
  (or where a misplaced key belongs), nested ones too (the models forbid extra keys);
- a key given twice (in the file, or as `orca-platform:x` and its old spelling `orca-platform:config:x`) is an error,
  and so is a duplicate key anywhere in the YAML file (yamlio);
- a namespace one typo away from `orca-platform` is an error, not another project's setting.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

from .errors import InputError, Problem, show
from .schema_help import _members, suggest, where_else
from .settings import NAMESPACE, Settings, parse_settings
from .yamlio import load_yaml_file

PREFIX = f"{NAMESPACE}:"
# The engine still accepts `<namespace>:config:<name>` for `<namespace>:<name>` (pulumi/pulumi
# sdk/go/common/resource/config/key.go, ParseKey).
OLD_PREFIX = f"{NAMESPACE}:config:"


def _accepts_text(key: str) -> bool:
    """Whether a top-level setting is itself text (then the engine's string is its value, not JSON to decode)."""
    for name, info in Settings.model_fields.items():
        if key in (info.alias, name):
            return any(
                member is str or get_origin(member) is Literal or (isinstance(member, type) and issubclass(member, str))
                for member in _members(info.annotation)
            )
    return False


def _decode(key: str, value: Any) -> Any:
    """Pulumi hands structured values to the program as JSON text; a text setting stays text."""
    if not isinstance(value, str) or _accepts_text(key):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _namespace_typo(namespace: str) -> bool:
    return namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace, NAMESPACE).ratio() >= 0.8


def decode_config(config: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[Problem]]:
    """The `orca-platform:*` keys of an engine-shaped config map without the prefix, values decoded; and what is
    wrong with the map itself (a misspelt namespace, one setting given twice)."""
    raw: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    problems: list[Problem] = []
    for key in config:
        text = str(key)
        namespace, sep, name = text.partition(":")
        if not sep:
            continue  # read_stack_file reports these; the engine never passes one
        if namespace != NAMESPACE:
            if _namespace_typo(namespace):
                message = f"is in namespace '{namespace}', not this project's"
                problems.append(Problem(source, text, message, fix=f"did you mean '{PREFIX}{name}'?"))
            continue
        if text.startswith(OLD_PREFIX):
            name = text[len(OLD_PREFIX) :]
        if name in spelled:
            problems.append(
                Problem(
                    source,
                    text,
                    f"sets the same setting as {spelled[name]}: Pulumi would keep only one of them",
                    fix="keep one",
                )
            )
            continue
        spelled[name] = text
        raw[name] = _decode(name, config[key])
    return raw, problems


def settings_from_config(config: Mapping[str, Any], source: str, secret_keys: Iterable[str] = ()) -> Settings:
    """Validated settings from an engine-shaped config map, or InputError listing every problem at once."""
    secret = frozenset(k.removeprefix(PREFIX) for k in secret_keys)
    raw, problems = decode_config(config, source)
    try:
        settings = parse_settings(raw, source, hidden=secret)
    except InputError as exc:
        raise InputError(problems + exc.problems) from None
    if problems:
        raise InputError(problems)
    return settings


def read_stack_file(path: Path, source: str | None = None) -> dict[str, str]:
    """A Pulumi.<stack>.yaml as the engine would hand it to the program: every key, structured values as JSON text.

    Refused here, as the CLI refuses them: a key without a namespace (ParseKey); refused because offline tools cannot
    decrypt them: secure values. Duplicate keys anywhere in the file are refused by the YAML loader.
    """
    name = source or path.name
    doc = load_yaml_file(path, name)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError([Problem(name, "", "must be a mapping with a 'config' key")])
    config = doc.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InputError([Problem(name, "config", "must be a mapping of stack settings")])
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in config.items():
        text = str(key)
        if ":" not in text:
            belongs = where_else(Settings, text, PREFIX)
            if text in {info.alias or n for n, info in Settings.model_fields.items()}:
                fix = f"write {PREFIX}{text}"
            elif belongs:
                fix = f"'{text}' is a field of {' or '.join(belongs)}: indent it under that key"
            else:
                near = suggest(text, [info.alias or n for n, info in Settings.model_fields.items()])
                fix = f"write {PREFIX}{near or text}"
            problems.append(
                Problem(name, text, "has no namespace, so Pulumi refuses the whole file", value=show(value), fix=fix)
            )
            continue
        if isinstance(value, dict) and "secure" in value:
            problems.append(Problem(name, text, "is encrypted; offline tools cannot read secrets"))
            continue
        out[text] = value if isinstance(value, str) else json.dumps(value)
    if problems:
        raise InputError(problems)
    return out


def raw_settings(config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The decoded `orca-platform:*` values (for tests and tools that edit them), problems ignored."""
    return decode_config(config, source)[0]
