"""Kubernetes quantities, parsed strictly: '10GB' is a mistake, not 10 gigabytes."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEMORY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti)$")
_CPU = re.compile(r"^(?P<num>[0-9]+(\.[0-9]{1,3})?)(?P<m>m?)$")


def parse_bytes(text: str) -> int:
    """Bytes of a binary-suffixed quantity such as '1280Mi' or '32Gi'."""
    m = _MEMORY.fullmatch(text.strip())
    if not m:
        raise ValueError("must be a Kubernetes quantity with a binary suffix such as 32Gi or 1280Mi (Gi, not GB)")
    # Kubernetes rounds a fractional quantity up to the next whole byte.
    value = int((Decimal(m["num"]) * _BINARY[m["unit"]]).to_integral_value(rounding=ROUND_CEILING))
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def parse_millicores(text: str) -> int:
    """Millicores of a CPU quantity such as '250m' or '2'."""
    m = _CPU.fullmatch(text.strip())
    if not m:
        raise ValueError("must be a CPU quantity such as 250m or 2")
    if m["m"]:
        if "." in m["num"]:
            raise ValueError("millicores must be whole")
        value = int(m["num"])
    else:
        value = int(Decimal(m["num"]) * 1000)
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def gib(n_bytes: int) -> float:
    return n_bytes / 2**30


def mib(n_bytes: int) -> float:
    return n_bytes / 2**20
