"""The platform's shared names: labels, annotations, ports, engine markers and pod-spec paths.

Standard library only: the audit rules (run by the policy pack in policy/venv, which has no pydantic) import it.
"""

from __future__ import annotations

import re

# --- labels and annotations of the platform ---------------------------------------------------------------------

LABEL_PREFIX = "orca-platform.io"
CLINIC_LABEL = f"{LABEL_PREFIX}/clinic"
DATA_LABEL = f"{LABEL_PREFIX}/data"
ROLE_LABEL = f"{LABEL_PREFIX}/role"
POOL_LABEL = f"{LABEL_PREFIX}/pool"
SNAPSHOT_LABEL = f"{LABEL_PREFIX}/snapshot"
PURPOSE_ANNOTATION = f"{LABEL_PREFIX}/purpose"
CLINIC_NAME_ANNOTATION = f"{LABEL_PREFIX}/clinic-name"
# The value of DATA_LABEL on everything that holds clinic data.
CLINIC_DATA = "clinic"

# --- Kubernetes' own label keys ------------------------------------------------------------------------------

# The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels).
APP_NAME_LABEL = "app.kubernetes.io/name"
APP_INSTANCE_LABEL = "app.kubernetes.io/instance"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# Set by the API server on every Namespace (GA in Kubernetes 1.22): how a NetworkPolicy names a namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Pod Security admission's level per namespace (kubernetes.io/docs/concepts/security/pod-security-admission).
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_SECURITY_WARN = "pod-security.kubernetes.io/warn"


def platform_labels() -> dict[str, str]:
    """The two labels every object of the platform carries (a new dict: callers add their own)."""
    return {PART_OF_LABEL: "orca-platform", MANAGED_BY_LABEL: "pulumi"}


# --- Azure load balancer annotations (cloud-provider-azure, docs/services/annotations) -------------------------

_AZURE_LB = "service.beta.kubernetes.io"
INTERNAL_LB = f"{_AZURE_LB}/azure-load-balancer-internal"
INTERNAL_LB_SUBNET = f"{_AZURE_LB}/azure-load-balancer-internal-subnet"
LB_IPV4 = f"{_AZURE_LB}/azure-load-balancer-ipv4"
LB_DENY_OTHERS = f"{_AZURE_LB}/azure-deny-all-except-load-balancer-source-ranges"
LB_ALLOWED_RANGES = f"{_AZURE_LB}/azure-allowed-ip-ranges"
# A port left off the load balancer: format with port=.
# cloud-provider-azure pkg/consts/consts.go PortAnnotationPrefixPattern + PortAnnotationNoLBRule.
NO_LB_RULE = _AZURE_LB + "/port_{port}_no_lb_rule"
NGINX_POLICIES = "nginx.org/policies"

# --- Azure Workload Identity (azure/azure-workload-identity, "Service Account Labels and Annotations") ----------
# Only pods with this label get the webhook's token; it goes to every container the annotation does not name (';').
WORKLOAD_IDENTITY_USE_LABEL = "azure.workload.identity/use"
WORKLOAD_IDENTITY_SKIP_CONTAINERS = "azure.workload.identity/skip-containers"

# --- managed Prometheus' pod-annotation scraping (Azure/prometheus-collector, podannotationnamespaceregex) --------
PROMETHEUS_SCRAPE = "prometheus.io/scrape"
PROMETHEUS_PORT = "prometheus.io/port"

# --- Pulumi Kubernetes provider annotations ----------------------------------------------------------------------

SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
# Apply a field another field manager holds (e.g. `replicas` set through the scale subresource) instead of failing.
PATCH_FORCE = "pulumi.com/patchForce"

# --- ports of the ORCA image ----------------------------------------------------------------------------------------

GLSERVER_PORT = 8000  # glserver: monsiaj client (JSON-RPC over HTTP) and the HTTP API
PUSH_PORT = 9400  # PUSH notifications (WebSocket /ws), unauthenticated: never beyond the clinic's own networks
POSTGRES_PORT = 5432  # inside the pod only

# The ORCA pod's WAL shipper serves its metrics here (orca_platform/backup/pitr.py).
WAL_METRICS_PORT = 9187

# --- markers the engine puts in property values ----------------------------------------------------------------

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - the engine's secret marker, not a secret
# pulumi_policy's placeholders for values a preview cannot know yet (pulumi_policy/proxy.py).
UNKNOWN_VALUES = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)

# --- where each workload kind keeps its pod template ---------------------------------------------------------

# Path to the pod template (metadata + spec) of each workload kind; a bare Pod is its own template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# Path to the pod spec of each kind, Pod included.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    **{kind: (*path, "spec") for kind, path in POD_TEMPLATE_PATHS.items()},
}

# The names the snapshot Jobs give their VolumeSnapshots (backup_plan.SNAPSHOT_SCRIPT): <claim>-[pre-upgrade-]<UTC
# stamp>.
SNAPSHOT_NAME = re.compile(r"^(?P<pvc>orca-state(?:-[a-z0-9-]+?)?)-(?:pre-upgrade-)?[0-9]{14}$")


def snapshot_volume(name: str) -> str | None:
    """The volume a snapshot (as this platform names them) was taken of, or None if the name is not ours."""
    m = SNAPSHOT_NAME.match(name)
    return m["pvc"] if m else None
