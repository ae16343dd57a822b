"""Issue 10: no clinic reaches another's server from outside the cluster.

In the input: no two clinics' sourceCidrs overlap unless both name the same sharedNetwork. In what is rendered
(`make checks`): nothing admitted to one clinic's server (Service source ranges, the ingress allow-list,
NetworkPolicy ipBlocks, NSG rules) overlaps a network of another, and VPN ranges that serve no clinic are noted.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orca_test_support import PROJECT_DIR, address_plan, attempt, load_settings, program_config, two_clinics, write_yaml

from orca_platform.model.errors import InputError
from orca_platform.model.network_trust import ClinicNetworks, overlaps
from orca_platform.model.tenants import parse_tenants
from tools.checks import admission, isolation
from tools.checks.run import check_isolation, isolation_facts, read_azure, read_rendered, stack_settings
from tools.offline.engine import Run, stack_config
from tools.offline.synth import write

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the input: a space of networks -------------------------------------------------------------------------------


@st.composite
def clinic_networks(draw: st.DrawFn) -> list[ClinicNetworks]:
    """Clinics with a few ranges each, drawn from a small space so that overlaps are common."""
    n = draw(st.integers(2, 7))
    out = []
    for i in range(n):
        cidrs = set()
        for _ in range(draw(st.integers(1, 3))):
            prefix = draw(st.integers(22, 26))
            base = draw(st.integers(0, 2**10 - 1)) << 6  # inside 10.0.0.0/16
            cidrs.add(str(ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.0.0.0")) + base, prefix), strict=False)))
        shared = draw(st.sampled_from([None, None, "group-a", "group-b"]))
        out.append(ClinicNetworks(f"clinic-{i}", shared, tuple(sorted(cidrs))))
    return out


def expected_pairs(clinics: list[ClinicNetworks]) -> set[tuple[str, str]]:
    """Oracle: every pair of clinics with any two overlapping ranges, unless both name the same shared network."""
    pairs = set()
    for a, b in combinations(clinics, 2):
        if a.shared_network is not None and a.shared_network == b.shared_network:
            continue
        if any(ipaddress.ip_network(x).overlaps(ipaddress.ip_network(y)) for x in a.cidrs for y in b.cidrs):
            pairs.add((b.clinic, a.clinic))  # reported on the later clinic
    return pairs


@FAST
@given(clinic_networks())
def test_every_overlap_between_untrusted_clinics_is_found(clinics: list[ClinicNetworks]) -> None:
    found = {(o.clinic, o.other) for o in overlaps(clinics)}
    assert found == expected_pairs(clinics)
    for o in overlaps(clinics):
        assert ipaddress.ip_network(o.cidr).overlaps(ipaddress.ip_network(o.other_cidr))


@FAST
@given(clinic_networks())
def test_the_tenants_file_refuses_exactly_those_pairs(clinics: list[ClinicNetworks]) -> None:
    doc = {
        "clinics": [
            {"id": c.clinic, "name": c.clinic, "size": "small", "volumeSize": "32Gi", "sourceCidrs": list(c.cidrs)}
            | ({"sharedNetwork": c.shared_network} if c.shared_network else {})
            for c in clinics
        ]
    }
    pairs = expected_pairs(clinics)
    if not pairs:
        assert len(parse_tenants(doc, "tenants.yaml").clinics) == len(clinics)
        return
    with pytest.raises(InputError) as info:
        parse_tenants(doc, "tenants.yaml")
    reported = {(p.clinic, p.message.split("of clinic '")[1].split("'")[0]) for p in info.value.problems}
    assert reported == pairs
    assert all(p.field == "sourceCidrs" and "sharedNetwork" in p.fix for p in info.value.problems)


def overlapping(addr: Any, shared: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
    doc = copy.deepcopy(two_clinics(addr))
    doc["clinics"][1]["sourceCidrs"] = list(doc["clinics"][0]["sourceCidrs"])
    for clinic, name in zip(doc["clinics"], shared, strict=True):
        if name:
            clinic["sharedNetwork"] = name
    return doc


def test_two_clinics_on_one_network_stop_the_program_and_synth(tmp_path: Path) -> None:
    addr = address_plan(load_settings("dev"))
    path = write_yaml(tmp_path / "tenants.same-lan.yaml", overlapping(addr))
    result = attempt("dev", program_config("dev", tenants=path))
    assert isinstance(result.error, pulumi.RunError) and result.registered == []
    message = str(result.error)
    assert "clinic 'beta-geka': field 'sourceCidrs'" in message and "of clinic 'alpha-naika'" in message
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "tools.offline.synth",
            "--stack",
            "dev",
            "--tenants",
            str(path),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2 and "of clinic 'alpha-naika'" in proc.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("shared", "ok"), [(("lan-a", "lan-a"), True), (("lan-a", "lan-b"), False), (("lan-a", None), False)]
)
def test_only_the_same_shared_network_on_both_sides_allows_it(
    tmp_path: Path, shared: tuple[str | None, str | None], ok: bool
) -> None:
    addr = address_plan(load_settings("dev"))
    path = write_yaml(tmp_path / "tenants.group.yaml", overlapping(addr, shared))
    result = attempt("dev", program_config("dev", tenants=path))
    if not ok:
        assert isinstance(result.error, pulumi.RunError) and result.registered == []
        return
    assert result.error is None and result.run is not None
    # Both servers admit the shared LAN, and the outside proof accepts it for a declared group.
    lan = overlapping(addr)["clinics"][0]["sourceCidrs"]
    for cid in ("alpha-naika", "beta-geka"):
        [svc] = [s for s in result.run.k8s("Service", f"orca-{cid}") if s.inputs["spec"]["type"] == "LoadBalancer"]
        assert svc.inputs["spec"]["loadBalancerSourceRanges"] == lan
    folder = tmp_path / "rendered"
    write(result.run, folder)
    config = program_config("dev", tenants=path)
    facts = isolation_facts(result.run, stack_settings(config, "dev"))
    assert facts.shared_networks == {"alpha-naika": "lan-a", "beta-geka": "lan-a"}
    findings, _ = check_isolation(read_rendered(folder), facts, read_azure(folder))
    assert findings == []


# --- what is rendered: the outside half of `make checks` ----------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_dev(dev_run: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outside") / "dev"
    write(dev_run, folder)
    return folder


@pytest.fixture(scope="module")
def dev_facts(dev_run: Run) -> isolation.Facts:
    return isolation_facts(dev_run, stack_settings(stack_config("dev"), "dev"))


def edited(folder: Path, tmp_path: Path, rel: str, change: Any) -> Path:
    """A copy of the rendered objects with one file changed (YAML for Kubernetes, JSON for Azure)."""
    copy_ = tmp_path / "edited"
    if not copy_.exists():
        import shutil

        shutil.copytree(folder, copy_)
    path = copy_ / rel
    text = path.read_text(encoding="utf-8")
    if rel.endswith(".json"):
        doc = json.loads(text)
        change(doc)
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        doc = yaml.safe_load(text)
        change(doc)
        path.write_text(header + yaml.safe_dump(doc), encoding="utf-8")
    return copy_


def outside(folder: Path, facts: isolation.Facts) -> list[str]:
    findings, _ = check_isolation(read_rendered(folder), facts, read_azure(folder))
    return [f for f in findings if f.startswith("isolation (outside)")]


AOBA = "192.168.20.0/24"  # test-aoba's network in tenants.dev.yaml


def set_lb_ranges(doc: dict[str, Any]) -> None:
    doc["spec"]["loadBalancerSourceRanges"] = ["192.168.10.0/24", AOBA]


def set_allow(doc: dict[str, Any]) -> None:
    doc["spec"]["accessControl"]["allow"] = ["192.168.20.128/25"]


def set_ip_block(doc: dict[str, Any]) -> None:
    doc["spec"]["ingress"][1]["from"][0]["ipBlock"]["cidr"] = "192.168.0.0/16"


def drop_policies(doc: dict[str, Any]) -> None:
    del doc["metadata"]["annotations"]["nginx.org/policies"]


def nsg_to_sakura(doc: dict[str, Any]) -> None:
    doc["inputs"]["securityRules"].insert(
        0,
        {
            "name": "allow-aoba-to-sakura",
            "access": "Allow",
            "direction": "Inbound",
            "priority": 120,
            "protocol": "Tcp",
            "sourceAddressPrefix": AOBA,
            "destinationAddressPrefix": "10.40.8.21",
            "destinationPortRange": "8000",
            "sourcePortRange": "*",
        },
    )


LEAKS = {
    "service-source-ranges": ("k8s/orca-test-sakura/Service-orca.yaml", set_lb_ranges, "loadBalancerSourceRanges"),
    "ingress-allow-list": ("k8s/orca-test-sakura/Policy-clinic-sources.yaml", set_allow, "accessControl.allow"),
    "network-policy-ip-block": ("k8s/orca-test-sakura/NetworkPolicy-orca-server.yaml", set_ip_block, "ipBlock"),
    "ingress-without-allow-list": ("k8s/orca-test-sakura/Ingress-orca.yaml", drop_policies, "no nginx.org/policies"),
    "nsg-rule": ("azure/azure-native_network_NetworkSecurityGroup-nsg-ilb.json", nsg_to_sakura, "allow-aoba-to-sakura"),
}


def test_the_rendered_samples_admit_no_other_clinics_network(rendered_dev: Path, dev_facts: isolation.Facts) -> None:
    assert outside(rendered_dev, dev_facts) == []


@pytest.mark.parametrize(("rel", "change", "via"), LEAKS.values(), ids=list(LEAKS))
def test_a_range_of_another_clinic_admitted_anywhere_is_a_finding(
    rendered_dev: Path, dev_facts: isolation.Facts, tmp_path: Path, rel: str, change: Any, via: str
) -> None:
    folder = edited(rendered_dev, tmp_path, rel, change)
    found = outside(folder, dev_facts)
    assert any("clinic test-sakura" in f and via in f and "clinic test-aoba" in f for f in found), found


def test_overlapping_source_cidrs_are_a_finding_unless_the_clinics_share_a_network(
    rendered_dev: Path, dev_facts: isolation.Facts
) -> None:
    """What the issue saw: both clinics admit the same LAN, consistently with a tenants file that allowed it."""
    docs = [r.doc for r in read_rendered(rendered_dev) if not r.type_token.startswith("kubernetes:helm.sh/")]
    azure = read_azure(rendered_dev)
    same = {**dev_facts.source_cidrs, "test-aoba": ["192.168.10.0/24"]}
    for d in docs:
        if d["metadata"].get("namespace") == "orca-test-aoba":
            text = json.dumps(d).replace(AOBA, "192.168.10.0/24")
            d.clear()
            d.update(json.loads(text))
    facts = isolation.Facts(**{**dev_facts.__dict__, "source_cidrs": same})
    report = admission.prove_admission(docs, azure, facts)
    assert any("clinic test-aoba" in f and "clinic test-sakura" in f for f in report.findings), report.findings
    trusted = isolation.Facts(**{**facts.__dict__, "shared_networks": {"test-aoba": "lan", "test-sakura": "lan"}})
    assert admission.prove_admission(docs, azure, trusted).findings == []


def test_vpn_ranges_serving_no_clinic_are_noted_not_failed(rendered_dev: Path, dev_facts: isolation.Facts) -> None:
    findings, lines = check_isolation(read_rendered(rendered_dev), dev_facts, read_azure(rendered_dev))
    assert findings == []
    notes = [line.strip() for line in lines if line.strip().startswith("note: VPN")]
    # tenants.dev.yaml uses 192.168.10-30; the head-office site also routes 40 and 50.
    assert notes == [
        "note: VPN site head-office range 192.168.40.0/24 serves no clinic (no clinic lists it in sourceCidrs)",
        "note: VPN site head-office range 192.168.50.0/24 serves no clinic (no clinic lists it in sourceCidrs)",
    ]


def test_make_checks_fails_on_edited_rendered_objects(rendered_dev: Path, tmp_path: Path) -> None:
    rel, change, _ = LEAKS["service-source-ranges"]
    folder = edited(rendered_dev, tmp_path, rel, change)

    def checks(where: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tools.checks.run",
                "--stacks",
                "dev",
                "--only",
                "isolation",
                "--rendered",
                str(where),
            ],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    bad = checks(folder)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAILED" in bad.stdout and "a network of clinic test-aoba" in bad.stdout
    good = checks(rendered_dev)
    assert good.returncode == 0, good.stdout + good.stderr


def test_an_entry_with_another_mistake_is_still_checked_for_overlaps() -> None:
    """Fix one, meet the next is what the issue complains of: the overlap is reported with the other mistake."""
    doc = {
        "clinics": [
            {"id": "aoba-seikei", "name": "あおば", "size": "medium", "volumeSize": "64Gi", "sourceCidrs": [AOBA]},
            {"id": "midori-kodomo", "name": "みどり", "size": "small", "volumeSize": "32GB", "sourceCidrs": [AOBA]},
        ]
    }
    with pytest.raises(InputError) as info:
        parse_tenants(doc, "tenants.yaml")
    assert [(p.clinic, p.field) for p in info.value.problems] == [
        ("midori-kodomo", "volumeSize"),
        ("midori-kodomo", "sourceCidrs"),
    ]
