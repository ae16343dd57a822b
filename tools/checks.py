"""`make checks`: render each stack offline, then validate, scan and prove isolation on what was rendered.

For every stack: run the real program under mocks, write its objects to build/checks/<stack> (as `make synth` does),
then
  schema     every Kubernetes object against the cluster version's OpenAPI schema, strictly (tools/kube_schema.py);
  isolation  from the rendered NetworkPolicies, no clinic is reached from another clinic's namespace, only the ingress
             controller and the clinic's own networks reach it, and its egress reaches no other clinic
             (tools/isolation.py).
Then one checkov run over every stack's objects (tools/scan.py, skips in tools/checkov-skips.yaml).
Prints a short summary per check; exits 1 on any finding, 2 when a stack cannot be rendered at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orca_platform import naming
from orca_platform.settings import NAMESPACE, Settings, parse_settings
from orca_platform.tenants import load_tenants
from tools import isolation, kube_schema, scan
from tools.offline import PROJECT_DIR, Run, run_program, stack_config
from tools.synth import write

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
VARIANTS = Path(__file__).resolve().parent / "check_variants"
INGRESS_ROLE = (naming.ROLE_LABEL, "ingress")  # what the controller's pods carry (README, "Isolation")
URN_HEADER = "# pulumi urn: "


@dataclass
class Rendered:
    """One Kubernetes object as written to disk, with the provider type token from its header."""

    path: Path
    type_token: str
    doc: dict[str, Any]


@dataclass
class StackResult:
    stack: str
    findings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def read_rendered(folder: Path) -> list[Rendered]:
    """Every YAML under <folder>/k8s; the type comes from the urn header (a helm Release has no apiVersion/kind)."""
    out = []
    for path in sorted((folder / "k8s").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) or {}
        token = ""
        for line in text.splitlines():
            if line.startswith(URN_HEADER):
                # urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>
                token = line[len(URN_HEADER) :].split("::")[2].split("$")[-1]
                break
        if not token:
            api = str(doc.get("apiVersion") or "")
            token = f"kubernetes:{api if '/' in api else 'core/' + api}:{doc.get('kind')}"
        out.append(Rendered(path, token, doc))
    return out


def stack_settings(config: dict[str, str], stack: str) -> Settings:
    raw: dict[str, Any] = {}
    for key, value in config.items():
        ns, _, name = key.partition(":")
        if ns == NAMESPACE:
            raw[name] = json.loads(value) if value[:1] in ("{", "[") else value
    return parse_settings(raw, f"Pulumi.{stack}.yaml")


def check_schema(objects: Sequence[Rendered], version: str, root: Path) -> tuple[list[str], str]:
    counts: Counter[str] = Counter()
    findings = []
    skipped: dict[str, str] = {}
    for obj in objects:
        outcome = kube_schema.validate(obj.doc, obj.type_token, version)
        counts[outcome.status] += 1
        if outcome.status == "invalid":
            findings.append(f"schema: {obj.path.relative_to(root)}: {outcome.detail}")
        elif outcome.status == "skipped":
            skipped[obj.type_token] = outcome.detail
    line = (
        f"schema    Kubernetes {kube_schema.supported_minor(version)} strict: {counts['valid']} valid, "
        f"{counts['invalid']} invalid, {counts['skipped']} skipped"
    )
    line += "".join(f"\n            skipped {t}: {why}" for t, why in sorted(skipped.items()))
    return findings, line


def isolation_facts(run: Run, settings: Settings) -> isolation.Facts:
    tenants = load_tenants(_project_path(settings.tenants_file), settings.tenants_file)
    clusters = run.by_type("azure-native:containerservice:ManagedCluster")
    profile = (clusters[0].inputs.get("networkProfile") or {}) if clusters else {}
    # Cilium applies CIDR rules to traffic leaving or entering the cluster only, never between its endpoints.
    dataplane = str(profile.get("networkDataplane") or profile.get("networkPolicy") or "")
    return isolation.Facts(
        ingress_namespace=settings.ingress.namespace,
        ingress_role=INGRESS_ROLE,
        clinic_label=naming.CLINIC_LABEL,
        source_cidrs={c.id: list(c.source_cidrs) for c in tenants.clinics},
        pod_cidr=settings.network.pod_cidr,
        service_cidr=settings.network.service_cidr,
        ilb_subnet=settings.network.ilb_subnet_cidr,
        ipblock_selects_pods=dataplane != "cilium",
    )


def _project_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else PROJECT_DIR / path


def controller_labels(objects: Sequence[Rendered], facts: isolation.Facts) -> list[str]:
    """The policies admit pods by the ingress role label: the controller's release must put it on its pods."""
    releases = [o for o in objects if o.type_token == RELEASE_TYPE]
    if not releases:
        return ["isolation: no ingress controller release is rendered"]
    findings = []
    key, value = facts.ingress_role
    for rel in releases:
        labels = ((rel.doc.get("values") or {}).get("controller") or {}).get("pod", {}).get("extraLabels") or {}
        if labels.get(key) != value:
            findings.append(f"isolation: release {rel.doc.get('name')} does not label its pods {key}={value}")
        if rel.doc.get("namespace") != facts.ingress_namespace:
            findings.append(
                f"isolation: release {rel.doc.get('name')} is in {rel.doc.get('namespace')}, "
                f"not the configured ingress namespace {facts.ingress_namespace}"
            )
    return findings


