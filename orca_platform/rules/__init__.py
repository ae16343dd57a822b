"""The platform's compliance rules, written once as plain functions over (type, properties, options).

The same functions judge a planned change at `pulumi preview` (the policy pack in policy/ adapts pulumi_policy's
arguments to `ResourceView`) and a deployed stack in an audit (tools/audit/report.py adapts a `pulumi stack export`).
Properties are the engine's camelCase shape, as a policy's `args.props` and an export's `inputs` both carry them.

Two things a preview cannot see, so the rules that need them run in the audit only (`Rule.at_preview=False`):
- secret markers: pulumi_policy hands `validate` plain values (it unwraps secrets before the call);
- `retainOnDelete`: the analyzer protocol carries no such option.

Pure: stdlib only, no Pulumi import, so the policy pack's own virtualenv can load it (tests/test_layers.py imports
the package with policy/venv's interpreter; pyproject's import contract forbids the rest of the core).

The package: `values` (reading the engine's values), `view` (one resource), `kubernetes` (workloads, containers),
`credentials` (what looks like one), `context` (what a rule knows of the stack), `registry` (rules, domains,
`evaluate`), then one module per domain. The order of the domains is set here, explicitly: it is the order of
docs/audit.md's tables (`make rule-table` writes them from the registry).

May import: the standard library, orca_platform.conventions and orca_platform.safety.prod_floors (standard library
only as well); nothing that pulls in pydantic or PyYAML.
"""

from __future__ import annotations

from . import backups, cloud, data, exposure, secrets, workloads
from .context import RuleContext, clinic_of, environment_of, is_prod
from .credentials import credential_key, credential_value
from .exposure import PUBLIC_IP_TYPES
from .kubernetes import claims_mounted, containers, each_container, each_image, pod_spec
from .registry import (
    DOMAINS,
    RULES,
    Domain,
    Enforcement,
    Finding,
    Rule,
    Violation,
    evaluate,
    order_domains,
    rules_by_id,
)
from .values import ENCRYPTED, as_list, as_map, as_text, dig, is_secret, is_unknown, number, truthy, unwrap
from .view import ResourceView

# Importing a domain registers its rules; this is their order in the registry, the policy pack and docs/audit.md.
order_domains([data.DOMAIN, backups.DOMAIN, exposure.DOMAIN, cloud.DOMAIN, workloads.DOMAIN, secrets.DOMAIN])

__all__ = [
    "DOMAINS",
    "ENCRYPTED",
    "PUBLIC_IP_TYPES",
    "RULES",
    "Domain",
    "Enforcement",
    "Finding",
    "ResourceView",
    "Rule",
    "RuleContext",
    "Violation",
    "as_list",
    "as_map",
    "as_text",
    "claims_mounted",
    "clinic_of",
    "containers",
    "credential_key",
    "credential_value",
    "dig",
    "each_container",
    "each_image",
    "environment_of",
    "evaluate",
    "is_prod",
    "is_secret",
    "is_unknown",
    "number",
    "pod_spec",
    "rules_by_id",
    "truthy",
    "unwrap",
]
