"""BackupStorage: the immutable, private blob store that keeps every clinic's pg_dump archives for years."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, network, privatedns, resources, storage

from orca_platform import settings as model
from orca_platform.backup_plan import container_retention


@dataclass(frozen=True)
class BackupStorageArgs:
    settings: model.Backup
    name_prefix: str  # lowercase letters and digits, e.g. 'orcaprod'
    resource_group: str  # a group of its own: nothing else in it, no other identity's roles reach it
    location: str
    vnet_id: pulumi.Input[str]
    private_endpoint_subnet_id: pulumi.Input[str]
    tags: dict[str, str]


class BackupStorage(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    account_name: pulumi.Output[str]
    blob_url: pulumi.Output[str]

    def __init__(self, name: str, args: BackupStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:BackupStorage", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # Holds years of clinic records: never deleted or replaced by a routine update.
        keep = pulumi.ResourceOptions(parent=self, protect=True)

        group = resources.ResourceGroup(
            "backup-rg", resource_group_name=args.resource_group, location=args.location, tags=args.tags, opts=keep
        )
        self.resource_group_name = group.name
        rg = group.name

        # Account names are global; a random suffix (kept, like the account) avoids collisions between tenants.
        suffix = random.RandomString("backup-suffix", length=6, special=False, upper=False, opts=keep)
        account = storage.StorageAccount(
            "backup-account",
            account_name=suffix.result.apply(lambda x: f"st{args.name_prefix}{x}"[:24]),
            resource_group_name=rg,
            location=args.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=s.storage_sku),
            # Archives are written once and read only to restore.
            access_tier=storage.AccessTier.COOL,
            # Private endpoint only: no public network path, no anonymous containers, no account keys (Entra ID
            # identities with per-clinic conditions are the only way in).
            public_network_access="Disabled",
            network_rule_set=storage.NetworkRuleSetArgs(default_action=storage.DefaultAction.DENY, bypass="None"),
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            tags=args.tags,
            opts=keep,
        )
        self.account_id = account.id
        self.account_name = account.name
        self.blob_url = account.name.apply(lambda n: f"https://{n}.blob.core.windows.net")

        # Soft delete: a container or blob deleted after its retention can still be recovered for two weeks.
        storage.BlobServiceProperties(
            "backup-blob-service",
            account_name=account.name,
            resource_group_name=rg,
            blob_services_name="default",
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=14),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=14),
            opts=child,
        )

        retention = container_retention(s.daily_retention_days, s.monthly_retention_days)
        for container, days in retention.items():
            c = storage.BlobContainer(
                f"backup-{container}",
                container_name=container,
                account_name=account.name,
                resource_group_name=rg,
                public_access=storage.PublicAccess.NONE,
                opts=keep,
            )
            # WORM: nothing written here can be changed or deleted before `days` have passed, by anyone.
            storage.BlobContainerImmutabilityPolicy(
                f"backup-{container}-immutability",
                account_name=account.name,
                container_name=c.name,
                resource_group_name=rg,
                immutability_policy_name="default",
                immutability_period_since_creation_in_days=days,
                allow_protected_append_writes=False,
                opts=keep,
            )

        # Retention's other half: once a copy may be deleted, it is (a day after its immutability ends).
        storage.ManagementPolicy(
            "backup-lifecycle",
            account_name=account.name,
            resource_group_name=rg,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(
                rules=[
                    storage.ManagementPolicyRuleArgs(
                        name=f"expire-{container}",
                        enabled=True,
                        type="Lifecycle",
                        definition=storage.ManagementPolicyDefinitionArgs(
                            filters=storage.ManagementPolicyFilterArgs(
                                blob_types=["blockBlob"], prefix_match=[f"{container}/"]
                            ),
                            actions=storage.ManagementPolicyActionArgs(
                                base_blob=storage.ManagementPolicyBaseBlobArgs(
                                    delete=storage.DateAfterModificationArgs(
                                        days_after_modification_greater_than=days + 1
                                    )
                                )
                            ),
                        ),
                    )
                    for container, days in retention.items()
                ]
            ),
            opts=child,
        )

        zone = privatedns.PrivateZone(
            "backup-dns-zone",
            private_zone_name="privatelink.blob.core.windows.net",
            resource_group_name=rg,
            location="global",
            tags=args.tags,
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            "backup-dns-link",
            private_zone_name=zone.name,
            resource_group_name=rg,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            opts=child,
        )
        endpoint = network.PrivateEndpoint(
            "backup-endpoint",
            resource_group_name=rg,
            location=args.location,
            subnet=network.SubnetArgs(id=args.private_endpoint_subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name="blob", private_link_service_id=account.id, group_ids=["blob"]
                )
            ],
            tags=args.tags,
            opts=child,
        )
        network.PrivateDnsZoneGroup(
            "backup-endpoint-dns",
            private_endpoint_name=endpoint.name,
            resource_group_name=rg,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[network.PrivateDnsZoneConfigArgs(name="blob", private_dns_zone_id=zone.id)],
            opts=child,
        )

        if s.delete_lock:
            authorization.ManagementLockAtResourceLevel(
                "backup-delete-lock",
                resource_group_name=rg,
                resource_provider_namespace="Microsoft.Storage",
                # The storage resource provider's API version the lock call is made with.
                api_version="2023-05-01",
                resource_type="storageAccounts",
                resource_name_=account.name,
                parent_resource_path="",
                level="CanNotDelete",
                notes="Clinic record archives: remove only by a documented decommissioning decision.",
                opts=child,
            )

        self.register_outputs({"accountName": self.account_name, "blobUrl": self.blob_url})
