"""Issue 12: the data-survival scripts against a real PostgreSQL (Debian's packages, `make deb-postgres`).

Every script is taken from what the program renders (tools.offline.engine.run_program, the dev stack with the installed
PostgreSQL major and a 30 s grace period): the ConfigMap of the backup jobs, the server's preStop hook, its seed and
gate init containers, with the environment their pod specs give them. Only kubectl, azcopy, ORCA's monitor and a
clock are stand-ins (tests/pg_pod.py); pg_ctlcluster, pg_createcluster, pg_dump, pg_restore and the server are
real, each scenario in a pod of its own (mount, PID and network namespaces). Where that cannot run, every test here
is skipped with the reason.
"""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orca_platform.backup.orca_image import BACKUP_MARKERS, SEED_MARKER
from tests import pg_pod
from tests.orca_test_support import program_config, raw_settings
from tools.offline.engine import Registered, Run, reveal, run_program

REASON = pg_pod.requirement()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"real PostgreSQL tests skipped: {REASON}")

CLINIC = "test-sakura"
NS = f"orca-{CLINIC}"
GRACE = 30  # orca.terminationGraceSeconds for these runs: the preStop hook must finish within it
ROWS = 2500
DB_PASSWORD = "rows-survive-2026"


@dataclass(frozen=True)
class Rendered:
    """What the program rendered for one clinic, as the pods would run it."""

    version: str
    scripts: dict[str, str]
    prestop: list[str]
    gate: dict[str, Any]
    seed: dict[str, Any]
    stop_env: dict[str, str]
    backup_env: dict[str, dict[str, str]]  # container name -> its plain environment
    dump_env: dict[str, str]
    cron_env: dict[str, str]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or [] if isinstance(e.get("value"), str)}


def _one(run: Run, kind: str, name: str) -> Registered:
    found = [r for r in run.k8s(kind, NS) if r.inputs["metadata"]["name"].startswith(name)]
    assert found, f"{kind} {name}* not rendered"
    return found[0]


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    version = pg_pod.server_version()
    assert version is not None
    orca = {**raw_settings("dev")["orca"], "postgresVersion": version, "terminationGraceSeconds": GRACE}
    run = run_program("dev", program_config("dev", orca=orca))
    scripts = reveal(_one(run, "ConfigMap", "orca-backup-scripts").inputs["data"])
    pod = _one(run, "Deployment", "orca").inputs["spec"]["template"]["spec"]
    inits = {c["name"]: c for c in pod["initContainers"]}
    server = pod["containers"][0]
    stop_job = _one(run, "Job", "orca-pre-upgrade-stop-")
    backup_job = next(
        j for j in run.k8s("Job", NS) if j.inputs["metadata"]["name"].startswith("orca-pre-upgrade-") and j != stop_job
    )
    bpod = backup_job.inputs["spec"]["template"]["spec"]
    cron = _one(run, "CronJob", "orca-dumps").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return Rendered(
        version=version,
        scripts=dict(scripts),
        prestop=server["lifecycle"]["preStop"]["exec"]["command"],
        gate=inits["backup-gate"],
        seed=inits["seed-state"],
        stop_env=_env(stop_job.inputs["spec"]["template"]["spec"]["containers"][0]),
        backup_env={c["name"]: _env(c) for c in [*bpod["initContainers"], *bpod["containers"]]},
        dump_env=_env(bpod["initContainers"][0]),
        cron_env=_env(cron["containers"][0]),
    )


@dataclass
class Scene:
    """One scenario's workspace: a clinic volume, the scripts where the pods mount them, the stand-ins."""

    ws: pg_pod.Workspace
    rendered: Rendered
    name: str
    standin: Path
    scripts: Path
    work: Path
    volume: pg_pod.Volume

    @property
    def state(self) -> Path:
        return self.volume.state

    def pod_env(self, container_env: dict[str, str]) -> dict[str, str]:
        """A container's rendered environment with the pod's mount paths pointed at this workspace."""
        return {
            **container_env,
            "SCRIPTS": str(self.scripts),
            "WORK": str(self.work),
            "HOME": str(self.work),
            "STATE": str(self.state),
            "STANDIN": str(self.standin),
        }

    def server_pod(self) -> pg_pod.Pod:
        return self.pod(self.name)

    def pod(self, name: str, binds: dict[str, Path] | None = None) -> pg_pod.Pod:
        """A pod of this scenario (its stand-ins on PATH), by default with the volume at the image's paths."""
        view = pg_pod.volume_binds(self.state) if binds is None else binds
        return self.ws.pod(name, view, self.rendered.version, tools=self.name)


