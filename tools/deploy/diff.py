"""`make diff BASE=<git ref>`: what a change does to the platform and to each clinic, from the rendered objects.

Renders BASE (its files from `git archive`, run with the current virtualenv through its own tools/offline/synth.py) and
the
working tree, both offline, then prints per stack:

1. every delete or replace of clinic data first: a clinic's PVC, namespace, Secret or generated password removed, a
   PVC's immutable field changed (Kubernetes refuses the change, so Pulumi replaces the claim), a volume shrunk, a
   password's generator changed (a new password), `protect` taken off something that holds clinic data;
2. the platform's resources added, changed (field by field, dotted paths) and removed;
3. each clinic that changed, with the same detail; clinics that did not change are not mentioned.

Secrets are already redacted by synth ("[secret]"), so a diff never shows one. Exit status 0 (the diff is a report,
not a gate: `pulumi preview --policy-pack policy` is the gate), 2 when a revision cannot be rendered.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from tools.cli import run
from tools.deploy.costs import cost_flags
from tools.deploy.effects import Effects, exposure_of, is_pre_upgrade_backup, server_change
from tools.offline.engine import PROJECT_DIR
from tools.offline.rendered import RenderedStack, Resource, load

STACKS = ("dev", "prod")
DATA_KINDS = ("PersistentVolumeClaim", "Namespace", "Secret")
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type token
# The only PVC fields Kubernetes lets an existing claim change (the API rejects the rest: Pulumi replaces).
PVC_MUTABLE = ("spec.resources.requests", "spec.volumeAttributesClassName")
MISSING = object()
# Lists whose order carries no meaning (ranges, prefixes, access modes, capabilities, zones): compared as sets.
SET_FIELDS = frozenset(
    {
        "authorizedIPRanges",
        "addressPrefixes",
        "sourceAddressPrefixes",
        "destinationAddressPrefixes",
        "destinationPortRanges",
        "accessModes",
        "drop",
        "add",
        "ipRules",
        "virtualNetworkRules",
        "adminGroupObjectIDs",
        "availabilityZones",
        "zones",
        "loadBalancerSourceRanges",
    }
)


class RenderFailedError(Exception):
    """A revision's program stopped, or its files could not be had."""


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


@dataclass
class ResourceDiff:
    status: str  # added | removed | changed
    res: Resource
    changes: list[Change] = field(default_factory=list)
    dangers: list[str] = field(default_factory=list)


@dataclass
class StackDiff:
    stack: str
    platform: list[ResourceDiff] = field(default_factory=list)
    clinics: dict[str, list[ResourceDiff]] = field(default_factory=dict)
    clinic_status: dict[str, str] = field(default_factory=dict)  # added | removed | changed
    absent: str = ""  # "base" or "head" when the stack exists in one revision only
    costs: list[str] = field(default_factory=list)  # the new clinics' monthly costs and pins (the working tree's)

    @property
    def effects(self) -> Effects:
        """The servers that stop or restart, the pre-upgrade backups that run, the exposure that changes."""
        found = Effects()
        owned = [("", d) for d in self.platform] + [(c, d) for c, ds in sorted(self.clinics.items()) for d in ds]
        for clinic, d in owned:
            if d.status == "added" and clinic and is_pre_upgrade_backup(d.res.kind, d.res.name):
                found.backups.setdefault(clinic, []).append(d.res.name)
            if d.status != "changed":
                continue
            if d.res.kind == "Deployment" and clinic:
                replicas = next(((c.before, c.after) for c in d.changes if c.path == "spec.replicas"), (None, None))
                why = server_change([c.path for c in d.changes], replicas)
                if why:
                    found.restarts.setdefault(clinic, []).extend(why)
            where = clinic or ("backup store" if "BackupStorage" in d.res.urn else d.res.name)
            found.exposure += [line for c in d.changes if (line := exposure_of(d.res.kind, where, c.path))]
        return found

    @property
    def dangers(self) -> list[tuple[str, ResourceDiff, str]]:
        found = [("(platform)", d, why) for d in self.platform for why in d.dangers]
        for cid, diffs in sorted(self.clinics.items()):
            found += [(cid, d, why) for d in diffs for why in d.dangers]
        return found


# --- comparing -------------------------------------------------------------------------------------------------


