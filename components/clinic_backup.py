"""ClinicBackup: one clinic's snapshots, database dumps, pre-upgrade backup and dump restore.

The jobs run an operator-built tools image (sh, kubectl, azcopy) under the clinic's own service account, which can
act only inside the clinic's namespace and, through workload identity, write only under the clinic's blob prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import authorization, managedidentity

from orca_platform.backup import backup_plan, orca_image
from orca_platform.backup.window import parse_target, recovery_time
from orca_platform.conventions import TIMEOUT_SECONDS
from orca_platform.model import schedule
from orca_platform.model import settings as model
from orca_platform.model.tenants import ClinicRestore
from orca_platform.plan import naming
from orca_platform.plan.clinic import ClinicPlan
from orca_platform.safety import maintenance

from . import wal_archive
from .k8s_objects import ApiObject, Meta, dns_egress_rule
from .orca_pod import (
    SAFE_TO_EVICT,
    expect_data_env,
    seed_container,
    size_resources,
    state_mounts,
    state_volumes,
    whole_volume_mount,
)
from .pod_security import orca_security_context, tools_pod_security, tools_security_context

WORK = "/work"


def await_for(seconds: int) -> dict[str, str]:
    """Pulumi waits for a Job to complete, 10 minutes by default: a dump or restore of a large clinic takes longer."""
    return {TIMEOUT_SECONDS: str(seconds)}


SCRIPTS_MOUNT = "/scripts"


@dataclass(frozen=True)
class BackupTarget:
    """Where dumps go and who may write them: the platform's BackupStorage and the cluster's OIDC issuer."""

    account_id: pulumi.Input[str]
    blob_url: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    oidc_issuer_url: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    snapshot_class: str
    tags: dict[str, str]
    name_seed: str  # stack-unique prefix for derived names (role assignment GUIDs)


@dataclass(frozen=True)
class ClinicBackupArgs:
    plan: ClinicPlan
    backup: model.Backup
    orca: model.Orca
    target: BackupTarget
    pool_selector: dict[str, str]
    pool_taint: tuple[str, str]
    provider: k8s.Provider
    clinic_facing_cidrs: tuple[str, ...]
    depends_on: list[pulumi.Resource]
    # Digest of the server's pod template (backup_plan.backup_key): names the pre-upgrade Jobs.
    backup_key: str
    # The name of the clinic's server Deployment, which the pre-upgrade backup stops.
    deployment: str


class ClinicBackup(pulumi.ComponentResource):
    """Backs up one clinic; exposes the Job the ORCA Deployment must wait for, and that Job's uid."""

    pre_upgrade_job: k8s.batch.v1.Job
    # The uid of the pre-upgrade backup Job: the server's pod template carries it, and its gate checks the volume.
    backup_job_uid: pulumi.Output[str]
    restore_job: k8s.batch.v1.Job | None
    verify_job: k8s.batch.v1.Job | None

    def __init__(self, name: str, args: ClinicBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:ClinicBackup", name, None, opts)
        p = args.plan
        self._args = args
        ns = p.namespace
        labels = naming.clinic_labels(p.id, naming.BACKUP_ROLE)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        t = args.target

        # An identity per clinic: its federated credential trusts only this namespace's service account, and its
        # role assignment reaches only blobs under '<clinic>/'. Dumps are immutable once written.
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=f"id-backup-{p.id}",
            resource_group_name=t.resource_group_name,
            location=t.location,
            tags=t.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            federated_identity_credential_resource_name="aks-orca-backup",
            resource_name_=identity.name,
            resource_group_name=t.resource_group_name,
            issuer=t.oidc_issuer_url,
            subject=backup_plan.workload_subject(ns),
            audiences=[backup_plan.WORKLOAD_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=self),
        )
        authorization.RoleAssignment(
            f"{name}-blob-role",
            role_assignment_name=naming.assignment_name(t.name_seed, f"{p.id}-blob-data"),
            scope=t.account_id,
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=pulumi.Output.from_input(t.subscription_id).apply(
                lambda sub: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                    f"{backup_plan.BLOB_DATA_CONTRIBUTOR}"
                )
            ),
            condition=backup_plan.blob_condition(p.id),
            condition_version="2.0",
            description=f"pg_dump archives of clinic {p.id}, under its own prefix only",
            opts=pulumi.ResourceOptions(parent=self),
        )

        def meta(name_: str, annotations: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=name_, namespace=ns, labels=labels, annotations=annotations)

        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta(
                backup_plan.SERVICE_ACCOUNT,
                {"azure.workload.identity/client-id": identity.client_id},  # type: ignore[dict-item]
            ),
            opts=k8s_opts,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=meta(backup_plan.SERVICE_ACCOUNT),
            # Only what the scripts do, only in this namespace: find the ORCA pod, run pg_dump in it, manage snapshots,
            # stop the server before a pre-upgrade backup (the scale subresource only: never its template).
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"], verbs=["get", "list"]),
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods/exec"], verbs=["create"]),
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["persistentvolumeclaims"], verbs=["get"]),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["snapshot.storage.k8s.io"],
                    resources=["volumesnapshots"],
                    verbs=["get", "list", "watch", "create", "delete"],
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["apps"], resources=["deployments"], verbs=["get"], resource_names=[args.deployment]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["apps"],
                    resources=["deployments/scale"],
                    verbs=["get", "patch", "update"],
                    resource_names=[args.deployment],
                ),
            ],
            opts=k8s_opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-rolebinding",
            metadata=meta(backup_plan.SERVICE_ACCOUNT),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=backup_plan.SERVICE_ACCOUNT
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=backup_plan.SERVICE_ACCOUNT, namespace=ns)],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[role, sa])),
        )
        # Pruning hands a scheduled snapshot's content to the snapshot controller (cluster-scoped objects, hence a
        # ClusterRole); the admission guard narrows it to this namespace's scheduled snapshots.
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-snapshot-contents",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{backup_plan.CONTENT_ROLE}-{p.id}", labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=backup_plan.CONTENT_ROLE
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=backup_plan.SERVICE_ACCOUNT, namespace=ns)],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[sa])),
        )
        # Inside the maintenance window the platform's mover may move this clinic's server off a cordoned node.
        k8s.rbac.v1.RoleBinding(
            f"{name}-maintenance-mover",
            metadata=meta(maintenance.MOVER),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=maintenance.MOVER_POD_ROLE
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=maintenance.MOVER, namespace=maintenance.NAMESPACE)
            ],
            opts=k8s_opts,
        )
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=meta(backup_plan.SCRIPTS),
            # The point-in-time restore's steps too (issue 24): their names do not meet the dump scripts'.
            data={**backup_plan.scripts(args.orca.postgres_version), **wal_archive.scripts(args.orca.postgres_version)},
            opts=k8s_opts,
        )
        ready = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[binding, scripts]))

        suspended = not p.active
        self._cron(f"{name}-snapshots", "orca-snapshots", p.snapshot_schedule, "snapshot.sh", suspended, meta, ready)
        self._cron(f"{name}-dumps", "orca-dumps", p.dump_schedule, "dump.sh", suspended, meta, ready)

        # A Job's template cannot change; only its name (the pod template's digest, the restore id) makes it run again.
        # Routine setting changes (retention, tools image, account) must not re-run a backup or a restore.
        run_once = pulumi.ResourceOptions.merge(ready, pulumi.ResourceOptions(ignore_changes=["spec"]))

        # A restore builds its volume first, while the old server still serves; the verification gates it.
        self.restore_job = None
        self.verify_job = None
        restore = p.restore
        after_restore: list[pulumi.Resource] = []
        if restore is not None:
            if restore.from_dump is not None or restore.from_point_in_time is not None:
                pod = (
                    self._restore_pod(restore.id, restore.from_dump)
                    if restore.from_dump is not None
                    else self._pitr_restore_pod(restore)
                )
                self.restore_job = k8s.batch.v1.Job(
                    f"{name}-restore-{restore.id}",
                    metadata=meta(f"orca-restore-{restore.id}", await_for(14400)),
                    spec=self._job_spec(pod, deadline=14400),
                    opts=run_once,
                )
                after_restore.append(self.restore_job)
            # A dump or point-in-time restore must also have completed (its marker on the volume).
            marked = restore.from_dump is not None or restore.from_point_in_time is not None
            self.verify_job = k8s.batch.v1.Job(
                f"{name}-verify-{restore.id}",
                metadata=meta(f"orca-verify-{restore.id}", await_for(3600)),
                spec=self._job_spec(self._verify_pod(restore.id, dump=marked), deadline=3600),
                opts=pulumi.ResourceOptions.merge(run_once, pulumi.ResourceOptions(depends_on=after_restore)),
            )
            after_restore.append(self.verify_job)

        # Before a changed pod template (image, volume generation, anything ORCA runs) reaches the volume: stop the
        # server, dump from its stopped cluster, snapshot it. Named by the template's digest in Pulumi as in
        # Kubernetes: a new template is a new pair of Jobs, built from the current spec, and the Deployment depends
        # on them (an untargeted create stops `pulumi up --target`, pulumi/pulumi step_generator.go).
        key = args.backup_key
        stop_timeout = args.orca.termination_grace_seconds + 120
        stop = k8s.batch.v1.Job(
            f"{name}-pre-upgrade-stop-{key}",
            metadata=meta(f"orca-pre-upgrade-stop-{key}", await_for(stop_timeout + 600)),
            spec=self._job_spec(
                self._tools_pod(
                    "pre-upgrade-stop.sh", {"DEPLOYMENT": args.deployment, "STOP_TIMEOUT": str(stop_timeout)}
                ),
                deadline=stop_timeout + 600,
            ),
            opts=pulumi.ResourceOptions.merge(run_once, pulumi.ResourceOptions(depends_on=after_restore)),
        )
        self.pre_upgrade_job = k8s.batch.v1.Job(
            f"{name}-pre-upgrade-{key}",
            metadata=meta(f"orca-pre-upgrade-{key}", await_for(7200)),
            spec=self._job_spec(self._pre_upgrade_pod(key), deadline=7200),
            opts=pulumi.ResourceOptions.merge(run_once, pulumi.ResourceOptions(depends_on=[stop])),
        )
        self.backup_job_uid = self.pre_upgrade_job.metadata.apply(lambda m: (m.uid or "") if m else "")

        self._network_policies(name, meta, k8s_opts)
        self.register_outputs({"identity": identity.client_id})

    # -- pods -------------------------------------------------------------------------------------------------

    def _env(self, extra: dict[str, str] | None = None) -> list[k8s.core.v1.EnvVarArgs]:
        a = self._args
        p = a.plan
        values: dict[str, pulumi.Input[str]] = {
            "CLINIC": p.id,
            "SCRIPTS": SCRIPTS_MOUNT,
            "WORK": WORK,
            # The clinic's time zone as a POSIX rule (the monthly dump is the 1st there): no tzdata in the image.
            "TZ": schedule.posix_tz(a.orca.timezone),
            "SELECTOR": ",".join(f"{k}={v}" for k, v in naming.selector(p.id).items()),
            "SNAPSHOT_CLASS": a.target.snapshot_class,
            "RETAIN": str(a.backup.snapshot_retention_count),
            "BLOB_URL": a.target.blob_url,
            # azcopy keeps logs and job plans under HOME; the root file system is read-only.
            "HOME": WORK,
            "AZCOPY_LOG_LOCATION": f"{WORK}/azcopy",
            "AZCOPY_JOB_PLAN_LOCATION": f"{WORK}/azcopy",
            **(extra or {}),
        }
        return [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in values.items()]

    def _volumes(self) -> list[k8s.core.v1.VolumeArgs]:
        return [
            k8s.core.v1.VolumeArgs(
                name="scripts",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=backup_plan.SCRIPTS, default_mode=0o555),
            ),
            # A dump passes through here on its way to blob storage: sized for the clinic's volume.
            k8s.core.v1.VolumeArgs(
                name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=f"{self._args.plan.claim_gib}Gi")
            ),
        ]

    def _tools_container(
        self, name: str, script: str, extra_env: dict[str, str] | None = None
    ) -> k8s.core.v1.ContainerArgs:
        return k8s.core.v1.ContainerArgs(
            name=name,
            image=self._args.backup.tools_image,
            command=["/bin/sh", f"{SCRIPTS_MOUNT}/{script}"],
            env=self._env(extra_env),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK),
            ],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "50m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "512Mi"}
            ),
            security_context=tools_security_context(),
        )

    def _pod_spec(
        self,
        containers: list[k8s.core.v1.ContainerArgs],
        init_containers: list[k8s.core.v1.ContainerArgs] | None = None,
        extra_volumes: list[k8s.core.v1.VolumeArgs] | None = None,
        as_root: bool = False,
        holds: bool = False,
    ) -> k8s.core.v1.PodTemplateSpecArgs:
        """`holds`: the pod mounts the clinic volume, so the autoscaler must not evict it mid-step."""
        a = self._args
        key, value = a.pool_taint
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels={**naming.clinic_labels(a.plan.id, naming.BACKUP_ROLE), "azure.workload.identity/use": "true"},
                annotations=dict(SAFE_TO_EVICT) if holds else None,
            ),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=backup_plan.SERVICE_ACCOUNT,
                # kubectl needs the service account's token; its Role ends at this namespace.
                automount_service_account_token=True,
                restart_policy="Never",
                node_selector=a.pool_selector,
                tolerations=[k8s.core.v1.TolerationArgs(key=key, operator="Equal", value=value, effect="NoSchedule")],
                # Pods with ORCA's image run as root as ORCA does (each container sets its own context).
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
                )
                if as_root
                else tools_pod_security(),
                init_containers=init_containers,
                containers=containers,
                volumes=self._volumes() + (extra_volumes or []),
            ),
        )

    def _tools_pod(self, script: str, extra_env: dict[str, str] | None = None) -> k8s.core.v1.PodTemplateSpecArgs:
        return self._pod_spec([self._tools_container("backup", script, extra_env)])

    def _orca_container(
        self,
        name: str,
        script: str,
        extra_env: dict[str, str] | None = None,
        read_only: bool = False,
        more_env: list[k8s.core.v1.EnvVarArgs] | None = None,
    ) -> k8s.core.v1.ContainerArgs:
        """A step in ORCA's own image, with the clinic volume mounted as ORCA mounts it (and whole at /state): its
        PostgreSQL binaries match the data, and pg_ctlcluster finds the cluster where the server would."""
        a = self._args
        p = a.plan
        env = [
            *self._env({"TZ": a.orca.timezone, **(extra_env or {})}),
            k8s.core.v1.EnvVarArgs(name="STATE", value=orca_image.STATE_MOUNT),
            k8s.core.v1.EnvVarArgs(name="ORCA_DB_NAME", value="orca"),
            *(more_env or []),
        ]
        return k8s.core.v1.ContainerArgs(
            name=name,
            image=p.image,
            command=["/bin/sh", f"{SCRIPTS_MOUNT}/{script}"],
            env=env,
            volume_mounts=[
                *state_mounts(read_only=read_only),
                whole_volume_mount(read_only=read_only),
                k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK),
            ],
            resources=size_resources(p.size),
            security_context=orca_security_context(),
        )

    def _pre_upgrade_pod(self, key: str) -> k8s.core.v1.PodTemplateSpecArgs:
        """Dump from the stopped cluster (ORCA's image), snapshot and store (tools), then mark the volume."""
        p = self._args.plan
        dump = self._orca_container("dump", "pre-upgrade-dump.sh", more_env=[expect_data_env()])
        store = self._tools_container("store", "pre-upgrade-store.sh", {"PVC": p.pvc_name})
        # The Job's own uid (a label the Job controller puts on its pods), which ORCA's pod template carries.
        job_uid = k8s.core.v1.EnvVarArgs(
            name="JOB_UID",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                    field_path="metadata.labels['batch.kubernetes.io/controller-uid']"
                )
            ),
        )
        mark = self._orca_container("mark", "pre-upgrade-mark.sh", {"BACKUP_KEY": key}, more_env=[job_uid])
        return self._pod_spec(
            [mark], init_containers=[dump, store], extra_volumes=state_volumes(p.pvc_name), as_root=True, holds=True
        )

    def _verify_pod(self, restore_id: str, dump: bool) -> k8s.core.v1.PodTemplateSpecArgs:
        """Read-only look at the restored volume before anything runs on it."""
        p = self._args.plan
        env = {"RESTORE_ID": restore_id}
        if dump:
            env["RESTORE_MARKER"] = f".orca-platform-restored-{restore_id}"
        verify = self._orca_container("verify", "verify.sh", env, read_only=True)
        return self._pod_spec([verify], extra_volumes=state_volumes(p.pvc_name), as_root=True, holds=True)

    def _restore_pod(self, restore_id: str, dump: str) -> k8s.core.v1.PodTemplateSpecArgs:
        """Fetch the dump, seed the new volume from the image, load the dump into its PostgreSQL: before ORCA starts."""
        p = self._args.plan
        env_extra = {"RESTORE_ID": restore_id, "DUMP": dump}
        # A dump restore builds a new, empty volume on purpose: its seed expects no data.
        seed = seed_container(p.image, expect_data=False)
        fetch = self._tools_container("fetch-dump", "restore-fetch.sh", env_extra)
        apply = self._orca_container("restore", "restore-apply.sh", env_extra)
        volumes = state_volumes(p.pvc_name)
        return self._pod_spec([apply], init_containers=[seed, fetch], extra_volumes=volumes, as_root=True, holds=True)

    def _pitr_restore_pod(self, restore: ClinicRestore) -> k8s.core.v1.PodTemplateSpecArgs:
        """A new volume brought to a point in time (orca_platform/backup/pitr.py, docs/recovery.md): seed it from
        the image, replace its data directory with the newest base backup before the target (tools, as postgres),
        then ORCA's PostgreSQL replays the source generation's WAL, fetched by a native sidecar, to exactly the
        target and promotes."""
        a = self._args
        p = a.plan
        if restore.from_point_in_time is None:
            raise ValueError(f"restore {restore.id} has no point in time")
        target = recovery_time(parse_target(restore.from_point_in_time))
        env = {
            "RESTORE_ID": restore.id,
            "TARGET_TIME": target,
            "SOURCE_SERVER": p.archive_source(restore),
            "AZURE_AUTH_MODE": "default",
        }
        seed = seed_container(p.image, expect_data=False)
        source_url = k8s.core.v1.EnvVarArgs(name="SOURCE_URL", value=wal_archive.archive_url(a.target.blob_url, p.id))
        as_postgres = k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=a.orca.postgres_uid,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        )
        data_dir = k8s.core.v1.VolumeMountArgs(
            name="state", mount_path="/var/lib/postgresql", sub_path="postgresql-data"
        )

        def tools(name_: str, script: str, sidecar: bool) -> k8s.core.v1.ContainerArgs:
            return k8s.core.v1.ContainerArgs(
                name=name_,
                image=a.backup.tools_image,
                command=["/bin/sh", f"{SCRIPTS_MOUNT}/{script}"],
                env=[*self._env({**env, "STATE": orca_image.STATE_MOUNT}), source_url],
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
                    k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK),
                    whole_volume_mount(),
                    data_dir,
                ],
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "50m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "512Mi"}
                ),
                security_context=as_postgres,
                restart_policy="Always" if sidecar else None,
            )

        fetch = tools("restore-base", "restore-base.sh", sidecar=False)
        wal = tools("wal-server", "wal-server.sh", sidecar=True)
        recover = self._orca_container("recover", "recover.sh", env)
        volumes = state_volumes(p.pvc_name)
        return self._pod_spec(
            [recover], init_containers=[seed, fetch, wal], extra_volumes=volumes, as_root=True, holds=True
        )

    @staticmethod
    def _job_spec(pod: k8s.core.v1.PodTemplateSpecArgs, deadline: int) -> k8s.batch.v1.JobSpecArgs:
        return k8s.batch.v1.JobSpecArgs(backoff_limit=2, active_deadline_seconds=deadline, template=pod)

    def _cron(
        self,
        resource_name: str,
        object_name: str,
        schedule: str,
        script: str,
        suspended: bool,
        meta: Meta,
        opts: pulumi.ResourceOptions,
    ) -> None:
        k8s.batch.v1.CronJob(
            resource_name,
            metadata=meta(object_name),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=schedule,
                time_zone=self._args.orca.timezone,
                # A suspended clinic has no server to dump and a volume that does not change.
                suspend=suspended,
                concurrency_policy="Forbid",
                starting_deadline_seconds=3600,
                # The failure signal: failed runs stay listed (kubectl get jobs -n <ns>) for the on-call to see.
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                # Labelled like every backup Job, so `kubectl get jobs -A -l orca-platform.io/role=backup` lists them
                # and the failed-backup alert selects them.
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=naming.clinic_labels(self._args.plan.id, naming.BACKUP_ROLE)
                    ),
                    spec=self._job_spec(self._tools_pod(script), 3600),
                ),
            ),
            opts=opts,
        )

    def _network_policies(self, name: str, meta: Meta, opts: pulumi.ResourceOptions) -> None:
        np = k8s.networking.v1
        selector = k8s.meta.v1.LabelSelectorArgs(match_labels=naming.selector(self._args.plan.id, naming.BACKUP_ROLE))
        # Backup pods accept nothing and speak HTTPS only: to the API server (exec, snapshots), to Entra ID (token
        # exchange) and to the backup account's private endpoint.
        np.NetworkPolicy(
            f"{name}-egress",
            metadata=meta("orca-backup"),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=selector,
                policy_types=["Ingress", "Egress"],
                egress=[
                    dns_egress_rule(),
                    np.NetworkPolicyEgressRuleArgs(
                        # Anywhere but other clinics' pods and frontends: the API server and the blob endpoint have
                        # VNet addresses.
                        to=[
                            np.NetworkPolicyPeerArgs(
                                ip_block=np.IPBlockArgs(cidr="0.0.0.0/0", except_=list(self._args.clinic_facing_cidrs))
                            )
                        ],
                        ports=[np.NetworkPolicyPortArgs(protocol="TCP", port=443)],
                    ),
                ],
            ),
            opts=opts,
        )
        # Cilium gives the API server its own identity, which ipBlock rules do not match: allow it by entity.
        ApiObject(
            f"{name}-apiserver",
            api_version="cilium.io/v2",
            kind="CiliumNetworkPolicy",
            metadata=meta("orca-backup-apiserver"),
            fields={
                "spec": {
                    "endpointSelector": {"matchLabels": naming.selector(self._args.plan.id, naming.BACKUP_ROLE)},
                    "egress": [
                        {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
                    ],
                }
            },
            opts=opts,
        )
