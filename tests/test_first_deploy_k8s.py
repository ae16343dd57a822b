"""Issue 11, the Kubernetes side: chart source and its schema, NFS snapshot restore against private accounts, the
clinic Service's await, the embedded scripts under shellcheck, and the README's word on CiliumNetworkPolicy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml
from orca_test_support import PROJECT_DIR, azure, meta, only, raw_settings

from components.cluster import FILE_DATA_PRIVILEGED_CONTRIBUTOR
from tools.checks import shell_scripts
from tools.checks.run import Rendered, check_shell, read_rendered
from tools.offline.engine import Run
from tools.offline.synth import write
from tools.reports.chart_mirror import MirrorError, bundle_schema

# --- 9. the ingress chart without GitHub --------------------------------------------------------------------------


def test_the_ingress_chart_comes_from_the_operators_registry(stack_run: Run) -> None:
    release = only(stack_run.by_type("kubernetes:helm.sh/v3:Release"), "ingress release")
    registry_id = raw_settings(stack_run.stack)["cluster"]["containerRegistryId"]
    login_server = f"{registry_id.rsplit('/', 1)[-1]}.azurecr.io"
    assert release.inputs["chart"].startswith(f"oci://{login_server}/")
    assert "ghcr.io" not in release.inputs["chart"] and "github" not in release.inputs["chart"]


REMOTE = "https://raw.githubusercontent.com/nginxinc/kubernetes-json-schema/master/v1.35.1/_definitions.json"
DEFINITIONS: dict[str, Any] = {
    "definitions": {
        "io.k8s.api.core.v1.Toleration": {
            "type": "object",
            "properties": {"key": {"type": "string"}, "effect": {"$ref": "#/definitions/effect"}},
        },
        "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
        "io.k8s.api.core.v1.Unused": {"type": "object"},
    }
}
CHART_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "controller": {
            "type": "object",
            "properties": {
                "tolerations": {
                    "type": "array",
                    "items": {"$ref": f"{REMOTE}#/definitions/io.k8s.api.core.v1.Toleration"},
                },
                "replicaCount": {"type": "integer"},
            },
        }
    },
}


def _remote_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) and "://" in node["$ref"] else []
        return own + [r for v in node.values() for r in _remote_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _remote_refs(v)]
    return []


def test_the_mirror_tool_makes_the_schema_self_contained_and_keeps_its_checks() -> None:
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return copy.deepcopy(DEFINITIONS)

    bundled, count = bundle_schema(CHART_SCHEMA, fetch)
    assert count == 2 and fetched == [REMOTE]
    assert _remote_refs(bundled) == [] and _remote_refs(CHART_SCHEMA)  # the input is left as it was
    # Only what is referenced (transitively) is copied.
    assert set(bundled["definitions"]) == {"io.k8s.api.core.v1.Toleration", "effect"}
    original = jsonschema.Draft7Validator(
        CHART_SCHEMA,
        registry=referencing.Registry().with_resource(
            REMOTE, referencing.Resource.from_contents(DEFINITIONS, referencing.jsonschema.DRAFT7)
        ),
    )
    local = jsonschema.Draft7Validator(bundled)
    good = {"controller": {"tolerations": [{"key": "CriticalAddonsOnly", "effect": "NoSchedule"}]}}
    bad = {"controller": {"tolerations": [{"key": "x", "effect": "Sometimes"}]}}
    assert original.is_valid(good) and local.is_valid(good)
    assert not original.is_valid(bad) and not local.is_valid(bad)


def test_the_mirror_tool_refuses_what_it_cannot_make_local() -> None:
    schema = {"properties": {"x": {"$ref": f"{REMOTE}#/definitions/io.k8s.Missing"}}}
    with pytest.raises(MirrorError, match="no definition"):
        bundle_schema(schema, lambda url: copy.deepcopy(DEFINITIONS))
    odd = {"properties": {"x": {"$ref": f"{REMOTE}#/properties/y"}}}
    with pytest.raises(MirrorError, match="only references to"):
        bundle_schema(odd, lambda url: copy.deepcopy(DEFINITIONS))


# --- 10. NFS snapshot restore into private-endpoint accounts -------------------------------------------------------


def test_nfs_classes_use_the_oauth_data_plane_and_the_driver_identity_holds_the_data_role(stack_run: Run) -> None:
    nfs = [r for r in stack_run.k8s("StorageClass") if r.inputs["parameters"].get("protocol") == "nfs"]
    assert nfs and all(r.inputs["parameters"]["useDataPlaneAPI"] == "oauth" for r in nfs)
    (file_class,) = [r for r in stack_run.k8s("VolumeSnapshotClass") if r.inputs["driver"] == "file.csi.azure.com"]
    assert file_class.inputs["parameters"]["useDataPlaneAPI"] == "oauth"
    # The AKS-managed driver acts as the cluster's control-plane identity, on the accounts it creates in the data group.
    identity = only(
        [i for i in azure(stack_run, "managedidentity:UserAssignedIdentity") if i.name == "id-aks"], "id-aks"
    )
    data_group = only(
        [g for g in azure(stack_run, "resources:ResourceGroup") if g.name == "rg-data"], "clinic data group"
    )
    roles = [
        r
        for r in azure(stack_run, "authorization:RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(FILE_DATA_PRIVILEGED_CONTRIBUTOR)
    ]
    assert [(r.inputs["principalId"], r.inputs["scope"]) for r in roles] == [
        (identity.outputs["principalId"], data_group.id)
    ]


# --- 11. the clinic Service waits as long as the server may take to start -----------------------------------------


def test_every_clinic_service_waits_for_the_start_up_budget(stack_run: Run) -> None:
    orca = raw_settings(stack_run.stack)["orca"]
    budget = orca.get("startupBudgetSeconds", 900) + orca.get("terminationGraceSeconds", 120)
    clinic_namespaces = {
        meta(n)["name"] for n in stack_run.k8s("Namespace") if "orca-platform.io/clinic" in meta(n).get("labels", {})
    }
    services = [s for s in stack_run.k8s("Service") if meta(s)["namespace"] in clinic_namespaces]
    assert len(services) == len(clinic_namespaces) > 0
    for svc in services:
        annotations = meta(svc)["annotations"]
        assert "pulumi.com/skipAwait" not in annotations  # its status gives the clinic's exported privateIp
        timeout = int(annotations["pulumi.com/timeoutSeconds"])
        assert timeout > budget and timeout > 600, svc.urn
        deployment = only(stack_run.k8s("Deployment", meta(svc)["namespace"]), "Deployment")
        assert timeout == int(meta(deployment)["annotations"]["pulumi.com/timeoutSeconds"])


# --- What to build 4: shellcheck over the embedded scripts ---------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_dev(dev_run: Run, tmp_path_factory: pytest.TempPathFactory) -> list[Rendered]:
    folder = tmp_path_factory.mktemp("shell") / "dev"
    write(dev_run, folder)
    return read_rendered(folder)


needs_shellcheck = pytest.mark.skipif(
    shell_scripts.shellcheck_available() is None, reason="make unit installs Debian's shellcheck (deb-shellcheck)"
)


def test_every_kind_of_embedded_script_is_found(rendered_dev: list[Rendered]) -> None:
    wheres = [s.where for o in rendered_dev for s in shell_scripts.scripts_in(o.doc)]
    for expected in ("ConfigMap/orca-backup-scripts: dump.sh", "lifecycle.preStop", "initContainers[seed-state]"):
        assert any(expected in w for w in wheres), expected


@needs_shellcheck
def test_the_rendered_scripts_pass_shellcheck(rendered_dev: list[Rendered]) -> None:
    findings, line = check_shell(rendered_dev)
    assert findings == [], findings
    assert "0 with findings" in line


@needs_shellcheck
def test_a_broken_script_fails_the_check(rendered_dev: list[Rendered]) -> None:
    objects = copy.deepcopy(rendered_dev)
    config_map = next(o for o in objects if o.doc.get("kind") == "ConfigMap" and "snapshot.sh" in o.doc["data"])
    config_map.doc["data"]["snapshot.sh"] += 'if [ "$kind" = scheduled ]; then\n  echo unterminated\n'
    deployment = next(o for o in objects if o.doc.get("kind") == "Deployment")
    pre_stop = deployment.doc["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop[2] = "rm -rf $STATE_DIR/*"  # unquoted, empty variable: rm -rf /*
    findings, _ = check_shell(objects)
    assert any("snapshot.sh" in f and ("SC1046" in f or "SC1073" in f) for f in findings), findings
    assert any("lifecycle.preStop" in f and "SC2115" in f for f in findings), findings


# --- 14. the README on CiliumNetworkPolicy ------------------------------------------------------------------------


def test_the_readme_says_aks_supports_l3_l4_cilium_policies() -> None:
    # The security table moved from the README to docs/security.md (issue 28), which the README links.
    text = (PROJECT_DIR / "docs" / "security.md").read_text(encoding="utf-8")
    assert "not officially supported" not in text and "does not officially support" not in text
    assert "L3/L4" in text and "CiliumNetworkPolicy" in text and "Cilium 1.18" in text


def test_stack_files_parse() -> None:
    for stack in ("dev", "prod"):
        doc = yaml.safe_load(Path(PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
        assert doc["config"]["orca-platform:ingress"]["chart"].startswith("oci://")
