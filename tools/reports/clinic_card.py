"""`make clinic-card CLINIC=<id> [STACK=] [OUTPUTS=file]`: the page a clinic's IT needs to connect to its ORCA.

Rendered from the stack offline (as `make synth` renders it): the FQDN, the private addresses, the DNS zone to
forward and where to, the VPN site and tunnel, how the IPsec key is fetched, the ports. What Azure assigns only at
deployment (the VPN gateway's public IP, the DNS resolver's address, a clinic address left dynamic) comes from a
real stack's non-secret outputs when given: `pulumi stack output --json --stack <stack> > outputs.json`, then
OUTPUTS=outputs.json. Without them the card says how to look each one up.

Writes build/cards/<stack>/<clinic>.md and prints it. Exit status 2 for an unknown clinic or a stack that does not
render.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orca_platform.conventions import GLSERVER_PORT, PUSH_PORT
from orca_platform.conventions import LB_IPV4 as LB_IPV4  # noqa: PLC0414 - re-exported
from orca_platform.model.errors import InputError
from tools.cli import run
from tools.offline.engine import PROJECT_DIR, run_program, stack_config
from tools.offline.rendered import RenderedStack, Resource, load
from tools.offline.synth import write
from tools.reports.plan import load as load_inputs

RESOLVER_SUBNET = "snet-dns-inbound"


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


def _k8s(stack: RenderedStack, kind: str, namespace: str, name: str) -> Resource | None:
    return next(
        (r for r in stack.resources.values() if r.kind == kind and r.namespace == namespace and r.object_name == name),
        None,
    )


def _subnet(stack: RenderedStack, name: str) -> str:
    for r in stack.of_type("azure-native:network:Subnet"):
        if r.inputs.get("subnetName") == name:
            return str(r.inputs.get("addressPrefix") or "")
    return ""


def _live(live: dict[str, Any], key: str, stack_name: str, unknown: str) -> str:
    value = live.get(key)
    if isinstance(value, str) and value:
        return f"`{value}`"
    return f"{unknown}: `pulumi stack output {key} --stack {stack_name}`"


def build_card(stack: RenderedStack, clinic_id: str, stack_name: str, live: dict[str, Any] | None = None) -> str:
    """The card's Markdown. `live` is `pulumi stack output --json` of the deployed stack, if any."""
    live = live or {}
    c = stack.clinics[clinic_id]
    ns = str(c["namespace"])
    zone = str(stack.outputs.get("dnsZone") or "")
    ingress_ip = str(stack.outputs.get("ingressPrivateIp") or "")
    service = _k8s(stack, "Service", ns, "orca")
    annotations = (service.metadata.get("annotations") or {}) if service else {}
    sources = list((service.inputs.get("spec") or {}).get("loadBalancerSourceRanges") or []) if service else []
    pinned = str(annotations.get(LB_IPV4) or "")
    live_clinic = (live.get("clinics") or {}).get(clinic_id) or {}
    if pinned:
        private_ip = f"`{pinned}` (fixed in tenants.yaml)"
    elif live_clinic.get("privateIp"):
        private_ip = f"`{live_clinic['privateIp']}` (chosen by Azure; stays until the Service is recreated)"
    else:
        private_ip = (
            f"chosen by Azure at deployment: `kubectl get service orca -n {ns} "
            "-o jsonpath='{.status.loadBalancer.ingress[0].ip}'` (pin it with privateIp in tenants.yaml)"
        )
    sites = site_of(sources, vpn_sites(stack))
    resolver_subnet = _subnet(stack, RESOLVER_SUBNET)
    resolver = _live(live, "dnsResolverInboundIp", stack_name, f"assigned by Azure in {resolver_subnet}")
    gateway = _live(live, "vpnGatewayPublicIp", stack_name, "assigned by Azure at the first deployment")
    fqdn = str(c["fqdn"])
    lines = [
        f"# ORCA connection card: {c['name']} (`{clinic_id}`)",
        "",
        f"For the clinic's IT. Stack `{stack_name}`, rendered by `make clinic-card` from the platform's program; "
        "it contains no secret.",
        "",
    ]
    if c.get("state") == "suspended":
        lines += [
            "> **Suspended**: the clinic's server is not running. Its data, address and name are kept; "
            "nothing answers until it is resumed.",
            "",
        ]
    lines += [
        "## Addresses (接続先)",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| FQDN | `{fqdn}` (resolves to the ingress at `{ingress_ip}`; HTTP on port 80, inside the IPsec tunnel) |",
        f"| Private IP of the clinic's server | {private_ip} |",
        f"| Ports on the private IP | {GLSERVER_PORT}/tcp glserver (monsiaj client, API), "
        f"{PUSH_PORT}/tcp PUSH notifications (WebSocket) |",
        f"| Ports through the FQDN | 80/tcp: `http://{fqdn}/` (glserver), `http://{fqdn}/ws` (PUSH) |",
        f"| Allowed sources | {', '.join(f'`{s}`' for s in sources) or '(none)'}: nothing else reaches this server |",
        "",
        "## DNS (名前解決)",
        "",
        f"Add a conditional forwarder on the clinic's DNS server (or router) for the zone `{zone}` to the platform's "
        f"DNS resolver: {resolver}. The zone is private: public DNS does not know `{fqdn}`.",
        "",
        "## VPN (拠点間 IPsec)",
        "",
    ]
    if sites:
        for s in sites:
            lines += [
                "| what | value |",
                "| --- | --- |",
                f"| VPN site | `{s.name}` (ranges {', '.join(f'`{r}`' for r in s.ranges)}) |",
                f"| The clinic's router (its public IP, as configured) | `{s.peer_ip}` |",
                f"| The platform's VPN gateway (the tunnel's other end) | {gateway} |",
                "| Protocol | IKEv2, route-based; Azure's default IPsec/IKE policy (no custom policy configured) |",
                f"| Connection | `{s.connection}` in resource group `{s.resource_group}` |",
                "",
                "**Pre-shared key.** Generated by the platform and never written down. An operator allowed "
                "`Microsoft.Network/connections/sharedKey/read` on the connection (Network Contributor) fetches it "
                "and hands it over out of band (in person or by phone, never by email):",
                "",
                "```",
                f"az network vpn-connection shared-key show --resource-group {s.resource_group} "
                f"--connection-name {s.connection} --query value --output tsv",
                "```",
                "",
                "It is not a stack output, and a decrypted export (`pulumi stack export --show-secrets`) is never "
                "used for it: that would write every secret of the stack to a file.",
                "",
            ]
    else:
        lines += [
            "The clinic's networks lie in no site-to-site VPN range of this stack: it connects through the "
            "point-to-site VPN (staff laptops), whose client profile an operator downloads with "
            "`az network vnet-gateway vpn-client generate`.",
            "",
        ]
    lines += [
        "## Checks from the clinic (疎通確認)",
        "",
        f"1. `nslookup {fqdn}` answers `{ingress_ip}`.",
        f"2. `curl -sS -o /dev/null -w '%{{http_code}}\\n' http://{fqdn}/` answers `400` (glserver's reply to a "
        "bare GET: it is up).",
        f"3. The monsiaj client connects to `{fqdn}` (or the private IP, port {GLSERVER_PORT}).",
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
        _, tenants, _, tenants_name = load_inputs(args.stack, "")
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
    with tempfile.TemporaryDirectory(prefix="orca-card-") as tmp:
        try:
            rendered = render_stack(args.stack, Path(tmp) / args.stack)
        except Exception as exc:  # noqa: BLE001 - the program's RunError carries the user-facing message
            print(f"error: {str(exc).split('RunError: ', 1)[-1]}", file=sys.stderr)
            return 2
    text = build_card(rendered, args.clinic, args.stack, live)
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "cards" / args.stack / f"{args.clinic}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"-> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
