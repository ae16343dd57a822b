"""Security contexts, in one place so every ORCA and backup container gets the same, argued, settings."""

from __future__ import annotations

import pulumi_kubernetes as k8s

# Non-root user of the tools image (distroless convention).
TOOLS_UID = 65532


def orca_security_context() -> k8s.core.v1.SecurityContextArgs:
    """The tightest context ORCA tolerates. Loosened on purpose: it runs as root, because ORCA's monitor and
    PostgreSQL's Debian scripts (pg_ctlcluster) start as root and drop to the orca and postgres users; so it keeps
    CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID and KILL. Everything else is dropped, the root file system is
    read-only (state lives on the clinic volume, scratch on emptyDirs) and nothing can gain privileges."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(
            drop=["ALL"], add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]
        ),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def tools_security_context() -> k8s.core.v1.SecurityContextArgs:
    """Backup tools need no privilege at all: 'restricted' in full."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=TOOLS_UID,
        run_as_group=TOOLS_UID,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def tools_pod_security() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=TOOLS_UID,
        run_as_group=TOOLS_UID,
        fs_group=TOOLS_UID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )
