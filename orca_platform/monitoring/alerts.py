"""Alert rules as data: PromQL over the metrics Azure Monitor managed Prometheus collects from the cluster.

components/monitoring.py only places these (one Azure PrometheusRuleGroup per RuleGroup); `make checks` runs every
expression through `promtool check rules`, and tests/test_monitoring.py runs them against synthetic series with
`promtool test rules`. Metric sources, all scraped by the managed add-on (ama-metrics):

- kube-state-metrics (job kube-state-metrics): Deployments, CronJobs, Jobs, PVC and namespace labels, node conditions.
  Only the labels named in KSM_LABELS become `label_*` series labels (the cluster's azureMonitorProfile).
- kubelet (job kubelet): kubelet_volume_stats_* for every mounted CSI volume (both Azure CSI drivers answer
  NodeGetVolumeStats: kubernetes-sigs/azurefile-csi-driver pkg/azurefile/nodeserver.go).
- the F5 NGINX Ingress Controller's exporter on :9113 (chart `prometheus.create`, pod annotations scraped in the
  ingress namespace): nginx_ingress_controller_upstream_server_response_latency_ms_count{code, resource_namespace}
  with `controller.enableLatencyMetrics` (nginx/kubernetes-ingress cmd/nginx-ingress/main.go, v5.5.3), and
  nginx_ingress_controller_nginx_last_reload_status.

- the WAL shipper, the native sidecar of each ORCA pod (orca_platform/backup/pitr.py), on :9187 (`/metrics`, pod
  annotations scraped in the clinic namespaces): orca_wal_archived_until_timestamp_seconds (the newest commit known
  to be in the archive; its heartbeat commits at least every archive_timeout, so an idle server is no exception),
  orca_wal_archive_failures_total, orca_wal_spool_bytes, orca_wal_spool_cap_bytes, orca_wal_gap_open.

The add-on keeps only a minimal list of each default target's metrics (prometheus-collector's
`kubestateRegex_minimal_mac`): KEEP_KUBE_STATE adds the ones these rules read and that list lacks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from orca_platform.backup import pitr
from orca_platform.model.errors import Problem
from orca_platform.model.monitoring import DAYS, Monitoring, OpeningHours
from orca_platform.plan.naming import BACKUP_ROLE, CLINIC_LABEL, DATA_LABEL, ROLE_LABEL

if TYPE_CHECKING:
    from orca_platform.model.settings import Settings
    from orca_platform.model.tenants import TenantsFile
    from orca_platform.plan.clinic import ClinicPlan

RUNBOOKS = "docs/runbooks.md"
# kube-state-metrics' label allowlist: `<resource plural>=[<label>,...]` (kube-state-metrics --metric-labels-allowlist).
KSM_LABELS = (
    f"namespaces=[{CLINIC_LABEL}],jobs=[{ROLE_LABEL},{CLINIC_LABEL}],"
    f"persistentvolumeclaims=[{DATA_LABEL},{CLINIC_LABEL}]"
)
KEEP_KUBE_STATE = (
    "kube_job_status_failed",
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_created",
    "kube_cronjob_spec_suspend",
)
SNAPSHOTS_CRONJOB = "orca-snapshots"
CLINIC_NAMESPACE_REGEX = "orca-[a-z0-9-]+"
DUMPS_CRONJOB = "orca-dumps"
# A failed backup Job is reported for a day after it started; the overdue rules cover failures that persist.
FAILED_JOB_WINDOW_SECONDS = 86400


def _label(name: str) -> str:
    """The series label kube-state-metrics makes of a Kubernetes label (every other character becomes '_')."""
    return "label_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


CLINIC = _label(CLINIC_LABEL)


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_minutes: int
    severity: int  # Azure Monitor: 0 critical, 1 error, 2 warning, 3 informational
    summary: str
    description: str
    runbook: str  # anchor in docs/runbooks.md
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    name: str
    description: str
    rules: tuple[AlertRule, ...]
    interval_minutes: int = 1


# --- cron: the longest gap between two runs of a schedule ------------------------------------------------------


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _names(spec: str, names: Sequence[str], first: int) -> str:
    return re.sub(r"[A-Za-z]{3}", lambda m: str(names.index(m.group(0).upper()) + first), spec)


def _cron_field(spec: str, lo: int, hi: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = int(first), int(last)
        else:
            start = int(base)
            end = hi if step_text else start
        if step < 1 or start < lo or end > hi or start > end:
            raise ValueError(f"{part!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return values


@lru_cache(maxsize=64)
def cron_max_gap_minutes(expr: str) -> int:
    """The longest time between two consecutive runs of a five-field cron schedule, in minutes.

    Numbers, names (JAN, MON), '*', ranges, lists and steps: the standard five fields Kubernetes' CronJob controller
    reads (macros such as @daily are refused by the tenants file already). Counted over 400 days from a fixed date,
    so a monthly schedule is measured across months of every length.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("needs five fields")
    try:
        minutes = sorted(_cron_field(fields[0], 0, 59))
        hours = sorted(_cron_field(fields[1], 0, 23))
        doms = _cron_field(fields[2], 1, 31)
        months = _cron_field(_names(fields[3], MONTHS, 1), 1, 12)
        dows = {d % 7 for d in _cron_field(_names(fields[4], [d.upper() for d in DAYS], 0), 0, 7)}
    except ValueError as exc:
        raise ValueError(f"cannot read {expr!r} ({exc}); use numbers, names, '*', ranges, lists and steps") from None
    dom_any, dow_any = fields[2] == "*", fields[4] == "*"
    start = dt.date(2026, 1, 1)
    fires: list[int] = []
    for days in range(400 + 4 * 366):
        day = start + dt.timedelta(days=days)
        if day.month not in months:
            continue
        dom_ok, dow_ok = day.day in doms, day.isoweekday() % 7 in dows
        # cron(8): when both day fields are restricted, either one matching is enough.
        if (dom_ok or dow_ok) if not (dom_any or dow_any) else (dom_ok and dow_ok):
            fires += [days * 1440 + h * 60 + m for h in hours for m in minutes]
        if days >= 400 and len(fires) >= 2:
            break
    if len(fires) < 2:
        raise ValueError(f"{expr!r} runs less than twice in four years")
    return max(b - a for a, b in itertools.pairwise(fires))


