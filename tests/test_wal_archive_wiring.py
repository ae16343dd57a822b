"""Issue 24 under the program's mocks: every clinic of the prod sample archives its WAL continuously.

The real __main__.py runs offline (tools.offline.run_program, preview=False, outputs awaited); these tests read what
it registered: the server's archive settings in the clinic's `orca-pitr` ConfigMap, the native sidecar that ships
them with the clinic's identity, the webhook's skip list, the pod's egress to the backup endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import wal_archive
from orca_platform.backup import pitr
from orca_platform.conventions import WORKLOAD_IDENTITY_SKIP_CONTAINERS, WORKLOAD_IDENTITY_USE_LABEL
from tests.orca_test_support import k8s_named, load_settings
from tools.offline import Run, reveal, run_program


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
        assert env["AZURE_CREDENTIAL"] == "default" and env["SERVER_NAME"].startswith("orca-state")
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
