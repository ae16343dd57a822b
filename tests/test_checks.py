"""Issue 5: the offline checks. Each check passes the sample stacks and catches a deliberately broken object; the
NetworkPolicy evaluator is also tested on small hand-made cases of the API's semantics."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.checks import isolation, kube_schema, netpol, scan
from tools.checks.netpol import Cluster, IpSet, Namespace, Pod, Policy, Requirement, Selector
from tools.checks.run import Rendered, isolation_facts, read_rendered, stack_settings
from tools.offline.engine import PROJECT_DIR, Run, stack_config
from tools.offline.synth import write

SCAN_PYTHON = PROJECT_DIR / ".venv-scan" / "bin" / "python"
VERSION = "1.34"

# --- fixtures: the dev stack as rendered -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_rendered(dev_run: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Rendered]]:
    folder = tmp_path_factory.mktemp("checks") / "dev"
    write(dev_run, folder)
    return folder, read_rendered(folder)


@pytest.fixture(scope="module")
def dev_facts(dev_run: Run) -> isolation.Facts:
    return isolation_facts(dev_run, stack_settings(stack_config("dev"), "dev"))


def _find(objects: list[Rendered], kind: str, namespace: str | None = None) -> Rendered:
    for o in objects:
        if o.type_token.endswith(":" + kind) and (namespace is None or o.doc["metadata"].get("namespace") == namespace):
            return o
    raise AssertionError(f"no {kind} rendered")


def _docs(objects: list[Rendered]) -> list[dict[str, Any]]:
    return [copy.deepcopy(o.doc) for o in objects if not o.type_token.startswith("kubernetes:helm.sh/")]


def _clinic_namespaces(objects: list[Rendered]) -> list[str]:
    return sorted(
        o.doc["metadata"]["name"]
        for o in objects
        if o.doc.get("kind") == "Namespace" and "orca-platform.io/clinic" in (o.doc["metadata"].get("labels") or {})
    )


# --- schema validation -----------------------------------------------------------------------------------------


def test_every_rendered_object_validates_or_is_skipped_with_a_reason(dev_rendered: tuple[Path, list[Rendered]]) -> None:
    _, objects = dev_rendered
    outcomes = {o.path.name: kube_schema.validate(o.doc, o.type_token, VERSION) for o in objects}
    assert {n: r.detail for n, r in outcomes.items() if r.status == "invalid"} == {}
    skipped = {r.detail for r in outcomes.values() if r.status == "skipped"}
    assert all(skipped)  # every skip carries its reason
    # The custom kinds the program renders are validated by the project's schemas, not skipped.
    assert outcomes["Policy-clinic-sources.yaml"].detail == "project schema"
    assert outcomes["Object-release.yaml"].detail == "project schema"


def test_schema_catches_an_unknown_field(dev_rendered: tuple[Path, list[Rendered]]) -> None:
    deployment = copy.deepcopy(_find(dev_rendered[1], "Deployment").doc)
    deployment["spec"]["template"]["spec"]["containers"][0]["runAsRoot"] = True
    outcome = kube_schema.validate(deployment, "kubernetes:apps/v1:Deployment", VERSION)
    assert outcome.status == "invalid"
    assert "runAsRoot" in outcome.detail


def test_schema_catches_a_wrong_type(dev_rendered: tuple[Path, list[Rendered]]) -> None:
    service = copy.deepcopy(_find(dev_rendered[1], "Service").doc)
    service["spec"]["ports"][0]["port"] = "eight thousand"
    assert kube_schema.validate(service, "kubernetes:core/v1:Service", VERSION).status == "invalid"


@pytest.mark.parametrize(
    ("kind", "break_it"),
    [
        ("Policy", lambda d: d["spec"]["accessControl"].update(allow=["not-an-address"])),
        ("Policy", lambda d: d["spec"].update(accesControl={"allow": ["10.0.0.0/8"]})),
        ("VolumeSnapshotClass", lambda d: d.update(deletionPolicy="Keep")),
        ("Release", lambda d: d.update(atomicc=True)),
    ],
)
def test_project_schemas_catch_broken_custom_objects(
    dev_rendered: tuple[Path, list[Rendered]], kind: str, break_it: Any
) -> None:
    obj = _find(dev_rendered[1], kind)
    doc = copy.deepcopy(obj.doc)
    break_it(doc)
    assert kube_schema.validate(doc, obj.type_token, VERSION).status == "invalid"


def test_an_unknown_kind_is_an_error_not_a_silent_pass() -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    outcome = kube_schema.validate(doc, "kubernetes:example.com/v1:Widget", VERSION)
    assert outcome.status == "invalid"
    assert "no schema" in outcome.detail


def test_the_clusters_exact_minor_is_required() -> None:
    assert kube_schema.supported_minor("1.34") == "1.34"
    with pytest.raises(ValueError, match="ships no schema"):
        kube_schema.supported_minor("1.99")


# --- security scan (checkov) -----------------------------------------------------------------------------------

needs_scan_venv = pytest.mark.skipif(
    not SCAN_PYTHON.exists(), reason=".venv-scan is absent: run `make scan-venv` (make test always builds it)"
)


def _deployment(privileged: bool, host_network: bool) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken", "namespace": "orca-broken"},
        "spec": {
            "selector": {"matchLabels": {"app": "broken"}},
            "template": {
                "metadata": {"labels": {"app": "broken"}},
                "spec": {
                    "hostNetwork": host_network,
                    "containers": [
                        {"name": "c", "image": "example.invalid/c:1", "securityContext": {"privileged": privileged}}
                    ],
                },
            },
        },
    }


@needs_scan_venv
def test_scan_catches_a_privileged_host_network_pod(tmp_path: Path) -> None:
    folder = tmp_path / "k8s"
    folder.mkdir()
    (folder / "Deployment-broken.yaml").write_text(yaml.safe_dump(_deployment(True, True)), encoding="utf-8")
    result = scan.scan(SCAN_PYTHON, [folder], tmp_path / "out")
    failed = {f.check_id for f in result.failures}
    assert {"CKV_K8S_16", "CKV_K8S_19"} <= failed  # privileged container, host network
    # The project's skips are scoped: none of them waives these for an object that is not the project's.
    assert not {s.check_id for _, s in result.waived} & {"CKV_K8S_16", "CKV_K8S_19"}


def test_skips_are_scoped_and_justified(tmp_path: Path) -> None:
    skips = scan.load_skips()
    assert skips
    assert all(len(s.reason) > 20 for s in skips)
    root = next(s for s in skips if s.check_id == "CKV_K8S_23")
    assert root.covers("CKV_K8S_23", "Deployment.orca-test-aoba.orca")
    assert not root.covers("CKV_K8S_23", "Deployment.orca-test-aoba.something-else")
    bad = tmp_path / "skips.yaml"
    bad.write_text("skips:\n  - id: CKV_K8S_16\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no reason"):
        scan.load_skips(bad)


def test_scan_evaluation_fails_on_uncovered_and_reports_unused_skips() -> None:
    report = {
        "passed_checks": [{}],
        "failed_checks": [
            {"check_id": "CKV_K8S_23", "check_name": "root", "resource": "Deployment.orca-a.orca", "file_path": "x"},
            {"check_id": "CKV_K8S_16", "check_name": "priv", "resource": "Deployment.orca-a.orca", "file_path": "x"},
        ],
        "resource_count": 1,
    }
    skips = [scan.Skip("CKV_K8S_23", "ORCA runs as root"), scan.Skip("CKV_K8S_99", "nothing")]
    result = scan.evaluate(report, skips)
    assert [f.check_id for f in result.failures] == ["CKV_K8S_16"]
    assert [s.check_id for _, s in result.waived] == ["CKV_K8S_23"]
    assert [s.check_id for s in result.unused_skips] == ["CKV_K8S_99"]


# --- isolation proof over the rendered stack -------------------------------------------------------------------


def test_rendered_stack_is_isolated(dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts) -> None:
    report = isolation.prove_isolation(_docs(dev_rendered[1]), dev_facts)
    assert report.findings == []
    assert len(report.summary) == len(_clinic_namespaces(dev_rendered[1]))
    assert report.pairs_checked > 0


def _policy(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_isolation_catches_a_policy_admitting_another_clinics_namespace(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a, b = _clinic_namespaces(dev_rendered[1])[:2]
    leak = _policy(
        a,
        "let-b-in",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": b}}}]}],
        },
    )
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), leak], dev_facts)
    assert any(f"clinic namespace {b}" in f and "let-b-in" in f for f in report.findings)
    # B's own egress policy still blocks the connection, so the two-sided cross-check finds none yet ...
    assert not any("can connect to" in f for f in report.findings)
    # ... until B's egress opens too: then it names the connection.
    out = _policy(b, "out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), leak, out], dev_facts)
    assert any(f.startswith(f"{b}/") and f"can connect to {a}/" in f for f in report.findings)


def test_isolation_catches_an_ingress_ip_block_for_everyone(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a = _clinic_namespaces(dev_rendered[1])[0]
    leak = _policy(
        a,
        "open",
        {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
    )
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), leak], dev_facts)
    assert any("outside the clinic's sourceCidrs" in f for f in report.findings)


def test_isolation_catches_a_controller_rule_without_the_role_label(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a = _clinic_namespaces(dev_rendered[1])[0]
    anyone = _policy(
        a,
        "whole-ingress-namespace",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "orca-ingress"}},
                            "podSelector": {},
                        }
                    ]
                }
            ],
        },
    )
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), anyone], dev_facts)
    assert any("without the orca-platform.io/role=ingress label" in f for f in report.findings)


def test_isolation_catches_egress_into_another_clinic(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a, b = _clinic_namespaces(dev_rendered[1])[:2]
    leak = _policy(
        a,
        "call-b",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {}}]}],
        },
    )
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), leak], dev_facts)
    assert any(f"egress reaches pods of clinic namespace {b}" in f for f in report.findings)


def test_isolation_catches_a_namespace_without_default_deny(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a = _clinic_namespaces(dev_rendered[1])[0]
    docs = [
        d for d in _docs(dev_rendered[1]) if not (d.get("kind") == "NetworkPolicy" and d["metadata"]["namespace"] == a)
    ]
    report = isolation.prove_isolation(docs, dev_facts)
    assert any(f.startswith(f"{a}/") and "no NetworkPolicy isolates it" in f for f in report.findings)


def test_isolation_catches_a_cilium_policy_opening_the_cluster(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a = _clinic_namespaces(dev_rendered[1])[0]
    cnp = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "from-cluster", "namespace": a},
        "spec": {"endpointSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]},
    }
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), cnp], dev_facts)
    assert any("from-cluster" in f and "clinic namespace" in f for f in report.findings)


def test_isolation_refuses_what_it_does_not_model(
    dev_rendered: tuple[Path, list[Rendered]], dev_facts: isolation.Facts
) -> None:
    a = _clinic_namespaces(dev_rendered[1])[0]
    cnp = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "services", "namespace": a},
        "spec": {"endpointSelector": {}, "egress": [{"toServices": [{"k8sService": {"serviceName": "x"}}]}]},
    }
    ccnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "cw"}}
    report = isolation.prove_isolation([*_docs(dev_rendered[1]), cnp, ccnp], dev_facts)
    assert any("not modelled: toServices" in f for f in report.findings)
    assert any("CiliumClusterwideNetworkPolicy cw" in f for f in report.findings)


# --- the evaluator's semantics on small hand-made cases ---------------------------------------------------------


def _cluster(*policies: dict[str, Any], ipblock_selects_pods: bool = True) -> Cluster:
    namespaces = {
        "a": Namespace.named("a", {"team": "a"}),
        "b": Namespace.named("b", {"team": "b"}),
        "ops": Namespace.named("ops", {"team": "ops"}),
    }
    return Cluster(namespaces, [Policy.from_manifest(p) for p in policies], ipblock_selects_pods)


WEB_A = Pod("a", {"app": "web"}, "web", ip=ipaddress.ip_address("100.64.0.1"))
DB_A = Pod("a", {"app": "db"}, "db", (netpol.ContainerPort(5432, "TCP", "pg"),), ipaddress.ip_address("100.64.0.2"))
WEB_B = Pod("b", {"app": "web"}, "web", ip=ipaddress.ip_address("100.64.1.1"))
OPS = Pod("ops", {"app": "tool"}, "tool", ip=ipaddress.ip_address("100.64.2.1"))
OUTSIDE = ipaddress.ip_address("203.0.113.7")


def test_no_policy_means_everything_is_allowed() -> None:
    c = _cluster()
    assert c.allowed(WEB_B, DB_A, 5432)
    assert c.allowed(OUTSIDE, DB_A, 1)
    assert c.admissions(DB_A, "Ingress") is None


def test_a_policy_with_no_rules_denies_what_it_selects_only() -> None:
    c = _cluster(_policy("a", "deny", {"podSelector": {"matchLabels": {"app": "db"}}}))
    assert not c.allowed(WEB_A, DB_A, 5432)
    assert c.allowed(WEB_B, WEB_A, 80)  # web is not selected
    assert c.allowed(DB_A, WEB_B, 80)  # ingress-only policy: egress stays open


def test_policy_types_default_to_ingress_plus_egress_when_present() -> None:
    spec: dict[str, Any] = {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}
    policy = Policy.from_manifest(_policy("a", "p", spec))
    assert policy.types == {"Ingress", "Egress"}
    assert Policy.from_manifest(_policy("a", "q", {"podSelector": {}})).types == {"Ingress"}


def test_peers_pod_selector_stays_in_the_policy_namespace() -> None:
    c = _cluster(
        _policy(
            "a", "p", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}
        )
    )
    assert c.allowed(WEB_A, DB_A, 5432)
    assert not c.allowed(WEB_B, DB_A, 5432)  # same labels, other namespace


def test_namespace_and_pod_selector_in_one_peer_are_anded_and_peers_are_ored() -> None:
    both = {"namespaceSelector": {"matchLabels": {"team": "ops"}}, "podSelector": {"matchLabels": {"app": "tool"}}}
    c = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [{"from": [both]}]}))
    assert c.allowed(OPS, DB_A, 5432)
    assert not c.allowed(Pod("ops", {"app": "other"}), DB_A, 5432)
    assert not c.allowed(WEB_B, DB_A, 5432)
    ns_only = {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["b"]}]}}
    c = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [{"from": [both, ns_only]}]}))
    assert c.allowed(WEB_B, DB_A, 5432)
    assert c.allowed(OPS, DB_A, 5432)


def test_policies_are_unioned() -> None:
    from_b = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}]}
    from_ops = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}]}
    c = _cluster(_policy("a", "b", from_b), _policy("a", "ops", from_ops))
    assert c.allowed(WEB_B, DB_A, 5432)
    assert c.allowed(OPS, DB_A, 5432)
    assert not c.allowed(OUTSIDE, DB_A, 5432)


def test_ports_numbers_ranges_names_and_protocols() -> None:
    rule = {
        "ports": [
            {"protocol": "TCP", "port": 8000, "endPort": 8010},
            {"protocol": "TCP", "port": "pg"},
            {"protocol": "UDP"},
        ]
    }
    c = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [rule]}))
    assert c.allowed(WEB_B, DB_A, 8005)
    assert not c.allowed(WEB_B, DB_A, 8011)
    assert c.allowed(WEB_B, DB_A, 5432)  # the named port of the destination pod
    assert not c.allowed(WEB_B, WEB_A, 5432)  # web has no port named pg
    assert c.allowed(WEB_B, DB_A, 53, "UDP")
    assert not c.allowed(WEB_B, DB_A, 53, "SCTP")


def test_ip_block_with_except_and_the_pod_address_reading() -> None:
    block = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["100.64.0.0/10"]}}
    c = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [{"from": [block]}]}))
    assert c.allowed(OUTSIDE, DB_A, 5432)
    assert not c.allowed(ipaddress.ip_address("100.64.9.9"), DB_A, 5432)
    wide = {"ipBlock": {"cidr": "100.64.0.0/10"}}
    portable = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [{"from": [wide]}]}))
    cilium = _cluster(_policy("a", "p", {"podSelector": {}, "ingress": [{"from": [wide]}]}), ipblock_selects_pods=False)
    assert portable.allowed(WEB_B, DB_A, 5432)  # ipBlock matches the pod's address
    assert not cilium.allowed(WEB_B, DB_A, 5432)  # CIDR rules never select cluster endpoints


def test_except_outside_the_cidr_is_rejected() -> None:
    bad = {
        "podSelector": {},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}],
    }
    with pytest.raises(netpol.PolicyError):
        Policy.from_manifest(_policy("a", "p", bad))


def test_a_connection_needs_egress_and_ingress() -> None:
    deny_egress = {"podSelector": {}, "policyTypes": ["Egress"]}
    c = _cluster(_policy("b", "no-egress", deny_egress))
    assert not c.allowed(WEB_B, DB_A, 5432)
    assert c.ingress_allowed(DB_A, WEB_B, 5432)


def test_selector_satisfiability_and_forced_labels() -> None:
    sel = Selector.parse({"matchLabels": {"role": "ingress"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]})
    assert sel.forces("role", "ingress")
    assert sel.matches({"role": "ingress", "x": "1"})
    assert not Selector().forces("role", "ingress")
    contradiction = Selector.parse(
        {
            "matchExpressions": [
                {"key": "k", "operator": "In", "values": ["v"]},
                {"key": "k", "operator": "DoesNotExist"},
            ]
        }
    )
    assert not contradiction.satisfiable()
    witness = Selector.parse({"matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["a"]}]}).witness()
    assert witness == {}
    assert Selector().also(Requirement("k", "Exists"), Requirement("k", "NotIn", frozenset({"any-0"}))).witness() == {
        "k": "any-1"
    }


def test_peer_namespaces_include_namespaces_outside_the_stack() -> None:
    c = _cluster()
    everyone = netpol.Peer(pod_selector=Selector(), namespace_selector=Selector())
    known, outside = c.peer_namespaces(everyone, "a")
    assert known == {"a", "b", "ops"}
    assert outside
    only_b = netpol.Peer(namespace_selector=Selector.parse({"matchLabels": {netpol.NAME_LABEL: "b"}}))
    assert c.peer_namespaces(only_b, "a") == ({"b"}, False)


def test_ip_sets() -> None:
    s = IpSet.of("10.0.0.0/8") - IpSet.of("10.1.0.0/16")
    assert ipaddress.ip_address("10.2.0.1") in s
    assert ipaddress.ip_address("10.1.0.1") not in s
    assert IpSet.of("10.2.0.0/16").issubset(s)
    assert not IpSet.of("10.1.0.0/24").issubset(s)
    assert str(IpSet.of("192.168.0.0/25") | IpSet.of("192.168.0.128/25")) == "192.168.0.0/24"
    assert not (IpSet.of("10.0.0.0/8") & IpSet.of("192.168.0.0/16"))


def test_cilium_entities_and_endpoint_namespaces() -> None:
    cnp = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "c", "namespace": "a"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "db"}},
            "egress": [
                {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]},
                {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ops", "app": "tool"}}]},
            ],
        },
    }
    c = Cluster(_cluster().namespaces, netpol.cilium_policies(cnp), ipblock_selects_pods=False)
    assert not c.egress_allowed(DB_A, WEB_B, 443)  # the API server entity is no pod
    assert c.egress_allowed(DB_A, OPS, 9000)
    assert not c.egress_allowed(DB_A, Pod("ops", {"app": "other"}), 9000)
    assert c.egress_allowed(WEB_A, WEB_B, 443)  # web is not selected: not isolated
