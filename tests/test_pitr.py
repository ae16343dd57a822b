"""Issue 24: continuous WAL archiving and point-in-time recovery with real parts.

Debian's PostgreSQL (`make deb-postgres`), barman-cloud from the tools image's pinned requirements
(`make barman-venv`) and Azurite from its pinned npm package (`make npm-azurite`) on 127.0.0.1 over HTTPS with a
certificate made here. The scripts are the program's own (orca_platform.backup.pitr), written where the pods mount
them: archive_command spools into the clinic volume, the native sidecar's shipper ships and takes base backups, the
restore Job's steps bring a new volume generation to a point in time. Each server runs in a pod of its own (mount,
PID and network namespaces, tests/pg_pod.py); the sidecars run in the pod's mount and PID namespaces as the postgres
user, on the host's loopback where the emulator listens. The cluster is EUC-JP (initdb --encoding=EUC_JP --locale=C),
as ORCA's is. Timings are printed (pytest -s) and are upper bounds on a shared 2-CPU machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orca_platform.backup import pitr
from orca_platform.backup.window import (
    BaseBackup,
    Gap,
    TargetRefusedError,
    check_target,
    recovery_time,
    restorable_window,
)
from tests import azurite, pg_pod

REASON = pg_pod.requirement() or azurite.requirement()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"PITR tests with real parts skipped: {REASON}")

CLINIC = "test-sakura"
CONTAINER = "pitr"
SOURCE = "orca-state"  # the clinic's first volume generation: its archive's server name
ROWS_BEFORE = 3000
ROWS_AFTER = 1200
# Small intervals, so the suite is quick; the production defaults are 60 s (PitrSettings).
FAST = {"archive_timeout_seconds": 5, "heartbeat_seconds": 3, "poll_seconds": 1}


def _settings(version: str, **extra: int) -> pitr.PitrSettings:
    return pitr.PitrSettings(version, **{**FAST, **extra})  # type: ignore[arg-type]


def _wait(what: str, check: Callable[[], bool], timeout: float, detail: Callable[[], str] = str) -> float:
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if check():
            return time.monotonic() - begin
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{detail()}")


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip())


@dataclass
class Generation:
    """One volume generation of the clinic: its volume, its pod, the scripts as rendered."""

    ws: pg_pod.Workspace
    az: azurite.Azurite
    name: str  # the volume generation = the archive's server name
    scripts: Path
    work: Path
    volume: pg_pod.Volume
    pod: pg_pod.Pod
    settings: pitr.PitrSettings

    @property
    def state(self) -> Path:
        return self.volume.state

    @property
    def spool(self) -> Path:
        return self.state / pitr.SPOOL_SUBDIR

    @property
    def shipper(self) -> Path:
        return self.spool / "shipper"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "STATE": str(self.state),
            "SCRIPTS": str(self.scripts),
            "CLINIC": CLINIC,
            "HOME": str(self.work),
            **extra,
        }

    def sidecar_env(self, **extra: str) -> dict[str, str]:
        """The sidecar's environment: barman-cloud first on PATH, the local socket, this generation's prefix."""
        return self.env(
            PATH=f"{azurite.BARMAN_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            PGHOST="/run/postgresql",
            PGUSER="postgres",
            ARCHIVE_URL=self.az.url(CONTAINER, CLINIC),
            SERVER_NAME=self.name,
            **self.az.env(),
            **extra,
        )

    def as_postgres(self, argv: list[str], env: dict[str, str], timeout: float = 300) -> pg_pod.Result:
        """A sidecar step: the pod's mount and PID namespaces, the host's loopback, the postgres user."""
        setpriv = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        return self.pod.raw([*setpriv, *argv], env, timeout=timeout, net=False)

    def background(self, script: str, env: dict[str, str]) -> None:
        log = self.work / f"{script}.log"
        self.pod.sh(
            f"nohup setpriv --reuid=postgres --regid=postgres --init-groups sh {self.scripts}/{script} "
            f"> {log} 2>&1 & echo $! > {self.work}/{script}.pid",
            env,
            net=False,
        ).ok()

    def stop_background(self, script: str) -> None:
        pid = (self.work / f"{script}.pid").read_text().strip()
        self.pod.raw(["kill", pid])

    def log(self, script: str) -> str:
        path = self.work / f"{script}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def psql(self, sql: str) -> str:
        return self.pod.psql(sql)

    def pg(self, action: str) -> None:
        self.pod.raw(["pg_ctlcluster", self.settings.postgres_version, "main", action]).ok()

    def shipper_value(self, name: str) -> str:
        path = self.shipper / name
        return path.read_text().strip() if path.exists() else ""


def _generation(
    ws: pg_pod.Workspace, az: azurite.Azurite, name: str, settings: pitr.PitrSettings, scripts: dict[str, str]
) -> Generation:
    """A new volume with the image's cluster on it (EUC-JP, C locale), not started, and the rendered scripts."""
    ws.stand_ins(name)
    script_dir = ws.directory(name, "scripts")
    for file, text in scripts.items():
        (script_dir / file).write_text(text, encoding="utf-8")
        (script_dir / file).chmod(0o555)
    work = ws.directory(name, "work", mode=0o777)
    volume = pg_pod.Volume(ws.root / name / "state").make()
    pod = ws.pod(name, pg_pod.volume_binds(volume.state), settings.postgres_version)
    # psql's client speaks UTF-8 (without a terminal it would take the server's EUC-JP); the server converts.
    pod.env["PGCLIENTENCODING"] = "UTF8"
    v = settings.postgres_version
    pod.raw(["pg_createcluster", "--locale=C", "--encoding=EUC_JP", v, "main"]).ok()
    return Generation(ws, az, name, script_dir, work, volume, pod, settings)


