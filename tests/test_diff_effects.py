"""`make diff` says what Pulumi will do, not what the files differ in (issue 21 item 5, issue 28 item 2): it leaves out
what `ignore_changes` hides, compares order-free lists as sets, and lists the servers that restart, their pre-upgrade
backups and the exposure a change opens, beside the data-loss section.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tools.deploy import diff
from tools.offline.rendered import RenderedStack, Resource

TENANT = "orca:platform:OrcaTenant"


def k8s(kind: str, name: str, ns: str, spec: dict[str, Any], **options: Any) -> Resource:
    parent = f"{TENANT}$" if ns != "kube-system" else ""
    urn = f"urn:pulumi:dev::orca-platform::{parent}kubernetes:x:{kind}::{name}"
    inputs = {"kind": kind, "metadata": {"name": name, "namespace": ns, "labels": {}}, "spec": spec}
    return Resource(urn, f"kubernetes:x:{kind}", name, inputs, {"protect": False, "ignoreChanges": [], **options})


def stack(tmp: Path, *resources: Resource) -> RenderedStack:
    return RenderedStack(tmp, {r.urn: r for r in resources}, {"clinics": {"sakura": {}}})


def server(image: str = "orca:1", replicas: int = 1, claim: str = "orca-state") -> Resource:
    spec = {
        "replicas": replicas,
        "template": {
            "spec": {
                "containers": [{"name": "orca", "image": image}],
                "volumes": [{"name": "state", "persistentVolumeClaim": {"claimName": claim}}],
            }
        },
    }
    return k8s("Deployment", "sakura-orca", "orca-sakura", spec, ignoreChanges=["spec.template.metadata.annotations"])


def cluster(ranges: list[str]) -> Resource:
    urn = "urn:pulumi:dev::orca-platform::orca:platform:Cluster$azure-native:containerservice:ManagedCluster::aks"
    inputs = {"apiServerAccessProfile": {"authorizedIPRanges": ranges}}
    return Resource(urn, "azure-native:containerservice:ManagedCluster", "aks", inputs, {"ignoreChanges": []})


def report(tmp_path: Path, before: list[Resource], after: list[Resource]) -> str:
    return diff.render([diff.compare(stack(tmp_path, *before), stack(tmp_path, *after), "dev")], "base", "head")


def test_what_ignore_changes_hides_is_left_out(tmp_path: Path) -> None:
    after = server()
    after.inputs["spec"]["template"]["metadata"] = {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}
    assert diff.compare(stack(tmp_path, server()), stack(tmp_path, after), "dev").clinics == {}


def test_order_free_lists_compare_as_sets(tmp_path: Path) -> None:
    result = diff.compare(
        stack(tmp_path, cluster(["10.0.0.0/8", "192.0.2.0/24"])),
        stack(tmp_path, cluster(["192.0.2.0/24", "10.0.0.0/8"])),
        "dev",
    )
    assert result.platform == []
    # An ordered list (a container's args) still compares by position.
    a, b = server(), server()
    b.inputs["spec"]["template"]["spec"]["containers"][0]["args"] = ["y", "x"]
    a.inputs["spec"]["template"]["spec"]["containers"][0]["args"] = ["x", "y"]
    assert diff.compare(stack(tmp_path, a), stack(tmp_path, b), "dev").clinics


def test_a_new_image_restarts_the_server_after_its_pre_upgrade_backup(tmp_path: Path) -> None:
    backup = k8s("Job", "sakura-backup-pre-upgrade-abc123", "orca-sakura", {})
    stop = k8s("Job", "sakura-backup-pre-upgrade-stop-abc123", "orca-sakura", {})
    out = report(tmp_path, [server()], [server(image="orca:2"), backup, stop])
    section = out.split("### Servers, backups and exposure")[1].split("###")[0]
    assert "clinic sakura: restarts: new image" in section
    assert "pre-upgrade backup runs first (sakura-backup-pre-upgrade-abc123)" in section
    assert out.index("### Clinic data deleted or replaced") < out.index("### Servers, backups and exposure")


def test_a_suspension_stops_the_server_and_a_restore_moves_its_volume(tmp_path: Path) -> None:
    assert "clinic sakura: stops (replicas 0: suspended)" in report(tmp_path, [server()], [server(replicas=0)])
    moved = report(tmp_path, [server()], [server(claim="orca-state-r1")])
    assert "clinic sakura: restarts: another volume generation" in moved


def test_a_range_reaching_the_api_server_is_flagged(tmp_path: Path) -> None:
    out = report(tmp_path, [cluster(["10.0.0.0/8"])], [cluster(["10.0.0.0/8", "10.60.0.0/24"])])
    assert "exposure changes: 1" in out
    assert "the API server: ManagedCluster apiServerAccessProfile.authorizedIPRanges" in out


def test_nothing_to_say_says_none(tmp_path: Path) -> None:
    out = report(tmp_path, [server()], [copy.deepcopy(server())])
    assert "### Servers, backups and exposure: none" in out