def schedule_problems(
    settings: Settings, tenants: TenantsFile, tenants_source: str, config_source: str
) -> list[Problem]:
    """Schedules the overdue-backup alerts cannot measure (and Kubernetes would not run either)."""
    problems = []
    b = settings.backup
    for key, expr in (("dumpSchedule", b.dump_schedule), ("snapshotSchedule", b.snapshot_schedule)):
        try:
            cron_max_gap_minutes(expr)
        except ValueError as exc:
            problems.append(Problem(config_source, f"orca-platform:backup.{key}", str(exc)))
    for c in tenants.clinics:
        overrides = c.backup
        for key, override in (
            ("dumpSchedule", overrides.dump_schedule if overrides else None),
            ("snapshotSchedule", overrides.snapshot_schedule if overrides else None),
        ):
            if override is None:
                continue
            try:
                cron_max_gap_minutes(override)
            except ValueError as exc:
                problems.append(Problem(tenants_source, f"backup.{key}", str(exc), c.id))
    return problems


# --- PromQL building blocks ------------------------------------------------------------------------------------


def clinic_join(expr: str) -> str:
    """Keep series of clinic namespaces only, labelled clinic="<id>" (from the namespace's clinic label)."""
    return (
        f"label_replace(({expr}) * on(namespace) group_left({CLINIC}) max by (namespace, {CLINIC}) "
        f'(kube_namespace_labels{{{CLINIC}!=""}}), "clinic", "$1", "{CLINIC}", "(.+)")'
    )


def opening_hours_filter(hours: OpeningHours) -> str:
    """`and on() <now is inside opening hours>`, in the clinics' local time."""
    local = f"vector(time() + {hours.offset_seconds})" if hours.offset_seconds else "vector(time())"
    start, end = hours.minute_of_day(hours.start), hours.minute_of_day(hours.end)
    clause = f" and on() (hour({local}) * 60 + minute({local})) >= {start} < {end}"
    closed = [str(DAYS.index(d)) for d in DAYS if d not in hours.days]
    if closed:
        clause += f" and on() day_of_week({local})" + "".join(f" != {d}" for d in closed)
    return clause


def _namespaces(ids: Sequence[str]) -> str:
    return "|".join(f"orca-{re.escape(i)}" for i in sorted(ids))


def _hours(minutes: int) -> str:
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes % 60 else f"{minutes // 60}h"


