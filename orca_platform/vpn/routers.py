"""Clinic router configurations for YAMAHA RTX830/RTX1300 and NEC UNIVERGE IX2215 (being written: see git log)."""

from __future__ import annotations

from typing import Literal

from orca_platform.vpn.tunnels import ClinicTunnel

RouterModel = Literal["yamaha-rtx830", "yamaha-rtx1300", "nec-ix2215"]
ROUTER_MODELS: tuple[RouterModel, ...] = ("yamaha-rtx830", "yamaha-rtx1300", "nec-ix2215")
# The RTX830's factory LAN (and so the most common clinic LAN); the router translates it into the assigned range.
DEFAULT_LAN = "192.168.100.0/24"


def render_router(
    model: RouterModel,
    tunnel: ClinicTunnel,
    concentrator: str,
    concentrator_identity: str,
    lan: str = DEFAULT_LAN,
) -> str:
    """The clinic router's configuration text; the pre-shared key appears as a placeholder, handed over apart."""
    raise NotImplementedError(model)
