"""Issue 6: the rule set on hand-made resource views, each rule shown to fire and to stay quiet."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orca_platform import rules as rules_package
from orca_platform.conventions import INTERNAL_LB
from orca_platform.rules import (
    DOMAINS,
    ENCRYPTED,
    RULES,
    Enforcement,
    ResourceView,
    RuleContext,
    clinic_of,
    credential_key,
    credential_value,
    evaluate,
    registry,
    rules_by_id,
)
from tests.audit_support import (
    CLINIC_LABELS,
    azure_view,
    clinic_pvc,
    container,
    deployment,
    k8s_view,
    secret,
)
from tools.audit import rule_table
from tools.reports import generated_blocks

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def fired(rule_id: str, view: ResourceView, ctx: RuleContext | None = None) -> list[str]:
    return [v.message for v in rules_by_id()[rule_id].run_resource(view, ctx or RuleContext())]


def fired_stack(rule_id: str, views: list[ResourceView], ctx: RuleContext | None = None) -> list[str]:
    full = (ctx or RuleContext()).for_stack(views)
    return [v.message for v in rules_by_id()[rule_id].run_stack(views, full)]


# --- the rule set itself ----------------------------------------------------------------------------------------


def test_rule_ids_are_unique_and_documented() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for r in RULES:
        assert r.title and r.why and r.id.replace("-", "").isalnum()


def test_data_and_exposure_rules_are_mandatory() -> None:
    by_id = rules_by_id()
    for rule_id in (
        "clinic-volume-protected",
        "clinic-volume-retained",
        "clinic-storage-class-retain",
        "single-writer",
        "clinic-claim-single-writer",
        "backup-access-per-clinic",
        "lb-internal",
        "no-nodeport",
        "helm-lb-internal",
        "ingress-internal-class",
        "secret-not-plaintext",
        "single-public-ip",
        "clinic-default-deny",
        "public-network-access-disabled",
        "backup-immutable-prod",
        "backup-delete-lock-prod",
        "backup-retention-prod",
        "image-allowed-registry",
        "image-digest-prod",
    ):
        assert by_id[rule_id].enforcement is Enforcement.MANDATORY, rule_id


def test_preview_skips_what_a_preview_cannot_see() -> None:
    audit_only = {r.id for r in RULES if not r.at_preview}
    assert audit_only == {"clinic-volume-retained", "secret-not-plaintext"}
    leaky = k8s_view("Secret", "s", stringData={"db-password": "plain-text-pw"})
    assert any(v.rule == "secret-not-plaintext" for v in evaluate([leaky]))
    assert not any(v.rule == "secret-not-plaintext" for v in evaluate([leaky], preview=True))


# --- clinic identity --------------------------------------------------------------------------------------------


def test_clinic_from_label_then_namespace() -> None:
    assert clinic_of(k8s_view("ConfigMap", "x", labels={"orca-platform.io/clinic": "aoba"})) == "aoba"
    assert clinic_of(k8s_view("ConfigMap", "x", namespace="orca-sakura-naika", labels={})) == "sakura-naika"
    assert clinic_of(k8s_view("ConfigMap", "x", namespace="orca-ingress", labels={})) is None
    assert clinic_of(k8s_view("ConfigMap", "x", namespace="kube-system", labels={})) is None
    # Once the stack's clinic namespaces are known, the orca-<id> pattern is not guessed any more.
    ctx = RuleContext(clinic_namespaces={"orca-aoba": "aoba"})
    assert clinic_of(k8s_view("ConfigMap", "x", namespace="orca-other", labels={}), ctx) is None
    assert clinic_of(k8s_view("ConfigMap", "x", namespace="orca-aoba", labels={}), ctx) == "aoba"
    assert clinic_of(azure_view("network:PublicIPAddress", "pip")) is None


# --- data ---------------------------------------------------------------------------------------------------------


def test_clinic_volume_must_be_protected_and_retained() -> None:
    assert not fired("clinic-volume-protected", clinic_pvc())
    assert fired("clinic-volume-protected", clinic_pvc(protect=False))
    assert fired("clinic-volume-retained", clinic_pvc(retain=False))
    # A preview cannot see retainOnDelete: unknown is not a violation.
    assert not fired("clinic-volume-retained", clinic_pvc(retain=None))
    # Scratch claims without the data label are not clinic data.
    scratch = k8s_view("PersistentVolumeClaim", "scratch", spec={})
    assert not fired("clinic-volume-protected", scratch)


def test_clinic_claim_must_be_single_writer() -> None:
    assert not fired("clinic-claim-single-writer", clinic_pvc())
    base = clinic_pvc()
    for modes in (["ReadWriteOnce"], ["ReadWriteOncePod", "ReadOnlyMany"], ["ReadWriteMany"], []):
        spec = {**base.props["spec"], "accessModes": modes}
        drifted = ResourceView(**{**base.__dict__, "props": {**base.props, "spec": spec}})
        assert fired("clinic-claim-single-writer", drifted), modes
    unknown = ResourceView(**{**base.__dict__, "props": {**base.props, "spec": {"accessModes": UNKNOWN_STRING}}})
    assert not fired("clinic-claim-single-writer", unknown)
    assert rules_by_id()["clinic-claim-single-writer"].enforcement is Enforcement.MANDATORY


BLOB_CONTRIBUTOR = (
    "/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
)


def test_backup_access_is_confined_to_one_clinic() -> None:
    from orca_platform.backup.backup_plan import blob_condition

    ctx = RuleContext(clinic_namespaces={"orca-c1": "c1", "orca-c2": "c2"})

    def assignment(role: str = BLOB_CONTRIBUTOR, **props: Any) -> ResourceView:
        return azure_view("authorization:RoleAssignment", "c1-backup-blob-role", roleDefinitionId=role, **props)

    assert not fired("backup-access-per-clinic", assignment(condition=blob_condition("c1")), ctx)
    assert fired("backup-access-per-clinic", assignment(), ctx)  # the condition dropped: every clinic's dumps
    assert fired("backup-access-per-clinic", assignment(condition="((true))"), ctx)
    assert fired("backup-access-per-clinic", assignment(condition=blob_condition("nobody")), ctx)
    both = f"{blob_condition('c1')} OR {blob_condition('c2')}"
    assert fired("backup-access-per-clinic", assignment(condition=both), ctx)
    # Other roles (AcrPull, Network Contributor) carry no condition and are not blob data access.
    acr = azure_view(
        "authorization:RoleAssignment",
        "ra-kubelet-acrpull",
        roleDefinitionId="/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
    )
    assert not fired("backup-access-per-clinic", acr, ctx)
    assert not fired("backup-access-per-clinic", assignment(role=UNKNOWN_STRING), ctx)


def test_clinic_namespace_must_be_protected() -> None:
    ns = k8s_view("Namespace", "orca-c1", namespace="orca-c1", protect=True, retain=True)
    assert not fired("clinic-namespace-protected", ns)
    bare = k8s_view("Namespace", "orca-c1", namespace="orca-c1", protect=False)
    assert fired("clinic-namespace-protected", bare)
    platform = k8s_view("Namespace", "orca-ingress", namespace="orca-ingress", labels={})
    assert not fired("clinic-namespace-protected", platform)


def storage_class(**fields: Any) -> ResourceView:
    base: dict[str, Any] = {
        "provisioner": "disk.csi.azure.com",
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    base.update(fields)
    return k8s_view(
        "StorageClass",
        "orca-disk",
        namespace="",
        api="storage.k8s.io/v1",
        labels={"orca-platform.io/data": "clinic"},
        **base,
    )


def test_storage_class_for_clinic_data() -> None:
    assert not fired("clinic-storage-class-retain", storage_class())
    assert fired("clinic-storage-class-retain", storage_class(reclaimPolicy="Delete"))
    assert fired("clinic-storage-class-retain", storage_class(reclaimPolicy=None))  # Kubernetes' default is Delete
    assert fired("clinic-storage-class-settings", storage_class(allowVolumeExpansion=False))
    nfs = storage_class(provisioner="file.csi.azure.com", parameters={"protocol": "nfs"})
    smb = storage_class(provisioner="file.csi.azure.com", parameters={"skuName": "Premium_LRS"})
    assert not fired("clinic-storage-not-smb", nfs)
    assert fired("clinic-storage-not-smb", smb)
    assert fired("clinic-storage-not-smb", storage_class(provisioner="kubernetes.io/azure-file"))


def test_single_writer_deployment() -> None:
    assert not fired("single-writer", deployment())
    assert not fired("single-writer", deployment(replicas=0.0))  # a suspended clinic
    assert fired("single-writer", deployment(strategy="RollingUpdate"))
    assert fired("single-writer", deployment(strategy=None))  # Kubernetes' default is RollingUpdate
    assert fired("single-writer", deployment(replicas=2.0))
    no_volume = deployment(strategy=None, volumes=[])
    assert not fired("single-writer", no_volume)


def test_clinic_volume_class_must_be_defined_and_retaining() -> None:
    pvc = clinic_pvc(storage_class="managed-csi")
    assert fired_stack("clinic-volume-class", [pvc]) == [
        "clinic volume orca-c1/orca-state uses StorageClass managed-csi, which this stack does not define"
    ]
    assert not fired_stack("clinic-volume-class", [clinic_pvc(), storage_class()])
    unlabelled = k8s_view(
        "StorageClass", "orca-disk", namespace="", api="storage.k8s.io/v1", labels={}, provisioner="disk.csi.azure.com"
    )
    assert fired_stack("clinic-volume-class", [clinic_pvc(), unlabelled])


def test_every_clinic_has_a_protected_volume_and_a_backup() -> None:
    ns = k8s_view("Namespace", "orca-c1", namespace="orca-c1", protect=True)
    assert fired_stack("clinic-has-protected-volume", [ns])
    assert fired_stack("clinic-has-protected-volume", [ns, clinic_pvc(protect=False)])
    assert not fired_stack("clinic-has-protected-volume", [ns, clinic_pvc()])
    assert fired_stack("clinic-backup-scheduled", [ns])
    cron = k8s_view("CronJob", "orca-dumps", api="batch/v1", spec={"schedule": "0 1 * * *"})
    assert not fired_stack("clinic-backup-scheduled", [ns, cron])


# --- exposure -----------------------------------------------------------------------------------------------------


def lb_service(annotations: dict[str, str] | None, **spec: Any) -> ResourceView:
    return k8s_view("Service", "orca", annotations=annotations, spec={"type": "LoadBalancer", **spec})


def test_load_balancers_are_internal() -> None:
    assert not fired("lb-internal", lb_service({INTERNAL_LB: "true"}))
    assert fired("lb-internal", lb_service(None))
    assert fired("lb-internal", lb_service({INTERNAL_LB: "false"}))
    cluster_ip = k8s_view("Service", "orca", spec={"type": "ClusterIP"})
    assert not fired("lb-internal", cluster_ip)
    # Unknown during a preview: not judged.
    assert not fired("lb-internal", lb_service({INTERNAL_LB: UNKNOWN_STRING}))


def test_no_nodeport_no_external_ips_no_postgres() -> None:
    assert fired("no-nodeport", k8s_view("Service", "s", spec={"type": "NodePort"}))
    assert fired("no-nodeport", k8s_view("Service", "s", spec={"externalIPs": ["203.0.113.5"]}))
    pg = k8s_view("Service", "pg", spec={"type": "ClusterIP", "ports": [{"port": 5432.0}]})
    assert fired("postgres-not-exposed", pg)
    np_pg = k8s_view("NetworkPolicy", "np", api="networking.k8s.io/v1", spec={"ingress": [{"ports": [{"port": 5432}]}]})
    assert fired("postgres-not-exposed", np_pg)
    glserver = k8s_view("Service", "orca", spec={"ports": [{"port": 8000.0, "targetPort": "glserver"}]})
    assert not fired("postgres-not-exposed", glserver)


def helm_release(service: dict[str, Any]) -> ResourceView:
    return ResourceView(
        type="kubernetes:helm.sh/v3:Release",
        urn="urn:pulumi:dev::orca-platform::kubernetes:helm.sh/v3:Release::release",
        name="release",
        props={
            "chart": "nginx-ingress",
            "version": "2.6.3",
            "values": {"controller": {"ingressClass": {"name": "orca-edge"}, "service": service}},
        },
    )


def test_helm_load_balancers_and_internal_classes() -> None:
    internal = helm_release({"type": "LoadBalancer", "annotations": {INTERNAL_LB: "true"}})
    public = helm_release({"type": "LoadBalancer"})
    assert not fired("helm-lb-internal", internal)
    assert fired("helm-lb-internal", public) == [
        f'Helm release release: values.controller.service asks for a LoadBalancer without {INTERNAL_LB}: "true"'
    ]
    ingress = k8s_view("Ingress", "orca", api="networking.k8s.io/v1", spec={"ingressClassName": "orca-edge"})
    # orca-edge is internal only when an internal controller serves it.
    assert not [v for v in evaluate([ingress, internal]) if v.rule == "ingress-internal-class"]
    assert [v for v in evaluate([ingress, public]) if v.rule == "ingress-internal-class"]


def test_ingress_class() -> None:
    def ingress(**spec: Any) -> ResourceView:
        return k8s_view("Ingress", "orca", api="networking.k8s.io/v1", spec=spec)

    assert not fired("ingress-internal-class", ingress(ingressClassName="orca-internal"))
    assert fired("ingress-internal-class", ingress(ingressClassName="nginx"))
    assert fired("ingress-internal-class", ingress())


def test_no_host_access() -> None:
    assert not fired("no-host-access", deployment())
    assert fired("no-host-access", deployment(hostNetwork=True))
    assert fired("no-host-access", deployment(volumes=[{"name": "h", "hostPath": {"path": "/"}}]))
    priv = deployment(containers=[container(securityContext={"privileged": True})])
    assert fired("no-host-access", priv)
    caps = deployment(containers=[container(securityContext={"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}})])
    assert fired("no-host-access", caps) == ["Deployment orca-c1/orca: container orca adds capabilities SYS_ADMIN"]
    baseline = deployment(containers=[container(securityContext={"capabilities": {"add": ["CHOWN", "KILL"]}})])
    assert not fired("no-host-access", baseline)
    cron = k8s_view(
        "CronJob",
        "dump",
        api="batch/v1",
        spec={"jobTemplate": {"spec": {"template": {"spec": {"hostPID": True, "containers": [container()]}}}}},
    )
    assert fired("no-host-access", cron)


def test_public_ip_is_the_vpn_gateways_only() -> None:
    pip = azure_view("network:PublicIPAddress", "pip-vpn")
    gw = azure_view("network:VirtualNetworkGateway", "vgw", ipConfigurations=[{"publicIPAddress": {"id": pip.id}}])
    assert not fired_stack("single-public-ip", [pip, gw])
    assert fired_stack("single-public-ip", [pip])  # not attached
    assert fired_stack("single-public-ip", [gw])  # none at all
    other = azure_view("network:PublicIPAddress", "pip-bastion")
    assert len(fired_stack("single-public-ip", [pip, gw, other])) == 2


def test_default_deny_per_clinic() -> None:
    ns = k8s_view("Namespace", "orca-c1", namespace="orca-c1")
    deny = k8s_view(
        "NetworkPolicy",
        "default-deny",
        api="networking.k8s.io/v1",
        spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    )
    ingress_only = k8s_view(
        "NetworkPolicy", "deny-in", api="networking.k8s.io/v1", spec={"podSelector": {}, "policyTypes": ["Ingress"]}
    )
    assert not fired_stack("clinic-default-deny", [ns, deny])
    assert fired_stack("clinic-default-deny", [ns, ingress_only]) == [
        "clinic namespace orca-c1 has no default-deny NetworkPolicy"
    ]


def test_unique_hosts_and_ips() -> None:
    def ingress(ns: str, host: str) -> ResourceView:
        labels = {"orca-platform.io/clinic": ns.removeprefix("orca-")}
        return k8s_view(
            "Ingress", "orca", namespace=ns, api="networking.k8s.io/v1", labels=labels, spec={"rules": [{"host": host}]}
        )

    assert not fired_stack("unique-clinic-endpoints", [ingress("orca-a", "a.example.jp"), ingress("orca-b", "b.x")])
    assert fired_stack(
        "unique-clinic-endpoints", [ingress("orca-a", "same.example.jp"), ingress("orca-b", "same.example.jp")]
    )


def test_nsg_and_public_network_access() -> None:
    nsg = azure_view(
        "network:NetworkSecurityGroup",
        "nsg",
        securityRules=[
            {"name": "ok", "direction": "Inbound", "access": "Allow", "sourceAddressPrefixes": ["10.0.0.0/16"]},
            {"name": "deny", "direction": "Inbound", "access": "Deny", "sourceAddressPrefix": "*"},
        ],
    )
    assert not fired("nsg-no-internet-inbound", nsg)
    open_rule = azure_view(
        "network:SecurityRule", "web", direction="Inbound", access="Allow", sourceAddressPrefix="Internet"
    )
    assert fired("nsg-no-internet-inbound", open_rule)
    vault = azure_view("keyvault:Vault", "kv", publicNetworkAccess="Enabled")
    assert fired("public-network-access-disabled", vault)
    assert not fired("public-network-access-disabled", azure_view("keyvault:Vault", "kv"))


def good_account(**overrides: Any) -> ResourceView:
    props: dict[str, Any] = {
        "publicNetworkAccess": "Disabled",
        "allowSharedKeyAccess": False,
        "allowBlobPublicAccess": False,
        "minimumTlsVersion": "TLS1_2",
        "enableHttpsTrafficOnly": True,
        "tags": {"environment": "prod"},
    }
    props.update(overrides)
    return azure_view("storage:StorageAccount", "st", **{k: v for k, v in props.items() if v is not None})


def test_storage_accounts() -> None:
    assert not [v for v in evaluate([good_account()]) if v.rule.startswith(("storage", "public-network"))]
    assert fired("public-network-access-disabled", good_account(publicNetworkAccess=None))
    assert fired("storage-account-hardened", good_account(allowSharedKeyAccess=None))  # Azure's default is allow
    assert fired("storage-account-hardened", good_account(allowBlobPublicAccess=True))
    assert fired("storage-tls12", good_account(minimumTlsVersion="TLS1_0"))
    container_ = azure_view("storage:BlobContainer", "c", publicAccess="Blob")
    assert fired("blob-container-private", container_)


def test_backups_immutable_in_prod_only() -> None:
    assert fired_stack("backup-immutable-prod", [good_account()])
    policy = azure_view("storage:BlobContainerImmutabilityPolicy", "worm")
    assert not fired_stack("backup-immutable-prod", [good_account(), policy])
    assert not fired_stack("backup-immutable-prod", [good_account(tags={"environment": "dev"})])


ACR_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-shared/providers/"
    "Microsoft.ContainerRegistry/registries/OrcaPlatformProd"
)
ACR_PULL = "/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"


def acr_pull(scope: str = ACR_ID) -> ResourceView:
    return azure_view("authorization:RoleAssignment", "ra-kubelet-acrpull", roleDefinitionId=ACR_PULL, scope=scope)


def test_images_only_from_the_registries_the_stack_pulls_from() -> None:
    ours = deployment(containers=[container(image="orcaplatformprod.azurecr.io/orca/jma-receipt:5.2.0")])
    theirs = deployment(containers=[container(image="otheracr.azurecr.io/orca/jma-receipt:5.2.0")])
    # The registry named by the AcrPull grant, in the login server's lower case, is the one allowed.
    assert not fired_stack("image-allowed-registry", [acr_pull(), ours])
    [message] = fired_stack("image-allowed-registry", [acr_pull(), theirs])
    assert "otheracr.azurecr.io" in message and "orcaplatformprod.azurecr.io" in message
    # Configured registries replace the derived ones; with neither, nothing is known allowed and nothing is judged.
    assert fired_stack("image-allowed-registry", [acr_pull(), ours], RuleContext(allowed_registries=("x.io",)))
    assert not fired_stack("image-allowed-registry", [theirs])
    other_role = azure_view("authorization:RoleAssignment", "ra", roleDefinitionId="/x/Reader", scope=ACR_ID)
    assert not fired_stack("image-allowed-registry", [other_role, theirs])


def test_prod_images_are_pinned_by_digest() -> None:
    tagged = deployment(containers=[container(image="acr.azurecr.io/orca/jma-receipt:5.2.0")])
    pinned = deployment(containers=[container(image="acr.azurecr.io/orca/jma-receipt@sha256:" + "b" * 64)])
    prod = RuleContext(environment="prod")
    assert fired("image-digest-prod", tagged, prod)
    assert not fired("image-digest-prod", pinned, prod)
    assert not fired("image-digest-prod", tagged)  # a dev stack may run tags


def worm(days: float, name: str = "backup-monthly-immutability") -> ResourceView:
    return azure_view(
        "storage:BlobContainerImmutabilityPolicy", name, immutabilityPeriodSinceCreationInDays=days, stack="prod"
    )


def delete_lock(level: str = "CanNotDelete", resource_type: str = "storageAccounts") -> ResourceView:
    return azure_view(
        "authorization:ManagementLockAtResourceLevel", "lock", level=level, resourceType=resource_type, stack="prod"
    )


def test_prod_backup_account_has_a_delete_lock() -> None:
    assert fired_stack("backup-delete-lock-prod", [good_account()])
    assert not fired_stack("backup-delete-lock-prod", [good_account(), delete_lock()])
    # A lock on something else, or one that does not stop deletion, is no lock on the backups.
    assert fired_stack("backup-delete-lock-prod", [good_account(), delete_lock(resource_type="virtualNetworks")])
    assert fired_stack("backup-delete-lock-prod", [good_account(), delete_lock(level="NotSpecified")])
    assert not fired_stack("backup-delete-lock-prod", [good_account(tags={"environment": "dev"})])


@pytest.mark.parametrize(
    ("years", "days", "ok"),
    [
        (5, 1825, False),
        (5, 1826, False),
        (5, 1827, True),
        (1, 365, False),
        (1, 366, True),
        (10, 3652, False),
        (10, 3653, True),
    ],
)
def test_prod_backups_stay_immutable_as_long_as_the_records(years: int, days: int, ok: bool) -> None:
    """Five years are 1,827 days at most (two leap days); the declared retention rides on the account's tags."""
    account = good_account(tags={"environment": "prod", "recordsRetentionYears": str(years)})
    found = fired_stack("backup-retention-prod", [account, worm(35, "daily"), worm(days)])
    assert bool(found) is not ok, found
    # The audit's own option wins over what the stack declares.
    assert not fired_stack("backup-retention-prod", [account, worm(days)], RuleContext(records_retention_years=0))