def overdue_rules(kind: str, cronjob: str, schedules: dict[str, str], slack: int) -> list[AlertRule]:
    """One rule per distinct threshold (the schedule's longest gap plus slack): few rules however many clinics.

    The most common threshold matches every clinic namespace but the others', so a clinic added later with the
    stack's schedule is covered without a rule change.
    """
    by_threshold: dict[int, list[str]] = {}
    for cid, expr in schedules.items():
        by_threshold.setdefault(cron_max_gap_minutes(expr) + slack, []).append(cid)
    common = max(by_threshold, key=lambda t: (len(by_threshold[t]), -t)) if by_threshold else 0
    rules = []
    for threshold, ids in sorted(by_threshold.items()):
        if threshold == common:
            others = [i for t, group in by_threshold.items() if t != common for i in group]
            match = f'cronjob="{cronjob}"' + (f', namespace!~"{_namespaces(others)}"' if others else "")
        else:
            match = f'cronjob="{cronjob}", namespace=~"{_namespaces(ids)}"'
        seconds = threshold * 60
        never = (
            f"(time() - kube_cronjob_created{{{match}}} > {seconds}) unless on(namespace, cronjob) "
            f"kube_cronjob_status_last_successful_time{{{match}}}"
        )
        stale = f"time() - kube_cronjob_status_last_successful_time{{{match}}} > {seconds}"
        # A suspended clinic's schedules are paused on purpose.
        expr = clinic_join(f"({stale} or {never}) and on(namespace, cronjob) (kube_cronjob_spec_suspend == 0)")
        rules.append(
            AlertRule(
                alert=f"Clinic{kind}Overdue_{_hours(threshold)}",
                expr=expr,
                for_minutes=0,
                severity=2,
                summary=f"No successful {kind.lower()} of clinic {{{{ $labels.clinic }}}} for over {_hours(threshold)}",
                description=(
                    f"CronJob {{{{ $labels.namespace }}}}/{cronjob} has not succeeded within its schedule's longest "
                    f"gap plus {slack} minutes (or has never succeeded). Check `kubectl get jobs -n "
                    "{{ $labels.namespace }}` and the failed Job's log."
                ),
                runbook="backup-failure",
                labels={"threshold": _hours(threshold)},
            )
        )
    return rules


# --- the rule groups -------------------------------------------------------------------------------------------


def clinic_rules(m: Monitoring, clinics: Sequence[ClinicPlan]) -> list[AlertRule]:
    ready = (
        'kube_deployment_spec_replicas{deployment="orca"} > on(namespace, deployment) '
        'kube_deployment_status_replicas_ready{deployment="orca"}'
    )
    failed_job = (
        f"(kube_job_status_failed > 0) * on(namespace, job_name) group_left() max by (namespace, job_name) "
        f'(kube_job_labels{{{_label(ROLE_LABEL)}="{BACKUP_ROLE}"}}) and on(namespace, job_name) '
        f"(time() - kube_job_status_start_time < {FAILED_JOB_WINDOW_SECONDS})"
    )
    volume = (
        "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes) / "
        "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes) "
        f"> {m.volume_full_percent / 100:g} and on(namespace, persistentvolumeclaim) "
        "max by (namespace, persistentvolumeclaim) "
        f'(kube_persistentvolumeclaim_labels{{{_label(DATA_LABEL)}="clinic"}})'
    )
    rules = [
        *wal_archive_rules(),
        AlertRule(
            alert="ClinicServerNotReady",
            expr=clinic_join(ready) + opening_hours_filter(m.opening_hours),
            for_minutes=m.server_down_minutes,
            severity=1,
            summary="ORCA server of clinic {{ $labels.clinic }} not ready during opening hours",
            description=(
                f"The clinic's ORCA pod has not been ready for {m.server_down_minutes} minutes inside opening hours "
                f"({', '.join(m.opening_hours.days)} {m.opening_hours.start}-{m.opening_hours.end}, UTC"
                f"{m.opening_hours.utc_offset}): staff cannot use ORCA. `kubectl describe pod -n "
                "{{ $labels.namespace }} -l " + f"{ROLE_LABEL}=server`."
            ),
            runbook="server-down",
        ),
        *overdue_rules("Dump", DUMPS_CRONJOB, {c.id: c.dump_schedule for c in clinics}, m.backup_slack_minutes),
        *overdue_rules(
            "Snapshot", SNAPSHOTS_CRONJOB, {c.id: c.snapshot_schedule for c in clinics}, m.backup_slack_minutes
        ),
        AlertRule(
            alert="ClinicBackupJobFailed",
            expr=clinic_join(failed_job),
            for_minutes=0,
            severity=2,
            summary="Backup Job {{ $labels.job_name }} of clinic {{ $labels.clinic }} failed",
            description=(
                "A snapshot, dump, pre-upgrade or restore Job failed in the last 24 hours: `kubectl logs -n "
                "{{ $labels.namespace }} job/{{ $labels.job_name }}`."
            ),
            runbook="backup-failure",
        ),
        AlertRule(
            alert="ClinicVolumeAlmostFull",
            expr=clinic_join(volume),
            for_minutes=15,
            severity=2,
            summary=(
                f"Volume {{{{ $labels.persistentvolumeclaim }}}} of clinic {{{{ $labels.clinic }}}} is over "
                f"{m.volume_full_percent}% full"
            ),
            description=(
                "PostgreSQL stops when its volume is full. Raise the clinic's volumeSize in tenants.yaml (volumes "
                "grow in place) and `pulumi up`."
            ),
            runbook="volume-full",
        ),
    ]
    return rules


