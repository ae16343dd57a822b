"""`make audit`: read a `pulumi stack export`, apply the platform's rules, write a report for people and machines.

    python -m tools.audit --export FILE|- --out DIR [--archive s3://bucket/prefix --retention-years 5]

Writes DIR/audit-report.md and DIR/audit-report.json: one row per clinic (namespace, FQDN, private IP, volume size
and class, protected, retained, image) with its evidence (backup schedules and their state, snapshots kept, where
dumps go, source ranges and VPN site, restores and their sources: tools/audit/evidence.py), the archives' retention
and locks, retired clinics, the program commit and update time, the platform's public endpoints, every rule
violation and notes on what the export could not tell. With --previous REPORT.json, also what changed since.
With --archive, the export and both reports go to S3 under Object Lock (tools/audit/archive.py).

Refuses an export made with --show-secrets (decrypted secrets must not be filed with audit evidence). Reads older
deployment versions, checkpoint files and half-finished updates (pending operations) with a note, not a crash.

Reading the export is tools/audit/export.py, the Markdown report tools/audit/markdown.py; this module builds the
report (its JSON form) and runs the command.

Exit status: 0 no violations, 1 violations found, 2 unreadable or refused input, or a failed archive.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orca_platform.conventions import CLINIC_LABEL, CLINIC_NAME_ANNOTATION, INTERNAL_LB, LB_IPV4
from orca_platform.rules import (
    PUBLIC_IP_TYPES,
    RULES,
    Enforcement,
    ResourceView,
    RuleContext,
    Violation,
    as_list,
    as_map,
    as_text,
    claims_mounted,
    dig,
    evaluate,
    number,
    pod_spec,
    truthy,
)
from orca_platform.safety.history import HISTORY_OUTPUT
from tools.audit import evidence as audit_evidence
from tools.audit.archive import ArchiveError, Item, archive, parse_s3_url, retain_until
from tools.audit.export import AuditInputError, LoadedExport, load_export
from tools.audit.markdown import render_markdown

REPORT_SCHEMA = "orca-platform/audit-report/v1"
EXIT_OK, EXIT_VIOLATIONS, EXIT_REFUSED = 0, 1, 2


# --- what the report shows -------------------------------------------------------------------------------------


def _lb_ip(v: ResourceView) -> str:
    pinned = as_text(v.annotations.get(LB_IPV4)) or as_text(dig(v.props, "spec", "loadBalancerIP"))
    if pinned:
        return pinned
    return as_text(dig(v.outputs, "status", "loadBalancer", "ingress", 0, "ip"))


def ingress_controller_ips(views: Sequence[ResourceView]) -> list[str]:
    """The pinned addresses of the Helm-installed ingress controllers: an ingress-only clinic's private IP."""
    return [
        ip
        for v in views
        if v.type.startswith("kubernetes:helm.sh/")
        for ip in [as_text(dig(v.props, "values", "controller", "service", "annotations", LB_IPV4))]
        if ip
    ]


