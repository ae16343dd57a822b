"""Clinic router configurations for YAMAHA RTX830/RTX1300 and NEC UNIVERGE IX2215, from the same ClinicTunnel.

UNTESTED ON DEVICES. The commands were checked against the vendors' published references only:
- YAMAHA RT command reference (rt-common), chapter 15 IPsec: www.rtpro.yamaha.co.jp/RT/manual/rt-common/ipsec/
  e.g. ipsec_ike_keepalive_use.html (15.20: IKEv2 keepalive is the RFC 4306 form), and the NAT descriptor chapter
  for `ip tunnel nat descriptor` (the LAN translated into the assigned range on the tunnel).
- NEC UNIVERGE IX IKEv2 (route-based, `tunnel mode ipsec-ikev2`): NEC Platforms' function manual, "IKEv2/IPsecの設定"
  (support.necplatforms.co.jp/ix-nrv/manual/fd/02_router/23_ikev2.html: PSK only, ID_FQDN among the ID types,
  AES-CBC/GCM-256, HMAC-SHA2-256), and for the command forms (`ikev2 authentication psk id ... key char ...`, a
  PSK entry per ID, the peer on the tunnel interface) the walkthrough at nwengblog.com/uni-ix-ikev2 (IX2106, 10.2.16).
  The tunnel-interface lines (`ikev2 connect-type auto`, `ikev2 peer ...`, `ikev2 local-authentication ...`,
  `ikev2 ipsec pre-fragment`, `ip napt enable`, `ip tcp adjust-mss auto`) follow the form of NEC's published IX
  examples but were NOT found in the references consulted: the text says so above them.
Each clinic's IT checks every line against the reference for its firmware before use; the platform's tests prove the
concentrator's side only (tests/test_concentrator_strongswan.py).

The pre-shared key never appears here: the text holds a placeholder and the key is handed over out of band.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from orca_platform.vpn.tunnels import ClinicTunnel

RouterModel = Literal["yamaha-rtx830", "yamaha-rtx1300", "nec-ix2215"]
ROUTER_MODELS: tuple[RouterModel, ...] = ("yamaha-rtx830", "yamaha-rtx1300", "nec-ix2215")
# The RTX830's factory LAN (and so the most common clinic LAN); the router translates it into the assigned range.
DEFAULT_LAN = "192.168.100.0/24"
PSK_PLACEHOLDER = "<PRE-SHARED KEY, handed over apart>"
_UNTESTED = "untested on devices: check every line against the command reference of this router's firmware"


def _outer_address(tunnel: ClinicTunnel) -> str:
    """The address the clinic's LAN is translated to: the first host of its first assigned range."""
    net = tunnel.remote_networks[0]
    return str(next(iter(net.hosts()), net.network_address))


def _yamaha(tunnel: ClinicTunnel, concentrator: str, concentrator_identity: str, lan: str, model: str) -> list[str]:
    outer = _outer_address(tunnel)
    lines = [
        f"# {model}: clinic {tunnel.clinic_id} to the ORCA platform ({_UNTESTED})",
        "tunnel select 1",
        " description tunnel ORCA",
        " tunnel encapsulation ipsec",
        " ipsec tunnel 101",
        # ESP: AES-256-CBC with HMAC-SHA-256, matching the concentrator's aes256-sha256-modp2048 proposals.
        "  ipsec sa policy 101 1 esp aes256-cbc sha256-hmac",
        "  ipsec ike version 1 2",
        "  ipsec ike encryption 1 aes256-cbc",
        "  ipsec ike hash 1 sha256",
        "  ipsec ike group 1 modp2048",
        # PFS on rekeying: the concentrator's ESP proposals carry a DH group.
        "  ipsec ike pfs 1 on",
        # IKEv2 keepalive, RFC 4306 form (command reference 15.20): every 10 s, down after 3 misses.
        "  ipsec ike keepalive use 1 on rfc4306 10 3",
        f"  ipsec ike local name 1 {tunnel.identity} fqdn",
        f"  ipsec ike remote name 1 {concentrator_identity} fqdn",
        # The clinic initiates through its NAT (IPoE lines: MAP-E, DS-Lite): UDP 4500.
        "  ipsec ike nat-traversal 1 on",
        f"  ipsec ike pre-shared-key 1 text {PSK_PLACEHOLDER}",
        f"  ipsec ike remote address 1 {concentrator}",
        " ip tunnel tcp mss limit auto",
        " ip tunnel nat descriptor 1000",
        " tunnel enable 1",
        # The LAN leaves through the tunnel translated into the platform-assigned address.
        "nat descriptor type 1000 masquerade",
        f"nat descriptor address outer 1000 {outer}",
        f"nat descriptor address inner 1000 {_range_text(lan)}",
    ]
    lines += [f"ip route {n.network_address}/{n.prefixlen} gateway tunnel 1" for n in sorted(tunnel.local_networks)]
    lines.append("ipsec auto refresh on")
    return lines


