"""Issue 15: `make diff BASE=<ref>` names the clinics a change touches, field by field, and puts data loss first."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.orca_test_support import PROJECT_DIR
from tools.deploy import diff
from tools.offline.engine import Run
from tools.offline.rendered import RenderedStack, load
from tools.offline.synth import write

GIT = shutil.which("git") or "git"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(  # noqa: S603 - fixed arguments
        [GIT, "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def project_copy(into: Path) -> Path:
    """The project's tracked files as they are in this working tree (so the test runs the code under test)."""
    listed = subprocess.run(  # noqa: S603
        [GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = PROJECT_DIR / name
        if src.is_file() and not src.is_symlink():
            dst = into / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return into


def add_one_resize_another(tenants: Path) -> None:
    doc = yaml.safe_load(tenants.read_text(encoding="utf-8"))
    midori = next(c for c in doc["clinics"] if c["id"] == "midori-kodomo")
    midori.update(size="medium", volumeSize="160Gi")
    # The new clinic shares kaede-ganka's LAN (every VPN range of the sample serves a clinic): both name the shared
    # network, which renders nothing, so kaede-ganka's objects stay as they are.
    kaede = next(c for c in doc["clinics"] if c["id"] == "kaede-ganka")
    kaede["sharedNetwork"] = "kaede-group"
    doc["clinics"].append(
        {
            "id": "tsubaki-jibika",
            "name": "つばき耳鼻科",
            "size": "small",
            "volumeSize": "32Gi",
            "sourceCidrs": ["192.168.50.128/25"],
            "sharedNetwork": "kaede-group",
        }
    )
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = project_copy(tmp_path_factory.mktemp("repo"))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    add_one_resize_another(repo / "tenants.yaml")
    _git(repo, "commit", "-qam", "add tsubaki-jibika, resize midori-kodomo")
    return repo


# It copies the project's untracked files too: never beside a test that writes one there (make unit: loadgroup).
@pytest.mark.xdist_group("project-dir")
def test_diff_of_the_last_commit_names_exactly_the_two_clinics(two_commits: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.deploy.diff", "--base", "HEAD~1", "--stack", "prod", "--markdown", "diff.md"],
        cwd=two_commits,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    sections = re.findall(r"^#### (\S+) \((\w+)\)$", out, re.MULTILINE)
    assert sections == [("midori-kodomo", "changed"), ("tsubaki-jibika", "added")]
    # The platform part may name every clinic (the maintenance mover's list of clinic namespaces grew by one); the
    # clinic part names only the two.
    clinic_part = out.split("### Clinics", 1)[1]
    for untouched in ("sakura-naika", "aoba-seikei", "hinata-hifuka", "kaede-ganka"):
        assert untouched not in clinic_part
    midori = out.split("#### midori-kodomo")[1].split("####")[0]
    assert "PersistentVolumeClaim orca-midori-kodomo/orca-state" in midori
    assert "spec.resources.requests.storage: 100Gi -> 160Gi" in midori
    assert "containers[orca].resources.requests.memory: 1280Mi -> 2Gi" in midori
    tsubaki = out.split("#### tsubaki-jibika")[1]
    for what in ("Namespace orca-tsubaki-jibika", "PersistentVolumeClaim orca-tsubaki-jibika/orca-state"):
        assert f"added    {what}" in tsubaki
    # Its backup identity and DNS record are the clinic's, not the platform's.
    assert "UserAssignedIdentity tsubaki-jibika-backup-identity" in tsubaki
    assert "PrivateRecordSet dns-tsubaki-jibika" in tsubaki
    assert "### Clinic data deleted or replaced: none" in out
    # The new clinic's monthly cost from the planner, beside the data-loss section (issue 28 item 2).
    assert re.search(r"clinic tsubaki-jibika: \$\d+\.\d\d~? a month pay-as-you-go", out.split("### Cost")[1])
    markdown = (two_commits / "diff.md").read_text(encoding="utf-8")
    assert markdown.startswith("<!-- orca-platform:make-diff -->")
    assert "#### midori-kodomo (changed)" in markdown


# --- data loss is flagged first (pure: two renders of the same stack, one edited) --------------------------------


@pytest.fixture(scope="module")
def dev_rendered_twice(dev_run: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[RenderedStack, Path]:
    folder = tmp_path_factory.mktemp("diff") / "dev"
    write(dev_run, folder)
    return load(folder), folder


def edited(stack: RenderedStack) -> RenderedStack:
    return copy.deepcopy(stack)


def _find(stack: RenderedStack, display: str) -> str:
    return next(urn for urn, r in stack.resources.items() if r.display == display)


def test_an_unchanged_stack_has_no_diff(dev_rendered_twice: tuple[RenderedStack, Path]) -> None:
    base, _ = dev_rendered_twice
    result = diff.compare(base, edited(base), "dev")
    assert result.platform == [] and result.clinics == {}


def test_a_pvc_storage_class_change_is_a_replace_of_clinic_data(
    dev_rendered_twice: tuple[RenderedStack, Path],
) -> None:
    base, _ = dev_rendered_twice
    head = edited(base)
    pvc = head.resources[_find(head, "PersistentVolumeClaim orca-test-aoba/orca-state")]
    pvc.inputs["spec"]["storageClassName"] = "orca-disk-premium-lrs"
    result = diff.compare(base, head, "dev")
    assert list(result.clinics) == ["test-aoba"]
    [(owner, _, why)] = result.dangers
    assert owner == "test-aoba"
    assert why.startswith("PVC replaced: immutable spec.storageClassName")
    text = diff.render([result], "base", "head")
    assert text.index("!! test-aoba") < text.index("### Platform")


def test_growing_a_volume_is_not_flagged_but_shrinking_is(dev_rendered_twice: tuple[RenderedStack, Path]) -> None:
    base, _ = dev_rendered_twice
    for size, flagged in (("200Gi", False), ("50Gi", True)):
        head = edited(base)
        pvc = head.resources[_find(head, "PersistentVolumeClaim orca-test-sakura/orca-state")]
        pvc.inputs["spec"]["resources"]["requests"]["storage"] = size
        result = diff.compare(base, head, "dev")
        assert bool(result.dangers) is flagged, result.dangers


def test_a_removed_clinic_lists_its_volume_namespace_secret_and_passwords_as_deleted(
    dev_rendered_twice: tuple[RenderedStack, Path],
) -> None:
    base, _ = dev_rendered_twice
    head = edited(base)
    for urn in [u for u, r in head.resources.items() if head.clinic_of(r) == "test-midori"]:
        del head.resources[urn]
    del head.outputs["clinics"]["test-midori"]
    result = diff.compare(base, head, "dev")
    assert result.clinic_status == {"test-midori": "removed"}
    flagged = {(d.res.kind, why.split(" (")[0]) for _, d, why in result.dangers}
    assert flagged == {
        ("PersistentVolumeClaim", "PersistentVolumeClaim removed"),
        ("Namespace", "Namespace removed"),
        ("Secret", "Secret removed"),
        ("RandomPassword", "password removed"),
    }


def test_a_changed_password_generator_is_flagged(dev_rendered_twice: tuple[RenderedStack, Path]) -> None:
    base, _ = dev_rendered_twice
    head = edited(base)
    pw = head.resources[_find(head, "RandomPassword test-sakura-db-password")]
    pw.inputs["length"] = 24
    [(owner, _, why)] = diff.compare(base, head, "dev").dangers
    assert owner == "test-sakura" and why.startswith("password regenerated")


def test_fields_are_shown_by_dotted_path_with_named_list_items() -> None:
    value = {"spec": {"containers": [{"name": "orca", "image": "a:1"}], "ports": [80, 443]}}
    assert dict(diff.flatten(value)) == {
        "spec.containers[orca].image": "a:1",
        "spec.containers[orca].name": "orca",
        "spec.ports[0]": 80,
        "spec.ports[1]": 443,
    }
