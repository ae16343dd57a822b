"""Monitoring: Azure Monitor managed Prometheus for the cluster, its alert rules and who they notify.

The rules are data (orca_platform/monitoring/alerts.py); this component places them. The wiring follows Azure's own
onboarding
template (Azure/prometheus-collector AddonBicepTemplate): an Azure Monitor workspace, a data collection endpoint and
rule of kind Linux forwarding the stream Microsoft-PrometheusMetrics to it, the rule associated with the cluster, and
the cluster's azureMonitorProfile.metrics enabled (components/cluster.py), which deploys the ama-metrics agents.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import alertsmanagement, monitor

from orca_platform.model.monitoring import Monitoring as MonitoringSettings
from orca_platform.monitoring import alerts

PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
DESTINATION = "MonitoringAccount1"


@dataclass(frozen=True)
class MonitoringArgs:
    settings: MonitoringSettings
    groups: tuple[alerts.RuleGroup, ...]
    scrape_settings: dict[str, str]  # data of kube-system/ama-metrics-settings-configmap
    location: str
    resource_group_name: pulumi.Input[str]
    cluster_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    names: dict[str, str]  # workspace, collection (endpoint and rule), actionGroup
    tags: dict[str, str]
    provider: k8s.Provider


class Monitoring(pulumi.ComponentResource):
    workspace_id: pulumi.Output[str]
    action_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg = args.resource_group_name
        # Metrics only: names, counts and timings of clinic objects, never patient data (which Azure asks to keep
        # out of Prometheus labels). Ingestion and queries use Entra ID; private link (AMPLS) is not modelled.
        workspace = monitor.AzureMonitorWorkspace(
            "workspace",
            azure_monitor_workspace_name=args.names["workspace"],
            resource_group_name=rg,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        endpoint = monitor.DataCollectionEndpoint(
            "collection-endpoint",
            data_collection_endpoint_name=args.names["collection"],
            resource_group_name=rg,
            location=args.location,
            kind="Linux",
            description="Managed Prometheus ingestion for the ORCA cluster",
            tags=args.tags,
            opts=child,
        )
        rule = monitor.DataCollectionRule(
            "collection-rule",
            data_collection_rule_name=args.names["collection"],
            resource_group_name=rg,
            location=args.location,
            kind="Linux",
            data_collection_endpoint_id=endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(name="PrometheusDataSource", streams=[PROMETHEUS_STREAM])
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(account_resource_id=workspace.id, name=DESTINATION)
                ]
            ),
            data_flows=[monitor.DataFlowArgs(destinations=[DESTINATION], streams=[PROMETHEUS_STREAM])],
            description="Managed Prometheus of the ORCA cluster into its Azure Monitor workspace",
            tags=args.tags,
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            "collection-rule-association",
            association_name=args.names["collection"],
            resource_uri=args.cluster_id,
            data_collection_rule_id=rule.id,
            description="Deleting this association stops metric collection for the cluster",
            opts=child,
        )

        a = args.settings.action_group
        group = monitor.ActionGroup(
            "action-group",
            action_group_name=args.names["actionGroup"],
            resource_group_name=rg,
            location="global",
            group_short_name=a.short_name,
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=r.name, email_address=r.address, use_common_alert_schema=True
                )
                for r in a.emails
            ]
            or None,
            webhook_receivers=[
                # A webhook URL often carries its access token: kept encrypted in the state like any secret.
                monitor.WebhookReceiverArgs(
                    name=r.name, service_uri=pulumi.Output.secret(r.url), use_common_alert_schema=True
                )
                for r in a.webhooks
            ]
            or None,
            tags=args.tags,
            opts=child,
        )

        for g in args.groups:
            alertsmanagement.PrometheusRuleGroup(
                f"rules-{g.name}",
                rule_group_name=g.name,
                resource_group_name=rg,
                location=args.location,
                description=g.description,
                scopes=[workspace.id],
                cluster_name=args.cluster_name,
                enabled=True,
                interval=alerts.iso_minutes(g.interval_minutes),
                rules=[
                    alertsmanagement.PrometheusRuleArgs(
                        alert=r.alert,
                        expression=r.expr,
                        for_=alerts.iso_minutes(r.for_minutes) if r.for_minutes else None,
                        severity=r.severity,
                        enabled=True,
                        labels={"severity": "critical" if r.severity <= 1 else "warning", **r.labels},
                        annotations={
                            "summary": r.summary,
                            "description": r.description,
                            "runbook": f"{alerts.RUNBOOKS}#{r.runbook}",
                        },
                        resolve_configuration=alertsmanagement.PrometheusRuleResolveConfigurationArgs(
                            auto_resolved=True, time_to_resolve="PT10M"
                        ),
                        actions=[alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=group.id)],
                    )
                    for r in g.rules
                ],
                tags=args.tags,
                opts=child,
            )

        # What the add-on scrapes beyond its defaults: the ingress controller's exporter (pod annotations in its
        # namespace) and the kube-state-metrics series the rules read but the minimal ingestion profile drops.
        k8s.core.v1.ConfigMap(
            "ama-metrics-settings",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ama-metrics-settings-configmap", namespace="kube-system"),
            data=args.scrape_settings,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )

        self.workspace_id = workspace.id
        self.action_group_id = group.id
        self.register_outputs({"workspaceId": workspace.id, "actionGroupId": group.id})
