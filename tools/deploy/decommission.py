"""`make decommission CLINIC=<id> [STACK=] [EXPORT=]`: the steps that retire a clinic, with its real URNs.

    python -m tools.deploy.decommission --clinic ID [--stack S] [--tenants FILE] [--export FILE]
    kubectl create job ... -o json | python -m tools.deploy.decommission --final-dump-job | kubectl create -f -

Prints the runbook: a final dump kept for the records' retention, the volume-to-share mapping recorded for the
audit, `pulumi state unprotect` of each data resource, the clinic's ranges removed from its VPN site (the NSGs
follow), the id moved to `retiredClinicIds`, then the audit record. It changes nothing itself. The URNs come from
the offline run of the program (engine URNs, tools/offline/engine_urns.py) or, with --export, from a `pulumi stack
export`.

The final dump goes to `monthly/`, the container whose immutability and lifecycle period is
`backup.monthlyRetentionDays` (the records' retention); a copy in `daily/` expires after `dailyRetentionDays`.
With --final-dump-job the tool is a filter: it turns the Job `kubectl create job --from=cronjob/orca-dumps` prints
into one that also writes the dump to `monthly/<clinic>/<stamp>-final.dump`, with the clinic's own backup identity.

Exit status: 0 steps printed, 2 unknown or retired clinic, unreadable stack, export or Job.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orca_platform.backup import backup_plan
from orca_platform.conventions import PURPOSE_ANNOTATION
from orca_platform.model.config_file import read_stack_file, settings_from_config
from orca_platform.model.errors import InputError
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import TenantsFile, load_tenants
from orca_platform.plan import naming
from tools.offline.engine import PROJECT_DIR, Run, run_program, stack_config
from tools.offline.engine_urns import engine_urns, parse

TENANT = "orca:platform:OrcaTenant"
RECORD = "azure-native:privatedns:PrivateRecordSet"
DUMP_FILE = "/work/orca.dump"  # where backup_plan.DUMP_SCRIPT leaves the checked dump
FINAL_SUFFIX = "-final"
EXIT_OK, EXIT_REFUSED = 0, 2


class DecommissionError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    urn: str
    type: str
    protect: bool
    retain: bool


@dataclass(frozen=True)
class Clinic:
    id: str
    name: str
    state: str
    source_cidrs: tuple[str, ...]
    claims: tuple[str, ...]
    items: tuple[Item, ...]


# --- what the clinic is made of --------------------------------------------------------------------------------------


def _members(resources: list[dict[str, Any]], clinic: str, record: str | None) -> list[dict[str, Any]]:
    """The clinic's OrcaTenant, everything under it (by parent), and its DNS record."""
    by_urn = {str(r.get("urn")): r for r in resources}
    roots = {u for u, r in by_urn.items() if r.get("type") == TENANT and parse(u).name == clinic}

    def under(urn: str) -> bool:
        seen: set[str] = set()
        while urn and urn not in seen:
            if urn in roots:
                return True
            seen.add(urn)
            urn = str((by_urn.get(urn) or {}).get("parent") or "")
        return False

    return [
        r
        for u, r in by_urn.items()
        if under(u) or (record and r.get("type") == RECORD and parse(u).name == f"dns-{record}")
    ]


def _record(outputs: dict[str, Any], clinic: str) -> str | None:
    fqdn = ((outputs.get("clinics") or {}).get(clinic) or {}).get("fqdn")
    zone = outputs.get("dnsZone")
    return naming.record_name(fqdn, zone) if isinstance(fqdn, str) and isinstance(zone, str) else None