def _serve(gen: Generation) -> None:
    """What the ORCA pod does at start: the archive settings (init container), PostgreSQL, the shipper sidecar."""
    gen.pod.raw(["/bin/sh", str(gen.scripts / "install-archive.sh")], gen.env()).ok()
    gen.pg("start")
    gen.background("ship-wal.sh", gen.sidecar_env())


def _create_database(gen: Generation) -> None:
    gen.pod.psql("CREATE DATABASE orca TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'", db="postgres")
    gen.psql("CREATE TABLE receipts (id bigserial PRIMARY KEY, patient text, points integer)")


def _insert(gen: Generation, rows: int, label: str) -> None:
    # Japanese text that EUC-JP holds (the client speaks UTF-8; the server converts).
    gen.psql(
        "INSERT INTO receipts (patient, points) "  # noqa: S608 - a test's literals
        f"SELECT '{label} 山田花子 診療報酬明細書 ' || g, g % 997 FROM generate_series(1, {int(rows)}) g"
    )


def _now(gen: Generation) -> str:
    """The server's clock, as an RFC 3339 UTC time."""
    local = gen.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
    return local.replace(" ", "T") + "Z"


def _archived_past(gen: Generation, moment: str, timeout: float = 90) -> float:
    """Seconds until the shipper knows a commit later than `moment` is in the archive."""
    target = _utc(moment)
    return _wait(
        f"{gen.name} archived past {moment}",
        lambda: bool(gen.shipper_value("archived-until")) and _utc(gen.shipper_value("archived-until")) > target,
        timeout,
        lambda: gen.log("ship-wal.sh")[-3000:],
    )


