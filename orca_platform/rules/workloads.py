"""Workloads and supply chain: no host access, bounded resources, reviewed images pinned to a version or digest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from orca_platform.safety.prod_floors import digest_breach, image_parts, registry_breach

from ..conventions import (
    CLINIC_LABEL,
    POD_SECURITY_ENFORCE,
)
from .context import RuleContext, environment_of, is_prod
from .kubernetes import each_container, each_image, pod_spec
from .registry import A, Domain, Finding, M
from .values import as_list, as_map, as_text, dig, is_unknown, number, truthy, unwrap
from .view import ResourceView

DOMAIN = Domain(
    "Workloads and supply chain",
    "What runs in the pods: no host access, bounded resources, reviewed and pinned images.",
)
rule = DOMAIN.rule


# Pod Security 'baseline' allows adding only these capabilities; anything else is a privilege.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


@rule(
    "no-host-access",
    "No pod shares the host or runs privileged",
    "hostNetwork/hostPID/hostIPC, hostPath volumes, host ports, privileged containers, privilege escalation and "
    "capabilities beyond Pod Security 'baseline' all let one clinic's pod reach the node and every other clinic.",
    M,
    what=(
        "no hostNetwork/hostPID/hostIPC, hostPath, host ports, privileged containers, privilege escalation or "
        "capabilities beyond Pod Security *baseline* (Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs)"
    ),
)
def _no_host(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    pod = pod_spec(v)
    if pod is None:
        return
    what = v.display
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if truthy(pod.get(key)):
            yield f"{what} sets {key}"
    for vol in as_list(pod.get("volumes")):
        if as_map(dig(vol, "hostPath")):
            yield f"{what} mounts a hostPath volume ({as_text(dig(vol, 'name'))})"
    for where, c in each_container(v):
        sc = as_map(c.get("securityContext"))
        if truthy(sc.get("privileged")):
            yield f"{where} is privileged"
        if truthy(sc.get("allowPrivilegeEscalation")):
            yield f"{where} allows privilege escalation"
        extra = sorted(
            cap
            for cap in (as_text(x).upper().removeprefix("CAP_") for x in as_list(dig(sc, "capabilities", "add")))
            if cap and cap not in BASELINE_CAPABILITIES
        )
        if extra:
            yield f"{where} adds capabilities {', '.join(extra)}"
        for port in as_list(c.get("ports")):
            if (number(dig(port, "hostPort")) or 0) > 0:
                yield f"{where} binds a host port"


@rule(
    "clinic-namespace-pod-security",
    "Clinic namespaces enforce Pod Security 'baseline' or stricter",
    "The admission controller then refuses privileged or host-sharing pods even if a rule here were bypassed.",
    A,
    what="clinic namespaces enforce Pod Security `baseline` or `restricted`",
)
def _pod_security(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if v.kind == "Namespace" and as_text(v.labels.get(CLINIC_LABEL)):
        level = as_text(v.labels.get(POD_SECURITY_ENFORCE))
        if level not in ("baseline", "restricted"):
            yield f"clinic namespace {v.k8s_name} enforces Pod Security '{level or 'privileged (none set)'}'"


@rule(
    "container-resources",
    "Every container has requests and limits",
    "Requests let the scheduler place clinics by what they need (the density plan counts on them); limits stop one "
    "clinic's runaway process from starving or evicting its neighbours on the node.",
    A,
    what="every container (init containers too) has CPU and memory requests and limits",
)
def _resources(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for where, c in each_container(v):
        res = as_map(c.get("resources"))
        missing = [
            f"{part}.{what}"
            for part in ("requests", "limits")
            for what in ("cpu", "memory")
            if dig(res, part, what) is None
        ]
        if missing:
            yield f"{where} has no {', '.join(missing)}"


@rule(
    "image-pinned",
    "Every image names a version (tag or digest), never 'latest'",
    "An auditor asks which server a clinic ran: 'latest' or no tag names nothing, and a restart may silently pull "
    "another build.",
    M,
    what="every container image has a tag or digest, never `latest`",
)
def _image_pinned(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for where, image in each_image(v):
        _, _, tag = image_parts(image)
        if not tag or tag == "latest":
            yield f"{where} runs {image} (no version)"


@rule(
    "image-private-registry",
    "Images come from the platform's private registry",
    "There is no official ORCA image: the operator builds it. Public images are unreviewed supply chain.",
    A,
    what="images come from `*.azurecr.io`",
)
def _image_registry(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for where, image in each_image(v):
        registry, _, _ = image_parts(image)
        if not registry.endswith(ctx.registry_suffixes):
            yield f"{where} image {image} is not from a private registry"


@rule(
    "image-allowed-registry",
    "Images come only from the registries the stack allows",
    "The nodes pull with AcrPull on the stack's own registry; an image from anywhere else is unreviewed supply chain "
    "for a server that holds patient records, or does not start at all. The program refuses the same images at "
    "`pulumi up` (orca_platform/safety/prod_floors.py).",
    M,
    scope="stack",
    what=(
        "images come only from the registries the stack allows: `--allowed-registry` / policy config "
        "`allowedRegistries`, else the registries the stack grants AcrPull on (`<name>.azurecr.io`)"
    ),
)
def _image_allowed(views: Sequence[ResourceView], ctx: RuleContext) -> Iterator[Finding]:
    allowed = ctx.registries(views)
    for v in views:
        for where, image in each_image(v):
            breach = registry_breach(image, allowed)
            if breach:
                yield Finding(f"{where} image {image} {breach}", view=v)


@rule(
    "image-digest-prod",
    "In production, images are pinned by digest",
    "A tag can be pushed again with another build; only a digest names the build an auditor, a restore or a "
    "rollback can rely on.",
    M,
    what="in production, every image is pinned by digest (`@sha256:`)",
)
def _image_digest(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not is_prod(environment_of(v, ctx)):
        return
    for where, image in each_image(v):
        breach = digest_breach(image)
        if breach:
            yield f"{where} image {image} {breach}"


@rule(
    "helm-chart-pinned",
    "Helm charts are installed at a pinned version",
    "Without a version every update may install a different controller in front of all clinics.",
    A,
    what="every Helm release names a chart version",
)
def _chart_pinned(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    version = v.props.get("version")
    if v.type.startswith("kubernetes:helm.sh/") and not as_text(version) and not is_unknown(unwrap(version)):
        yield f"Helm release {v.name} installs chart {as_text(v.props.get('chart'))} at no pinned version"
