"""Security scan of rendered Kubernetes objects with checkov, offline, against one list of justified skips.

checkov runs from its own virtualenv (its pins clash with the program's) with `--skip-download`, no API key and no
update check, so it never reaches the network. Every check runs; a failure is accepted only where
tools/checks/checkov-skips.yaml names its check id (and, for most, the resources) with a reason.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SKIPS_FILE = Path(__file__).resolve().parent / "checkov-skips.yaml"
# Environment variables that would make checkov talk to a platform, or change what it checks.
_SCRUBBED = ("BC_API_KEY", "PRISMA_API_URL", "BC_API_URL", "CKV_CHECK", "CKV_SKIP_CHECK", "CKV_FRAMEWORK")


@dataclass(frozen=True)
class Skip:
    check_id: str
    reason: str
    resources: tuple[str, ...] = ()  # fnmatch patterns on checkov's resource id (Kind.namespace.name); () = all

    def covers(self, check_id: str, resource: str) -> bool:
        return check_id == self.check_id and (
            not self.resources or any(fnmatch.fnmatchcase(resource, p) for p in self.resources)
        )


@dataclass(frozen=True)
class Failure:
    check_id: str
    name: str
    resource: str
    file: str


@dataclass
class ScanResult:
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)  # not covered by a skip
    waived: list[tuple[Failure, Skip]] = field(default_factory=list)
    unused_skips: list[Skip] = field(default_factory=list)
    resources: int = 0


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    skips = []
    for entry in doc.get("skips") or []:
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise ValueError(f"{path.name}: {entry.get('id')} has no reason; every skip must say why")
        skips.append(Skip(str(entry["id"]), reason, tuple(entry.get("resources") or ())))
    return skips


def checkov_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["BC_SKIP_MAPPING"] = "TRUE"  # no download of check metadata from the platform
    env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] = "true"  # no version look-up on start
    env["LOG_LEVEL"] = env.get("CHECKOV_LOG_LEVEL", "WARNING")
    return env


def run_checkov(scan_python: Path, directories: Sequence[Path], work: Path) -> dict[str, Any]:
    """Run checkov's Kubernetes framework over each directory (one run each: checkov 3.3 mixes up repeated
    --directory flags) and merge the JSON reports."""
    merged: dict[str, Any] = {"passed_checks": [], "failed_checks": [], "resource_count": 0}
    for i, directory in enumerate(directories):
        out = work / f"{i}-{directory.parent.name or 'objects'}"
        for rep in _checkov_reports(scan_python, directory, out):
            results = rep.get("results") or {}
            merged["passed_checks"] += results.get("passed_checks") or []
            merged["failed_checks"] += results.get("failed_checks") or []
            merged["resource_count"] += (rep.get("summary") or {}).get("resource_count", 0)
    return merged


def _checkov_reports(scan_python: Path, directory: Path, out: Path) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    report_file = out / "results_json.json"
    report_file.unlink(missing_ok=True)
    # absolute() and not resolve(): the venv's python is a symlink, and resolving it would leave the venv.
    cmd = [str(scan_python.absolute()), "-W", "ignore", "-m", "checkov.main", "--framework", "kubernetes"]
    cmd += ["--skip-download", "--directory", str(directory.absolute())]
    cmd += ["--output", "json", "--output-file-path", str(out.absolute())]
    # cwd is the output folder so that no .checkov.yaml of the repository or the user changes the run.
    proc = subprocess.run(cmd, cwd=out, env=checkov_env(), capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode not in (0, 1) or not report_file.exists():
        raise RuntimeError(f"checkov failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    data: Any = json.loads(report_file.read_text(encoding="utf-8"))
    # One framework gives one report object; an empty folder gives a bare summary without results.
    return [d for d in (data if isinstance(data, list) else [data]) if isinstance(d, dict)]


def evaluate(report: dict[str, Any], skips: Sequence[Skip]) -> ScanResult:
    result = ScanResult(passed=len(report["passed_checks"]), resources=int(report["resource_count"]))
    used: set[Skip] = set()
    for item in report["failed_checks"]:
        failure = Failure(str(item["check_id"]), str(item["check_name"]), str(item["resource"]), str(item["file_path"]))
        skip = next((s for s in skips if s.covers(failure.check_id, failure.resource)), None)
        if skip is None:
            result.failures.append(failure)
        else:
            used.add(skip)
            result.waived.append((failure, skip))
    result.unused_skips = [s for s in skips if s not in used]
    return result


def scan(scan_python: Path, directories: Sequence[Path], work: Path, skips: Sequence[Skip] | None = None) -> ScanResult:
    return evaluate(run_checkov(scan_python, directories, work), load_skips() if skips is None else skips)