def _backups(gen: Generation, server: str) -> list[BaseBackup]:
    out = (
        gen.as_postgres(
            [
                "barman-cloud-backup-list",
                "--cloud-provider",
                pitr.CLOUD_PROVIDER,
                "--format",
                "json",
                gen.az.url(CONTAINER, CLINIC),
                server,
            ],
            gen.sidecar_env(),
        )
        .ok()
        .out
    )
    found = []
    for b in json.loads(out)["backups_list"]:
        if b.get("status") == "DONE":
            begin = dt.datetime.strptime(b["begin_time"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=dt.UTC)
            end = dt.datetime.strptime(b["end_time"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=dt.UTC)
            found.append(BaseBackup(b["backup_id"], begin, end))
    return found


def _restore(source: Generation, name: str, target: str, scripts: dict[str, str] | None = None) -> Generation:
    """The restore Job of a `fromPointInTime` restore: a new generation brought to `target` from the source's
    archive, promoted and stopped. Returns it with its server stopped."""
    gen = _generation(source.ws, source.az, name, source.settings, scripts or pitr.scripts(source.settings))
    env = gen.sidecar_env(
        SOURCE_URL=source.az.url(CONTAINER, CLINIC),
        SOURCE_SERVER=source.name,
        TARGET_TIME=recovery_time(_utc(target)),
        RESTORE_ID=name,
    )
    gen.as_postgres(["/bin/sh", str(gen.scripts / "restore-base.sh")], env).ok()
    gen.background("wal-server.sh", env)
    try:
        gen.pod.raw(
            ["/bin/sh", str(gen.scripts / "recover.sh")], gen.env(TARGET_TIME=env["TARGET_TIME"], RESTORE_ID=name), timeout=300
        ).ok()
    finally:
        gen.stop_background("wal-server.sh")
    return gen


# --- one archive, restored several times --------------------------------------------------------------------------


@dataclass
class Archive:
    source: Generation
    target: str  # T
    sum_before: str
    count_before: int
    timings: dict[str, float]


@pytest.fixture(scope="module")
def ws() -> Iterator[pg_pod.Workspace]:
    workspace = pg_pod.Workspace()
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def az(ws: pg_pod.Workspace) -> Iterator[azurite.Azurite]:
    emulator = azurite.Azurite(ws.directory("azurite")).start()
    emulator.create_container(CONTAINER)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def archive(ws: pg_pod.Workspace, az: azurite.Azurite) -> Archive:
    """Base backup -> rows -> T -> rows, all archived."""
    version = pg_pod.server_version()
    assert version is not None
    settings = _settings(version)
    source = _generation(ws, az, SOURCE, settings, pitr.scripts(settings))
    _serve(source)
    _create_database(source)
    timings: dict[str, float] = {}
    timings["first base backup"] = _wait(
        "first base backup",
        lambda: bool(source.shipper_value("last-base")),
        40,
        lambda: source.log("ship-wal.sh")[-3000:],
    )
    _insert(source, ROWS_BEFORE, "before")
    time.sleep(1.1)
    target = _now(source)
    time.sleep(1.1)
    _insert(source, ROWS_AFTER, "after")
    after = _now(source)
    timings["commit to archived (no manual switch)"] = _archived_past(source, after)
    return Archive(
        source=source,
        target=target,
        sum_before=source.psql(f"SELECT sum(points) FROM receipts WHERE id <= {ROWS_BEFORE}"),
        count_before=ROWS_BEFORE,
        timings=timings,
    )


def test_a_restore_to_t_gives_exactly_the_rows_before_t(archive: Archive) -> None:
    begin = time.monotonic()
    restored = _restore(archive.source, "orca-state-r1", archive.target)
    seconds = time.monotonic() - begin
    restored.pg("start")
    assert int(restored.psql("SELECT count(*) FROM receipts")) == archive.count_before
    assert restored.psql("SELECT sum(points) FROM receipts") == archive.sum_before
    assert restored.psql("SELECT count(*) FROM receipts WHERE patient LIKE 'after%'") == "0"
    assert restored.psql("SELECT patient FROM receipts WHERE id = 1") == "before 山田花子 診療報酬明細書 1"
    assert (
        restored.pod.psql("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'orca'", db="postgres")
        == "EUC_JP"
    )
    assert restored.psql("SELECT timeline_id FROM pg_control_checkpoint()") == "2", "a new timeline"
    print(f"\nPITR timings: {archive.timings}; restore to T (base + WAL + promote): {seconds:.1f} s")
    restored.pg("stop")


def test_two_restores_from_one_point_both_archive_under_their_own_prefix(archive: Archive, az: azurite.Azurite) -> None:
    gens = [_restore(archive.source, f"orca-state-twin{i}", archive.target) for i in (1, 2)]
    for i, gen in enumerate(gens):
        _serve(gen)
        _insert(gen, 10, f"twin{i}")
        _archived_past(gen, _now(gen))
    names = {gen.name: az.blobs(CONTAINER, f"{CLINIC}/{gen.name}/wals/") for gen in gens}
    for gen in gens:
        wals = names[gen.name]
        assert any("00000002.history" in w for w in wals), wals
        assert any("/0000000200000000/00000002" in w for w in wals), "the new timeline's segments"
        assert int(gen.psql("SELECT count(*) FROM receipts")) == archive.count_before + 10
        gen.stop_background("ship-wal.sh")
        gen.pg("stop")
    # The same WAL names, each under its own generation: neither overwrote the other.
    first, second = (sorted(w.split("/wals/", 1)[1] for w in names[g.name]) for g in gens)
    assert set(first) & set(second), "both restores made timeline 2"
    assert not set(names[gens[0].name]) & set(names[gens[1].name])


def test_a_restore_that_ignores_the_target_is_caught(archive: Archive) -> None:
    """The exactness above can fail: without recovery_target_time the rows after T come back too."""
    rendered = pitr.scripts(archive.source.settings)
    mutated = {**rendered, "recover.sh": rendered["recover.sh"].replace("recovery_target_time = ", "# ")}
    assert mutated != rendered
    # Without a target, 'promote' at the end of the archive is refused by PostgreSQL unless a target is set: drop it.
    mutated["recover.sh"] = mutated["recover.sh"].replace("recovery_target_action = 'promote'", "")
    restored = _restore(archive.source, "orca-state-mut", archive.target, mutated)
    restored.pg("start")
    assert int(restored.psql("SELECT count(*) FROM receipts")) != archive.count_before
    restored.pg("stop")


def test_the_window_of_the_archive_admits_t_and_refuses_the_future(archive: Archive) -> None:
    source = archive.source
    window = restorable_window(_backups(source, source.name), [], _utc(source.shipper_value("archived-until")))
    assert len(window) == 1
    now = dt.datetime.now(dt.UTC)
    assert check_target(archive.target, window, [], now) == _utc(archive.target)
    with pytest.raises(TargetRefusedError, match="future"):
        check_target((now + dt.timedelta(hours=1)).isoformat(), window, [], now)
    with pytest.raises(TargetRefusedError, match="outside the restorable window"):
        check_target((window[0].start - dt.timedelta(minutes=5)).isoformat(), window, [], now)
