"""Stack configuration: the only module that reads `pulumi.Config`. It hands plain data to the pure core."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pulumi

from orca_platform.catalogue import load_catalogue
from orca_platform.errors import InputError
from orca_platform.settings import CONFIG_KEYS, NAMESPACE, parse_settings
from orca_platform.stack_plan import StackPlan, plan_stack
from orca_platform.tenants import load_tenants

PROJECT_DIR = Path(__file__).resolve().parent


def read_raw_config() -> dict[str, Any]:
    """Every `orca-platform:*` key, structured values decoded (Pulumi hands objects over as JSON text)."""
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = cfg.get(key)
        if value is None:
            continue
        if value[:1] in ("{", "["):
            value = json.loads(value)
        raw[key] = value
    return raw


def load_stack_plan() -> StackPlan:
    """Validate config and tenants and plan the stack, or stop with one clear message before any resource exists."""
    config_source = f"Pulumi.{pulumi.get_stack()}.yaml"
    try:
        settings = parse_settings(read_raw_config(), config_source)
        path = Path(settings.tenants_file)
        if not path.is_absolute():
            path = PROJECT_DIR / path
        tenants = load_tenants(path, settings.tenants_file)
        return plan_stack(settings, tenants, load_catalogue(), settings.tenants_file, config_source)
    except InputError as exc:
        # RunError prints the message alone, without a traceback, and fails the update before anything changes.
        raise pulumi.RunError(str(exc)) from None


def source_commit() -> str:
    """The commit of the program being deployed, for the audit trail: set by CI (GITHUB_SHA) or the operator."""
    return os.environ.get("ORCA_SOURCE_COMMIT") or os.environ.get("GITHUB_SHA") or ""