def _key(item: Any) -> str | None:
    return str(item["name"]) if isinstance(item, dict) and isinstance(item.get("name"), str) else None


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) pairs; list items with a unique `name` are addressed by it (containers[orca].image)."""
    if isinstance(value, dict) and value:
        for k in sorted(value):
            yield from flatten(value[k], f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        if path.rsplit(".", 1)[-1] in SET_FIELDS:
            value = sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=str))
        keys = [_key(v) for v in value]
        named = all(keys) and len(set(keys)) == len(keys)
        for i, v in enumerate(value):
            yield from flatten(v, f"{path}[{keys[i] if named else i}]")
    else:
        yield path, value


def field_changes(before: Resource, after: Resource) -> list[Change]:
    old = dict(flatten({"inputs": before.inputs, "options": before.options}))
    new = dict(flatten({"inputs": after.inputs, "options": after.options}))
    # What Pulumi will not change: ignoreChanges keeps the old value of those input paths before it diffs.
    ignored = [str(i) for i in after.options.get("ignoreChanges") or []]
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, MISSING), new.get(path, MISSING)
        shown = path.removeprefix("inputs.")
        hidden = path.startswith("inputs.") and any(shown == i or shown.startswith((f"{i}.", f"{i}[")) for i in ignored)
        if a != b and not hidden:
            changes.append(Change(shown, a, b))
    return changes


def _gib(quantity: Any) -> float | None:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    text = str(quantity)
    for suffix, factor in units.items():
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    return None


def holds_clinic_data(res: Resource) -> bool:
    return res.kind in DATA_KINDS or res.type == PASSWORD_TYPE or bool(res.options.get("protect"))


def dangers_of(status: str, before: Resource | None, after: Resource | None, changes: list[Change]) -> list[str]:
    """Why this change deletes or replaces clinic data (empty: it does not)."""
    res = after or before
    if res is None:
        return []
    if status == "removed" and before is not None and holds_clinic_data(before):
        what = "password" if before.type == PASSWORD_TYPE else before.kind
        kept = " (protected: `pulumi up` stops instead)" if before.options.get("protect") else ""
        return [f"{what} removed{kept}"]
    if status != "changed":
        return []
    found: list[str] = []
    for c in changes:
        if c.path == "options.protect" and c.before is True and c.after is not True and holds_clinic_data(res):
            found.append("protect taken off")
        if c.path in ("metadata.name", "metadata.namespace") and res.kind in DATA_KINDS:
            found.append(f"{res.kind} replaced: {c.path} {show(c.before)} -> {show(c.after)}")
    if res.kind == "PersistentVolumeClaim":
        for c in changes:
            if c.path.startswith("spec.") and not c.path.startswith(PVC_MUTABLE):
                found.append(f"PVC replaced: immutable {c.path} {show(c.before)} -> {show(c.after)}")
            if c.path == "spec.resources.requests.storage":
                old, new = _gib(c.before), _gib(c.after)
                if old is not None and new is not None and new < old:
                    found.append(f"volume shrunk {show(c.before)} -> {show(c.after)}: Kubernetes refuses it")
    if res.type == PASSWORD_TYPE and any(not c.path.startswith("options.") for c in changes):
        found.append("password regenerated: its generator's inputs changed (the old password stops working)")
    return found


def compare(base: RenderedStack, head: RenderedStack, stack: str) -> StackDiff:
    result = StackDiff(stack)
    known = set(base.clinics) | set(head.clinics)
    for urn in sorted(base.resources.keys() | head.resources.keys()):
        before, after = base.resources.get(urn), head.resources.get(urn)
        if before is not None and after is not None:
            changes = field_changes(before, after)
            if not changes:
                continue
            diff = ResourceDiff("changed", after, changes, dangers_of("changed", before, after, changes))
        elif after is not None:
            diff = ResourceDiff("added", after)
        elif before is not None:
            diff = ResourceDiff("removed", before, dangers=dangers_of("removed", before, None, []))
        else:
            continue
        owner = head.clinic_of(diff.res, known) if after is not None else base.clinic_of(diff.res, known)
        if owner is None:
            result.platform.append(diff)
        else:
            result.clinics.setdefault(owner, []).append(diff)
    for cid in result.clinics:
        result.clinic_status[cid] = (
            "added" if cid not in base.clinics else "removed" if cid not in head.clinics else "changed"
        )
    return result


# --- rendering the revisions -----------------------------------------------------------------------------------


def git(args: list[str], cwd: Path) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)  # noqa: S603,S607
    if done.returncode != 0:
        raise RenderFailedError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def export_revision(ref: str, repo: Path, into: Path) -> str:
    """The files of `ref` (committed content only) in `into`; returns the commit's short id."""
    commit = git(["rev-parse", "--short", f"{ref}^{{commit}}"], repo).decode().strip()
    archive = git(["archive", "--format=tar", commit], repo)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def synth(project: Path, stack: str, out: Path) -> RenderedStack | None:
    """Run a revision's own synth with this interpreter; None when the revision has no such stack."""
    if not (project / f"Pulumi.{stack}.yaml").exists():
        return None
    done = subprocess.run(  # noqa: S603 - our interpreter, the revision's own module
        [sys.executable, "-m", "tools.offline.synth", "--stack", stack, "--out", str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RenderFailedError(f"{project}: synth of {stack} failed:\n{done.stderr.strip() or done.stdout.strip()}")
    return load(out)


# --- printing --------------------------------------------------------------------------------------------------


def show(value: Any) -> str:
    if value is MISSING:
        return "(none)"
    text = str(value) if isinstance(value, str) else repr(value) if not isinstance(value, bool) else str(value).lower()
    text = text.replace("\n", "\\n")
    return text if len(text) <= 100 else text[:97] + "..."


def _resource_lines(d: ResourceDiff, indent: str) -> list[str]:
    lines = [f"{indent}{d.status:<8} {d.res.display}"]
    for c in d.changes:
        lines.append(f"{indent}    {c.path}: {show(c.before)} -> {show(c.after)}")
    return lines


def render(diffs: list[StackDiff], base_label: str, head_label: str) -> str:
    out: list[str] = []
    for sd in diffs:
        out.append(f"## Stack {sd.stack}: {base_label} -> {head_label}")
        out.append("")
        if sd.absent:
            out.append(f"(the stack does not exist in the {sd.absent} revision: everything below is new or gone)")
            out.append("")
        dangers = sd.dangers
        out.append(f"### Clinic data deleted or replaced: {len(dangers) or 'none'}")
        for owner, d, why in dangers:
            out.append(f"    !! {owner}: {d.res.display}: {why}")
        out.append("")
        side = sd.effects.lines()
        out.append(f"### Servers, backups and exposure{'' if side else ': none'}")
        out += [f"    {line}" for line in side]
        out.append("")
        out.append(f"### Cost of new clinics{'' if sd.costs else ': none'}")
        out += [f"    {line}" for line in sd.costs]
        out.append("")
        out.append(f"### Platform: {len(sd.platform) or 'no'} change(s)")
        for d in sd.platform:
            out += _resource_lines(d, "    ")
        out.append("")
        changed = sorted(sd.clinics)
        names = ", ".join(f"{cid} ({sd.clinic_status[cid]})" for cid in changed)
        out.append(f"### Clinics: {len(changed) or 'none'} changed{': ' + names if changed else ''}")
        for cid in changed:
            out.append("")
            out.append(f"#### {cid} ({sd.clinic_status[cid]})")
            diffs_ = sd.clinics[cid]
            if sd.clinic_status[cid] in ("added", "removed"):
                # A whole clinic: what it consists of, without every field.
                out += [f"    {d.status:<8} {d.res.display}" for d in diffs_]
            else:
                for d in diffs_:
                    out += _resource_lines(d, "    ")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def as_markdown(text: str) -> str:
    """The same report for a pull-request comment: headings stay, the detail goes in code blocks."""
    md: list[str] = ["<!-- orca-platform:make-diff -->", "# `make diff`: rendered changes per clinic", ""]
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if block:
                md += ["```", *block, "```"]
                block = []
            md += [line, ""]
        elif line.strip():
            block.append(line)
    if block:
        md += ["```", *block, "```"]
    return "\n".join(md) + "\n"


# --- command line ----------------------------------------------------------------------------------------------


def diff_stacks(base: str, stacks: list[str], repo: Path, work: Path) -> tuple[list[StackDiff], str]:
    base_dir = work / "base"
    base_dir.mkdir(parents=True)
    commit = export_revision(base, repo, base_dir)
    results = []
    for stack in stacks:
        before = synth(base_dir, stack, work / "render" / "base" / stack)
        after = synth(repo, stack, work / "render" / "head" / stack)
        if before is None and after is None:
            raise RenderFailedError(f"stack {stack} exists in neither revision (no Pulumi.{stack}.yaml)")
        empty = RenderedStack(work)
        sd = compare(before or empty, after or empty, stack)
        sd.absent = "base" if before is None else "head" if after is None else ""
        if after is not None and repo == PROJECT_DIR:  # the planner reads the working tree's inputs
            sd.costs = cost_flags(stack, [c for c, status in sd.clinic_status.items() if status == "added"])
        results.append(sd)
    return results, commit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git ref to compare the working tree with, e.g. HEAD~1, origin/main")
    ap.add_argument("--stack", nargs="+", default=list(STACKS))
    ap.add_argument("--markdown", default="", help="also write the report as Markdown (a pull-request comment) here")
    args = ap.parse_args(argv)
    repo = PROJECT_DIR
    with tempfile.TemporaryDirectory(prefix="orca-diff-") as tmp:
        try:
            results, commit = diff_stacks(args.base, args.stack, repo, Path(tmp))
        except RenderFailedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    text = render(results, f"{args.base} ({commit})", "working tree")
    print(text, end="")
    if args.markdown:
        out = Path(args.markdown)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(as_markdown(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    run(main)
