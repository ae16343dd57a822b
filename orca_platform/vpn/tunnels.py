"""What the concentrator terminates: one IKEv2 connection per clinic, checked before anything is rendered.

Standard library only (import-linter contract in pyproject.toml): the settings layer builds these from validated
YAML, the renderers and the tests take them as they are. Every check raises ValueError naming the clinic and the
field, because a wrong selector here is a path from one clinic into another's server.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass, field

# A clinic id is a connection and child name in swanctl.conf and a comment in the firewall: a DNS label keeps it safe
# in all three (no braces, quotes, spaces or '#').
_CLINIC_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# IKE identities are rendered unquoted into swanctl.conf and router configurations: an FQDN-style name only.
# strongSwan reads a string without '@', '=' or ':' that is not an IP address as an ID_FQDN identity
# (src/libstrongswan/utils/identification.c, identification_create_from_string), the type the routers send for a
# name (YAMAHA `ipsec ike local name ... fqdn`, NEC `ikev2 authentication ... fqdn`).
_IDENTITY = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

# Clinic ranges the platform assigns are small (/29 or /28, issue 23); no selector may be wider than this unless the
# Concentrator says so explicitly.
DEFAULT_WIDEST_PREFIX = 28
DEFAULT_MSS = 1360
# Strong proposals that the clinic routers also offer (routers.py): AES-GCM / AES-CBC+SHA-256 with ECP-256 or
# MODP-2048. Every connection gets the same IKE proposals on purpose: with remote_addrs = %any the responder picks a
# config for IKE_SA_INIT before it knows the identity, and switches by identity in IKE_AUTH only among compatible ones.
DEFAULT_IKE_PROPOSALS = ("aes256gcm16-prfsha256-ecp256", "aes256-sha256-ecp256", "aes256-sha256-modp2048")
DEFAULT_ESP_PROPOSALS = ("aes256gcm16-ecp256", "aes256-sha256-ecp256", "aes256-sha256-modp2048")


def _network(text: str, where: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r} is not a network in CIDR form with no host bits set ({exc})") from None
    if not isinstance(net, ipaddress.IPv4Network):
        # The clinic's LAN is translated into an IPv4 range and the VNet is IPv4; IPv6 is for the outer IKE only.
        raise ValueError(f"{where}: {text!r} is IPv6; traffic selectors are IPv4 (IPv6 carries only the outer IKE)")
    return net


@dataclass(frozen=True)
class ClinicTunnel:
    """One clinic's connection: who it is, which range it owns, and the only addresses it may reach."""

    clinic_id: str
    identity: str
    remote_ts: tuple[str, ...]
    local_ts: tuple[str, ...]

    def __post_init__(self) -> None:
        where = f"clinic {self.clinic_id!r}"
        if not _CLINIC_ID.match(self.clinic_id):
            raise ValueError(f"{where}: clinic_id must be a DNS label (a-z, 0-9, '-'), it names the connection")
        if not _IDENTITY.match(self.identity):
            raise ValueError(
                f"{where}: identity {self.identity!r} must be an FQDN-style name (letters, digits, '-', dots), "
                "e.g. sakura-naika.vpn.example.jp: it is the clinic's IKE identity"
            )
        if not self.remote_ts:
            raise ValueError(f"{where}: remote_ts is empty; give the clinic's assigned range")
        if not self.local_ts:
            raise ValueError(
                f"{where}: local_ts is empty; list what the clinic may reach (ingress, its LB, DNS) as /32s"
            )
        self._check_selectors(where)

    def _check_selectors(self, where: str) -> None:
        remote = [_network(t, f"{where} remote_ts") for t in self.remote_ts]
        local = [_network(t, f"{where} local_ts") for t in self.local_ts]
        for net in local:
            if net.prefixlen != 32:
                raise ValueError(f"{where} local_ts: {net} is a range; list single addresses as /32s")
        for nets, name in ((remote, "remote_ts"), (local, "local_ts")):
            if len(set(nets)) != len(nets):  # compared as networks: "10.1.0.4" and "10.1.0.4/32" are one entry
                raise ValueError(f"{where} {name}: lists an entry twice: {[str(n) for n in nets]}")
        for i, a in enumerate(remote):
            for b in remote[i + 1 :]:
                if a.overlaps(b):
                    raise ValueError(f"{where} remote_ts: {a} and {b} overlap")
            for loc in local:
                if a.overlaps(loc):
                    raise ValueError(f"{where}: local_ts {loc} lies inside its own remote_ts {a}")

    @property
    def remote_networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(t) for t in self.remote_ts)

    @property
    def local_networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(t) for t in self.local_ts)


