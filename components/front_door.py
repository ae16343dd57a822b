"""A clinic's front door: its Service, its Ingress and its allow-list, one renderer per mode.

The mode is decided in the plan (orca_platform/plan/front_door.py); this module only places the objects, as children of
the clinic's OrcaTenant. Both modes render the Ingress and its NGINX Policy (the allow-list of the FQDN path); they
differ in the Service:
- loadbalancer: an internal LoadBalancer Service with the clinic's source ranges, its private IP the clinic's;
- ingress-only: a ClusterIP Service that only the ingress controller reaches; the clinic's IP is the ingress's.
The NetworkPolicy (components/orca_tenant.py) admits the clinic's networks directly on `plan.front_door.direct_ports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.conventions import (
    GLSERVER_PORT,
    INTERNAL_LB,
    INTERNAL_LB_SUBNET,
    LB_DENY_OTHERS,
    LB_IPV4,
    NGINX_POLICIES,
    NO_LB_RULE,
    PUSH_PORT,
    TIMEOUT_SECONDS,
)
from orca_platform.model import settings as model
from orca_platform.model.fields import FrontDoorMode
from orca_platform.plan import naming
from orca_platform.plan.clinic import ClinicPlan

from .k8s_objects import ApiObject, Meta

BACKEND = "orca"
POLICY_NAME = "clinic-sources"

TIMEOUT_ANNOTATION = TIMEOUT_SECONDS


@dataclass(frozen=True)
class FrontDoorArgs:
    plan: ClinicPlan
    ingress: model.Ingress
    ilb_subnet_name: str
    meta: Meta
    opts: pulumi.ResourceOptions
    # How long Pulumi may wait for the Service's endpoints (orca_image.startup_await_seconds): pulumi-kubernetes
    # awaits a Service with a selector until its endpoints are ready (provider/pkg/await/service.go, 10 minutes by
    # default), and the endpoint is a new server that may spend its whole start-up budget. Not skipAwait: the
    # clinic's exported privateIp comes from the status that wait delivers.
    await_seconds: int


@dataclass(frozen=True)
class FrontDoor:
    service: k8s.core.v1.Service
    ingress: k8s.networking.v1.Ingress
    # The address the clinic's staff use: its own load balancer's, or the ingress controller's.
    private_ip: pulumi.Output[str]


def render(name: str, args: FrontDoorArgs) -> FrontDoor:
    """The clinic's front door in its plan's mode."""
    renderer = RENDERERS[args.plan.front_door.mode]
    return renderer(name, args)


def _loadbalancer(name: str, args: FrontDoorArgs) -> FrontDoor:
    svc = _load_balancer_service(name, args)
    ingress = _ingress(name, args)
    p = args.plan
    if p.private_ip:
        private_ip = pulumi.Output.from_input(p.private_ip)
    else:
        private_ip = svc.status.apply(
            lambda st: (
                (st.load_balancer.ingress[0].ip or "") if st and st.load_balancer and st.load_balancer.ingress else ""
            )
        )
    return FrontDoor(svc, ingress, private_ip)


def _ingress_only(name: str, args: FrontDoorArgs) -> FrontDoor:
    svc = _cluster_ip_service(name, args)
    ingress = _ingress(name, args)
    # Staff reach the clinic by its FQDN, whose A record is the ingress controller's fixed address.
    return FrontDoor(svc, ingress, pulumi.Output.from_input(args.ingress.private_ip))


RENDERERS: dict[FrontDoorMode, Callable[[str, FrontDoorArgs], FrontDoor]] = {
    FrontDoorMode.LOADBALANCER: _loadbalancer,
    FrontDoorMode.INGRESS_ONLY: _ingress_only,
}


def _ports() -> list[k8s.core.v1.ServicePortArgs]:
    return [
        k8s.core.v1.ServicePortArgs(name="glserver", port=GLSERVER_PORT, target_port="glserver"),
        k8s.core.v1.ServicePortArgs(name="push", port=PUSH_PORT, target_port="push"),
    ]


def _load_balancer_service(name: str, args: FrontDoorArgs) -> k8s.core.v1.Service:
    p = args.plan
    annotations = {
        # Private frontend in the ILB subnet of our VNet: no public IP is ever created for a clinic.
        INTERNAL_LB: "true",
        INTERNAL_LB_SUBNET: args.ilb_subnet_name,
        # Without this, an internal LB's source ranges are moot: the NSG's default rule admits the whole VNet.
        LB_DENY_OTHERS: "true",
    }
    if p.private_ip:
        annotations[LB_IPV4] = p.private_ip
    annotations[TIMEOUT_ANNOTATION] = str(args.await_seconds)
    # The port stays on the Service for the Ingress's /ws route but takes no rule on every node
    # (cloud-provider-azure pkg/provider/azure_loadbalancer.go, IsLBRuleOnK8sServicePortDisabled).
    for port in p.front_door.no_lb_rule_ports:
        annotations[NO_LB_RULE.format(port=port)] = "true"
    return k8s.core.v1.Service(
        f"{name}-orca",
        metadata=args.meta("orca", annotations=annotations),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="LoadBalancer",
            selector=naming.selector(p.id),
            ports=_ports(),
            load_balancer_source_ranges=list(p.source_cidrs),
            # Preserve the clinic's source address so the NetworkPolicy can check it.
            external_traffic_policy="Local",
        ),
        opts=args.opts,
    )


def _cluster_ip_service(name: str, args: FrontDoorArgs) -> k8s.core.v1.Service:
    """Only the ingress controller's pods reach it (the NetworkPolicy); nothing outside the cluster routes to it."""
    return k8s.core.v1.Service(
        f"{name}-orca",
        metadata=args.meta("orca", annotations={TIMEOUT_ANNOTATION: str(args.await_seconds)}),
        spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=naming.selector(args.plan.id), ports=_ports()),
        opts=args.opts,
    )


