"""Strict schema validation of rendered Kubernetes objects for the cluster's Kubernetes version.

Built-in kinds are validated by kubernetes-validate against the OpenAPI schema of exactly the cluster's minor version,
in its strict form (an unknown field is an error). The custom resources and pseudo-kinds the program renders have no
schema there: each is either validated against a small schema written here from the project's documentation, or
listed in SKIPPED with the reason. A kind in neither place is an error, so nothing passes unseen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

DEFS = "https://kubernetes.io/api/_definitions.json#/$defs/"  # the $id of kubernetes-validate's shared definitions
OBJECT_META = {"$ref": DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
CIDR_OR_IP = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$"


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _crd(api_version: str, kind: str, fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return _object(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": OBJECT_META, **fields},
        ("apiVersion", "kind", "metadata", *required),
    )


_STRINGS = {"type": "array", "items": {"type": "string"}}
_ANY_OBJECT = {"type": "object"}

# F5 NGINX Ingress Controller Policy (k8s.nginx.org/v1, docs "Policy resource"): accessControl, which the program
# uses, is checked in full; the other policy types only as objects, so a new one must be added here on purpose.
NGINX_POLICY = _crd(
    "k8s.nginx.org/v1",
    "Policy",
    {
        "spec": _object(
            {
                "ingressClassName": {"type": "string"},
                "accessControl": {
                    "type": "object",
                    "properties": {
                        "allow": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": CIDR_OR_IP}},
                        "deny": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": CIDR_OR_IP}},
                    },
                    "additionalProperties": False,
                    # The controller rejects a policy with both lists or neither.
                    "oneOf": [{"required": ["allow"]}, {"required": ["deny"]}],
                },
                **dict.fromkeys(
                    ("rateLimit", "jwt", "basicAuth", "apiKey", "ingressMTLS", "egressMTLS", "oidc", "waf"), _ANY_OBJECT
                ),
            }
        )
    },
    ("spec",),
)

# CSI external-snapshotter CRDs (snapshot.storage.k8s.io/v1), which AKS installs with its snapshot controller.
VOLUME_SNAPSHOT_CLASS = _crd(
    "snapshot.storage.k8s.io/v1",
    "VolumeSnapshotClass",
    {
        "driver": {"type": "string", "minLength": 1},
        "deletionPolicy": {"enum": ["Delete", "Retain"]},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    ("driver", "deletionPolicy"),
)
VOLUME_SNAPSHOT = _crd(
    "snapshot.storage.k8s.io/v1",
    "VolumeSnapshot",
    {
        "spec": _object(
            {
                "source": {
                    **_object(
                        {
                            "persistentVolumeClaimName": {"type": "string"},
                            "volumeSnapshotContentName": {"type": "string"},
                        }
                    ),
                    "oneOf": [
                        {"required": ["persistentVolumeClaimName"]},
                        {"required": ["volumeSnapshotContentName"]},
                    ],
                },
                "volumeSnapshotClassName": {"type": "string"},
            },
            ("source",),
        )
    },
    ("spec",),
)

# Pulumi's helm.sh/v3 Release is no Kubernetes object: its inputs are the resource's arguments (pulumi-kubernetes
# ReleaseArgs, plus the SDK's `compat` marker). The chart's values are checked by the chart at deploy time.
HELM_RELEASE = _object(
    {
        "chart": {"type": "string", "minLength": 1},
        "version": {"type": "string"},
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 53},
        "namespace": {"type": "string"},
        "values": {"type": "object"},
        "valueYamlFiles": {"type": "array"},
        "repositoryOpts": _object(
            {k: {"type": "string"} for k in ("caFile", "certFile", "keyFile", "password", "repo", "username")}
        ),
        "compat": {"const": "true"},
        "description": {"type": "string"},
        "keyring": {"type": "string"},
        "manifest": {"type": "object"},
        "postrender": {"type": "string"},
        "resourceNames": {"type": "object"},
        "maxHistory": {"type": "integer", "minimum": 0},
        "timeout": {"type": "integer", "minimum": 1},
        **{
            k: {"type": "boolean"}
            for k in (
                "allowNullValues",
                "atomic",
                "cleanupOnFail",
                "createNamespace",
                "dependencyUpdate",
                "devel",
                "disableCRDHooks",
                "disableOpenapiValidation",
                "disableWebhooks",
                "forceUpdate",
                "lint",
                "recreatePods",
                "renderSubchartNotes",
                "replace",
                "resetValues",
                "reuseValues",
                "skipAwait",
                "skipCrds",
                "takeOwnership",
                "verify",
                "waitForJobs",
            )
        },
    },
    ("chart",),
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("k8s.nginx.org/v1", "Policy"): NGINX_POLICY,
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): VOLUME_SNAPSHOT_CLASS,
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshot"): VOLUME_SNAPSHOT,
    ("helm.sh/v3", "Release"): HELM_RELEASE,
}

# API groups deliberately not validated, with the reason. Cilium's CRDs are large, versioned with the Cilium that AKS
# runs, and not shipped in any validator; the isolation check refuses them anyway until it models them.
SKIPPED: dict[str, str] = {
    "cilium.io": (
        "no offline schema for AKS's managed Cilium; tools/checks/isolation.py reads (or refuses) its policies"
    ),
}


@dataclass(frozen=True)
class Outcome:
    status: str  # "valid", "invalid", "skipped"
    detail: str = ""


def type_token_kind(type_token: str) -> tuple[str, str]:
    """apiVersion and kind from a Kubernetes provider type token, e.g. kubernetes:core/v1:Service -> (v1, Service)."""
    _, api, kind = type_token.split(":", 2)
    return (api.removeprefix("core/"), kind)


def supported_minor(version: str) -> str:
    """The cluster's minor version if kubernetes-validate ships its schema; never a silent fallback to another."""
    minor = str(kv_utils.major_minor(version.removeprefix("v")))
    shipped = {str(kv_utils.major_minor(v)) for v in kv_utils.all_versions()}
    if minor not in shipped:
        raise ValueError(
            f"kubernetes-validate {kubernetes_validate.__version__} ships no schema for Kubernetes {minor} "
            f"(it has {', '.join(sorted(shipped, key=lambda v: tuple(int(x) for x in v.split('.'))))})"
        )
    return minor