def allow_lists(objects: Sequence[Rendered], facts: isolation.Facts) -> list[str]:
    """The front doors' own allow-lists, which NetworkPolicies cannot express: every clinic Ingress names an NGINX
    Policy of its namespace allowing only (and some of) the clinic's sourceCidrs, and every clinic LoadBalancer admits
    only them. Through the shared ingress controller this Policy is all that keeps one clinic's staff (whose VPN
    carries every site's ranges) from another clinic's FQDN."""
    findings = []
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        ns = (o.doc.get("metadata") or {}).get("namespace")
        if ns:
            by_ns.setdefault(ns, []).append(o.doc)
    for ns, docs in sorted(by_ns.items()):
        clinic = next(
            (
                d["metadata"]["labels"][facts.clinic_label]
                for d in docs
                if facts.clinic_label in (d["metadata"].get("labels") or {})
            ),
            None,
        )
        if clinic is None:
            continue
        own = set(facts.source_cidrs.get(clinic, ()))
        policies = {
            d["metadata"]["name"]: d
            for d in docs
            if d.get("kind") == "Policy" and "k8s.nginx.org" in str(d.get("apiVersion"))
        }
        for d in docs:
            name = f"{ns}/{d.get('kind')}/{d['metadata'].get('name')}"
            if d.get("kind") == "Ingress":
                named = [
                    p.strip()
                    for p in str((d["metadata"].get("annotations") or {}).get("nginx.org/policies", "")).split(",")
                    if p.strip()
                ]
                allowed = [
                    set(((policies[p].get("spec") or {}).get("accessControl") or {}).get("allow") or [])
                    for p in named
                    if p in policies
                ]
                if not any(allowed):
                    findings.append(f"isolation: {name} names no NGINX Policy of its namespace with an allow-list")
                for extra in (a - own for a in allowed):
                    if extra:
                        findings.append(
                            f"isolation: {name} allows {sorted(extra)}, outside clinic {clinic}'s sourceCidrs"
                        )
            elif d.get("kind") == "Service" and (d.get("spec") or {}).get("type") == "LoadBalancer":
                ranges = set((d.get("spec") or {}).get("loadBalancerSourceRanges") or [])
                if not ranges or ranges - own:
                    admits = sorted(ranges) or "every source"
                    findings.append(f"isolation: {name} admits {admits}, not clinic {clinic}'s sourceCidrs")
    return findings


def check_isolation(objects: Sequence[Rendered], facts: isolation.Facts) -> tuple[list[str], list[str]]:
    docs = [o.doc for o in objects if not o.type_token.startswith("kubernetes:helm.sh/")]
    report = isolation.prove_isolation(docs, facts)
    findings = [f"isolation: {f}" for f in report.findings] + controller_labels(objects, facts)
    findings += allow_lists(objects, facts)
    reading = "ipBlock matches pod addresses" if facts.ipblock_selects_pods else "ipBlock never matches pods (Cilium)"
    lines = [
        f"isolation {len(report.summary)} clinic namespaces, {report.pairs_checked} cross-clinic connections "
        f"evaluated, {len(findings)} findings ({reading})"
    ]
    lines += [f"            {s}" for s in report.summary]
    lines += [f"            advisory: {a}" for a in group_by_pod(report.advisories)]
    return findings, lines