@dataclass(frozen=True)
class Concentrator:
    """The concentrator's whole configuration: its own identity and every clinic it terminates.

    `ipsec_interface`: None for the kernel IPsec datapath (Azure VMs; the firewall matches decrypted packets by their
    secpath), or the TUN device of strongSwan's userspace datapath kernel-libipsec (the tests: this machine's kernel
    has no ESP), which the firewall then requires as the input interface.
    """

    identity: str
    clinics: tuple[ClinicTunnel, ...]
    mss: int = DEFAULT_MSS
    widest_prefix: int = DEFAULT_WIDEST_PREFIX
    dpd_delay_s: int = 30
    ike_proposals: tuple[str, ...] = DEFAULT_IKE_PROPOSALS
    esp_proposals: tuple[str, ...] = DEFAULT_ESP_PROPOSALS
    ipsec_interface: str | None = None
    _by_id: dict[str, ClinicTunnel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _IDENTITY.match(self.identity):
            raise ValueError(f"concentrator: identity {self.identity!r} must be an FQDN-style name")
        if not 536 <= self.mss <= 1460:
            # 536: the IPv4 minimum (RFC 879); 1460: a plain 1500-byte path, where clamping would do nothing.
            raise ValueError(f"concentrator: mss {self.mss} must lie between 536 and 1460")
        if not 8 <= self.widest_prefix <= 32:
            raise ValueError(f"concentrator: widest_prefix /{self.widest_prefix} must lie between /8 and /32")
        if self.dpd_delay_s < 5:
            raise ValueError(f"concentrator: dpd_delay_s {self.dpd_delay_s} is below 5 s")
        for name, props in (("ike_proposals", self.ike_proposals), ("esp_proposals", self.esp_proposals)):
            if not props or any(not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", p) for p in props):
                raise ValueError(f"concentrator: {name} {props!r} must be strongSwan proposal keywords")
        if self.ipsec_interface is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", self.ipsec_interface):
            raise ValueError(f"concentrator: ipsec_interface {self.ipsec_interface!r} is not an interface name")
        by_id: dict[str, ClinicTunnel] = {}
        by_identity: dict[str, str] = {self.identity.lower(): "the concentrator itself"}
        for c in self.clinics:
            if c.clinic_id in by_id:
                raise ValueError(f"clinic {c.clinic_id!r} is listed twice")
            owner = by_identity.get(c.identity.lower())
            if owner is not None:
                raise ValueError(f"clinic {c.clinic_id!r}: identity {c.identity!r} is already used by {owner}")
            by_id[c.clinic_id] = c
            by_identity[c.identity.lower()] = f"clinic {c.clinic_id!r}"
            for net in c.remote_networks:
                if net.prefixlen < self.widest_prefix:
                    raise ValueError(
                        f"clinic {c.clinic_id!r} remote_ts: {net} is wider than /{self.widest_prefix}, "
                        "the widest range a clinic may hold; assign it a smaller range"
                    )
        self._check_overlaps()
        object.__setattr__(self, "_by_id", by_id)

    def _check_overlaps(self) -> None:
        # Sorted by first address, overlapping clinic ranges are neighbours: O(n log n) for thousands of clinics.
        spans = sorted(
            (int(n.network_address), int(n.broadcast_address), str(n), c.clinic_id)
            for c in self.clinics
            for n in c.remote_networks
        )
        reach_end, reach_net, reach_id = -1, "", ""
        for start, end, net, cid in spans:
            if start <= reach_end:
                raise ValueError(
                    f"clinic {cid!r} remote_ts {net} overlaps clinic {reach_id!r}'s {reach_net}: "
                    "every clinic needs a range of its own"
                )
            if end > reach_end:
                reach_end, reach_net, reach_id = end, net, cid
        # No clinic may be handed another clinic's range as something it can reach.
        starts = [s[0] for s in spans]
        for c in self.clinics:
            for loc in c.local_networks:
                addr = int(loc.network_address)
                i = bisect.bisect_right(starts, addr) - 1
                if i >= 0 and spans[i][0] <= addr <= spans[i][1]:
                    raise ValueError(
                        f"clinic {c.clinic_id!r} local_ts {loc} lies in clinic {spans[i][3]!r}'s range {spans[i][2]}"
                    )

    def clinic(self, clinic_id: str) -> ClinicTunnel:
        """The clinic's tunnel, or KeyError naming it."""
        try:
            return self._by_id[clinic_id]
        except KeyError:
            raise KeyError(f"no clinic {clinic_id!r} on the concentrator") from None

    def sorted_clinics(self) -> tuple[ClinicTunnel, ...]:
        """Clinics by id: every renderer walks them in this order, so output depends on content only."""
        return tuple(sorted(self.clinics, key=lambda c: c.clinic_id))