def _range_text(lan: str) -> str:
    net = ipaddress.IPv4Network(lan)
    hosts = list(net.hosts()) if net.num_addresses <= 65536 else [net[1], net[-2]]
    return f"{hosts[0]}-{hosts[-1]}"


def _nec(tunnel: ClinicTunnel, concentrator: str, concentrator_identity: str, lan: str) -> list[str]:
    outer = _outer_address(tunnel)
    lines = [
        f"! nec-ix2215: clinic {tunnel.clinic_id} to the ORCA platform ({_UNTESTED})",
        f"! LAN {lan} leaves through Tunnel0.0 translated (NAPT) to {outer}",
        # One PSK entry per ID: the concentrator's, and (as the walkthrough notes some peers need) the router's own.
        f"ikev2 authentication psk id fqdn {concentrator_identity} key char {PSK_PLACEHOLDER}",
        f"ikev2 authentication psk id fqdn {tunnel.identity} key char {PSK_PLACEHOLDER}",
        "!",
        "! the interface lines below were not found in the references consulted: check each in the IX reference",
        "interface Tunnel0.0",
        "  tunnel mode ipsec-ikev2",
        f"  ip address {outer}/32",
        "  ip tcp adjust-mss auto",
        "  ip napt enable",
        "  ikev2 connect-type auto",
        f"  ikev2 local-authentication psk id fqdn {tunnel.identity}",
        f"  ikev2 peer {concentrator} authentication psk id fqdn {concentrator_identity}",
        "  ikev2 ipsec pre-fragment",
        "  no shutdown",
        "!",
    ]
    lines += [f"ip route {n} Tunnel0.0" for n in sorted(tunnel.local_networks)]
    return lines


def render_router(
    model: RouterModel,
    tunnel: ClinicTunnel,
    concentrator: str,
    concentrator_identity: str,
    lan: str = DEFAULT_LAN,
) -> str:
    """The clinic router's configuration text; the pre-shared key appears as a placeholder, handed over apart.

    `concentrator`: the concentrator's public address or name; `lan`: the clinic's own LAN, translated into the
    first host of its assigned range on the way into the tunnel.
    """
    try:
        ipaddress.IPv4Network(lan)
    except ValueError as exc:
        raise ValueError(f"clinic {tunnel.clinic_id!r}: lan {lan!r} is not an IPv4 network ({exc})") from None
    if not concentrator or any(ch.isspace() for ch in concentrator):
        raise ValueError(f"clinic {tunnel.clinic_id!r}: concentrator address {concentrator!r} is empty or has spaces")
    if model in ("yamaha-rtx830", "yamaha-rtx1300"):
        lines = _yamaha(tunnel, concentrator, concentrator_identity, lan, model)
    elif model == "nec-ix2215":
        lines = _nec(tunnel, concentrator, concentrator_identity, lan)
    else:
        raise ValueError(f"router model {model!r} is not one of {', '.join(ROUTER_MODELS)}")
    return "\n".join(lines) + "\n"
