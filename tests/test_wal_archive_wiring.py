"""Issue 24 under the program's mocks: every clinic of the prod sample archives its WAL continuously.

The real __main__.py runs offline (tools.offline.run_program, preview=False, outputs awaited); these tests read what
it registered: the server's archive settings in the clinic's `orca-pitr` ConfigMap, the native sidecar that ships
them with the clinic's identity, the webhook's skip list, the pod's egress to the backup endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components import wal_archive
from orca_platform.backup import pitr
from orca_platform.conventions import WORKLOAD_IDENTITY_SKIP_CONTAINERS, WORKLOAD_IDENTITY_USE_LABEL
from orca_platform.model.errors import InputError
from orca_platform.model.tenants import parse_tenants
from tests.orca_test_support import PROJECT_DIR, k8s_named, load_settings
from tools.offline.engine import Run, reveal, run_program, stack_config


@pytest.fixture(scope="module")
def prod() -> Run:
    return run_program("prod")


def _clinic_namespaces(run: Run) -> list[str]:
    return sorted(
        r.inputs["metadata"]["namespace"] for r in run.k8s("Deployment", None) if r.inputs["metadata"]["name"] == "orca"
    )


def _pod(run: Run, ns: str) -> dict[str, Any]:
    spec: dict[str, Any] = k8s_named(run, "Deployment", ns, "orca").inputs["spec"]["template"]
    return spec


def test_every_prod_clinic_archives_into_its_spool_within_a_minute(prod: Run) -> None:
    namespaces = _clinic_namespaces(prod)
    assert len(namespaces) >= 2
    for ns in namespaces:
        data = reveal(k8s_named(prod, "ConfigMap", ns, wal_archive.CONFIG_MAP).inputs["data"])
        conf = dict(line.split(" = ", 1) for line in data["archive.conf"].splitlines() if " = " in line)
        assert conf["archive_mode"] == "on", ns
        assert 0 < int(conf["archive_timeout"]) <= 60, ns
        assert pitr.SPOOL_COMMAND in conf["archive_command"] and "%p" in conf["archive_command"], ns
        assert data["spool-wal.sh"] == pitr.spool_script(pitr.PitrSettings(load_settings("prod").orca.postgres_version))
        clinic = ns.removeprefix("orca-")
        assert data[wal_archive.ARCHIVE_URL_KEY].endswith(f"/{wal_archive.ARCHIVE_CONTAINER}/{clinic}")


def test_the_shipper_is_a_native_sidecar_and_alone_gets_the_clinic_identity(prod: Run) -> None:
    uid = load_settings("prod").orca.postgres_uid
    for ns in _clinic_namespaces(prod):
        template = _pod(prod, ns)
        spec = template["spec"]
        inits = {c["name"]: c for c in spec["initContainers"]}
        order = [c["name"] for c in spec["initContainers"]]
        assert order.index("seed-state") < order.index(wal_archive.SETTINGS) < order.index(wal_archive.SHIPPER)
        shipper = inits[wal_archive.SHIPPER]
        assert shipper["restartPolicy"] == "Always", "a native sidecar: it outlives PostgreSQL's shutdown"
        assert shipper["securityContext"]["runAsUser"] == uid
        env = {e["name"]: e.get("value") for e in shipper["env"]}
        assert env["AZURE_AUTH_MODE"] == "default" and env["SERVER_NAME"].startswith("orca-state")
        assert shipper["resources"]["requests"] == wal_archive.SHIPPER_REQUESTS
        assert template["metadata"]["labels"][WORKLOAD_IDENTITY_USE_LABEL] == "true"
        skipped = template["metadata"]["annotations"][WORKLOAD_IDENTITY_SKIP_CONTAINERS].split(";")
        every = {c["name"] for c in [*spec["initContainers"], *spec["containers"]]}
        assert "orca" in skipped
        assert every - set(skipped) == {wal_archive.SHIPPER}, "only the shipper gets a token"
        assert spec["automountServiceAccountToken"] is False


def test_the_server_pod_reaches_the_backup_endpoint_on_443_only(prod: Run) -> None:
    endpoints = load_settings("prod").network.private_endpoint_subnet_cidr
    for ns in _clinic_namespaces(prod):
        policy = k8s_named(prod, "NetworkPolicy", ns, "orca-server").inputs["spec"]
        rules = [r for r in policy["egress"] if any(p.get("ipBlock", {}).get("cidr") == endpoints for p in r["to"])]
        assert len(rules) == 1
        assert rules[0]["ports"] == [{"protocol": "TCP", "port": 443}]


# --- a restore to a point in time ---------------------------------------------------------------------------------

SOURCE = "tenants.yaml"


def _clinic(**fields: Any) -> dict[str, Any]:
    doc = {"id": "sakura-naika", "name": "さくら内科", "size": "small", "volumeSize": "32Gi"}
    doc["sourceCidrs"] = ["192.168.10.0/24"]
    doc.update(fields)
    return {"clinics": [doc]}


@pytest.mark.parametrize(
    ("restore", "says"),
    [
        ({"id": "r1", "fromPointInTime": "2026-11-20T10:15:00"}, "no UTC offset"),
        ({"id": "r1", "fromPointInTime": "2026-11-20"}, "no UTC offset"),
        ({"id": "r1", "fromPointInTime": "soon"}, "not an RFC 3339 time"),
        ({"id": "r1", "fromPointInTime": "2999-01-01T00:00:00+09:00"}, "in the future"),
        (
            {"id": "r1", "fromPointInTime": "2026-11-20T10:15:00+09:00", "fromDump": "daily/sakura-naika/x.dump"},
            "exactly one of",
        ),
        (
            {"id": "r1", "fromPointInTime": "2026-11-20T10:15:00+09:00", "fromGeneration": "orca-state-r9"},
            "not an earlier volume",
        ),
        ({"id": "r1", "fromSnapshot": "orca-state-20261120013000", "fromGeneration": "orca-state"}, "fromGeneration"),
    ],
)
def test_a_point_in_time_restore_is_refused_naming_the_file_clinic_and_field(
    restore: dict[str, Any], says: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_tenants(_clinic(restores=[restore]), SOURCE)
    text = "\n".join(str(p) for p in info.value.problems)
    assert SOURCE in text and "sakura-naika" in text and "restores" in text, text
    assert says in text, text


def test_a_point_in_time_restore_renders_a_new_generation_stopping_at_the_target(tmp_path: Path) -> None:
    clinic, ns = "test-sakura", "orca-test-sakura"
    doc = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    for c in doc["clinics"]:
        if c["id"] == clinic:
            c["restores"] = [{"id": "r1", "fromPointInTime": "2026-11-20T10:15:00+09:00"}]
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    run = run_program("dev", stack_config("dev", overrides={"orca-platform:tenantsFile": str(tenants)}))
    job = k8s_named(run, "Job", ns, "orca-restore-r1").inputs["spec"]["template"]["spec"]
    inits = {c["name"]: c for c in job["initContainers"]}
    assert [c["name"] for c in job["initContainers"]] == ["seed-state", "restore-base", "wal-server"]
    assert inits["wal-server"]["restartPolicy"] == "Always"
    (recover,) = job["containers"]
    env = {e["name"]: e.get("value") for e in recover["env"]}
    # 10:15 in Japan is 01:15 UTC: the scripts get UTC with a numeric offset (recovery_target_time refuses 'Z').
    assert env["TARGET_TIME"] == "2026-11-20 01:15:00.000000+00"
    assert env["SOURCE_SERVER"] == "orca-state"
    base_env = {e["name"]: e.get("value") for e in inits["restore-base"]["env"]}
    assert base_env["TARGET_TIME"] == env["TARGET_TIME"]
    assert base_env["SOURCE_URL"].endswith(f"/{wal_archive.ARCHIVE_CONTAINER}/{clinic}")
    assert inits["restore-base"]["securityContext"]["runAsUser"] == load_settings("dev").orca.postgres_uid
    claim = next(v for v in job["volumes"] if v["name"] == "state")["persistentVolumeClaim"]["claimName"]
    assert claim == "orca-state-r1", "a new volume generation"
    verify = k8s_named(run, "Job", ns, "orca-verify-r1").inputs["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in verify["env"]}["RESTORE_MARKER"] == ".orca-platform-restored-r1"
    # The server then runs on the new generation and archives under its own prefix.
    server = k8s_named(run, "Deployment", ns, "orca").inputs["spec"]["template"]["spec"]
    shipper = next(c for c in server["initContainers"] if c["name"] == wal_archive.SHIPPER)
    assert {e["name"]: e.get("value") for e in shipper["env"]}["SERVER_NAME"] == "orca-state-r1"


def test_archiving_is_watched_by_what_matters_from_the_shipper_s_metrics(prod: Run) -> None:
    from orca_platform.conventions import PROMETHEUS_PORT, PROMETHEUS_SCRAPE, WAL_METRICS_PORT
    from orca_platform.monitoring import alerts

    rules = {r.alert: r for r in alerts.wal_archive_rules()}
    assert set(rules) == {"ClinicWalNotArchived", "ClinicWalArchiveFailing", "ClinicWalSpoolNearCap"}
    # Not archived within archive_timeout + 5 minutes, at any hour (no opening-hours filter).
    assert f"> {pitr.PitrSettings('15').archive_timeout_seconds + 300}" in rules["ClinicWalNotArchived"].expr
    assert (
        pitr.METRIC_ARCHIVED_UNTIL in rules["ClinicWalNotArchived"].expr
        and "hour(" not in rules["ClinicWalNotArchived"].expr
    )
    assert pitr.METRIC_ARCHIVE_FAILURES in rules["ClinicWalArchiveFailing"].expr
    assert pitr.METRIC_GAP_OPEN in rules["ClinicWalSpoolNearCap"].expr
    for ns in _clinic_namespaces(prod):
        template = _pod(prod, ns)
        annotations = template["metadata"]["annotations"]
        assert annotations[PROMETHEUS_SCRAPE] == "true" and annotations[PROMETHEUS_PORT] == str(WAL_METRICS_PORT)
        shipper = next(c for c in template["spec"]["initContainers"] if c["name"] == wal_archive.SHIPPER)
        assert shipper["ports"][0]["containerPort"] == WAL_METRICS_PORT
