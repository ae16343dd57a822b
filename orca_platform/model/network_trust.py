"""Which clinics may share source networks: none, unless they say they share one LAN (`sharedNetwork`).

A clinic's sourceCidrs are what its Service, its ingress allow-list and its NetworkPolicy admit. If two clinics' ranges
overlap, the staff of one reach the other's ORCA server, and its patient records. A practice group on one LAN is the
exception, and it must be stated: every clinic of the group names the same `sharedNetwork`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClinicNetworks:
    clinic: str
    shared_network: str | None
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class Overlap:
    """`cidr` of `clinic` overlaps `other_cidr` of `other` (which comes earlier in the file)."""

    clinic: str
    cidr: str
    other: str
    other_cidr: str


def trusted(a: ClinicNetworks, b: ClinicNetworks) -> bool:
    """Two clinics may overlap only when both name the same shared network."""
    return a.shared_network is not None and a.shared_network == b.shared_network


def overlaps(clinics: Sequence[ClinicNetworks]) -> Iterator[Overlap]:
    """Every overlap between ranges of two different clinics that do not share a network, reported on the later one.

    A sweep over the ranges sorted by first address: quadratic only in the ranges that do overlap, so a thousand
    clinics with their own networks cost a sort, not a million comparisons.
    """
    order = {c.clinic: i for i, c in enumerate(clinics)}
    by_id = {c.clinic: c for c in clinics}
    spans = sorted(
        (int(net.network_address), int(net.broadcast_address), c.clinic, cidr)
        for c in clinics
        for cidr in c.cidrs
        for net in [ipaddress.ip_network(cidr, strict=False)]
        if net.version == 4
    )
    active: list[tuple[int, int, str, str]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for span in spans:
        first, _, clinic, cidr = span
        active = [a for a in active if a[1] >= first]
        for _, _, other, other_cidr in active:
            if other == clinic or trusted(by_id[clinic], by_id[other]):
                continue
            later, earlier = (clinic, other) if order[clinic] > order[other] else (other, clinic)
            later_cidr, earlier_cidr = (cidr, other_cidr) if later == clinic else (other_cidr, cidr)
            key = (later, later_cidr, earlier, earlier_cidr)
            if key not in seen:
                seen.add(key)
                yield Overlap(later, later_cidr, earlier, earlier_cidr)
        active.append(span)
