"""The evidence columns of the audit report (tools/audit/report.py): what an auditor signs beyond "no rule was broken".

Per clinic: its backup schedules and their state (paused while the clinic is suspended, flagged when not), how
many snapshots are kept and where its dumps go, the networks that reach it and the VPN site they arrive through, the
restores that built its volumes and from what. For the stack: the retention and immutability of the archives, the
locks, the clinics retired for good, the program commit and the time of the update the export records, and (with
--previous) what changed since the last report.

Everything is read from the export: inputs as the program declared them and, where the engine recorded them (a
`pulumi up` or `refresh`), the live status in the outputs. What the export cannot show is said, never guessed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from orca_platform.rules import ResourceView, as_list, as_map, as_text, dig, number, truthy

IMMUTABILITY = "azure-native:storage:BlobContainerImmutabilityPolicy"
CONTAINER = "azure-native:storage:BlobContainer"
LIFECYCLE = "azure-native:storage:ManagementPolicy"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
ACCOUNT = "azure-native:storage:StorageAccount"
LOCKS = ("azure-native:authorization:ManagementLockAtResourceLevel", "azure-native:authorization:ManagementLockByScope")
LOCAL_GATEWAY = "azure-native:network:LocalNetworkGateway"
NGINX_POLICY = "kubernetes:k8s.nginx.org/v1:Policy"


def _env(view: ResourceView, name: str) -> str:
    """A literal env var of the first container that sets it (CronJob, Job or Deployment pod templates)."""
    spec = as_map(view.props.get("spec"))
    template = as_map(dig(spec, "jobTemplate", "spec", "template") or spec.get("template"))
    for c in as_list(dig(template, "spec", "containers")) + as_list(dig(template, "spec", "initContainers")):
        for e in as_list(as_map(c).get("env")):
            if as_text(as_map(e).get("name")) == name and "value" in as_map(e):
                return as_text(as_map(e).get("value"))
    return ""


def backup_evidence(mine: Sequence[ResourceView], state: str) -> list[dict[str, Any]]:
    """Each schedule with the state an auditor expects it in: running for an active clinic, paused when suspended."""
    found = []
    for v in sorted((v for v in mine if v.kind == "CronJob"), key=lambda x: x.k8s_name):
        paused = truthy(dig(v.props, "spec", "suspend")) is True
        if state == "suspended":
            verdict = "paused (clinic suspended)" if paused else "RUNNING although the clinic is suspended"
        else:
            verdict = "PAUSED although the clinic is active" if paused else "running"
        status = as_map(v.outputs.get("status"))
        found.append(
            {
                "name": v.k8s_name,
                "schedule": as_text(dig(v.props, "spec", "schedule")),
                "timeZone": as_text(dig(v.props, "spec", "timeZone")) or "the controller's (UTC)",
                "state": verdict,
                "expected": verdict in ("running", "paused (clinic suspended)"),
                # Live status as recorded at the last update or refresh; offline exports have none.
                "lastSuccessfulTime": as_text(status.get("lastSuccessfulTime")) or None,
                "lastScheduleTime": as_text(status.get("lastScheduleTime")) or None,
                "snapshotsKept": int(number(_env(v, "RETAIN")) or 0) or None,
            }
        )
    return found


def dump_destinations(mine: Sequence[ResourceView], clinic: str) -> list[str]:
    urls = {_env(v, "BLOB_URL") for v in mine if v.kind == "CronJob" and v.k8s_name.endswith("dumps")} - {""}
    return [f"{url}/{container}/{clinic}/" for url in sorted(urls) for container in ("daily", "monthly")]


def vpn_site_list(views: Sequence[ResourceView]) -> list[tuple[str, list[str]]]:
    return [
        (
            v.name.removeprefix("lgw-"),
            [as_text(a) for a in as_list(dig(v.props, "localNetworkAddressSpace", "addressPrefixes"))],
        )
        for v in views
        if v.type == LOCAL_GATEWAY
    ]


def access_evidence(mine: Sequence[ResourceView], sites: Sequence[tuple[str, list[str]]]) -> dict[str, Any]:
    """Who reaches the clinic: its load balancer's source ranges, its ingress allow-list, and their VPN sites."""
    ranges = sorted(
        {
            as_text(r)
            for v in mine
            if v.kind == "Service"
            for r in as_list(dig(v.props, "spec", "loadBalancerSourceRanges"))
        }
    )
    allow = sorted(
        {
            as_text(r)
            for v in mine
            if v.type == NGINX_POLICY
            for r in as_list(dig(v.props, "spec", "accessControl", "allow"))
        }
    )
    through: list[str] = []
    unreached: list[str] = []
    for cidr in sorted(set(ranges) | set(allow)):
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            unreached.append(cidr)
            continue
        names = [
            name
            for name, spaces in sites
            if any(net.subnet_of(ipaddress.ip_network(s)) for s in spaces if _is_net(s))  # type: ignore[arg-type]
        ]
        if names:
            through += [n for n in names if n not in through]
        else:
            unreached.append(cidr)
    return {
        "loadBalancerSourceRanges": ranges,
        "ingressAllowList": allow,
        "sameRangesBothPaths": ranges == allow,
        "vpnSites": through,
        "outsideEverySite": unreached,
    }


