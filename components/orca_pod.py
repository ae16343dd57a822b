"""The pieces of an ORCA pod that the server Deployment and the clinic's jobs share: one definition each."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import _types as pulumi_types  # input_type_to_dict: the plain form of an Args object, for its digest

from orca_platform.backup.orca_image import (
    EXPECT_DATA_ENV,
    GATE_SCRIPT,
    SCRATCH_DIRS,
    STATE_DIRS,
    STATE_ENV,
    STATE_MOUNT,
    seed_script,
)
from orca_platform.model.catalogue import ClinicSize

from .pod_security import orca_security_context

STATE_VOLUME = "state"
# Pods that hold the clinic volume: the cluster autoscaler never evicts them to remove their node
# (cluster-autoscaler FAQ, "What types of pods can prevent CA from removing a node?").
SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}


def state_mounts(read_only: bool = False) -> list[k8s.core.v1.VolumeMountArgs]:
    """Every state directory on its subPath of the clinic volume, and the scratch emptyDirs."""
    return [
        k8s.core.v1.VolumeMountArgs(
            name=STATE_VOLUME, mount_path=path, sub_path=sub, read_only=True if read_only else None
        )
        for sub, path in STATE_DIRS
    ] + [k8s.core.v1.VolumeMountArgs(name=v, mount_path=path) for v, path in SCRATCH_DIRS]


def whole_volume_mount(read_only: bool = False) -> k8s.core.v1.VolumeMountArgs:
    """The clinic volume as one directory, for the steps that look at all of it (seed, gate, markers)."""
    return k8s.core.v1.VolumeMountArgs(name=STATE_VOLUME, mount_path=STATE_MOUNT, read_only=True if read_only else None)


def state_env() -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=STATE_ENV, value=STATE_MOUNT)


def state_volumes(claim: str) -> list[k8s.core.v1.VolumeArgs]:
    """The clinic volume and the scratch emptyDirs a read-only root file system still needs."""
    return [
        k8s.core.v1.VolumeArgs(
            name=STATE_VOLUME,
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim),
        )
    ] + [
        k8s.core.v1.VolumeArgs(name=v, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="2Gi"))
        for v, _ in SCRATCH_DIRS
    ]


def _small() -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "256Mi"}
    )


# The clinic's seed policy: whether its live volume must already hold data (the stack history's answer). A ConfigMap,
# not a value in the pod template: the answer turns from "0" to "1" at the update after a clinic's first, and a
# changed template would restart every server and run its pre-upgrade backup for nothing.
SEED_POLICY = "orca-seed-policy"


def expect_data_env() -> k8s.core.v1.EnvVarArgs:
    """EXPECT_DATA read from the clinic's seed policy when the container starts."""
    return k8s.core.v1.EnvVarArgs(
        name=EXPECT_DATA_ENV,
        value_from=k8s.core.v1.EnvVarSourceArgs(
            config_map_key_ref=k8s.core.v1.ConfigMapKeySelectorArgs(name=SEED_POLICY, key=EXPECT_DATA_ENV)
        ),
    )


def seed_container(image: str, expect_data: bool | None = False) -> k8s.core.v1.ContainerArgs:
    """Init container: on a new volume, copy what the image ships in each state directory into it, once, and only
    into empty directories. With `expect_data` (the clinic had data) it never copies: an empty volume stops here.
    None: read the answer from the clinic's seed policy (the server's own pod)."""
    expect = (
        expect_data_env()
        if expect_data is None
        else k8s.core.v1.EnvVarArgs(name=EXPECT_DATA_ENV, value="1" if expect_data else "0")
    )
    return k8s.core.v1.ContainerArgs(
        name="seed-state",
        image=image,
        command=["/bin/sh", "-c", seed_script()],
        env=[state_env(), expect],
        volume_mounts=[whole_volume_mount()],
        resources=_small(),
        security_context=orca_security_context(),
    )


def gate_container(image: str, backup_key: str, backup_job: pulumi.Input[str]) -> k8s.core.v1.ContainerArgs:
    """Init container before everything else: the pre-upgrade backup of this very template is on the volume."""
    return k8s.core.v1.ContainerArgs(
        name="backup-gate",
        image=image,
        command=["/bin/sh", "-c", GATE_SCRIPT],
        env=[
            state_env(),
            k8s.core.v1.EnvVarArgs(name="BACKUP_KEY", value=backup_key),
            k8s.core.v1.EnvVarArgs(name="BACKUP_JOB", value=backup_job),
        ],
        volume_mounts=[whole_volume_mount(read_only=True)],
        resources=_small(),
        security_context=orca_security_context(),
    )


def size_resources(size: ClinicSize) -> k8s.core.v1.ResourceRequirementsArgs:
    """Requests and limits of the clinic's size class."""
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": size.cpu_request, "memory": size.memory_request},
        limits={"cpu": size.cpu_limit, "memory": size.memory_limit},
    )


def plain(value: Any) -> Any:
    """An Args tree as plain data (dicts with the API's field names), for a digest of what a pod runs.

    Only plain values may be digested: an Output would make the digest unknowable before the deployment."""
    if isinstance(value, pulumi.Output):
        raise TypeError("a pod template digest cannot include an Output")
    if pulumi_types.is_input_type(type(value)):
        return {k: plain(v) for k, v in pulumi_types.input_type_to_dict(value).items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
