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

import datetime as dt
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orca_platform.backup import backup_plan, pitr
from orca_platform.backup.orca_image import SEED_MARKER
from orca_platform.backup.window import (
    BaseBackup,
    TargetRefusedError,
    backups_from_barman,
    check_target,
    gap_from_record,
    recovery_time,
    restorable_window,
)
from tests import azurite, pg_pod

REASON = pg_pod.requirement() or azurite.requirement()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"PITR tests with real parts skipped: {REASON}"),
    # One worker runs the module: its emulator and archive are shared (pytest-xdist --dist loadgroup).
    pytest.mark.xdist_group("pitr"),
]

CLINIC = "test-sakura"
CONTAINER = "pitr"
SOURCE = "orca-state"  # the clinic's first volume generation: its archive's server name
ROWS_BEFORE = 3000
ROWS_AFTER = 1200
# Small intervals, so the suite is quick; the production defaults are 60 s (PitrSettings).
FAST = {"archive_timeout_seconds": 5, "heartbeat_seconds": 3, "poll_seconds": 1, "ship_timeout_seconds": 8}


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
    metrics_port: int = 0

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
            METRICS_PORT=str(self.metrics_port),
            METRICS_BIND="127.0.0.1",
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
    return Generation(ws, az, name, script_dir, work, volume, pod, settings, azurite.free_port())


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
    listing = gen.as_postgres(
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
    return backups_from_barman(listing.ok().out)


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
            ["/bin/sh", str(gen.scripts / "recover.sh")],
            gen.env(TARGET_TIME=env["TARGET_TIME"], RESTORE_ID=name),
            timeout=300,
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
        180,
        lambda: source.log("ship-wal.sh")[-3000:],
    )
    _insert(source, ROWS_BEFORE, "before")
    time.sleep(1.1)
    target = _now(source)
    time.sleep(1.1)
    _insert(source, ROWS_AFTER, "after")
    after = _now(source)
    timings["commit to archived (no manual switch)"] = _archived_past(source, after)
    sum_before = source.psql(f"SELECT sum(points) FROM receipts WHERE id <= {ROWS_BEFORE}")  # noqa: S608
    # The archive is complete: the source stops, so it stops adding segments for the restores to replay.
    source.stop_background("ship-wal.sh")
    source.pg("stop")
    return Archive(source, target, sum_before, ROWS_BEFORE, timings)


def test_a_restore_to_t_gives_exactly_the_rows_before_t(archive: Archive) -> None:
    begin = time.monotonic()
    restored = _restore(archive.source, "orca-state-r1", archive.target)
    seconds = time.monotonic() - begin
    # The verification Job every restore passes before the Deployment switches (the seed container marked the
    # new volume; the restore's marker says it completed).
    restored.volume.mark_seeded(SEED_MARKER)
    verify = restored.work / "verify.sh"
    verify.write_text(backup_plan.verify_script(restored.settings.postgres_version), encoding="utf-8")
    marker = ".orca-platform-restored-orca-state-r1"
    env = restored.env(RESTORE_ID="orca-state-r1", RESTORE_MARKER=marker)
    assert "holds a PostgreSQL" in restored.pod.raw(["/bin/sh", str(verify)], env).ok().out
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
    backups = _backups(source, source.name)
    window = restorable_window(backups, [], _utc(source.shipper_value("archived-until")))
    assert window[0].start == backups[0].end
    assert len(window) == 1
    now = dt.datetime.now(dt.UTC)
    assert check_target(archive.target, window, [], now) == _utc(archive.target)
    with pytest.raises(TargetRefusedError, match="future"):
        check_target((now + dt.timedelta(hours=1)).isoformat(), window, [], now)
    with pytest.raises(TargetRefusedError, match="outside the restorable window"):
        check_target((window[0].start - dt.timedelta(minutes=5)).isoformat(), window, [], now)


# --- the object store away -----------------------------------------------------------------------------------------


def _wal_files(gen: Generation) -> list[str]:
    return sorted(p.name for p in gen.spool.glob("[0-9A-F]*"))


def _metric(gen: Generation, name: str) -> float:
    """A metric as the cluster's Prometheus reads it: GET /metrics from the sidecar (here on the host's loopback)."""
    port = gen.sidecar_env()["METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the shipper's metrics")


