"""`make synth`: run the real program offline and write what it would create, one file per resource.

Kubernetes objects go to <out>/k8s/<namespace>/<kind>-<name>.yaml (valid manifests; the Pulumi options ride in a
comment header), every other resource to <out>/azure/<type>-<name>.json with its options. Secrets are redacted.
Exit status 2, with the program's own message, on bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from orca_platform.model.errors import InputError
from tools.offline.engine import PROJECT_DIR, Registered, Run, redact, run_program, stack_config

CONFIG_TENANTS = "orca-platform:tenantsFile"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def integral(value: Any) -> Any:
    """Numbers cross the mock monitor as doubles (protobuf Struct); the provider sends Kubernetes integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def render_k8s(res: Registered) -> tuple[Path, str]:
    raw = integral(redact(res.inputs))
    # Conventional order for people reading the manifest: apiVersion, kind, metadata, then the rest.
    first = ("apiVersion", "kind", "metadata")
    body = {k: raw[k] for k in first if k in raw} | {k: v for k, v in raw.items() if k not in first}
    meta = body.get("metadata") or {}
    ns = meta.get("namespace") or "_cluster"
    path = Path("k8s") / ns / f"{body.get('kind', 'Object')}-{_safe(meta.get('name') or res.name)}.yaml"
    header = [f"# pulumi urn: {res.urn}"] + [f"# pulumi {k}: {json.dumps(v)}" for k, v in res.options().items()]
    return path, "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def render_other(res: Registered) -> tuple[Path, str]:
    kind = res.type.replace(":", "_").replace("/", "_")
    path = Path("azure" if res.type.startswith("azure-native:") else "other") / f"{kind}-{_safe(res.name)}.json"
    doc = {"urn": res.urn, "type": res.type, "name": res.name, "options": res.options(), "inputs": redact(res.inputs)}
    return path, json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(run: Run, out: Path) -> Counter[str]:
    if out.exists():
        shutil.rmtree(out)
    counts: Counter[str] = Counter()
    for res in run.resources:
        if not res.custom:
            counts["components"] += 1
            continue
        path, text = render_k8s(res) if res.is_kubernetes else render_other(res)
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        counts["kubernetes" if res.is_kubernetes else "azure" if res.type.startswith("azure-native:") else "other"] += 1
    outputs = {k: ("[secret]" if k in run.secret_outputs else v) for k, v in run.outputs.items()}
    (out / "stack-outputs.json").write_text(json.dumps(outputs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--tenants", default="", help="tenants file (default: the stack's orca-platform:tenantsFile)")
    ap.add_argument("--out", default="", help="output folder (default: build/synth/<stack>)")
    args = ap.parse_args(argv)
    overrides = {CONFIG_TENANTS: args.tenants} if args.tenants else None
    try:
        config = stack_config(args.stack, PROJECT_DIR, overrides)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "synth" / args.stack
    try:
        run = run_program(args.stack, config)
    except Exception as exc:  # noqa: BLE001 - the program's RunError carries the user-facing message
        message = str(exc)
        marker = "RunError"
        print(f"error: {message.split(marker + ': ', 1)[-1]}", file=sys.stderr)
        return 2
    counts = write(run, out)
    print(
        f"{args.stack}: {counts['azure']} Azure resources, {counts['kubernetes']} Kubernetes objects, "
        f"{counts['other']} other, {counts['components']} components -> {out}"
    )
    clinics = run.outputs.get("clinics") or {}
    for cid, c in clinics.items():
        print(f"  {cid:<24} {c['state']:<10} {c['fqdn']:<40} {c['privateIp'] or '(dynamic)':<15} {c['volume']}")
    cap = run.outputs.get("capacity") or {}
    if cap:
        print(
            f"  orca pool: {cap['nodes']} x {cap['vmSize']}, {cap['clinicsPerNode']} clinics per node "
            f"({cap['storage']}, binding limit: {cap['bindingLimit']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