def test_prod_backup_retention_defaults_to_five_years() -> None:
    assert fired_stack("backup-retention-prod", [good_account(), worm(1826)])
    assert not fired_stack("backup-retention-prod", [good_account(), worm(1827)])
    assert not fired_stack("backup-retention-prod", [good_account(tags={"environment": "dev"}), worm(30)])


def aks(stack: str = "prod", **props: Any) -> ResourceView:
    return azure_view("containerservice:ManagedCluster", "aks", stack=stack, **props)


def test_aks_rules_by_environment() -> None:
    private = {"apiServerAccessProfile": {"enablePrivateCluster": True}, "disableLocalAccounts": True}
    assert not fired("aks-private-api-prod", aks(**private))
    public_limited = {"apiServerAccessProfile": {"authorizedIPRanges": ["198.51.100.0/28"]}}
    assert fired("aks-private-api-prod", aks(**public_limited))
    assert not fired("aks-private-api-prod", aks("dev", **public_limited))
    assert not fired("aks-api-restricted", aks("dev", **public_limited))
    assert fired("aks-api-restricted", aks("dev"))
    assert fired("aks-api-restricted", aks("dev", apiServerAccessProfile={"authorizedIPRanges": ["0.0.0.0/0"]}))
    assert fired("aks-local-accounts-disabled", aks(disableLocalAccounts=False))
    assert not fired("aks-local-accounts-disabled", aks("dev", disableLocalAccounts=False))
    # The environment named in the context wins over the stack name.
    assert fired("aks-local-accounts-disabled", aks("dev"), RuleContext(environment="prod"))
    nodes = aks(agentPoolProfiles=[{"name": "system", "enableNodePublicIP": True}])
    assert fired("no-node-public-ip", nodes)


