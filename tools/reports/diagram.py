"""`make diagram [STACK=]`: the network as the stack renders it, as SVG: VPN sites and their ranges, the clinics
behind them, the one public IP, the VNet's subnets, each clinic's private IP and FQDN.

Drawn from the rendered stack (the program run offline, as `make synth` does), so it shows what would be built,
not what a document says. Writes build/diagram/<stack>.svg; `make pictures` refreshes docs/network-prod.svg.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.cli import run
from tools.offline.engine import PROJECT_DIR
from tools.offline.rendered import RenderedStack
from tools.reports.clinic_card import LB_IPV4, Site, render_stack, vpn_sites
from tools.reports.svg import Svg

WIDTH = 1200
SITE_COLOURS = ("#2e86c1", "#28b463", "#af7ac5", "#e67e22", "#16a085", "#c0392b")
PUBLIC = "#c0392b"
SUBNET_ROLES = {
    "GatewaySubnet": "VPN gateway",
    "snet-dns-inbound": "DNS resolver inbound endpoint",
    "snet-ilb": "internal LBs; clinics on :8000, :9400",
    "snet-nodes": "AKS nodes",
    "snet-private-endpoints": "private endpoints",
}


@dataclass(frozen=True)
class ClinicLine:
    id: str
    ip: str
    fqdn: str
    sources: list[str]
    state: str


def clinic_lines(stack: RenderedStack) -> list[ClinicLine]:
    lines = []
    for cid, c in sorted(stack.clinics.items()):
        ns = str(c["namespace"])
        service = next((r for r in stack.resources.values() if r.kind == "Service" and r.namespace == ns), None)
        annotations = (service.metadata.get("annotations") or {}) if service else {}
        sources = list((service.inputs.get("spec") or {}).get("loadBalancerSourceRanges") or []) if service else []
        lines.append(
            ClinicLine(cid, str(annotations.get(LB_IPV4) or "(Azure picks)"), str(c["fqdn"]), sources, str(c["state"]))
        )
    return lines


def _within(cidr: str, ranges: list[str]) -> bool:
    net = ipaddress.ip_network(cidr)
    return any(net.subnet_of(ipaddress.ip_network(r)) for r in ranges)  # type: ignore[arg-type]


def _inputs(stack: RenderedStack, type_: str) -> dict[str, object]:
    found = stack.of_type(type_)
    return found[0].inputs if found else {}


Cells = list[tuple[float, str]]


def subnet_rows(
    sub: str,
    stack: RenderedStack,
    clinics: list[ClinicLine],
    colour: dict[str, str],
    site_of: Callable[[ClinicLine], Site | None],
) -> list[tuple[str, Cells]]:
    """(swatch colour or '', [(x offset, text)]) per line of a subnet's box."""
    zone = str(stack.outputs.get("dnsZone") or "")
    if sub == "GatewaySubnet":
        gateway = _inputs(stack, "azure-native:network:VirtualNetworkGateway")
        sku = (gateway.get("sku") or {}).get("name", "")  # type: ignore[attr-defined]
        return [("", [(0, f"VPN gateway ({sku}): the tunnels end here")])]
    if sub == "snet-dns-inbound":
        return [("", [(0, f"DNS resolver: clinics forward {zone} here (address set by Azure)")])]
    if sub == "snet-ilb":
        ingress = str(stack.outputs.get("ingressPrivateIp") or "")
        rows: list[tuple[str, Cells]] = [("", [(0, ingress), (90, f"ingress controller, HTTP :80, for *.{zone}")])]
        for c in clinics:
            site = site_of(c)
            name = c.id + (" (suspended)" if c.state == "suspended" else "")
            swatch = colour[site.name] if site else "#999"
            rows.append((swatch, [(0, c.ip), (90, name), (255, c.fqdn)]))
        return rows
    if sub == "snet-nodes":
        pool = _inputs(stack, "azure-native:containerservice:AgentPool")
        count = int(float(str(pool.get("minCount") or 0)))
        return [("", [(0, f"AKS: system pool, and the orca pool of {count}+ x {pool.get('vmSize') or ''}")])]
    return [("", [(0, "backup archives (blob storage, private endpoint only)")])]