def _claims(members: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(
        str(((r.get("inputs") or {}).get("metadata") or {}).get("name"))
        for r in members
        if r.get("type") == "kubernetes:core/v1:PersistentVolumeClaim"
    )


def _clinic(members: list[dict[str, Any]], clinic: str, tenants: TenantsFile | None, outputs: dict[str, Any]) -> Clinic:
    entry = next((c for c in tenants.clinics if c.id == clinic), None) if tenants else None
    shown = (outputs.get("clinics") or {}).get(clinic) or {}
    if entry is not None:
        cidrs = tuple(entry.source_cidrs)
    else:  # no longer in the tenants file: its Service still lists its ranges
        service = next((r for r in members if r.get("type") == "kubernetes:core/v1:Service"), {})
        cidrs = tuple(((service.get("inputs") or {}).get("spec") or {}).get("loadBalancerSourceRanges") or [])
    items = tuple(
        Item(str(r["urn"]), str(r.get("type")), bool(r.get("protect")), bool(r.get("retainOnDelete"))) for r in members
    )
    return Clinic(
        id=clinic,
        name=entry.name if entry else str(shown.get("name") or ""),
        state=entry.state.value if entry else str(shown.get("state") or "unknown"),
        source_cidrs=cidrs,
        claims=_claims(members),
        items=items,
    )


def from_run(run: Run, clinic: str, tenants: TenantsFile | None) -> Clinic:
    """The clinic as the offline run of the program registers it, under the URNs the engine gives it."""
    urns = engine_urns(run)
    resources = [
        {
            "urn": urns[r.urn],
            "type": r.type,
            "parent": urns.get(r.parent, ""),
            "inputs": r.inputs,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
        }
        for r in run.resources
    ]
    members = _members(resources, clinic, _record(run.outputs, clinic))
    if not members:
        raise DecommissionError(f"clinic {clinic!r} is not deployed by stack {run.stack} ({_known(resources)})")
    return _clinic(members, clinic, tenants, run.outputs)


def from_offline(stack: str, clinic: str, tenants: TenantsFile | None, tenants_path: str) -> Clinic:
    overrides = {"orca-platform:tenantsFile": tenants_path} if tenants_path else None
    return from_run(run_program(stack, stack_config(stack, PROJECT_DIR, overrides)), clinic, tenants)


def from_export(path: Path, clinic: str, tenants: TenantsFile | None) -> Clinic:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        deployment = doc.get("deployment") or doc.get("checkpoint", {}).get("latest") or {}
        resources: list[dict[str, Any]] = list(deployment.get("resources") or [])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise DecommissionError(f"{path}: not a `pulumi stack export` ({exc.__class__.__name__})") from None
    stack_res: dict[str, Any] = next((r for r in resources if r.get("type") == "pulumi:pulumi:Stack"), {})
    outputs = stack_res.get("outputs") or {}
    members = _members(resources, clinic, _record(outputs, clinic))
    if not members:
        raise DecommissionError(f"clinic {clinic!r} is not in {path.name} ({_known(resources)})")
    return _clinic(members, clinic, tenants, outputs)


def _known(resources: list[dict[str, Any]]) -> str:
    ids = sorted(parse(str(r["urn"])).name for r in resources if r.get("type") == TENANT)
    return f"its clinics: {', '.join(ids)}" if ids else "it has no clinics"


# --- the ranges ------------------------------------------------------------------------------------------------------


def range_steps(c: Clinic, settings: Settings, tenants: TenantsFile | None, stack_file: str) -> list[str]:
    """Per source range: which VPN site carries it and what to remove there (the NSGs are built from the sites)."""
    others = {
        o.id: [ipaddress.IPv4Network(x) for x in o.source_cidrs]
        for o in (tenants.clinics if tenants else [])
        if o.id != c.id
    }
    vpn = settings.network.vpn
    out: list[str] = []
    for cidr in c.source_cidrs:
        net = ipaddress.IPv4Network(cidr)
        sites = [s for s in vpn.sites if any(net.subnet_of(ipaddress.IPv4Network(a)) for a in s.address_spaces)]
        if vpn.point_to_site and net.subnet_of(ipaddress.IPv4Network(vpn.point_to_site.address_pool)):
            out.append(f"{cidr}: inside the point-to-site pool, shared by staff laptops: nothing to remove")
        for site in sites:
            space = next(a for a in site.address_spaces if net.subnet_of(ipaddress.IPv4Network(a)))
            sharing = sorted(
                o for o, nets in others.items() if any(n.overlaps(ipaddress.IPv4Network(space)) for n in nets)
            )
            if sharing:
                out.append(
                    f"{cidr}: site '{site.name}' range {space} also carries {', '.join(sharing)}: keep it, and have "
                    f"the site's router stop sending {cidr}"
                )
            elif len(site.address_spaces) == 1:
                out.append(
                    f"{cidr}: the only range of site '{site.name}': remove the site from network.vpn.sites in "
                    f"{stack_file} (its connection and local network gateway go; its key is no longer used)"
                )
            else:
                out.append(f"{cidr}: remove {space} from addressSpaces of site '{site.name}' in {stack_file}")
        if not sites and not out[-1:]:
            out.append(f"{cidr}: in no VPN site of {stack_file}: nothing to remove")
    return out


# --- the runbook -----------------------------------------------------------------------------------------------------


def runbook(c: Clinic, stack: str, settings: Settings, tenants: TenantsFile | None, tenants_name: str) -> str:
    ns = naming.namespace(c.id)
    b = settings.backup
    record_dir = f"build/decommission/{stack}/{c.id}"
    stack_file = f"Pulumi.{stack}.yaml"
    account = f'"$(pulumi stack output --stack {stack} backupAccount)"'
    data = [i for i in c.items if i.protect]
    k = shlex.quote
    lines = [
        f"Decommissioning clinic {c.id}{f' ({c.name})' if c.name else ''} on stack {stack}: {len(c.items)} resources,"
        f" {len(data)} of them data. Nothing here deletes a volume or a dump; run the steps in order.",
        "",
        f"1. Final dump, kept for the records' retention. Dumps in daily/ expire after {b.daily_retention_days} days;",
        f"   monthly/ keeps them {b.monthly_retention_days} days (backup.monthlyRetentionDays, immutable until then).",
    ]
    if c.state != "active":
        lines += [
            f"   {c.id} is {c.state}: no server runs to dump. Resume it first (`state: active` in {tenants_name},",
            f"   `make up STACK={stack}`), or rely on the last monthly/{c.id}/ dump taken while it ran (listed below).",
        ]
    lines += [
        "   Once the clinic has stopped using ORCA, with its server running:",
        f"     kubectl -n {ns} create job orca-final-dump --from=cronjob/orca-dumps --dry-run=client -o json \\",
        "       | venv/bin/python -m tools.deploy.decommission --final-dump-job \\",
        f"       | kubectl -n {ns} create -f -",
        f"     kubectl -n {ns} wait --for=condition=complete job/orca-final-dump --timeout=2h",
        f"     kubectl -n {ns} logs job/orca-final-dump",
        f"     az storage blob list --account-name {account} -c monthly --prefix {c.id}/ --auth-mode login -o table",
        f"   It writes monthly/{c.id}/<stamp>{FINAL_SUFFIX}.dump (and daily/{c.id}/<stamp>{FINAL_SUFFIX}.dump) with",
        f"   the clinic's own backup identity, which may write only under {c.id}/.",
        "2. Hand the clinic its data where required: the dump is `pg_dump -Fc`, what ORCA's import reads.",
        f"3. Stop the server: `state: suspended` for {c.id} in {tenants_name}, then `make up STACK={stack}`",
        "   (the pod stops, backups pause; volume, address and name are kept).",
        "4. Record which Azure volume holds each claim, for the audit:",
        f"     mkdir -p {record_dir}",
        f"     kubectl get pv -o custom-columns=PV:.metadata.name,NAMESPACE:.spec.claimRef.namespace,"
        "CLAIM:.spec.claimRef.name,STATUS:.status.phase,RECLAIM:.spec.persistentVolumeReclaimPolicy,"
        "CAPACITY:.spec.capacity.storage,DRIVER:.spec.csi.driver,HANDLE:.spec.csi.volumeHandle"
        f" | awk 'NR==1 || $2==\"{ns}\"' > {record_dir}/volumes.txt",
        f"   Expect one line per claim ({', '.join(c.claims) or 'none'}), RECLAIM Retain. HANDLE names the share",
        "   (<resource group>#<account>#<share>#... for Azure Files) or the disk's resource id.",
        "5. Unprotect exactly its data resources (any `make up` before step 6 protects them again):",
    ]
    lines += [f"     pulumi state unprotect --stack {stack} {k(i.urn)}" for i in data] or ["     (none is protected)"]
    lines += [
        f"6. Retire it, in one change: remove {c.id} from clinics in {tenants_name}, add it to retiredClinicIds, and",
        "   take its ranges off the VPN (the NSG rule allow-vpn-sites is built from the sites' ranges):",
        *(f"     - {line}" for line in range_steps(c, settings, tenants, stack_file)),
        f"   `make preview STACK={stack}`: the gate lets these leave the stack, the Kubernetes ones kept in the",
        f"   cluster (retainOnDelete), and refuses anything else; then `make up STACK={stack}`.",
        *(
            f"     {'retained ' if i.retain else 'deleted  '}{i.urn}"
            for i in c.items
            if i.type.startswith(("kube", "azure"))
        ),
        "7. The audit record:",
        f"     pulumi stack export --stack {stack} --file {record_dir}/export.json",
        f"     make audit EXPORT={record_dir}/export.json REPORT={record_dir} ARCHIVE=<s3://bucket/prefix>",
        f"   and file {record_dir}/volumes.txt with the report (it names the share the audit report cannot see).",
        f"8. After the records' retention ({b.monthly_retention_days} days): delete {ns} with kubectl and the released",
        "   volume in the data resource group; the dumps expire by themselves.",
    ]
    return "\n".join(lines) + "\n"


# --- the final dump Job ----------------------------------------------------------------------------------------------


def final_dump_job(job: dict[str, Any]) -> dict[str, Any]:
    """The manual Job from cronjob/orca-dumps, made to also write its dump to monthly/ under a '-final' name."""
    if job.get("kind") != "Job":
        raise DecommissionError("expected the Job of `kubectl create job --from=cronjob/orca-dumps -o json`")
    containers = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    dump = [c for c in containers if str((c.get("command") or [""])[-1]).endswith("/dump.sh")]
    if len(dump) != 1:
        raise DecommissionError("the Job runs no dump.sh: make it from cronjob/orca-dumps")
    container = dump[0]
    script = " ".join(shlex.quote(str(a)) for a in container["command"])
    monthly = f'"$BLOB_URL/{backup_plan.MONTHLY}/$CLINIC/$(date -u +%Y%m%dT%H%M%SZ){FINAL_SUFFIX}.dump"'
    container["command"] = [
        "/bin/sh",
        "-c",
        f"set -eu\n{script}\nazcopy login --login-type=workload\n"
        f'azcopy copy {DUMP_FILE} {monthly} --overwrite=false\necho "final dump of $CLINIC kept in monthly/"\n',
    ]
    env = [e for e in container.get("env") or [] if e.get("name") != "DUMP_SUFFIX"]
    container["env"] = [*env, {"name": "DUMP_SUFFIX", "value": FINAL_SUFFIX}]
    annotations = job.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[PURPOSE_ANNOTATION] = "final dump before decommissioning"
    return job


# --- command line ----------------------------------------------------------------------------------------------------


def _tenants(settings: Settings, override: str) -> tuple[TenantsFile | None, str, str]:
    name = override or settings.tenants_file
    path = Path(name) if Path(name).is_absolute() else PROJECT_DIR / name
    return load_tenants(path, name), Path(name).name, str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clinic", default="", help="the clinic's id")
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--tenants", default="", help="tenants file (default: the stack's orca-platform:tenantsFile)")
    ap.add_argument("--export", default="", help="a `pulumi stack export` of the stack: its URNs instead of offline")
    ap.add_argument("--final-dump-job", action="store_true", help="filter: rewrite a Job read from stdin")
    args = ap.parse_args(argv)
    try:
        if args.final_dump_job:
            sys.stdout.write(json.dumps(final_dump_job(json.loads(sys.stdin.read())), indent=2) + "\n")
            return EXIT_OK
        if not args.clinic:
            raise DecommissionError("CLINIC=<id> is required: make decommission CLINIC=<id> STACK=<stack>")
        stack_file = PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
        settings = settings_from_config(read_stack_file(stack_file), stack_file.name)
        tenants, tenants_name, tenants_path = _tenants(settings, args.tenants)
        if tenants is not None and args.clinic in tenants.retired_clinic_ids:
            raise DecommissionError(f"clinic {args.clinic!r} is already retired (retiredClinicIds in {tenants_name})")
        if args.export:
            clinic = from_export(Path(args.export), args.clinic, tenants)
        else:
            clinic = from_offline(args.stack, args.clinic, tenants, args.tenants and tenants_path)
    except (DecommissionError, InputError, ValueError, OSError) as exc:
        print(f"decommission: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    sys.stdout.write(runbook(clinic, args.stack, settings, tenants, tenants_name))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
