"""IngressController: F5's NGINX Ingress Controller behind an internal load balancer on a fixed private IP.

Not the community kubernetes/ingress-nginx controller: SIG Network retired it in March 2026 (no security fixes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.conventions import (
    INTERNAL_LB,
    INTERNAL_LB_SUBNET,
    LB_IPV4,
    POD_SECURITY_ENFORCE,
    POD_SECURITY_WARN,
    ROLE_LABEL,
)
from orca_platform.model import settings as model

INGRESS_ROLE_LABEL = ROLE_LABEL
INGRESS_ROLE = "ingress"
RELEASE_NAME = "orca-ingress"


@dataclass(frozen=True)
class IngressControllerArgs:
    settings: model.Ingress
    ilb_subnet_name: str
    provider: k8s.Provider


def chart_values(s: model.Ingress, ilb_subnet_name: str) -> dict[str, Any]:
    """The Helm values, kept as plain data so tests can read exactly what the chart receives."""
    spread_selector = {"matchLabels": {INGRESS_ROLE_LABEL: INGRESS_ROLE}}
    return {
        "controller": {
            "replicaCount": s.replicas,
            "ingressClass": {"name": s.class_name, "create": True, "setAsDefaultIngress": False},
            # Snippets let an Ingress inject raw nginx config: one clinic's object could then rewrite another's routes.
            "enableSnippets": False,
            # Policy resources carry each clinic's source allow-list (nginx.org/policies on its Ingress, NIC >= 5.4).
            "enableCustomResources": True,
            "config": {
                "entries": {
                    "proxy-read-timeout": f"{s.read_timeout_seconds}s",
                    "proxy-send-timeout": f"{s.read_timeout_seconds}s",
                    "client-max-body-size": s.max_body_size,
                    "server-tokens": "False",
                }
            },
            "pod": {"extraLabels": {INGRESS_ROLE_LABEL: INGRESS_ROLE}},
            "service": {
                "type": "LoadBalancer",
                # Keep the clinic's own address as the source, so allow-lists and NetworkPolicies see who calls.
                "externalTrafficPolicy": "Local",
                "annotations": {
                    INTERNAL_LB: "true",
                    INTERNAL_LB_SUBNET: ilb_subnet_name,
                    # A fixed address: the private DNS zone's A records point here.
                    LB_IPV4: s.private_ip,
                },
            },
            # On the system pool, beside the other critical add-ons, never on an ORCA node.
            "nodeSelector": {"kubernetes.azure.com/mode": "system"},
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": spread_selector,
                },
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": spread_selector,
                },
            ],
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "readOnlyRootFilesystem": True,
            # Per-upstream response codes and latencies (the ingress-errors alert); needs prometheus.create.
            "enableLatencyMetrics": True,
        },
        # The exporter on :9113, scraped through its pod annotations by managed Prometheus (Monitoring).
        "prometheus": {"create": True, "port": 9113, "scheme": "http"},
    }


class IngressController(pulumi.ComponentResource):
    class_name: str
    private_ip: str
    namespace: str

    def __init__(self, name: str, args: IngressControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:IngressController", name, None, opts)
        s = args.settings
        k8s_child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        ns = k8s.core.v1.Namespace(
            "ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=s.namespace,
                labels={
                    POD_SECURITY_ENFORCE: "baseline",
                    POD_SECURITY_WARN: "restricted",
                },
            ),
            opts=k8s_child,
        )
        k8s.helm.v3.Release(
            "release",
            k8s.helm.v3.ReleaseArgs(
                name=RELEASE_NAME,
                chart=s.chart,
                version=s.chart_version,
                namespace=ns.metadata.name,
                values=chart_values(s, args.ilb_subnet_name),
                # Roll back a failed upgrade instead of leaving clinics behind a half-configured proxy.
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
                max_history=10,
            ),
            opts=k8s_child,
        )
        self.class_name = s.class_name
        self.private_ip = s.private_ip
        self.namespace = s.namespace
        self.register_outputs({"className": s.class_name, "privateIp": s.private_ip, "namespace": s.namespace})
