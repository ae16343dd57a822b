"""Issue 12 (and issue 11, items 12 and 13): what the rendered stacks do to keep clinic data whole inside the
cluster: a pre-upgrade backup that gates every change of the server's pod template, a verification before every
restore switch, seeding that can never overwrite, disruptions only in the maintenance window, labelled backup Jobs.

Everything here runs the real program under mocks and reads what it registered; the scripts themselves are run
against a real PostgreSQL in tests/test_postgres_scripts.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from orca_test_support import k8s_named

from orca_platform.backup import backup_plan
from orca_platform.model import schedule
from tools.offline.engine import Registered, Run, run_program, stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLINIC = "test-sakura"
NS = f"orca-{CLINIC}"
SUSPENDED = "test-midori"


# Exactly one object of that kind, namespace and name (orca_test_support).
_named = k8s_named


def _pod(obj: Registered) -> dict[str, Any]:
    spec = obj.inputs["spec"]
    if obj.inputs["kind"] == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"]["spec"])
    return dict(spec["template"]["spec"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _jobs(run: Run, ns: str, prefix: str) -> list[Registered]:
    return [j for j in run.k8s("Job", ns) if j.inputs["metadata"]["name"].startswith(prefix)]


def _pre_upgrade(run: Run, ns: str) -> tuple[Registered, Registered]:
    stops = _jobs(run, ns, "orca-pre-upgrade-stop-")
    backups = [j for j in _jobs(run, ns, "orca-pre-upgrade-") if j not in stops]
    assert len(stops) == len(backups) == 1
    return stops[0], backups[0]


def _tenants_with(tmp_path: Path, clinics: dict[str, dict[str, Any]]) -> Path:
    doc = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    for clinic in doc["clinics"]:
        clinic.update(clinics.get(clinic["id"], {}))
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _run_with(tmp_path: Path, clinics: dict[str, dict[str, Any]], **sections: Any) -> Run:
    overrides: dict[str, Any] = {"orca-platform:tenantsFile": str(_tenants_with(tmp_path, clinics))}
    overrides.update({f"orca-platform:{k}": v for k, v in sections.items()})
    return run_program("dev", stack_config("dev", overrides=overrides))


def _key(run: Run, ns: str) -> str:
    return _pre_upgrade(run, ns)[1].inputs["metadata"]["name"].removeprefix("orca-pre-upgrade-")


# --- the pre-upgrade backup -----------------------------------------------------------------------------------------


def test_every_server_waits_for_a_backup_of_its_own_pod_template(stack_run: Run) -> None:
    for cid in stack_run.outputs["clinics"]:
        ns = f"orca-{cid}"
        stop, backup = _pre_upgrade(stack_run, ns)
        deployment = _named(stack_run, "Deployment", ns, "orca")
        key = backup.inputs["metadata"]["name"].removeprefix("orca-pre-upgrade-")
        assert stop.inputs["metadata"]["name"] == f"orca-pre-upgrade-stop-{key}"
        # Pulumi orders stop -> backup -> Deployment, and each is a new resource per key (an untargeted create
        # stops `pulumi up --target <Deployment>`).
        assert stop.urn in backup.dependencies and backup.urn in deployment.dependencies
        assert key in backup.urn and key in stop.urn
        pod = _pod(deployment)
        # The gate comes first: nothing touches the volume before the backup of this template is known to be there.
        # Then the archive settings and the WAL shipper (a native sidecar, issue 24), after the seed.
        names = [c["name"] for c in pod["initContainers"]]
        assert names == ["backup-gate", "seed-state", "archive-settings", "wal-shipper"]
        gate = _env(pod["initContainers"][0])
        assert gate["BACKUP_KEY"] == key and "BACKUP_JOB" in gate
        assert pod["initContainers"][0]["volumeMounts"] == [{"name": "state", "mountPath": "/state", "readOnly": True}]
        # The scale-down by the backup Job is another field manager: Pulumi takes `replicas` back when it rolls.
        assert deployment.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


def test_the_backup_runs_for_suspended_clinics_too_and_stops_the_server_first(dev_run: Run) -> None:
    for cid in (CLINIC, SUSPENDED):
        stop, backup = _pre_upgrade(dev_run, f"orca-{cid}")
        stop_env = _env(_pod(stop)["containers"][0])
        assert stop_env["DEPLOYMENT"] == "orca"
        assert _pod(stop)["containers"][0]["command"][-1].endswith("/pre-upgrade-stop.sh")
        pod = _pod(backup)
        steps = [c["command"][-1].rsplit("/", 1)[-1] for c in [*pod["initContainers"], *pod["containers"]]]
        assert steps == ["pre-upgrade-dump.sh", "pre-upgrade-store.sh", "pre-upgrade-mark.sh"]
        # The dump runs in ORCA's own image, on the volume the server would run on, while it is stopped.
        claim = next(v for v in pod["volumes"] if v["name"] == "state")["persistentVolumeClaim"]["claimName"]
        assert claim == "orca-state"
        assert (
            pod["initContainers"][0]["image"]
            == _pod(_named(dev_run, "Deployment", f"orca-{cid}", "orca"))["containers"][0]["image"]
        )
        mark = _env(pod["containers"][0])
        assert mark["JOB_UID"] == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}}


def test_any_change_to_the_server_pod_is_a_new_backup_but_routine_settings_are_not(
    tmp_path: Path, dev_run: Run
) -> None:
    key = _key(dev_run, NS)
    image = _run_with(tmp_path, {CLINIC: {"image": "orcaplatformdev.azurecr.io/orca/jma-receipt:5.2.0-202701"}})
    raw = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]
    # A longer grace period changes every server's pod (and so every clinic's key).
    grace = _run_with(tmp_path, {}, orca={**raw["orca-platform:orca"], "terminationGraceSeconds": 150})
    generation = _run_with(
        tmp_path, {CLINIC: {"restores": [{"id": "r1", "fromSnapshot": "orca-state-20261120013000"}]}}
    )
    keys = {_key(run, NS) for run in (image, grace, generation)}
    assert key not in keys and len(keys) == 3
    assert _key(grace, "orca-test-aoba") != _key(dev_run, "orca-test-aoba")
    # Other clinics' keys do not move with this clinic's change.
    assert _key(image, "orca-test-aoba") == _key(dev_run, "orca-test-aoba")
    # A new tools image or retention count restarts no server, so it takes no pre-upgrade backup.
    backup = {**raw["orca-platform:backup"], "toolsImage": "orcaplatformdev.azurecr.io/orca/backup-tools:1.1.0"}
    backup["snapshotRetentionCount"] = 9
    routine = _run_with(tmp_path, {}, backup=backup)
    assert _key(routine, NS) == key


def test_a_restore_is_verified_before_the_server_stops_and_switches(tmp_path: Path) -> None:
    restores = [
        {"id": "r1", "fromSnapshot": "orca-state-20261120013000"},
        {"id": "r2", "fromDump": f"daily/{CLINIC}/20261121T163000Z.dump"},
    ]
    for current in (restores[:1], restores):
        run = _run_with(tmp_path, {CLINIC: {"restores": current}})
        rid = current[-1]["id"]
        verify = _named(run, "Job", NS, f"orca-verify-{rid}")
        stop, _ = _pre_upgrade(run, NS)
        deployment = _named(run, "Deployment", NS, "orca")
        # Verification first (the old server still serves), then the stop: a failed check leaves the old volume live.
        assert verify.urn in stop.dependencies and verify.urn in deployment.dependencies
        pod = _pod(verify)
        claim = next(v for v in pod["volumes"] if v["name"] == "state")["persistentVolumeClaim"]["claimName"]
        assert claim == f"orca-state-{rid}"
        container = pod["containers"][0]
        assert container["command"][-1].endswith("/verify.sh")
        assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] == "state")
        env = _env(container)
        if "fromDump" in current[-1]:
            restore = _named(run, "Job", NS, f"orca-restore-{rid}")
            assert restore.urn in verify.dependencies
            assert env["RESTORE_MARKER"] == f".orca-platform-restored-{rid}"
            # The dump restore seeds its new volume on purpose.
            seed = _env(_pod(restore)["initContainers"][0])
            assert seed["EXPECT_DATA"] == "0"
        else:
            assert "RESTORE_MARKER" not in env


def test_a_clinic_that_had_data_never_seeds() -> None:
    """The stack's history feeds the clinic's seed policy: a first update seeds, the next one finds the same live
    claims in the history and refuses to seed them (a claim re-created empty behind the program's back). The server's
    seed and the pre-upgrade dump read the policy from its ConfigMap, so the answer changing touches neither the pod
    template nor the name of its pre-upgrade backup: no restart, no backup for nothing."""
    first = run_program("dev")
    second = run_program("dev", previous_outputs=first.outputs)
    ref = {"configMapKeyRef": {"name": "orca-seed-policy", "key": "EXPECT_DATA"}}
    for run, expected in ((first, "0"), (second, "1")):
        for cid in (CLINIC, "test-aoba"):
            ns = f"orca-{cid}"
            assert _named(run, "ConfigMap", ns, "orca-seed-policy").inputs["data"] == {"EXPECT_DATA": expected}
            seed = _pod(_named(run, "Deployment", ns, "orca"))["initContainers"][1]
            assert seed["name"] == "seed-state" and _env(seed)["EXPECT_DATA"] == ref
            dump = _pod(_pre_upgrade(run, ns)[1])["initContainers"][0]
            assert _env(dump)["EXPECT_DATA"] == ref
    for cid in (CLINIC, "test-aoba"):
        ns = f"orca-{cid}"
        assert (
            _named(first, "Deployment", ns, "orca").inputs["spec"]["template"]
            == (_named(second, "Deployment", ns, "orca").inputs["spec"]["template"])
        )
        assert [j.name for j in _pre_upgrade(first, ns)] == [j.name for j in _pre_upgrade(second, ns)]


def test_a_restores_new_claim_is_not_expected_to_hold_data(tmp_path: Path) -> None:
    """A restore's new generation is filled by its snapshot or its dump: the history knows the claim is new."""
    from orca_platform.inputs import check_stack_inputs
    from orca_platform.safety.history import clinics_with_data, parse_history

    first = run_program("dev")
    previous, _ = parse_history(first.outputs, "outputs")
    doc = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    clinic = next(c for c in doc["clinics"] if c["id"] == CLINIC)
    clinic.setdefault("restores", []).append({"id": "r9", "fromDump": f"daily/{CLINIC}/20261125T163000Z.dump"})
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    config = stack_config("dev", overrides={"orca-platform:tenantsFile": str(tenants)})
    plan = check_stack_inputs(config, "Pulumi.dev.yaml", PROJECT_DIR)
    had = clinics_with_data(previous, plan)
    assert CLINIC not in had and "test-aoba" in had


# --- disruptions ----------------------------------------------------------------------------------------------------


def test_no_voluntary_eviction_of_a_server_and_no_autoscaler_eviction(stack_run: Run) -> None:
    for cid in stack_run.outputs["clinics"]:
        ns = f"orca-{cid}"
        pdb = _named(stack_run, "PodDisruptionBudget", ns, "orca")
        # One replica and minAvailable 1: no eviction is allowed, as maxUnavailable 0 would say, but without the
        # form AKS's upgrade pre-check refuses outright (UnsatisfiablePDB) before any node is cordoned.
        assert pdb.inputs["spec"] == {**pdb.inputs["spec"], "minAvailable": 1}
        assert "maxUnavailable" not in pdb.inputs["spec"]
        deployment = _named(stack_run, "Deployment", ns, "orca")
        assert pdb.inputs["spec"]["selector"] == deployment.inputs["spec"]["selector"]
        annotations = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
        assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
        _, backup = _pre_upgrade(stack_run, ns)
        safe = "cluster-autoscaler.kubernetes.io/safe-to-evict"
        assert backup.inputs["spec"]["template"]["metadata"]["annotations"][safe] == annotations[safe]


# --- snapshots, backup jobs (issue 11: 12, 13) ----------------------------------------------------------------------


def test_snapshot_classes_retain_their_contents(stack_run: Run) -> None:
    classes = stack_run.k8s("VolumeSnapshotClass")
    assert classes and all(c.inputs["deletionPolicy"] == "Retain" for c in classes)


def test_every_backup_job_carries_the_role_label(stack_run: Run) -> None:
    """`kubectl get jobs -A -l orca-platform.io/role=backup` is the documented failure signal."""
    for cid in stack_run.outputs["clinics"]:
        ns = f"orca-{cid}"
        for name in ("orca-snapshots", "orca-dumps"):
            template = _named(stack_run, "CronJob", ns, name).inputs["spec"]["jobTemplate"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            assert labels.get("orca-platform.io/role") == "backup", f"{ns}/{name}: Jobs it creates are unlabelled"
            assert labels.get("orca-platform.io/clinic") == cid
        for job in stack_run.k8s("Job", ns):
            assert job.inputs["metadata"]["labels"]["orca-platform.io/role"] == "backup"


def test_backup_pods_know_the_clinics_time_zone_without_tzdata(dev_run: Run) -> None:
    dumps = _named(dev_run, "CronJob", NS, "orca-dumps")
    assert dumps.inputs["spec"]["timeZone"] == "Asia/Tokyo"
    assert _env(_pod(dumps)["containers"][0])["TZ"] == "JST-9"


@pytest.mark.parametrize(
    ("utc", "local_day"),
    [
        # 01:30 JST on the 1st is 16:30 UTC on the last day of the month before.
        ("2026-11-30T16:30:00Z", "01"),
        ("2026-12-01T16:30:00Z", "02"),
    ],
)
def test_the_monthly_copy_is_decided_in_the_clinics_day(utc: str, local_day: str) -> None:
    rule = schedule.posix_tz("Asia/Tokyo")
    day = subprocess.run(  # noqa: S603 - fixed arguments
        ["date", "-d", utc, "+%d"],  # noqa: S607
        env={"TZ": rule, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert day == local_day
    assert 'if [ "$(date +%d)" = 01 ]' in backup_plan.STORE_DUMP_SCRIPT
    assert "date -u +%d" not in backup_plan.STORE_DUMP_SCRIPT


def test_an_unknown_time_zone_is_refused_before_anything_is_registered() -> None:
    from orca_platform.model.errors import InputError
    from orca_platform.model.settings import parse_settings
    from tests.orca_test_support import raw_settings

    raw = raw_settings("dev")
    raw["orca"] = {**raw["orca"], "timezone": "Asia/Nowhere"}
    with pytest.raises(InputError) as err:
        parse_settings(raw, "Pulumi.dev.yaml")
    assert "orca-platform:orca.timezone" in str(err.value) and "Asia/" in str(err.value)


# --- moving servers inside the maintenance window ---------------------------------------------------------------


def test_the_window_in_utc_and_the_days_it_touches() -> None:
    from orca_platform.model.settings import MaintenanceWindow
    from orca_platform.safety.maintenance import mover_schedule

    # prod: Sunday 02:00 JST is Saturday 17:00 UTC.
    prod = mover_schedule(MaintenanceWindow(day_of_week="Sunday", start_time="02:00", duration_hours=4))
    assert (prod.start, prod.minutes, prod.cron) == (5 * 1440 + 17 * 60, 240, "*/5 * * * 6")
    # Sunday 06:00 JST for 4 h is Saturday 21:00 to Sunday 01:00 UTC: two days in cron, one window.
    late = mover_schedule(MaintenanceWindow(day_of_week="Sunday", start_time="06:00", duration_hours=4))
    assert late.cron == "*/5 * * * 0,6"
    assert late.is_open(5 * 1440 + 21 * 60) and late.is_open(6 * 1440 + 59)
    assert not late.is_open(6 * 1440 + 60) and not late.is_open(5 * 1440 + 20 * 60 + 59)
    # Monday 01:00 at UTC-05:00 is Monday 06:00 UTC; Monday 00:30 UTC+09:00 wraps to Sunday 15:30 UTC.
    west = mover_schedule(MaintenanceWindow(day_of_week="Monday", start_time="01:00", utc_offset="-05:00"))
    assert west.start == 6 * 60
    wrap = mover_schedule(MaintenanceWindow(day_of_week="Monday", start_time="00:30", duration_hours=4))
    assert wrap.start == 6 * 1440 + 15 * 60 + 30 and wrap.cron == "*/5 * * * 0"


MOVER_KUBECTL = """#!/bin/sh
echo "kubectl $*" >> "$LOG"
case "$1 $2" in
  "get nodes") printf 'aks-orca-1\\n' ;;
  "get pod")
    case "$*" in
      *orca-test-sakura*) printf 'orca-aaa=aks-orca-1\\n' ;;
      *orca-test-aoba*) printf 'orca-bbb=aks-orca-2\\n' ;;
    esac ;;
  "delete pod") ;;
  *) exit 1 ;;
esac
"""


@pytest.mark.parametrize(("now", "moved"), [("2026-12-01T14:00:00Z", True), ("2026-12-01T18:00:00Z", False)])
def test_the_mover_deletes_servers_on_cordoned_nodes_only_inside_the_window(
    tmp_path: Path, dev_run: Run, now: str, moved: bool
) -> None:
    """dev's window: Tuesday 22:00 JST for 4 h, 13:00 to 17:00 UTC. 1 Dec 2026 is a Tuesday."""
    cron = _named(dev_run, "CronJob", "orca-system", "orca-maintenance-mover")
    container = _pod(cron)["containers"][0]
    script = _named(dev_run, "ConfigMap", "orca-system", "orca-maintenance-mover").inputs["data"]["move.sh"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, text in (
        ("kubectl", MOVER_KUBECTL),
        ("date", '#!/bin/sh\nexec /bin/date -d "$FAKE_NOW" "$@"\n'),
    ):
        (bin_dir / tool).write_text(text, encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {**_env(container), "PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log), "FAKE_NOW": now}
    result = subprocess.run(  # noqa: S603 - the rendered script
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    deletes = [line for line in log.read_text().splitlines() if "delete" in line] if log.exists() else []
    if moved:
        assert deletes == ["kubectl delete pod -n orca-test-sakura orca-aaa --wait=false"], result.stdout
    else:
        assert deletes == [] and "outside the maintenance window" in result.stdout


def test_the_mover_may_delete_pods_in_clinic_namespaces_only(dev_run: Run) -> None:
    bindings = [b for b in dev_run.k8s("RoleBinding") if b.inputs["metadata"]["name"] == "orca-maintenance-mover"]
    assert {b.inputs["metadata"]["namespace"] for b in bindings} == {f"orca-{c}" for c in dev_run.outputs["clinics"]}
    pods_role = next(
        r for r in dev_run.k8s("ClusterRole") if r.inputs["metadata"]["name"] == "orca-maintenance-mover-pods"
    )
    assert pods_role.inputs["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}]
    crbs = [b for b in dev_run.k8s("ClusterRoleBinding") if b.inputs["roleRef"]["name"].startswith("orca-maintenance")]
    assert [b.inputs["roleRef"]["name"] for b in crbs] == ["orca-maintenance-mover-nodes"]


# --- prod images by digest -------------------------------------------------------------------------------------


def test_prod_refuses_images_pinned_by_tag_only_before_anything_is_registered(tmp_path: Path) -> None:
    from tests.orca_test_support import attempt, program_config, raw_settings

    raw = raw_settings("prod")
    tagged = raw["orca"]["image"].split("@", 1)[0]
    doc = yaml.safe_load((PROJECT_DIR / "tenants.yaml").read_text(encoding="utf-8"))
    first = doc["clinics"][0]
    first["image"] = tagged
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = attempt("prod", program_config("prod", tenants=tenants, orca={**raw["orca"], "image": tagged}))
    assert result.error is not None and result.registered == []
    message = str(result.error)
    # One shared prod floor (orca_platform/safety/prod_floors.py) says it, for the stack's image and the clinic's.
    assert "Pulumi.prod.yaml: field 'orca-platform:orca.image'" in message and "by digest" in message
    assert f"clinic '{first['id']}': field 'image'" in message
    assert "@sha256:" in message and "backup.toolsImage" not in message
    # dev may run tags (an operator trying a build).
    assert "@sha256:" not in raw_settings("dev")["orca"]["image"]


def test_a_clinic_cannot_take_the_platforms_own_namespace() -> None:
    from orca_platform.model.catalogue import load_catalogue
    from orca_platform.model.errors import InputError
    from orca_platform.model.tenants import parse_tenants
    from orca_platform.plan.stack_plan import plan_stack
    from tests.orca_test_support import load_settings

    doc = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    doc["clinics"][0]["id"] = "system"
    tenants = parse_tenants(doc, "tenants.dev.yaml")
    with pytest.raises(InputError) as err:
        plan_stack(load_settings("dev"), tenants, load_catalogue(), "tenants.dev.yaml", "Pulumi.dev.yaml")
    assert "clinic 'system': field 'id': gives namespace orca-system" in str(err.value)
