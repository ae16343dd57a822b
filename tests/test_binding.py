"""`make up` runs the update the gate judged (issue 21, item 3): tools/deploy/binding.py and the Makefile's up.

A fake `pulumi` (a shell script answering from files in its directory) stands in for the CLI: no cloud here. The git
checks run on a real repository made in tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.deploy import binding

ROOT = Path(__file__).resolve().parents[1]
FAKE = """#!/bin/sh
here="$(dirname "$0")"
echo "$*" >> "$here/calls.log"
case "$1 $2" in
  "version "*) cat "$here/version.txt" ;;
  "plugin ls") cat "$here/plugins.json" ;;
  "stack history") cat "$here/history.json" ;;
  "stack export") cat "$here/export.json" ;;
  "stack output") echo '{}' ;;
  "preview "*)
    # Another operator's update lands while the gated preview runs (the race `make up` must catch).
    if [ -f "$here/race" ]; then echo '[{"version": 8}, {"version": 7}]' > "$here/history.json"; fi
    cat "$here/preview.json" ;;
  "up "*) echo "UP RAN" ;;
esac
"""


def fake_pulumi(tmp_path: Path, version: str = "v3.272.0") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "pulumi"
    cli.write_text(FAKE, encoding="utf-8")
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "version.txt").write_text(version + "\n", encoding="utf-8")
    (bin_dir / "plugins.json").write_text('[{"name": "azure-native", "version": "3.29.0"}]\n', encoding="utf-8")
    (bin_dir / "history.json").write_text('[{"version": 7}, {"version": 6}]\n', encoding="utf-8")
    (bin_dir / "export.json").write_text('{"version": 3, "deployment": {"resources": []}}\n', encoding="utf-8")
    return cli


def project(tmp_path: Path) -> Path:
    """A committed project: Pulumi.yaml, a stack file naming its tenants file, the pins."""
    repo = tmp_path / "repo"
    (repo / "policy").mkdir(parents=True)
    (repo / "Pulumi.yaml").write_text("name: orca-platform\nruntime: python\n", encoding="utf-8")
    config = {"config": {"orca-platform:tenantsFile": "tenants.dev.yaml"}}
    (repo / "Pulumi.dev.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (repo / "tenants.dev.yaml").write_text("clinics: []\n", encoding="utf-8")
    (repo / "requirements.txt").write_text("pulumi==3.272.0\n", encoding="utf-8")
    (repo / "policy" / "requirements.txt").write_text("pulumi-policy==1.21.0\n", encoding="utf-8")
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        git(repo, *cmd)
    return repo


def git(repo: Path, *args: str) -> None:
    who = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **who})  # noqa: S603, S607


def record_then_check(tmp_path: Path, cli: Path, repo: Path, change: object = None) -> tuple[int, str]:
    out = tmp_path / "binding.json"
    args = ["--stack", "dev", "--pulumi", str(cli), "--project-dir", str(repo)]
    assert binding.main(["record", *args, "--out", str(out)]) == 0
    if callable(change):
        change()
    return binding.main(["check", *args, "--binding", str(out)]), out.read_text(encoding="utf-8")


def test_nothing_moved_lets_up_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, recorded = record_then_check(tmp_path, fake_pulumi(tmp_path), project(tmp_path))
    assert code == 0, capsys.readouterr().err
    doc = json.loads(recorded)
    assert doc["version"] == 7 and doc["tree"]["clean"]
    assert "tenants:" in " ".join(doc["files"])
    assert "pulumi==" not in recorded  # hashes, never contents


def _bump(cli: Path, text: str, name: str = "history.json") -> object:
    return lambda: (cli.parent / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda cli, repo: _bump(cli, '[{"version": 8}]'), "from version 7 to 8"),
        (
            lambda cli, repo: _bump(cli, '{"version": 3, "deployment": {"resources": [1]}}', "export.json"),
            "state changed without an update",
        ),
        (lambda cli, repo: _bump(cli, "v3.273.0", "version.txt"), "the Pulumi CLI changed"),
        (lambda cli, repo: _bump(cli, "[]", "plugins.json"), "plugins changed"),
        (lambda cli, repo: lambda: (repo / "tenants.dev.yaml").write_text("clinics: [x]\n"), "tenants.dev.yaml"),
        (lambda cli, repo: lambda: (repo / "Pulumi.dev.yaml").write_text("config: {}\n"), "Pulumi.dev.yaml changed"),
        (lambda cli, repo: lambda: (repo / "requirements.txt").write_text("pulumi==3.1.0\n"), "requirements.txt"),
        (lambda cli, repo: lambda: git(repo, "commit", "-q", "--allow-empty", "-m", "x"), "the commit moved"),
    ],
    ids=["update", "state-edit", "cli", "plugins", "tenants", "stack-file", "pins", "commit"],
)
def test_up_refuses_when_anything_moved_after_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, says: str
) -> None:
    cli, repo = fake_pulumi(tmp_path), project(tmp_path)
    code, _ = record_then_check(tmp_path, cli, repo, change(cli, repo))  # type: ignore[operator]
    assert code == 1
    err = capsys.readouterr().err
    assert says in err and "pulumi up not started" in err


def test_on_the_diy_backend_a_new_history_entry_is_a_new_update(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """azblob history entries carry no version (diy backend.go apply fills no Version): their count moves instead."""
    cli, repo = fake_pulumi(tmp_path), project(tmp_path)
    entry = '{"kind": "update", "result": "succeeded", "version": 0}'
    (cli.parent / "history.json").write_text(f"[{entry}, {entry}]", encoding="utf-8")
    code, _ = record_then_check(tmp_path, cli, repo, _bump(cli, f"[{entry}, {entry}, {entry}]"))
    assert code == 1
    assert "from version 2 to 3" in capsys.readouterr().err


def test_a_dirty_tree_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli, repo = fake_pulumi(tmp_path), project(tmp_path)
    (repo / "notes.txt").write_text("x", encoding="utf-8")
    code, _ = record_then_check(tmp_path, cli, repo)
    assert code == 1
    assert "not clean" in capsys.readouterr().err


def test_no_gate_record_no_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli, repo = fake_pulumi(tmp_path), project(tmp_path)
    args = ["check", "--stack", "dev", "--pulumi", str(cli), "--project-dir", str(repo)]
    assert binding.main([*args, "--binding", str(tmp_path / "none.json")]) == 1
    assert "no gate record" in capsys.readouterr().err


def test_a_failing_cli_is_an_input_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = project(tmp_path)
    code = binding.main(
        [
            "record",
            "--stack",
            "dev",
            "--pulumi",
            str(tmp_path / "missing"),
            "--project-dir",
            str(repo),
            "--out",
            str(tmp_path / "b.json"),
        ]
    )
    assert code == 2
    assert "could not run" in capsys.readouterr().err


# --- the CLI pin -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("printed", "want", "problems"),
    [
        ("v3.272.0\n", "3.272.0", []),
        ("v3.273.1\n", "3.272.0", ["the Pulumi CLI is 3.273.1, the Makefile pins 3.272.0"]),
        ("v3.100.0\n", "3.100.0", ["outside 3.260.0 <= v < 4.0.0"]),
        ("v4.0.0\n", "4.0.0", ["outside 3.260.0 <= v < 4.0.0"]),
    ],
)
def test_the_cli_must_be_the_pinned_version_in_the_tested_range(printed: str, want: str, problems: list[str]) -> None:
    found = binding.check_cli(printed, want)
    assert len(found) == len(problems)
    for got, expected in zip(found, problems, strict=True):
        assert expected in got


def makefile_pin() -> str:
    found = re.search(r"^PULUMI_VERSION := (\S+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert found
    return found.group(1)


def test_the_makefile_and_both_workflows_pin_the_same_cli() -> None:
    pin = makefile_pin()
    assert binding.check_cli(f"v{pin}", pin) == []
    for name in ("main.yml", "pull-request.yml"):
        doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))
        versions = [
            s["with"]["pulumi-version"]
            for job in doc["jobs"].values()
            for s in job["steps"]
            if str(s.get("uses", "")).startswith("pulumi/actions")
        ]
        assert versions and set(versions) == {pin}, (name, versions)


# --- make up -------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_up_stops_when_an_update_lands_between_the_gate_and_up(tmp_path: Path) -> None:
    cli = fake_pulumi(tmp_path)
    shutil.copy(ROOT / "tests" / "fixtures" / "preview" / "routine-change-gated.json", cli.parent / "preview.json")
    (cli.parent / "race").touch()
    done = subprocess.run(  # noqa: S603 - make, with the fake CLI
        [  # noqa: S607
            "make",
            "-s",
            "-o",
            "venv",
            "-o",
            "policy-venv",
            "up",
            "STACK=dev",
            f"PULUMI={cli}",
            f"GATE_DIR={tmp_path / 'gate'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    calls = (cli.parent / "calls.log").read_text(encoding="utf-8")
    assert "--show-replacement-steps --show-sames" in calls  # the gated preview ran, with both flags
    assert "PASSED" in done.stdout, done.stdout + done.stderr  # the gate passed the routine change ...
    assert done.returncode != 0
    assert "from version 7 to 8" in done.stderr  # ... and the binding saw the update that landed after it
    assert "UP RAN" not in done.stdout
    assert not any(line.startswith("up ") for line in calls.splitlines())
