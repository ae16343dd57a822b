"""OrcaTenant: one clinic's ORCA server, its data volume, its private addresses and its isolation."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from orca_platform.backup import backup_plan
from orca_platform.backup.orca_image import EXPECT_DATA_ENV, startup_await_seconds, stop_script
from orca_platform.conventions import (
    CLINIC_DATA,
    CLINIC_NAME_ANNOTATION,
    DATA_LABEL,
    GLSERVER_PORT,
    NAMESPACE_NAME_LABEL,
    PATCH_FORCE,
    POD_SECURITY_ENFORCE,
    POD_SECURITY_WARN,
    POSTGRES_PORT,
    PUSH_PORT,
    ROLE_LABEL,
    SKIP_AWAIT,
    TIMEOUT_SECONDS,
)
from orca_platform.model import settings as model
from orca_platform.model.ipnets import excluded_within
from orca_platform.plan import naming
from orca_platform.plan.clinic import ClinicPlan

from . import front_door, wal_archive
from .clinic_backup import BackupTarget, ClinicBackup, ClinicBackupArgs
from .ingress_controller import INGRESS_ROLE
from .k8s_objects import Meta, dns_egress_rule
from .orca_pod import (
    SAFE_TO_EVICT,
    SEED_POLICY,
    gate_container,
    plain,
    seed_container,
    size_resources,
    state_mounts,
    state_volumes,
)
from .pod_security import orca_security_context

PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
DEPLOYMENT = "orca"


@dataclass(frozen=True)
class OrcaTenantArgs:
    plan: ClinicPlan
    orca: model.Orca
    ingress: model.Ingress
    ilb_subnet_name: str
    pool_selector: dict[str, str]
    pool_taint: tuple[str, str]  # (key, value) of the ORCA pool's NoSchedule taint
    provider: k8s.Provider
    backup: model.Backup
    backup_target: BackupTarget
    # Pod and service ranges and the ILB subnet: where other clinics' pods and frontends live. Never an egress target.
    clinic_facing_cidrs: tuple[str, ...]
    # Where the backup account's private endpoint is: the WAL shipper's only private destination (HTTPS).
    private_endpoint_cidr: str


class OrcaTenant(pulumi.ComponentResource):
    namespace: str
    hostname: str
    private_ip: pulumi.Output[str]
    pvc_name: str

    def __init__(self, name: str, args: OrcaTenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:OrcaTenant", name, None, opts)
        p = args.plan
        ns_name = p.namespace
        labels = naming.clinic_labels(p.id)
        base = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # What holds clinic data or the keys to it: never deleted or replaced by a routine `pulumi up`.
        keep = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(protect=True, retain_on_delete=True))

        def meta(
            name_: str, extra: dict[str, str] | None = None, annotations: dict[str, str] | None = None
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=name_, namespace=ns_name, labels={**labels, **(extra or {})}, annotations=annotations
            )

        # Deleting a namespace deletes every claim in it, so the namespace is kept like the volume.
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns_name,
                labels={
                    **labels,
                    # ORCA starts as root (see the container's security context), which 'restricted' forbids;
                    # 'baseline' still blocks host access, privileged mode and added dangerous capabilities.
                    POD_SECURITY_ENFORCE: "baseline",
                    POD_SECURITY_WARN: "restricted",
                },
                annotations={CLINIC_NAME_ANNOTATION: p.name},
            ),
            opts=keep,
        )
        in_ns = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[ns]))
        keep_in_ns = pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[ns]))

        # The database and ormaster passwords live in the clinic's data: regenerating them would lock ORCA out.
        ormaster = random.RandomPassword(
            f"{name}-ormaster-password",
            length=16,  # WebORCA accepts 8 to 16 characters
            special=False,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        db_password = random.RandomPassword(
            f"{name}-db-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self, protect=True)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=meta(naming.CREDENTIALS_SECRET),
            type="Opaque",
            string_data={"ormaster-password": ormaster.result, "db-password": db_password.result},
            opts=keep_in_ns,
        )

        self.pvc_name = p.pvc_name
        claims = [self._claim(name, p, naming.STATE_PVC, meta, keep_in_ns)]
        for restore in p.restores:
            claims.append(self._claim(name, p, naming.restore_pvc(restore.id), meta, keep_in_ns, restore.from_snapshot))
        pvc = claims[-1]

        # The pod template's digest names its pre-upgrade backup; the template then carries that backup's Job uid.
        # The shipper's image (the tools image) is left out: a new tools image restarts the server for its sidecar,
        # but nothing that touches the data changed, so it takes no new pre-upgrade backup.
        template_data = wal_archive.without_shipper_image(plain(self._pod_template(args, backup_key="", backup_job="")))
        backup_key = backup_plan.backup_key(template_data)
        seed_policy = k8s.core.v1.ConfigMap(
            f"{name}-seed-policy",
            metadata=meta(SEED_POLICY),
            data={EXPECT_DATA_ENV: "1" if p.expect_data else "0"},
            opts=in_ns,
        )
        backup = ClinicBackup(
            f"{name}-backup",
            ClinicBackupArgs(
                plan=p,
                backup=args.backup,
                orca=args.orca,
                target=args.backup_target,
                pool_selector=args.pool_selector,
                pool_taint=args.pool_taint,
                provider=args.provider,
                clinic_facing_cidrs=args.clinic_facing_cidrs,
                depends_on=[ns, *claims, seed_policy],
                backup_key=backup_key,
                deployment=DEPLOYMENT,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        archive = k8s.core.v1.ConfigMap(
            f"{name}-pitr",
            metadata=meta(wal_archive.CONFIG_MAP),
            data=wal_archive.config_map_data(
                args.orca.postgres_version, wal_archive.archive_url(args.backup_target.blob_url, p.id)
            ),
            opts=in_ns,
        )
        # The pre-upgrade backup runs after any restore and its verification; the Deployment waits for all three.
        before_start: list[pulumi.Resource] = [secret, pvc, seed_policy, archive, backup.pre_upgrade_job]
        before_start += [j for j in (backup.restore_job, backup.verify_job) if j is not None]
        template = self._pod_template(args, backup_key, backup.backup_job_uid)
        self._deployment(name, args, meta, template, before_start, in_ns)
        self._disruption_budget(name, args, meta, in_ns)
        await_seconds = startup_await_seconds(args.orca.startup_budget_seconds, args.orca.termination_grace_seconds)
        door = front_door.render(
            name, front_door.FrontDoorArgs(p, args.ingress, args.ilb_subnet_name, meta, in_ns, await_seconds)
        )
        self._network_policies(name, args, meta, in_ns)
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("orca-quota"),
            # A clinic namespace holds one server, its backup jobs and its volume generations: nothing more.
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "services.loadbalancers": "1" if p.front_door.load_balancer else "0",
                    "persistentvolumeclaims": str(len(claims) + 1),
                    "pods": "8",
                }
            ),
            opts=in_ns,
        )

        self.namespace = ns_name
        self.hostname = p.fqdn
        self.private_ip = door.private_ip
        self.register_outputs({"namespace": ns_name, "hostname": p.fqdn, "privateIp": self.private_ip})

    @staticmethod
    def _claim(
        name: str,
        p: ClinicPlan,
        claim_name: str,
        meta: Meta,
        opts: pulumi.ResourceOptions,
        from_snapshot: str | None = None,
    ) -> k8s.core.v1.PersistentVolumeClaim:
        """A volume generation of the clinic: the original, or one built by a restore. Each is kept for good."""
        return k8s.core.v1.PersistentVolumeClaim(
            f"{name}-{claim_name}",
            metadata=meta(
                claim_name,
                {DATA_LABEL: CLINIC_DATA},
                # WaitForFirstConsumer: the claim stays Pending until a pod is scheduled; Pulumi must not wait.
                annotations={SKIP_AWAIT: "true"},
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=[p.storage.access_mode],
                storage_class_name=p.storage.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{p.claim_gib}Gi"}),
                data_source=k8s.core.v1.TypedLocalObjectReferenceArgs(
                    api_group="snapshot.storage.k8s.io", kind="VolumeSnapshot", name=from_snapshot
                )
                if from_snapshot
                else None,
            ),
            opts=opts,
        )

    @staticmethod
    def _pod_template(
        args: OrcaTenantArgs, backup_key: str, backup_job: pulumi.Input[str]
    ) -> k8s.core.v1.PodTemplateSpecArgs:
        """The server's pod: everything in it but the backup gate's two values is plain data, so its digest can
        name the pre-upgrade backup (and any change to it, a new image or volume generation included, is one)."""
        p = args.plan
        o = args.orca
        size = p.size
        labels = naming.clinic_labels(p.id)
        mounts = state_mounts()
        volumes = state_volumes(p.pvc_name)
        security = orca_security_context()
        resources = size_resources(size)

        def secret_env(env: str, key: str) -> k8s.core.v1.EnvVarArgs:
            return k8s.core.v1.EnvVarArgs(
                name=env,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=naming.CREDENTIALS_SECRET, key=key)
                ),
            )

        env = [
            k8s.core.v1.EnvVarArgs(name="TZ", value=o.timezone),
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_NAME", value="orca"),
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_USER", value="orca"),
            # PostgreSQL listens inside the pod only: its port is on no Service and no NetworkPolicy admits it.
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_HOST", value="localhost"),
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_PORT", value=str(POSTGRES_PORT)),
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_ENCODING", value=o.db_encoding),
            secret_env("ORCA_DB_PASS", "db-password"),
            secret_env("ORMASTER_PASS", "ormaster-password"),
        ]
        startup_period = 10
        grace = o.termination_grace_seconds
        container = k8s.core.v1.ContainerArgs(
            name="orca",
            image=p.image,
            image_pull_policy="IfNotPresent",
            ports=[
                k8s.core.v1.ContainerPortArgs(name="glserver", container_port=GLSERVER_PORT, protocol="TCP"),
                k8s.core.v1.ContainerPortArgs(name="push", container_port=PUSH_PORT, protocol="TCP"),
            ],
            env=env,
            resources=resources,
            volume_mounts=mounts,
            security_context=security,
            # glserver answers 400 on GET /, so no httpGet probe: a TCP connect proves it listens; start-up may
            # run jma-setup for minutes, hence a startup probe with a long budget instead of an initial delay.
            startup_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=GLSERVER_PORT),
                period_seconds=startup_period,
                failure_threshold=o.startup_budget_seconds // startup_period,
                timeout_seconds=5,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=GLSERVER_PORT),
                period_seconds=20,
                failure_threshold=3,
                timeout_seconds=5,
            ),
            # Ready only when the database accepts connections too.
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["pg_isready", "-q", "-h", "/var/run/postgresql"]),
                period_seconds=15,
                failure_threshold=3,
                timeout_seconds=5,
            ),
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    exec_=k8s.core.v1.ExecActionArgs(command=["/bin/sh", "-c", stop_script(o.postgres_version, grace)])
                )
            ),
        )
        taint_key, taint_value = args.pool_taint
        pod = k8s.core.v1.PodSpecArgs(
            # ORCA never calls the Kubernetes API: no token is mounted that a compromise could use.
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=grace,
            node_selector=args.pool_selector,
            tolerations=[
                k8s.core.v1.TolerationArgs(key=taint_key, operator="Equal", value=taint_value, effect="NoSchedule")
            ],
            security_context=k8s.core.v1.PodSecurityContextArgs(
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
            ),
            # First the backup gate, then the seed: nothing touches the volume before its backup is known to exist.
            # Then the archive settings, and the WAL shipper, a native sidecar that starts before ORCA and stops
            # after it (docs/recovery.md).
            init_containers=[
                gate_container(p.image, backup_key, backup_job),
                seed_container(p.image, expect_data=None),
                wal_archive.settings_container(p.image, p.id),
                wal_archive.shipper_container(args.backup.tools_image, p.id, p.pvc_name, o.postgres_uid),
            ],
            containers=[container],
            volumes=[*volumes, wal_archive.scripts_volume()],
            # The clinic's backup identity, for the shipper alone: every other container is named in the webhook's
            # skip list, and no container gets a Kubernetes API token (automount above).
            service_account_name=backup_plan.SERVICE_ACCOUNT,
        )
        token_free = ["backup-gate", "seed-state", wal_archive.SETTINGS, "orca"]
        wi_labels, wi_annotations = wal_archive.identity_metadata(token_free)
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels={**labels, **wi_labels}, annotations={**SAFE_TO_EVICT, **wi_annotations}
            ),
            spec=pod,
        )

    def _deployment(
        self,
        name: str,
        args: OrcaTenantArgs,
        meta: Meta,
        template: k8s.core.v1.PodTemplateSpecArgs,
        before_start: list[pulumi.Resource],
        opts: pulumi.ResourceOptions,
    ) -> None:
        p = args.plan
        o = args.orca
        k8s.apps.v1.Deployment(
            f"{name}-orca",
            metadata=meta(
                DEPLOYMENT,
                annotations={
                    # Pulumi waits for a new clinic to become ready; give it the start-up budget and some.
                    TIMEOUT_SECONDS: str(startup_await_seconds(o.startup_budget_seconds, o.termination_grace_seconds)),
                    # The pre-upgrade backup scales the server to zero through the scale subresource, another field
                    # manager: Pulumi's next apply of `replicas` takes the field back instead of failing on the
                    # conflict (pulumi-kubernetes provider, patchForce()).
                    PATCH_FORCE: "true",
                },
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # One PostgreSQL per volume, ever: one replica (none while suspended), and Recreate so the old pod
                # has stopped before the new one mounts the volume.
                replicas=p.replicas,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=naming.selector(p.id)),
                template=template,
            ),
            # After the credentials, the volume and the backup of the running server (and a restore, if any).
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=before_start)),
        )

    @staticmethod
    def _disruption_budget(name: str, args: OrcaTenantArgs, meta: Meta, opts: pulumi.ResourceOptions) -> None:
        """No voluntary eviction of the server, ever (drains, the autoscaler): a node is emptied of ORCA pods only
        inside the maintenance window, by MaintenanceMover, which deletes them so they stop cleanly and start on
        another node (docs/data-safety.md, disruptions).

        minAvailable 1 over one replica allows no eviction, as maxUnavailable 0 would; but AKS's upgrade pre-check
        refuses any budget of maxUnavailable 0 before a node is even cordoned (Microsoft's AKS troubleshooting
        article "UnsatisfiablePDB"), so the upgrade would never reach the drain the mover empties."""
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-orca",
            metadata=meta("orca"),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=naming.selector(args.plan.id)),
            ),
            opts=opts,
        )

    def _network_policies(self, name: str, args: OrcaTenantArgs, meta: Meta, opts: pulumi.ResourceOptions) -> None:
        p = args.plan
        np = k8s.networking.v1
        orca_ports = [
            np.NetworkPolicyPortArgs(protocol="TCP", port=GLSERVER_PORT),
            np.NetworkPolicyPortArgs(protocol="TCP", port=PUSH_PORT),
        ]
        # The clinic's own networks come in directly only through its own load balancer (components/front_door.py).
        direct = [np.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in p.front_door.direct_ports]
        dns = dns_egress_rule()
        # Everything in the namespace starts closed, both ways.
        np.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny"),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            opts=opts,
        )
        # The ORCA pod: in from the internal ingress controller and, in loadbalancer mode, the clinic's own networks;
        # out only to DNS and to HTTPS outside every private range, so no clinic can open a connection to another.
        np.NetworkPolicy(
            f"{name}-orca",
            metadata=meta("orca-server"),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=naming.selector(p.id)),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    np.NetworkPolicyIngressRuleArgs(
                        from_=[
                            np.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={NAMESPACE_NAME_LABEL: args.ingress.namespace}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={ROLE_LABEL: INGRESS_ROLE}),
                            )
                        ],
                        ports=orca_ports,
                    ),
                    *(
                        [
                            np.NetworkPolicyIngressRuleArgs(
                                from_=[
                                    np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=cidr))
                                    for cidr in p.source_cidrs
                                ],
                                ports=direct,
                            )
                        ]
                        if direct
                        else []
                    ),
                ],
                egress=[
                    dns,
                    np.NetworkPolicyEgressRuleArgs(
                        to=[
                            np.NetworkPolicyPeerArgs(
                                ip_block=np.IPBlockArgs(
                                    cidr=cidr,
                                    # Private ranges and the cluster's own pod and service ranges (which may lie
                                    # outside RFC 1918): where ipBlock matches pods, this still reaches no clinic.
                                    except_=excluded_within(cidr, [*PRIVATE_RANGES, *args.clinic_facing_cidrs]) or None,
                                )
                            )
                            for cidr in args.orca.egress_https_cidrs
                        ],
                        ports=[np.NetworkPolicyPortArgs(protocol="TCP", port=443)],
                    ),
                    # The WAL shipper: the backup account's private endpoint, HTTPS only. Policies select pods, not
                    # containers: ORCA could reach it too, but holds no token for it.
                    np.NetworkPolicyEgressRuleArgs(
                        to=[np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=args.private_endpoint_cidr))],
                        ports=[np.NetworkPolicyPortArgs(protocol="TCP", port=443)],
                    ),
                ],
            ),
            opts=opts,
        )
