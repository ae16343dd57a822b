"""The pieces of an ORCA pod that the server Deployment and the dump-restore Job share: one definition each."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from orca_platform.catalogue import ClinicSize
from orca_platform.orca_image import SCRATCH_DIRS, STATE_DIRS, STATE_MOUNT, seed_script

from .pod_security import orca_security_context

STATE_VOLUME = "state"


def state_mounts() -> list[k8s.core.v1.VolumeMountArgs]:
    """Every state directory on its subPath of the clinic volume, and the scratch emptyDirs."""
    return [
        k8s.core.v1.VolumeMountArgs(name=STATE_VOLUME, mount_path=path, sub_path=sub) for sub, path in STATE_DIRS
    ] + [k8s.core.v1.VolumeMountArgs(name=v, mount_path=path) for v, path in SCRATCH_DIRS]


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


def seed_container(image: str) -> k8s.core.v1.ContainerArgs:
    """Init container: on a new volume, copy what the image ships in each state directory, once."""
    return k8s.core.v1.ContainerArgs(
        name="seed-state",
        image=image,
        command=["/bin/sh", "-c", seed_script()],
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name=STATE_VOLUME, mount_path=STATE_MOUNT)],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "256Mi"}
        ),
        security_context=orca_security_context(),
    )


def size_resources(size: ClinicSize) -> k8s.core.v1.ResourceRequirementsArgs:
    """Requests and limits of the clinic's size class."""
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": size.cpu_request, "memory": size.memory_request},
        limits={"cpu": size.cpu_limit, "memory": size.memory_limit},
    )
