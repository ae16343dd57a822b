"""What the stack last deployed, and the changes from it that would lose, hide or roll back a clinic's data.

The program exports a history document (stack output `orcaHistory`) at every update. config.py reads the previous
one from the stack's own last outputs (a StackReference to the stack itself) and hands it here as plain data;
`review` compares it with this update's plan before any other resource is registered. Pure: no pulumi here.

Versions: 1 is this document. 0 is a stack deployed before the history existed: its `clinics` output (state,
storage class, claim size, image of each clinic) is all there is, so version 0 can refuse a clinic's removal and a
storage class change, but knows nothing of restores, live volumes, PostgreSQL versions, backup settings or retired
ids. A later version is read for the fields this program knows, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from orca_platform.backup.backup_plan import DAILY, MONTHLY, container_retention
from orca_platform.model.errors import InputError, Problem
from orca_platform.model.settings import NAMESPACE, STACK_SCOPE, Acknowledgement, Environment, Transition
from orca_platform.model.tenants import ClinicRestore
from orca_platform.plan.naming import STATE_PVC, restore_pvc
from orca_platform.plan.stack_plan import StackPlan

HISTORY_OUTPUT = "orcaHistory"
# Exported by every version of the program: the only record of a stack deployed before the history.
LEGACY_OUTPUT = "clinics"
VERSION = 1
_GIB = re.compile(r"^([0-9]+)Gi$")


class _Record(BaseModel):
    # Lenient on purpose: a later version's extra fields are ignored, numbers that crossed the engine as doubles
    # (protobuf Struct) are accepted as integers.
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class RestoreRecord(_Record):
    id: str
    from_snapshot: str | None = None
    from_dump: str | None = None
    from_point_in_time: str | None = None


class ClinicRecord(_Record):
    """One deployed clinic. None means "not recorded" (an earlier version): never a reason to refuse."""

    name: str | None = None
    state: str | None = None
    fqdn: str | None = None
    private_ip: str | None = None
    # Claim names of its volume generations, oldest first; `live` is the one the server mounts.
    volumes: list[str] | None = None
    live: str | None = None
    restores: list[RestoreRecord] | None = None
    storage_class: str | None = None
    storage_strategy: str | None = None
    claim_gib: int | None = None
    postgres_version: str | None = None
    image: str | None = None


class BackupRecord(_Record):
    daily_retention_days: int | None = None
    monthly_retention_days: int | None = None
    delete_lock: bool | None = None
    # Container -> WORM immutability period in days.
    immutability: dict[str, int] | None = None


class AcknowledgementRecord(_Record):
    clinic: str
    transition: str
    reason: str
    # The refusal it let through (empty for one that let nothing through).
    what: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.clinic, self.transition, self.reason)


class History(_Record):
    version: int
    environment: str | None = None
    clinics: dict[str, ClinicRecord] = Field(default_factory=dict)
    retired_clinic_ids: list[str] | None = None
    backup: BackupRecord = BackupRecord()
    # Every acknowledgement any update of this stack used, oldest first: carried from history to history.
    acknowledgements: list[AcknowledgementRecord] = Field(default_factory=list)
    # Acknowledgements in the config of the update that wrote this history that let nothing through.
    unused_acknowledgements: list[AcknowledgementRecord] = Field(default_factory=list)

    def to_output(self) -> dict[str, Any]:
        """The stack output: plain JSON data, camelCase, unrecorded fields left out. Holds no secret."""
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return out


def _restore(r: ClinicRestore) -> RestoreRecord:
    return RestoreRecord(
        id=r.id, from_snapshot=r.from_snapshot, from_dump=r.from_dump, from_point_in_time=r.from_point_in_time
    )


def history_of(plan: StackPlan) -> History:
    """The history this update leaves behind (without its acknowledgements, which the comparison adds)."""
    s = plan.settings
    clinics = {
        c.id: ClinicRecord(
            name=c.clinic.name,
            state=c.clinic.state.value,
            fqdn=c.fqdn,
            private_ip=c.clinic.private_ip,
            volumes=[STATE_PVC, *(restore_pvc(r.id) for r in c.clinic.restores)],
            live=c.pvc_name,
            restores=[_restore(r) for r in c.clinic.restores],
            storage_class=c.storage.storage_class,
            storage_strategy=c.storage.name.value,
            claim_gib=c.claim_gib,
            postgres_version=s.orca.postgres_version,
            image=c.image,
        )
        for c in plan.clinics
    }
    backup = BackupRecord(
        daily_retention_days=s.backup.daily_retention_days,
        monthly_retention_days=s.backup.monthly_retention_days,
        delete_lock=s.backup.delete_lock,
        immutability=container_retention(s.backup.daily_retention_days, s.backup.monthly_retention_days),
    )
    return History(
        version=VERSION,
        environment=s.environment.value,
        clinics=clinics,
        retired_clinic_ids=list(plan.retired_clinic_ids),
        backup=backup,
    )


def _legacy(raw: Any, source: str) -> History:
    """Version 0: the `clinics` output of the program before the history (per clinic: name, state, fqdn, privateIp,
    namespace, storageClass, volume as '<n>Gi', image)."""
    if not isinstance(raw, Mapping):
        raise InputError([Problem(source, LEGACY_OUTPUT, "is not a map of clinics: cannot tell what is deployed")])
    clinics: dict[str, ClinicRecord] = {}
    for cid, c in raw.items():
        if not isinstance(c, Mapping):
            raise InputError([Problem(source, LEGACY_OUTPUT, "is not a map of clinics", str(cid))])
        size = _GIB.match(str(c.get("volume") or ""))
        clinics[str(cid)] = ClinicRecord(
            name=_text(c.get("name")),
            state=_text(c.get("state")),
            fqdn=_text(c.get("fqdn")),
            private_ip=_text(c.get("privateIp")),
            storage_class=_text(c.get("storageClass")),
            claim_gib=int(size.group(1)) if size else None,
            image=_text(c.get("image")),
        )
    return History(version=0, clinics=clinics)


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def parse_history(outputs: Mapping[str, Any] | None, source: str) -> tuple[History | None, list[str]]:
    """(previous history, warnings) from the stack's last outputs; (None, []) on a first update (no outputs).

    Raises InputError when the outputs hold a history this program cannot read: deploying without knowing what the
    stack holds is exactly what the history is there to prevent.
    """
    if not outputs:
        return None, []
    raw = outputs.get(HISTORY_OUTPUT)
    if raw is None:
        legacy = outputs.get(LEGACY_OUTPUT)
        return (_legacy(legacy, source), []) if legacy is not None else (None, [])
    try:
        history = History.model_validate(raw)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '.'}: {e['msg']}" for e in exc.errors()[:3])
        message = (
            f"cannot be read ({where}). Refusing to deploy without knowing what the stack holds: if the stack's "
            "outputs were edited, restore the state from its backup (`pulumi stack history`, `pulumi stack import`)"
        )
        raise InputError([Problem(source, HISTORY_OUTPUT, message)]) from None
    warnings = []
    if history.version > VERSION:
        warnings.append(
            f"{source}: {HISTORY_OUTPUT} was written by a later program version (history version {history.version}; "
            f"this one writes {VERSION}): only the fields this version knows were compared"
        )
    return history, warnings


# --- comparing the last update with this one ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refusal:
    problem: Problem
    # None: no acknowledgement can let it through (the API server itself would refuse it).
    transition: Transition | None
    # The clinic id, or STACK_SCOPE for a change of the whole stack.
    scope: str


@dataclass(frozen=True)
class Review:
    """The comparison of one update with the stack's last one."""

    problems: list[Problem]
    # What to export when there is no problem: this update's history, with the acknowledgements carried forward.
    history: History
    acknowledged: list[AcknowledgementRecord]
    unused: list[AcknowledgementRecord]
    warnings: list[str]
    # Clinics whose live volume must hold data (their seed refuses an empty one): those the history says had data,
    # but for an `empty-volume-seeded` acknowledged in this update.
    expect_data: frozenset[str]


