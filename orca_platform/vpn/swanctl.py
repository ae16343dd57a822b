"""The concentrator's files: swanctl.conf connections, the separate secrets file, and the nftables ruleset.

Output depends on the Concentrator's content only (clinics sorted by id, selectors sorted by address), so a review
diff shows exactly the clinics that changed, and a reload (`swanctl --load-all`) touches no other clinic's SA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from orca_platform.vpn.tunnels import ClinicTunnel, Concentrator

# A PSK shorter than this is guessable offline from one captured IKE_AUTH exchange (RFC 7296 section 2.15 says a
# PSK must have as much unpredictability as the strongest key negotiated).
MIN_PSK_CHARS = 20

INDENT = "    "


def _ts(nets: tuple[ipaddress.IPv4Network, ...]) -> str:
    return ", ".join(str(n) for n in sorted(nets))


def _connection(c: ClinicTunnel, conc: Concentrator) -> list[str]:
    i1, i2, i3, i4 = INDENT, INDENT * 2, INDENT * 3, INDENT * 4
    return [
        f"{i1}{c.clinic_id} {{",
        # IKEv2 only: IKEv1 has no identity protection for PSK in main mode and aggressive mode leaks a crackable hash.
        f"{i2}version = 2",
        # Clinics on IPoE (MAP-E, DS-Lite) share or change their IPv4 address: known by identity, never by address.
        f"{i2}remote_addrs = %any",
        f"{i2}proposals = {', '.join(conc.ike_proposals)}",
        # Large IKE_AUTH messages through clinic lines with small MTUs (swanctl.conf: fragmentation, RFC 7383).
        f"{i2}fragmentation = yes",
        # ESP always in UDP 4500: Azure's public load balancer forwards TCP and UDP only, never IP protocol 50, and
        # most clinics sit behind NAT anyway (swanctl.conf: encap "force UDP encapsulation for ESP packets").
        f"{i2}encap = yes",
        f"{i2}dpd_delay = {conc.dpd_delay_s}s",
        # A clinic that re-initiates (new address after a line reconnect) replaces its own old SA.
        f"{i2}unique = replace",
        f"{i2}send_certreq = no",
        f"{i2}local {{",
        f"{i3}auth = psk",
        f"{i3}id = {conc.identity}",
        f"{i2}}}",
        f"{i2}remote {{",
        f"{i3}auth = psk",
        f"{i3}id = {c.identity}",
        f"{i2}}}",
        f"{i2}children {{",
        f"{i3}{c.clinic_id} {{",
        # Exactly the clinic's own range and what it may reach; a clinic proposing more is narrowed to these, one
        # proposing another clinic's range gets TS_UNACCEPTABLE (tests/test_concentrator_strongswan.py).
        f"{i4}local_ts = {_ts(c.local_networks)}",
        f"{i4}remote_ts = {_ts(c.remote_networks)}",
        f"{i4}esp_proposals = {', '.join(conc.esp_proposals)}",
        f"{i4}mode = tunnel",
        # The concentrator only answers; a clinic gone silent is cleared and initiates again.
        f"{i4}start_action = none",
        f"{i4}dpd_action = clear",
        f"{i3}}}",
        f"{i2}}}",
        f"{i1}}}",
    ]


def render_swanctl(c: Concentrator) -> str:
    """swanctl.conf `connections`: one IKEv2 connection per clinic. It holds no key (render_secrets does)."""
    lines = [
        f"# Rendered by orca_platform.vpn.render_swanctl: {len(c.clinics)} clinic connection(s). No keys here.",
        "connections {",
    ]
    for clinic in c.sorted_clinics():
        lines.extend(_connection(clinic, c))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_secrets(c: Concentrator, psks: Mapping[str, str]) -> str:
    """swanctl.conf `secrets`: one IKE pre-shared key per clinic, keyed by the clinic's identity only.

    Only the delivery path calls this, with keys from Pulumi secrets; the file is never reviewed or written to the
    repository. The concentrator's own identity is deliberately absent from every entry: an entry listing it would
    match every clinic's connection. Keys are rendered in hex (swanctl.conf: `0x` prefix), so no character of a
    generated key can break the syntax.
    """
    ids = {clinic.clinic_id for clinic in c.clinics}
    missing = sorted(ids - set(psks))
    extra = sorted(set(psks) - ids)
    if missing:
        raise ValueError(f"no pre-shared key for clinic(s) {', '.join(missing)}")
    if extra:
        raise ValueError(f"pre-shared key(s) for clinic(s) not on the concentrator: {', '.join(extra)}")
    seen: dict[str, str] = {}
    for cid in sorted(psks):
        key = psks[cid]
        if len(key) < MIN_PSK_CHARS:
            raise ValueError(f"clinic {cid!r}: pre-shared key has fewer than {MIN_PSK_CHARS} characters")
        if key in seen:
            # Two clinics on one key could each authenticate as the other's identity.
            raise ValueError(f"clinic {cid!r}: pre-shared key is the same as clinic {seen[key]!r}'s")
        seen[key] = cid
    i1, i2 = INDENT, INDENT * 2
    lines = ["# Rendered by orca_platform.vpn.render_secrets. Secret: mode 0600, never in a repository.", "secrets {"]
    for clinic in c.sorted_clinics():
        lines += [
            f"{i1}ike-{clinic.clinic_id} {{",
            f"{i2}id = {clinic.identity}",
            f"{i2}secret = 0x{psks[clinic.clinic_id].encode().hex()}",
            f"{i1}}}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _elements(items: list[str]) -> str:
    return f"elements = {{ {', '.join(items)} }}" if items else ""


def render_firewall(c: Concentrator) -> str:
    """An nftables ruleset: per clinic, a second check independent of strongSwan's selectors, and MSS clamping.

    A packet from clinic X's range is forwarded only to X's local_ts, and only when it came out of IPsec (kernel
    datapath: it carries a secpath; userspace datapath: it came in on the libipsec TUN device). Replies go back only
    on connections such a packet opened. Everything else from or to the clinic ranges is dropped and counted.
    """
    clinics = c.sorted_clinics()
    ranges = sorted({n for cl in clinics for n in cl.remote_networks})
    pairs = sorted({(r, loc) for cl in clinics for r in cl.remote_networks for loc in cl.local_networks})
    # `meta ipsec` is NFT_META_SECPATH, "boolean, secpath_exists": the nftables replacement of iptables' `-m policy
    # --dir in --pol ipsec` (Linux commit f6931f5f5b71, netfilter: meta: secpath support; nft(8) META EXPRESSIONS).
    not_ipsec = "meta ipsec missing" if c.ipsec_interface is None else f'iifname != "{c.ipsec_interface}"'
    clamp = f"tcp flags syn tcp option maxseg size > {c.mss} tcp option maxseg size set {c.mss}"
    t1, t2 = INDENT, INDENT * 2
    lines = [
        f"# Rendered by orca_platform.vpn.render_firewall: {len(clinics)} clinic(s). Load with nft -f (atomic).",
        "table inet orca_vpn",
        "delete table inet orca_vpn",
        "table inet orca_vpn {",
        f"{t1}set clinic_ranges {{",
        f"{t2}type ipv4_addr",
        f"{t2}flags interval",
    ]
    if ranges:
        lines.append(f"{t2}{_elements([str(r) for r in ranges])}")
    lines += [
        f"{t1}}}",
        # (clinic range . address it may reach): one lookup for every clinic, however many there are.
        f"{t1}set clinic_reach {{",
        f"{t2}type ipv4_addr . ipv4_addr",
        f"{t2}flags interval",
    ]
    if pairs:
        lines.append(f"{t2}{_elements([f'{r} . {loc.network_address}' for r, loc in pairs])}")
    lines += [
        f"{t1}}}",
        # Clinic lines often carry less than 1500 bytes (PPPoE, MAP-E, DS-Lite) and ESP-in-UDP adds its own overhead.
        f"{t1}chain clamp {{",
        f"{t2}type filter hook forward priority mangle; policy accept;",
        f"{t2}ip saddr @clinic_ranges {clamp}",
        f"{t2}ip daddr @clinic_ranges {clamp}",
        f"{t1}}}",
        f"{t1}chain forward {{",
        f"{t2}type filter hook forward priority filter; policy drop;",
        f'{t2}ip saddr @clinic_ranges {not_ipsec} counter drop comment "clinic source not out of IPsec"',
        f'{t2}ip saddr . ip daddr @clinic_reach accept comment "a clinic to what it may reach"',
        f'{t2}ip saddr @clinic_ranges counter drop comment "a clinic beyond its reach"',
        f"{t2}ip daddr . ip saddr @clinic_reach ct state established,related accept",
        f'{t2}ip daddr @clinic_ranges counter drop comment "not a reply to the clinic"',
        f"{t1}}}",
        # The concentrator itself offers nothing inside the tunnels.
        f"{t1}chain input {{",
        f"{t2}type filter hook input priority filter; policy accept;",
        f'{t2}ip saddr @clinic_ranges counter drop comment "clinics reach services, not the concentrator"',
        f"{t1}}}",
        "}",
    ]
    return "\n".join(lines) + "\n"