@cache
def _registry(minor: str) -> Registry[Any]:
    folder = next(
        d
        for d in resources.files("kubernetes_validate").joinpath("kubernetes-json-schema").iterdir()
        if re.fullmatch(rf"v{re.escape(minor)}\.[0-9]+-local-strict", d.name)
    )
    definitions = json.loads(folder.joinpath("_definitions.json").read_text(encoding="utf-8"))
    return Resource.from_contents(definitions) @ Registry()


def _path(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top)"


def validate(doc: Mapping[str, Any], type_token: str, version: str) -> Outcome:
    """Validate one rendered object; the type token names the kind even where the object itself does not."""
    api_version, kind = type_token_kind(type_token)
    minor = supported_minor(version)
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group in SKIPPED:
        return Outcome("skipped", SKIPPED[group])
    schema = SCHEMAS.get((api_version, kind))
    if schema is not None:
        return _validate_custom(doc, schema, minor)
    if (doc.get("apiVersion"), doc.get("kind")) != (api_version, kind):
        return Outcome("invalid", f"apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')} != {type_token}")
    return _validate_builtin(doc, api_version, kind, minor)


def _validate_custom(doc: Mapping[str, Any], schema: dict[str, Any], minor: str) -> Outcome:
    validator = jsonschema.Draft202012Validator(schema, registry=_registry(minor))
    errors = sorted(validator.iter_errors(dict(doc)), key=lambda e: list(e.absolute_path))
    if errors:
        return Outcome("invalid", "; ".join(f"{_path(e)}: {e.message}" for e in errors[:5]))
    return Outcome("valid", "project schema")


def _validate_builtin(doc: Mapping[str, Any], api_version: str, kind: str, minor: str) -> Outcome:
    try:
        kubernetes_validate.validate(dict(doc), minor, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return Outcome("invalid", f"{'.'.join(str(p) for p in exc.path) or '(top)'}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError:
        return Outcome("invalid", f"no schema for {api_version} {kind} in Kubernetes {minor} and none written here")
    return Outcome("valid", f"Kubernetes {minor} strict")