# --- images and resources -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("acr.azurecr.io/orca/jma-receipt:5.2.0-202611", True),
        ("acr.azurecr.io/orca/jma-receipt@sha256:" + "a" * 64, True),
        ("localhost:5000/orca:1.0", True),
        ("acr.azurecr.io/orca/jma-receipt", False),
        ("acr.azurecr.io/orca/jma-receipt:latest", False),
        ("registry:5000/orca", False),  # the port is not a tag
    ],
)
def test_images_name_a_version(image: str, ok: bool) -> None:
    dep = deployment(containers=[container(image=image)])
    assert bool(fired("image-pinned", dep)) is not ok


def test_images_from_private_registry() -> None:
    assert not fired("image-private-registry", deployment())
    assert fired("image-private-registry", deployment(containers=[container(image="harukats/jma-receipt:5.2")]))


def test_containers_have_requests_and_limits() -> None:
    assert not fired("container-resources", deployment())
    bare = deployment(containers=[{"name": "orca", "image": "acr.azurecr.io/o:1"}])
    assert fired("container-resources", bare) == [
        "Deployment orca-c1/orca: container orca has no requests.cpu, requests.memory, limits.cpu, limits.memory"
    ]
    init = deployment(initContainers=[{"name": "seed", "image": "acr.azurecr.io/o:1", "resources": {}}])
    assert fired("container-resources", init)


