"""`make preview` / `make up`: refuse a preview that would lose, hide or roll back a clinic's data.

    python -m tools.deploy.gate --preview FILE|- [--outputs FILE] [--stack S | --tenants FILE]
                                 --preview-exit N [--format text|markdown] [--report FILE]

Reads what `pulumi preview --json` prints (the preview digest: pulumi/pulumi pkg/display/json.go `PreviewDigest`,
filled by pkg/backend/display/json.go `ShowPreviewDigest`) and, optionally, `pulumi stack output --json` of the
stack before the change (`orcaHistory` and `clinics`). Refuses, naming each URN, its clinic and what to do instead:

- a delete or replace (any replacement step) of what holds clinic data or the keys to it: a clinic's namespace,
  volume claims, credentials Secret and generated passwords; and of the AKS cluster, the ORCA pool, the clinic data
  resource group and the backup account with its group, name suffix, containers, immutability policies and lock;
- a replace of the Kubernetes provider (it replaces every object it manages);
- the creation of a claim or namespace of a clinic that already had one (an empty volume where data was: the claim
  was deleted outside Pulumi and a refresh dropped it from the state), or of new passwords for such a clinic;
- a shortened immutability period, `protect` removed from a data resource, and (with `orcaHistory`) the live volume
  of a clinic moved back to an older generation;
- a guarded resource seen only by the refresh (with `--show-sames`, what the refresh dropped and the program no
  longer registers), and a `delete-replaced` of a pending-delete copy (the engine checks no `protect` on it).

It judges only a whole digest of this project's `--stack` (tools/deploy/digest.py): `{}`, a digest without its root
Stack step or `changeSummary`, or one of another stack or project is unreadable input. A failed preview (its exit
status, an error diagnostic or `maybeCorrupt`) fails whatever else it holds. The report also lists the servers that
stop or restart, their pre-upgrade backups and the exposure changes (tools/deploy/effects.py).

A retired clinic (listed in `retiredClinicIds` of the stack's tenants file) may leave the stack, but only once each
of its data resources was unprotected on purpose (`make decommission`) and the Kubernetes ones keep their objects
(`retainOnDelete`). Nothing is ever allowed to be replaced.

Exit status: 0 nothing refused, 1 refused (or the preview itself failed), 2 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orca_platform.plan import naming
from tools.deploy import advice
from tools.deploy.digest import check_whole, load_preview
from tools.deploy.effects import Effects, exposure_of, is_pre_upgrade_backup, server_change
from tools.deploy.gate_model import (
    BACKUP,
    BACKUP_TYPES,
    CLAIM,
    DEPLOYMENT,
    DESTRUCTIVE,
    IMMUTABILITY,
    K8S_PROVIDER,
    KNOWN,
    NAMESPACE,
    PASSWORD,
    REMOVALS,
    SECRET,
    TENANT,
    Context,
    Finding,
    GateInputError,
    Guarded,
)
from tools.offline.engine_urns import Urn, parse

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXIT_OK, EXIT_REFUSED, EXIT_INPUT = 0, 1, 2

# --- reading ---------------------------------------------------------------------------------------------------------


def load_outputs(text: str, source: str, ctx: Context) -> None:
    """`pulumi stack output --json`: the clinics the stack last deployed and, when exported, their volume history."""
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise GateInputError(f"{source} is not the JSON of `pulumi stack output --json` ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise GateInputError(f"{source}: stack outputs must be a JSON object")
    clinics = doc.get("clinics")
    if isinstance(clinics, Mapping):
        ctx.known_clinics |= {str(k) for k in clinics}
    history = doc.get("orcaHistory")
    if history == "[secret]":
        ctx.notes.append("orcaHistory is a secret output: read without --show-secrets, so not used")
    elif isinstance(history, Mapping):
        version = history.get("version")
        if version != 1:
            ctx.notes.append(f"orcaHistory version {version!r}: read as version 1 (clinics, volumes, live)")
        for clinic, entry in (history.get("clinics") or {}).items():
            if isinstance(entry, Mapping):
                ctx.history[str(clinic)] = dict(entry)
                ctx.known_clinics.add(str(clinic))
    elif history is None and not ctx.known_clinics:
        ctx.notes.append("the stack has no outputs yet (a first update): nothing existed before")


def load_tenants(path: Path, ctx: Context) -> None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        ctx.notes.append(f"{path.name} not read ({exc.__class__.__name__}): retirements unknown")
        return
    clinics = doc.get("clinics") if isinstance(doc, dict) else None
    ctx.tenants = {str(c.get("id")) for c in clinics or [] if isinstance(c, dict) and c.get("id")}
    ctx.retired = {str(c) for c in (doc.get("retiredClinicIds") or [])}
    ctx.tenants_file = path.name


def stack_tenants_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path | None:
    """The stack's `orca-platform:tenantsFile`, as the program resolves it."""
    try:
        doc = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    value = (doc.get("config") or {}).get("orca-platform:tenantsFile")
    if not isinstance(value, str):
        return None
    path = Path(value)
    return path if path.is_absolute() else project_dir / path


