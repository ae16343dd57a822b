"""Make a pulled Helm chart's values schema self-contained, for the operator's own OCI registry.

F5's nginx-ingress chart refers in `values.schema.json` to Kubernetes definitions on raw.githubusercontent.com, and
Helm loads them on every install and upgrade (nginx/kubernetes-ingress#10667, #5374): a runner without GitHub egress
fails, and GitHub's rate limit fails the others now and then. pulumi-kubernetes 4.34's helm.v3.Release has no
`skipSchemaValidation`, and skipping the check would drop it anyway. Instead, on a machine with egress:

    helm pull oci://ghcr.io/nginx/charts/nginx-ingress --version 2.6.3 --untar
    venv/bin/python -m tools.reports.chart_mirror nginx-ingress          # copies the referenced definitions in
    helm package nginx-ingress && helm push nginx-ingress-2.6.3.tgz oci://<registry>.azurecr.io/helm

and point `orca-platform:ingress.chart` at oci://<registry>.azurecr.io/helm/nginx-ingress (docs/deploying.md, "What a
deployment reaches"). The schema keeps every check; only where the definitions come from changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Fetch = Callable[[str], dict[str, Any]]
DEFINITIONS = "definitions"


class MirrorError(ValueError):
    """A reference the tool cannot make local."""


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every object holding a `$ref`, depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _definition_name(fragment: str, ref: str) -> str:
    prefix = f"/{DEFINITIONS}/"
    if not fragment.startswith(prefix) or "/" in fragment[len(prefix) :]:
        raise MirrorError(f"{ref}: only references to #/{DEFINITIONS}/<name> can be made local")
    return fragment[len(prefix) :].replace("~1", "/").replace("~0", "~")


def bundle_schema(schema: dict[str, Any], fetch: Fetch) -> tuple[dict[str, Any], int]:
    """The schema with every remote `$ref` replaced by a local one to a copied definition (and what that one
    refers to); returns it and the number of references rewritten. The input is left unchanged."""
    out: dict[str, Any] = json.loads(json.dumps(schema))
    local: dict[str, Any] = out.setdefault(DEFINITIONS, {})
    documents: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}  # definition name -> the document it was copied from
    rewritten = 0
    pending = list(_refs(out))
    while pending:
        holder = pending.pop()
        ref = holder["$ref"]
        if not ref.startswith(("http://", "https://")):
            continue
        url, _, fragment = ref.partition("#")
        name = _definition_name(fragment, ref)
        if url not in documents:
            documents[url] = fetch(url)
        found = (documents[url].get(DEFINITIONS) or {}).get(name)
        if found is None:
            raise MirrorError(f"{ref}: {url} has no definition {name}")
        if name in local and origin.get(name) != url:
            if local[name] != found:
                raise MirrorError(f"{ref}: the chart's schema already defines a different {name}")
        elif name not in local:
            copied = json.loads(json.dumps(found))
            local[name] = copied
            origin[name] = url
            # The copy's own references are relative to its document: make them point back at that document.
            for inner in _refs(copied):
                if inner["$ref"].startswith("#"):
                    inner["$ref"] = url + inner["$ref"]
                pending.append(inner)
        holder["$ref"] = f"#/{DEFINITIONS}/{fragment[len(DEFINITIONS) + 2 :]}"
        rewritten += 1
    return out, rewritten


def fetch_json(url: str) -> dict[str, Any]:
    if not url.startswith("https://"):
        raise MirrorError(f"{url}: only https references are fetched")
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - https only, checked above
        doc: dict[str, Any] = json.load(response)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chart", type=Path, help="an unpacked chart (helm pull --untar)")
    args = ap.parse_args(argv)
    path = args.chart / "values.schema.json"
    if not path.is_file():
        print(f"error: {path} not found", file=sys.stderr)
        return 2
    try:
        bundled, count = bundle_schema(json.loads(path.read_text(encoding="utf-8")), fetch_json)
    except MirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    path.write_text(json.dumps(bundled, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{path}: {count} remote references made local, {len(bundled[DEFINITIONS])} definitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