# --- secrets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db-password",
        "ormaster-password",
        "ORCA_DB_PASS",
        "PGPASSWORD",
        "sharedKey",
        "AccountKey",
        "clientSecret",
        "connectionString",
        "kubeconfig",
        "apiToken",
        "webhook_secret",
    ],
)
def test_credential_names(key: str) -> None:
    assert credential_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "secretName",
        "secretKeyRef",
        "key",
        "passwordLength",
        "existingSecret",
        "publicKey",
        "bypass",
        "automountServiceAccountTokenSeconds",
        "ORCA_DB_USER",
        "tokenExpirationSeconds",
        "keyData",
    ],
)
def test_names_that_only_point_at_credentials(key: str) -> None:
    assert not credential_key(key)


@pytest.mark.parametrize(
    ("value", "looks"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", True),
        ("DefaultEndpointsProtocol=https;AccountName=st;AccountKey=abc123==;EndpointSuffix=core.windows.net", True),
        ("postgresql://orca:hunter22@db:5432/orca", True),
        ("https://st.blob.core.windows.net/c?sv=2024&sig=AbCdEfGhIjKlMnOpQrSt%3D", True),
        ('PGPASSWORD="$ORCA_DB_PASS" pg_dump -Fc', False),
        ("https://st.blob.core.windows.net", False),
        ("orcaplatformdev.azurecr.io/orca/jma-receipt:5.2.0", False),
    ],
)
def test_credential_values(value: str, looks: bool) -> None:
    assert credential_value(value) is looks


