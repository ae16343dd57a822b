"""Clinic ranges the platform assigns out of one clinic block: proposed in order, never reused, never overlapping.

Clinic routers ship with the same LAN (YAMAHA RTX830: 192.168.100.0/24), so the router translates its LAN into a
small range of the platform's clinic block, and the concentrator's selectors and firewall name that range alone.
A range once assigned stays assigned or retired for good: a retired range handed to a new clinic would let stale
allow-lists, logs or a forgotten router reach the new clinic's server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

# A clinic range narrower than /30 has no room for the router's translated hosts; wider than /24 is not "small".
NARROWEST_PREFIX = 30
WIDEST_PREFIX = 24


def _v4(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{what}: {text!r} is not a network in CIDR form ({exc})") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"{what}: {text!r} is not IPv4; clinic ranges are IPv4")
    return net


def _check_prefix(block: ipaddress.IPv4Network, prefix: int) -> None:
    if not WIDEST_PREFIX <= prefix <= NARROWEST_PREFIX:
        raise ValueError(f"prefix /{prefix}: a clinic range is between /{WIDEST_PREFIX} and /{NARROWEST_PREFIX}")
    if prefix < block.prefixlen:
        raise ValueError(f"prefix /{prefix} is wider than the clinic block {block}")


def _span(net: ipaddress.IPv4Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def propose_next(
    block: str,
    prefix: int,
    assigned: Iterable[str],
    retired: Iterable[str] = (),
    reserved: Iterable[str] = (),
) -> str:
    """The first /prefix of `block` that overlaps no assigned, retired or reserved range (VNet, pods, services).

    Deterministic: the same inputs always give the same range, so two reviewers running it agree. Raises ValueError
    when the block is full.
    """
    net = _v4(block, "clinic block")
    _check_prefix(net, prefix)
    taken: list[tuple[int, int]] = []
    for what, ranges in (("assigned range", assigned), ("retired range", retired)):
        taken.extend(_span(_v4(r, what)) for r in ranges)
    for r in reserved:
        # A reserved range may be IPv6 (a dual-stack VNet): it cannot collide with an IPv4 clinic range.
        res = ipaddress.ip_network(r, strict=False)
        if isinstance(res, ipaddress.IPv4Network):
            taken.append(_span(res))
    size = 1 << (32 - prefix)
    candidate, last = _span(net)
    for start, end in sorted(taken):
        if candidate + size - 1 < start:
            break
        if end >= candidate:
            candidate = (end // size + 1) * size  # the next aligned range past this one
    if candidate + size - 1 > last:
        raise ValueError(
            f"clinic block {net} has no free /{prefix} left: widen network.vpn.clinicBlock or add a second block"
        )
    return f"{ipaddress.IPv4Address(candidate)}/{prefix}"


def range_problems(
    block: str,
    prefix: int,
    assigned: Mapping[str, Sequence[str]],
    retired: Iterable[str] = (),
    reserved: Mapping[str, str] | None = None,
) -> list[str]:
    """Every reason the clinics' ranges cannot be used, each naming the clinic and the conflicting range.

    `assigned`: clinic id -> its ranges; `retired`: ranges of clinics that are gone; `reserved`: a label (e.g.
    "prod VNet", "prod pods") -> a range the clinics must never overlap, anywhere in the fleet.
    """
    problems: list[str] = []
    try:
        blk = _v4(block, "clinic block")
        _check_prefix(blk, prefix)
    except ValueError as exc:
        return [str(exc)]
    retired_nets: list[tuple[str, ipaddress.IPv4Network]] = []
    for text in retired:
        try:
            retired_nets.append((text, _v4(text, "retired range")))
        except ValueError as exc:
            problems.append(str(exc))
    reserved_nets: list[tuple[str, ipaddress.IPv4Network]] = []
    for label, text in sorted((reserved or {}).items()):
        res = ipaddress.ip_network(text, strict=False)
        if isinstance(res, ipaddress.IPv4Network):
            reserved_nets.append((label, res))
    spans: list[tuple[int, int, str, str]] = []
    for cid in sorted(assigned):
        for text in assigned[cid]:
            try:
                net = _v4(text, f"clinic {cid!r}")
            except ValueError as exc:
                problems.append(str(exc))
                continue
            problems += _one_range_problems(cid, net, blk, prefix, retired_nets, reserved_nets)
            spans.append((*_span(net), str(net), cid))
    spans.sort()
    reach: tuple[int, str, str] | None = None
    for start, end, net_text, cid in spans:
        if reach is not None and start <= reach[0]:
            problems.append(f"clinic {cid!r}: range {net_text} overlaps clinic {reach[2]!r}'s range {reach[1]}")
        if reach is None or end > reach[0]:
            reach = (end, net_text, cid)
    return problems


def _one_range_problems(
    cid: str,
    net: ipaddress.IPv4Network,
    blk: ipaddress.IPv4Network,
    prefix: int,
    retired: list[tuple[str, ipaddress.IPv4Network]],
    reserved: list[tuple[str, ipaddress.IPv4Network]],
) -> list[str]:
    problems = []
    if not net.subnet_of(blk):
        problems.append(f"clinic {cid!r}: range {net} lies outside the clinic block {blk}")
    if net.prefixlen < prefix:
        problems.append(f"clinic {cid!r}: range {net} is wider than the clinics' /{prefix}")
    problems += [
        f"clinic {cid!r}: range {net} overlaps retired range {text}; retired ranges are never reused "
        "(take the next free one the proposal gives)"
        for text, r in retired
        if net.overlaps(r)
    ]
    problems += [f"clinic {cid!r}: range {net} overlaps {label} {r}" for label, r in reserved if net.overlaps(r)]
    return problems