def _switch(gen: Generation, times: int) -> None:
    for i in range(times):
        _insert(gen, 50, f"outage{i}")
        gen.psql("SELECT pg_switch_wal()")


def test_an_outage_keeps_committing_drains_after_and_past_the_cap_is_a_recorded_gap(
    ws: pg_pod.Workspace, az: azurite.Azurite
) -> None:
    version = pg_pod.server_version()
    assert version is not None
    # A spool of ten 16 MB segments: a short outage fits in it, a long one does not.
    settings = _settings(version, spool_cap_mb=160)
    gen = _generation(ws, az, "orca-state-outage", settings, pitr.scripts(settings))
    _serve(gen)
    _create_database(gen)
    _wait("first base backup", lambda: bool(gen.shipper_value("last-base")), 180, lambda: gen.log("ship-wal.sh"))

    # A short outage: PostgreSQL commits on, the spool holds the backlog, failed attempts are counted.
    az.stop()
    _switch(gen, 2)
    assert int(gen.psql("SELECT count(*) FROM receipts")) == 100
    _wait(
        "a failed attempt counted",
        lambda: _metric(gen, pitr.METRIC_ARCHIVE_FAILURES) > 0,
        30,
        lambda: gen.log("ship-wal.sh")[-2000:],
    )
    backlog = len(_wal_files(gen))
    assert backlog >= 2, "the backlog waits in the spool"
    az.start()
    drained = _wait("backlog drained", lambda: not _wal_files(gen), 60, lambda: gen.log("ship-wal.sh")[-2000:])
    assert not list(gen.spool.glob("gaps/*")), "a short outage leaves no gap"

    # A long outage: past the cap the WAL is let go and a gap recorded; the server never stops or fills the volume.
    before_gap = _now(gen)
    time.sleep(1.1)
    az.stop()
    _switch(gen, 12)
    assert (gen.spool / "gaps" / "open").exists(), "the gap is recorded"
    assert int(gen.psql("SELECT count(*) FROM receipts")) == 100 + 12 * 50
    assert gen.psql("SELECT failed_count FROM pg_stat_archiver") == "0", "archive_command never failed"
    assert sum(p.stat().st_size for p in gen.spool.glob("[0-9A-F]*")) <= settings.spool_cap_mb * 1024 * 1024
    _wait("gap metric", lambda: _metric(gen, pitr.METRIC_GAP_OPEN) == 1, 30)
    in_gap = _now(gen)
    az.start()
    # Drained, then a new base backup closes the gap.
    _wait("gap closed", lambda: bool(list(gen.spool.glob("gaps/closed-*"))), 120, lambda: gen.log("ship-wal.sh"))
    after_gap = _now(gen)
    _archived_past(gen, after_gap)
    (record,) = gen.spool.glob("gaps/closed-*")
    gap = gap_from_record(record.read_text())
    # The record reaches the archive, beside the generation's WAL.
    in_archive = f"{CLINIC}/{gen.name}/gaps/{record.name}"
    _wait("gap record archived", lambda: in_archive in az.blobs(CONTAINER, f"{CLINIC}/{gen.name}/gaps/"), 30)
    assert gap.end is not None and gap.start <= _utc(in_gap) < gap.end
    window = restorable_window(_backups(gen, gen.name), [gap], _utc(gen.shipper_value("archived-until")))
    now = dt.datetime.now(dt.UTC)
    assert check_target(before_gap, window, [gap], now)
    assert check_target(gen.shipper_value("archived-until"), window, [gap], now), "restorable after the gap"
    with pytest.raises(TargetRefusedError, match="inside a gap"):
        check_target(in_gap, window, [gap], now)
    spans = "; ".join(str(i) for i in window)
    print(f"\nPITR outage: a backlog of {backlog} segments drained {drained:.1f} s after the store returned; {spans}")
    gen.stop_background("ship-wal.sh")
    gen.pg("stop")


# --- mutations of the rendered scripts ----------------------------------------------------------------------------


