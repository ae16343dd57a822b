"""Ties `pulumi up` to the gated preview: `make up` refuses when the stack or what the program reads moved since.

    python -m tools.deploy.binding record --stack S --out FILE [--pulumi CLI] [--tenants FILE]
    python -m tools.deploy.binding check  --stack S --binding FILE [--pulumi CLI] [--tenants FILE]
    python -m tools.deploy.binding cli    --want 3.x.y [--pulumi CLI]

`make gate` records, before its preview, the stack's last update (`pulumi stack history --json`: the diy backend
lists the newest first, pkg/backend/diy/state.go getHistory, without versions: then the number of entries), a hash
of its checkpoint (`pulumi stack export`: a `pulumi state` edit adds no history entry) and a hash of every input of
the program: the commit, the working tree's changes, Pulumi.yaml, the stack file, its tenants file, the requirement
pins, the CLI's version and its plugins. `make up` checks them again just before `pulumi up`: another operator's
update or state edit, an edited tenants or stack file, another CLI or plugin means the update would not run what
the gate judged. `cli` refuses a CLI other than the Makefile's pin, or one outside the range the gate was read
against.

Exit status: 0 unchanged, 1 something moved (named), 2 a command or file could not be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.deploy.gate import PROJECT_DIR, stack_tenants_file

EXIT_OK, EXIT_MOVED, EXIT_INPUT = 0, 1, 2
# The CLI versions whose digest the gate was read against (op names: pkg/resource/deploy/step.go; the digest:
# pkg/backend/display/json.go; read at pulumi/pulumi 3.260.0). A 4.x may change either: re-read before widening.
SUPPORTED = ((3, 260, 0), (4, 0, 0))
PINS = ("Pulumi.yaml", "requirements.txt", "policy/requirements.txt", "policy/PulumiPolicy.yaml")

Runner = Callable[[Sequence[str], Path], str]


class BindingError(Exception):
    """A command or file the binding needs could not be read."""


def run(cmd: Sequence[str], cwd: Path) -> str:
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False, timeout=600)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BindingError(f"`{' '.join(cmd)}` could not run: {exc}") from None
    if done.returncode != 0:
        raise BindingError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[:400]}")
    return done.stdout


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def parse_version(text: str) -> tuple[int, int, int]:
    found = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not found:
        raise BindingError(f"`pulumi version` printed {text.strip()!r}: no version")
    major, minor, patch = (int(g) for g in found.groups())
    return major, minor, patch


def check_cli(printed: str, want: str) -> list[str]:
    """Problems with the installed CLI: not the pinned version, or the pin outside the supported range."""
    have, pinned = parse_version(printed), parse_version(want)
    low, high = SUPPORTED
    problems = []
    if not low <= pinned < high:
        problems.append(
            f"PULUMI_VERSION {want} is outside {'.'.join(map(str, low))} <= v < {'.'.join(map(str, high))}, the "
            "CLIs whose preview digest the gate was read against (tools/deploy/binding.py SUPPORTED)"
        )
    if have != pinned:
        problems.append(
            f"the Pulumi CLI is {'.'.join(map(str, have))}, the Makefile pins {want}: install that version "
            "(curl -fsSL https://get.pulumi.com | sh -s -- --version " + want + ") or change the pin on purpose"
        )
    return problems


def _tree(project: Path, runner: Runner) -> dict[str, Any]:
    status = runner(["git", "status", "--porcelain", "--untracked-files=all"], project)
    changed = sorted(line[3:].split(" -> ")[-1] for line in status.splitlines() if line.strip())
    contents = {p: _sha((project / p).read_bytes()) if (project / p).is_file() else "-" for p in changed}
    return {
        "commit": runner(["git", "rev-parse", "HEAD"], project).strip(),
        "clean": not changed,
        "changed": contents,
    }


def update_mark(history: list[dict[str, Any]]) -> int:
    """The stack's last update: the newest entry's version, or on the diy backend, which records none (its UpdateInfo
    has no Version: pkg/backend/diy/backend.go apply, so every entry prints 0), the number of entries."""
    if not history:
        return 0
    version = int(history[0].get("version") or 0)
    return version if version else len(history)


def fingerprint(stack: str, project: Path, tenants: Path | None, pulumi: str, runner: Runner = run) -> dict[str, Any]:
    """What the update will act on and what the program will read, as hashes (no value is kept)."""
    history = json.loads(runner([pulumi, "stack", "history", "--stack", stack, "--json"], project) or "[]")
    files: dict[str, str] = {}
    for name in (*PINS, f"Pulumi.{stack}.yaml"):
        path = project / name
        files[name] = _sha(path.read_bytes()) if path.is_file() else "-"
    tenants = tenants or stack_tenants_file(stack, project)
    if tenants is not None:
        files[f"tenants:{tenants}"] = _sha(tenants.read_bytes()) if tenants.is_file() else "-"
    return {
        "stack": stack,
        "version": update_mark(history),
        "state": _sha(runner([pulumi, "stack", "export", "--stack", stack], project)),
        "tree": _tree(project, runner),
        "files": files,
        "cli": runner([pulumi, "version"], project).strip(),
        "plugins": _sha(runner([pulumi, "plugin", "ls", "--json"], project)),
    }


def moved(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What changed between the gate and now, one line each."""
    out: list[str] = []
    if before.get("stack") != now["stack"]:
        out.append(f"the gate judged stack {before.get('stack')}, this is {now['stack']}: run make up STACK=…")
    if before.get("version") != now["version"]:
        out.append(
            f"the stack's last update moved from version {before.get('version')} to {now['version']} "
            "(`pulumi stack history`): another update ran after the gate"
        )
    elif before.get("state") != now["state"]:
        out.append("the stack's state changed without an update (a `pulumi state` edit or an import)")
    if before.get("tree", {}).get("commit") != now["tree"]["commit"]:
        out.append(f"the commit moved from {before.get('tree', {}).get('commit')} to {now['tree']['commit']}")
    was: dict[str, str] = before.get("tree", {}).get("changed", {})
    if was != now["tree"]["changed"]:
        edited = {p for p in set(was) | set(now["tree"]["changed"]) if was.get(p) != now["tree"]["changed"].get(p)}
        out.append("the working tree changed: " + ", ".join(sorted(edited)))
    if not now["tree"]["clean"]:
        out.append("the working tree is not clean: commit or stash, then run make up again (the gate judges commits)")
    for name in sorted(set(before.get("files", {})) | set(now["files"])):
        if before.get("files", {}).get(name) != now["files"].get(name):
            out.append(f"{name.removeprefix('tenants:')} changed after the gate")
    if before.get("cli") != now["cli"]:
        out.append(f"the Pulumi CLI changed from {before.get('cli')} to {now['cli']}")
    if before.get("plugins") != now["plugins"]:
        out.append("the installed plugins changed (`pulumi plugin ls`)")
    return out


