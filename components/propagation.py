"""RoleGrantWait: give Azure RBAC time to propagate new role assignments before anything relies on them.

"When you assign roles or remove role assignments, it can take up to 10 minutes for changes to take effect"
(MS docs, "Troubleshoot Azure RBAC": role assignment changes are not being detected). The cluster validates and uses
its identity's grants as soon as it is created, the first internal load balancer right after, and the Kubernetes
provider acts through the operators' grant on the new cluster.

A dynamic provider, not pulumi-time's Sleep: it runs inside the program's own Python, so `pulumi up` downloads no
extra plugin (pulumiverse plugins come from GitHub releases, which a runner without GitHub egress cannot reach).
It waits when created and again only when the grants it follows change (their ids are its triggers).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi import dynamic

# The documented upper bound, above.
PROPAGATION_SECONDS = 600


class _Wait(dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        time.sleep(int(props["seconds"]))
        return dynamic.CreateResult(id_=f"wait-{int(time.time())}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = olds.get("triggers") != news.get("triggers")
        return dynamic.DiffResult(changes=changed, replaces=["triggers"] if changed else [], delete_before_replace=True)


class RoleGrantWait(dynamic.Resource, module="orca", name="RoleGrantWait"):
    seconds: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        grants: Sequence[pulumi.CustomResource],
        seconds: int = PROPAGATION_SECONDS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            _Wait(),
            name,
            {"seconds": seconds, "triggers": [g.id for g in grants]},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(grants))),
        )
