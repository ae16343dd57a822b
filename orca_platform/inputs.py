"""The stack's config and its tenants file, checked in one run: every problem reported at once, in the order a person
fixes them (each field, then across clinics, then the clinics against the stack), or a plan.

The program (config.py) and the offline tools call this with the config map the engine would hand the program.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .model.catalogue import Catalogue, load_catalogue
from .model.config_file import raw_settings, settings_from_config
from .model.errors import InputError, Problem
from .model.settings import Settings
from .model.tenants import TenantsFile, check_tenants
from .model.yamlio import load_yaml_file
from .plan.capacity import plan_capacity
from .plan.stack_plan import StackPlan, plan_stack, stack_problems
from .plan.storage import StorageRefusedError, strategy


def tenants_file_name(settings: Settings | None, raw: Mapping[str, Any]) -> str:
    """The tenants file the stack names; read from the raw value when the settings as a whole did not validate."""
    if settings is not None:
        return settings.tenants_file
    named = raw.get("tenantsFile")
    if isinstance(named, str) and named:
        return named
    return str(Settings.model_fields["tenants_file"].default)


def _capacity_problems(settings: Settings, tenants: TenantsFile, catalogue: Catalogue, source: str) -> list[Problem]:
    """Density and pool problems of the clinics that can be planned at all (known size, storage that may hold data)."""
    try:
        strategy(settings.storage.strategy, settings.storage.sku)
    except StorageRefusedError:
        return []
    plannable = []
    for c in tenants.clinics:
        try:
            if c.storage is not None:
                strategy(c.storage, settings.storage.sku)
        except StorageRefusedError:
            continue
        if c.size in catalogue.clinic_sizes:
            plannable.append(c)
    if not plannable or settings.cluster.orca_pool.vm_size not in catalogue.node_sizes.sizes:
        return []
    subset = TenantsFile.model_construct(clinics=plannable, retired_clinic_ids=tenants.retired_clinic_ids)
    try:
        plan_capacity(settings, subset, catalogue, source)
    except InputError as exc:
        return exc.problems
    return []


def check_stack_inputs(
    config: Mapping[str, Any],
    config_source: str,
    project_dir: Path,
    *,
    secret_keys: Iterable[str] = (),
    catalogue: Catalogue | None = None,
) -> StackPlan:
    """The plan of a stack, or InputError with every problem of its config and tenants file."""
    problems: list[Problem] = []
    settings: Settings | None = None
    try:
        settings = settings_from_config(config, config_source, secret_keys)
    except InputError as exc:
        problems += exc.problems
    tenants_name = tenants_file_name(settings, raw_settings(config, config_source))
    path = Path(tenants_name)
    if not path.is_absolute():
        path = project_dir / path
    tenants: TenantsFile | None = None
    try:
        tenants, found = check_tenants(load_yaml_file(path, tenants_name), tenants_name)
        problems += found
    except InputError as exc:
        problems += exc.problems
    catalogue = catalogue or load_catalogue()
    if settings is None or tenants is None:
        raise InputError(problems)
    problems += stack_problems(settings, tenants, catalogue, tenants_name, config_source)
    if problems:
        problems += _capacity_problems(settings, tenants, catalogue, config_source)
        raise InputError(problems)
    return plan_stack(settings, tenants, catalogue, tenants_name, config_source)
