"""Issue 15: monitoring and alerts as code. The rendered stacks hold managed Prometheus, the rule groups and the
action group; every expression passes promtool, a broken one fails `make checks`, and the rules fire (and stay quiet)
when they should, checked by `promtool test rules` against synthetic series."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orca_platform.model.errors import InputError
from orca_platform.model.monitoring import OpeningHours
from orca_platform.monitoring import alerts
from tests.orca_test_support import (
    attempt,
    clinic_doc,
    meta,
    only,
    program_config,
    provider_urn,
    raw_settings,
    settings_from,
    write_yaml,
)
from tools.checks.run import RULE_GROUP_TYPE, check_alerts
from tools.offline.engine import Registered, Run, is_secret, redact, reveal
from tools.offline.synth import integral

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is absent: `make deb-promtool` (make test runs it)"
)


def one(run: Run, type_: str) -> Registered:
    return only(run.by_type(type_), type_)


# --- what is rendered ------------------------------------------------------------------------------------------


def test_the_stack_renders_managed_prometheus_wired_to_the_cluster(stack_run: Run) -> None:
    workspace = one(stack_run, "azure-native:monitor:AzureMonitorWorkspace")
    endpoint = one(stack_run, "azure-native:monitor:DataCollectionEndpoint")
    rule = one(stack_run, "azure-native:monitor:DataCollectionRule")
    association = one(stack_run, "azure-native:monitor:DataCollectionRuleAssociation")
    cluster = one(stack_run, "azure-native:containerservice:ManagedCluster")
    assert rule.inputs["dataCollectionEndpointId"] == endpoint.id
    [source] = rule.inputs["dataSources"]["prometheusForwarder"]
    [destination] = rule.inputs["destinations"]["monitoringAccounts"]
    assert destination["accountResourceId"] == workspace.id
    [flow] = rule.inputs["dataFlows"]
    assert source["streams"] == flow["streams"] == ["Microsoft-PrometheusMetrics"]
    assert flow["destinations"] == [destination["name"]]
    assert association.inputs["resourceUri"] == cluster.id
    assert association.inputs["dataCollectionRuleId"] == rule.id
    metrics = cluster.inputs["azureMonitorProfile"]["metrics"]
    assert metrics["enabled"] is True
    # The labels the rules join on are exported by kube-state-metrics.
    allow = metrics["kubeStateMetrics"]["metricLabelsAllowlist"]
    for label in ("namespaces=[orca-platform.io/clinic]", "orca-platform.io/role", "orca-platform.io/data"):
        assert label in allow
    assert stack_run.outputs["monitoringWorkspaceId"] == workspace.id


def test_every_rule_notifies_the_action_group_from_the_stack_config(stack_run: Run) -> None:
    group = one(stack_run, "azure-native:monitor:ActionGroup")
    configured = raw_settings(stack_run.stack)["monitoring"]["actionGroup"]
    assert group.inputs["groupShortName"] == configured["shortName"]
    emails = [(r["name"], r["emailAddress"]) for r in group.inputs.get("emailReceivers") or []]
    assert emails == [(e["name"], e["address"]) for e in configured.get("emails", [])]
    hooks = group.inputs.get("webhookReceivers")
    if configured.get("webhooks"):
        assert is_secret(hooks)  # a webhook URL may carry its token: encrypted in the state
        assert [h["serviceUri"] for h in reveal(hooks)] == [w["url"] for w in configured["webhooks"]]
    else:
        assert hooks is None
    workspace = one(stack_run, "azure-native:monitor:AzureMonitorWorkspace")
    cluster = one(stack_run, "azure-native:containerservice:ManagedCluster")
    groups = stack_run.by_type(RULE_GROUP_TYPE)
    assert {g.inputs["ruleGroupName"] for g in groups} == {
        f"orca-clinics-{stack_run.stack}",
        f"orca-platform-{stack_run.stack}",
    }
    for g in groups:
        assert g.inputs["scopes"] == [workspace.id]
        assert g.inputs["clusterName"] == cluster.outputs["name"]
        for r in g.inputs["rules"]:
            assert [a["actionGroupId"] for a in r["actions"]] == [group.id], r["alert"]
            assert r["annotations"]["runbook"].startswith("docs/runbooks.md#")


def test_the_alerts_cover_what_the_issue_asks_for(dev_run: Run) -> None:
    names = {r["alert"] for g in dev_run.by_type(RULE_GROUP_TYPE) for r in g.inputs["rules"]}
    assert {
        "ClinicServerNotReady",
        "ClinicDumpOverdue_26h",
        "ClinicSnapshotOverdue_14h",
        "ClinicBackupJobFailed",
        "ClinicVolumeAlmostFull",
        "NodeMemoryPressure",
        "ClinicIngressErrors",
    } <= names


def test_scraping_settings_reach_the_ingress_exporter_and_keep_the_series_the_rules_read(dev_run: Run) -> None:
    settings = only(
        [r for r in dev_run.k8s("ConfigMap", "kube-system") if meta(r)["name"] == "ama-metrics-settings-configmap"],
        "ama-metrics settings",
    )
    data = settings.inputs["data"]
    assert data["schema-version"] == "v1"
    # The ingress controller's exporter and each clinic's WAL shipper (issue 24).
    assert 'podannotationnamespaceregex = "^(orca\\-ingress|orca-[a-z0-9-]+)$"' in data["pod-annotation-based-scraping"]
    keep = data["default-targets-metrics-keep-list"]
    read = "\n".join(r["expression"] for g in dev_run.by_type(RULE_GROUP_TYPE) for r in g.inputs["rules"])
    for metric in alerts.KEEP_KUBE_STATE:
        assert metric in keep and metric in read
    release = only(dev_run.by_type("kubernetes:helm.sh/v3:Release"), "ingress release")
    values = release.inputs["values"]
    assert values["prometheus"]["create"] is True
    assert values["controller"]["enableLatencyMetrics"] is True


def test_backup_jobs_carry_the_role_label_the_failed_job_alert_selects(dev_run: Run) -> None:
    from orca_platform.safety.maintenance import NAMESPACE as PLATFORM_JOBS  # the maintenance mover: no clinic's backup

    crons = [c for c in dev_run.k8s("CronJob") if meta(c)["namespace"] != PLATFORM_JOBS]
    assert crons
    for cron in crons:
        labels = cron.inputs["spec"]["jobTemplate"]["metadata"]["labels"]
        assert labels["orca-platform.io/role"] == "backup"
        assert labels["orca-platform.io/clinic"] == meta(cron)["namespace"].removeprefix("orca-")


# --- promtool check rules, in `make checks` --------------------------------------------------------------------


@needs_promtool
def test_every_rendered_expression_passes_promtool(stack_run: Run, tmp_path: Path) -> None:
    findings, line = check_alerts(stack_run, tmp_path, str(PROMTOOL))
    assert findings == []
    assert "passed" in line


def _with_rule(run: Run, edit: Any) -> Run:
    """The rule groups with ClinicServerNotReady edited (registration order varies: found by name)."""
    groups = copy.deepcopy(run.by_type(RULE_GROUP_TYPE))
    rule = next(r for g in groups for r in g.inputs["rules"] if r["alert"] == "ClinicServerNotReady")
    before = copy.deepcopy(rule)
    edit(rule)
    assert rule != before
    return Run(run.stack, groups, run.outputs, run.secret_outputs)


@needs_promtool
@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r.update(expression=r["expression"].replace("on(namespace)", "on(namespace", 1)),
        lambda r: r.update(expression="rate(kube_pod_info[5m]"),
        lambda r: r.update(expression="no_such_function(up)"),
        lambda r: r["annotations"].update(summary="{{ $labels.clinic "),
    ],
)
def test_a_broken_rule_fails_the_check(dev_run: Run, tmp_path: Path, breakage: Any) -> None:
    findings, line = check_alerts(_with_rule(dev_run, breakage), tmp_path, str(PROMTOOL))
    assert findings and all(f.startswith("alerts: ") for f in findings)
    assert "FAILED" in line


def test_a_group_over_azures_rule_limit_is_a_finding(dev_run: Run, tmp_path: Path) -> None:
    groups = copy.deepcopy(dev_run.by_type(RULE_GROUP_TYPE))
    groups[0].inputs["rules"] = groups[0].inputs["rules"] * 6
    run = Run(dev_run.stack, groups, dev_run.outputs, dev_run.secret_outputs)
    findings, _ = check_alerts(run, tmp_path, PROMTOOL or "true")
    assert any("Azure allows 20" in f for f in findings)


# --- the rules behave: promtool test rules over synthetic series -----------------------------------------------
# promtool's clock starts at 1970-01-01T00:00:00Z, a Thursday: 09:00 in JST, the samples' opening-hours offset.


def rule_file_without_annotations(run: Run) -> dict[str, Any]:
    doc = alerts.rule_file([integral(redact(g.inputs)) for g in run.by_type(RULE_GROUP_TYPE)])
    for g in doc["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)  # templates are promtool check's business; these tests are about firing
    return doc


def promtool_test(run: Run, tmp_path: Path, series: list[dict[str, str]], cases: list[dict[str, Any]]) -> str:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_file_without_annotations(run)), encoding="utf-8")
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "5m", "input_series": series, "alert_rule_test": cases}],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    done = subprocess.run(  # noqa: S603 - promtool with files we just wrote
        [str(PROMTOOL), "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


DATA = "label_orca_platform_io_data"


def clinic_ns(cid: str) -> dict[str, str]:
    return {
        "series": f'kube_namespace_labels{{namespace="orca-{cid}", label_orca_platform_io_clinic="{cid}"}}',
        "values": "1x1000",
    }


def clinic_labels(cid: str, **extra: str) -> dict[str, str]:
    return {"namespace": f"orca-{cid}", "label_orca_platform_io_clinic": cid, "clinic": cid, **extra}


@needs_promtool
def test_a_server_down_pages_only_inside_opening_hours_after_the_grace(dev_run: Run, tmp_path: Path) -> None:
    minutes = int(raw_settings("dev")["monitoring"]["serverDownMinutes"])  # 15
    down = clinic_labels("test-sakura", deployment="orca", severity="critical")
    fired = [{"exp_labels": down}]
    series = [
        clinic_ns("test-sakura"),
        {
            "series": 'kube_deployment_spec_replicas{namespace="orca-test-sakura", deployment="orca"}',
            "values": "1x1000",
        },
        {
            "series": 'kube_deployment_status_replicas_ready{namespace="orca-test-sakura", deployment="orca"}',
            "values": "0x1000",
        },
        # A suspended clinic (no replica wanted) is never "down".
        clinic_ns("test-midori"),
        {
            "series": 'kube_deployment_spec_replicas{namespace="orca-test-midori", deployment="orca"}',
            "values": "0x1000",
        },
        {
            "series": 'kube_deployment_status_replicas_ready{namespace="orca-test-midori", deployment="orca"}',
            "values": "0x1000",
        },
    ]
    cases = [
        {"eval_time": f"{minutes - 5}m", "alertname": "ClinicServerNotReady", "exp_alerts": []},  # Thu 09:10 JST
        {"eval_time": f"{minutes + 5}m", "alertname": "ClinicServerNotReady", "exp_alerts": fired},  # Thu 09:20
        {"eval_time": "12h", "alertname": "ClinicServerNotReady", "exp_alerts": []},  # Thu 21:00 JST: closed
        {"eval_time": "48h30m", "alertname": "ClinicServerNotReady", "exp_alerts": fired},  # Sat 09:30 JST
        {"eval_time": "72h30m", "alertname": "ClinicServerNotReady", "exp_alerts": []},  # Sun 09:30 JST: closed
    ]
    promtool_test(dev_run, tmp_path, series, cases)


@needs_promtool
def test_an_overdue_dump_alerts_after_its_schedule_plus_slack_unless_the_clinic_is_suspended(
    dev_run: Run, tmp_path: Path
) -> None:
    # dev: dumps daily (30 1 * * *), slack 120 minutes: overdue after 26 hours without a success.
    def cron(metric: str, cid: str, value: str) -> dict[str, str]:
        return {"series": f'{metric}{{namespace="orca-{cid}", cronjob="orca-dumps"}}', "values": value}

    series = [
        clinic_ns("test-sakura"),
        cron("kube_cronjob_created", "test-sakura", "0x400"),
        cron("kube_cronjob_status_last_successful_time", "test-sakura", "0x400"),  # last success at t=0
        cron("kube_cronjob_spec_suspend", "test-sakura", "0x400"),
        clinic_ns("test-aoba"),  # never succeeded
        cron("kube_cronjob_created", "test-aoba", "0x400"),
        cron("kube_cronjob_spec_suspend", "test-aoba", "0x400"),
        clinic_ns("test-midori"),  # suspended: schedules paused on purpose
        cron("kube_cronjob_created", "test-midori", "0x400"),
        cron("kube_cronjob_spec_suspend", "test-midori", "1x400"),
    ]
    labels = {"cronjob": "orca-dumps", "severity": "warning", "threshold": "26h"}
    cases = [
        {"eval_time": "25h", "alertname": "ClinicDumpOverdue_26h", "exp_alerts": []},
        {
            "eval_time": "27h",
            "alertname": "ClinicDumpOverdue_26h",
            "exp_alerts": [
                {"exp_labels": clinic_labels("test-aoba", **labels)},
                {"exp_labels": clinic_labels("test-sakura", **labels)},
            ],
        },
    ]
    promtool_test(dev_run, tmp_path, series, cases)


@needs_promtool
def test_failed_backup_jobs_full_volumes_and_ingress_errors_alert(dev_run: Run, tmp_path: Path) -> None:
    job = 'namespace="orca-test-aoba", job_name="orca-dumps-29000000"'
    pvc = 'namespace="orca-test-sakura", persistentvolumeclaim="orca-state"'
    latency = "nginx_ingress_controller_upstream_server_response_latency_ms_count"
    upstream = 'resource_namespace="orca-test-sakura", namespace="orca-ingress"'
    series = [
        clinic_ns("test-aoba"),
        clinic_ns("test-sakura"),
        {"series": f"kube_job_status_failed{{{job}}}", "values": "1x400"},
        {"series": f'kube_job_labels{{{job}, label_orca_platform_io_role="backup"}}', "values": "1x400"},
        {"series": f"kube_job_status_start_time{{{job}}}", "values": "0x400"},
        {"series": f"kubelet_volume_stats_used_bytes{{{pvc}}}", "values": "85x400"},
        {"series": f"kubelet_volume_stats_capacity_bytes{{{pvc}}}", "values": "100x400"},
        {"series": f'kube_persistentvolumeclaim_labels{{{pvc}, {DATA}="clinic"}}', "values": "1x400"},
        {"series": f'{latency}{{{upstream}, code="502"}}', "values": "0+30x400"},
        {"series": f'{latency}{{{upstream}, code="200"}}', "values": "0+30x400"},
    ]
    cases = [
        {
            "eval_time": "1h",
            "alertname": "ClinicBackupJobFailed",
            "exp_alerts": [
                {"exp_labels": clinic_labels("test-aoba", job_name="orca-dumps-29000000", severity="warning")}
            ],
        },
        {"eval_time": "25h", "alertname": "ClinicBackupJobFailed", "exp_alerts": []},  # older than a day
        {
            "eval_time": "30m",
            "alertname": "ClinicVolumeAlmostFull",
            "exp_alerts": [
                {"exp_labels": clinic_labels("test-sakura", persistentvolumeclaim="orca-state", severity="warning")}
            ],
        },
        {
            "eval_time": "30m",
            "alertname": "ClinicIngressErrors",
            "exp_alerts": [
                {"exp_labels": clinic_labels("test-sakura", resource_namespace="orca-test-sakura", severity="warning")}
            ],
        },
    ]
    promtool_test(dev_run, tmp_path, series, cases)


# --- the rules as data -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "gap_minutes"),
    [
        ("30 1 * * *", 1440),
        ("0 */6 * * *", 360),
        ("0 */12 * * *", 720),
        ("*/15 9-17 * * *", 15 * 60 + 15),  # 17:45 to 09:00 next day
        ("0 9 * * MON-FRI", 3 * 1440),  # Friday to Monday
        ("0 2 1 * *", 31 * 1440),  # the longest month
        ("0 0 1,15 * *", 17 * 1440),  # the 15th to the 1st of a 31-day month
    ],
)
def test_the_longest_gap_of_a_schedule(schedule: str, gap_minutes: int) -> None:
    assert alerts.cron_max_gap_minutes(schedule) == gap_minutes


def test_a_clinic_with_a_longer_dump_gap_gets_its_own_rule_and_leaves_the_common_one(dev_run: Run) -> None:
    plans = {"a": "30 1 * * *", "b": "30 1 * * *", "weekly": "0 3 * * SUN"}
    rules = alerts.overdue_rules("Dump", "orca-dumps", plans, 120)
    by_name = {r.alert: r.expr for r in rules}
    assert set(by_name) == {"ClinicDumpOverdue_26h", "ClinicDumpOverdue_170h"}
    assert 'namespace!~"orca-weekly"' in by_name["ClinicDumpOverdue_26h"]
    assert 'namespace=~"orca-weekly"' in by_name["ClinicDumpOverdue_170h"]


def test_opening_hours_are_turned_into_utc_arithmetic() -> None:
    clause = alerts.opening_hours_filter(OpeningHours(days=["Mon", "Tue"], start="08:30", end="18:00"))
    assert "vector(time() + 32400)" in clause
    assert ">= 510 < 1080" in clause
    assert "day_of_week(vector(time() + 32400)) != 0 != 3 != 4 != 5 != 6" in clause


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m["actionGroup"].update(emails=[], webhooks=[]), "monitoring.actionGroup"),
        (lambda m: m["actionGroup"].update(shortName="much-too-long-name"), "monitoring.actionGroup.shortName"),
        (lambda m: m.update(openingHours={"start": "20:00", "end": "08:00"}), "monitoring.openingHours"),
        (lambda m: m["actionGroup"].update(webhooks=[{"name": "x", "url": "http://plain.example.jp"}]), "url"),
    ],
)
def test_bad_monitoring_settings_name_the_field(edit: Any, field: str) -> None:
    raw = raw_settings("dev")
    edit(raw["monitoring"])
    with pytest.raises(InputError) as info:
        settings_from(raw)
    assert field in str(info.value)
    assert "Pulumi.dev.yaml" in str(info.value)


def test_an_unreadable_backup_schedule_stops_the_program_before_any_resource(tmp_path: Path) -> None:
    tenants = {
        "clinics": [clinic_doc("test-sakura", sourceCidrs=["192.168.10.0/24"], backup={"dumpSchedule": "0 25 * * *"})]
    }
    config = program_config("dev", write_yaml(tmp_path / "tenants.yaml", tenants))
    result = attempt("dev", config)
    assert result.run is None and result.registered == []
    message = str(result.error)
    assert "clinic 'test-sakura'" in message and "backup.dumpSchedule" in message and "0 25 * * *" in message


def test_monitoring_children_are_parented_and_use_the_clusters_provider(dev_run: Run) -> None:
    settings = only(
        [r for r in dev_run.k8s("ConfigMap", "kube-system") if meta(r)["name"] == "ama-metrics-settings-configmap"],
        "ama-metrics settings",
    )
    k8s_provider = only(dev_run.by_type("pulumi:providers:kubernetes"), "k8s provider")
    assert provider_urn(settings.provider) == k8s_provider.urn
    for r in dev_run.resources:
        if r.type.startswith(("azure-native:monitor:", "azure-native:alertsmanagement:")):
            assert r.parent.endswith("orca:platform:Monitoring::monitoring"), r.urn
