"""Writes tests/fixtures/preview/*.json: `pulumi preview --json` digests of the dev stack, built from offline runs.

    venv/bin/python tests/preview_fixtures.py     # rewrites the recorded fixtures (review the diff)

There is no cloud here, so the engine's own preview cannot be recorded. Each fixture is the digest the engine would
print for one edit: the resources, URNs, inputs and outputs come from two runs of the real program under mocks (the
stack before and after the edit); the document follows pulumi/pulumi as of 3.27x:
- the digest: pkg/display/json.go `PreviewDigest`/`PreviewStep`, filled by pkg/backend/display/json.go
  `ShowPreviewDigest`: `same` steps hidden except the root Stack's, non-logical replacement steps hidden (only the
  logical `replace` shows), refresh steps shown with the old state as old and new, `detailedDiff` always present;
- states: apitype.ResourceV3 through `stateForJSONOutput`, secrets shown as "[secret]", false flags omitted;
- URNs: sdk/go/common/resource/urn/urn.go (parent types joined by `$`, root Stack left out),
tools/offline/engine_urns.py;
- replacements: pkg/resource/deploy/step_generator.go (`replaceReasons: ["provider"]` for resources whose provider
  DiffConfig asks for a replace; the protect errors of a preview);
- unknown values in a preview: sdk/go/common/resource/plugin `UnknownStringValue`.
What only a provider decides (which property forces a replace) is stated per scenario below.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from tools.offline import engine as offline  # noqa: E402 - the project must be importable first
from tools.offline.engine import PROJECT, Registered, Run, is_secret, reveal, run_program, stack_config  # noqa: E402
from tools.offline.engine_urns import engine_urns, provider_reference, stack_urn  # noqa: E402

FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "preview"
STACK = "dev"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # plugin.UnknownStringValue
CREATED = "2026-11-02T01:12:44.318072Z"
MODIFIED = "2026-11-20T16:30:02.991540Z"
PLUGINS = {"azure-native": "pulumi_azure_native", "random": "pulumi_random"}


# --- the program before and after ------------------------------------------------------------------------------------


def tenants_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    return doc


def run_tenants(doc: dict[str, Any], tmp: Path) -> Run:
    path = tmp / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return run_program(STACK, stack_config(STACK, overrides={"orca-platform:tenantsFile": str(path)}))


def clinic(doc: dict[str, Any], cid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in doc["clinics"] if c["id"] == cid)
    return found


# --- engine-shaped states --------------------------------------------------------------------------------------------


def _shown(value: Any) -> Any:
    """How the digest shows a value: secrets blinded (display.MassageSecrets), numbers as the engine keeps them."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Shaper:
    """Turns one offline run's registrations into the states and provider references the engine would hold."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.urns = engine_urns(run)
        self.by_urn = {self.urns[r.urn]: r for r in run.resources}
        self.defaults: dict[str, str] = {}
        for pkg, dist in PLUGINS.items():
            version = _version(dist)
            urn = f"urn:pulumi:{run.stack}::{PROJECT}::pulumi:providers:{pkg}::default_{version.replace('.', '_')}"
            self.defaults[pkg] = f"{urn}::{_uuid(urn)}"

    def provider(self, res: Registered) -> str:
        if res.provider:
            return provider_reference(res.provider, self.urns)
        if res.custom and not res.type.startswith("pulumi:providers:"):
            return self.defaults.get(res.type.split(":", 1)[0], "")
        return ""

    def state(self, res: Registered, *, old: bool, outputs: bool = True) -> dict[str, Any]:
        urn = self.urns[res.urn]
        doc: dict[str, Any] = {"urn": urn, "custom": res.custom}
        if res.custom and (old or res.id):
            doc["id"] = res.id or UNKNOWN
        doc["type"] = res.type
        if res.custom:
            doc["inputs"] = _shown(res.inputs)
            if outputs:
                doc["outputs"] = _shown(res.outputs)
        doc["parent"] = self.urns.get(res.parent, stack_urn(self.run.stack))
        if res.protect:
            doc["protect"] = True
        deps = [self.urns.get(d, d) for d in res.dependencies]
        if deps:
            doc["dependencies"] = deps
        provider = self.provider(res)
        if provider:
            doc["provider"] = provider
        if res.additional_secret_outputs:
            doc["additionalSecretOutputs"] = list(res.additional_secret_outputs)
        if res.retain_on_delete:
            doc["retainOnDelete"] = True
        if res.ignore_changes:
            doc["ignoreChanges"] = list(res.ignore_changes)
        if res.external:
            doc["external"] = True
        if old:
            doc["created"], doc["modified"] = CREATED, MODIFIED
        return doc


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _uuid(seed: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def detailed_diff(old: Any, new: Any, path: str = "") -> dict[str, str]:
    """Property paths that differ, as providers name them (`spec.template.spec.containers[0].image`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, str] = {}
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out[sub] = "add"
            elif key not in new:
                out[sub] = "delete"
            else:
                out.update(detailed_diff(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = {}
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.update(detailed_diff(a, b, f"{path}[{i}]"))
        return out
    return {} if reveal(old) == reveal(new) else {path: "update"}


def step(
    op: str,
    urn: str,
    provider: str = "",
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    diff: dict[str, str] | None = None,
    replace_reasons: Iterable[str] = (),
) -> dict[str, Any]:
    doc: dict[str, Any] = {"op": op, "urn": urn}
    if provider:
        doc["provider"] = provider
    if old is not None:
        doc["oldState"] = old
    if new is not None:
        doc["newState"] = new
    if diff:
        doc["diffReasons"] = sorted({p.split(".", 1)[0].split("[", 1)[0] for p in diff})
    reasons = list(replace_reasons)
    if reasons:
        doc["replaceReasons"] = reasons
    doc["detailedDiff"] = (
        {p: {"kind": f"{k}-replace" if p in reasons else k, "inputDiff": False} for p, k in sorted(diff.items())}
        if diff
        else None
    )
    return doc


Replacer = Callable[[str, dict[str, str]], list[str]]


def _program_step(
    res: Registered,
    new: dict[str, Any],
    old: dict[str, Any] | None,
    gone: bool,
    replaces: Replacer | None,
    replaced_providers: set[str],
    gated: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The steps the engine shows for one registration of the program (none for a hidden `same`)."""
    urn = new["urn"]
    if old is None or gone:
        new.pop("id", None)
        return "create", [step("create", urn, new.get("provider", ""), new=new)]
    # ignoreChanges: the engine keeps the old values of those paths before it diffs.
    diff = {
        path: kind
        for path, kind in detailed_diff(old.get("inputs") or {}, new.get("inputs") or {}).items()
        if not any(path == i or path.startswith((f"{i}.", f"{i}[")) for i in res.ignore_changes)
    }
    provider_urn = str(new.get("provider", "")).rsplit("::", 1)[0]
    reasons = ["provider"] if provider_urn in replaced_providers else (replaces(urn, diff) if replaces else [])
    if reasons:
        new["id"] = UNKNOWN
        if res.type.startswith("pulumi:providers:"):
            replaced_providers.add(urn)
        if provider_urn in replaced_providers:
            new["provider"] = f"{provider_urn}::{UNKNOWN}"
        logical = step("replace", urn, new.get("provider", ""), old, new, diff, reasons)
        if not gated:
            return "replace", [logical]
        # --show-replacement-steps: create-before-delete emits create-replacement then replace
        # (step_generator.go generateSteps); the delete-replaced comes with the deletes.
        created = step("create-replacement", urn, new.get("provider", ""), old, new, diff, reasons)
        return "replace", [created, logical]
    if diff:
        new["id"] = old.get("id", UNKNOWN)
        return "update", [step("update", urn, new.get("provider", ""), old, new, diff)]
    if gated:  # --show-sames
        return "same", [step("same", urn, new.get("provider", ""), old, new)]
    return "same", []


def preview(
    before: Run,
    after: Run,
    *,
    refresh: bool = False,
    gone: Iterable[str] = (),
    replaces: Replacer | None = None,
    old_edit: Callable[[dict[str, Any]], None] | None = None,
    errors: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    gated: bool = False,
    pending_delete: Iterable[str] = (),
) -> dict[str, Any]:
    """The digest of `pulumi preview --json [--refresh]` taking the stack from `before` to `after`.

    `gone`: URNs deleted outside Pulumi (a refresh finds them missing). `replaces(urn, diff)`: the replaceReasons a
    provider would give. `old_edit`: changes to an old state (what an earlier version of the program left there).
    `gated`: the Makefile's preview, with `--show-sames --show-replacement-steps` (and the program's `read` shown).
    `pending_delete`: URNs whose state also holds a pending-delete copy (`delete: true`) left by an interrupted
    create-before-delete replacement; the engine deletes it with a `delete-replaced` step (step_generator.go
    GenerateDeletes: `res.Delete` -> NewDeleteReplacementStep), a non-logical step shown only with the flag.
    """
    old_s, new_s = Shaper(before), Shaper(after)
    olds = {u: old_s.state(r, old=True) for u, r in old_s.by_urn.items()}
    for state in olds.values():
        if old_edit:
            old_edit(state)
    root = stack_urn(STACK)
    steps: list[dict[str, Any]] = []
    # A refresh runs before the program (deployment_executor.go: refresh, then rebuildBaseState, then the source).
    if refresh:
        for urn, state in olds.items():
            steps.append(step("refresh", urn, state.get("provider", ""), old=state, new=state))
    stack_old = {"urn": root, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": _shown(before.outputs)}
    steps.append(step("same", root, old=stack_old, new={"urn": root, "custom": False, "type": "pulumi:pulumi:Stack"}))
    counts: dict[str, int] = {"same": 1}
    gone = set(gone)
    replaced_providers: set[str] = set()
    replaced: list[str] = []
    for urn, res in new_s.by_urn.items():
        new = new_s.state(res, old=False)
        if res.external and urn in olds and gated:
            # A read (the program's StackReference to its own stack): a ReadStep every run, op `read`, always shown
            # (step_generator.go GenerateReadSteps; display.go shouldShow hides only `same` and non-logical steps).
            op, shown = "read", [step("read", urn, new.get("provider", ""), olds[urn], new)]
        else:
            op, shown = _program_step(res, new, olds.get(urn), urn in gone, replaces, replaced_providers, gated)
        counts[op] = counts.get(op, 0) + 1
        steps.extend(shown)
        if op == "replace" and gated:
            replaced.append(urn)
    # Deletes come last, dependents before what they depend on (reverse registration order); what the refresh
    # found gone is no longer in the base state (rebuildBaseState), so it has no delete step.
    for urn in reversed(list(olds)):
        if urn not in new_s.by_urn and not (refresh and urn in gone):
            steps.append(step("delete", urn, olds[urn].get("provider", ""), old=olds[urn]))
            counts["delete"] = counts.get("delete", 0) + 1
    steps += _deletes_replaced(olds, replaced, set(pending_delete))
    config = dict(sorted(stack_config(STACK).items()))
    doc: dict[str, Any] = {"config": config, "steps": steps}
    diagnostics = errors(steps) if errors else []
    if diagnostics:
        doc["diagnostics"] = diagnostics
    doc["duration"] = 41_873_530_112
    doc["changeSummary"] = dict(sorted(counts.items()))
    return doc


def _deletes_replaced(olds: dict[str, dict[str, Any]], replaced: list[str], pending: set[str]) -> list[dict[str, Any]]:
    """The `delete-replaced` steps: of each replaced resource's old object, and of each pending-delete copy.

    Non-logical steps: not counted in the summary (update.go: `record := step.Logical()`).
    """
    out = []
    for urn in [*replaced, *sorted(pending)]:
        old = dict(olds[urn], delete=True, id=f"{olds[urn].get('id', '')}-pending") if urn in pending else olds[urn]
        out.append(step("delete-replaced", urn, old.get("provider", ""), old=old))
    return out


def protect_errors(ops: Iterable[str]) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """The errors a preview reports for protected resources it would delete or replace."""
    wanted = set(ops)

    def make(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for s in steps:
            old = s.get("oldState") or {}
            if s["op"] not in wanted or not old.get("protect"):
                continue
            urn = s["urn"]
            quoted = f"'{urn}'"
            if s["op"] == "delete":
                message = (
                    f'Preview failed: resource "{urn}" cannot be deleted\nbecause it is protected. To unprotect the '
                    "resource, either remove the `protect` flag from the resource in your Pulumi program and run "
                    f"`pulumi up`, or use the command:\n`pulumi state unprotect {quoted}`\n"
                )
            else:
                message = (
                    f'unable to replace resource "{urn}"\nas it is currently marked for protection. To unprotect the '
                    "resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`\n"
                )
            out.append({"urn": urn, "message": message, "severity": "error"})
        return out

    return make


# --- the scenarios ---------------------------------------------------------------------------------------------------


def urn_of(run: Run, type_: str, name: str) -> str:
    urns = engine_urns(run)
    return next(urns[r.urn] for r in run.resources if r.type == type_ and r.name == name)


def scenarios(tmp: Path) -> dict[str, dict[str, Any]]:
    base = tenants_doc()
    before = run_tenants(base, tmp)
    out: dict[str, dict[str, Any]] = {}
    # The scenarios that touch every object run on two of the clinics (one active, one suspended), to keep the
    # recorded files readable; the others on all of dev's.
    small = copy.deepcopy(base)
    small["clinics"] = [c for c in small["clinics"] if c["id"] != "test-aoba"]
    before_small = run_tenants(small, tmp)

    # A routine change: a staged upgrade of test-sakura (new pre-upgrade Job, the old one goes) and test-aoba's volume
    # grown (a claim's size is the one field Kubernetes updates in place).
    edit = copy.deepcopy(base)
    clinic(edit, "test-sakura")["image"] = "orcaplatformdev.azurecr.io/orca/jma-receipt:5.2.0-202612"
    clinic(edit, "test-aoba")["volumeSize"] = "128Gi"
    clinic(edit, "test-aoba")["size"] = "medium"
    out["routine-change"] = preview(before, run_tenants(edit, tmp), refresh=False)
    # The same edit as the Makefile's gate previews it: --refresh --show-sames --show-replacement-steps.
    out["routine-change-gated"] = preview(before, run_tenants(edit, tmp), refresh=True, gated=True)

    # test-aoba deleted from tenants.dev.yaml, not retired: every one of its resources is deleted; the preview fails
    # on the protected ones (DeleteStep.Apply returns deleteProtectedError in a preview too).
    edit = copy.deepcopy(base)
    edit["clinics"] = [c for c in edit["clinics"] if c["id"] != "test-aoba"]
    out["clinic-removed"] = preview(before, run_tenants(edit, tmp), errors=protect_errors({"delete"}))

    # The kubeconfig's cluster block changed (a rotated CA) and the provider's state predates clusterIdentifier:
    # DiffConfig replaces it (replaceReasons kubeconfig) and the engine replaces every object it manages.
    provider = urn_of(before_small, "pulumi:providers:kubernetes", "k8s")

    def no_identifier(state: dict[str, Any]) -> None:
        if state["urn"] == provider:
            for key in ("inputs", "outputs"):
                state.get(key, {}).pop("clusterIdentifier", None)

    def provider_replaced(urn: str, diff: dict[str, str]) -> list[str]:
        return ["kubeconfig"] if urn == provider else []

    out["provider-replaced"] = preview(
        before_small,
        _rotated(before_small),
        replaces=provider_replaced,
        old_edit=no_identifier,
        errors=protect_errors({"replace"}),
    )

    # test-sakura's claim deleted with kubectl, then `pulumi preview --refresh`: the refresh drops it from the state
    # and the program's registration becomes a create of an empty claim.
    claim = urn_of(before_small, "kubernetes:core/v1:PersistentVolumeClaim", "test-sakura-orca-state")
    out["claim-recreated-after-refresh"] = preview(before_small, before_small, refresh=True, gone=[claim], gated=True)

    # A pending-delete copy of test-sakura's protected claim (`delete: true`, left by a replacement interrupted
    # before its delete) is deleted by the next update with `delete-replaced`, and DeleteStep.Apply checks protect
    # only when not replacing (step.go): the preview reports no error, and without --show-replacement-steps the
    # step is not even shown.
    out["claim-pending-delete"] = preview(before_small, before_small, refresh=True, gated=True, pending_delete=[claim])

    # test-aoba's namespace deleted with kubectl (and with it every object in it), then the clinic removed from
    # tenants.dev.yaml: the refresh drops them from the state, the program no longer registers them, so no delete
    # step follows: their refresh steps are all the preview shows of them.
    edit = copy.deepcopy(base)
    edit["clinics"] = [c for c in edit["clinics"] if c["id"] != "test-aoba"]
    aoba = {
        urn
        for urn, res in Shaper(before).by_urn.items()
        if res.is_kubernetes
        and (res.inputs.get("metadata") or {}).get("namespace", (res.inputs.get("metadata") or {}).get("name"))
        == "orca-test-aoba"
    }
    out["clinic-lost-in-refresh"] = preview(
        before, run_tenants(edit, tmp), refresh=True, gated=True, gone=aoba, errors=protect_errors({"delete"})
    )

    # test-aoba moved to Azure Disk: a new StorageClass and snapshot class, and its claim's storageClassName, which
    # Kubernetes never changes in place (pulumi-kubernetes answers update-replace for it).
    edit = copy.deepcopy(base)
    clinic(edit, "test-aoba")["storage"] = "azure-disk"

    def class_replaced(urn: str, diff: dict[str, str]) -> list[str]:
        if "PersistentVolumeClaim" not in urn:
            return []
        return [p for p in diff if p.startswith("spec.") and not p.startswith("spec.resources")]

    out["storage-class-changed"] = preview(
        before, run_tenants(edit, tmp), replaces=class_replaced, errors=protect_errors({"replace"})
    )

    # The cluster renamed (its resourceName, a path parameter azure-native always replaces on): the pool and
    # maintenance configurations follow, the provider gets a new identifier, and every Kubernetes object goes with it.
    out["cluster-replaced"] = preview(
        before_small,
        _renamed_cluster(before_small),
        replaces=_cluster_replaced(before_small),
        errors=protect_errors({"replace"}),
    )
    return out


def _rotated(run: Run) -> Run:
    """The same registrations with the kubeconfig AKS hands out after `az aks rotate-certs`."""
    after = copy.deepcopy(run)
    for res in after.resources:
        if res.type == "pulumi:providers:kubernetes":
            doc = yaml.safe_load(reveal(res.inputs["kubeconfig"]))
            doc["clusters"][0]["cluster"]["certificate-authority-data"] = "cm90YXRlZCBDQQ=="
            res.inputs["kubeconfig"] = {offline.SIG_KEY: offline.SECRET_SIG, "value": yaml.safe_dump(doc)}
    return after


def _renamed_cluster(run: Run) -> Run:
    after = copy.deepcopy(run)
    for res in after.resources:
        if res.type == "azure-native:containerservice:ManagedCluster":
            res.inputs["resourceName"] = res.inputs["dnsPrefix"] = "aks-orca-dev-2"
        elif res.type.startswith("azure-native:containerservice:"):
            res.inputs["resourceName"] = "aks-orca-dev-2"
        elif res.type == "pulumi:providers:kubernetes":
            res.inputs["clusterIdentifier"] = "rg-orca-dev/aks-orca-dev-2"
    return after


def _cluster_replaced(run: Run) -> Replacer:
    def reasons(urn: str, diff: dict[str, str]) -> list[str]:
        if "containerservice:" in urn and "resourceName" in diff:
            return ["resourceName"]
        if urn.endswith("$pulumi:providers:kubernetes::k8s"):
            return ["clusterIdentifier"]  # DiffConfig: an updated identifier replaces
        return []

    return reasons


def main() -> int:
    import tempfile

    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in scenarios(Path(tmp)).items():
            path = FIXTURES / f"{name}.json"
            path.write_text(json.dumps(doc, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.relative_to(PROJECT_DIR)}: {len(doc['steps'])} steps, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
