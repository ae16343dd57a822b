"""Address sets: CIDR unions, differences and intersections as disjoint integer ranges."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IpSet:
    """A set of IP addresses as sorted, disjoint, inclusive integer ranges per IP version."""

    ranges: tuple[tuple[int, int, int], ...] = ()  # (version, first, last)

    @classmethod
    def of(cls, *cidrs: str | IPNetwork) -> IpSet:
        out = cls()
        for c in cidrs:
            net = ipaddress.ip_network(c, strict=False) if isinstance(c, str) else c
            out = out | cls(((net.version, int(net.network_address), int(net.broadcast_address)),))
        return out

    @classmethod
    def everything(cls) -> IpSet:
        return cls.of("0.0.0.0/0", "::/0")

    def __or__(self, other: IpSet) -> IpSet:
        merged: list[tuple[int, int, int]] = []
        for v, lo, hi in sorted(self.ranges + other.ranges):
            if merged and merged[-1][0] == v and lo <= merged[-1][2] + 1:
                merged[-1] = (v, merged[-1][1], max(hi, merged[-1][2]))
            else:
                merged.append((v, lo, hi))
        return IpSet(tuple(merged))

    def __sub__(self, other: IpSet) -> IpSet:
        out: list[tuple[int, int, int]] = []
        for v, lo, hi in self.ranges:
            pieces = [(lo, hi)]
            for ov, olo, ohi in other.ranges:
                if ov != v:
                    continue
                nxt: list[tuple[int, int]] = []
                for plo, phi in pieces:
                    if ohi < plo or olo > phi:
                        nxt.append((plo, phi))
                        continue
                    if plo < olo:
                        nxt.append((plo, olo - 1))
                    if ohi < phi:
                        nxt.append((ohi + 1, phi))
                pieces = nxt
            out.extend((v, a, b) for a, b in pieces)
        return IpSet(()) | IpSet(tuple(out))

    def __and__(self, other: IpSet) -> IpSet:
        return self - (self - other)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        n = int(ip)
        return any(v == ip.version and lo <= n <= hi for v, lo, hi in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def issubset(self, other: IpSet) -> bool:
        return not (self - other)

    def cidrs(self) -> list[str]:
        out: list[str] = []
        for v, lo, hi in self.ranges:
            cls = ipaddress.IPv4Address if v == 4 else ipaddress.IPv6Address
            out.extend(str(n) for n in ipaddress.summarize_address_range(cls(lo), cls(hi)))
        return out

    def __str__(self) -> str:
        return ", ".join(self.cidrs()) or "(none)"
