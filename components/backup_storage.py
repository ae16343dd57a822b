"""BackupStorage: the immutable, private blob store that keeps every clinic's pg_dump archives for years."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, network, privatedns, resources, storage

from orca_platform.backup.backup_plan import container_retention
from orca_platform.backup.tiers import COLD_CONTAINER, cold_after_days
from orca_platform.model import settings as model
from orca_platform.safety.prod_floors import RECORDS_RETENTION_TAG


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
    retention_checked: pulumi.Output[str]

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
            # The records' retention the stack declares: the audit holds the immutability periods to it.
            tags={**args.tags, RECORDS_RETENTION_TAG: str(s.records_retention_years)},
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
        checks: list[pulumi.Output[str]] = []
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
            # Azure updates and deletes a container policy only with its ETag, which azure-native does not send
            # (pulumi-azure-native#2156; REST spec: If-Match "must be returned to the server for all update
            # operations"), and a locked one only grows, by the `extend` action. So Pulumi creates the policy and
            # never updates or deletes it; a changed retention is applied by the runbook and checked below.
            policy = storage.BlobContainerImmutabilityPolicy(
                f"backup-{container}-immutability",
                account_name=account.name,
                container_name=c.name,
                resource_group_name=rg,
                immutability_policy_name="default",
                immutability_period_since_creation_in_days=days,
                allow_protected_append_writes=False,
                opts=pulumi.ResourceOptions.merge(
                    keep,
                    pulumi.ResourceOptions(
                        ignore_changes=["immutabilityPeriodSinceCreationInDays", "allowProtectedAppendWrites"],
                        retain_on_delete=True,
                    ),
                ),
            )
            checks.append(policy.immutability_period_since_creation_in_days.apply(_retention_check(container, days)))
        # With the changes ignored, the policy's outputs are Azure's state: a setting that differs stops the update
        # here (after the rest has been applied) with the command that changes the policy.
        self.retention_checked = pulumi.Output.all(*checks).apply("; ".join)

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
                                    ),
                                    # Years of monthly copies sit in cold once cool's minimum has passed
                                    # (orca_platform/backup/tiers.py: why not archive, why immutability allows it).
                                    tier_to_cold=storage.DateAfterModificationArgs(
                                        days_after_modification_greater_than=cold_after_days(days)
                                    )
                                    if container == COLD_CONTAINER and cold_after_days(days) is not None
                                    else None,
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
            # A lock by scope: the account's id is the whole address. ManagementLockAtResourceLevel builds the URL
            # from a provider namespace, an API version and an (empty) parent path, which can fail
            # (pulumi-azure-native#3524).
            authorization.ManagementLockByScope(
                "backup-delete-lock",
                scope=account.id,
                lock_name="backup-delete-lock",
                level="CanNotDelete",
                notes="Clinic record archives: remove only by a documented decommissioning decision.",
                opts=child,
            )

        self.register_outputs(
            {"accountName": self.account_name, "blobUrl": self.blob_url, "retention": self.retention_checked}
        )


def _retention_check(container: str, days: int) -> Callable[[int | float | None], str]:
    def check(deployed: int | float | None) -> str:
        if deployed is None or int(deployed) == days:
            return f"{container}: {days} days"
        raise pulumi.RunError(
            f"orca-platform:backup.{container}RetentionDays is {days}, but the {container} container's immutability "
            f"policy in Azure keeps {int(deployed)} days. Azure changes it only with its ETag (README, Backups and "
            'restore, "Changing a retention"): az storage container immutability-policy show, then create '
            f"--period {days} --if-match <etag> (unlocked) or extend --period {days} --if-match <etag> (locked), "
            "then pulumi up --refresh."
        )

    return check