def clinic_rows(
    views: Sequence[ResourceView], ctx: RuleContext, violations: Sequence[Violation]
) -> list[dict[str, Any]]:
    ingress_ips = ingress_controller_ips(views)
    by_ns: dict[str, list[ResourceView]] = {}
    for v in views:
        if v.is_kubernetes and v.namespace in ctx.clinic_namespaces:
            by_ns.setdefault(v.namespace, []).append(v)
    found = Counter((x.clinic, x.enforcement) for x in violations)
    rows: list[dict[str, Any]] = []
    for ns, clinic in sorted(ctx.clinic_namespaces.items(), key=lambda kv: kv[1]):
        mine = by_ns.get(ns, [])
        namespace = next((v for v in mine if v.kind == "Namespace"), None)
        hosts = sorted(
            {
                as_text(dig(r, "host"))
                for v in mine
                if v.kind == "Ingress"
                for r in as_list(dig(v.props, "spec", "rules"))
            }
            - {""}
        )
        lbs = [v for v in mine if v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer"]
        servers = [v for v in mine if v.kind in ("Deployment", "StatefulSet")]
        mounted = {c for s in servers for c in claims_mounted(pod_spec(s) or {})}
        volumes = [
            {
                "claim": v.k8s_name,
                "size": as_text(dig(v.props, "spec", "resources", "requests", "storage")),
                "storageClass": as_text(dig(v.props, "spec", "storageClassName")),
                "protected": v.protect,
                "retained": v.retain_on_delete,
                "inUse": v.k8s_name in mounted,
            }
            for v in mine
            if v.kind == "PersistentVolumeClaim" and v.is_clinic_data()
        ]
        current = next((vol for vol in volumes if vol["inUse"]), volumes[-1] if volumes else None)
        images = sorted({as_text(c.get("image")) for s in servers for c in as_list(dig(pod_spec(s), "containers"))})
        replicas = [number(dig(s.props, "spec", "replicas")) for s in servers]
        state = "suspended" if servers and all(r == 0 for r in replicas) else ("active" if servers else "no server")
        backups = [
            {
                "name": v.k8s_name,
                "schedule": as_text(dig(v.props, "spec", "schedule")),
                "suspended": truthy(dig(v.props, "spec", "suspend")) is True,
            }
            for v in sorted(mine, key=lambda x: x.k8s_name)
            if v.kind == "CronJob"
        ]
        rows.append(
            {
                "clinic": clinic,
                "name": as_text(namespace.annotations.get(CLINIC_NAME_ANNOTATION)) if namespace else "",
                "namespace": ns,
                "fqdn": hosts,
                # Without a load balancer of its own, a clinic is reached at the ingress controller's address.
                "privateIp": [ip for ip in (_lb_ip(v) for v in lbs) if ip] if lbs else (ingress_ips if hosts else []),
                "frontDoor": "loadbalancer" if lbs else ("ingress-only" if hosts else "none"),
                "internalLoadBalancer": all(as_text(v.annotations.get(INTERNAL_LB)) == "true" for v in lbs),
                "state": state,
                "volume": current,
                "volumes": volumes,
                "image": [i for i in images if i],
                "backups": backups,
                "violations": {
                    "mandatory": found[(clinic, Enforcement.MANDATORY)],
                    "advisory": found[(clinic, Enforcement.ADVISORY)],
                },
            }
        )
    return rows


def public_endpoints(views: Sequence[ResourceView]) -> list[dict[str, Any]]:
    """Everything with an address or endpoint reachable from the Internet, allowed or not."""
    found: list[dict[str, Any]] = []
    gateways = [v for v in views if v.type == "azure-native:network:VirtualNetworkGateway"]
    for v in views:
        if v.type in PUBLIC_IP_TYPES:
            users = [g.display for g in gateways if (v.urn in g.dependencies) or (v.id and v.id in json.dumps(g.props))]
            found.append(
                {
                    "kind": "public IP address",
                    "resource": v.display,
                    "address": as_text(v.outputs.get("ipAddress")) or "(assigned at deployment)",
                    "usedBy": users,
                    "urn": v.urn,
                }
            )
        elif v.type == "azure-native:containerservice:ManagedCluster":
            profile = as_map(v.props.get("apiServerAccessProfile"))
            if truthy(profile.get("enablePrivateCluster")) is not True:
                found.append(
                    {
                        "kind": "Kubernetes API server",
                        "resource": v.display,
                        "address": as_text(v.outputs.get("fqdn")) or "(assigned at deployment)",
                        "allowedFrom": [as_text(r) for r in as_list(profile.get("authorizedIPRanges"))] or ["anywhere"],
                        "urn": v.urn,
                    }
                )
        elif v.kind == "Service" and as_text(dig(v.props, "spec", "type")) == "LoadBalancer":
            if as_text(v.annotations.get(INTERNAL_LB)).lower() != "true":
                found.append(
                    {"kind": "public load balancer", "resource": v.display, "address": _lb_ip(v), "urn": v.urn}
                )
        elif v.type.startswith("azure-native:"):
            access = as_text(v.props.get("publicNetworkAccess"))
            if access.lower() == "enabled" or (not access and v.type == "azure-native:storage:StorageAccount"):
                found.append({"kind": "public service endpoint", "resource": v.display, "address": "", "urn": v.urn})
    return found


def acknowledgement_rows(views: Sequence[ResourceView], notes: list[str]) -> list[dict[str, Any]]:
    """Every acknowledged transition the stack's history records (orca_platform/safety/history.py): the ones updates
    used,
    oldest first, then the ones the last update's config held that let nothing through."""
    root = next((v for v in views if v.type == "pulumi:pulumi:Stack" and not v.parent), None)
    history = as_map(root.outputs.get(HISTORY_OUTPUT)) if root else {}
    if not history:
        if views:
            notes.append(
                f"the stack outputs hold no {HISTORY_OUTPUT} (a program version before the history, or no update "
                "yet): acknowledged transitions are unknown"
            )
        return []

    def row(a: Any, status: str) -> dict[str, Any]:
        m = as_map(a)
        return {
            "clinic": as_text(m.get("clinic")),
            "transition": as_text(m.get("transition")),
            "reason": as_text(m.get("reason")),
            "status": status,
            "what": as_text(m.get("what")),
        }

    return [row(a, "used") for a in as_list(history.get("acknowledgements"))] + [
        row(a, "unused") for a in as_list(history.get("unusedAcknowledgements"))
    ]


def vpn_sites(views: Sequence[ResourceView]) -> list[dict[str, Any]]:
    return [
        {
            "site": v.name,
            "gatewayIp": as_text(v.props.get("gatewayIpAddress")),
            "addressSpaces": [as_text(a) for a in as_list(dig(v.props, "localNetworkAddressSpace", "addressPrefixes"))],
        }
        for v in views
        if v.type == "azure-native:network:LocalNetworkGateway"
    ]


def build_report(
    loaded: LoadedExport,
    ctx: RuleContext | None = None,
    *,
    now: datetime | None = None,
    previous: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Violation]]:
    base = ctx or RuleContext()
    full = base.for_stack(loaded.views)
    violations = evaluate(loaded.views, base)
    mandatory = sum(1 for v in violations if v.enforcement is Enforcement.MANDATORY)
    advisory = len(violations) - mandatory
    rows = clinic_rows(loaded.views, full, violations)
    if loaded.views and not rows:
        loaded.notes.append(f"no clinic namespace (labelled {CLINIC_LABEL}) was found in this stack")
    elif rows and not any(v.labels.get(CLINIC_LABEL) for v in loaded.views):
        loaded.notes.append(
            f"no object carries the {CLINIC_LABEL} label (an older program version?): clinics were "
            "recognised by their namespace names (orca-<id>)"
        )
    endpoints = public_endpoints(loaded.views)
    acknowledgements = acknowledgement_rows(loaded.views, loaded.notes)
    # Evidence (tools/audit/evidence.py): backups and their state, access, restores; retention, retired, provenance.
    sites = audit_evidence.vpn_site_list(loaded.views)
    for row in rows:
        mine = [v for v in loaded.views if v.is_kubernetes and v.namespace == row["namespace"]]
        row["evidence"] = audit_evidence.clinic_evidence(mine, row, sites)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "generatedAt": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "export": {
            "source": loaded.source,
            "sha256": loaded.sha256,
            "deploymentVersion": loaded.version,
            "stack": loaded.stack,
            "project": loaded.project,
            "updatedAt": as_text(loaded.manifest.get("time")),
            "engine": as_text(loaded.manifest.get("version")),
            "resources": len(loaded.views),
            "pendingOperations": loaded.pending,
        },
        "summary": {
            "result": "pass" if not violations else "fail",
            "clinics": len(rows),
            "mandatory": mandatory,
            "advisory": advisory,
            "publicEndpoints": len(endpoints),
        },
        "clinics": rows,
        "acknowledgements": acknowledgements,
        "publicEndpoints": endpoints,
        "vpnSites": vpn_sites(loaded.views),
        "violations": [v.to_dict() for v in violations],
        "retention": audit_evidence.retention_evidence(loaded.views),
        "retiredClinics": audit_evidence.retired(loaded.views, [r["clinic"] for r in rows]),
        "provenance": audit_evidence.provenance(loaded.views, loaded.manifest),
        "notes": list(loaded.notes),
        "rules": [
            {"id": r.id, "title": r.title, "enforcement": r.enforcement.value, "scope": r.scope, "why": r.why}
            for r in RULES
        ],
    }
    if previous is not None:
        report["changes"] = audit_evidence.changes_since(previous, report)
    return report, violations


