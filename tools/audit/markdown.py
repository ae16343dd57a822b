"""The audit report for people: audit-report.md, written from the report's JSON form (tools/audit/report.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.audit import evidence as audit_evidence

# One way of writing a table cell for every table of the report (tools/audit/evidence.py).
_cell = audit_evidence.cell
_table = audit_evidence.table


def render_markdown(report: Mapping[str, Any]) -> str:
    e = report["export"]
    s = report["summary"]
    verdict = (
        "PASS: no rule violation"
        if s["result"] == "pass"
        else f"FAIL: {s['mandatory']} mandatory and {s['advisory']} advisory violation(s)"
    )
    out = [
        f"# Audit of stack `{e['stack'] or '?'}` ({e['project'] or '?'})",
        "",
        f"**{verdict}.** {s['clinics']} clinic(s), {s['publicEndpoints']} public endpoint(s).",
        "",
        *_table(
            ["", ""],
            [
                ["Export", e["source"]],
                ["Export SHA-256", f"`{e['sha256']}`"],
                ["Last update", e["updatedAt"] or "unknown"],
                ["Program commit", (report.get("provenance") or {}).get("commit") or "unknown"],
                ["Engine", e["engine"] or "unknown"],
                ["Deployment version", e["deploymentVersion"]],
                ["Resources", e["resources"]],
                ["Report generated", report["generatedAt"]],
            ],
        ),
        "",
    ]
    if report["notes"]:
        out += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    out += ["## Clinics", ""]
    rows = []
    for c in report["clinics"]:
        vol = c["volume"] or {}
        rows.append(
            [
                c["clinic"],
                c["name"],
                c["namespace"],
                c["fqdn"],
                c["privateIp"] or "(dynamic)",
                c.get("frontDoor", ""),
                vol.get("size", ""),
                vol.get("storageClass", ""),
                vol.get("protected") if vol else False,
                vol.get("retained") if vol else False,
                c["image"],
                c["state"],
                [f"{b['name']} ({b['schedule']})" for b in c["backups"]],
                f"{c['violations']['mandatory']} / {c['violations']['advisory']}",
            ]
        )
    out += _table(
        [
            "Clinic",
            "Name",
            "Namespace",
            "FQDN",
            "Private IP",
            "Front door",
            "Volume",
            "Class",
            "Protected",
            "Retained",
            "Image",
            "State",
            "Backups",
            "Violations (M / A)",
        ],
        rows,
    )
    extra = [(c["clinic"], v) for c in report["clinics"] for v in c["volumes"] if v is not c["volume"]]
    if extra:
        out += ["", "Earlier volume generations kept (restores):", ""]
        out += _table(
            ["Clinic", "Claim", "Size", "Class", "Protected", "Retained"],
            [[cid, v["claim"], v["size"], v["storageClass"], v["protected"], v["retained"]] for cid, v in extra],
        )
    if "acknowledgements" in report:
        out += ["", "## Acknowledged transitions", ""]
        out += (
            _table(
                ["Clinic", "Transition", "Status", "Reason", "What it let through"],
                [
                    [a["clinic"], a["transition"], a["status"], a["reason"], a["what"] or "—"]
                    for a in report["acknowledgements"]
                ],
            )
            if report["acknowledgements"]
            else ["None."]
        )
    out += audit_evidence.render(report)
    out += ["", "## Public endpoints", ""]
    if report["publicEndpoints"]:
        out += _table(
            ["Kind", "Resource", "Address", "Used by / allowed from"],
            [
                [p["kind"], p["resource"], p.get("address", ""), p.get("usedBy") or p.get("allowedFrom") or ""]
                for p in report["publicEndpoints"]
            ],
        )
    else:
        out += ["None."]
    if report["vpnSites"]:
        out += ["", "VPN peers (remote sites allowed in over IPsec):", ""]
        out += _table(
            ["Site", "Gateway IP", "Address spaces"],
            [[v["site"], v["gatewayIp"], v["addressSpaces"]] for v in report["vpnSites"]],
        )
    out += ["", "## Violations", ""]
    if report["violations"]:
        out += _table(
            ["Enforcement", "Rule", "Clinic", "Resource", "Finding"],
            [
                [v["enforcement"], f"`{v['rule']}`", v["clinic"] or "(platform)", v["resource"], v["message"]]
                for v in sorted(
                    report["violations"], key=lambda x: (x["enforcement"] != "mandatory", x["clinic"] or "", x["rule"])
                )
            ],
        )
    else:
        out += ["None."]
    out += ["", "## Rules applied", ""]
    out += _table(
        ["Rule", "Enforcement", "What"], [[f"`{r['id']}`", r["enforcement"], r["title"]] for r in report["rules"]]
    )
    return "\n".join(out) + "\n"