def test_plaintext_secrets_in_state() -> None:
    wrapped = k8s_view("Secret", "creds", stringData=secret({"db-password": "x" * 12}))
    encrypted = k8s_view("Secret", "creds", stringData=secret(...))
    plain = k8s_view("Secret", "creds", stringData={"db-password": "x" * 12})
    assert not fired("secret-not-plaintext", wrapped)
    assert not fired("secret-not-plaintext", encrypted)
    assert fired("secret-not-plaintext", plain)
    conn = azure_view("network:VirtualNetworkGatewayConnection", "cn", sharedKey="plain-psk-value")
    assert fired("secret-not-plaintext", conn) == [
        "VirtualNetworkGatewayConnection cn: inputs.sharedKey (its name says credential) is stored in clear text"
    ]
    sealed = azure_view("network:VirtualNetworkGatewayConnection", "cn", sharedKey=secret(...))
    assert not fired("secret-not-plaintext", sealed)
    declared = ResourceView(
        type="random:index/randomPassword:RandomPassword",
        outputs={"result": "plain-generated-password"},
        additional_secret_outputs=("result",),
    )
    assert fired("secret-not-plaintext", declared)
    # Messages name the place, never the value.
    assert all("plain-psk-value" not in m for m in fired("secret-not-plaintext", conn))


