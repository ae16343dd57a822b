"""orca-platform: one ORCA server per clinic on a private AKS cluster reached over VPN."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from components import (
    Cluster,
    ClusterArgs,
    IngressController,
    IngressControllerArgs,
    Network,
    NetworkArgs,
    OrcaTenant,
    OrcaTenantArgs,
)
from components.admission_guard import AdmissionGuard, AdmissionGuardArgs
from components.backup_storage import BackupStorage, BackupStorageArgs
from components.clinic_backup import BackupTarget
from components.cluster import ORCA_POOL_LABEL, ORCA_POOL_VALUE
from components.maintenance_mover import MaintenanceMover, MaintenanceMoverArgs
from components.monitoring import Monitoring, MonitoringArgs
from config import kubernetes_layer, load_deployment, load_stack_plan, source_commit
from orca_platform.monitoring import alerts
from orca_platform.plan import naming

# Before the first resource: the input validated and planned; a Kubernetes layer this machine cannot reach stops the
# run, naming the setting (README, "First deployment"); then the plan compared with what the stack last deployed
# (the StackReference that reads it is the one resource registered before a refusal).
plan = load_stack_plan()
s = plan.settings
with_kubernetes = kubernetes_layer(s)
deployment = load_deployment(plan)
# The plan as compared with the stack's history: which clinics' live volumes already hold data.
plan = deployment.plan
# Role assignment names are unique across the Entra tenant: every stack's seed includes its subscription.
subscription_id = authorization.get_client_config().subscription_id
env = s.environment.value
tags = {"project": "orca-platform", "environment": env, **s.tags}
prod = env == "prod"

network = Network(
    "network",
    NetworkArgs(
        settings=s.network,
        location=s.location,
        names={kind: naming.azure_name(s, kind) for kind in ("rg", "vnet", "vgw", "pip-vpn", "dnspr")},
        tags=tags,
        dns_records=[(c.dns_record, s.ingress.private_ip) for c in plan.clinics],
        private_api_server=s.cluster.private_api_server,
    ),
)

cluster = Cluster(
    "cluster",
    ClusterArgs(
        settings=s.cluster,
        network=s.network,
        capacity=plan.capacity,
        storage_classes=plan.storage_classes,
        location=s.location,
        name=naming.azure_name(s, "aks"),
        resource_group_name=network.resource_group_name,
        data_resource_group=naming.azure_name(s, "rg") + "-data",
        vnet_id=network.vnet_id,
        node_subnet_id=network.node_subnet_id,
        tags=tags,
        surge_nodes=s.capacity.surge_nodes,
        kubernetes_layer=with_kubernetes,
        cluster_identifier=naming.cluster_identifier(s),
        prometheus_labels_allowlist=alerts.KSM_LABELS,
    ),
)

backups = BackupStorage(
    "backup",
    BackupStorageArgs(
        settings=s.backup,
        name_prefix=f"{s.name_prefix}{env}",
        resource_group=naming.azure_name(s, "rg") + "-backup",
        location=s.location,
        vnet_id=network.vnet_id,
        private_endpoint_subnet_id=network.private_endpoint_subnet_id,
        tags=tags,
    ),
)


def backup_target(snapshot_driver: str) -> BackupTarget:
    return BackupTarget(
        account_id=backups.account_id,
        blob_url=backups.blob_url,
        resource_group_name=backups.resource_group_name,
        location=s.location,
        oidc_issuer_url=cluster.oidc_issuer_url,
        subscription_id=subscription_id,
        snapshot_class=cluster.snapshot_class_names[snapshot_driver],
        tags=tags,
        name_seed=naming.stack_seed(subscription_id, naming.azure_name(s, "backup")),
    )


pulumi.export("clusterName", cluster.name)
pulumi.export("dnsZone", network.dns_zone)
pulumi.export("dnsResolverInboundIp", network.dns_resolver_ip)
pulumi.export("vpnGatewayPublicIp", network.vpn_public_ip)
pulumi.export("backupAccount", backups.account_name)
pulumi.export("backupRetention", backups.retention_checked)
pulumi.export("kubernetesLayer", with_kubernetes)
pulumi.export(
    "capacity",
    {
        "vmSize": plan.capacity.chosen.vm_size,
        "storage": plan.capacity.chosen.storage,
        "clinicsPerNode": plan.capacity.chosen.per_node,
        "bindingLimit": plan.capacity.chosen.binding,
        "nodes": plan.capacity.pool_min_count,
    },
)

if cluster.provider is not None:
    provider = cluster.provider
    ingress = IngressController(
        "ingress",
        IngressControllerArgs(settings=s.ingress, ilb_subnet_name=network.ilb_subnet_name, provider=provider),
    )
    tenants = [
        OrcaTenant(
            clinic.id,
            OrcaTenantArgs(
                plan=clinic,
                orca=s.orca,
                ingress=s.ingress,
                ilb_subnet_name=network.ilb_subnet_name,
                pool_selector={ORCA_POOL_LABEL: ORCA_POOL_VALUE},
                pool_taint=(ORCA_POOL_LABEL, ORCA_POOL_VALUE),
                provider=provider,
                backup=s.backup,
                backup_target=backup_target(clinic.storage.snapshot_driver),
                clinic_facing_cidrs=(s.network.pod_cidr, s.network.service_cidr, s.network.ilb_subnet_cidr),
                private_endpoint_cidr=s.network.private_endpoint_subnet_cidr,
            ),
            opts=pulumi.ResourceOptions(depends_on=[ingress]),
        )
        for clinic in plan.clinics
    ]
    # The cluster refuses what would destroy clinic data, whoever asks (docs/runbooks.md, break glass).
    AdmissionGuard(
        "admission-guard",
        AdmissionGuardArgs(
            break_glass_group=s.cluster.break_glass_group,
            storage_classes=cluster.storage_class_names,
            snapshot_classes=sorted(cluster.snapshot_class_names.values()),
            provider=provider,
        ),
    )
    # ORCA pods never leave a node by eviction (their PodDisruptionBudgets): inside the maintenance window this moves
    # them off the nodes AKS cordons for an upgrade (docs/data-safety.md, disruptions).
    MaintenanceMover(
        "maintenance",
        MaintenanceMoverArgs(
            window=s.cluster.maintenance_window,
            tools_image=s.backup.tools_image,
            clinic_namespaces=[t.namespace for t in tenants],
            pool_selector={ORCA_POOL_LABEL: ORCA_POOL_VALUE},
            pool_taint=(ORCA_POOL_LABEL, ORCA_POOL_VALUE),
            provider=provider,
        ),
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            settings=s.monitoring,
            groups=alerts.rule_groups(s.monitoring, plan.clinics, s.ingress.namespace, env),
            scrape_settings=alerts.metrics_settings(s.ingress.namespace),
            location=s.location,
            resource_group_name=network.resource_group_name,
            cluster_id=cluster.id,
            cluster_name=cluster.name,
            names={
                "workspace": naming.azure_name(s, "amw"),
                # Azure's onboarding names both MSProm-<region>-<cluster>; at most 44 characters for the endpoint.
                "collection": f"MSProm-{s.location}-{naming.azure_name(s, 'aks')}"[:44],
                "actionGroup": naming.azure_name(s, "ag"),
            },
            tags=tags,
            provider=provider,
        ),
    )
    pulumi.export("monitoringWorkspaceId", monitoring.workspace_id)
    pulumi.export("ingressPrivateIp", ingress.private_ip)
    pulumi.export("ingressClass", ingress.class_name)
    pulumi.export(
        "clinics",
        {
            t_plan.id: {
                "name": t_plan.name,
                "state": t_plan.state,
                "fqdn": tenant.hostname,
                "privateIp": tenant.private_ip,
                "namespace": tenant.namespace,
                "storageClass": t_plan.storage.storage_class,
                "volume": f"{t_plan.claim_gib}Gi",
                "image": t_plan.image,
            }
            for t_plan, tenant in zip(plan.clinics, tenants, strict=True)
        },
    )
# What the next update is compared with (orca_platform/safety/history.py). Plain data, no secret.
pulumi.export("orcaHistory", deployment.history)
# Audit trail (tools/audit/evidence.py): which program commit made this update, and which clinic ids are retired.
pulumi.export("sourceCommit", source_commit())
pulumi.export("retiredClinicIds", list(plan.retired_clinic_ids))
