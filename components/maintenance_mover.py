"""MaintenanceMover: inside the maintenance window, ORCA pods leave the nodes AKS has cordoned to upgrade them.

Every ORCA server's PodDisruptionBudget forbids evictions, so a node drain alone would wait for ever (and an AKS
node upgrade would fail at its drain timeout). This CronJob, in a namespace of its own, runs every few minutes on the
window's days and acts only while the window is open (orca_platform/safety/maintenance.py). It may list nodes and, in
the
clinic namespaces only (each binds it, in ClinicBackup), list and delete pods; nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.conventions import APP_NAME_LABEL, POD_SECURITY_ENFORCE, platform_labels
from orca_platform.model import settings as model
from orca_platform.plan import naming
from orca_platform.safety.maintenance import MOVER, MOVER_POD_ROLE, MOVER_SCRIPT, NAMESPACE, mover_schedule

from .k8s_objects import ApiObject, dns_egress_rule
from .pod_security import tools_pod_security, tools_security_context

NAME = MOVER
LABELS = {
    APP_NAME_LABEL: NAME,
    **platform_labels(),
    naming.ROLE_LABEL: "maintenance",
}


@dataclass(frozen=True)
class MaintenanceMoverArgs:
    window: model.MaintenanceWindow
    tools_image: str
    clinic_namespaces: Sequence[str]
    pool_selector: dict[str, str]
    pool_taint: tuple[str, str]
    provider: k8s.Provider


class MaintenanceMover(pulumi.ComponentResource):
    def __init__(self, name: str, args: MaintenanceMoverArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:MaintenanceMover", name, None, opts)
        base = pulumi.ResourceOptions(parent=self, provider=args.provider)
        schedule = mover_schedule(args.window)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={**LABELS, POD_SECURITY_ENFORCE: "restricted"},
            ),
            opts=base,
        )
        in_ns = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[ns]))

        def meta(name_: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=name_, namespace=NAMESPACE, labels=LABELS)

        k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=meta(NAME), opts=in_ns)
        subject = k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=NAME, namespace=NAMESPACE)
        k8s.rbac.v1.ClusterRole(
            f"{name}-nodes",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-nodes", labels=LABELS),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=["get", "list"])],
            opts=base,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-nodes",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-nodes", labels=LABELS),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"{NAME}-nodes"
            ),
            subjects=[subject],
            opts=base,
        )
        # Each clinic namespace binds the mover to this (ClinicBackup): it moves ORCA pods, nothing of the platform's.
        k8s.rbac.v1.ClusterRole(
            f"{name}-pods",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=MOVER_POD_ROLE, labels=LABELS),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"], verbs=["get", "list", "delete"])],
            opts=base,
        )

        scripts = k8s.core.v1.ConfigMap(
            f"{name}-script", metadata=meta(NAME), data={"move.sh": MOVER_SCRIPT}, opts=in_ns
        )
        key, value = args.pool_taint
        env = {
            "NAMESPACES": " ".join(args.clinic_namespaces),
            "SELECTOR": f"{naming.ROLE_LABEL}={naming.ORCA_ROLE}",
            "WINDOW_START": str(schedule.start),
            "WINDOW_MINUTES": str(schedule.minutes),
            # kubectl's cache and config; the root file system is read-only.
            "HOME": "/work",
        }
        pod = k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=NAME,
                automount_service_account_token=True,
                restart_policy="Never",
                # On the ORCA pool, like the backup jobs (the system pool runs critical add-ons only); a cordoned
                # node takes no new pod, so the mover always starts on one that stays.
                node_selector=args.pool_selector,
                tolerations=[k8s.core.v1.TolerationArgs(key=key, operator="Equal", value=value, effect="NoSchedule")],
                security_context=tools_pod_security(),
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="mover",
                        image=args.tools_image,
                        command=["/bin/sh", "/scripts/move.sh"],
                        env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()],
                        volume_mounts=[
                            k8s.core.v1.VolumeMountArgs(name="scripts", mount_path="/scripts", read_only=True),
                            k8s.core.v1.VolumeMountArgs(name="work", mount_path="/work"),
                        ],
                        resources=k8s.core.v1.ResourceRequirementsArgs(
                            requests={"cpu": "10m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
                        ),
                        security_context=tools_security_context(),
                    )
                ],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="scripts",
                        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=NAME, default_mode=0o555),
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
                    ),
                ],
            ),
        )
        k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=meta(NAME),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=schedule.cron,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=240,
                successful_jobs_history_limit=1,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS),
                    spec=k8s.batch.v1.JobSpecArgs(backoff_limit=0, active_deadline_seconds=240, template=pod),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[scripts])),
        )
        # Egress to DNS and the API server only; nothing comes in.
        selector = k8s.meta.v1.LabelSelectorArgs(match_labels={naming.ROLE_LABEL: "maintenance"})
        k8s.networking.v1.NetworkPolicy(
            f"{name}-egress",
            metadata=meta(NAME),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=selector, policy_types=["Ingress", "Egress"], egress=[dns_egress_rule()]
            ),
            opts=in_ns,
        )
        ApiObject(
            f"{name}-apiserver",
            api_version="cilium.io/v2",
            kind="CiliumNetworkPolicy",
            metadata=meta(f"{NAME}-apiserver"),
            fields={
                "spec": {
                    "endpointSelector": {"matchLabels": {naming.ROLE_LABEL: "maintenance"}},
                    "egress": [
                        {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
                    ],
                }
            },
            opts=in_ns,
        )
        self.register_outputs({"schedule": schedule.cron})