def _ids(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _source(r: RestoreRecord) -> str:
    if r.from_point_in_time:
        return f"fromPointInTime {r.from_point_in_time}"
    return f"fromSnapshot {r.from_snapshot}" if r.from_snapshot else f"fromDump {r.from_dump}"


def _same_clinic(before: ClinicRecord, after: ClinicRecord) -> bool:
    pairs = ((before.name, after.name), (before.private_ip, after.private_ip), (before.fqdn, after.fqdn))
    return any(old is not None and old == new for old, new in pairs)


def _removed(previous: History, current: History, tenants_source: str) -> list[_Refusal]:
    new = [cid for cid in current.clinics if cid not in previous.clinics]
    retired = set(current.retired_clinic_ids or ())
    out = []
    for cid, before in previous.clinics.items():
        if cid in current.clinics or cid in retired:
            continue
        message = (
            "was deployed by the last update but is missing from the file and not in retiredClinicIds. The update "
            "would delete its server, Service and address, Ingress, DNS record, backup jobs and identity first, and "
            "stop only at its protected volume: an outage, with no backups."
        )
        if new:
            alike = [n for n in new if _same_clinic(before, current.clinics[n])]
            lead = (
                f" It looks renamed to {_ids(alike)}"
                if alike
                else f" New in this update: {_ids(new)}; if one of them is this clinic renamed"
            )
            message += (
                f"{lead}: a clinic id cannot change (it names namespace orca-{cid}, its volumes and its backups), and "
                f"a rename is this removal plus a new, empty clinic. Keep the id '{cid}' and change `name` or "
                "`hostname` instead."
            )
        message += (
            " Put the entry back. To decommission the clinic, follow the README's decommissioning steps (final "
            f"dump, unprotect), then remove the entry and add '{cid}' to retiredClinicIds."
        )
        out.append(_Refusal(Problem(tenants_source, "clinics", message, cid), Transition.CLINIC_REMOVED, cid))
    return out


def _retired_dropped(previous: History, current: History, tenants_source: str) -> list[_Refusal]:
    now = set(current.retired_clinic_ids or ())
    out = []
    for rid in previous.retired_clinic_ids or ():
        if rid in now:
            continue
        message = (
            "was retired and is no longer in retiredClinicIds: the id would be free for a new clinic, which would "
            f"get the old clinic's namespace name, backup path ({DAILY}/{rid}/...) and audit trail. Keep '{rid}' in "
            "retiredClinicIds."
        )
        out.append(
            _Refusal(Problem(tenants_source, "retiredClinicIds", message, rid), Transition.RETIRED_ID_DROPPED, rid)
        )
    return out


def _restores(cid: str, before: ClinicRecord, after: ClinicRecord, tenants_source: str) -> list[_Refusal]:
    old, new = before.restores, after.restores
    if old is None or new is None or new[: len(old)] == old:
        return []  # unchanged, or appended to
    new_ids = {r.id for r in new}
    removed = [r.id for r in old if r not in new and r.id not in new_ids]
    edited = [f"'{r.id}' (was {_source(r)})" for r in old if r not in new and r.id in new_ids]
    what = []
    if edited:
        what.append(f"edits restore {', '.join(edited)}")
    if removed:
        what.append(f"removes restore {_ids(removed)}")
    if not what:
        kept_order = [r for r in new if r in old] == old
        added = [r.id for r in new[: len(old)] if r not in old]
        what.append(
            f"inserts restore {_ids(added)} among the earlier ones (a new restore goes at the end)"
            if kept_order
            else f"reorders the restores (was {_ids([r.id for r in old])})"
        )
    generations = ", ".join(before.volumes or ())
    message = (
        f"{' and '.join(what)}. Restores are append-only: each entry is the record of a volume that exists "
        f"({generations}), and the last one is the volume the server runs on. Put the entries back as they were and "
        "append a new restore instead; to go back to older data, append one fromSnapshot of the older volume "
        "(e.g. fromSnapshot: orca-state-<YYYYMMDDhhmmss>)."
    )
    return [_Refusal(Problem(tenants_source, "restores", message, cid), Transition.RESTORES_REWRITTEN, cid)]


def _live(cid: str, before: ClinicRecord, after: ClinicRecord, tenants_source: str) -> list[_Refusal]:
    volumes, was, now = before.volumes, before.live, after.live
    if not volumes or was is None or now is None or now == was or now not in volumes or was not in volumes:
        return []
    if volumes.index(now) > volumes.index(was):
        return []
    message = (
        f"the live volume would move from {was} back to {now}: the server would run on the older data, and every "
        f"receipt written to {was} since would be stranded there. Nothing in the preview shows it (no resource is "
        f"deleted). Keep {was} live; to go back to older data, append a restore fromSnapshot of {now}."
    )
    return [_Refusal(Problem(tenants_source, "restores", message, cid), Transition.LIVE_VOLUME_OLDER, cid)]


def _storage(
    cid: str, before: ClinicRecord, after: ClinicRecord, own: bool, tenants_source: str, config_source: str
) -> list[_Refusal]:
    if before.storage_class is None or after.storage_class is None or before.storage_class == after.storage_class:
        return []

    def shown(r: ClinicRecord) -> str:
        return f"{r.storage_class} ({r.storage_strategy})" if r.storage_strategy else str(r.storage_class)

    strategy_changed = before.storage_strategy is not None and before.storage_strategy != after.storage_strategy
    if own:
        source, field = tenants_source, "storage"
        fix = f"Put the clinic's `storage` back to {before.storage_strategy}" if strategy_changed else "Put it back"
    else:
        source, field = config_source, f"{NAMESPACE}:storage"
        fix = (
            f"Keep {NAMESPACE}:storage as it was, or keep this clinic where it is with `storage: "
            f"{before.storage_strategy}` in {tenants_source}"
            if strategy_changed
            else f"Keep {NAMESPACE}:storage as it was (a clinic can pin its strategy, not the SKU)"
        )
    message = (
        f"its volumes would move from storage class {shown(before)} to {shown(after)}. A claim's storage class "
        "cannot change in Kubernetes: Pulumi would replace every volume of this clinic (delete, then create empty) "
        f"and stop only at the first protected one. {fix}. A clinic's data moves to other storage only through a "
        'backup and a restore (README, "Backups and restore"), never by this edit.'
    )
    return [_Refusal(Problem(source, field, message, cid), Transition.STORAGE_CHANGED, cid)]


def _postgres(
    cid: str,
    before: ClinicRecord,
    after: ClinicRecord,
    restore: ClinicRestore | None,
    tenants_source: str,
    config_source: str,
) -> list[_Refusal]:
    was, now = before.postgres_version, after.postgres_version
    if was is None or now is None or was == now:
        return []
    # A new volume built from a dump in this same update is a new PostgreSQL cluster: pg_restore crosses majors.
    fresh = before.volumes is not None and after.live not in before.volumes
    if fresh and restore is not None and restore.from_dump is not None:
        return []
    message = (
        f"PostgreSQL {was} would become {now} for a clinic with data: the data directory on "
        f"{before.live or 'its volume'} was written by PostgreSQL {was}, which a {now} server cannot open (a major "
        "upgrade needs a dump or pg_upgrade), so ORCA would not start. In the same change, append a restore fromDump "
        f"to this clinic in {tenants_source} (pg_restore loads the dump into a new volume of the new version; the "
        "old volume stays), with an ORCA image of that version."
    )
    problem = Problem(config_source, f"{NAMESPACE}:orca.postgresVersion", message, cid)
    return [_Refusal(problem, Transition.POSTGRES_VERSION_CHANGED, cid)]


def _shrunk(cid: str, before: ClinicRecord, after: ClinicRecord, tenants_source: str) -> list[_Refusal]:
    was, now = before.claim_gib, after.claim_gib
    if was is None or now is None or now >= was or before.storage_class != after.storage_class:
        return []
    message = (
        f"its claims would go down from {was}Gi to {now}Gi: Kubernetes refuses to shrink a claim, so the update "
        f"would stop halfway. Make volumeSize {was}Gi or more again."
    )
    return [_Refusal(Problem(tenants_source, "volumeSize", message, cid), None, cid)]


def _backup(previous: History, current: History, config_source: str) -> list[_Refusal]:
    was, now = previous.backup, current.backup
    out = []
    for field, container, old, new in (
        ("dailyRetentionDays", DAILY, was.daily_retention_days, now.daily_retention_days),
        ("monthlyRetentionDays", MONTHLY, was.monthly_retention_days, now.monthly_retention_days),
    ):
        if old is None or new is None or new >= old:
            continue
        message = (
            f"would go down from {old} to {new} days: the lifecycle rule would at once delete the {container} dumps "
            f"older than {new + 1} days, and the container's (unlocked) immutability period would shorten with it. "
            f"Keep it at {old} days or more."
        )
        problem = Problem(config_source, f"{NAMESPACE}:backup.{field}", message)
        out.append(_Refusal(problem, Transition.RETENTION_LOWERED, STACK_SCOPE))
    if current.environment != Environment.PROD.value:
        return out
    if was.delete_lock and now.delete_lock is False:
        message = (
            "would be turned off: the production backup account would lose its CanNotDelete lock, and one delete "
            "would remove years of clinic records. Keep deleteLock: true."
        )
        problem = Problem(config_source, f"{NAMESPACE}:backup.deleteLock", message)
        out.append(_Refusal(problem, Transition.DELETE_LOCK_OFF, STACK_SCOPE))
    gone = [c for c in (was.immutability or {}) if now.immutability is not None and c not in now.immutability]
    if gone:
        message = (
            f"the {_ids(gone)} container(s) would lose their immutability (WORM) policy: production dumps could be "
            "changed or deleted before their retention ends. Keep every dump container immutable."
        )
        problem = Problem(config_source, f"{NAMESPACE}:backup", message)
        out.append(_Refusal(problem, Transition.IMMUTABILITY_OFF, STACK_SCOPE))
    return out


def _refusals(
    previous: History, current: History, plan: StackPlan, tenants_source: str, config_source: str
) -> list[_Refusal]:
    out = _removed(previous, current, tenants_source) + _retired_dropped(previous, current, tenants_source)
    plans = {c.id: c for c in plan.clinics}
    for cid, before in previous.clinics.items():
        after = current.clinics.get(cid)
        if after is None:
            continue
        clinic = plans[cid].clinic
        out += _restores(cid, before, after, tenants_source)
        out += _live(cid, before, after, tenants_source)
        out += _storage(cid, before, after, clinic.storage is not None, tenants_source, config_source)
        out += _postgres(cid, before, after, clinic.restore, tenants_source, config_source)
        out += _shrunk(cid, before, after, tenants_source)
    return out + _backup(previous, current, config_source)


def _with_hint(r: _Refusal) -> Problem:
    if r.transition is None:
        return r.problem
    hint = (
        f" (Only if this is intended: acknowledge it in {NAMESPACE}:acknowledgements with "
        f"{{clinic: '{r.scope}', transition: {r.transition.value}, reason: ...}}.)"
    )
    return replace(r.problem, message=r.problem.message + hint)


def review(
    previous: History | None,
    plan: StackPlan,
    acknowledgements: Sequence[Acknowledgement],
    tenants_source: str,
    config_source: str,
) -> Review:
    """Compare this update's plan with the stack's last history (None on a first update).

    An acknowledgement lets its one (clinic, transition) through, once: the history keeps every acknowledgement used,
    and one already used by an earlier update lets nothing through again. One that lets nothing through in this
    update is reported (a warning, and `unusedAcknowledgements` in the history), so that none lingers unseen.
    """
    current = history_of(plan)
    refusals = [] if previous is None else _refusals(previous, current, plan, tenants_source, config_source)
    had = clinics_with_data(previous, plan)
    refusals += _seed_requests(had, plan, acknowledgements, config_source)
    spent = {a.key for a in previous.acknowledgements} if previous else set()
    wanted = {(a.clinic, a.transition.value): a for a in acknowledgements}
    problems: list[Problem] = []
    let_through: dict[tuple[str, str], list[str]] = {}
    for r in refusals:
        ack = wanted.get((r.scope, r.transition.value)) if r.transition else None
        if ack is None:
            problems.append(_with_hint(r))
        elif (ack.clinic, ack.transition.value, ack.reason) in spent:
            message = (
                f"{ack.clinic} / {ack.transition.value}: this acknowledgement (reason {ack.reason!r}) was already "
                "used by an earlier update, and an acknowledgement lets one change through once. Write a new one, "
                f"with its own reason, to let this change through: {r.problem}"
            )
            clinic = None if r.scope == STACK_SCOPE else r.scope
            problems.append(Problem(config_source, f"{NAMESPACE}:acknowledgements", message, clinic))
        else:
            let_through.setdefault((ack.clinic, ack.transition.value), []).append(str(r.problem))
    acknowledged = [
        AcknowledgementRecord(clinic=a.clinic, transition=a.transition.value, reason=a.reason, what="; ".join(what))
        for key, a in wanted.items()
        if (what := let_through.get(key))
    ]
    unused = [
        AcknowledgementRecord(clinic=a.clinic, transition=a.transition.value, reason=a.reason)
        for key, a in wanted.items()
        if key not in let_through
    ]
    warnings = [
        f"{config_source}: {NAMESPACE}:acknowledgements: {a.clinic} / {a.transition} let nothing through in this "
        + ("update (an earlier update used it): remove it" if a.key in spent else "update: check it, or remove it")
        for a in unused
    ]
    log = [*(previous.acknowledgements if previous else ()), *acknowledged]
    history = current.model_copy(update={"acknowledgements": log, "unused_acknowledgements": unused})
    seeded = {a.clinic for a in acknowledged if a.transition == Transition.EMPTY_VOLUME_SEEDED}
    return Review(
        problems=problems,
        history=history,
        acknowledged=acknowledged,
        unused=unused,
        warnings=warnings,
        expect_data=had - seeded,
    )


def _seed_requests(
    had: frozenset[str], plan: StackPlan, acknowledgements: Sequence[Acknowledgement], config_source: str
) -> list[_Refusal]:
    """The server's seed refuses an empty live volume of a clinic that had data (clinics_with_data); an
    acknowledgement of `empty-volume-seeded` for such a clinic goes through review like a refusal, so that it is
    used once, logged, and refused when spent. None where nothing asks for it: no refusal to report otherwise."""
    asked = {a.clinic for a in acknowledgements if a.transition == Transition.EMPTY_VOLUME_SEEDED}
    plans = {c.id: c for c in plan.clinics}
    return [
        _Refusal(
            Problem(
                config_source,
                f"{NAMESPACE}:acknowledgements",
                f"clinic '{cid}': its live volume {plans[cid].pvc_name} is seeded if empty, although the stack's "
                "history says the clinic had data",
                cid,
            ),
            Transition.EMPTY_VOLUME_SEEDED,
            cid,
        )
        for cid in sorted(had & asked)
    ]


def transition_problems(
    previous: History | None,
    plan: StackPlan,
    acknowledgements: Sequence[Acknowledgement],
    tenants_source: str,
    config_source: str,
) -> list[Problem]:
    """The refused transitions of this update (what `review` reports, without the history)."""
    return review(previous, plan, acknowledgements, tenants_source, config_source).problems


def clinics_with_data(previous: History | None, plan: StackPlan) -> frozenset[str]:
    """The clinics whose live claim the stack already had: an empty volume there is a claim re-created behind the
    program's back (a refresh after a deleted claim), never a new clinic, so the seed must refuse it (orca_pod's
    EXPECT_DATA). A restore's new claim is not among them: it is filled from its snapshot or its dump."""
    if previous is None:
        return frozenset()
    found = set()
    for c in plan.clinics:
        before = previous.clinics.get(c.id)
        if before is None:
            continue
        # A stack deployed by a program version without volume records (version 0) had only `orca-state`.
        known = before.volumes if before.volumes is not None else [STATE_PVC]
        if c.pvc_name in known:
            found.add(c.id)
    return frozenset(found)
