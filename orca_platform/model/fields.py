"""The field types every model shares: the strict base model, CIDRs, cron schedules, image references, quantities and
the storage and front-door names. Pure: imported by the tenants file model, the stack settings and the catalogue."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .quantities import parse_bytes
from .schedule import check_cron

# registry/repository:tag or @sha256:digest; 'latest' and untagged references are refused below.
IMAGE_REF = re.compile(r"^[a-z0-9.\-:/_]+(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[a-f0-9]{64})$")


class Strict(BaseModel):
    """Unknown keys are errors; YAML keys are camelCase; no silent conversions.

    strict: '32' is not read as 32 nor 'yes' as true, so a quoted number or a YAML 1.1 boolean is reported with what
    to write instead of being guessed at. Enum fields opt out (see `Lax`): their YAML value is always text.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_enum_values=False,
        strict=True,
    )


# For StrEnum fields: strict mode would accept only enum instances, never the text YAML gives.
Lax = Field(strict=False)


def _quantity(value: str) -> str:
    parse_bytes(value)
    return value


def _image(value: str) -> str:
    if not IMAGE_REF.fullmatch(value):
        raise ValueError(
            "must be an image reference with an explicit tag or digest, e.g. myacr.azurecr.io/orca:5.2.0-1"
        )
    if value.endswith(":latest"):
        raise ValueError("must not use the 'latest' tag: every clinic must run a known, reviewed ORCA build")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"must be an IPv4 CIDR such as 192.168.10.0/24 ({exc})") from None
    if net.version != 4:
        raise ValueError("must be an IPv4 CIDR")
    return str(net)


def _cron(value: str) -> str:
    return check_cron(value)


Quantity = Annotated[str, AfterValidator(_quantity)]
ImageRef = Annotated[str, AfterValidator(_image)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Cron = Annotated[str, AfterValidator(_cron)]


class StorageStrategyName(StrEnum):
    AZURE_DISK = "azure-disk"
    AZURE_FILES_NFS = "azure-files-nfs"
    AZURE_FILES_SMB = "azure-files-smb"  # accepted by the parser only to be refused with its reason


class FrontDoorMode(StrEnum):
    """How a clinic's staff reach its server (orca_platform/plan/front_door.py)."""

    LOADBALANCER = "loadbalancer"  # its own internal load balancer IP (8000, 9400) plus its FQDN through the ingress
    INGRESS_ONLY = "ingress-only"  # its FQDN through the shared internal ingress controller only


# SKUs a clinic volume may use: provisioned v1 (Premium_*) and v2 (PremiumV2_*) for Azure Files; Premium SSD
# (Premium_*) and Premium SSD v2 (PremiumV2_LRS) for disks. orca_platform/plan/storage.py refuses pairs that do not
# exist.
StorageSku = Literal["Premium_LRS", "Premium_ZRS", "PremiumV2_LRS", "PremiumV2_ZRS"]
