"""Cluster: AKS with a system pool and a dedicated ORCA pool, its identity, storage classes and Kubernetes provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import authorization, containerservice, managedidentity, resources

from orca_platform.conventions import CLINIC_DATA, DATA_LABEL, POOL_LABEL
from orca_platform.kubeconfig import convert_kubeconfig
from orca_platform.model import settings as model
from orca_platform.plan import naming
from orca_platform.plan.capacity import CapacityPlan
from orca_platform.plan.storage import StorageStrategy, snapshot_parameters

from .k8s_objects import ApiObject
from .propagation import RoleGrantWait

# Built-in roles of the cluster's control-plane identity:
# - Network Contributor on the network group: internal load balancer frontends in snet-ilb, and what the Azure Files
#   driver does for each NFS share's private endpoint (it turns off private-endpoint policies on the node subnet,
#   joins its NSG, and creates the endpoint, its privatelink zone and VNet link in the VNet's group);
# - Contributor on the clinic data group: the CSI drivers create the shares, disks and snapshots there;
# - Storage File Data Privileged Contributor there too: the Files driver's OAuth data-plane calls (snapshot restore
#   into a private-endpoint account; azurefile-csi-driver docs/driver-parameters.md, "useDataPlaneAPI: oauth").
# The backup archives live in a group of their own, out of its reach.
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
# "Azure Kubernetes Service RBAC Cluster Admin", granted to the operators' Entra groups.
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
# "AcrPull", for the kubelet identity on the operator's registry.
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ORCA_POOL_LABEL = POOL_LABEL
ORCA_POOL_VALUE = "orca"
ORCA_TAINT = f"{ORCA_POOL_LABEL}={ORCA_POOL_VALUE}:NoSchedule"


@dataclass(frozen=True)
class ClusterArgs:
    settings: model.Cluster
    network: model.Network
    capacity: CapacityPlan
    storage_classes: tuple[StorageStrategy, ...]
    location: str
    name: str
    resource_group_name: pulumi.Input[str]
    data_resource_group: str
    vnet_id: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    tags: dict[str, str]
    surge_nodes: int
    # Stable name of the cluster for the Kubernetes provider (naming.cluster_identifier): plain text, never an output.
    cluster_identifier: str
    # False in phase 1 of a first deployment: no Kubernetes provider and nothing created through it.
    kubernetes_layer: bool = True
    # Managed Prometheus (components/monitoring.py): the kube-state-metrics label allowlist; None leaves it off.
    prometheus_labels_allowlist: str | None = None


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    id: pulumi.Output[str]
    provider: k8s.Provider | None
    oidc_issuer_url: pulumi.Output[str]
    orca_pool_name: str
    storage_class_names: list[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:Cluster", name, None, opts)
        c = args.settings
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        identity = managedidentity.UserAssignedIdentity(
            "id-aks",
            resource_name_=f"id-{args.name}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        # Clinic volumes and their snapshots live here, not in AKS's node resource group, which Azure deletes with
        # the cluster: losing or rebuilding the cluster must never take a clinic's records with it.
        data_group = resources.ResourceGroup(
            "rg-data",
            resource_group_name=args.data_resource_group,
            location=args.location,
            tags={**args.tags, "dataClass": "clinic-records"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

        def role_id(role: str) -> pulumi.Output[str]:
            return client.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
            )

        def group_id(name: pulumi.Input[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(client.subscription_id, name).apply(
                lambda v: f"/subscriptions/{v[0]}/resourceGroups/{v[1]}"
            )

        def grant(
            resource: str,
            purpose: str,
            role: str,
            scope: pulumi.Input[str],
            principal: pulumi.Input[str],
            principal_type: str = "ServicePrincipal",
            description: str | None = None,
        ) -> authorization.RoleAssignment:
            """A built-in role on a scope, under a GUID of the subscription, scope, role and principal."""
            guid = pulumi.Output.all(client.subscription_id, scope, principal).apply(
                lambda v: naming.assignment_guid(v[0], v[1], role, v[2])
            )
            return authorization.RoleAssignment(
                resource,
                role_assignment_name=guid,
                scope=scope,
                principal_id=principal,
                principal_type=principal_type,
                role_definition_id=role_id(role),
                description=description,
                opts=child,
            )

        roles = [
            grant(f"ra-aks-{purpose}", f"cluster-identity-{purpose}", role, scope, identity.principal_id)
            for purpose, role, scope in (
                ("network-rg", NETWORK_CONTRIBUTOR, group_id(args.resource_group_name)),
                ("clinic-data", CONTRIBUTOR, data_group.id),
                ("clinic-file-data", FILE_DATA_PRIVILEGED_CONTRIBUTOR, data_group.id),
            )
        ]
        # The cluster checks and uses these grants from its first minute (subnet join, the first internal LB).
        roles_settled = RoleGrantWait("wait-aks-identity-roles", roles, opts=child)

        zones = list(c.zones) or None
        mw = c.maintenance_window
        aks = containerservice.ManagedCluster(
            "aks",
            resource_name_=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=args.name,
            kubernetes_version=c.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=c.sku_tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED, user_assigned_identities=[identity.id]
            ),
            # The system pool runs only critical add-ons (CoreDNS, metrics, CSI controllers, the ingress controller):
            # clinic pods can never starve them.
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name="system",
                    mode="System",
                    os_type="Linux",
                    os_sku="Ubuntu",
                    vm_size=c.system_pool.vm_size,
                    enable_auto_scaling=True,
                    count=c.system_pool.min_count,
                    min_count=c.system_pool.min_count,
                    max_count=c.system_pool.max_count,
                    max_pods=c.system_pool.max_pods,
                    availability_zones=zones,
                    vnet_subnet_id=args.node_subnet_id,
                    node_taints=["CriticalAddonsOnly=true:NoSchedule"],
                    enable_node_public_ip=False,
                    type="VirtualMachineScaleSets",
                    upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="1"),
                )
            ],
            # Azure CNI Overlay: pods take overlay addresses, so 20+ pods per node cost no subnet addresses;
            # Cilium enforces the clinics' NetworkPolicies.
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                pod_cidr=args.network.pod_cidr,
                service_cidr=args.network.service_cidr,
                dns_service_ip=args.network.dns_service_ip,
                load_balancer_sku="standard",
                # Egress only (SNAT for image pulls and Azure APIs); no inbound rule is ever attached to it.
                outbound_type="loadBalancer",
            ),
            # Entra ID for every person and pipeline; Kubernetes RBAC decisions made by Azure RBAC.
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True, enable_azure_rbac=True, admin_group_object_ids=c.admin_group_object_ids or None
            ),
            # Local accounts bypass Entra ID and leave no per-person audit trail.
            disable_local_accounts=c.disable_local_accounts,
            enable_rbac=True,
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=c.private_api_server,
                # Only the private FQDN (in the VNet's privatelink zone): no public DNS record of an internal
                # address, and one name for the kubeconfig and the reachability check (config.py).
                enable_private_cluster_public_fqdn=False if c.private_api_server else None,
                authorized_ip_ranges=None if c.private_api_server else c.authorized_ip_ranges,
                disable_run_command=True,
            ),
            storage_profile=containerservice.ManagedClusterStorageProfileArgs(
                disk_csi_driver=containerservice.ManagedClusterStorageProfileDiskCSIDriverArgs(enabled=True),
                file_csi_driver=containerservice.ManagedClusterStorageProfileFileCSIDriverArgs(enabled=True),
                snapshot_controller=containerservice.ManagedClusterStorageProfileSnapshotControllerArgs(enabled=True),
            ),
            # Workload identity lets each clinic's backup job write only its own dumps, with no stored key.
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
                image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=168
                ),
            ),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=c.upgrade_channel, node_os_upgrade_channel=c.node_os_upgrade_channel
            ),
            auto_scaler_profile=containerservice.ManagedClusterPropertiesAutoScalerProfileArgs(
                # A drained ORCA pod waits for PostgreSQL to stop; give it the time its grace period promises.
                max_graceful_termination_sec="900",
                expander="least-waste",
            ),
            # The ama-metrics agents of Azure Monitor managed Prometheus (its workspace and rules: Monitoring).
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(
                    enabled=True,
                    kube_state_metrics=containerservice.ManagedClusterAzureMonitorProfileKubeStateMetricsArgs(
                        metric_labels_allowlist=args.prometheus_labels_allowlist
                    ),
                )
            )
            if args.prometheus_labels_allowlist is not None
            else None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[roles_settled],
                # The autoscaler owns the system pool's live node count.
                ignore_changes=["agentPoolProfiles[0].count"],
                # Replacing the cluster takes every clinic offline: never as a side effect of a setting change.
                protect=True,
            ),
        )
        self.name = aks.name
        self.id = aks.id

        cap = args.capacity
        pool = containerservice.AgentPool(
            "pool-orca",
            agent_pool_name="orca",
            resource_name_=aks.name,
            resource_group_name=args.resource_group_name,
            mode="User",
            os_type="Linux",
            os_sku="Ubuntu",
            vm_size=cap.chosen.vm_size,
            enable_auto_scaling=True,
            # Sized by the capacity plan: clinics' requests plus one spare node for a node failure.
            count=cap.pool_min_count,
            min_count=cap.pool_min_count,
            max_count=cap.pool_max_count,
            max_pods=cap.max_pods,
            availability_zones=zones,
            vnet_subnet_id=args.node_subnet_id,
            node_labels={ORCA_POOL_LABEL: ORCA_POOL_VALUE},
            node_taints=[ORCA_TAINT],
            enable_node_public_ip=False,
            type="VirtualMachineScaleSets",
            upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(
                max_surge=str(args.surge_nodes),
                # ORCA pods stop PostgreSQL cleanly in their preStop hook: let the drain wait for it.
                drain_timeout_in_minutes=30,
            ),
            # The autoscaler owns the live count (see README, "Adding clinics"); replacing the pool (a new VM size)
            # moves every clinic at once, so it is a deliberate act (`pulumi state unprotect`), not a side effect.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["count"], protect=True),
        )
        self.orca_pool_name = "orca"

        window = containerservice.MaintenanceWindowArgs(
            schedule=containerservice.ScheduleArgs(
                weekly=containerservice.WeeklyScheduleArgs(day_of_week=mw.day_of_week, interval_weeks=1)
            ),
            duration_hours=mw.duration_hours,
            start_time=mw.start_time,
            utc_offset=mw.utc_offset,
        )
        for config_name in ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"):
            containerservice.MaintenanceConfiguration(
                f"mc-{config_name}",
                config_name=config_name,
                resource_name_=aks.name,
                resource_group_name=args.resource_group_name,
                maintenance_window=window,
                opts=child,
            )

        # The kubelet pulls ORCA and the backup tools from the operator's registry with its own identity: no pull
        # secret to rotate or leak.
        pulls: list[authorization.RoleAssignment] = []
        if c.container_registry_id:
            kubelet = aks.identity_profile.apply(_kubelet_object_id)
            pulls.append(
                grant(
                    "ra-kubelet-acrpull",
                    "kubelet-acrpull",
                    ACR_PULL,
                    c.container_registry_id,
                    kubelet,
                    description="AKS nodes pull the ORCA and backup-tools images",
                )
            )

        # With local accounts off and Azure RBAC on, people and pipelines (the Kubernetes provider acts as whoever
        # runs `pulumi up`) manage the cluster through these Entra groups and nothing else.
        admins: list[authorization.RoleAssignment] = []
        for group in c.admin_group_object_ids:
            admins.append(
                grant(
                    f"ra-admin-{group}",
                    f"cluster-admin-{group}",
                    AKS_RBAC_CLUSTER_ADMIN,
                    aks.id,
                    group,
                    principal_type="Group",
                    description="Operators of the ORCA platform: cluster admin through Azure RBAC",
                )
            )

        # The Kubernetes provider acts through the operators' new grant; the first pods pull through AcrPull.
        # Made in phase 1 too, so that phase 2 finds the grants settled and does not wait again.
        grants_settled = RoleGrantWait("wait-cluster-grants", [*admins, *pulls], opts=child)

        self.oidc_issuer_url = aks.oidc_issuer_profile.apply(lambda p: (p.issuer_url or "") if p else "")
        self.provider = None
        self.storage_class_names = []
        self.snapshot_class_names: dict[str, str] = {}
        if not args.kubernetes_layer:
            self.register_outputs({"name": self.name, "oidcIssuerUrl": self.oidc_issuer_url})
            return
        creds = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name,
            resource_name=aks.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        # The credentials stay a secret everywhere: in state, in previews and in the provider's inputs.
        kubeconfig: pulumi.Output[str] = creds.kubeconfigs.apply(
            lambda kc: pulumi.Output.secret(convert_kubeconfig(kc[0].value, c.kubelogin_mode))
        )
        self.provider = k8s.Provider(
            "k8s",
            kubeconfig=kubeconfig,
            # With an unchanged identifier, DiffConfig answers an update, never a replace, whatever the kubeconfig
            # says (pulumi-kubernetes provider/pkg/provider/provider.go); only a changed value replaces. Added to a
            # provider that had none, it is an update only if the kubeconfig is unchanged: docs/deploying.md, "The
            # Kubernetes provider's identity".
            cluster_identifier=args.cluster_identifier,
            # Never delete objects from state just because the API server is unreachable.
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pool, grants_settled]),
        )

        k8s_child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        for sc in args.storage_classes:
            k8s.storage.v1.StorageClass(
                sc.storage_class,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=sc.storage_class, labels={DATA_LABEL: CLINIC_DATA}),
                provisioner=sc.provisioner,
                parameters={**sc.parameters, "resourceGroup": args.data_resource_group},
                mount_options=sc.mount_options or None,
                # A released claim keeps its disk or share: clinic data is deleted by a person, never by a cascade.
                reclaim_policy="Retain",
                allow_volume_expansion=True,
                # Provision in the zone where the pod lands.
                volume_binding_mode="WaitForFirstConsumer",
                # StorageClass parameters are immutable; a changed one is replaced (its volumes stay).
                opts=pulumi.ResourceOptions.merge(k8s_child, pulumi.ResourceOptions(delete_before_replace=True)),
            )
            self.storage_class_names.append(sc.storage_class)

        drivers = sorted({sc.snapshot_driver for sc in args.storage_classes})
        for driver in drivers:
            short = driver.split(".")[0]
            name_ = f"orca-snapshots-{short}"
            ApiObject(
                name_,
                api_version="snapshot.storage.k8s.io/v1",
                kind="VolumeSnapshotClass",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name_, labels={DATA_LABEL: CLINIC_DATA}),
                fields={
                    "driver": driver,
                    # Deleting a VolumeSnapshot (or its namespace) leaves its content and storage snapshot: only a
                    # deliberate release (deletionPolicy Delete on the content) frees them. Pruning releases the
                    # scheduled ones (backup_plan.SNAPSHOT_SCRIPT); the admission guard lets nothing else through.
                    "deletionPolicy": "Retain",
                    **({"parameters": snapshot_parameters(driver)} if snapshot_parameters(driver) else {}),
                },
                opts=k8s_child,
            )
            self.snapshot_class_names[driver] = name_

        self.register_outputs(
            {"name": self.name, "oidcIssuerUrl": self.oidc_issuer_url, "storageClasses": self.storage_class_names}
        )


def _kubelet_object_id(profile: Mapping[str, Any] | None) -> str:
    """The object id of the kubelet's identity, as Azure reports it once the cluster exists."""
    identity = (profile or {}).get("kubeletidentity")
    object_id = getattr(identity, "object_id", None)
    if not object_id:
        raise ValueError("AKS reported no kubelet identity: cannot grant it AcrPull on cluster.containerRegistryId")
    return str(object_id)