@pytest.fixture
def ws() -> Iterator[pg_pod.Workspace]:
    workspace = pg_pod.Workspace()
    try:
        yield workspace
    finally:
        workspace.close()


def _scene(ws: pg_pod.Workspace, rendered: Rendered, name: str) -> Scene:
    standin = ws.stand_ins(name)
    scripts = ws.directory(name, "scripts")
    for file, text in rendered.scripts.items():
        (scripts / file).write_text(text, encoding="utf-8")
        (scripts / file).chmod(0o555)
    work = ws.directory(name, "work", mode=0o777)
    volume = pg_pod.Volume(ws.root / name / "state").make()
    (standin / "orca.env").write_text(
        f"ORCA_DB_USER=orca\nORCA_DB_NAME=orca\nORCA_DB_PASS={DB_PASSWORD}\n", encoding="utf-8"
    )
    return Scene(ws, rendered, name, standin, scripts, work, volume)


def _create_cluster(pod: pg_pod.Pod, rows: int = ROWS) -> None:
    """What the ORCA image ships (a Debian cluster with ORCA's database), then a clinic's committed rows."""
    v = pod.version
    pod.raw(["pg_createcluster", v, "main"]).ok()
    pod.raw(["pg_ctlcluster", v, "main", "start"]).ok()
    pod.psql(f"CREATE ROLE orca LOGIN PASSWORD '{DB_PASSWORD}'", db="postgres")
    pod.psql("CREATE DATABASE orca OWNER orca", db="postgres")
    if rows:
        pod.psql("CREATE TABLE receipts (id bigserial PRIMARY KEY, patient text, points integer)")
        pod.psql(
            "INSERT INTO receipts (patient, points) SELECT 'patient ' || g, g % 997 "  # noqa: S608 - a test's literal
            f"FROM generate_series(1, {int(rows)}) g"
        )
        pod.psql("ALTER TABLE receipts OWNER TO orca")


def _count(pod: pg_pod.Pod) -> int:
    return int(pod.psql("SELECT count(*) FROM receipts"))


def _cluster_state(pod: pg_pod.Pod) -> str:
    v = pod.version
    out = pod.raw([f"/usr/lib/postgresql/{v}/bin/pg_controldata", f"/var/lib/postgresql/{v}/main"]).ok().out
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Database cluster state"))


def _running(pod: pg_pod.Pod) -> bool:
    return pod.raw(["pg_ctlcluster", pod.version, "main", "status"]).code == 0


# --- stop and crash ------------------------------------------------------------------------------------------------


def _prestop_scenario(scene: Scene, prestop: list[str]) -> tuple[pg_pod.Pod, pg_pod.Result]:
    """ORCA running with a client session open, then the kubelet's stop: the hook, the grace period, SIGKILL."""
    pod = scene.server_pod()
    _create_cluster(pod)
    pod.sh("nohup monitor >/dev/null 2>&1 &").ok()
    # An ORCA client keeps its session open through a consultation: 'smart' would wait for it forever.
    pod.sh("nohup su postgres -c \"psql -X -d orca -c 'SELECT pg_sleep(600)'\" >/dev/null 2>&1 &").ok()
    time.sleep(1)
    assert _running(pod)
    hook = pod.raw(prestop, timeout=GRACE)
    # Whatever still runs when the grace period ends is killed, as the kubelet does.
    pod.kill_all()
    return pod, hook