def main(argv: list[str] | None = None, runner: Runner = run) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("record", "check", "cli"))
    ap.add_argument("--stack", default="")
    ap.add_argument("--out", default="", help="record: where to write the binding")
    ap.add_argument("--binding", default="", help="check: the binding `make gate` recorded")
    ap.add_argument("--tenants", default="")
    ap.add_argument("--pulumi", default="pulumi")
    ap.add_argument("--want", default="", help="cli: the pinned version (the Makefile's PULUMI_VERSION)")
    ap.add_argument("--project-dir", default=str(PROJECT_DIR))
    args = ap.parse_args(argv)
    project = Path(args.project_dir)
    tenants = Path(args.tenants) if args.tenants else None
    try:
        if args.action == "cli":
            problems = check_cli(runner([args.pulumi, "version"], project), args.want)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return EXIT_MOVED if problems else EXIT_OK
        now = fingerprint(args.stack, project, tenants, args.pulumi, runner)
        if args.action == "record":
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(now, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            return EXIT_OK
        try:
            before = json.loads(Path(args.binding).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            print(f"error: no gate record at {args.binding}: run make up (it runs the gate first)", file=sys.stderr)
            return EXIT_MOVED
    except (BindingError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    changes = moved(before, now)
    for change in changes:
        print(f"error: {change}", file=sys.stderr)
    if changes:
        print(
            "pulumi up not started: the gated preview no longer describes this update; run make up again",
            file=sys.stderr,
        )
        return EXIT_MOVED
    print(
        f"binding: stack {now['stack']} at version {now['version']}, commit {now['tree']['commit'][:12]}: "
        "unchanged since the gate"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