def _is_net(text: str) -> bool:
    try:
        ipaddress.ip_network(text)
    except ValueError:
        return False
    return True


def restore_evidence(mine: Sequence[ResourceView], in_use: str) -> list[dict[str, Any]]:
    """Every volume generation built from a backup: from which snapshot or dump, and whether the server uses it."""
    found = []
    for v in sorted((v for v in mine if v.kind == "PersistentVolumeClaim"), key=lambda x: x.k8s_name):
        source = as_map(dig(v.props, "spec", "dataSource"))
        if source:
            found.append(
                {
                    "claim": v.k8s_name,
                    "from": "snapshot",
                    "source": as_text(source.get("name")),
                    "inUse": v.k8s_name == in_use,
                }
            )
    for v in sorted(
        (v for v in mine if v.kind == "Job" and v.k8s_name.startswith("orca-restore-")), key=lambda x: x.k8s_name
    ):
        restore_id = v.k8s_name.removeprefix("orca-restore-")
        claim = f"orca-state-{restore_id}"
        found.append({"claim": claim, "from": "dump", "source": _env(v, "DUMP"), "inUse": claim == in_use})
    return found


def retention_evidence(views: Sequence[ResourceView]) -> dict[str, Any]:
    """How long archives are kept, whether they can be altered, and what stops their deletion."""
    containers: list[dict[str, Any]] = []
    by_urn = {v.urn: v for v in views}
    for v in views:
        if v.type == IMMUTABILITY:
            state = as_text(v.outputs.get("state"))
            # The policy depends on its container: name it by that resource, whatever shape the name input took.
            owner = next((by_urn[d] for d in v.dependencies if d in by_urn and by_urn[d].type == CONTAINER), None)
            name = as_text(owner.props.get("containerName")) if owner else as_text(v.props.get("containerName"))
            appends = truthy(v.props.get("allowProtectedAppendWrites"))
            containers.append(
                {
                    "container": name or v.name,
                    "immutableDays": int(number(v.props.get("immutabilityPeriodSinceCreationInDays")) or 0),
                    "protectedAppendWrites": "allowed" if appends else "not allowed",
                    # Locking is an Azure action, not a property: only a real export's outputs show it.
                    "policyState": state or "not recorded (an offline export); Azure reports Locked once locked",
                }
            )
    expiry: dict[str, int | None] = {}
    for v in views:
        if v.type == LIFECYCLE:
            for rule in as_list(dig(v.props, "policy", "rules")):
                days = number(
                    dig(rule, "definition", "actions", "baseBlob", "delete", "daysAfterModificationGreaterThan")
                )
                for prefix in as_list(dig(rule, "definition", "filters", "prefixMatch")):
                    expiry[as_text(prefix).rstrip("/")] = int(days) if days is not None else None
    for c in containers:
        c["deletedAfterDays"] = expiry.get(str(c["container"]))
    soft = next((v for v in views if v.type == BLOB_SERVICE), None)
    accounts = [v for v in views if v.type == ACCOUNT]
    locks = [
        {"resource": v.display, "level": as_text(v.props.get("level")), "notes": as_text(v.props.get("notes"))}
        for v in views
        if v.type in LOCKS
    ]
    return {
        "containers": sorted(containers, key=lambda c: c["container"]),
        "softDeleteDays": {
            "blobs": int(number(dig(soft.props, "deleteRetentionPolicy", "days")) or 0) if soft else None,
            "containers": int(number(dig(soft.props, "containerDeleteRetentionPolicy", "days")) or 0) if soft else None,
        },
        "accounts": [
            {"resource": a.display, "sku": as_text(dig(a.props, "sku", "name")), "protected": a.protect}
            for a in accounts
        ],
        "locks": locks,
    }