def test_committed_rows_survive_the_prestop_stop_and_a_start(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "prestop")
    pod, hook = _prestop_scenario(scene, rendered.prestop)
    assert hook.code == 0 and hook.seconds < GRACE, f"the preStop hook took {hook.seconds:.0f}s: {hook.err}"
    assert "-m fast" in rendered.prestop[-1]
    assert pod.raw(["pgrep", "-x", "monitor"]).code == 1, "ORCA's monitor was asked to stop first"
    assert _cluster_state(pod) == "shut down", "PostgreSQL was stopped cleanly within the grace period"
    pod.raw(["pg_ctlcluster", rendered.version, "main", "start"]).ok()
    assert _count(pod) == ROWS


def test_a_prestop_without_the_fast_stop_is_caught(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    """The scenario above can fail: with 'smart' (pg_ctlcluster's default is fast, so it must be explicit to
    mutate it) the open session holds PostgreSQL past the grace period and the kubelet's SIGKILL lands on it."""
    mutated = [*rendered.prestop[:-1], rendered.prestop[-1].replace("-m fast", "-m smart")]
    assert mutated != rendered.prestop
    scene = _scene(ws, rendered, "prestop-smart")
    pod, hook = _prestop_scenario(scene, mutated)
    assert hook.code != 0 or hook.seconds >= GRACE - 1
    assert _cluster_state(pod) != "shut down"


def test_committed_rows_survive_sigkill_and_crash_recovery(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "crash")
    pod = scene.server_pod()
    _create_cluster(pod)
    pod.psql("INSERT INTO receipts (patient, points) VALUES ('after checkpoint', 1)")
    pod.kill_all(signal.SIGKILL)
    assert not _running(pod)
    assert _cluster_state(pod) == "in production", "killed, not shut down"
    pod.raw(["pg_ctlcluster", rendered.version, "main", "start"]).ok()
    assert _count(pod) == ROWS + 1
    log = (scene.state / "postgresql-log" / f"postgresql-{rendered.version}-main.log").read_text()
    assert "was interrupted" in log or "not properly shut down" in log, "the start ran crash recovery"


# --- dumps -----------------------------------------------------------------------------------------------------


def _dump(scene: Scene, pod: pg_pod.Pod, mode: str = "whole", now: str | None = None) -> pg_pod.Result:
    (scene.standin / "pods").write_text("pod/orca-7d9f-x1\n", encoding="utf-8")
    (scene.standin / "exec-mode").write_text(mode, encoding="utf-8")
    env = scene.pod_env(scene.rendered.cron_env)
    if now:
        env["FAKE_NOW"] = now
    return pod.raw(["/bin/sh", str(scene.scripts / "dump.sh")], env)


def _blobs(scene: Scene) -> list[Path]:
    return sorted(p for p in (scene.standin / "blob").rglob("*.dump")) if (scene.standin / "blob").exists() else []


def test_a_dump_is_checked_stored_once_and_restores_with_identical_counts(
    ws: pg_pod.Workspace, rendered: Rendered
) -> None:
    scene = _scene(ws, rendered, "dump")
    pod = scene.server_pod()
    _create_cluster(pod)
    # 16:30 UTC on 30 November is 01:30 JST on 1 December: the monthly copy is taken.
    _dump(scene, pod, now="2026-11-30T16:30:00Z").ok()
    blobs = _blobs(scene)
    assert [p.relative_to(scene.standin / "blob").parts[:2] for p in blobs] == [
        ("daily", CLINIC),
        ("monthly", CLINIC),
    ]
    daily = blobs[0]
    assert daily.read_bytes()[:5] == b"PGDMP"
    toc = pod.raw(["pg_restore", "--list", str(daily)]).ok().out
    assert "TABLE DATA public receipts" in toc
    # The next day's dump is daily only.
    _dump(scene, pod, now="2026-12-01T16:30:00Z").ok()
    assert len([p for p in _blobs(scene) if p.parts[-3] == "monthly"]) == 1

    # A fresh volume, as a dump restore builds it: the image's cluster with ORCA's empty database.
    fresh = _scene(ws, rendered, "restore")
    target = fresh.server_pod()
    _create_cluster(target, rows=0)
    target.raw(["pg_ctlcluster", rendered.version, "main", "stop", "-m", "fast"]).ok()
    (fresh.standin / "blob").symlink_to(scene.standin / "blob")
    key = str(daily.relative_to(scene.standin / "blob"))
    env = fresh.pod_env({**rendered.cron_env, "RESTORE_ID": "r1", "DUMP": key, "ORCA_DB_NAME": "orca"})
    target.raw(["/bin/sh", str(fresh.scripts / "restore-fetch.sh")], env).ok()
    target.raw(["/bin/sh", str(fresh.scripts / "restore-apply.sh")], env).ok()
    assert (fresh.state / ".orca-platform-restored-r1").exists()
    again = target.raw(["/bin/sh", str(fresh.scripts / "restore-apply.sh")], env).ok()
    assert "already applied" in again.out
    target.raw(["pg_ctlcluster", rendered.version, "main", "start"]).ok()
    assert _count(target) == ROWS
    assert target.psql("SELECT sum(points) FROM receipts") == pod.psql("SELECT sum(points) FROM receipts")


@pytest.mark.parametrize("mode", ["truncate", "empty"])
def test_a_truncated_or_empty_dump_is_refused(ws: pg_pod.Workspace, rendered: Rendered, mode: str) -> None:
    scene = _scene(ws, rendered, f"dump-{mode}")
    pod = scene.server_pod()
    _create_cluster(pod)
    result = _dump(scene, pod, mode)
    assert result.code != 0
    assert "refused" in result.err
    assert _blobs(scene) == [], "nothing reaches the immutable containers"


# --- seeding ---------------------------------------------------------------------------------------------------


def _image_pod(ws: pg_pod.Workspace, rendered: Rendered, name: str) -> pg_pod.Pod:
    """The image's own directories (a fresh cluster, as an ORCA image ships one) at their paths, and a volume."""
    image = {sub: ws.directory(name, "image", sub) for sub in pg_pod.PG_PATHS}
    shutil_owner(image["postgresql-data"], "postgres")
    shutil_owner(image["postgresql-log"], "postgres")
    ws.stand_ins(name)
    builder = ws.pod(f"{name}-build", {t: image[s] for s, t in pg_pod.PG_PATHS.items()}, rendered.version, tools=name)
    builder.raw(["pg_createcluster", rendered.version, "main"]).ok()
    builder.stop()
    return ws.pod(name, {t: image[s] for s, t in pg_pod.PG_PATHS.items()}, rendered.version)


def shutil_owner(path: Path, user: str) -> None:
    import shutil

    shutil.chown(path, user, user)


def _seed(scene: Scene, pod: pg_pod.Pod, expect_data: str | None = None) -> pg_pod.Result:
    env = scene.pod_env(_env(scene.rendered.seed))
    if expect_data is not None:
        env["EXPECT_DATA"] = expect_data
    return pod.raw(scene.rendered.seed["command"], env)


def _volume_with_data(ws: pg_pod.Workspace, scene: Scene, marked: bool) -> None:
    server = scene.pod(f"{scene.name}-server")
    _create_cluster(server, rows=100)
    server.raw(["pg_ctlcluster", scene.rendered.version, "main", "stop", "-m", "fast"]).ok()
    server.stop()
    (scene.state / "jma-conf" / "jma-receipt.env").write_text("ORCA settings of this clinic\n", encoding="utf-8")
    if marked:
        scene.volume.mark_seeded(SEED_MARKER)


def test_the_seed_refuses_a_non_empty_unmarked_directory_and_changes_nothing(
    ws: pg_pod.Workspace, rendered: Rendered
) -> None:
    scene = _scene(ws, rendered, "seed-unmarked")
    _volume_with_data(ws, scene, marked=False)
    before = pg_pod.tree(scene.state)
    result = _seed(scene, _image_pod(ws, rendered, "seed-unmarked-image"))
    assert result.code != 0
    assert "REFUSED" in result.err and "postgresql-data" in result.err and "not empty" in result.err
    assert pg_pod.tree(scene.state) == before, "the volume is byte-identical"


def test_an_old_style_seed_that_copies_over_data_is_caught(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    """The assertion above can fail: the seed of before (copy whenever the marker is missing) changes the data."""
    old = "set -eu\n" + "\n".join(
        f"if [ ! -e $STATE/{sub}/{SEED_MARKER} ]; then mkdir -p $STATE/{sub}; "
        f"if [ -d {path} ]; then cp -a {path}/. $STATE/{sub}/; fi; touch $STATE/{sub}/{SEED_MARKER}; fi"
        for sub, path in pg_pod.PG_PATHS.items()
    )
    scene = _scene(ws, rendered, "seed-old")
    _volume_with_data(ws, scene, marked=False)
    before = pg_pod.tree(scene.state)
    pod = _image_pod(ws, rendered, "seed-old-image")
    pod.raw(["/bin/sh", "-c", old], scene.pod_env({})).ok()
    assert pg_pod.tree(scene.state) != before


def test_the_seed_leaves_a_marked_volume_alone(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "seed-marked")
    _volume_with_data(ws, scene, marked=True)
    before = pg_pod.tree(scene.state)
    for expect in (None, "1"):
        _seed(scene, _image_pod(ws, rendered, f"seed-marked-image-{expect}"), expect).ok()
        assert pg_pod.tree(scene.state) == before


def test_the_seed_fills_an_empty_volume_once(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "seed-empty")
    for sub in ("postgresql-data", "postgresql-conf", "postgresql-log", "jma-conf", "jma-data", "jma-log"):
        (scene.state / sub).rmdir()
    pod = _image_pod(ws, rendered, "seed-empty-image")
    _seed(scene, pod).ok()
    v = rendered.version
    assert (scene.state / "postgresql-data" / v / "main" / "PG_VERSION").read_text().strip() == v
    assert (scene.state / "postgresql-conf" / v / "main" / "postgresql.conf").is_file()
    for sub in ("postgresql-data", "postgresql-conf", "jma-conf", "jma-data", "jma-log", "postgresql-log"):
        assert (scene.state / sub / SEED_MARKER).exists()
    assert not list(scene.state.glob(".seeding-*"))
    after = pg_pod.tree(scene.state)
    _seed(scene, pod).ok()
    assert pg_pod.tree(scene.state) == after


def test_a_clinic_that_had_data_never_seeds_an_empty_volume(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "seed-expect")
    before = pg_pod.tree(scene.state)
    result = _seed(scene, _image_pod(ws, rendered, "seed-expect-image"), expect_data="1")
    assert result.code != 0 and "EXPECT_DATA=1" in result.err
    assert pg_pod.tree(scene.state) == before


# --- verification before a restore switch ------------------------------------------------------------------------


def _verify(scene: Scene, pod: pg_pod.Pod, **env: str) -> pg_pod.Result:
    return pod.raw(
        ["/bin/sh", str(scene.scripts / "verify.sh")],
        scene.pod_env({**scene.rendered.cron_env, "RESTORE_ID": "r1", **env}),
    )


def test_the_verification_passes_a_whole_volume_and_refuses_one_without_pg_version(
    ws: pg_pod.Workspace, rendered: Rendered
) -> None:
    scene = _scene(ws, rendered, "verify")
    _volume_with_data(ws, scene, marked=True)
    pod = scene.pod("verify-check")
    passed = _verify(scene, pod).ok()
    assert "shut down" in passed.out
    # A dump restore must also have completed.
    assert "never completed" in _verify(scene, pod, RESTORE_MARKER=".orca-platform-restored-r1").err
    pg_version = scene.state / "postgresql-data" / rendered.version / "main" / "PG_VERSION"
    pg_version.rename(pg_version.with_suffix(".moved"))
    refused = _verify(scene, pod)
    assert refused.code != 0 and "no PG_VERSION" in refused.err


def test_the_verification_refuses_an_unseeded_volume_and_a_damaged_control_file(
    ws: pg_pod.Workspace, rendered: Rendered
) -> None:
    scene = _scene(ws, rendered, "verify-bad")
    _volume_with_data(ws, scene, marked=False)
    pod = scene.pod("verify-bad-check")
    assert "marker" in _verify(scene, pod).err
    scene.volume.mark_seeded(SEED_MARKER)
    control = scene.state / "postgresql-data" / rendered.version / "main" / "global" / "pg_control"
    data = bytearray(control.read_bytes())
    data[16] ^= 0xFF
    control.write_bytes(bytes(data))
    refused = _verify(scene, pod)
    assert refused.code != 0 and "damaged" in refused.err


# --- the pre-upgrade backup, end to end -------------------------------------------------------------------------


def test_the_pre_upgrade_backup_stops_the_server_dumps_read_only_and_opens_the_gate(
    ws: pg_pod.Workspace, rendered: Rendered
) -> None:
    scene = _scene(ws, rendered, "upgrade")
    server = scene.server_pod()
    _create_cluster(server)
    server.sh("nohup monitor >/dev/null 2>&1 &").ok()
    # Step 1: the stop Job scales the Deployment to zero; the kubelet then runs the server's preStop hook.
    (scene.standin / "deployment").touch()
    (scene.standin / "pods").write_text("pod/orca-7d9f-x1\n", encoding="utf-8")
    (scene.standin / "on-scale").write_text(shlex.join(rendered.prestop) + "\n", encoding="utf-8")
    stop = server.raw(["/bin/sh", str(scene.scripts / "pre-upgrade-stop.sh")], scene.pod_env(rendered.stop_env)).ok()
    assert "stopped" in stop.out
    assert "kubectl scale deployment orca --replicas=0" in (scene.standin / "kubectl.log").read_text()
    assert _cluster_state(server) == "shut down"
    server.stop()

    # Step 2, in the backup Job's pod: dump from the stopped cluster, snapshot and store, mark the volume.
    job = scene.pod("upgrade-job")
    env = rendered.backup_env
    dump = job.raw(["/bin/sh", str(scene.scripts / "pre-upgrade-dump.sh")], scene.pod_env(env["dump"])).ok()
    assert "dumped" in dump.out
    assert _cluster_state(job) == "shut down", "the cluster is stopped again before the snapshot"
    job.raw(["/bin/sh", str(scene.scripts / "pre-upgrade-store.sh")], scene.pod_env(env["store"])).ok()
    applied = (scene.standin / "applied.yaml").read_text()
    assert 'orca-platform.io/snapshot: "pre-upgrade"' in applied and "persistentVolumeClaimName: orca-state" in applied
    (stored,) = _blobs(scene)
    assert stored.name.endswith("-pre-upgrade.dump") and stored.parts[-3] == "daily"
    toc = job.raw(["pg_restore", "--list", str(stored)]).ok().out
    assert "TABLE DATA public receipts" in toc
    key = env["mark"]["BACKUP_KEY"]
    job.raw(
        ["/bin/sh", str(scene.scripts / "pre-upgrade-mark.sh")], scene.pod_env({**env["mark"], "JOB_UID": "uid-1"})
    ).ok()
    assert (scene.state / BACKUP_MARKERS / key).read_text().splitlines() == ["uid-1", "backup"]

    # The new server's gate: this backup run opens it, another run's uid or none does not.
    gate = rendered.gate["command"]
    assert _env(rendered.gate)["BACKUP_KEY"] == key
    job.raw(gate, scene.pod_env({**_env(rendered.gate), "BACKUP_JOB": "uid-1"})).ok()
    other = job.raw(gate, scene.pod_env({**_env(rendered.gate), "BACKUP_JOB": "uid-2"}))
    assert other.code != 0 and "REFUSED" in other.err
    missing = job.raw(gate, scene.pod_env({**_env(rendered.gate), "BACKUP_KEY": "0000000000", "BACKUP_JOB": "uid-1"}))
    assert missing.code != 0 and "pulumi up --target" in missing.err

    # The dump restores to the same rows.
    job.raw(["pg_ctlcluster", rendered.version, "main", "start"]).ok()
    assert _count(job) == ROWS


def test_the_pre_upgrade_dump_runs_read_only(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    """While the backup's PostgreSQL runs, nothing can write and nothing reaches it over TCP."""
    scene = _scene(ws, rendered, "readonly")
    pod = scene.server_pod()
    _create_cluster(pod)
    pod.raw(["pg_ctlcluster", rendered.version, "main", "stop", "-m", "fast"]).ok()
    # Run the script up to its pg_dump, then look at the server it started.
    script = (scene.scripts / "pre-upgrade-dump.sh").read_text()
    settings = "SELECT 'ro=' || current_setting('transaction_read_only') || ' tcp=' || "
    settings += "current_setting('listen_addresses') || ' autovacuum=' || current_setting('autovacuum')"
    look = f'su postgres -c "psql -X -A -t -d $ORCA_DB_NAME -c \\"{settings}\\""\n'
    probe = script.replace('su postgres -c "pg_dump', look + 'su postgres -c "pg_dump', 1)
    assert probe != script
    (scene.scripts / "probe.sh").write_text(probe, encoding="utf-8")
    out = pod.raw(["/bin/sh", str(scene.scripts / "probe.sh")], scene.pod_env(rendered.dump_env)).ok().out
    assert "ro=on tcp= autovacuum=off" in out.splitlines()


@pytest.mark.parametrize(
    ("layout", "expect_data", "outcome"),
    [
        ("new", "0", "none"),
        ("new", "1", "REFUSED"),
        ("seeded-without-cluster", "0", "REFUSED"),
    ],
)
def test_the_pre_upgrade_backup_fails_when_it_took_no_backup_of_data_that_exists(
    ws: pg_pod.Workspace, rendered: Rendered, layout: str, expect_data: str, outcome: str
) -> None:
    scene = _scene(ws, rendered, f"noback-{layout}-{expect_data}")
    if layout == "seeded-without-cluster":
        scene.volume.mark_seeded(SEED_MARKER)
    pod = scene.server_pod()
    result = pod.raw(
        ["/bin/sh", str(scene.scripts / "pre-upgrade-dump.sh")],
        scene.pod_env({**rendered.dump_env, "EXPECT_DATA": expect_data}),
    )
    if outcome == "none":
        result.ok()
        assert (scene.work / "pre-upgrade.verdict").read_text().strip() == "none"
        store = pod.raw(
            ["/bin/sh", str(scene.scripts / "pre-upgrade-store.sh")], scene.pod_env(rendered.backup_env["store"])
        )
        assert store.ok() and not (scene.standin / "applied.yaml").exists()
    else:
        assert result.code != 0 and outcome in result.err


def test_pruning_releases_each_content_before_deleting_its_snapshot(ws: pg_pod.Workspace, rendered: Rendered) -> None:
    scene = _scene(ws, rendered, "prune")
    retain = int(rendered.cron_env["RETAIN"])
    old = [f"volumesnapshot.snapshot.storage.k8s.io/orca-state-2026110{i}000000" for i in range(retain + 1)]
    (scene.standin / "scheduled").write_text("\n".join(old) + "\n", encoding="utf-8")
    pod = scene.pod("prune-job", binds={})
    pod.raw(
        ["/bin/sh", str(scene.scripts / "snapshot.sh")], scene.pod_env({**rendered.cron_env, "PVC": "orca-state"})
    ).ok()
    calls = [
        line for line in (scene.standin / "kubectl.log").read_text().splitlines() if "patch" in line or "delete" in line
    ]
    # One new snapshot on top of retain+1: the two oldest go, each released to the snapshot controller first.
    first, second = old[0].rsplit("/", 1)[1], old[1].rsplit("/", 1)[1]
    assert calls == [
        f"kubectl patch volumesnapshotcontent snapcontent-{first} --type merge -p "
        '{"spec":{"deletionPolicy":"Delete"}}',
        f"kubectl delete volumesnapshot.snapshot.storage.k8s.io/{first}",
        f"kubectl patch volumesnapshotcontent snapcontent-{second} --type merge -p "
        '{"spec":{"deletionPolicy":"Delete"}}',
        f"kubectl delete volumesnapshot.snapshot.storage.k8s.io/{second}",
    ]