# Committed work older than archive_timeout + 5 minutes not yet in the archive: at any hour (issue 24).
WAL_STALE_SECONDS = pitr.PitrSettings("15").archive_timeout_seconds + 300
WAL_FAILURES_IN_15M = 3
SPOOL_NEAR_CAP = 0.8


def wal_archive_rules() -> list[AlertRule]:
    stale = f"(time() - {pitr.METRIC_ARCHIVED_UNTIL}) > {WAL_STALE_SECONDS}"
    failing = f"increase({pitr.METRIC_ARCHIVE_FAILURES}[15m]) > {WAL_FAILURES_IN_15M}"
    near_cap = (
        f"({pitr.METRIC_SPOOL_BYTES} / {pitr.METRIC_SPOOL_CAP} > {SPOOL_NEAR_CAP:g}) or ({pitr.METRIC_GAP_OPEN} == 1)"
    )
    return [
        AlertRule(
            alert="ClinicWalNotArchived",
            expr=clinic_join(stale),
            for_minutes=0,
            severity=1,
            summary="Clinic {{ $labels.clinic }}: no commit archived for over " + f"{WAL_STALE_SECONDS // 60} minutes",
            description=(
                "The newest commit in the WAL archive is older than archive_timeout + 5 minutes (the sidecar commits a "
                "heartbeat at least every archive_timeout, so an idle server does not cause this). A lost volume "
                "would now lose more than the promised minute: `kubectl logs -n {{ $labels.namespace }} "
                "deploy/orca -c wal-shipper`."
            ),
            runbook="wal-archive",
        ),
        AlertRule(
            alert="ClinicWalArchiveFailing",
            expr=clinic_join(failing),
            for_minutes=0,
            severity=2,
            summary="Clinic {{ $labels.clinic }}: WAL uploads failing",
            description=(
                f"More than {WAL_FAILURES_IN_15M} failed WAL uploads in 15 minutes: the backup account or its "
                "private endpoint does not answer, or the clinic's identity is refused. The spool holds the backlog."
            ),
            runbook="wal-archive",
        ),
        AlertRule(
            alert="ClinicWalSpoolNearCap",
            expr=clinic_join(near_cap),
            for_minutes=0,
            severity=1,
            summary="Clinic {{ $labels.clinic }}: WAL spool near its cap, or a gap recorded",
            description=(
                f"The spool on the clinic volume is over {SPOOL_NEAR_CAP:.0%} of its cap or has let WAL go (a gap): "
                "points inside a gap cannot be restored until the next base backup, which the sidecar takes once "
                "the store answers again."
            ),
            runbook="wal-archive",
        ),
    ]


