"""Issue 2: bad tenants files stop the program with a message naming the file, the clinic and the field, before any
resource is registered; `make synth` turns that into exit status 2, and writes files on good input."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from orca_test_support import (
    PROJECT_DIR,
    AddressPlan,
    address_plan,
    attempt,
    load_settings,
    program_config,
    stack_file,
    two_clinics,
    write_yaml,
)

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.errors import InputError, Problem
from orca_platform.model.tenants import load_tenants
from orca_platform.plan.stack_plan import plan_stack
from tools.offline.engine import Run, reveal

Doc = dict[str, Any]


@dataclass(frozen=True)
class Bad:
    """A tenants file with one mistake, and where the message must point."""

    mutate: Callable[[Doc, AddressPlan], None]
    clinic: str
    field: str
    says: str


def _set(index: int, key: str, value: Callable[[AddressPlan], Any]) -> Callable[[Doc, AddressPlan], None]:
    def mutate(doc: Doc, addr: AddressPlan) -> None:
        doc["clinics"][index][key] = value(addr)

    return mutate


def _drop(index: int, key: str) -> Callable[[Doc, AddressPlan], None]:
    def mutate(doc: Doc, addr: AddressPlan) -> None:
        del doc["clinics"][index][key]

    return mutate


BAD_CLINICS: dict[str, Any] = {
    "duplicate-id": Bad(_set(1, "id", lambda a: "alpha-naika"), "alpha-naika", "id", "same id as entry #1"),
    "duplicate-ip": Bad(_set(1, "privateIp", lambda a: a.free_ips[0]), "beta-geka", "privateIp", "already used"),
    "duplicate-hostname": Bad(
        _set(0, "hostname", lambda a: f"beta.{a.zone}"), "beta-geka", "hostname", "already used by clinic"
    ),
    "ip-outside-ilb-subnet": Bad(
        _set(1, "privateIp", lambda a: a.outside_ilb_ip), "beta-geka", "privateIp", "not an assignable address"
    ),
    "ip-reserved-by-azure": Bad(
        _set(1, "privateIp", lambda a: a.reserved_ilb_ip), "beta-geka", "privateIp", "not an assignable address"
    ),
    "ip-of-the-ingress": Bad(_set(1, "privateIp", lambda a: a.ingress_ip), "beta-geka", "privateIp", "ingress"),
    "unknown-size-class": Bad(_set(1, "size", lambda a: "xlarge"), "beta-geka", "size", "unknown size class"),
    "gigabytes-not-gibibytes": Bad(_set(1, "volumeSize", lambda a: "10GB"), "beta-geka", "volumeSize", "32Gi"),
    "unknown-key": Bad(_set(1, "volumesize", lambda a: "64Gi"), "beta-geka", "volumesize", "not a known field"),
    "missing-field": Bad(_drop(1, "sourceCidrs"), "beta-geka", "sourceCidrs", "required"),
    "retired-id-reused": Bad(_set(1, "id", lambda a: "gamma-old"), "gamma-old", "id", "retired"),
    "hostname-outside-zone": Bad(
        _set(1, "hostname", lambda a: "beta.example.com"), "beta-geka", "hostname", "outside the private DNS zone"
    ),
    "source-not-over-vpn": Bad(
        _set(1, "sourceCidrs", lambda a: [a.unreachable_cidr]), "beta-geka", "sourceCidrs", "VPN"
    ),
    "smb-storage": Bad(_set(1, "storage", lambda a: "azure-files-smb"), "beta-geka", "storage", "hard link"),
    "id-not-a-dns-label": Bad(_set(1, "id", lambda a: "Beta_Geka"), "Beta_Geka", "id", "DNS label"),
    "latest-image": Bad(_set(1, "image", lambda a: "example.azurecr.io/orca:latest"), "beta-geka", "image", "latest"),
    "hostname-equals-another-clinics-default-fqdn": Bad(
        _set(1, "hostname", lambda a: f"alpha-naika.{a.zone}"), "beta-geka", "hostname", "already used"
    ),
    "namespace-of-the-ingress-controller": Bad(_set(1, "id", lambda a: "ingress"), "ingress", "id", "ingress"),
    "id-with-trailing-newline": Bad(_set(1, "id", lambda a: "beta-geka\n"), "beta-geka\n", "id", "DNS label"),
}


BAD_FILES: dict[str, tuple[str, str]] = {
    "yaml-syntax-error": ("clinics:\n  - id: alpha-naika\n    name: [unclosed\n", "YAML syntax error at line"),
    "empty-file": ("", "empty"),
    "only-comments": ("# every clinic was removed by mistake\n", "empty"),
    "duplicate-yaml-key": (
        "clinics:\n  - id: alpha-naika\n    id: beta-geka\n    name: x\n",
        "appears twice",
    ),
    "top-level-list": ("- id: alpha-naika\n", "mapping"),
    "no-clinics": ("clinics: []\n", "clinics"),
}


@pytest.fixture(scope="module")
def dev_addresses() -> AddressPlan:
    return address_plan(load_settings("dev"))


def bad_tenants(tmp_path: Path, bad: Bad, addr: AddressPlan) -> Path:
    doc = copy.deepcopy(two_clinics(addr))
    bad.mutate(doc, addr)
    return write_yaml(tmp_path / "tenants.bad.yaml", doc)


def pure_problems(path: Path) -> list[Problem]:
    """Load and plan without Pulumi, as the program does; return the problems it raises."""
    settings = load_settings("dev")
    with pytest.raises(InputError) as info:
        tenants = load_tenants(path, str(path))
        plan_stack(settings, tenants, load_catalogue(), str(path), stack_file("dev"))
    return info.value.problems


def assert_stopped_before_anything(path: Path, *fragments: str) -> str:
    result = attempt("dev", program_config("dev", tenants=path))
    assert isinstance(result.error, pulumi.RunError), f"expected RunError, got {result.error!r}"
    assert result.registered == [], f"registered before the error: {[r.urn for r in result.registered]}"
    message = str(result.error)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --- the valid base really is valid (otherwise every case below would pass for the wrong reason) --------------------


def test_the_base_tenants_file_is_accepted(tmp_path: Path, dev_addresses: AddressPlan) -> None:
    path = write_yaml(tmp_path / "tenants.good.yaml", two_clinics(dev_addresses))
    result = attempt("dev", program_config("dev", tenants=path))
    assert result.error is None
    assert isinstance(result.run, Run)
    assert set(result.run.outputs["clinics"]) == {"alpha-naika", "beta-geka"}


# --- one mistake per clinic field -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_CLINICS.values(), ids=list(BAD_CLINICS))
def test_bad_clinic_stops_the_program_naming_file_clinic_and_field(
    tmp_path: Path, dev_addresses: AddressPlan, bad: Bad
) -> None:
    path = bad_tenants(tmp_path, bad, dev_addresses)
    assert_stopped_before_anything(path, f"clinic '{bad.clinic}'", f"field '{bad.field}'", bad.says)


@pytest.mark.parametrize("bad", BAD_CLINICS.values(), ids=list(BAD_CLINICS))
def test_bad_clinic_is_an_input_error_in_the_pure_core(tmp_path: Path, dev_addresses: AddressPlan, bad: Bad) -> None:
    path = bad_tenants(tmp_path, bad, dev_addresses)
    problems = pure_problems(path)
    assert any(
        p.source == str(path) and p.clinic == bad.clinic and p.field == bad.field and bad.says in p.message
        for p in problems
    ), problems


@pytest.mark.parametrize(("text", "says"), BAD_FILES.values(), ids=list(BAD_FILES))
def test_bad_file_stops_the_program_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "tenants.broken.yaml"
    path.write_text(text, encoding="utf-8")
    assert_stopped_before_anything(path, says)
    assert any(says in str(p) and p.source == str(path) for p in pure_problems(path))


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no-such-tenants.yaml"
    assert_stopped_before_anything(path, "file not found")


def test_every_problem_is_reported_at_once(tmp_path: Path, dev_addresses: AddressPlan) -> None:
    doc = copy.deepcopy(two_clinics(dev_addresses))
    doc["clinics"][0]["privateIp"] = dev_addresses.outside_ilb_ip
    doc["clinics"][1]["hostname"] = "beta.example.com"
    path = write_yaml(tmp_path / "tenants.two-mistakes.yaml", doc)
    message = assert_stopped_before_anything(path, "2 problems")
    assert "clinic 'alpha-naika': field 'privateIp'" in message
    assert "clinic 'beta-geka': field 'hostname'" in message


def test_the_offending_value_is_shown_once(tmp_path: Path, dev_addresses: AddressPlan) -> None:
    bad = BAD_CLINICS["gigabytes-not-gibibytes"]
    message = assert_stopped_before_anything(bad_tenants(tmp_path, bad, dev_addresses), "'10GB'")
    assert message.count("'10GB'") == 1, message


# --- make synth -----------------------------------------------------------------------------------------------------


def synth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "tools.offline.synth", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_synth_exits_2_with_the_message_on_bad_input(tmp_path: Path, dev_addresses: AddressPlan) -> None:
    path = bad_tenants(tmp_path, BAD_CLINICS["ip-outside-ilb-subnet"], dev_addresses)
    out = tmp_path / "out"
    proc = synth("--stack", "dev", "--tenants", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr
    assert "clinic 'beta-geka'" in proc.stderr and "field 'privateIp'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "nothing may be written on bad input"


def test_synth_writes_manifests_on_good_input(tmp_path: Path, dev_run: Run) -> None:
    out = tmp_path / "out"
    proc = synth("--stack", "dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for cid in dev_run.outputs["clinics"]:
        for kind in ("Deployment-orca", "Service-orca", "Ingress-orca", "PersistentVolumeClaim-orca-state"):
            assert (out / "k8s" / f"orca-{cid}" / f"{kind}.yaml").is_file(), f"{cid}: {kind} not written"
    outputs = json.loads((out / "stack-outputs.json").read_text(encoding="utf-8"))
    assert set(outputs["clinics"]) == set(dev_run.outputs["clinics"])
    # The same program, the same mock names: no generated password (the clinics' and the VPN keys) reaches a file.
    generated = dev_run.by_type("random:index/randomPassword:RandomPassword")
    passwords = [reveal(r.outputs["result"]) for r in generated]
    assert len(passwords) == 2 * len(dev_run.outputs["clinics"]) + 2  # two per clinic, one per VPN site
    for file in out.rglob("*"):
        if file.is_file():
            text = file.read_text(encoding="utf-8")
            assert not [p for p in passwords if p in text], f"{file} contains a clinic password"