def stack_outputs(views: Sequence[ResourceView]) -> Mapping[str, Any]:
    stack = next((v for v in views if v.type == "pulumi:pulumi:Stack"), None)
    return stack.outputs if stack else {}


def provenance(views: Sequence[ResourceView], manifest: Mapping[str, Any]) -> dict[str, Any]:
    commit = as_text(stack_outputs(views).get("sourceCommit"))
    return {
        "commit": commit or None,
        "updatedAt": as_text(manifest.get("time")) or None,
        "commitNote": ""
        if commit
        else "the export records no program commit (stack output sourceCommit, set from ORCA_SOURCE_COMMIT or "
        "GITHUB_SHA when the update ran)",
    }


def retired(views: Sequence[ResourceView], clinics: Sequence[str]) -> dict[str, Any]:
    ids = [as_text(i) for i in as_list(stack_outputs(views).get("retiredClinicIds"))]
    return {
        "ids": ids,
        "stillPresent": sorted(set(ids) & set(clinics)),
        "recorded": "retiredClinicIds" in stack_outputs(views),
    }


# --- since the previous report ---------------------------------------------------------------------------------

TRACKED = ("state", "fqdn", "privateIp", "image", "name")


def _clinic_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    facts = {k: row.get(k) for k in TRACKED}
    vol = as_map(row.get("volume"))
    facts["volume"] = f"{vol.get('claim')} {vol.get('size')} {vol.get('storageClass')}" if vol else None
    evidence = as_map(row.get("evidence"))
    facts["backups"] = [f"{b['name']} {b['schedule']} {b['state']}" for b in as_list(evidence.get("backups"))]
    facts["sources"] = as_map(evidence.get("access")).get("loadBalancerSourceRanges")
    facts["restores"] = [f"{r['claim']} <- {r['from']} {r['source']}" for r in as_list(evidence.get("restores"))]
    facts["violations"] = row.get("violations")
    return facts