def test_inline_credentials_in_pods_and_configmaps() -> None:
    env = [{"name": "ORCA_DB_PASS", "value": "orca_password"}]
    dep = deployment(containers=[container(env=env)])
    assert fired("credential-not-inline", dep)
    # Even encrypted by Pulumi, the value lands in plain in the Deployment object.
    assert fired(
        "credential-not-inline", deployment(containers=[container(env=[{"name": "X_TOKEN", "value": ENCRYPTED}])])
    )
    ok_env = [
        {"name": "ORCA_DB_PASS", "valueFrom": {"secretKeyRef": {"name": "orca-credentials", "key": "db-password"}}}
    ]
    assert not fired("credential-not-inline", deployment(containers=[container(env=ok_env)]))
    cm = k8s_view("ConfigMap", "cfg", data={"db.conf": "x", "db-password": "y"})
    assert fired("credential-not-inline", cm) == ["ConfigMap orca-c1/cfg holds db-password, which names a credential"]


def test_default_passwords_are_caught_even_when_wrapped() -> None:
    # At preview pulumi_policy has already unwrapped secrets: the value is visible and judged.
    unwrapped = k8s_view("Secret", "creds", stringData={"ormaster-password": "ormaster"})
    assert fired("no-default-credentials", unwrapped)
    wrapped = k8s_view("Secret", "creds", stringData=secret({"ormaster-password": "ormaster"}))
    assert fired("no-default-credentials", wrapped)
    b64 = k8s_view("Secret", "creds", data={"db-password": "b3JjYV9wYXNzd29yZA=="})  # orca_password
    assert fired("no-default-credentials", b64)
    assert not fired("no-default-credentials", k8s_view("Secret", "c", stringData={"db-password": "Xk3-9fq-PLm"}))


