"""`make export`: a `pulumi stack export` (deployment version 3) of the program's offline run, for audits and tests.

The shape follows the engine's: `{"version": 3, "deployment": {"manifest", "secrets_providers", "resources",
"pending_operations"?}}`, resources in registration order (parents and dependencies first), the root Stack resource
carrying the stack outputs, default providers made explicit, and provider references written "<urn>::<id>".

Secrets are written as the engine writes them, `{"4dabf...": "1b47...", "ciphertext": "..."}`. The ciphertext here
is a one-way keyed digest (random key per export): it never contains the plaintext and cannot be decrypted, which
is all an audit may rely on anyway.

Secret marking follows the engine: outputs named in additionalSecretOutputs and outputs whose input was secret are
written as secrets. The offline mocks mark additionalSecretOutputs like the engine does, so secrets that flow from
one resource into another arrive marked; as a safety net for anything the mocks miss (a provider schema's own
secret outputs), any value equal to or containing a known secret is written as a secret too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from orca_platform.model.errors import InputError
from tools.offline.engine import (
    PROJECT,
    PROJECT_DIR,
    SECRET_SIG,
    SIG_KEY,
    Registered,
    Run,
    is_secret,
    reveal,
    run_program,
    stack_config,
)

# Secrets shorter than this are not searched for inside other values: too likely to match by chance.
MIN_PROPAGATED_SECRET = 8
PLUGIN_PACKAGES = {"azure-native": "pulumi_azure_native", "kubernetes": "pulumi_kubernetes", "random": "pulumi_random"}


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "0.0.0"


class SecretSealer:
    """Turns plaintext into an engine-shaped secret whose ciphertext reveals nothing."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def seal(self, plain: Any) -> dict[str, str]:
        text = json.dumps(plain, sort_keys=True, ensure_ascii=False)
        nonce = secrets.token_bytes(12)
        digest = hmac.new(self._key, nonce + text.encode(), hashlib.sha256).digest()
        cipher = f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(digest).decode()}"
        return {SIG_KEY: SECRET_SIG, "ciphertext": cipher}


def _secret_strings(value: Any) -> list[str]:
    plain = reveal(value)
    if isinstance(plain, str):
        return [plain]
    if isinstance(plain, Mapping):
        return [s for v in plain.values() for s in _secret_strings(v)]
    if isinstance(plain, list):
        return [s for v in plain for s in _secret_strings(v)]
    return []


