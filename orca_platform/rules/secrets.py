"""Secrets: encrypted in the state, passed to pods through Secrets, never a well-known default password."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .context import RuleContext
from .credentials import DEFAULT_PASSWORDS, credential_key, decoded_secret_value, default_credentials, plain_credentials
from .kubernetes import each_container
from .registry import Domain, M
from .values import ENCRYPTED, as_list, as_map, as_text, dig, is_secret, is_unknown
from .view import ResourceView

DOMAIN = Domain(
    "Secrets",
    "Credentials: encrypted in the state, passed to pods through Secrets, never a well-known default.",
)
rule = DOMAIN.rule


@rule(
    "secret-not-plaintext",
    "No secret-looking value is stored unencrypted",
    "Pulumi encrypts a value in its state only when it is marked secret. A password, key, token or connection "
    "string left plain is readable by anyone with the state file or an export.",
    M,
    at_preview=False,
    what=(
        "no secret-looking value is stored unencrypted in the state: a property whose name says credential "
        "(`password`, `passwd`, `…_PASS`, `secret`, `token`, `sharedKey`, `accountKey`, `connectionString`, "
        "`kubeconfig`, …; not `secretName`, `secretKeyRef`, `passwordLength`), a value that looks like one (private "
        "key, connection string with a key, URL with a password, SAS signature, JWT, AWS key), an output named in "
        "`additionalSecretOutputs`, or a Kubernetes Secret's `data`/`stringData` not wrapped as a Pulumi secret"
    ),
)
def _secret_plaintext(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    if not v.secrets_marked:
        return
    for part, bag in (("inputs", v.props), ("outputs", v.outputs)):
        # A Secret's data is judged as a whole below, not key by key.
        scanned = {k: x for k, x in bag.items() if not (v.kind == "Secret" and k in ("data", "stringData"))}
        for path in plain_credentials(scanned, ""):
            yield f"{v.display}: {part}.{path} is stored in clear text"
        for key in v.additional_secret_outputs:
            if part == "outputs" and bag.get(key) not in (None, "", [], {}) and not is_secret(bag.get(key)):
                yield f"{v.display}: outputs.{key} is declared secret (additionalSecretOutputs) but stored in clear"
        if v.kind == "Secret":
            for key in ("data", "stringData"):
                value = bag.get(key)
                if isinstance(value, Mapping) and not is_secret(value):
                    plain = [k for k, x in value.items() if not is_secret(x) and x not in (None, "")]
                    if plain:
                        yield f"{v.display}: {part}.{key} holds {', '.join(sorted(plain))} in clear text"


@rule(
    "credential-not-inline",
    "Credentials reach pods through Secrets, not inline",
    "Kubernetes stores Deployments, Jobs and ConfigMaps unencrypted and shows them to anyone who may read them; "
    "a password written there leaks whatever Pulumi does with its own copy.",
    M,
    what=(
        "no container env var with a credential name has a literal `value` (use `valueFrom.secretKeyRef`); no "
        "ConfigMap key names a credential"
    ),
)
def _credential_inline(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for where, c in each_container(v):
        for env in as_list(c.get("env")):
            name = as_text(dig(env, "name"))
            value = dig(env, "value")
            if credential_key(name) and (value is ENCRYPTED or (as_text(value) and not is_unknown(value))):
                yield f"{where} sets {name} inline (use valueFrom.secretKeyRef)"
    if v.kind == "ConfigMap":
        for part in ("data", "binaryData"):
            for key in as_map(v.props.get(part)):
                if credential_key(str(key)):
                    yield f"{v.display} holds {key}, which names a credential"


@rule(
    "no-default-credentials",
    "No well-known default password is used",
    "Public ORCA images ship ormaster/ormaster and orca_password; anyone who has read their Dockerfile knows them.",
    M,
    what=(
        "no credential is a well-known default (`ormaster`, `orca_password`, `postgres`, …), including inside Secrets"
    ),
)
def _nodefault_credentials(v: ResourceView, ctx: RuleContext) -> Iterator[str]:
    for path in default_credentials(v.props, ""):
        yield f"{v.display}: {path} is a well-known default password"
    if v.kind == "Secret":
        for key, value in as_map(v.props.get("data")).items():
            text = decoded_secret_value(value)
            if text is not None and credential_key(str(key)) and text.strip().lower() in DEFAULT_PASSWORDS:
                yield f"{v.display}: data.{key} is a well-known default password"
