"""Issue 2: what OrcaTenant registers for every clinic, observed on the real program run under Pulumi mocks.

Each test walks every clinic of the dev stack, the prod stack and a purpose-built variant (a suspended clinic without
a fixed address on an azure-disk override, beside an active one with a custom hostname and two source networks), and
selects objects by kind, namespace and name, so objects other components add to a namespace do not disturb it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from orca_test_support import (
    PROJECT_DIR,
    address_plan,
    attempt,
    azure,
    clinic_doc,
    k8s_named,
    label_selector_matches,
    load_settings,
    meta,
    only,
    program_config,
    raw_settings,
    walk_strings,
    write_yaml,
)

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic, TenantsFile, load_tenants
from tools.offline.engine import Registered, Run, is_secret, redact, reveal

STATE_DIRS = ("/var/lib/postgresql", "/etc/jma-receipt", "/var/lib/jma-receipt", "/var/log/jma-receipt")
ILB_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
ILB_SUBNET = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"
ILB_IPV4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
NGINX_DEFAULT_TIMEOUT = 60


@dataclass(frozen=True)
class Case:
    name: str
    run: Run
    settings: Settings
    tenants: TenantsFile

    def ns(self, clinic: Clinic) -> str:
        return f"orca-{clinic.id}"

    def fqdn(self, clinic: Clinic) -> str:
        return clinic.hostname or f"{clinic.id}.{self.settings.network.dns_zone}"


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    settings = load_settings("dev")
    addr = address_plan(settings)
    doc = {
        "clinics": [
            clinic_doc(
                "fixed-naika",
                "large",
                "20Gi",
                sourceCidrs=[addr.vpn_cidrs[0], addr.vpn_cidrs[1]],
                privateIp=addr.free_ips[0],
                hostname=f"kotei.{addr.zone}",
            ),
            clinic_doc(
                "resting-geka",
                "medium",
                "10Gi",
                sourceCidrs=[addr.vpn_cidrs[2]],
                state="suspended",
                storage="azure-disk",
            ),
        ]
    }
    path = write_yaml(tmp_path_factory.mktemp("variant") / "tenants.variant.yaml", doc)
    # A large clinic alone cannot reach the dev density target of 20 per node; this run is about objects, not density.
    capacity = {**raw_settings("dev").get("capacity", {}), "densityTarget": 5}
    result = attempt("dev", program_config("dev", tenants=path, capacity=capacity))
    assert result.error is None, f"the variant tenants file should be accepted: {result.error}"
    assert result.run is not None
    return result.run, path


@pytest.fixture(scope="module", params=["dev", "prod", "variant"])
def case(request: pytest.FixtureRequest, variant_run: tuple[Run, Path]) -> Case:
    if request.param == "variant":
        run, path = variant_run
        return Case("variant", run, load_settings("dev"), load_tenants(path))
    run = request.getfixturevalue(f"{request.param}_run")
    settings = load_settings(request.param)
    return Case(request.param, run, settings, load_tenants(PROJECT_DIR / settings.tenants_file))


def tenant_component(case: Case, clinic: Clinic) -> Registered:
    return only(
        [r for r in case.run.by_type("orca:platform:OrcaTenant") if r.name == clinic.id], f"OrcaTenant {clinic.id}"
    )


def deployment(case: Case, clinic: Clinic) -> Registered:
    return k8s_named(case.run, "Deployment", case.ns(clinic), "orca")


def pod_spec(dep: Registered) -> dict[str, Any]:
    spec: dict[str, Any] = dep.inputs["spec"]["template"]["spec"]
    return spec


def orca_container(dep: Registered) -> dict[str, Any]:
    """The container serving glserver (port 8000)."""
    containers = pod_spec(dep)["containers"]
    found = [c for c in containers if any(p.get("containerPort") == 8000 for p in c.get("ports") or [])]
    assert len(found) == 1, f"expected one container exposing 8000 in {dep.urn}"
    return found[0]


def server_service(case: Case, clinic: Clinic) -> Registered:
    services = [r for r in case.run.k8s("Service", case.ns(clinic)) if r.inputs["spec"].get("type") == "LoadBalancer"]
    return only(services, f"LoadBalancer Service of {clinic.id}")


def helm_release(run: Run) -> Registered:
    return only(run.by_type("kubernetes:helm.sh/v3:Release"), "ingress controller Helm release")


def ilb_subnet_name(case: Case) -> str:
    subnets = [
        r
        for r in azure(case.run, "network:Subnet")
        if r.inputs["addressPrefix"] == case.settings.network.ilb_subnet_cidr
    ]
    return str(only(subnets, "ILB subnet").inputs["subnetName"])


# --- namespace, ownership -------------------------------------------------------------------------------------------


def descends_from(run: Run, res: Registered, ancestor: Registered) -> bool:
    by_urn = {r.urn: r for r in run.resources}
    parent = res.parent
    while parent:
        if parent == ancestor.urn:
            return True
        parent = by_urn[parent].parent if parent in by_urn else ""
    return False


def test_every_clinic_has_its_own_namespace_holding_only_its_objects(case: Case) -> None:
    namespaces = [meta(r)["name"] for r in case.run.k8s("Namespace")]
    assert len(namespaces) == len(set(namespaces))
    for clinic in case.tenants.clinics:
        ns = case.ns(clinic)
        assert ns in namespaces
        component = tenant_component(case, clinic)
        for kind in ("Secret", "PersistentVolumeClaim", "Deployment", "Service", "Ingress", "NetworkPolicy"):
            assert case.run.k8s(kind, ns), f"{clinic.id}: no {kind} in {ns}"
        # Whatever lives in the clinic's namespace belongs to that clinic's component, and to no other clinic's.
        for res in case.run.resources:
            if res.is_kubernetes and meta(res).get("namespace") == ns:
                assert descends_from(case.run, res, component), f"{res.urn} is in {ns} but not under {component.urn}"


def test_namespace_is_kept_like_the_volume_it_contains(case: Case) -> None:
    # Deleting a namespace deletes every claim inside it, so it must be protected and retained like the PVC.
    for clinic in case.tenants.clinics:
        ns = k8s_named(case.run, "Namespace", None, case.ns(clinic))
        assert ns.protect, f"{ns.urn} is not protected"
        assert ns.retain_on_delete, f"{ns.urn} is not retained on delete"


# --- credentials ----------------------------------------------------------------------------------------------------


def test_credentials_are_generated_pulumi_secrets(case: Case) -> None:
    passwords = {r.urn: r for r in case.run.by_type("random:index/randomPassword:RandomPassword")}
    for clinic in case.tenants.clinics:
        secret = k8s_named(case.run, "Secret", case.ns(clinic), "orca-credentials")
        string_data = secret.inputs.get("stringData")
        assert is_secret(string_data), "stringData must reach the engine as a Pulumi secret"
        assert "data" not in secret.inputs
        values = reveal(string_data)
        assert set(values) == {"ormaster-password", "db-password"}
        # Each value is the result of a RandomPassword the Secret depends on (so: generated, never written down).
        generators = [passwords[d] for d in secret.dependencies if d in passwords]
        assert len(generators) == 2
        assert sorted(values.values()) == sorted(reveal(g.outputs["result"]) for g in generators)
        for gen in generators:
            # Regenerating a password ORCA has stored in its database would lock the clinic out.
            assert gen.protect, f"{gen.urn} must be protected"
            assert "result" in gen.additional_secret_outputs
            assert is_secret(gen.outputs["result"]), "the engine keeps the generated value a secret"
        ormaster = next(g for g in generators if reveal(g.outputs["result"]) == values["ormaster-password"])
        assert 8 <= ormaster.inputs["length"] <= 16, "WebORCA accepts ormaster passwords of 8 to 16 characters"


def test_no_clinic_password_appears_in_plaintext_anywhere(case: Case) -> None:
    # Every generated password: the clinics' two each and the VPN sites' pre-shared keys.
    tenants = {tenant_component(case, c).urn for c in case.tenants.clinics}
    generated = case.run.by_type("random:index/randomPassword:RandomPassword")
    results = {reveal(r.outputs["result"]) for r in generated}
    assert len({reveal(r.outputs["result"]) for r in generated if r.parent in tenants}) == 2 * len(case.tenants.clinics)
    for res in case.run.resources:
        if res.type.startswith("random:"):
            continue
        plain = set(walk_strings(redact(res.inputs)))
        assert not (plain & results), f"{res.urn} carries a generated password outside a secret"


def test_server_reads_passwords_from_the_secret_only(case: Case) -> None:
    defaults = {"ormaster", "orca_password", "orca", "postgres"}
    for clinic in case.tenants.clinics:
        env = {e["name"]: e for e in orca_container(deployment(case, clinic)).get("env") or []}
        for var, key in (("ORCA_DB_PASS", "db-password"), ("ORMASTER_PASS", "ormaster-password")):
            assert "value" not in env[var]
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("orca-credentials", key)
        assert not {e.get("value") for e in env.values() if "PASS" in e["name"]} & defaults


# --- the state volume -----------------------------------------------------------------------------------------------


def test_state_volume_is_protected_retained_and_not_awaited(case: Case) -> None:
    for clinic in case.tenants.clinics:
        claims = case.run.k8s("PersistentVolumeClaim", case.ns(clinic))
        assert claims, f"{clinic.id} has no PVC"
        for pvc in claims:
            assert pvc.protect, f"{pvc.urn}: protect must be observed on the registered resource"
            assert pvc.retain_on_delete, f"{pvc.urn}: retainOnDelete must be observed on the registered resource"
            assert (meta(pvc).get("annotations") or {}).get("pulumi.com/skipAwait") == "true"


def test_state_directories_are_mounted_from_a_protected_claim(case: Case) -> None:
    for clinic in case.tenants.clinics:
        dep = deployment(case, clinic)
        spec = pod_spec(dep)
        claim_of = {
            v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v
        }
        mounts = orca_container(dep)["volumeMounts"]
        used = []
        for path in STATE_DIRS:
            mount = next((m for m in mounts if m["mountPath"] == path), None)
            assert mount is not None, f"{clinic.id}: {path} is not mounted"
            assert mount["name"] in claim_of, f"{clinic.id}: {path} is not on a PersistentVolumeClaim"
            claim = k8s_named(case.run, "PersistentVolumeClaim", case.ns(clinic), claim_of[mount["name"]])
            assert claim.protect and claim.retain_on_delete
            used.append((mount["name"], mount.get("subPath")))
        # Two state directories on the same volume and subPath would overwrite each other.
        assert len(set(used)) == len(used)


def test_claim_uses_a_registered_storage_class_that_retains_volumes(case: Case) -> None:
    classes = {meta(r)["name"]: r for r in case.run.k8s("StorageClass")}
    for clinic in case.tenants.clinics:
        for pvc in case.run.k8s("PersistentVolumeClaim", case.ns(clinic)):
            sc = classes[pvc.inputs["spec"]["storageClassName"]]
            assert sc.inputs["reclaimPolicy"] == "Retain"
            assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"


# --- the Deployment -------------------------------------------------------------------------------------------------


def test_exactly_one_replica_and_none_while_suspended_with_recreate(case: Case) -> None:
    for clinic in case.tenants.clinics:
        spec = deployment(case, clinic).inputs["spec"]
        assert spec["replicas"] == (0 if clinic.state.value == "suspended" else 1)
        assert spec["strategy"]["type"] == "Recreate"


def test_suspended_clinic_keeps_volume_address_and_service(case: Case) -> None:
    suspended = [c for c in case.tenants.clinics if c.state.value == "suspended"]
    if case.name == "variant":
        assert suspended, "the variant run exists to cover a suspended clinic"
    for clinic in suspended:
        assert case.run.k8s("PersistentVolumeClaim", case.ns(clinic))
        svc = server_service(case, clinic)
        if clinic.private_ip:
            assert meta(svc)["annotations"][ILB_IPV4] == clinic.private_ip
        assert case.run.outputs["clinics"][clinic.id]["state"] == "suspended"


def test_ports_glserver_and_push(case: Case) -> None:
    for clinic in case.tenants.clinics:
        ports = {p["containerPort"] for p in orca_container(deployment(case, clinic))["ports"]}
        assert ports == {8000, 9400}


def test_probes_never_http_get_root_and_startup_budget_is_generous(case: Case) -> None:
    budget = case.settings.orca.startup_budget_seconds
    for clinic in case.tenants.clinics:
        c = orca_container(deployment(case, clinic))
        assert c.get("livenessProbe") and c.get("readinessProbe") and c.get("startupProbe")
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            get = c[kind].get("httpGet")
            # glserver answers GET / with 400: such a probe would restart a healthy server forever.
            assert get is None or get.get("path", "/") != "/", f"{clinic.id}: {kind} uses httpGet on /"
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= budget


def test_clean_stop_hook_and_grace_period(case: Case) -> None:
    grace = case.settings.orca.termination_grace_seconds
    version = case.settings.orca.postgres_version
    for clinic in case.tenants.clinics:
        dep = deployment(case, clinic)
        assert pod_spec(dep)["terminationGracePeriodSeconds"] == grace
        script = " ".join(orca_container(dep)["lifecycle"]["preStop"]["exec"]["command"])
        # ORCA's monitor ignores SIGTERM and stops on SIGUSR1; PostgreSQL must be stopped 'fast', not 'smart'.
        assert "USR1" in script
        assert f"pg_ctlcluster {version} main stop -m fast" in script
    # The cluster autoscaler must allow a drained pod at least its grace period.
    aks = only(azure(case.run, "containerservice:ManagedCluster"), "ManagedCluster")
    assert int(aks.inputs["autoScalerProfile"]["maxGracefulTerminationSec"]) >= grace


def test_resources_come_from_the_size_class_catalogue(case: Case) -> None:
    catalogue = load_catalogue()
    for clinic in case.tenants.clinics:
        size = catalogue.clinic_sizes[clinic.size]
        res = orca_container(deployment(case, clinic))["resources"]
        assert res["requests"] == {"cpu": size.cpu_request, "memory": size.memory_request}
        assert res["limits"] == {"cpu": size.cpu_limit, "memory": size.memory_limit}


def test_image_is_the_clinic_override_or_the_stack_image(case: Case) -> None:
    for clinic in case.tenants.clinics:
        image = orca_container(deployment(case, clinic))["image"]
        assert image == (clinic.image or case.settings.orca.image)


def test_scheduled_onto_the_orca_pool_only(case: Case) -> None:
    pool = only(azure(case.run, "containerservice:AgentPool"), "ORCA AgentPool")
    pool_labels: dict[str, str] = pool.inputs["nodeLabels"]
    taints = list(pool.inputs["nodeTaints"])
    assert taints, "the ORCA pool must be tainted so that nothing else lands there"
    for clinic in case.tenants.clinics:
        spec = pod_spec(deployment(case, clinic))
        selector = spec["nodeSelector"]
        assert selector and all(pool_labels.get(k) == v for k, v in selector.items())
        tolerations = spec.get("tolerations") or []
        for taint in taints:
            kv, effect = taint.rsplit(":", 1)
            key, value = kv.split("=", 1)
            assert any(
                t["key"] == key
                and t.get("effect") == effect
                and (t.get("operator") == "Exists" or (t.get("operator") == "Equal" and t.get("value") == value))
                for t in tolerations
            ), f"{clinic.id} does not tolerate the ORCA pool's taint {taint}"
        # ...and never onto the system pool, which keeps CriticalAddonsOnly for the add-ons and the ingress.
        assert not [t for t in tolerations if t.get("key") == "CriticalAddonsOnly"]


def test_pod_has_no_service_account_token_and_a_tight_security_context(case: Case) -> None:
    for clinic in case.tenants.clinics:
        spec = pod_spec(deployment(case, clinic))
        assert spec["automountServiceAccountToken"] is False
        for c in [*spec["containers"], *(spec.get("initContainers") or [])]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert "ALL" in sc["capabilities"]["drop"], c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc.get("privileged") is not True, c["name"]


# --- Service, Ingress -----------------------------------------------------------------------------------------------


def test_service_is_an_internal_load_balancer_limited_to_the_clinic(case: Case) -> None:
    subnet = ilb_subnet_name(case)
    for clinic in case.tenants.clinics:
        svc = server_service(case, clinic)
        annotations = meta(svc)["annotations"]
        assert annotations[ILB_INTERNAL] == "true"
        assert annotations[ILB_SUBNET] == subnet
        if clinic.private_ip:
            assert annotations[ILB_IPV4] == clinic.private_ip
        else:
            assert ILB_IPV4 not in annotations
        spec = svc.inputs["spec"]
        assert sorted(spec["loadBalancerSourceRanges"]) == sorted(clinic.source_cidrs)
        assert {p["port"] for p in spec["ports"]} == {8000, 9400}
        # The Service reaches the ORCA pod, by the port names the container declares.
        dep = deployment(case, clinic)
        assert label_selector_matches(
            {"matchLabels": spec["selector"]}, dep.inputs["spec"]["template"]["metadata"]["labels"]
        )
        names = {p["name"] for p in orca_container(dep)["ports"]}
        assert {p["targetPort"] for p in spec["ports"]} <= names


def test_ingress_on_the_internal_class_with_the_clinic_fqdn_and_long_timeouts(case: Case) -> None:
    values = helm_release(case.run).inputs["values"]["controller"]
    for clinic in case.tenants.clinics:
        ing = only(case.run.k8s("Ingress", case.ns(clinic)), f"Ingress of {clinic.id}")
        spec = ing.inputs["spec"]
        assert spec["ingressClassName"] == values["ingressClass"]["name"] == case.settings.ingress.class_name
        assert [r["host"] for r in spec["rules"]] == [case.fqdn(clinic)]
        annotations = meta(ing)["annotations"]
        for key in ("nginx.org/proxy-read-timeout", "nginx.org/proxy-send-timeout"):
            seconds = int(annotations[key].removesuffix("s"))
            assert seconds == case.settings.ingress.read_timeout_seconds
            assert seconds > NGINX_DEFAULT_TIMEOUT
        svc = server_service(case, clinic)
        service_ports = {p["name"] for p in svc.inputs["spec"]["ports"]}
        for path in spec["rules"][0]["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == meta(svc)["name"]
            assert backend["port"]["name"] in service_ports


# --- NetworkPolicies ------------------------------------------------------------------------------------------------


def test_namespace_is_closed_by_default(case: Case) -> None:
    for clinic in case.tenants.clinics:
        deny = [
            r
            for r in case.run.k8s("NetworkPolicy", case.ns(clinic))
            if not (r.inputs["spec"].get("podSelector") or {}).get("matchLabels")
            and not (r.inputs["spec"].get("podSelector") or {}).get("matchExpressions")
            and {"Ingress", "Egress"} <= set(r.inputs["spec"].get("policyTypes") or [])
            and not r.inputs["spec"].get("ingress")
            and not r.inputs["spec"].get("egress")
        ]
        assert deny, f"{clinic.id}: no default-deny NetworkPolicy"


def test_server_admits_only_the_ingress_controller_and_the_clinic_networks(case: Case) -> None:
    controller = helm_release(case.run).inputs
    ingress_ns = controller["namespace"]
    ingress_pod_labels = controller["values"]["controller"]["pod"]["extraLabels"]
    for clinic in case.tenants.clinics:
        ns = case.ns(clinic)
        pod_labels = deployment(case, clinic).inputs["spec"]["template"]["metadata"]["labels"]
        selecting = [
            r
            for r in case.run.k8s("NetworkPolicy", ns)
            if label_selector_matches(r.inputs["spec"].get("podSelector"), pod_labels)
        ]
        cidrs: set[str] = set()
        saw_controller = False
        for policy in selecting:
            for rule in policy.inputs["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                assert peers, f"{policy.urn}: a rule without 'from' admits every source"
                assert {p.get("port") for p in rule.get("ports") or []} <= {8000, 9400}
                assert rule.get("ports"), f"{policy.urn}: a rule without ports admits every port"
                for peer in peers:
                    if "ipBlock" in peer:
                        assert not peer["ipBlock"].get("except")
                        cidrs.add(peer["ipBlock"]["cidr"])
                        continue
                    ns_sel = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                    pod_sel = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    assert ns_sel == {"kubernetes.io/metadata.name": ingress_ns}, f"{policy.urn}: peer {peer}"
                    assert pod_sel and all(ingress_pod_labels.get(k) == v for k, v in pod_sel.items())
                    saw_controller = True
        assert cidrs == set(clinic.source_cidrs)
        assert saw_controller
        # A Cilium policy could widen what the Kubernetes ones allow: none may admit traffic to the server.
        for cnp in case.run.k8s("CiliumNetworkPolicy", ns):
            selector = cnp.inputs.get("spec", {}).get("endpointSelector")
            if label_selector_matches(selector, pod_labels):
                assert not cnp.inputs["spec"].get("ingress"), f"{cnp.urn} admits traffic to the ORCA server"


# --- outputs ------------------------------------------------------------------------------------------------------


def test_outputs_per_clinic(case: Case) -> None:
    exported = case.run.outputs["clinics"]
    assert set(exported) == {c.id for c in case.tenants.clinics}
    for clinic in case.tenants.clinics:
        out = exported[clinic.id]
        assert out["namespace"] == case.ns(clinic)
        assert out["fqdn"] == case.fqdn(clinic)
        if clinic.private_ip:
            assert out["privateIp"] == clinic.private_ip
        else:
            # Azure picks the address at deploy time; offline it must not be invented.
            assert not out["privateIp"]


# --- the variant's particular choices -------------------------------------------------------------------------------


def test_variant_azure_disk_claim_is_single_pod_on_an_uncached_disk_class(variant_run: tuple[Run, Path]) -> None:
    run, _ = variant_run
    pvc = k8s_named(run, "PersistentVolumeClaim", "orca-resting-geka", "orca-state")
    assert pvc.inputs["spec"]["accessModes"] == ["ReadWriteOncePod"]
    # 10Gi asked; an Azure disk is billed and provisioned by whole GiB, at least 1.
    assert pvc.inputs["spec"]["resources"]["requests"]["storage"] == "10Gi"
    sc = k8s_named(run, "StorageClass", None, pvc.inputs["spec"]["storageClassName"])
    assert sc.inputs["provisioner"] == "disk.csi.azure.com"
    # PostgreSQL fsyncs its WAL: host caching would acknowledge writes that sit in a cache.
    assert sc.inputs["parameters"]["cachingMode"] == "None"
    # The stack default (NFS) keeps its own class beside it, with the 100 GiB share minimum.
    nfs = k8s_named(run, "PersistentVolumeClaim", "orca-fixed-naika", "orca-state")
    assert nfs.inputs["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert k8s_named(run, "StorageClass", None, nfs.inputs["spec"]["storageClassName"]).inputs["provisioner"] == (
        "file.csi.azure.com"
    )
