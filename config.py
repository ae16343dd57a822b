"""Stack configuration: the only module that reads Pulumi's config. It hands plain data to the pure core."""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from orca_platform.errors import InputError
from orca_platform.inputs import check_stack_inputs
from orca_platform.stack_plan import StackPlan

PROJECT_DIR = Path(__file__).resolve().parent


def engine_config() -> tuple[dict[str, str], set[str]]:
    """Every config key the engine passed, whatever its namespace, and which of them are secrets.

    pulumi.Config can only look keys up, so an unknown key would go unseen. The whole map is there: the language
    host puts it in PULUMI_CONFIG as JSON (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
    constructConfig) and the exec script loads it with set_all_config into pulumi.runtime.config.CONFIG
    (sdk/python/cmd/pulumi-language-python-exec); mocks and automation inline programs call set_all_config
    directly. get_config reads CONFIG first, then the environment: so do we.
    """
    merged: dict[str, str] = {str(k): str(v) for k, v in runtime_config.get_config_env().items()}
    merged.update({str(k): str(v) for k, v in runtime_config.CONFIG.get().items()})
    secret = {k for k in merged if runtime_config.is_config_secret(k)}
    secret |= set(runtime_config.get_config_secret_keys_env())
    return merged, secret


def load_stack_plan() -> StackPlan:
    """Validate config and tenants and plan the stack, or stop with one clear message before any resource exists."""
    config, secret = engine_config()
    try:
        return check_stack_inputs(config, f"Pulumi.{pulumi.get_stack()}.yaml", PROJECT_DIR, secret_keys=secret)
    except InputError as exc:
        # RunError prints the message alone, without a traceback, and fails the update before anything changes.
        raise pulumi.RunError(str(exc)) from None
