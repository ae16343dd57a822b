"""The clinics of tenants.yaml as validated models."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from orca_platform.conventions import snapshot_volume

from .errors import InputError, Problem, problems_from_validation
from .fields import (
    Cidr,
    Cron,
    FrontDoorMode,
    ImageRef,
    Lax,
    Quantity,
    StorageSku,
    StorageStrategyName,
    Strict,
)
from .network_trust import ClinicNetworks, overlaps
from .quantities import parse_bytes
from .yamlio import load_yaml_file

# A clinic id becomes the namespace suffix (orca-<id>), label values and Azure DNS record names:
# a DNS label short enough that every derived name stays within Kubernetes' 63-character limit.
CLINIC_ID = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){1,38}[a-z0-9]$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
# A name for a practice group's LAN (several clinics, one network): a DNS-label-like word.
SHARED_NETWORK = r"^[a-z][a-z0-9-]{1,40}$"


class ClinicState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # no pod; the volume, its backups and its address stay


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
    # Or a point in time (RFC 3339 with its offset) of a generation's WAL archive (issue 24, docs/recovery.md):
    # by default the generation ORCA ran on before this restore.
    from_point_in_time: str | None = None
    from_generation: Annotated[str, Field(pattern=r"^orca-state(-[a-z0-9-]+)?$")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ClinicRestore:
        sources = [s for s in (self.from_snapshot, self.from_dump, self.from_point_in_time) if s is not None]
        if len(sources) != 1:
            raise ValueError("name exactly one of fromSnapshot, fromDump or fromPointInTime")
        if self.from_generation is not None and self.from_point_in_time is None:
            raise ValueError("fromGeneration goes with fromPointInTime only (it names the archive to read)")
        return self

    @field_validator("from_point_in_time")
    @classmethod
    def _point(cls, value: str | None) -> str | None:
        """A time with its offset, and not in the future. Whether the archive holds it (its window and gaps) is
        known only where the archive is: the restore Job stops with barman's or PostgreSQL's refusal."""
        if value is None:
            return None
        # The same reading as orca_platform.backup.window.parse_target (the model may not import the backup room).
        try:
            target = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an RFC 3339 time: write it as 2026-12-06T10:15:00+09:00 (with its offset)"
            ) from None
        if "T" not in value.upper() or target.tzinfo is None:
            raise ValueError(
                f"{value!r} has no UTC offset: a clinic's clock and the cluster's differ, so the offset is required "
                "(e.g. 2026-12-06T10:15:00+09:00 for Japan time, or ...Z for UTC)"
            )
        if target > dt.datetime.now(dt.UTC):
            raise ValueError(f"{value} is in the future: a restore can only go back in time")
        return value


class Clinic(Strict):
    id: str
    name: Annotated[str, Field(min_length=1, max_length=100)]
    size: str
    volume_size: Quantity
    state: Annotated[ClinicState, Lax] = ClinicState.ACTIVE
    source_cidrs: Annotated[list[Cidr], Field(min_length=1)]
    # Names the LAN this clinic shares with others of its practice group: only clinics naming the same shared
    # network may have overlapping sourceCidrs (network_trust.py).
    shared_network: (
        Annotated[str, Field(pattern=SHARED_NETWORK, description="a lowercase name such as group-lan (a-z, 0-9, '-')")]
        | None
    ) = None
    hostname: str | None = None
    private_ip: str | None = None
    image: ImageRef | None = None
    storage: Annotated[StorageStrategyName | None, Lax] = None
    # Pins this clinic's volume SKU (default: the stack's storage.sku). A volume never changes class: pin existing
    # clinics before changing the stack's default, which then applies to new clinics only (README, "Storage").
    storage_sku: StorageSku | None = None
    # Pins this clinic's front door (default: the stack's frontDoor.mode), for the same reason: a change is visible
    # to the clinic's staff (an IP address that stops answering).
    front_door: Annotated[FrontDoorMode | None, Lax] = None
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
            if r.from_generation is not None and r.from_generation not in generations:
                raise ValueError(
                    f"{r.id}: fromGeneration {r.from_generation!r} is not an earlier volume of this clinic "
                    f"({', '.join(generations)})"
                )
            if r.from_dump is not None and r.from_dump.split("/")[1] != clinic_id:
                raise ValueError(
                    f"{r.id}: fromDump {r.from_dump!r} belongs to another clinic; this clinic restores only from "
                    f"daily/{clinic_id}/... or monthly/{clinic_id}/..."
                )
            generations.append(f"orca-state-{r.id}")
        return value

    def archive_source(self, restore: ClinicRestore) -> str:
        """The volume generation whose WAL archive a point-in-time restore reads: the one it names, else the one
        ORCA ran on before it."""
        index = self.restores.index(restore)
        before = "orca-state" if index == 0 else f"orca-state-{self.restores[index - 1].id}"
        return restore.from_generation or before

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


class _NetworksOnly(BaseModel):
    """The part of a clinic entry the network check needs, read from an entry whose other fields are wrong."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, strict=True)
    id: str
    shared_network: Annotated[str, Field(pattern=SHARED_NETWORK)] | None = None
    source_cidrs: Annotated[list[Cidr], Field(min_length=1)]