def _ingress(name: str, args: FrontDoorArgs) -> k8s.networking.v1.Ingress:
    p = args.plan
    ing = args.ingress
    policy = ApiObject(
        f"{name}-sources",
        api_version="k8s.nginx.org/v1",
        kind="Policy",
        metadata=args.meta(POLICY_NAME),
        fields={"spec": {"accessControl": {"allow": list(p.source_cidrs)}}},
        opts=args.opts,
    )
    timeout = f"{ing.read_timeout_seconds}s"

    def path(path_: str, port: str) -> k8s.networking.v1.HTTPIngressPathArgs:
        return k8s.networking.v1.HTTPIngressPathArgs(
            path=path_,
            path_type="Prefix",
            backend=k8s.networking.v1.IngressBackendArgs(
                service=k8s.networking.v1.IngressServiceBackendArgs(
                    name=BACKEND, port=k8s.networking.v1.ServiceBackendPortArgs(name=port)
                )
            ),
        )

    return k8s.networking.v1.Ingress(
        f"{name}-orca",
        metadata=args.meta(
            "orca",
            annotations={
                # Consultation sessions hold connections open; nginx's 60 s default would cut them.
                "nginx.org/proxy-read-timeout": timeout,
                "nginx.org/proxy-send-timeout": timeout,
                "nginx.org/client-max-body-size": ing.max_body_size,
                # PUSH notifications are a WebSocket on /ws.
                "nginx.org/websocket-services": BACKEND,
                # Only the clinic's own networks, as on its load balancer.
                NGINX_POLICIES: POLICY_NAME,
            },
        ),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=ing.class_name,
            rules=[
                k8s.networking.v1.IngressRuleArgs(
                    host=p.fqdn,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[path("/ws", "push"), path("/", "glserver")]),
                )
            ],
        ),
        opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=[policy])),
    )