def changes_since(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What differs between two reports: clinics added and removed, each clinic's facts, the platform's."""
    before = {as_text(r.get("clinic")): r for r in as_list(previous.get("clinics"))}
    after = {as_text(r.get("clinic")): r for r in as_list(current.get("clinics"))}
    changed: dict[str, list[dict[str, Any]]] = {}
    for cid in sorted(before.keys() & after.keys()):
        old, new = _clinic_facts(before[cid]), _clinic_facts(after[cid])
        diffs = [{"field": k, "before": old[k], "after": new[k]} for k in old if old[k] != new[k]]
        if diffs:
            changed[cid] = diffs
    platform = []
    for key, path in (
        ("violations", ("summary",)),
        ("publicEndpoints", ("publicEndpoints",)),
        ("vpnSites", ("vpnSites",)),
        ("retention", ("retention",)),
        ("retiredClinics", ("retiredClinics", "ids")),
        ("commit", ("provenance", "commit")),
    ):
        a, b = dig(previous, *path), dig(current, *path)
        if a != b:
            platform.append({"what": key, "before": a, "after": b})
    return {
        "previousReport": {
            "generatedAt": previous.get("generatedAt"),
            "exportSha256": dig(previous, "export", "sha256"),
            "updatedAt": dig(previous, "export", "updatedAt"),
        },
        "clinicsAdded": sorted(after.keys() - before.keys()),
        "clinicsRemoved": sorted(before.keys() - after.keys()),
        "clinicsChanged": changed,
        "platform": platform,
    }


def clinic_evidence(
    mine: Sequence[ResourceView], row: Mapping[str, Any], sites: Sequence[tuple[str, list[str]]]
) -> dict[str, Any]:
    """The evidence columns of one clinic's row (its Kubernetes objects in `mine`)."""
    volume = as_map(row.get("volume"))
    backups = backup_evidence(mine, as_text(row.get("state")))
    kept = next((b["snapshotsKept"] for b in backups if b["snapshotsKept"]), None)
    return {
        "backups": backups,
        "backupsAsExpected": all(b["expected"] for b in backups) and bool(backups),
        "snapshotsKept": kept,
        "dumpsTo": dump_destinations(mine, as_text(row.get("clinic"))),
        "access": access_evidence(mine, sites),
        "restores": restore_evidence(mine, as_text(volume.get("claim"))),
    }


# --- Markdown --------------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A table cell as the report writes them (tools/audit/report.py does the same for its own tables)."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, list):
        return "<br>".join(cell(v) for v in value) or "—"
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def render(report: Mapping[str, Any]) -> list[str]:
    """The evidence sections (tools/audit/evidence.py); absent keys (an older report shape) are skipped."""
    out: list[str] = []
    rows = [c for c in report["clinics"] if c.get("evidence")]
    if rows:
        out += ["", "## Backups, access and restores per clinic", ""]
        cells = []
        for c in rows:
            ev = c["evidence"]
            access = ev["access"]
            cells.append(
                [
                    c["clinic"],
                    c["state"],
                    [
                        f"{b['name']} `{b['schedule']}` {b['timeZone']}: {b['state']}"
                        + (f", last success {b['lastSuccessfulTime']}" if b["lastSuccessfulTime"] else "")
                        for b in ev["backups"]
                    ],
                    ev["backupsAsExpected"],
                    ev["snapshotsKept"] or "unknown",
                    ev["dumpsTo"],
                    access["loadBalancerSourceRanges"],
                    access["sameRangesBothPaths"],
                    access["vpnSites"] + [f"**outside every site: {r}**" for r in access["outsideEverySite"]],
                    [
                        f"{r['claim']} from {r['from']} {r['source']}" + (" (in use)" if r["inUse"] else "")
                        for r in ev["restores"]
                    ]
                    or "—",
                ]
            )
        out += table(
            [
                "Clinic",
                "State",
                "Backup schedules (state)",
                "As expected",
                "Snapshots kept",
                "Dumps to",
                "Source ranges",
                "Same on ingress",
                "VPN site",
                "Restores (source)",
            ],
            cells,
        )
    retention = report.get("retention")
    if retention:
        out += ["", "## Retention, immutability and locks", ""]
        out += table(
            ["Container", "Immutable (days)", "Policy state", "Deleted after (days)", "Protected appends"],
            [
                [
                    c["container"],
                    c["immutableDays"],
                    c["policyState"],
                    c["deletedAfterDays"],
                    c["protectedAppendWrites"],
                ]
                for c in retention["containers"]
            ],
        )
        soft = retention["softDeleteDays"]
        accounts = ", ".join(
            f"{a['resource']} ({a['sku']}, protected: {cell(a['protected'])})" for a in retention["accounts"]
        )
        locks = ", ".join(f"{lk['resource']} {lk['level']}" for lk in retention["locks"]) or "none"
        out += [
            "",
            f"Soft delete: blobs {soft['blobs']} days, containers {soft['containers']} days. "
            f"Accounts: {accounts or 'none'}. Delete locks: {locks}.",
        ]
    retired_ = report.get("retiredClinics")
    if retired_:
        out += ["", "## Retired clinics", ""]
        if not retired_["recorded"]:
            out += ["The export records no retired clinics (no stack output retiredClinicIds)."]
        else:
            out += [", ".join(f"`{i}`" for i in retired_["ids"]) or "None."]
            if retired_["stillPresent"]:
                out += ["", f"**Still present in the stack:** {', '.join(retired_['stillPresent'])}"]
    changes = report.get("changes")
    if changes:
        prev = changes["previousReport"]
        out += [
            "",
            "## Changes since the previous report",
            "",
            f"Previous report generated {prev['generatedAt']}, export SHA-256 `{prev['exportSha256']}` "
            f"(last update {prev['updatedAt'] or 'unknown'}).",
            "",
            f"- Clinics added: {', '.join(changes['clinicsAdded']) or 'none'}",
            f"- Clinics removed: {', '.join(changes['clinicsRemoved']) or 'none'}",
        ]
        for cid, diffs in changes["clinicsChanged"].items():
            for d in diffs:
                out.append(f"- {cid}: {d['field']}: {cell(d['before'])} → {cell(d['after'])}")
        for d in changes["platform"]:
            out.append(f"- platform: {d['what']} changed")
        if not (
            changes["clinicsAdded"] or changes["clinicsRemoved"] or changes["clinicsChanged"] or changes["platform"]
        ):
            out.append("- nothing else changed")
    return out