# --- robustness ---------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TYPES = sorted(
    {
        "kubernetes:core/v1:Service",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "kubernetes:core/v1:Secret",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:networking.k8s.io/v1:Ingress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:helm.sh/v3:Release",
        "azure-native:containerservice:ManagedCluster",
        "azure-native:network:NetworkSecurityGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:network:PublicIPAddress",
    }
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(TYPES),
            st.dictionaries(
                st.sampled_from(
                    [
                        "metadata",
                        "spec",
                        "values",
                        "data",
                        "stringData",
                        "apiServerAccessProfile",
                        "securityRules",
                        "tags",
                        "publicNetworkAccess",
                    ]
                ),
                json_values,
            ),
        ),
        max_size=6,
    )
)
def test_rules_never_crash_on_odd_properties(resources: list[tuple[str, dict[str, Any]]]) -> None:
    """Exports from older program versions carry shapes nobody wrote a rule for: judge them, never crash."""
    views = [ResourceView(type=t, urn=f"urn:pulumi:dev::p::{t}::r{i}", props=p) for i, (t, p) in enumerate(resources)]
    for v in evaluate(views):
        assert v.rule in rules_by_id()


def test_every_rule_has_a_case_here() -> None:
    """Each rule is made to fire somewhere in this file: a rule nobody has seen fire may never fire."""
    text = Path(__file__).read_text(encoding="utf-8")
    assert [r.id for r in RULES if f'"{r.id}"' not in text] == []


def test_chart_version_pod_security_and_entra() -> None:
    unpinned = helm_release({"type": "ClusterIP"})
    assert not fired("helm-chart-pinned", unpinned)
    loose = ResourceView(type=unpinned.type, urn=unpinned.urn, name="release", props={"chart": "nginx-ingress"})
    assert fired("helm-chart-pinned", loose)
    ns = k8s_view("Namespace", "orca-c1", namespace="orca-c1", labels={**CLINIC_LABELS})
    assert fired("clinic-namespace-pod-security", ns)
    strict = k8s_view(
        "Namespace",
        "orca-c1",
        namespace="orca-c1",
        labels={**CLINIC_LABELS, "pod-security.kubernetes.io/enforce": "restricted"},
    )
    assert not fired("clinic-namespace-pod-security", strict)
    assert fired("aks-entra-rbac", aks("dev"))
    entra = aks("dev", aadProfile={"managed": True, "enableAzureRBAC": True}, enableRBAC=True)
    assert not fired("aks-entra-rbac", entra)


def test_the_rule_tables_are_generated_from_the_registry() -> None:
    """docs/audit.md is what auditors read: its tables are the registry's, row for row (`make rule-table`)."""
    doc = rule_table.AUDIT_DOC.read_text(encoding="utf-8")
    fresh = generated_blocks.replace_block(doc, rule_table.TARGET, rule_table.BLOCK, rule_table.table())
    assert fresh == doc, "docs/audit.md's rule tables are stale: run `make rule-table`"
    assert [r.id for r in RULES if f"| `{r.id}`" not in doc] == []


def test_a_stale_rule_table_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "audit.md"
    current = rule_table.AUDIT_DOC.read_text(encoding="utf-8")
    doc.write_text("\n".join(line for line in current.splitlines() if "`no-nodeport`" not in line), encoding="utf-8")
    monkeypatch.setattr(rule_table, "AUDIT_DOC", doc)
    assert rule_table.main(["--check"]) == 1
    assert "`no-nodeport`" not in doc.read_text(encoding="utf-8")
    assert rule_table.main([]) == 0
    assert rule_table.main(["--check"]) == 0
    assert "`no-nodeport`" in doc.read_text(encoding="utf-8")


def test_every_rule_says_what_it_checks_and_belongs_to_a_domain() -> None:
    titles = [d.title for d in DOMAINS]
    assert len(set(titles)) == len(titles)
    assert {r.domain for r in RULES} == set(titles)
    assert [r.id for r in RULES if not r.what.strip() or not r.why.strip()] == []
    # The registry lists the rules domain by domain, in the domains' order (the tables and the policy pack follow it).
    assert [titles.index(r.domain) for r in RULES] == sorted(titles.index(r.domain) for r in RULES)