# --- what a step touches ---------------------------------------------------------------------------------------------


def _state(step: Mapping[str, Any]) -> dict[str, Any]:
    state = step.get("newState") or step.get("oldState") or {}
    return state if isinstance(state, dict) else {}


def _meta(state: Mapping[str, Any]) -> dict[str, Any]:
    meta = (state.get("inputs") or {}).get("metadata") or (state.get("outputs") or {}).get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def _clinic(step: Mapping[str, Any], *suffixes: str) -> str | None:
    """The clinic a resource belongs to: its OrcaTenant parent, else its labels or namespace, else its name."""
    state = _state(step)
    parent = str(state.get("parent") or "")
    try:
        if parent and parse(parent).type == TENANT:
            return parse(parent).name
    except ValueError:
        pass
    meta = _meta(state)
    label = (meta.get("labels") or {}).get(naming.CLINIC_LABEL)
    if label:
        return str(label)
    ns = str(meta.get("namespace") or (meta.get("name") if state.get("type") == NAMESPACE else "") or "")
    if ns.startswith(naming.namespace("")):
        return ns[len(naming.namespace("")) :]
    urn = parse(str(step["urn"]))
    if TENANT in urn.parent_types:
        for suffix in suffixes:
            if suffix in urn.name:
                return urn.name.split(suffix, 1)[0]
    return None


def _clinic_resource(step: Mapping[str, Any], type_: str, urn: Urn) -> Guarded | None:
    """A clinic's namespace, claims, credentials Secret or passwords."""
    meta = _meta(_state(step))
    name = str(meta.get("name") or "")
    in_tenant = TENANT in urn.parent_types
    labelled = bool((meta.get("labels") or {}).get(naming.CLINIC_LABEL))
    found: Guarded | None = None
    if type_ == NAMESPACE and (in_tenant or labelled):
        found = Guarded("clinic namespace", "namespace", _clinic(step, "-ns"), name)
    elif type_ == CLAIM:  # every claim this program makes holds a clinic's data
        found = Guarded("clinic volume claim", "claim", _clinic(step, f"-{naming.STATE_PVC}"), name)
    elif type_ == SECRET and (in_tenant or name == naming.CREDENTIALS_SECRET):
        found = Guarded("clinic credentials Secret", "secret", _clinic(step, "-credentials"), name)
    elif type_ == PASSWORD and in_tenant:
        clinic = _clinic(step, "-ormaster-password", "-db-password")
        found = Guarded("clinic generated password", "password", clinic, urn.name)
    return found


def _platform_resource(step: Mapping[str, Any], type_: str, urn: Urn) -> Guarded | None:
    """The cluster, the ORCA pool, the clinic data group, the backup store, the Kubernetes provider."""
    inputs = _state(step).get("inputs") or {}
    checks = (
        (type_ == "azure-native:containerservice:ManagedCluster", "AKS cluster", "cluster"),
        (
            type_ == "azure-native:containerservice:AgentPool"
            and (inputs.get("agentPoolName") == "orca" or urn.name == "pool-orca"),
            "ORCA agent pool",
            "pool",
        ),
        (
            type_ == "azure-native:resources:ResourceGroup"
            and ((inputs.get("tags") or {}).get("dataClass") == "clinic-records" or urn.name == "rg-data"),
            "clinic data resource group",
            "data-group",
        ),
        (BACKUP in urn.parent_types and type_ in BACKUP_TYPES, BACKUP_TYPES.get(type_, ""), "backup"),
        (type_ == K8S_PROVIDER, "Kubernetes provider", "provider"),
    )
    return next((Guarded(kind, category) for hit, kind, category in checks if hit), None)