@pytest.mark.parametrize("mutated", [False, True], ids=["rendered", "archive_timeout-removed"])
def test_archive_timeout_spools_light_writes_without_a_manual_switch(
    ws: pg_pod.Workspace, az: azurite.Azurite, mutated: bool
) -> None:
    version = pg_pod.server_version()
    assert version is not None
    settings = _settings(version)
    rendered = pitr.scripts(settings)
    conf = rendered["archive.conf"]
    if mutated:
        conf = "\n".join(line for line in conf.splitlines() if not line.startswith("archive_timeout")) + "\n"
        assert conf != rendered["archive.conf"]
    gen = _generation(ws, az, f"orca-state-timeout-{mutated}", settings, {**rendered, "archive.conf": conf})
    gen.pod.raw(["/bin/sh", str(gen.scripts / "install-archive.sh")], gen.env()).ok()
    gen.pg("start")
    _create_database(gen)
    # The sidecar's first heartbeat on a server it has not seen (it wakes the checkpointer; see pitr.HEARTBEAT).
    gen.as_postgres(["python3", str(gen.scripts / "heartbeat.py"), str(gen.work / "seen")], gen.sidecar_env()).ok()
    already = set(_wal_files(gen))
    # A light load (as the heartbeat is on an idle server): a row a second, never 16 MB of WAL.
    deadline = time.monotonic() + 2 * settings.archive_timeout_seconds + 2
    while time.monotonic() < deadline and not set(_wal_files(gen)) - already:
        _insert(gen, 1, "light")
        time.sleep(1)
    spooled = set(_wal_files(gen)) - already
    gen.pg("stop")
    if mutated:
        assert not spooled, "without archive_timeout the commits wait for 16 MB of WAL"
    else:
        assert spooled, "the commits are in the spool within archive_timeout"


CUT_COPY = """#!/bin/sh
# cp as a crash sees it: half the file written, then the process gone.
size=$(wc -c < "$1")
head -c $((size / 2)) "$1" > "$2"
exit 1
"""


@pytest.mark.parametrize("mutated", [False, True], ids=["rendered", "spool-write-not-atomic"])
def test_a_spool_write_cut_short_leaves_no_partial_segment(
    ws: pg_pod.Workspace, az: azurite.Azurite, mutated: bool
) -> None:
    version = pg_pod.server_version()
    assert version is not None
    settings = _settings(version)
    rendered = pitr.scripts(settings)
    spool = rendered["spool-wal.sh"]
    if mutated:
        spool = spool.replace('cp "$src" "$tmp"', 'cp "$src" "$final"')
        assert spool != rendered["spool-wal.sh"]
    gen = _generation(ws, az, f"orca-state-atomic-{mutated}", settings, {**rendered, "spool-wal.sh": spool})
    gen.pod.raw(["/bin/sh", str(gen.scripts / "install-archive.sh")], gen.env()).ok()
    segment = gen.work / "000000010000000000000007"
    segment.write_bytes(bytes(range(256)) * 4096)
    other = gen.work / "other"
    other.write_bytes(b"x" * (256 * 4096))
    cut = ws.directory(gen.name, "cut-bin")
    (cut / "cp").write_text(CUT_COPY, encoding="utf-8")
    (cut / "cp").chmod(0o755)
    command = f"{settings.conf_dir}/{pitr.SPOOL_COMMAND}"

    def archive(src: Path, path: str) -> pg_pod.Result:
        env = {"PATH": f"{path}:/usr/sbin:/usr/bin:/sbin:/bin"}
        return gen.pod.raw(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "/bin/sh",
                command,
                str(src),
                segment.name,
            ],
            env,
        )

    crashed = archive(segment, str(cut))
    assert crashed.code != 0
    final = gen.spool / segment.name
    if mutated:
        assert final.exists() and final.stat().st_size < segment.stat().st_size, "a partial segment is spooled"
        retry = archive(segment, "")
        assert retry.code != 0 and "REFUSED" in retry.err, "and archiving is stuck on it"
        return
    assert not final.exists(), "the shipper never sees a partial segment"
    archive(segment, "").ok()
    assert final.read_bytes() == segment.read_bytes()
    assert "already spooled" in archive(segment, "").ok().out, "a retry of the same segment is a no-op"
    refused = archive(other, "")
    assert refused.code != 0 and "REFUSED" in refused.err, "other contents under the same name are refused"
    assert final.read_bytes() == segment.read_bytes()