def group_by_pod(messages: Sequence[str]) -> list[str]:
    """'<namespace>/<Kind>/<name>: message' lines, one per message with how many pods and namespaces it concerns."""
    pods: dict[str, list[str]] = {}
    for m in messages:
        subject, _, text = m.partition(": ")
        pods.setdefault(text, []).append(subject)
    out = []
    for text, subjects in pods.items():
        namespaces = {s.split("/")[0] for s in subjects}
        kinds = sorted({"/".join(s.split("/")[1:2]) for s in subjects})
        out.append(f"{text} [{len(subjects)} pods ({', '.join(kinds)}) in {len(namespaces)} namespaces]")
    return out


class RenderError(Exception):
    """The program stopped before registering its resources (bad config or tenants)."""


def variant_config(spec: str) -> tuple[str, dict[str, str]]:
    """'dev' is the dev stack as it is; 'dev+<name>' is dev with tools/check_variants/<name>.yaml laid over it."""
    stack, _, variant = spec.partition("+")
    if not variant:
        return stack, stack_config(stack)
    doc = yaml.safe_load((VARIANTS / f"{variant}.yaml").read_text(encoding="utf-8"))
    if doc.get("stack") != stack:
        raise RenderError(f"variant {variant} is of stack {doc.get('stack')}, not {stack}")
    return stack, stack_config(stack, overrides=doc.get("config") or {})


def check_stack(spec: str, out: Path, do_schema: bool, do_isolation: bool) -> tuple[StackResult, Path]:
    result = StackResult(spec)
    stack, config = variant_config(spec)
    try:
        settings = stack_settings(config, stack)
        run = run_program(stack, config)
    except Exception as exc:  # the program's RunError carries the user-facing message
        raise RenderError(str(exc).split("RunError: ", 1)[-1]) from exc
    folder = out / spec
    counts = write(run, folder)
    objects = read_rendered(folder)
    result.lines.append(f"== {spec}: {counts['kubernetes']} Kubernetes objects rendered to {folder}")
    if do_schema:
        findings, line = check_schema(objects, settings.cluster.kubernetes_version, folder)
        result.findings += findings
        result.lines.append(line)
    if do_isolation:
        findings, lines = check_isolation(objects, isolation_facts(run, settings))
        result.findings += findings
        result.lines += lines
    return result, folder / "k8s"


def check_scan(scan_python: Path, folders: Sequence[Path], work: Path) -> tuple[list[str], list[str]]:
    res = scan.scan(scan_python, folders, work)
    ids = Counter(s.check_id for _, s in res.waived)
    waived = ", ".join(f"{k} x{v}" for k, v in sorted(ids.items()))
    lines = [
        f"== scan    checkov over {len(folders)} stacks: {res.resources} objects, {res.passed} checks passed, "
        f"{len(res.failures)} failed, {len(res.waived)} waived ({waived or 'none'})"
    ]
    lines += [f"            unused skip {s.check_id} (nothing matches it any more)" for s in res.unused_skips]
    findings = [f"scan: {f.check_id} {f.name}: {f.resource} ({f.file})" for f in res.failures]
    return findings, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    ap.add_argument("--out", default=str(PROJECT_DIR / "build" / "checks"))
    ap.add_argument("--scan-python", default="", help="python of the scan virtualenv (checkov); empty: no scan")
    ap.add_argument(
        "--only", nargs="+", choices=["schema", "scan", "isolation"], default=["schema", "scan", "isolation"]
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    findings: list[str] = []
    folders: list[Path] = []
    for stack in args.stacks:
        try:
            result, folder = check_stack(stack, out, "schema" in args.only, "isolation" in args.only)
        except RenderError as exc:
            print(f"== {stack}: cannot render the stack: {exc}", file=sys.stderr)
            return 2
        print("\n".join(result.lines))
        findings += [f"{stack}: {f}" for f in result.findings]
        folders.append(folder)
    if "scan" in args.only:
        if not args.scan_python:
            print("error: --scan-python is required for the scan (make checks builds .venv-scan)", file=sys.stderr)
            return 2
        scan_findings, lines = check_scan(Path(args.scan_python), folders, out / "checkov")
        print("\n".join(lines))
        findings += scan_findings
    if findings:
        print(f"\nFAILED: {len(findings)} findings")
        for f in findings:
            print(f"  {f}")
        return 1
    print(f"\nOK: {', '.join(args.only)} passed on {', '.join(args.stacks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
