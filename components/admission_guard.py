"""AdmissionGuard: ValidatingAdmissionPolicies that refuse deleting or releasing clinic data in the cluster itself.

The policies (orca_platform/safety/admission.py) are built into the API server since Kubernetes 1.30
(admissionregistration.k8s.io/v1): no webhook to run or keep available, and failurePolicy Fail, so a policy that
cannot be evaluated refuses rather than lets through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.backup import backup_plan
from orca_platform.conventions import platform_labels
from orca_platform.safety.admission import CLINIC_LABEL, GuardPolicy, guard_policies

LABELS = platform_labels()


@dataclass(frozen=True)
class AdmissionGuardArgs:
    break_glass_group: str | None
    storage_classes: Sequence[str]
    snapshot_classes: Sequence[str]
    provider: k8s.Provider


class AdmissionGuard(pulumi.ComponentResource):
    policy_names: list[str]

    def __init__(self, name: str, args: AdmissionGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:AdmissionGuard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.policy_names = []
        for policy in guard_policies(args.break_glass_group, args.storage_classes, args.snapshot_classes):
            vap = self._policy(policy, child)
            self._binding(policy, pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[vap])))
            self.policy_names.append(policy.name)

        # What a clinic's backup account may do to snapshot contents (cluster-scoped, so a ClusterRole bound per
        # clinic in ClinicBackup): hand a pruned one to the snapshot controller. The guard above narrows it to the
        # scheduled snapshots of the account's own namespace.
        k8s.rbac.v1.ClusterRole(
            "backup-snapshot-contents",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=backup_plan.CONTENT_ROLE, labels=LABELS),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["snapshot.storage.k8s.io"],
                    resources=["volumesnapshotcontents"],
                    verbs=["get", "patch"],
                )
            ],
            opts=child,
        )
        self.register_outputs({"policies": self.policy_names})

    @staticmethod
    def _policy(
        policy: GuardPolicy, opts: pulumi.ResourceOptions
    ) -> k8s.admissionregistration.v1.ValidatingAdmissionPolicy:
        ar = k8s.admissionregistration.v1
        return ar.ValidatingAdmissionPolicy(
            policy.name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy.name, labels=LABELS),
            spec=ar.ValidatingAdmissionPolicySpecArgs(
                # An expression that cannot be evaluated refuses the request.
                failure_policy="Fail",
                match_constraints=ar.MatchResourcesArgs(
                    resource_rules=[
                        ar.NamedRuleWithOperationsArgs(
                            api_groups=[rule.api_group],
                            api_versions=["*"],
                            resources=list(rule.resources),
                            operations=list(rule.operations),
                        )
                        for rule in policy.rules
                    ]
                ),
                match_conditions=[
                    ar.MatchConditionArgs(name=c.name, expression=c.expression) for c in policy.match_conditions
                ]
                or None,
                variables=[ar.VariableArgs(name=v.name, expression=v.expression) for v in policy.variables],
                validations=[
                    ar.ValidationArgs(expression=v.expression, message=v.message, reason="Forbidden")
                    for v in policy.validations
                ],
            ),
            opts=opts,
        )

    @staticmethod
    def _binding(policy: GuardPolicy, opts: pulumi.ResourceOptions) -> None:
        ar = k8s.admissionregistration.v1
        ar.ValidatingAdmissionPolicyBinding(
            policy.name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy.name, labels=LABELS),
            spec=ar.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=policy.name,
                validation_actions=["Deny"],
                # For a Namespace itself the selector is matched against its own labels; cluster-scoped objects
                # are never excluded by it (their policies match on their class instead).
                match_resources=ar.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_expressions=[
                            k8s.meta.v1.LabelSelectorRequirementArgs(key=CLINIC_LABEL, operator="Exists")
                        ]
                    )
                )
                if policy.clinic_namespaces
                else None,
            ),
            opts=opts,
        )