def _collect_secrets(run: Run) -> set[str]:
    """Every plaintext the engine would know to be secret."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if is_secret(node):
            found.update(_secret_strings(node))
        elif isinstance(node, Mapping):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for res in run.resources:
        walk(res.inputs)
        walk(res.outputs)
        for key in res.additional_secret_outputs:
            found.update(_secret_strings(res.outputs.get(key)))
    for key in run.secret_outputs:
        found.update(_secret_strings(run.outputs.get(key)))
    return {s for s in found if len(s) >= MIN_PROPAGATED_SECRET}


def _sealed(value: Any, known: set[str], seal: Callable[[Any], dict[str, str]]) -> Any:
    if is_secret(value):
        return seal(reveal(value))
    if isinstance(value, str) and any(s in value for s in known):
        return seal(value)
    if isinstance(value, Mapping):
        return {k: _sealed(v, known, seal) for k, v in value.items()}
    if isinstance(value, list):
        return [_sealed(v, known, seal) for v in value]
    return value


def _outputs(res: Registered, known: set[str], seal: Callable[[Any], dict[str, str]]) -> dict[str, Any]:
    # The engine marks an output secret when it is named in additionalSecretOutputs or its input was secret.
    secret_keys = set(res.additional_secret_outputs) | {k for k, v in res.inputs.items() if is_secret(v)}
    out: dict[str, Any] = {}
    for key, value in res.outputs.items():
        if key in secret_keys and value is not None and not is_secret(value):
            out[key] = seal(reveal(value))
        else:
            out[key] = _sealed(value, known, seal)
    return out


def build_export(
    run: Run,
    *,
    project: str = PROJECT,
    now: datetime | None = None,
    sealer: SecretSealer | None = None,
) -> dict[str, Any]:
    """The deployment-version-3 document `pulumi stack export` would print for this run's stack."""
    seal = (sealer or SecretSealer()).seal
    known = _collect_secrets(run)
    stamp = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    engine = "v" + _version("pulumi")
    stack_urn = f"urn:pulumi:{run.stack}::{project}::pulumi:pulumi:Stack::{project}-{run.stack}"

    stack_outputs = {
        k: seal(reveal(v)) if k in run.secret_outputs else _sealed(v, known, seal) for k, v in run.outputs.items()
    }
    resources: list[dict[str, Any]] = [
        {"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": stack_outputs}
    ]

    # Resources without an explicit provider use the engine's default provider of their package.
    defaults: dict[str, str] = {}
    for res in run.resources:
        if res.custom and not res.provider and not res.type.startswith("pulumi:providers:"):
            pkg = res.type.split(":", 1)[0]
            if pkg in defaults:
                continue
            ver = _version(PLUGIN_PACKAGES.get(pkg, f"pulumi_{pkg}"))
            urn = f"urn:pulumi:{run.stack}::{project}::pulumi:providers:{pkg}::default_{ver.replace('.', '_')}"
            pid = str(uuid.uuid5(uuid.NAMESPACE_URL, urn))
            defaults[pkg] = f"{urn}::{pid}"
            resources.append(
                {
                    "urn": urn,
                    "custom": True,
                    "id": pid,
                    "type": f"pulumi:providers:{pkg}",
                    "inputs": {"version": ver},
                    "outputs": {"version": ver},
                }
            )

    for res in run.resources:
        doc: dict[str, Any] = {"urn": res.urn, "custom": res.custom}
        if res.custom:
            doc["id"] = res.id
        doc["type"] = res.type
        if res.custom:
            doc["inputs"] = _sealed(res.inputs, known, seal)
            doc["outputs"] = _outputs(res, known, seal)
        doc["parent"] = res.parent or stack_urn
        # The engine omits false flags (omitempty); readers must treat a missing flag as false.
        flags = {"protect": res.protect, "retainOnDelete": res.retain_on_delete, "external": res.external}
        doc.update({f: True for f, on in flags.items() if on})
        if res.dependencies:
            doc["dependencies"] = list(res.dependencies)
        # The engine gives a read StackReference the builtin package's default provider too (source_eval.go).
        provider = res.provider or (
            defaults.get(res.type.split(":", 1)[0], "")
            if res.custom and not res.type.startswith("pulumi:providers:")
            else ""
        )
        if provider:
            doc["provider"] = provider
        if res.additional_secret_outputs:
            doc["additionalSecretOutputs"] = list(res.additional_secret_outputs)
        if res.ignore_changes:
            doc["ignoreChanges"] = list(res.ignore_changes)
        resources.append(doc)

    plugins = [
        {"name": pkg, "path": "", "type": "resource", "version": _version(dist)}
        for pkg, dist in PLUGIN_PACKAGES.items()
    ]
    return {
        "version": 3,
        "deployment": {
            "manifest": {
                "time": stamp,
                # The engine's magic is a digest of its version: a sanity check, not a signature.
                "magic": hashlib.sha256(engine.encode()).hexdigest(),
                "version": engine,
                "plugins": plugins,
            },
            "secrets_providers": {
                "type": "offline",
                "state": {
                    "note": (
                        "written by tools.offline.stack_export from a mock run: ciphertexts are keyed one-way digests"
                    )
                },
            },
            "resources": resources,
        },
    }


def working_tree_commit(project: Path = PROJECT_DIR) -> str:
    """HEAD of the checkout, '+dirty' when it has uncommitted changes; '' outside git."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)  # noqa: S603,S607
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "HEAD")
    if not head:
        return ""
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack", default="dev")
    ap.add_argument("--tenants", default="", help="tenants file (default: the stack's orca-platform:tenantsFile)")
    ap.add_argument("--out", default="", help="file to write, '-' for stdout (default: build/synth/<stack>/...)")
    args = ap.parse_args(argv)

    overrides = {"orca-platform:tenantsFile": args.tenants} if args.tenants else None
    try:
        config = stack_config(args.stack, PROJECT_DIR, overrides)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The program records the commit it was run from (stack output sourceCommit), as `pulumi up` in CI does.
    if not (os.environ.get("ORCA_SOURCE_COMMIT") or os.environ.get("GITHUB_SHA")):
        os.environ["ORCA_SOURCE_COMMIT"] = working_tree_commit()
    try:
        run = run_program(args.stack, config)
    except Exception as exc:  # noqa: BLE001 - the program's RunError carries the user-facing message
        print(f"error: {str(exc).split('RunError: ', 1)[-1]}", file=sys.stderr)
        return 2
    text = json.dumps(build_export(run), indent=4, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "synth" / args.stack / "stack-export.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"{args.stack}: stack export of {len(run.resources)} resources -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
