"""One clinic's plan: what the components read of a clinic, every derived value decided once.

Its own module so that the stack plan, the walls and the alerts can all take it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_platform.model.catalogue import ClinicSize
from orca_platform.model.tenants import Clinic, ClinicRestore

from .front_door import FrontDoorPlan
from .storage import StorageStrategy


@dataclass(frozen=True)
class ClinicPlan:
    clinic: Clinic
    namespace: str
    fqdn: str
    dns_record: str
    size: ClinicSize
    storage: StorageStrategy
    claim_gib: int
    pvc_name: str
    image: str
    dump_schedule: str
    snapshot_schedule: str
    front_door: FrontDoorPlan
    # The clinic had data before (the stack's history says so): an empty volume is a wrong one, never seeded.
    expect_data: bool = False

    @property
    def id(self) -> str:
        return self.clinic.id

    @property
    def replicas(self) -> int:
        return 1 if self.clinic.active else 0

    # What components read of the clinic, through its plan only (tests/test_layers.py checks that they do): the plan
    # is where a derived value (an FQDN, a claim size) is decided, so a component never re-derives one from the raw
    # entry.
    @property
    def name(self) -> str:
        return self.clinic.name

    @property
    def state(self) -> str:
        return self.clinic.state.value

    @property
    def active(self) -> bool:
        return self.clinic.active

    @property
    def source_cidrs(self) -> tuple[str, ...]:
        return tuple(self.clinic.source_cidrs)

    @property
    def private_ip(self) -> str | None:
        return self.clinic.private_ip

    @property
    def restores(self) -> tuple[ClinicRestore, ...]:
        return tuple(self.clinic.restores)

    @property
    def restore(self) -> ClinicRestore | None:
        """The restore whose volume is live, if any."""
        return self.clinic.restore

    def archive_source(self, restore: ClinicRestore) -> str:
        """The volume generation whose WAL archive a point-in-time restore reads."""
        return self.clinic.archive_source(restore)