def platform_rules(m: Monitoring, ingress_namespace: str) -> list[AlertRule]:
    latency = "nginx_ingress_controller_upstream_server_response_latency_ms_count"
    errors = (
        f'sum by (resource_namespace) (rate({latency}{{code=~"5.."}}[10m])) / '
        f"sum by (resource_namespace) (rate({latency}[10m])) > {m.ingress_error_percent / 100:g}"
    )
    errors = f'label_replace({errors}, "namespace", "$1", "resource_namespace", "(.+)")'
    return [
        AlertRule(
            alert="NodeMemoryPressure",
            expr='max by (node) (kube_node_status_condition{condition="MemoryPressure", status="true"}) == 1',
            for_minutes=5,
            severity=2,
            summary="Node {{ $labels.node }} is under memory pressure",
            description=(
                "The kubelet evicts pods from a node under memory pressure; ORCA pods request what they use, so "
                "this is a node-level problem (DaemonSets, the OS). `kubectl describe node {{ $labels.node }}`."
            ),
            runbook="node-pressure",
        ),
        AlertRule(
            alert="ClinicIngressErrors",
            expr=clinic_join(errors),
            for_minutes=10,
            severity=2,
            summary=(
                f"Over {m.ingress_error_percent:g}% of requests to clinic {{{{ $labels.clinic }}}} through the "
                "ingress fail with 5xx"
            ),
            description="Requests by FQDN reach ORCA through the ingress controller and fail: check the ORCA pod.",
            runbook="server-down",
        ),
        AlertRule(
            alert="IngressReloadFailed",
            expr="max by (pod) (nginx_ingress_controller_nginx_last_reload_status) == 0",
            for_minutes=5,
            severity=2,
            summary="The ingress controller {{ $labels.pod }} failed to load its latest configuration",
            description=(
                "New or changed clinic Ingresses are not served. `kubectl logs -n "
                f"{ingress_namespace} {{{{ $labels.pod }}}}`."
            ),
            runbook="ingress",
        ),
        AlertRule(
            alert="IngressControllerUnavailable",
            expr=(
                f'max by (deployment) (kube_deployment_status_replicas_available{{namespace="{ingress_namespace}"}})'
                " < 1"
            ),
            for_minutes=5,
            severity=1,
            summary="No ingress controller replica is available",
            description="Every clinic's FQDN is unreachable (their private IPs still answer).",
            runbook="ingress",
        ),
    ]


def rule_groups(
    m: Monitoring, clinics: Sequence[ClinicPlan], ingress_namespace: str, suffix: str
) -> tuple[RuleGroup, ...]:
    return (
        RuleGroup(
            f"orca-clinics-{suffix}",
            "ORCA clinics: server down in opening hours, backups overdue or failed, volumes filling up",
            tuple(clinic_rules(m, clinics)),
        ),
        RuleGroup(
            f"orca-platform-{suffix}",
            "ORCA platform: nodes and the ingress",
            tuple(platform_rules(m, ingress_namespace)),
        ),
    )


def metrics_settings(ingress_namespace: str) -> dict[str, str]:
    """The data of kube-system/ama-metrics-settings-configmap (Azure/prometheus-collector's documented format)."""
    return {
        "schema-version": "v1",
        "config-version": "orca-1",
        # The ingress controller's exporter and each clinic's WAL shipper (namespaces orca-<clinic>).
        "pod-annotation-based-scraping": (
            f'podannotationnamespaceregex = "^({re.escape(ingress_namespace)}|{CLINIC_NAMESPACE_REGEX})$"'
        ),
        "default-targets-metrics-keep-list": "\n".join(
            [f'kubestate = "{"|".join(KEEP_KUBE_STATE)}"', "minimalingestionprofile = true"]
        ),
    }


# --- shapes ----------------------------------------------------------------------------------------------------


def iso_minutes(minutes: int) -> str:
    return f"PT{minutes}M"


def prometheus_duration(iso: str) -> str:
    """'PT1H30M' -> '1h30m' (Azure rule groups speak ISO 8601, Prometheus rule files its own durations)."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", iso)
    if not m or not any(m.groups()):
        raise ValueError(f"not an ISO 8601 duration: {iso!r}")
    parts = zip(m.groups(), ("d", "h", "m", "s"), strict=True)
    return "".join(f"{int(v)}{unit}" for v, unit in parts if v and int(v)) or "0s"


def rule_file(groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A Prometheus rule file (what promtool checks) from rendered Azure PrometheusRuleGroup inputs."""
    out = []
    for g in groups:
        rules = []
        for r in g.get("rules") or []:
            rule: dict[str, Any] = {"alert": r["alert"], "expr": r["expression"]}
            if r.get("for"):
                duration = prometheus_duration(r["for"])
                if duration != "0s":
                    rule["for"] = duration
            for key in ("labels", "annotations"):
                if r.get(key):
                    rule[key] = dict(r[key])
            rules.append(rule)
        group: dict[str, Any] = {"name": g["ruleGroupName"], "rules": rules}
        if g.get("interval"):
            group["interval"] = prometheus_duration(g["interval"])
        out.append(group)
    return {"groups": out}