def _networks(item: Any) -> ClinicNetworks | None:
    try:
        n = _NetworksOnly.model_validate(item)
    except ValidationError:
        return None
    return ClinicNetworks(n.id, n.shared_network, tuple(n.source_cidrs))


def cross_clinic_problems(
    clinics: Sequence[tuple[int, Clinic]],
    retired_ids: Iterable[str],
    source: str,
    networks: Sequence[ClinicNetworks] | None = None,
) -> list[Problem]:
    """Across clinics: unique ids, hostnames and private IPs, no retired id reused, no shared source network unless
    declared. `clinics` are (entry number in the file, clinic) of the entries that are valid on their own;
    `networks` every entry's networks that could be read (by default those of `clinics`)."""
    problems: list[Problem] = []
    retired = set(retired_ids)
    first_entry: dict[str, tuple[int, Clinic]] = {}
    seen: dict[tuple[str, str], str] = {}
    for position, clinic in clinics:
        if clinic.id in retired:
            problems.append(
                Problem(
                    source,
                    "id",
                    "was retired (retiredClinicIds) and must not be reused for a new clinic",
                    clinic.id,
                    fix="choose an id no clinic ever had",
                )
            )
        earlier = first_entry.get(clinic.id)
        if earlier is not None:
            where, other = earlier
            problems.append(
                Problem(
                    source,
                    "id",
                    f"entry #{position} ({clinic.name}) has the same id as entry #{where} ({other.name})",
                    clinic.id,
                    fix="give each clinic an id of its own",
                )
            )
        else:
            first_entry[clinic.id] = (position, clinic)
        for field, value in (("hostname", clinic.hostname), ("privateIp", clinic.private_ip)):
            if value is None:
                continue
            owner = seen.get((field, value))
            if owner is not None and owner != clinic.id:
                problems.append(Problem(source, field, f"{value} is already used by clinic '{owner}'", clinic.id))
            else:
                seen.setdefault((field, value), clinic.id)
    if networks is None:
        networks = [ClinicNetworks(c.id, c.shared_network, tuple(c.source_cidrs)) for _, c in clinics]
    problems += shared_network_problems(networks, source)
    return problems


def shared_network_problems(nets: Sequence[ClinicNetworks], source: str) -> list[Problem]:
    """No two clinics' sourceCidrs overlap unless both name the same sharedNetwork."""
    shared = {n.clinic: n.shared_network for n in nets}
    problems = []
    for o in overlaps(nets):
        mine, theirs = shared[o.clinic], shared[o.other]
        if mine and theirs:
            why = f"they name different shared networks ({mine!r} and {theirs!r})"
        elif mine or theirs:
            why = f"only one of them names the shared network {mine or theirs!r}"
        else:
            why = "neither names a shared network"
        problems.append(
            Problem(
                source,
                "sourceCidrs",
                f"{o.cidr} overlaps {o.other_cidr} of clinic '{o.other}' and {why}: the staff of either clinic "
                "would reach the other's ORCA server and its patient records",
                o.clinic,
                fix="list only this clinic's own networks; if both clinics really share one LAN (a practice group), "
                "give both the same sharedNetwork",
            )
        )
    return problems


def check_tenants(raw: Any, source: str) -> tuple[TenantsFile | None, list[Problem]]:
    """Every problem of a tenants document, fields first and then across clinics, and the clinics that are valid
    on their own (to check against the stack as well); None when not one is."""
    try:
        tenants = TenantsFile.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from_validation(
            exc, source, list_key="clinics", raw=raw if isinstance(raw, dict) else None, model=TenantsFile
        )
    else:
        entries = list(enumerate(tenants.clinics, 1))
        return tenants, cross_clinic_problems(entries, tenants.retired_clinic_ids, source)
    valid: list[tuple[int, Clinic]] = []
    networks: list[ClinicNetworks] = []
    items = raw.get("clinics") if isinstance(raw, dict) else None
    for position, item in enumerate(items if isinstance(items, list) else [], 1):
        try:
            clinic = Clinic.model_validate(item)
        except ValidationError:
            # A clinic with a bad schedule still must not share another's network: check what can be read.
            found = _networks(item)
            if found is not None:
                networks.append(found)
            continue
        valid.append((position, clinic))
        networks.append(ClinicNetworks(clinic.id, clinic.shared_network, tuple(clinic.source_cidrs)))
    retired_raw = raw.get("retiredClinicIds") if isinstance(raw, dict) else None
    retired = [r for r in retired_raw if isinstance(r, str)] if isinstance(retired_raw, list) else []
    problems += cross_clinic_problems(valid, retired, source, networks)
    if not valid:
        return None, problems
    partial = TenantsFile.model_construct(clinics=[c for _, c in valid], retired_clinic_ids=retired)
    return partial, problems


def parse_tenants(raw: Any, source: str) -> TenantsFile:
    tenants, problems = check_tenants(raw, source)
    if problems or tenants is None:
        raise InputError(problems)
    return tenants


def load_tenants(path: Path, source: str | None = None) -> TenantsFile:
    name = source or str(path)
    return parse_tenants(load_yaml_file(path, name), name)