def test_the_registry_refuses_a_second_rule_of_the_same_id_and_an_incomplete_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On copies of the registry: a guard that failed must not leave a stray rule for the rest of the session.
    monkeypatch.setattr(registry, "RULES", list(RULES))
    monkeypatch.setattr(registry, "DOMAINS", list(DOMAINS))
    with pytest.raises(ValueError, match="twice"):
        DOMAINS[0].rule("no-nodeport", "t", "w", Enforcement.MANDATORY, what="x")(lambda v, ctx: ())
    assert len(registry.RULES) == len(RULES)
    with pytest.raises(ValueError, match="declared twice"):
        registry.Domain(DOMAINS[0].title, "again")
    assert len(registry.DOMAINS) == len(DOMAINS)
    with pytest.raises(ValueError, match="every domain"):
        registry.order_domains(DOMAINS[:-1])


def test_every_module_of_the_rules_package_is_loaded_by_the_package() -> None:
    """A domain module the package forgot to import would register nothing in the policy pack (which imports the
    package only) and its rules late, out of order, wherever someone imported it directly."""
    before = [r.id for r in RULES]
    names = [m.name for m in pkgutil.iter_modules(rules_package.__path__)]
    for name in names:
        module = importlib.import_module(f"orca_platform.rules.{name}")
        domain = getattr(module, "DOMAIN", None)
        assert domain is None or domain in DOMAINS, name
    assert [r.id for r in RULES] == before
    assert {"data", "backups", "exposure", "cloud", "workloads", "secrets"} <= set(names)


def test_the_rule_tables_say_what_each_rule_is() -> None:
    """Read back from the document, not from the generator: each row's scope, level and preview are the rule's."""
    doc = rule_table.AUDIT_DOC.read_text(encoding="utf-8")
    rows = {}
    for line in doc.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rid = cells[0].split("`")[1]
            rows[rid] = (cells[0].endswith("(stack)"), cells[-2], cells[-1])
    expected = {r.id: (r.scope == "stack", r.enforcement.value, "yes" if r.at_preview else "audit only") for r in RULES}
    assert rows == expected
    mandatory = sum(r.enforcement is Enforcement.MANDATORY for r in RULES)
    audit_only = sum(not r.at_preview for r in RULES)
    assert f"{len(RULES)} rules in {len(DOMAINS)} domains: {mandatory} mandatory" in doc
    assert f"{len(RULES) - audit_only} applied at preview, {audit_only} in the audit only" in doc
    assert [ln.removeprefix("### ") for ln in doc.splitlines() if ln.startswith("### ")][: len(DOMAINS)] == [
        d.title for d in DOMAINS
    ]


def test_container_findings_name_the_workload_and_the_container() -> None:
    """The container rules' one helper: every finding starts the same way, with or without a namespace."""
    public = deployment(containers=[container("docker.io/library/nginx:1.27")])
    assert fired("image-private-registry", public) == [
        "Deployment orca-c1/orca: container orca image docker.io/library/nginx:1.27 is not from a private registry"
    ]


def test_clinic_front_doors_are_allow_listed() -> None:
    """Issue 14: both front doors keep to the clinic's own networks, whichever the mode."""
    deny = {"service.beta.kubernetes.io/azure-deny-all-except-load-balancer-source-ranges": "true"}
    good_lb = k8s_view(
        "Service",
        "orca",
        annotations=deny,
        spec={"type": "LoadBalancer", "loadBalancerSourceRanges": ["192.168.10.0/24"]},
    )
    assert not fired("clinic-front-door-allow-listed", good_lb)
    no_ranges = k8s_view("Service", "orca", annotations=deny, spec={"type": "LoadBalancer"})
    assert fired("clinic-front-door-allow-listed", no_ranges)
    no_deny = k8s_view(
        "Service", "orca", spec={"type": "LoadBalancer", "loadBalancerSourceRanges": ["192.168.10.0/24"]}
    )
    assert any("deny-all" in m for m in fired("clinic-front-door-allow-listed", no_deny))
    # An ingress-only clinic's ClusterIP Service is reached through the ingress only: nothing to allow-list there.
    assert not fired("clinic-front-door-allow-listed", k8s_view("Service", "orca", spec={"type": "ClusterIP"}))
    listed = k8s_view(
        "Ingress", "orca", api="networking.k8s.io/v1", annotations={"nginx.org/policies": "clinic-sources"}
    )
    assert not fired("clinic-front-door-allow-listed", listed)
    assert fired("clinic-front-door-allow-listed", k8s_view("Ingress", "orca", api="networking.k8s.io/v1"))
    # The platform's own namespaces are not clinics.
    platform = k8s_view("Service", "ingress", namespace="orca-ingress", labels={}, spec={"type": "LoadBalancer"})
    assert not fired("clinic-front-door-allow-listed", platform)
