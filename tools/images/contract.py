"""The tools image's contract with the program: the scripts its containers run, the commands they call, what the
Containerfile installs, and the README's tools-image block generated from it (`make image-readme`).

The scripts are found in what the program renders, not listed by hand: every container whose image is
`backup.toolsImage`, the script its command runs (an inline `sh -c`, or a file of a mounted ConfigMap) and the
scripts that one runs in turn (`sh "$SCRIPTS/store-dump.sh"`).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.images import commands
from tools.images.build import CONTEXT, PROJECT_DIR
from tools.reports import generated_blocks

README = PROJECT_DIR / "README.md"
BLOCK = "tools image"
TARGET = "image-readme"


@dataclass(frozen=True)
class ScriptRun:
    where: str  # "<namespace>/<kind>/<name> <container>: <script>"
    text: str


def pod_specs(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from pod_specs(value)


def _mounted_file(
    path: str, container: Mapping[str, Any], pod: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]
) -> tuple[str, str] | None:
    """(key, text) of the ConfigMap entry `path` names through the container's mounts, or None."""
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        prefix = str(mount.get("mountPath", "")).rstrip("/") + "/"
        source = (volumes.get(mount.get("name")) or {}).get("configMap") or {}
        if path.startswith(prefix) and source.get("name") in config_maps:
            key = path[len(prefix) :]
            data = config_maps[source["name"]]
            if key in data:
                return key, data[key]
    return None


def _expand(path: str, env: Mapping[str, str]) -> str:
    """`$SCRIPTS/x.sh` with the container's environment."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m[1], m[0]), path)


def tools_image_scripts(objects: list[Mapping[str, Any]], tools_image: str) -> list[ScriptRun]:
    """Every script a container of `tools_image` runs, with the scripts it runs in turn."""
    maps: dict[str, dict[str, dict[str, str]]] = {}
    for obj in objects:
        if obj.get("kind") == "ConfigMap":
            meta = obj.get("metadata") or {}
            maps.setdefault(meta.get("namespace") or "", {})[meta.get("name") or ""] = dict(obj.get("data") or {})
    runs: list[ScriptRun] = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        subject = f"{meta.get('namespace')}/{obj.get('kind')}/{meta.get('name')}"
        config_maps = maps.get(meta.get("namespace") or "", {})
        for pod in pod_specs(obj.get("spec") or {}):
            for c in [*(pod.get("initContainers") or []), *pod["containers"]]:
                if c.get("image") == tools_image:
                    runs += _container_runs(f"{subject} {c.get('name')}", c, pod, config_maps)
    return runs


def _container_runs(
    where: str, c: Mapping[str, Any], pod: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]
) -> list[ScriptRun]:
    env = {e["name"]: e["value"] for e in c.get("env") or [] if isinstance(e.get("value"), str)}
    argv = [*(c.get("command") or []), *(c.get("args") or [])]
    runs: list[ScriptRun] = []
    if len(argv) >= 3 and argv[0] in commands.SHELLS and argv[1] == "-c":
        runs.append(ScriptRun(f"{where}: sh -c", argv[2]))
        pending = list(commands.scan(argv[2]).scripts)
    elif len(argv) >= 2 and argv[0] in commands.SHELLS:
        pending = [argv[1]]
    elif argv:
        # A program run directly (barman-cloud-wal-archive ...): the one command.
        return [ScriptRun(f"{where}: {argv[0]}", shlex.join(argv))]
    else:
        raise ValueError(f"{where}: no command: the tools image has no entrypoint to fall back on")
    seen: set[str] = set()
    while pending:
        path = _expand(pending.pop(), env)
        found = _mounted_file(path, c, pod, config_maps)
        if found is None:
            raise ValueError(f"{where}: runs {path}, which no mounted ConfigMap holds")
        key, text = found
        if key not in seen:
            seen.add(key)
            runs.append(ScriptRun(f"{where}: {key}", text))
            pending.extend(commands.scan(text).scripts)
    return runs


def commands_of(runs: list[ScriptRun]) -> dict[str, list[str]]:
    """command -> where it is called; ValueError naming a script whose command word is an expansion."""
    used: dict[str, list[str]] = {}
    for run in runs:
        found = commands.scan(run.text)
        if found.dynamic:
            raise ValueError(f"{run.where}: calls {sorted(found.dynamic)}: name the command, the image must have it")
        for name in found.commands:
            used.setdefault(name, []).append(run.where)
    return used


# --- what the Containerfile installs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contents:
    base: str
    apt: dict[str, str]  # package -> version, of the final stage
    pypi: dict[str, str]  # top-level requirement -> version
    npm: dict[str, str]
    user: str
    postgres_major: int
    kubectl_minor: str  # "1.34"


def contents(context: Path = CONTEXT) -> Contents:
    text = (context / "Containerfile").read_text(encoding="utf-8")
    final = text.rsplit("\nFROM ", 1)[1]
    install = final.split("apt-get install", 1)[-1].split("apt-get clean", 1)[0]
    apt = dict(re.findall(r"^\s+([a-z0-9][a-z0-9.+-]+)=(\S+?)\s*\\$", install, re.MULTILINE))
    base = re.search(r"^ARG DEBIAN_BASE=(\S+)$", text, re.MULTILINE)
    user = re.search(r"^USER (\S+)$", final, re.MULTILINE)
    requirements = (context / "requirements.txt").read_text(encoding="utf-8")
    top = re.search(r"^(barman\S*)==(\S+)$", requirements, re.MULTILINE)
    npm = json.loads((context / "package.json").read_text(encoding="utf-8"))["dependencies"]
    pg = [int(m) for m in re.findall(r"postgresql-client-([0-9]+)", " ".join(apt))]
    kubectl = [m for name in npm for m in re.findall(r"lambda-layer-kubectl-v1?([0-9]+)$", name)]
    if not (base and user and top and len(pg) == 1 and len(kubectl) == 1):
        raise ValueError(f"{context}: cannot read the base, user, barman, PostgreSQL client or kubectl it installs")
    return Contents(base[1], apt, {top[1]: top[2]}, dict(npm), user[1], pg[0], f"1.{kubectl[0]}")


def readme_block(c: Contents) -> str:
    apt = ", ".join(f"`{name}` {version}" for name, version in sorted(c.apt.items()))
    pypi = ", ".join(f"`{name}` {version}" for name, version in c.pypi.items())
    npm = ", ".join(f"`{name}` {version}" for name, version in sorted(c.npm.items()))
    return "\n".join(
        [
            f"- base `{c.base}`; user `{c.user}`; no package caches, no shell history",
            f"- Debian: {apt}",
            f"- PyPI (a virtualenv at `/opt/barman`, pins in `images/tools/requirements.txt`): {pypi}",
            f"- npm (`images/tools/package-lock.json`): {npm} (kubectl {c.kubectl_minor} only, not its helm)",
            f"- so `kubectl` {c.kubectl_minor} (a cluster of 1.{int(c.kubectl_minor[2:]) - 1} to "
            f"1.{int(c.kubectl_minor[2:]) + 1}), `pg_restore` {c.postgres_major} (dumps of servers up to "
            f"{c.postgres_major}), `barman-cloud-*`, and Debian's `sh`, coreutils and `sed`",
        ]
    )


def files() -> generated_blocks.Files:
    return {README: [(BLOCK, readme_block(contents()))]}


def main(argv: list[str] | None = None) -> int:
    return generated_blocks.main(TARGET, "write the README's tools-image block from images/tools/", files, argv)


if __name__ == "__main__":
    sys.exit(main())
