"""`make clinic-card CLINIC=<id> [STACK=] [OUTPUTS=file]`: the page a clinic's IT needs to connect to its ORCA.

Made from the stack's plan (the validated settings and clinics, orca_platform/plan): the FQDN, the private address
(the clinic's own load balancer's, or the ingress controller's for an ingress-only clinic), the networks allowed in,
the DNS zone to forward and where to, the VPN path (the site-to-site site holding the clinic's networks, or the
point-to-site pool), how the IPsec key is fetched, the ports. Headings and the clinic's instructions carry Japanese.
What Azure assigns only at deployment (the VPN gateway's public IP, the DNS resolver's address, a clinic address left
dynamic) comes from a real stack's non-secret outputs when given: `pulumi stack output --json --stack <stack> >
outputs.json`, then OUTPUTS=outputs.json. Without them the card says how to look each one up.

Writes build/cards/<stack>/<clinic>.md and prints it. Exit status 2 for an unknown clinic or a stack whose settings
or clinics do not validate. render_stack and vpn_sites read a rendered stack for the network diagram.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orca_platform.conventions import GLSERVER_PORT, PUSH_PORT
from orca_platform.conventions import LB_IPV4 as LB_IPV4  # noqa: PLC0414 - re-exported
from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.errors import InputError
from orca_platform.model.settings import PointToSite, Settings, VpnSite
from orca_platform.plan.clinic import ClinicPlan
from orca_platform.plan.naming import azure_name
from orca_platform.plan.stack_plan import StackPlan, plan_stack
from tools.cli import run
from tools.offline.engine import PROJECT_DIR, run_program, stack_config
from tools.offline.rendered import RenderedStack, load
from tools.offline.synth import write
from tools.reports.plan import load as load_inputs

PORT_NAMES = {GLSERVER_PORT: "glserver (monsiaj client, API)", PUSH_PORT: "PUSH notifications (WebSocket)"}


@dataclass(frozen=True)
class Site:
    name: str
    peer_ip: str  # the site's own public address, as configured
    ranges: list[str]
    connection: str
    resource_group: str


def vpn_sites(stack: RenderedStack) -> list[Site]:
    connections = stack.of_type("azure-native:network:VirtualNetworkGatewayConnection")
    sites = []
    for lgw in stack.of_type("azure-native:network:LocalNetworkGateway"):
        name = str(lgw.inputs.get("localNetworkGatewayName") or lgw.name)
        conn = next(
            (c for c in connections if str((c.inputs.get("localNetworkGateway2") or {}).get("id", "")).endswith(name)),
            None,
        )
        sites.append(
            Site(
                name=name.removeprefix("lgw-"),
                peer_ip=str(lgw.inputs.get("gatewayIpAddress") or ""),
                ranges=list((lgw.inputs.get("localNetworkAddressSpace") or {}).get("addressPrefixes") or []),
                connection=str(conn.inputs.get("virtualNetworkGatewayConnectionName") or conn.name) if conn else "",
                resource_group=str(conn.inputs.get("resourceGroupName") or "") if conn else "",
            )
        )
    return sites


def site_of(cidrs: list[str], sites: list[Site]) -> list[Site]:
    nets = [ipaddress.ip_network(c) for c in cidrs]
    return [
        s
        for s in sites
        if any(n.subnet_of(ipaddress.ip_network(r)) for n in nets for r in s.ranges)  # type: ignore[arg-type]
    ]


def _live(live: dict[str, Any], key: str, stack_name: str, unknown: str) -> str:
    value = live.get(key)
    if isinstance(value, str) and value:
        return f"`{value}`"
    return f"{unknown}: `pulumi stack output {key} --stack {stack_name}`"


def _cidrs(values: Iterable[str]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def _inside(cidr: str, ranges: Iterable[str]) -> bool:
    net = ipaddress.ip_network(cidr)
    return any(
        net.version == r.version and net.subnet_of(r)  # type: ignore[arg-type]
        for r in map(ipaddress.ip_network, ranges)
    )


@dataclass(frozen=True)
class Reach:
    """How a clinic's networks reach the platform, from the stack's settings: the sites whose address spaces hold
    them, whether the point-to-site pool does, and the ranges neither holds (nothing of those gets through)."""

    sites: tuple[VpnSite, ...]
    point_to_site: PointToSite | None
    unreached: tuple[str, ...]


def reach_of(clinic: ClinicPlan, settings: Settings) -> Reach:
    vpn = settings.network.vpn
    sources = clinic.source_cidrs
    sites = tuple(s for s in vpn.sites if any(_inside(c, s.address_spaces) for c in sources))
    p2s = vpn.point_to_site
    in_pool = p2s is not None and any(_inside(c, [p2s.address_pool]) for c in sources)
    reached = [r for s in sites for r in s.address_spaces] + ([p2s.address_pool] if p2s and in_pool else [])
    return Reach(sites, p2s if in_pool else None, tuple(c for c in sources if not _inside(c, reached)))


def _address_rows(clinic: ClinicPlan, settings: Settings, live_clinic: dict[str, Any]) -> list[str]:
    """The private address and ports: a load-balanced clinic's own, or an ingress-only clinic's FQDN only."""
    fqdn, ns = clinic.fqdn, clinic.namespace
    ingress_ip = settings.ingress.private_ip
    rows = [
        f"| FQDN | `{fqdn}` (resolves to the ingress at `{ingress_ip}`; HTTP on port 80, inside the IPsec tunnel) |"
    ]
    if not clinic.front_door.load_balancer:
        # An ingress-only clinic has no load balancer of its own (front_door.py); validation refuses a privateIp.
        return [
            *rows,
            f"| Private IP | `{ingress_ip}`: the shared ingress controller's (this clinic has no address of its own; "
            "use the FQDN) |",
            f"| Ports | 80/tcp only: `http://{fqdn}/` (glserver, the monsiaj client), `http://{fqdn}/ws` (PUSH) |",
        ]
    if clinic.private_ip:
        private_ip = f"`{clinic.private_ip}` (fixed in tenants.yaml)"
    elif live_clinic.get("privateIp"):
        private_ip = f"`{live_clinic['privateIp']}` (chosen by Azure; stays until the Service is recreated)"
    else:
        private_ip = (
            f"chosen by Azure at deployment: `kubectl get service orca -n {ns} "
            "-o jsonpath='{.status.loadBalancer.ingress[0].ip}'` (an operator may pin it with privateIp in "
            "tenants.yaml)"
        )
    direct = ", ".join(f"{p}/tcp {PORT_NAMES[p]}" for p in clinic.front_door.direct_ports)
    through = "" if PUSH_PORT in clinic.front_door.direct_ports else f" (PUSH only through `http://{fqdn}/ws`)"
    return [
        *rows,
        f"| Private IP of the clinic's server | {private_ip} |",
        f"| Ports on the private IP | {direct}{through} |",
        f"| Ports through the FQDN | 80/tcp: `http://{fqdn}/` (glserver), `http://{fqdn}/ws` (PUSH) |",
    ]


def _vpn_lines(reach: Reach, settings: Settings, gateway: str, stack_name: str) -> list[str]:
    resource_group = azure_name(settings, "rg")
    gateway_name = azure_name(settings, "vgw")
    lines: list[str] = []
    for s in reach.sites:
        lines += [
            "Site-to-site IPsec (拠点間 VPN): the clinic's router keeps a tunnel to the platform's VPN gateway. "
            "医院のルーターがプラットフォームの VPN ゲートウェイと IPsec トンネルを張ります。",
            "",
            "| what | value |",
            "| --- | --- |",
            f"| VPN site | `{s.name}` (ranges {_cidrs(s.address_spaces)}) |",
            f"| The clinic's router (its public IP, as configured) | `{s.gateway_ip}` |",
            f"| The platform's VPN gateway (the tunnel's other end) | {gateway} |",
            "| Protocol | IKEv2, route-based; Azure's default IPsec/IKE policy (no custom policy configured) |",
            f"| Connection | `cn-{s.name}` in resource group `{resource_group}` |",
            "",
            "**Pre-shared key (事前共有鍵).** Generated by the platform and never written down. An operator allowed "
            "`Microsoft.Network/connections/sharedKey/read` on the connection (Network Contributor) fetches it "
            "and hands it over out of band (in person or by phone, never by email). "
            "鍵は運用担当者が対面または電話で伝えます（メール不可）。",
            "",
            "```",
            f"az network vpn-connection shared-key show --resource-group {resource_group} "
            f"--connection-name cn-{s.name} --query value --output tsv",
            "```",
            "",
            "It is not a stack output, and a decrypted export (`pulumi stack export --show-secrets`) is never "
            "used for it: that would write every secret of the stack to a file.",
            "",
        ]
    if reach.point_to_site is not None:
        p2s = reach.point_to_site
        lines += [
            "Point-to-site VPN (端末ごとの VPN): each PC connects on its own with a client certificate "
            "(OpenVPN or IKEv2); no router tunnel. 各端末が証明書で VPN に接続します。",
            "",
            "| what | value |",
            "| --- | --- |",
            f"| Client address pool | `{p2s.address_pool}` |",
            f"| Trusted root certificate | `{p2s.root_certificate_name}` (each PC needs a client certificate it "
            "signed) |",
            f"| The platform's VPN gateway | {gateway} |",
            "",
            "The client profile is downloaded by an operator and handed to the clinic:",
            "",
            "```",
            f"az network vnet-gateway vpn-client generate --resource-group {resource_group} --name {gateway_name}",
            "```",
            "",
        ]
    if reach.unreached:
        lines += [
            f"> **Not reachable yet (未接続)**: {_cidrs(reach.unreached)} lie in no VPN site of stack "
            f"`{stack_name}` and not in its point-to-site pool. Nothing from there reaches the server until an "
            "operator adds a site (`network.vpn.sites`) holding them.",
            "",
        ]
    return lines


def build_card(plan: StackPlan, clinic_id: str, stack_name: str, live: dict[str, Any] | None = None) -> str:
    """The card's Markdown, from the stack's plan. `live` is `pulumi stack output --json` of the deployed stack."""
    live = live or {}
    settings = plan.settings
    clinic = next(c for c in plan.clinics if c.id == clinic_id)
    zone = settings.network.dns_zone
    ingress_ip = settings.ingress.private_ip
    live_clinic = (live.get("clinics") or {}).get(clinic_id) or {}
    resolver = _live(
        live, "dnsResolverInboundIp", stack_name, f"assigned by Azure in {settings.network.dns_resolver_subnet_cidr}"
    )
    gateway = _live(live, "vpnGatewayPublicIp", stack_name, "assigned by Azure at the first deployment")
    fqdn = clinic.fqdn
    lines = [
        f"# ORCA connection card: {clinic.name} (`{clinic_id}`)",
        "",
        f"For the clinic's IT (医院の IT 担当者向け). Stack `{stack_name}`, made by `make clinic-card` from the "
        "platform's plan; it contains no secret.",
        "",
    ]
    if not clinic.active:
        lines += [
            "> **Suspended (休止中)**: the clinic's server is not running. Its data, address and name are kept; "
            "nothing answers until it is resumed. サーバーは停止中です（データは保持）。",
            "",
        ]
    lines += [
        "## Addresses (接続先)",
        "",
        "| what | value |",
        "| --- | --- |",
        *_address_rows(clinic, settings, live_clinic),
        f"| Allowed sources (接続を許可する院内ネットワーク) | {_cidrs(clinic.source_cidrs)}: nothing else reaches "
        "this server |",
        "",
        "## DNS (名前解決)",
        "",
        f"Add a conditional forwarder on the clinic's DNS server (or router) for the zone `{zone}` to the platform's "
        f"DNS resolver: {resolver}. The zone is private: public DNS does not know `{fqdn}`. "
        f"院内の DNS サーバー（またはルーター）に、ゾーン `{zone}` の条件付きフォワーダーを設定してください。",
        "",
        "## VPN",
        "",
        *_vpn_lines(reach_of(clinic, settings), settings, gateway, stack_name),
    ]
    client = (
        f"`{fqdn}` (or the private IP, port {GLSERVER_PORT})"
        if clinic.front_door.load_balancer
        else f"`http://{fqdn}/` (port 80)"
    )
    lines += [
        "## Checks from the clinic (疎通確認)",
        "",
        f"1. `nslookup {fqdn}` answers `{ingress_ip}`.",
        f"2. `curl -sS -o /dev/null -w '%{{http_code}}\\n' http://{fqdn}/` answers `400` (glserver's reply to a "
        "bare GET: it is up).",
        f"3. The monsiaj client connects to {client}.",
        "",
    ]
    return "\n".join(lines)


def render_stack(stack: str, work: Path) -> RenderedStack:
    run_ = run_program(stack, stack_config(stack, PROJECT_DIR))
    write(run_, work)
    return load(work)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clinic", required=True)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--outputs", default="", help="`pulumi stack output --json` of the deployed stack (optional)")
    ap.add_argument("--out", default="", help="where to write the card (default build/cards/<stack>/<clinic>.md)")
    args = ap.parse_args(argv)
    try:
        settings, tenants, config_source, tenants_name = load_inputs(args.stack, "")
        # A card is wanted even while a wall is crossed (make plan reports those); every other problem stops it.
        stack_plan = plan_stack(settings, tenants, load_catalogue(), tenants_name, config_source, enforce_walls=False)
    except (InputError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = [c.id for c in tenants.clinics]
    if args.clinic not in ids:
        print(
            f"error: no clinic {args.clinic!r} in {tenants_name} (stack {args.stack}); its clinics: {', '.join(ids)}",
            file=sys.stderr,
        )
        return 2
    live: dict[str, Any] = {}
    if args.outputs:
        try:
            live = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {args.outputs} as `pulumi stack output --json`: {exc}", file=sys.stderr)
            return 2
    text = build_card(stack_plan, args.clinic, args.stack, live)
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "cards" / args.stack / f"{args.clinic}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"-> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