def classify(step: Mapping[str, Any]) -> Guarded | None:
    urn = parse(str(step["urn"]))
    type_ = str(_state(step).get("type") or urn.type)
    return _clinic_resource(step, type_, urn) or _platform_resource(step, type_, urn)


# --- judging ---------------------------------------------------------------------------------------------------------


def _judge_retired(step: Mapping[str, Any], g: Guarded, ctx: Context) -> tuple[str, str] | None:
    """A retired clinic's data resource leaves the stack only unprotected, and keeping its Kubernetes object."""
    old = step.get("oldState") or {}
    if old.get("protect"):
        return (
            f"clinic {g.clinic} is retired but this resource is still protected",
            advice.unprotect(ctx, g.clinic or "", str(step["urn"])),
        )
    if g.category != "password" and not old.get("retainOnDelete"):
        return (
            "leaving the stack would delete the object in the cluster (no retainOnDelete in the state)",
            "run one `make up` with the clinic still listed (the program sets retainOnDelete), then retire it",
        )
    return None


def _judge_removal(step: Mapping[str, Any], g: Guarded, ctx: Context) -> tuple[str, str] | None:
    """Why a delete is refused, and what to do; None when a retired clinic leaves the stack as it should."""
    clinic = g.clinic
    if clinic and clinic in ctx.retired and g.category in ("namespace", "claim", "secret", "password"):
        return _judge_retired(step, g, ctx)
    verdict = (
        "the program no longer registers this resource",
        "revert the change that renamed or removed it (a renamed resource needs an alias to keep its URN)",
    )
    if clinic and (clinic in ctx.removed or (ctx.tenants is not None and clinic not in ctx.tenants)):
        renamed = f" ({', '.join(sorted(ctx.added))} is new: an id rename is a removal plus a new clinic)"
        verdict = (
            f"clinic {clinic} is no longer deployed and not in retiredClinicIds" + (renamed if ctx.added else ""),
            advice.removed_clinic(ctx, clinic),
        )
    elif g.category == "claim" and clinic:
        verdict = (
            f"a volume generation of clinic {clinic} would leave the stack",
            "restores are append-only: put the removed or edited entry of `restores` back as it was",
        )
    elif g.category == "provider":
        verdict = ("the Kubernetes provider would be deleted with every object it manages", advice.PROVIDER)
    return verdict


def _judge_replacement(step: Mapping[str, Any], g: Guarded, replaced_provider: bool) -> tuple[str, str]:
    reasons = [str(r) for r in step.get("replaceReasons") or []]
    because = f" (replaceReasons: {', '.join(reasons)})" if reasons else ""
    if g.category == "provider":
        todo = advice.NEW_CLUSTER if "clusterIdentifier" in reasons else advice.PROVIDER
        return (f"the Kubernetes provider would be replaced{because}, and with it every object", todo)
    if "provider" in reasons:
        cause = "the Kubernetes provider is replaced" if replaced_provider else "its provider changed"
        return (f"replaced because {cause}", "fix the provider's replacement above; nothing else here changed")
    if g.category == "claim":
        return (f"the clinic's volume would be replaced by an empty one{because}", advice.CLAIM_REPLACE)
    if g.category == "namespace":
        return (f"the clinic's namespace (and every claim in it) would be replaced{because}", advice.NAMESPACE_REPLACE)
    if g.category in ("secret", "password"):
        return (f"the clinic's passwords would change{because}", advice.CREDENTIALS_REPLACE)
    return (f"the {g.kind} would be replaced{because}", advice.platform(g))


