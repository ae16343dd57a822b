"""The ORCA pod's continuous WAL archiving (issue 24): the settings init container and the shipper sidecar.

The scripts are orca_platform.backup.pitr's, in the clinic's `orca-pitr` ConfigMap; the pod's digest (the
pre-upgrade backup's name) covers these containers, so everything here is plain data but the archive's URL, which
the sidecar reads from that ConfigMap when it starts.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.backup import pitr
from orca_platform.backup.orca_image import STATE_ENV, STATE_MOUNT
from orca_platform.conventions import (
    PROMETHEUS_PORT,
    PROMETHEUS_SCRAPE,
    WAL_METRICS_PORT,
    WORKLOAD_IDENTITY_SKIP_CONTAINERS,
    WORKLOAD_IDENTITY_USE_LABEL,
)

from .orca_pod import STATE_VOLUME
from .pod_security import orca_security_context

CONFIG_MAP = "orca-pitr"
SCRIPTS_VOLUME = "pitr-scripts"
SCRIPTS_MOUNT = "/etc/orca-platform/pitr"
ARCHIVE_URL_KEY = "archive-url"
SHIPPER = "wal-shipper"
SETTINGS = "archive-settings"
# The dumps' daily container: immutable for the daily retention (35 days in prod), then deleted by the platform's
# lifecycle rule, never by the clinic's identity; the clinic writes only under '<clinic>/' (the ABAC condition).
ARCHIVE_CONTAINER = "daily"


def settings(postgres_version: str) -> pitr.PitrSettings:
    return pitr.PitrSettings(postgres_version)


def archive_url(blob_url: pulumi.Input[str], clinic_id: str) -> pulumi.Output[str]:
    """barman-cloud's destination: the container and the clinic's prefix (the server name is the generation)."""
    return pulumi.Output.from_input(blob_url).apply(lambda u: f"{u.rstrip('/')}/{ARCHIVE_CONTAINER}/{clinic_id}")


def scripts(postgres_version: str) -> dict[str, str]:
    return pitr.scripts(settings(postgres_version))


def config_map_data(postgres_version: str, url: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    data: dict[str, pulumi.Input[str]] = dict(scripts(postgres_version))
    data[ARCHIVE_URL_KEY] = url
    return data


def scripts_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=SCRIPTS_VOLUME, config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=CONFIG_MAP, default_mode=0o555)
    )


def _scripts_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=SCRIPTS_VOLUME, mount_path=SCRIPTS_MOUNT, read_only=True)


def _env(name: str, value: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=name, value=value)


def settings_container(image: str, clinic_id: str) -> k8s.core.v1.ContainerArgs:
    """Init container (ORCA's image, after the seed): the archive settings and the spool command onto the volume's
    cluster configuration, and the spool, at every start."""
    return k8s.core.v1.ContainerArgs(
        name=SETTINGS,
        image=image,
        command=["/bin/sh", f"{SCRIPTS_MOUNT}/install-archive.sh"],
        env=[_env(STATE_ENV, STATE_MOUNT), _env("SCRIPTS", SCRIPTS_MOUNT), _env("CLINIC", clinic_id)],
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name=STATE_VOLUME, mount_path=STATE_MOUNT), _scripts_mount()],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "128Mi"}
        ),
        security_context=orca_security_context(),
    )


# Measured (docs/recovery.md): a WAL upload 0.35 s of CPU and 57 MB peak, a base backup about 60 MB peak.
SHIPPER_REQUESTS = {"cpu": f"{pitr.SHIPPER_CPU_REQUEST_M}m", "memory": f"{pitr.SHIPPER_MEMORY_REQUEST_MIB}Mi"}
SHIPPER_LIMITS = {"cpu": "500m", "memory": "256Mi"}


def shipper_container(
    tools_image: str, clinic_id: str, generation: str, postgres_uid: int
) -> k8s.core.v1.ContainerArgs:
    """Native sidecar (an init container with restartPolicy Always: it starts before ORCA and stops after it, so
    PostgreSQL's last WAL is spooled while it still runs). It runs as PostgreSQL's own user: it removes what it
    shipped from the spool, and peer authentication over the pod's socket admits it as postgres for the heartbeat
    and the base backups. The archive's prefix is the volume generation: a restore's new timeline writes apart."""
    return k8s.core.v1.ContainerArgs(
        name=SHIPPER,
        image=tools_image,
        restart_policy="Always",
        command=["/bin/sh", f"{SCRIPTS_MOUNT}/ship-wal.sh"],
        ports=[k8s.core.v1.ContainerPortArgs(name="wal-metrics", container_port=WAL_METRICS_PORT, protocol="TCP")],
        env=[
            _env("SCRIPTS", SCRIPTS_MOUNT),
            _env("CLINIC", clinic_id),
            _env("SERVER_NAME", generation),
            _env("PGHOST", "/run/postgresql"),
            _env("PGUSER", "postgres"),
            _env("AZURE_AUTH_MODE", "default"),
            _env("HOME", "/tmp"),  # noqa: S108 - the pod's own emptyDir
            _env("METRICS_DIR", "/tmp/orca-wal-metrics"),  # noqa: S108
            _env("METRICS_PORT", str(WAL_METRICS_PORT)),
            k8s.core.v1.EnvVarArgs(
                name="ARCHIVE_URL",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    config_map_key_ref=k8s.core.v1.ConfigMapKeySelectorArgs(name=CONFIG_MAP, key=ARCHIVE_URL_KEY)
                ),
            ),
        ],
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(
                name=STATE_VOLUME, mount_path="/var/lib/postgresql", sub_path="postgresql-data"
            ),
            k8s.core.v1.VolumeMountArgs(name="run", mount_path="/run"),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108
            _scripts_mount(),
        ],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=SHIPPER_REQUESTS, limits=SHIPPER_LIMITS),
        security_context=k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=postgres_uid,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
    )


def identity_metadata(token_free: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) that let the webhook give the clinic's identity to the shipper alone."""
    annotations = {
        WORKLOAD_IDENTITY_SKIP_CONTAINERS: ";".join(token_free),
        # The shipper's metrics, for the WAL alerts (orca_platform/monitoring/alerts.py).
        PROMETHEUS_SCRAPE: "true",
        PROMETHEUS_PORT: str(WAL_METRICS_PORT),
    }
    return {WORKLOAD_IDENTITY_USE_LABEL: "true"}, annotations


def without_shipper_image(template: dict[str, Any]) -> dict[str, Any]:
    """The pod template as data with the shipper's image blanked, for the pre-upgrade backup's digest."""
    spec = dict(template["spec"])
    spec["initContainers"] = [
        {**c, "image": ""} if c.get("name") == SHIPPER else c for c in spec.get("initContainers") or []
    ]
    return {**template, "spec": spec}
