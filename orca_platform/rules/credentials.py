"""Does a key or a value look like a credential? The heuristics behind the secret rules.

Names are split into words (camelCase, snake_case, kebab-case); a name is a credential by its last word or its joined
ending, unless its last word says it only points at one (secretName, passwordLength). Values are matched against the
shapes of keys, connection strings, signed URLs and tokens.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .values import as_text, is_secret, is_unknown, unwrap

# Defaults shipped in public ORCA and PostgreSQL images (shared/orca-facts.md): never acceptable as a credential.
DEFAULT_PASSWORDS = frozenset({"ormaster", "orca_password", "orca", "postgres", "password", "changeme", "admin"})


# Last word of a key that names a credential (ORCA_DB_PASS, ormaster-password, webhookToken...).
_CREDENTIAL_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "psk", "kubeconfig", "credential"}
)


# Endings of the joined key that name a credential (sharedKey, AccountKey, connectionString...).
_CREDENTIAL_SUFFIXES = (
    "sharedkey",
    "accountkey",
    "accesskey",
    "privatekey",
    "apikey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "primarykey",
    "secondarykey",
    "masterkey",
    "clientsecret",
    "connectionstring",
    "sastoken",
    "kubeconfig",
    "credentials",
    "password",
    "passwd",
    "pgpass",
)


# A last word that says the key only points at or describes a credential (secretName, secretKeyRef, passwordLength).
_REFERENCE_WORDS = frozenset(
    {
        "name",
        "names",
        "ref",
        "refs",
        "reference",
        "id",
        "ids",
        "type",
        "length",
        "version",
        "path",
        "file",
        "url",
        "uri",
        "enabled",
        "expiry",
        "expiration",
        "policy",
        "count",
        "selector",
        "class",
        "mode",
        "format",
        "hash",
        "seconds",
        "audience",
        "audiences",
    }
)


_VALUE_PATTERNS = (
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    # Connection strings: Key=value; pairs that carry a key or password (not shell variables like $X).
    re.compile(r"(?i)(?:^|;)\s*(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)\s*=\s*[^;$\s]"),
    # Credentials in a URL's user info: scheme://user:password@host
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@$]+:[^/\s@$]+@"),
    re.compile(r"[?&]sig=[A-Za-z0-9%/+=]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"(?m)^\s*(?:client-key-data|token|password):\s*[^\s$]"),
)


def words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def credential_key(key: str) -> bool:
    """Does this property or variable name say it holds a credential?"""
    ws = words(key)
    # existingSecret (a Helm convention) names a Secret object, as secretName does.
    if not ws or ws[-1] in _REFERENCE_WORDS or ws[0] == "existing":
        return False
    joined = "".join(ws)
    return ws[-1] in _CREDENTIAL_WORDS or joined.endswith(_CREDENTIAL_SUFFIXES)


def credential_value(value: str) -> bool:
    """Does this text look like a credential whatever its key (a private key, a connection string with a key...)?"""
    return any(p.search(value) for p in _VALUE_PATTERNS)


def plain_credentials(node: Any, path: str) -> Iterator[str]:
    """Paths of secret-looking values that are not wrapped as Pulumi secrets."""
    if is_secret(node):
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if is_secret(v):
                continue
            if isinstance(v, str) and v and not is_unknown(v) and not v.startswith("$"):
                if credential_key(str(k)):
                    yield f"{sub} (its name says credential)"
                    continue
                if credential_value(v):
                    yield f"{sub} (its value looks like a credential)"
                    continue
            yield from plain_credentials(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, str) and not is_unknown(v) and credential_value(v):
                yield f"{path}[{i}] (its value looks like a credential)"
            else:
                yield from plain_credentials(v, f"{path}[{i}]")


def default_credentials(node: Any, path: str) -> Iterator[str]:
    node = unwrap(node)
    if isinstance(node, Mapping):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            inner = unwrap(v)
            if isinstance(inner, str) and credential_key(str(k)) and inner.strip().lower() in DEFAULT_PASSWORDS:
                yield sub
            else:
                yield from default_credentials(inner, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from default_credentials(v, f"{path}[{i}]")


def decoded_secret_value(value: Any) -> str | None:
    """A Kubernetes Secret's `data` value decoded from base64, when it is text."""
    text = as_text(value)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
