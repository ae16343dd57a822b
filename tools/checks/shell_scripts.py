"""The shell scripts embedded in rendered Kubernetes objects, and shellcheck over them (`make checks`, check "shell").

Scripts live in two places: ConfigMap entries named `*.sh` (the backup and restore jobs mount them) and container
commands of the form `sh -c <script>` (the ORCA pod's preStop hook and seed init container, exec probes). Both run
under the image's /bin/sh, so they are checked as POSIX sh. Debian's `shellcheck` package is installed by
`make deb-shellcheck`, which `make unit` and `make checks` run first.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash")

# Accepted findings, each with its reason: (script name, shellcheck code) -> why.
ACCEPTED: dict[tuple[str, str], str] = {
    ("dump.sh", "SC2016"): (
        "the single-quoted `sh -c` runs pg_dump inside the ORCA pod, where $ORCA_DB_PASS and friends are set: "
        "they must expand there, not in the backup job"
    ),
}


@dataclass(frozen=True)
class Script:
    where: str  # e.g. "orca-x/ConfigMap/orca-backup-scripts: dump.sh"
    text: str
    shell: str  # "sh" or "bash"


def _containers(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every container spec under a pod template, at any depth (Deployment, Job, CronJob)."""
    if isinstance(node, Mapping):
        for key in ("containers", "initContainers"):
            for c in node.get(key) or []:
                if isinstance(c, Mapping):
                    yield f"{path}{key}[{c.get('name')}]", c
        for key, value in node.items():
            if key not in ("containers", "initContainers"):
                yield from _containers(value, f"{path}{key}.")
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value, path)


def _inline(command: Any) -> tuple[str, str] | None:
    """(shell, script) of `["sh", "-c", script, ...]`, else None."""
    if isinstance(command, list) and len(command) >= 3 and command[0] in SHELLS and command[1] == "-c":
        script = command[2]
        if isinstance(script, str):
            return ("bash" if command[0].endswith("bash") else "sh"), script
    return None


def scripts_in(doc: Mapping[str, Any]) -> list[Script]:
    meta = doc.get("metadata") or {}
    subject = f"{meta.get('namespace') or '_cluster'}/{doc.get('kind')}/{meta.get('name')}"
    found: list[Script] = []
    if doc.get("kind") == "ConfigMap":
        for key, value in sorted((doc.get("data") or {}).items()):
            if key.endswith(".sh") and isinstance(value, str):
                found.append(Script(f"{subject}: {key}", value, "sh"))
    for where, c in _containers(doc.get("spec") or {}, ""):
        candidates = {
            "command": c.get("command"),
            "args": c.get("args"),
            "lifecycle.preStop": ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command"),
            "lifecycle.postStart": ((c.get("lifecycle") or {}).get("postStart") or {}).get("exec", {}).get("command"),
        }
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            candidates[probe] = ((c.get(probe) or {}).get("exec") or {}).get("command")
        for label, command in candidates.items():
            inline = _inline(command)
            if inline:
                found.append(Script(f"{subject}: {where} {label}", inline[1], inline[0]))
    return found


@dataclass(frozen=True)
class Finding:
    script: Script
    report: str


def shellcheck_available() -> str | None:
    return shutil.which("shellcheck")


def check(scripts: list[Script]) -> list[Finding]:
    """shellcheck (every severity) on each script; a finding per script it complains about."""
    binary = shellcheck_available()
    if binary is None:
        raise FileNotFoundError("shellcheck is not installed: run make deb-shellcheck (Debian package shellcheck)")
    findings = []
    with tempfile.TemporaryDirectory(prefix="orca-shellcheck-") as tmp:
        for i, script in enumerate(scripts):
            path = Path(tmp) / f"script-{i}.sh"
            path.write_text(script.text, encoding="utf-8")
            name = script.where.rsplit(": ", 1)[-1]
            excluded = sorted(code for (accepted, code) in ACCEPTED if accepted == name)
            options = [f"--exclude={','.join(excluded)}"] if excluded else []
            run = subprocess.run(  # noqa: S603 - our own binary path and file
                [binary, f"--shell={script.shell}", "--format=gcc", *options, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                report = (run.stdout + run.stderr).replace(str(path), "line").strip()
                findings.append(Finding(script, report))
    return findings
