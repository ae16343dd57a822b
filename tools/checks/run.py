"""`make checks`: render each stack offline, then validate, scan and prove isolation on what was rendered.

For every stack: run the real program under mocks, write its objects to build/checks/<stack> (as `make synth` does),
then
  schema     every Kubernetes object against the cluster version's OpenAPI schema, strictly
  (tools/checks/kube_schema.py);
  isolation  from the rendered NetworkPolicies, no clinic is reached from another clinic's namespace, only the ingress
             controller and the clinic's own networks reach it, and its egress reaches no other clinic
             (tools/checks/isolation.py); from the outside, nothing a clinic's server admits (load balancer source
             ranges,
             ingress allow-list, NetworkPolicy ipBlocks, NSG rules) overlaps another clinic's networks unless both
             share one, and VPN ranges that serve no clinic are noted (tools/checks/admission.py).
  shell      shellcheck over every embedded script: ConfigMap *.sh entries and `sh -c` container commands, hooks
             and probes (tools/checks/shell_scripts.py).
  alerts     every rendered Prometheus rule group, as a Prometheus rule file, through `promtool check rules`
             (Debian's prometheus package: `make deb-promtool`), and within Azure's rules-per-group limit.
Then one checkov run over every stack's objects (tools/checks/scan.py, skips in tools/checks/checkov-skips.yaml).
Prints a short summary per check; exits 1 on any finding, 2 when a stack cannot be rendered at all.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orca_platform.conventions import NGINX_POLICIES
from orca_platform.model.config_file import settings_from_config
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import load_tenants
from orca_platform.monitoring import alerts
from orca_platform.plan import naming
from tools.checks import admission, isolation, kube_schema, scan, shell_scripts
from tools.offline.engine import PROJECT_DIR, Run, redact, run_program, stack_config
from tools.offline.synth import integral, write

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
VARIANTS = Path(__file__).resolve().parent / "check_variants"
INGRESS_ROLE = (naming.ROLE_LABEL, "ingress")  # what the controller's pods carry (docs/checks.md, "Tenant isolation")
URN_HEADER = "# pulumi urn: "
RULE_GROUP_TYPE = "azure-native:alertsmanagement:PrometheusRuleGroup"
# Azure Monitor service limits, Prometheus metrics: at most 20 rules per rule group.
MAX_RULES_PER_GROUP = 20


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
    """The stack's settings, read by the same strict reader as the program's."""
    return settings_from_config(config, f"Pulumi.{stack}.yaml")


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


def read_azure(folder: Path) -> list[dict[str, Any]]:
    """Every rendered Azure resource (<folder>/azure/*.json: type, name, inputs, options)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "azure").glob("*.json"))]


def vpn_ranges(settings: Settings) -> dict[str, list[str]]:
    vpn = settings.network.vpn
    out = {f"site {s.name}": list(s.address_spaces) for s in vpn.sites}
    if vpn.point_to_site is not None:
        out["point-to-site pool"] = [vpn.point_to_site.address_pool]
    return out


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
        shared_networks={c.id: c.shared_network for c in tenants.clinics if c.shared_network},
        vpn_ranges=vpn_ranges(settings),
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


def check_shell(objects: Sequence[Rendered]) -> tuple[list[str], str]:
    """shellcheck once per distinct script (every clinic carries the same ones), reported where it first occurs."""
    by_text: dict[str, list[shell_scripts.Script]] = {}
    for obj in objects:
        for script in shell_scripts.scripts_in(obj.doc):
            by_text.setdefault(script.text, []).append(script)
    try:
        results = shell_scripts.check([copies[0] for copies in by_text.values()])
    except FileNotFoundError as exc:
        return [f"shell: {exc}"], "shell     not run"
    findings = [f"shell: {f.script.where} (and {len(by_text[f.script.text]) - 1} copies): {f.report}" for f in results]
    total = sum(len(copies) for copies in by_text.values())
    line = f"shell     shellcheck: {len(by_text)} distinct scripts ({total} embedded), {len(findings)} with findings"
    return findings, line


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
                    for p in str((d["metadata"].get("annotations") or {}).get(NGINX_POLICIES, "")).split(",")
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


def check_isolation(
    objects: Sequence[Rendered], facts: isolation.Facts, azure: Sequence[dict[str, Any]] = ()
) -> tuple[list[str], list[str]]:
    docs = [o.doc for o in objects if not o.type_token.startswith("kubernetes:helm.sh/")]
    report = isolation.prove_isolation(docs, facts)
    outside = admission.prove_admission(docs, azure, facts)
    findings = [f"isolation: {f}" for f in report.findings] + controller_labels(objects, facts)
    findings += [f"isolation (outside): {f}" for f in outside.findings]
    findings += allow_lists(objects, facts)
    reading = "ipBlock matches pod addresses" if facts.ipblock_selects_pods else "ipBlock never matches pods (Cilium)"
    lines = [
        f"isolation {len(report.summary)} clinic namespaces, {report.pairs_checked} cross-clinic connections "
        f"and {outside.pairs_checked} admitted-range pairs evaluated, {len(findings)} findings ({reading})"
    ]
    lines += [f"            {s}" for s in report.summary]
    lines += [f"            advisory: {a}" for a in group_by_pod(report.advisories)]
    lines += [f"            note: {n}" for n in outside.notes]
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


def check_alerts(run: Run, folder: Path, promtool: str) -> tuple[list[str], str]:
    """The rendered rule groups as a Prometheus rule file, checked by promtool (syntax, functions, templates)."""
    groups = [integral(redact(r.inputs)) for r in run.by_type(RULE_GROUP_TYPE)]
    if not groups:
        return ["alerts: no Prometheus rule group is rendered"], "alerts    no rule group rendered"
    path = folder / "prometheus-rules.yaml"
    path.write_text(yaml.safe_dump(alerts.rule_file(groups), sort_keys=False, allow_unicode=True), encoding="utf-8")
    findings = [
        f"alerts: rule group {g['ruleGroupName']} has {len(g['rules'])} rules; Azure allows {MAX_RULES_PER_GROUP}"
        for g in groups
        if len(g.get("rules") or []) > MAX_RULES_PER_GROUP
    ]
    done = subprocess.run(  # noqa: S603 - promtool with a file we just wrote
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        findings += [f"alerts: promtool: {line.strip()}" for line in output if line.strip()]
    rules = sum(len(g.get("rules") or []) for g in groups)
    verdict = "passed" if done.returncode == 0 else "FAILED"
    return findings, f"alerts    promtool check rules: {rules} rules in {len(groups)} groups {verdict} ({path.name})"


class RenderError(Exception):
    """The program stopped before registering its resources (bad config or tenants)."""


def variant_config(spec: str) -> tuple[str, dict[str, str]]:
    """'dev' is the dev stack as it is; 'dev+<name>' is dev with tools/checks/check_variants/<name>.yaml laid over
    it."""
    stack, _, variant = spec.partition("+")
    if not variant:
        return stack, stack_config(stack)
    doc = yaml.safe_load((VARIANTS / f"{variant}.yaml").read_text(encoding="utf-8"))
    if doc.get("stack") != stack:
        raise RenderError(f"variant {variant} is of stack {doc.get('stack')}, not {stack}")
    return stack, stack_config(stack, overrides=doc.get("config") or {})


def check_stack(
    spec: str,
    out: Path,
    do_schema: bool,
    do_isolation: bool,
    rendered: Path | None = None,
    do_shell: bool = False,
    promtool: str = "",
) -> tuple[StackResult, Path]:
    """Render the stack or variant (or, with `rendered`, check objects already written there, edited or not) and
    check them."""
    result = StackResult(spec)
    try:
        stack, config = variant_config(spec)
        settings = stack_settings(config, stack)
        run = run_program(stack, config)
    except Exception as exc:  # the program's RunError carries the user-facing message
        raise RenderError(str(exc).split("RunError: ", 1)[-1]) from exc
    if rendered is None:
        folder = out / spec
        counts = write(run, folder)
        objects = read_rendered(folder)
        result.lines.append(f"== {spec}: {counts['kubernetes']} Kubernetes objects rendered to {folder}")
    else:
        folder = rendered
        objects = read_rendered(folder)
        result.lines.append(f"== {spec}: {len(objects)} Kubernetes objects read from {folder}")
    if do_schema:
        findings, line = check_schema(objects, settings.cluster.kubernetes_version, folder)
        result.findings += findings
        result.lines.append(line)
    if do_isolation:
        findings, lines = check_isolation(objects, isolation_facts(run, settings), read_azure(folder))
        result.findings += findings
        result.lines += lines
    if do_shell:
        findings, line = check_shell(objects)
        result.findings += findings
        result.lines.append(line)
    if promtool:
        findings, line = check_alerts(run, folder, promtool)
        result.findings += findings
        result.lines.append(line)
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
    ap.add_argument("--promtool", default="promtool", help="promtool for the alerts check (make deb-promtool)")
    checks = ["schema", "scan", "isolation", "shell", "alerts"]
    ap.add_argument("--only", nargs="+", choices=checks, default=checks)
    ap.add_argument(
        "--rendered",
        default="",
        help="check the objects already in this folder (a `make synth` output, for one stack) instead of rendering",
    )
    args = ap.parse_args(argv)
    if args.rendered and len(args.stacks) != 1:
        print("error: --rendered takes exactly one stack", file=sys.stderr)
        return 2
    out = Path(args.out)
    promtool = ""
    if "alerts" in args.only:
        promtool = shutil.which(args.promtool) or ""
        if not promtool:
            print(f"error: {args.promtool} not found: `make deb-promtool` installs it", file=sys.stderr)
            return 2
    findings: list[str] = []
    folders: list[Path] = []
    for stack in args.stacks:
        try:
            result, folder = check_stack(
                stack,
                out,
                "schema" in args.only,
                "isolation" in args.only,
                Path(args.rendered) if args.rendered else None,
                "shell" in args.only,
                promtool,
            )
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
