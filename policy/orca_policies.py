"""Adapts pulumi_policy's validation arguments to the pure rules of orca_platform.rules.

One ResourceValidationPolicy per resource rule and one StackValidationPolicy per stack rule, named after the rule
and enforced at the rule's level. Rules that need what a preview cannot see are left out (see the docstring of
orca_platform/rules/__init__.py): the audit of the stack export applies them after the update.

Importable without side effects: the PolicyPack(...) call, which starts a gRPC server and never returns, is in
__main__.py only, so tests call these policies' validate functions directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)

from orca_platform.conventions import SECRET_SIG, SIG_KEY
from orca_platform.rules import (
    RULES,
    Enforcement,
    ResourceView,
    Rule,
    RuleContext,
    Violation,
)

PACK_NAME = "orca-platform"
LEVELS = {Enforcement.MANDATORY: EnforcementLevel.MANDATORY, Enforcement.ADVISORY: EnforcementLevel.ADVISORY}


def config_schema() -> PolicyConfigSchema:
    """What every policy accepts in `--policy-pack-config` (besides its enforcementLevel)."""
    return PolicyConfigSchema(
        properties={
            "environment": {"type": "string", "description": "dev or prod; default: from tags and the stack name"},
            "ingressClasses": {"type": "array", "items": {"type": "string"}, "description": "more internal classes"},
            "allowedRegistries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "login servers images may come from; default: those the stack grants AcrPull on",
            },
            "recordsRetentionYears": {
                "type": "integer",
                "description": "years backups stay immutable; default: as the stack declares, else 5",
            },
        }
    )


def _raw(value: Any) -> Any:
    """The container behind one of pulumi_policy's proxies, read without its unknown-value checks.

    The proxies raise on any access to a value a preview cannot know; the rules treat those placeholders as
    'cannot judge' themselves, so one unknown field does not stop every check on the resource.
    """
    try:
        inner = value["__target"]
    except (KeyError, TypeError, IndexError):
        return value
    return inner if isinstance(inner, dict | list) else value


def plain(value: Any) -> Any:
    """Plain dicts and lists from pulumi_policy's (possibly proxied) property values."""
    if isinstance(value, Secret):
        return {SIG_KEY: SECRET_SIG, "value": plain(value.value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in _raw(value).items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in _raw(value)]
    return value


def view_from_args(args: ResourceValidationArgs) -> ResourceView:
    opts = args.opts
    return ResourceView(
        type=args.resource_type,
        urn=args.urn,
        name=args.name,
        props=plain(args.props),
        protect=bool(opts.protect),
        # Neither is visible to an analyzer: see orca_platform/rules/__init__.py.
        retain_on_delete=None,
        secrets_marked=False,
        parent=opts.parent or "",
        additional_secret_outputs=tuple(opts.additional_secret_outputs or ()),
    )


def view_from_resource(res: PolicyResource) -> ResourceView:
    return ResourceView(
        type=res.resource_type,
        urn=res.urn,
        name=res.name,
        props=plain(res.props),
        outputs=plain(res.props),
        protect=bool(res.opts.protect),
        retain_on_delete=None,
        secrets_marked=False,
        parent=res.parent.urn if res.parent else (res.opts.parent or ""),
        dependencies=tuple(d.urn for d in res.dependencies),
        additional_secret_outputs=tuple(res.opts.additional_secret_outputs or ()),
    )


def context_from_config(config: Mapping[str, Any]) -> RuleContext:
    """Policy config (`--policy-pack-config`): optional environment, extra internal ingress classes, allowed
    registries and the records' retention."""
    base = RuleContext()
    env = config.get("environment")
    classes = config.get("ingressClasses") or []
    years = config.get("recordsRetentionYears")
    return RuleContext(
        environment=env if isinstance(env, str) and env else None,
        ingress_classes=base.ingress_classes | frozenset(str(c) for c in classes),
        allowed_registries=tuple(str(r) for r in config.get("allowedRegistries") or []),
        records_retention_years=years if isinstance(years, int) and not isinstance(years, bool) else None,
    )


def _message(v: Violation) -> str:
    return f"[clinic {v.clinic}] {v.message}" if v.clinic else v.message


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for v in rule.run_resource(view_from_args(args), context_from_config(args.get_config())):
            report_violation(_message(v), args.urn)

    return ResourceValidationPolicy(
        name=rule.id,
        description=rule.title,
        validate=validate,
        enforcement_level=LEVELS[rule.enforcement],
        config_schema=config_schema(),
        remediation_steps=rule.why,
    )


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        views = [view_from_resource(r) for r in args.resources]
        if not views:
            return
        ctx = context_from_config(args.get_config()).for_stack(views)
        for v in rule.run_stack(views, ctx):
            report_violation(_message(v), v.urn or None)

    return StackValidationPolicy(
        name=rule.id,
        description=rule.title,
        validate=validate,
        enforcement_level=LEVELS[rule.enforcement],
        config_schema=config_schema(),
        remediation_steps=rule.why,
    )


def all_policies() -> list[Policy]:
    """Every rule a preview can judge, as a policy of the same name and level."""
    policies: list[Policy] = []
    for rule in RULES:
        if not rule.at_preview:
            continue
        policies.append(resource_policy(rule) if rule.scope == "resource" else stack_policy(rule))
    return policies
