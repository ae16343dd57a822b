"""The clinics of tenants.yaml as validated models."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .backup_plan import snapshot_volume
from .errors import InputError, Problem, problems_from_validation
from .quantities import parse_bytes
from .yamlio import load_yaml_file

# A clinic id becomes the namespace suffix (orca-<id>), label values and Azure DNS record names:
# a DNS label short enough that every derived name stays within Kubernetes' 63-character limit.
CLINIC_ID = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){1,38}[a-z0-9]$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
# registry/repository:tag or @sha256:digest; 'latest' and untagged references are refused below.
IMAGE_REF = re.compile(r"^[a-z0-9.\-:/_]+(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[a-f0-9]{64})$")
CRON = re.compile(r"^\S+ \S+ \S+ \S+ \S+$")


class Strict(BaseModel):
    """Unknown keys are errors; YAML keys are camelCase."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, use_enum_values=False
    )


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
    if not CRON.fullmatch(value):
        raise ValueError("must be a five-field cron expression such as '30 1 * * *'")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]
ImageRef = Annotated[str, AfterValidator(_image)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Cron = Annotated[str, AfterValidator(_cron)]


class ClinicState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # no pod; the volume, its backups and its address stay


class StorageStrategyName(StrEnum):
    AZURE_DISK = "azure-disk"
    AZURE_FILES_NFS = "azure-files-nfs"
    AZURE_FILES_SMB = "azure-files-smb"  # accepted by the parser only to be refused with its reason


class FrontDoorMode(StrEnum):
    """How a clinic's staff reach its server (orca_platform/front_door.py)."""

    LOADBALANCER = "loadbalancer"  # its own internal load balancer IP (8000, 9400) plus its FQDN through the ingress
    INGRESS_ONLY = "ingress-only"  # its FQDN through the shared internal ingress controller only


# SKUs a clinic volume may use: provisioned v1 (Premium_*) and v2 (PremiumV2_*) for Azure Files; Premium SSD
# (Premium_*) and Premium SSD v2 (PremiumV2_LRS) for disks. orca_platform/storage.py refuses pairs that do not exist.
StorageSku = Literal["Premium_LRS", "Premium_ZRS", "PremiumV2_LRS", "PremiumV2_ZRS"]


class ClinicBackup(Strict):
    """Per-clinic overrides of the stack's backup settings."""

    dump_schedule: Cron | None = None
    snapshot_schedule: Cron | None = None


class ClinicRestore(Strict):
    """Build this clinic's volume anew from a backup. Every earlier volume is left untouched and protected."""

    # Names the new volume generation (PVC orca-state-<id>).
    id: Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")]
    # Exactly one of these: a VolumeSnapshot in the clinic's namespace, or a pg_dump blob in the backup account.
    from_snapshot: Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")] | None = None
    from_dump: Annotated[str, Field(pattern=r"^(daily|monthly)/[a-z0-9-]+/[A-Za-z0-9._-]+\.dump$")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ClinicRestore:
        if (self.from_snapshot is None) == (self.from_dump is None):
            raise ValueError("name exactly one of fromSnapshot or fromDump")
        return self


class Clinic(Strict):
    id: str
    name: Annotated[str, Field(min_length=1, max_length=100)]
    size: str
    volume_size: Quantity
    state: ClinicState = ClinicState.ACTIVE
    source_cidrs: Annotated[list[Cidr], Field(min_length=1)]
    hostname: str | None = None
    private_ip: str | None = None
    image: ImageRef | None = None
    storage: StorageStrategyName | None = None
    # Pins this clinic's volume SKU (default: the stack's storage.sku). A volume never changes class: pin existing
    # clinics before changing the stack's default, which then applies to new clinics only (README, "Storage").
    storage_sku: StorageSku | None = None
    # Pins this clinic's front door (default: the stack's frontDoor.mode), for the same reason: a change is visible
    # to the clinic's staff (an IP address that stops answering).
    front_door: FrontDoorMode | None = None
    backup: ClinicBackup | None = None
    # Append-only history of restores: the last one is the volume ORCA runs on; the earlier volumes (and the
    # original orca-state) stay registered and protected until an operator retires them on purpose.
    restores: list[ClinicRestore] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CLINIC_ID.fullmatch(value):
            raise ValueError(
                "must be a DNS label of 3 to 40 characters: lowercase letters, digits and single hyphens, "
                "starting with a letter"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not DNS_NAME.fullmatch(value):
            raise ValueError("must be a lowercase DNS name such as sakura.orca.example.jp")
        return value

    @field_validator("private_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IPv4 address such as 10.40.8.21") from None
        if addr.version != 4:
            raise ValueError("must be an IPv4 address")
        return str(addr)

    @field_validator("source_cidrs")
    @classmethod
    def _unique_cidrs(cls, value: list[str]) -> list[str]:
        dup = [c for c, n in Counter(value).items() if n > 1]
        if dup:
            raise ValueError(f"lists {dup[0]} twice")
        return value

    @field_validator("restores")
    @classmethod
    def _restores(cls, value: list[ClinicRestore], info: ValidationInfo) -> list[ClinicRestore]:
        """Each restore has a new id and reads only this clinic's own backups of an older volume generation."""
        clinic_id = info.data.get("id", "")
        generations = ["orca-state"]
        for r in value:
            if f"orca-state-{r.id}" in generations:
                raise ValueError(f"restore id {r.id!r} is used twice: each restore needs a new id")
            if r.from_snapshot is not None:
                volume = snapshot_volume(r.from_snapshot)
                if volume is None:
                    raise ValueError(
                        f"{r.id}: fromSnapshot {r.from_snapshot!r} is not a snapshot this platform takes "
                        "(<volume>-<YYYYMMDDhhmmss> or <volume>-pre-upgrade-<YYYYMMDDhhmmss>)"
                    )
                if volume not in generations:
                    raise ValueError(
                        f"{r.id}: fromSnapshot {r.from_snapshot!r} is of volume {volume!r}, which is not an "
                        f"earlier volume of this clinic ({', '.join(generations)})"
                    )
            if r.from_dump is not None and r.from_dump.split("/")[1] != clinic_id:
                raise ValueError(
                    f"{r.id}: fromDump {r.from_dump!r} belongs to another clinic; this clinic restores only from "
                    f"daily/{clinic_id}/... or monthly/{clinic_id}/..."
                )
            generations.append(f"orca-state-{r.id}")
        return value

    @property
    def restore(self) -> ClinicRestore | None:
        """The restore whose volume is current, if any."""
        return self.restores[-1] if self.restores else None

    @property
    def volume_bytes(self) -> int:
        return parse_bytes(self.volume_size)

    @property
    def active(self) -> bool:
        return self.state is ClinicState.ACTIVE


class TenantsFile(Strict):
    clinics: Annotated[list[Clinic], Field(min_length=1)]
    # Ids of clinics that were decommissioned: never handed to a new clinic, so that no resource name,
    # backup path or audit record of a former clinic is ever confused with a new one.
    retired_clinic_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if data is None:
            raise ValueError("the file is empty: it must hold a 'clinics' list")
        if not isinstance(data, dict):
            raise ValueError("the top level must be a mapping with a 'clinics' list")
        return data


def duplicate_problems(tenants: TenantsFile, source: str) -> list[Problem]:
    """Uniqueness across clinics: ids, hostnames, private IPs, and no reuse of a retired id."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    retired = set(tenants.retired_clinic_ids)
    for clinic in tenants.clinics:
        if clinic.id in retired:
            problems.append(
                Problem(
                    source, "id", "was retired (retiredClinicIds) and must not be reused for a new clinic", clinic.id
                )
            )
        for field, value in (("id", clinic.id), ("hostname", clinic.hostname), ("privateIp", clinic.private_ip)):
            if value is None:
                continue
            first = seen.get((field, value))
            if first is not None:
                problems.append(Problem(source, field, f"{value} is already used by clinic '{first}'", clinic.id))
            else:
                seen[(field, value)] = clinic.id
    return problems


def parse_tenants(raw: Any, source: str) -> TenantsFile:
    try:
        tenants = TenantsFile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            problems_from_validation(exc, source, list_key="clinics", raw=raw if isinstance(raw, dict) else None)
        ) from None
    problems = duplicate_problems(tenants, source)
    if problems:
        raise InputError(problems)
    return tenants


def load_tenants(path: Path, source: str | None = None) -> TenantsFile:
    name = source or str(path)
    return parse_tenants(load_yaml_file(path, name), name)
