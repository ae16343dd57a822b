"""The clinics' VPN: ranges the platform assigns, the concentrator's tunnels and their rendered configuration.

May import: the standard library and orca_platform.conventions. Never Pulumi, pydantic or YAML (import-linter
contract "The VPN core uses the standard library only"; tests/test_vpn_core.py checks every import).
"""

from __future__ import annotations

from orca_platform.vpn.audit import ParsedConnection, parse_connections, selector_problems
from orca_platform.vpn.ranges import propose_next, range_problems
from orca_platform.vpn.routers import ROUTER_MODELS, RouterModel, render_router
from orca_platform.vpn.swanctl import render_firewall, render_secrets, render_swanctl
from orca_platform.vpn.tunnels import ClinicTunnel, Concentrator

__all__ = [
    "ROUTER_MODELS",
    "ClinicTunnel",
    "Concentrator",
    "ParsedConnection",
    "RouterModel",
    "parse_connections",
    "propose_next",
    "range_problems",
    "render_firewall",
    "render_router",
    "render_secrets",
    "render_swanctl",
    "selector_problems",
]