def draw(stack: RenderedStack, name: str) -> str:
    sites = vpn_sites(stack)
    clinics = clinic_lines(stack)
    colour = {s.name: SITE_COLOURS[i % len(SITE_COLOURS)] for i, s in enumerate(sites)}

    def site_of(c: ClinicLine) -> Site | None:
        return next((s for s in sites if c.sources and all(_within(x, s.ranges) for x in c.sources)), None)

    subnets = {
        str(r.inputs.get("subnetName")): str(r.inputs.get("addressPrefix"))
        for r in stack.of_type("azure-native:network:Subnet")
    }
    vnet = _inputs(stack, "azure-native:network:VirtualNetwork")
    vnet_cidr = ", ".join((vnet.get("addressSpace") or {}).get("addressPrefixes") or [])  # type: ignore[attr-defined]
    pip = _inputs(stack, "azure-native:network:PublicIPAddress")
    gateway = _inputs(stack, "azure-native:network:VirtualNetworkGateway")

    # Heights: sites on the left, subnets on the right; the picture is as tall as the taller column.
    site_h = [64 + 18 * len(s.ranges) + 16 * sum(1 for c in clinics if site_of(c) is s) for s in sites]
    boxes = [(sub, subnet_rows(sub, stack, clinics, colour, site_of)) for sub in SUBNET_ROLES if sub in subnets]
    right_h = 50 + sum(40 + 20 * len(rows) for _, rows in boxes)
    height = max(100 + sum(site_h) + 18 * len(sites), 80 + right_h) + 50
    svg = Svg(WIDTH, height, f"{name}: network")
    svg.text(20, 30, f"{name}: clinics reach their ORCA servers over IPsec only", size=18, weight="bold")
    svg.text(
        20,
        50,
        "Drawn from the rendered stack (make diagram). The only public address is the VPN gateway's.",
        size=12,
        fill="#555",
    )

    # --- left: the sites and the clinics behind them
    y = 80.0
    svg.text(20, y, "On-premises sites (local network gateways)", size=13, weight="bold")
    y += 14
    anchors: dict[str, float] = {}
    for s, h in zip(sites, site_h, strict=True):
        svg.rect(20, y, 340, h, stroke=colour[s.name], stroke_width=2, rx=6)
        svg.text(32, y + 20, f"site {s.name}", size=13, weight="bold", fill=colour[s.name])
        svg.text(32, y + 38, f"router {s.peer_ip} (public), tunnel {s.connection}", size=11)
        ty = y + 58
        for r in s.ranges:
            svg.text(32, ty, r, size=11, weight="bold")
            ty += 18
            for c in clinics:
                if site_of(c) is s and all(_within(x, [r]) for x in c.sources):
                    svg.text(
                        48,
                        ty - 2,
                        f"{c.id}: {', '.join(c.sources)}" + (" (suspended)" if c.state == "suspended" else ""),
                        size=11,
                        fill="#333",
                    )
                    ty += 16
        anchors[s.name] = y + h / 2
        y += h + 18

    # --- middle: the one public IP and the gateway
    gx, gy = 420.0, 110.0
    svg.rect(gx, gy, 230, 104, stroke=PUBLIC, stroke_width=2, rx=6)
    svg.text(gx + 12, gy + 22, "the platform's only public IP", size=12, weight="bold", fill=PUBLIC)
    svg.text(gx + 12, gy + 42, str(pip.get("publicIpAddressName") or "pip-vpn"), size=11)
    sku = (pip.get("sku") or {}).get("name", "")  # type: ignore[attr-defined]
    svg.text(gx + 12, gy + 58, f"{sku}, {pip.get('publicIPAllocationMethod') or ''}; address set by Azure", size=11)
    gw_sku = (gateway.get("sku") or {}).get("name", "")  # type: ignore[attr-defined]
    svg.text(gx + 12, gy + 78, f"VPN gateway {gateway.get('virtualNetworkGatewayName') or ''}", size=11)
    svg.text(gx + 12, gy + 94, f"{gw_sku}, route-based, IKEv2", size=11)
    for s in sites:
        svg.line(360, anchors[s.name], gx, gy + 52, stroke=colour[s.name], width=2)
    svg.text(gx, gy + 130, "IPsec over the Internet:", size=11, fill="#555")
    svg.text(gx, gy + 146, "nothing else is reachable from it", size=11, fill="#555")

    # --- right: the VNet and its subnets
    vx, vy, vw = 690.0, 80.0, WIDTH - 710.0
    svg.rect(vx, vy, vw, right_h, stroke="#555", stroke_width=1.5, rx=8)
    svg.text(
        vx + 14, vy + 24, f"Azure VNet {vnet.get('virtualNetworkName') or ''}  {vnet_cidr}", size=13, weight="bold"
    )
    sy = vy + 40
    for sub, rows in boxes:
        box_h = 30 + 20 * len(rows)
        svg.rect(vx + 12, sy, vw - 24, box_h, fill="#f7f9fb", stroke="#aab", rx=4)
        svg.text(vx + 24, sy + 18, f"{sub}  {subnets[sub]}  ({SUBNET_ROLES[sub]})", size=11, weight="bold")
        ry = sy + 36
        for fill, cells in rows:
            if fill:
                svg.rect(vx + 24, ry - 10, 10, 10, fill=fill)
            for offset, cell in cells:
                svg.text(vx + 40 + offset, ry, cell, size=11)
            ry += 20
        if sub == "GatewaySubnet":
            svg.line(gx + 230, gy + 52, vx + 12, sy + box_h / 2, stroke=PUBLIC, width=1.5, dash="5 3")
        sy += box_h + 10

    svg.text(
        20,
        height - 20,
        "Colours: the site a clinic's networks arrive from. Each clinic's server admits only "
        "its own source ranges (load balancer, ingress allow-list, NetworkPolicy).",
        size=11,
        fill="#555",
    )
    return svg.render()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--out", default="", help="default build/diagram/<stack>.svg")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orca-diagram-") as tmp:
        try:
            rendered = render_stack(args.stack, Path(tmp) / args.stack)
        except FileNotFoundError:
            print(f"error: Pulumi.{args.stack}.yaml not found", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - the program's RunError carries the user-facing message
            print(f"error: {str(exc).split('RunError: ', 1)[-1]}", file=sys.stderr)
            return 2
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "diagram" / f"{args.stack}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draw(rendered, args.stack), encoding="utf-8")
    print(f"{args.stack}: network diagram -> {out}")
    return 0


if __name__ == "__main__":
    run(main)
