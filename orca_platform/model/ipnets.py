"""Address classes that matter here, without Python's wider `is_private` (which also covers documentation ranges)."""

from __future__ import annotations

import ipaddress

INTERNAL = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
]


def is_internal(text: str) -> bool:
    """RFC 1918, shared (CGNAT), loopback or link-local: never reachable as a public peer."""
    net = ipaddress.ip_network(text, strict=False)
    return any(net.version == i.version and net.subnet_of(i) for i in INTERNAL)  # type: ignore[arg-type]


def excluded_within(outer: str, ranges: list[str]) -> list[str]:
    """The ranges inside `outer`, less those another listed range covers: an ipBlock's `except` list."""
    net = ipaddress.ip_network(outer)
    inside = [n for n in map(ipaddress.ip_network, ranges) if n.version == net.version and n.subnet_of(net)]  # type: ignore[arg-type]
    return [str(n) for n in inside if not any(n != m and n.subnet_of(m) for m in inside)]  # type: ignore[arg-type]