def _existed(step: Mapping[str, Any], g: Guarded, ctx: Context) -> str | None:
    """Evidence that a created claim, namespace or password replaces one that existed, or None."""
    if str(step["urn"]) in ctx.refreshed:
        return "it was in the state until this preview's refresh found it gone"
    clinic = g.clinic or ""
    past = ctx.history.get(clinic)
    claim = g.category == "claim"
    evidence: str | None = None
    if past is not None:
        volumes = [str(v) for v in past.get("volumes") or []]
        if not claim:
            evidence = f"orcaHistory lists clinic {clinic}"
        elif g.object_name in volumes:
            evidence = f"orcaHistory lists {g.object_name} among its volumes"
    elif clinic in ctx.known_clinics:
        if not claim:
            evidence = f"clinic {clinic} is in the stack's `clinics` output"
        elif g.object_name == naming.STATE_PVC:
            evidence = f"clinic {clinic} is deployed and {naming.STATE_PVC} is its first volume"
    return evidence


def _claim_of(state: Mapping[str, Any]) -> str | None:
    spec = ((state.get("inputs") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    for volume in spec.get("volumes") or []:
        claim = (volume or {}).get("persistentVolumeClaim") or {}
        if claim.get("claimName"):
            return str(claim["claimName"])
    return None


def _judge_update(step: Mapping[str, Any], g: Guarded | None, ctx: Context) -> tuple[Guarded, str, str] | None:
    old, new = step.get("oldState") or {}, step.get("newState") or {}
    if g is not None and old.get("protect") and new and not new.get("protect"):
        return g, "`protect` would be removed from it", "keep protect=True in the program; unprotect only on purpose"
    urn = parse(str(step["urn"]))
    type_ = str(new.get("type") or urn.type)
    if g is not None and type_ == IMMUTABILITY:
        key = "immutabilityPeriodSinceCreationInDays"
        before, after = (old.get("inputs") or {}).get(key), (new.get("inputs") or {}).get(key)
        if isinstance(before, int | float) and isinstance(after, int | float) and after < before:
            return g, f"the immutability period would shrink from {before:g} to {after:g} days", advice.RETENTION
    if type_ == DEPLOYMENT and TENANT in urn.parent_types:
        clinic = _clinic(step, "-orca")
        volumes = [str(v) for v in (ctx.history.get(clinic or "") or {}).get("volumes") or []]
        before_claim, after_claim = _claim_of(old), _claim_of(new)
        if (
            before_claim in volumes
            and after_claim in volumes
            and volumes.index(after_claim) < volumes.index(before_claim)
        ):
            moved = Guarded("clinic server", "claim", clinic, after_claim or "")
            return moved, f"the server would move back from {before_claim} to the older {after_claim}", advice.ROLLBACK
    return None


REFRESH_ONLY = (
    "seen only by the refresh: it is gone from the cloud and the program no longer registers it, so the update would "
    "drop it from the state without a word (or the preview ran without --show-sames)"
)
PENDING_DELETE = (
    "a pending-delete copy (`delete: true`, left by an interrupted replacement) would be deleted; the engine checks "
    "no `protect` on it (step.go DeleteStep.Apply: only when not replacing), so the update would not stop"
)


def _judge_guarded(
    step: Mapping[str, Any], g: Guarded, ctx: Context, ops: set[str], replaced_provider: bool
) -> tuple[Guarded, str, str] | None:
    """The verdict on one step of a guarded resource (`ops`: every op the digest shows for its URN)."""
    op = str(step.get("op"))
    verdict: tuple[Guarded, str, str] | None = None
    if op == "refresh" and ops == {"refresh"}:
        # With --show-sames every registration shows a step, and what the refresh found but the program dropped
        # shows a delete: a URN seen only by its refresh left the state in the refresh itself (RefreshStep
        # deletes it, rebuildBaseState drops it, deployment_executor.go) and the program no longer registers it.
        verdict = g, REFRESH_ONLY, advice.REFRESH_ONLY
    elif op == "delete-replaced" and (step.get("oldState") or {}).get("delete"):
        verdict = g, PENDING_DELETE, advice.PENDING_DELETE
    elif op in REMOVALS:
        judged = _judge_removal(step, g, ctx)
        verdict = (g, *judged) if judged else None
    elif op in DESTRUCTIVE:
        verdict = (g, *_judge_replacement(step, g, replaced_provider))
    elif op == "create" and g.category in ("namespace", "claim", "password"):
        evidence = _existed(step, g, ctx)
        if evidence:
            verdict = g, f"would be created empty, but {evidence}", advice.recreated(step, g, ctx)
    elif op in ("update", "same"):  # a `same` step is shown when only `protect` changed (display.go shouldShow)
        verdict = _judge_update(step, g, ctx)
    return verdict


def evaluate(doc: Mapping[str, Any], ctx: Context) -> list[Finding]:
    steps = [s for s in doc.get("steps") or [] if isinstance(s, Mapping) and s.get("urn")]
    ctx.refreshed |= {str(s["urn"]) for s in steps if s.get("op") == "refresh"}
    tenants = [(str(s.get("op")), parse(str(s["urn"]))) for s in steps]
    ctx.removed |= {u.name for op, u in tenants if op in REMOVALS and u.type == TENANT}
    ctx.added |= {u.name for op, u in tenants if op == "create" and u.type == TENANT}
    replaced_provider = any(
        s.get("op") in DESTRUCTIVE and parse(str(s["urn"])).type == K8S_PROVIDER and s.get("op") not in REMOVALS
        for s in steps
    )
    for s in steps:
        urn_ = parse(str(s["urn"]))
        if s.get("op") in REMOVALS and TENANT in urn_.parent_types and classify(s) is None:
            owners = sorted((c for c in ctx.removed if urn_.name.startswith(f"{c}-")), key=len)
            if owners:
                ctx.collateral[owners[-1]] = ctx.collateral.get(owners[-1], 0) + 1
    seen: dict[str, set[str]] = {}
    for s in steps:
        seen.setdefault(str(s["urn"]), set()).add(str(s.get("op")))
    findings: dict[str, Finding] = {}
    for step in steps:
        op, urn = str(step.get("op")), str(step["urn"])
        g = classify(step)
        if g is not None and op not in KNOWN:
            verdict: tuple[Guarded, str, str] | None = (
                g,
                f"unknown operation {op!r}",
                "update tools/deploy/gate.py for this CLI before deploying",
            )
        elif g is not None:
            verdict = _judge_guarded(step, g, ctx, seen[urn], replaced_provider)
        else:
            verdict = _judge_update(step, g, ctx) if op in ("update", "same") else None
        if verdict is not None and urn not in findings:
            findings[urn] = Finding(urn, op, *verdict)
    return list(findings.values())


# --- reporting -------------------------------------------------------------------------------------------------------


def _errors(doc: Mapping[str, Any]) -> list[str]:
    return [
        str(d.get("message") or "").strip()
        for d in doc.get("diagnostics") or []
        if isinstance(d, Mapping) and d.get("severity") == "error"
    ]


def _failed(doc: Mapping[str, Any], preview_exit: int) -> bool:
    """A failed preview: its exit status, an error in its diagnostics, or a summary the engine marked maybeCorrupt."""
    return preview_exit != 0 or bool(_errors(doc)) or bool(doc.get("maybeCorrupt"))


def changes(doc: Mapping[str, Any]) -> Counter[str]:
    return Counter(
        str(s.get("op"))
        for s in doc.get("steps") or []
        if isinstance(s, Mapping) and s.get("op") not in ("same", "refresh")
    )


def effects(doc: Mapping[str, Any]) -> Effects:
    """The servers this update stops or restarts, the pre-upgrade backups it runs, the exposure it changes."""
    found = Effects()
    for step in doc.get("steps") or []:
        op, urn = str(step.get("op")), parse(str(step["urn"]))
        if op not in ("create", "update", "replace"):
            continue
        old, new = step.get("oldState") or {}, step.get("newState") or {}
        kind = urn.type.rsplit(":", 1)[-1]
        clinic = _clinic(step, "-orca", "-backup", "-netpol") if TENANT in urn.parent_types else None
        paths = list((step.get("detailedDiff") or {}).keys())
        if kind == "Deployment" and clinic and op != "create":
            replicas = tuple(((s.get("inputs") or {}).get("spec") or {}).get("replicas") for s in (old, new))
            why = server_change(paths, (replicas[0], replicas[1]))
            if why:
                found.restarts.setdefault(clinic, []).extend(why)
        name = str(_meta(new).get("name") or urn.name)
        if op == "create" and clinic and is_pre_upgrade_backup(kind, urn.name):
            found.backups.setdefault(clinic, []).append(name)
        where = clinic or ("backup store" if BACKUP in urn.parent_types else urn.name)
        found.exposure += [line for p in paths if (line := exposure_of(kind, where, p))]
    return found


def render(doc: Mapping[str, Any], findings: list[Finding], ctx: Context, preview_exit: int, markdown: bool) -> str:
    counts = changes(doc)
    summary = ", ".join(f"{n} {op}" for op, n in sorted(counts.items())) or "no changes"
    errors = _errors(doc)
    failed = _failed(doc, preview_exit)
    verdict = "REFUSED" if findings else ("PREVIEW FAILED" if failed else "PASSED")
    lines = [f"{'## ' if markdown else ''}preview gate ({ctx.stack}): {verdict}", "", f"planned: {summary}"]
    if markdown:
        lines.append("")
        lines.append("```")
    by_clinic: dict[str, dict[tuple[str, str], list[Finding]]] = {}
    for f in findings:
        group = f"clinic {f.guarded.clinic}" if f.guarded.clinic else "platform"
        by_clinic.setdefault(group, {}).setdefault((f.why, f.todo), []).append(f)
    for group, causes in sorted(by_clinic.items()):
        lines += ["", f"{group}: {sum(len(v) for v in causes.values())} refused"]
        clinic = group.removeprefix("clinic ")
        if clinic in ctx.collateral:
            lines.append(
                f"  ({ctx.collateral[clinic]} other resources of it would be deleted too; by an `up` that skips its "
                "preview: a protected delete fails without stopping the others)"
            )
        for (why, todo), items in causes.items():
            lines.append(f"  {why}:")
            lines += [f"    - {f.op} {f.urn}  [{f.guarded.kind}]" for f in items]
            steps_ = todo.splitlines()
            lines += [f"    what to do: {steps_[0]}", *(f"      {line}" for line in steps_[1:])]
    side = effects(doc).lines()
    if side:
        lines += ["", *side]
    if failed:
        lines += [
            "",
            f"the preview itself failed (exit {preview_exit}):" if preview_exit else "the preview reported errors:",
        ]
        if doc.get("maybeCorrupt"):
            lines.append("  - the engine marked the summary maybeCorrupt: the state may not match what was previewed")
        lines += [f"  - {e.splitlines()[0]}" for e in errors] or [
            "  - no error in its JSON: see its messages above (policy violations are not part of `--json` output)"
        ]
    for note in ctx.notes:
        lines.append(f"note: {note}")
    if markdown:
        lines.append("```")
    if not findings and not failed:
        lines += ["", "nothing in it deletes, replaces or empties clinic data: `pulumi up` may run"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preview", required=True, help="output of `pulumi preview --json`; '-' reads standard input")
    ap.add_argument("--outputs", default="", help="output of `pulumi stack output --json` before the change")
    ap.add_argument("--stack", default="", help="stack name: reads its tenants file for retiredClinicIds")
    ap.add_argument("--tenants", default="", help="tenants file (default: the stack's orca-platform:tenantsFile)")
    ap.add_argument(
        "--preview-exit", type=int, required=True, help="exit status of the preview command (the Makefile passes it)"
    )
    ap.add_argument("--format", choices=("text", "markdown"), default="text")
    ap.add_argument("--report", default="", help="also write the report to this file")
    args = ap.parse_args(argv)

    ctx = Context(stack=args.stack or "<stack>")
    source = "stdin" if args.preview == "-" else args.preview
    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text(encoding="utf-8")
        doc = load_preview(text, source)
        found_stack = check_whole(doc, args.stack, source)
        if args.outputs:
            load_outputs(Path(args.outputs).read_text(encoding="utf-8"), args.outputs, ctx)
        else:
            ctx.notes.append("no stack outputs given: a re-created claim is recognised only by this preview's refresh")
    except (OSError, GateInputError) as exc:
        print(f"preview gate: cannot judge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    tenants = Path(args.tenants) if args.tenants else (stack_tenants_file(args.stack) if args.stack else None)
    if tenants is not None:
        load_tenants(tenants, ctx)
    ctx.stack = found_stack
    findings = evaluate(doc, ctx)
    report = render(doc, findings, ctx, args.preview_exit, args.format == "markdown")
    sys.stdout.write(report)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(report, encoding="utf-8")
    if findings or _failed(doc, args.preview_exit):
        return EXIT_REFUSED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