# --- command line ----------------------------------------------------------------------------------------------


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise AuditInputError(f"cannot read {source}: {exc.strerror or exc}") from None


def load_previous(path: str) -> dict[str, Any]:
    """The JSON of an earlier audit report, to compare with."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditInputError(f"cannot read the previous report {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != REPORT_SCHEMA:
        raise AuditInputError(f"{path} is not an audit-report.json of this audit ({REPORT_SCHEMA})")
    return doc


def main(argv: list[str] | None = None, *, now: datetime | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="the JSON of `pulumi stack export`; '-' reads standard input")
    ap.add_argument("--out", default="", help="folder for audit-report.md/.json (default: build/audit/<stack>)")
    ap.add_argument("--environment", default="", help="dev or prod (default: from tags and the stack name)")
    ap.add_argument("--ingress-class", action="append", default=[], help="another internal ingress class")
    ap.add_argument(
        "--allowed-registry",
        action="append",
        default=[],
        help="a login server images may come from (default: the registries the stack grants AcrPull on)",
    )
    ap.add_argument(
        "--records-retention-years",
        type=int,
        default=None,
        help="years backups must stay immutable (default: as the stack declares on its backup account, else 5)",
    )
    ap.add_argument("--archive", default="", help="s3://bucket/prefix: archive export and reports under Object Lock")
    ap.add_argument("--retention-years", type=int, default=5, help="Object Lock retention (compliance mode)")
    ap.add_argument("--s3-endpoint-url", default=None, help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL)")
    ap.add_argument("--previous", default="", help="the audit-report.json of the previous audit: report what changed")
    ap.add_argument(
        "--fail-on",
        choices=("any", "mandatory"),
        default="any",
        help="which violations make the exit status 1 (default: any)",
    )
    args = ap.parse_args(argv)

    source = "stdin" if args.export == "-" else args.export
    try:
        if args.archive:
            # Fail on a bad location or retention before anything is read or written.
            parse_s3_url(args.archive)
            retain_until(datetime.now(UTC), args.retention_years)
    except ArchiveError as exc:
        print(f"archive refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        data = _read(args.export)
        loaded = load_export(data, source)
        previous = load_previous(args.previous) if args.previous else None
    except AuditInputError as exc:
        print(f"audit refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    ctx = RuleContext(
        environment=args.environment or None,
        ingress_classes=RuleContext().ingress_classes | frozenset(args.ingress_class),
        allowed_registries=tuple(args.allowed_registry),
        records_retention_years=args.records_retention_years,
    )
    report, violations = build_report(loaded, ctx, now=now, previous=previous)
    out = Path(args.out) if args.out else Path("build") / "audit" / (loaded.stack or "stack")
    markdown = render_markdown(report)
    as_json = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit-report.md").write_text(markdown, encoding="utf-8")
        (out / "audit-report.json").write_text(as_json, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write the report to {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_REFUSED

    s = report["summary"]
    print(
        f"{loaded.stack or '?'}: {s['clinics']} clinic(s), {s['mandatory']} mandatory and {s['advisory']} advisory "
        f"violation(s), {s['publicEndpoints']} public endpoint(s) -> {out}/audit-report.md, audit-report.json"
    )
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    for v in violations:
        print(f"  {v.enforcement.value:<9} {v.rule:<30} {v.clinic or '(platform)':<20} {v.message}")

    if args.archive:
        items = [
            Item("stack-export.json", data, "application/json"),
            Item("audit-report.json", as_json.encode(), "application/json"),
            Item("audit-report.md", markdown.encode(), "text/markdown; charset=utf-8"),
        ]
        try:
            manifest = archive(
                items,
                args.archive,
                stack=loaded.stack,
                retention_years=args.retention_years,
                now=now,
                endpoint_url=args.s3_endpoint_url,
            )
        except ArchiveError as exc:
            print(f"archive failed: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        (out / "archive-manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        print(
            f"archived to s3://{manifest['bucket']}/{manifest['prefix']}/ (compliance lock until "
            f"{manifest['retention']['until']}), verified; manifest SHA-256 {manifest['manifestSha256']}"
        )

    failing = violations if args.fail_on == "any" else [v for v in violations if v.enforcement is Enforcement.MANDATORY]
    return EXIT_VIOLATIONS if failing else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
