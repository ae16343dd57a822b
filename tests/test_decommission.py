"""`make decommission` (issue 16, item 5): the runbook names the clinic's real URNs, its ranges and a lasting dump."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from orca_test_support import raw_settings, settings_from

from orca_platform.backup import backup_plan
from orca_platform.model.tenants import load_tenants
from tools.deploy import decommission
from tools.offline.engine import PROJECT_DIR, Run
from tools.offline.engine_urns import engine_urns
from tools.offline.stack_export import build_export

UNPROTECT = re.compile(r"pulumi state unprotect --stack (\S+) (.+)$", re.MULTILINE)


def tenants_of(stack: str) -> Any:
    name = raw_settings(stack)["tenantsFile"]
    return load_tenants(PROJECT_DIR / name, name)


def unprotected(text: str, stack: str) -> set[str]:
    found = UNPROTECT.findall(text)
    assert {s for s, _ in found} == {stack}
    return {shlex.split(urn)[0] for _, urn in found}


def program_data(run: Run, clinic: str) -> set[str]:
    """The engine URNs of what the program protects for this clinic: its namespace, claims, Secret, passwords."""
    urns = engine_urns(run)
    return {urns[r.urn] for r in run.resources if r.protect and urns[r.urn].split("::")[-1].startswith(f"{clinic}-")}


def test_each_clinic_of_each_stack_gets_its_own_data_urns(stack_run: Run) -> None:
    tenants = tenants_of(stack_run.stack)
    settings = settings_from(raw_settings(stack_run.stack), stack_run.stack)
    everything = set(engine_urns(stack_run).values())
    for clinic in tenants.clinics:
        c = decommission.from_run(stack_run, clinic.id, tenants)
        text = decommission.runbook(c, stack_run.stack, settings, tenants, "tenants.yaml")
        urns = unprotected(text, stack_run.stack)
        assert urns == program_data(stack_run, clinic.id)
        assert urns <= everything  # they exist in the stack, under the engine's URNs
        assert len(urns) >= 5  # a namespace, a claim, a Secret and two passwords at least
        assert f"monthly/{clinic.id}/<stamp>-final.dump" in text


def test_make_decommission_on_a_sample_stack(capsys: pytest.CaptureFixture[str], dev_run: Run) -> None:
    assert decommission.main(["--clinic", "test-aoba", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert unprotected(out, "dev") == program_data(dev_run, "test-aoba")
    steps = [int(m) for m in re.findall(r"^(\d+)\. ", out, re.MULTILINE)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 7
    # The order that keeps the data: dump, mapping recorded, unprotect, then retire.
    order = [out.index(s) for s in ("--final-dump-job", "volumes.txt", "pulumi state unprotect", "retiredClinicIds")]
    assert order == sorted(order)
    assert "192.168.20.0/24: remove 192.168.20.0/24 from addressSpaces of site 'test-clinic-lan'" in out


@pytest.mark.parametrize(
    ("clinic", "says"),
    [
        ("no-such-clinic", "is not deployed by stack dev (its clinics: test-aoba, test-midori, test-sakura)"),
        ("test-old-clinic", "already retired"),
    ],
)
def test_an_unknown_or_retired_clinic_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], clinic: str, says: str
) -> None:
    assert decommission.main(["--clinic", clinic, "--stack", "dev"]) == 2
    assert says in capsys.readouterr().err


def test_the_urns_of_a_stack_export_are_used_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dev_run: Run
) -> None:
    export = build_export(dev_run)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    assert decommission.main(["--clinic", "test-sakura", "--stack", "dev", "--export", str(path)]) == 0
    out = capsys.readouterr().out
    in_export = {
        r["urn"]
        for r in export["deployment"]["resources"]
        if r.get("protect") and r["urn"].split("::")[-1].startswith("test-sakura-")
    }
    assert unprotected(out, "dev") == in_export
    assert decommission.main(["--clinic", "nobody", "--export", str(path)]) == 2


def test_a_suspended_clinic_is_resumed_for_its_final_dump(dev_run: Run) -> None:
    tenants = tenants_of("dev")
    c = decommission.from_run(dev_run, "test-midori", tenants)
    assert c.state == "suspended"
    text = decommission.runbook(c, "dev", settings_from(raw_settings("dev")), tenants, "tenants.dev.yaml")
    assert "no server runs to dump" in text


# --- the VPN ranges --------------------------------------------------------------------------------------------------


def _ranges(sites: list[dict[str, Any]], clinic: str = "test-aoba") -> list[str]:
    raw = raw_settings("dev")
    raw["network"]["vpn"]["sites"] = sites
    tenants = tenants_of("dev")
    entry = next(c for c in tenants.clinics if c.id == clinic)
    c = decommission.Clinic(clinic, "", "active", tuple(entry.source_cidrs), (), ())
    return decommission.range_steps(c, settings_from(raw), tenants, "Pulumi.dev.yaml")


def test_a_sites_only_range_removes_the_site() -> None:
    sites = [
        {"name": "aoba", "gatewayIp": "203.0.113.10", "addressSpaces": ["192.168.20.0/24"]},
        {"name": "rest", "gatewayIp": "198.51.100.20", "addressSpaces": ["192.168.10.0/24", "192.168.30.0/24"]},
    ]
    (line,) = _ranges(sites)
    assert "the only range of site 'aoba': remove the site" in line


def test_a_range_shared_with_another_clinic_is_kept() -> None:
    sites = [{"name": "all", "gatewayIp": "203.0.113.10", "addressSpaces": ["192.168.0.0/16"]}]
    (line,) = _ranges(sites)
    assert "also carries test-midori, test-sakura: keep it" in line


# --- the final dump Job ----------------------------------------------------------------------------------------------


def _manual_job(run: Run, clinic: str) -> dict[str, Any]:
    """What `kubectl create job --from=cronjob/orca-dumps --dry-run=client -o json` prints for this clinic."""
    cron = next(r for r in run.k8s("CronJob", f"orca-{clinic}") if r.inputs["metadata"]["name"] == "orca-dumps")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "orca-final-dump",
            "namespace": f"orca-{clinic}",
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": json.loads(json.dumps(cron.inputs["spec"]["jobTemplate"]["spec"])),
    }


def test_the_final_dump_job_also_writes_to_monthly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dev_run: Run
) -> None:
    job = _manual_job(dev_run, "test-sakura")
    original = job["spec"]["template"]["spec"]["containers"][0]["command"]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job)))
    assert decommission.main(["--final-dump-job"]) == 0
    out = json.loads(capsys.readouterr().out)
    pod = out["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    shell, flag, script = container["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    lines = script.splitlines()
    # The CronJob's own dump runs first (set -eu: nothing is copied unless it succeeded), then the monthly copy.
    assert lines[0] == "set -eu" and lines[1] == " ".join(original)
    copy = next(line for line in lines if line.startswith("azcopy copy"))
    assert copy.startswith(f'azcopy copy {decommission.DUMP_FILE} "$BLOB_URL/monthly/$CLINIC/')
    assert copy.endswith('-final.dump" --overwrite=false')
    assert {"name": "DUMP_SUFFIX", "value": "-final"} in container["env"]
    # The same identity, the same service account: it may write only under the clinic's own prefix.
    assert pod["serviceAccountName"] == backup_plan.SERVICE_ACCOUNT
    if shutil.which("sh"):
        subprocess.run(["sh", "-n", "-c", script], check=True)  # noqa: S603, S607 - a syntax check of our own text


def test_the_dump_script_leaves_the_file_the_final_copy_reads(dev_run: Run) -> None:
    """DUMP_FILE and DUMP_SUFFIX are the dump scripts': the dump lands in $WORK/orca.dump, $WORK is DUMP_FILE's
    folder in the CronJob's container, and with a suffix the store step writes daily/ only, never monthly/ twice."""
    assert '> "$WORK/orca.dump"' in backup_plan.DUMP_SCRIPT
    assert 'archive="$WORK/orca.dump"' in backup_plan.STORE_DUMP_SCRIPT
    job = _manual_job(dev_run, "test-sakura")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    assert f"{env['WORK']}/orca.dump" == decommission.DUMP_FILE
    store = backup_plan.STORE_DUMP_SCRIPT
    assert "$BLOB_URL/daily/$CLINIC/$stamp$suffix.dump" in store
    assert '[ -z "$suffix" ]' in store


def test_a_job_that_is_not_a_dump_is_refused(monkeypatch: pytest.MonkeyPatch, dev_run: Run) -> None:
    job = _manual_job(dev_run, "test-sakura")
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["/bin/sh", "/scripts/snapshot.sh"]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job)))
    assert decommission.main(["--final-dump-job"]) == 2
