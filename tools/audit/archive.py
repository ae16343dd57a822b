"""Tamper-evident archive of audit evidence in S3 under Object Lock (compliance mode).

Each run writes the stack export, the reports and a manifest of their SHA-256 digests under a new time-stamped
prefix. Every object carries its own SHA-256 checksum (S3 verifies it on receipt) and a COMPLIANCE retention
date: until then nobody, the bucket owner included, can overwrite or delete that version. The upload is then read
back and compared digest by digest, so a reported success means the evidence is really there, intact.

Refuses, before writing anything: a bucket that does not exist, a bucket without Object Lock, and a prefix that
already holds one of the keys (evidence is never replaced, even by a newer version of itself).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MANIFEST = "manifest.json"
MAX_RETENTION_YEARS = 100


class ArchiveError(Exception):
    """An archive that could not be made or verified; the message says what and what to do."""


@dataclass(frozen=True)
class Item:
    name: str
    body: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def parse_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> (bucket, 'some/prefix')."""
    if not url.startswith("s3://"):
        raise ArchiveError(f"archive location must look like s3://bucket/prefix, not {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ArchiveError(f"archive location {url!r} names no bucket")
    return bucket, prefix.strip("/")


def retain_until(now: datetime, years: int) -> datetime:
    """The same instant `years` later (29 February becomes 28 February)."""
    if not 1 <= years <= MAX_RETENTION_YEARS:
        raise ArchiveError(f"retention must be 1 to {MAX_RETENTION_YEARS} years, not {years}")
    try:
        return now.replace(year=now.year + years)
    except ValueError:
        return now.replace(year=now.year + years, day=28)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _b64(digest_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(digest_hex)).decode()


def _check_bucket(client: Any, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _status(exc) == 404 or _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            raise ArchiveError(f"bucket {bucket} does not exist") from None
        if _status(exc) == 403:
            raise ArchiveError(f"access to bucket {bucket} is denied to these credentials") from None
        raise
    try:
        config = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) == "ObjectLockConfigurationNotFoundError":
            raise ArchiveError(
                f"bucket {bucket} has no Object Lock: evidence there could be altered or deleted. Use a bucket "
                "created with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket)"
            ) from None
        raise
    if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
        raise ArchiveError(f"bucket {bucket} does not have Object Lock enabled")


def _refuse_existing(client: Any, bucket: str, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                continue
            raise
        raise ArchiveError(f"s3://{bucket}/{key} already exists: archived evidence is never replaced")


def _put(client: Any, bucket: str, key: str, item: Item, until: datetime) -> None:
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=item.body,
            ContentType=item.content_type,
            # S3 recomputes both and refuses the object if either differs from what it received.
            ContentMD5=base64.b64encode(hashlib.md5(item.body).digest()).decode(),  # noqa: S324 - integrity, not security
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64(item.sha256),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=until,
            Metadata={"sha256": item.sha256},
            # Refuse to write over a key that appeared since the check (another run in the same second).
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if _code(exc) == "PreconditionFailed":
            raise ArchiveError(f"s3://{bucket}/{key} appeared during the upload: not replaced") from None
        raise


def _verify(client: Any, bucket: str, key: str, item: Item, until: datetime) -> None:
    got = client.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    if hashlib.sha256(body).hexdigest() != item.sha256:
        raise ArchiveError(f"s3://{bucket}/{key}: the stored copy differs from what was sent (SHA-256 mismatch)")
    head = client.head_object(Bucket=bucket, Key=key)
    if head.get("ObjectLockMode") != "COMPLIANCE":
        raise ArchiveError(f"s3://{bucket}/{key} is not under compliance-mode retention")
    stored_until = head.get("ObjectLockRetainUntilDate")
    if not isinstance(stored_until, datetime) or stored_until.timestamp() + 1 < until.timestamp():
        raise ArchiveError(f"s3://{bucket}/{key} is retained only until {stored_until}, not {until.isoformat()}")


def archive(
    items: Sequence[Item],
    url: str,
    *,
    stack: str,
    retention_years: int = 5,
    now: datetime | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Upload the items and a manifest of their digests under <prefix>/<stack>/<timestamp>/; return the manifest."""
    bucket, prefix = parse_s3_url(url)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    until = retain_until(moment, retention_years)
    base = "/".join(p for p in (prefix, stack or "stack", moment.strftime("%Y%m%dT%H%M%SZ")) if p)
    keys = {item.name: f"{base}/{item.name}" for item in items}
    manifest: dict[str, Any] = {
        "schema": "orca-platform/audit-archive/v1",
        "bucket": bucket,
        "prefix": base,
        "stack": stack,
        "archivedAt": moment.isoformat().replace("+00:00", "Z"),
        "retention": {"mode": "COMPLIANCE", "until": until.isoformat().replace("+00:00", "Z")},
        "files": [{"key": keys[i.name], "sha256": i.sha256, "bytes": len(i.body)} for i in items],
    }
    manifest_item = Item(MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n", "application/json")
    all_items = [*items, manifest_item]
    keys[MANIFEST] = f"{base}/{MANIFEST}"

    s3 = client or boto3.client("s3", endpoint_url=endpoint_url)
    written: list[str] = []
    try:
        _check_bucket(s3, bucket)
        _refuse_existing(s3, bucket, list(keys.values()))
        for item in all_items:
            _put(s3, bucket, keys[item.name], item, until)
            written.append(keys[item.name])
        for item in all_items:
            _verify(s3, bucket, keys[item.name], item, until)
    except ArchiveError as exc:
        raise ArchiveError(_with_written(str(exc), bucket, written)) from None
    except ClientError as exc:
        message = f"S3 refused {exc.operation_name}: {_code(exc)} {exc.response.get('Error', {}).get('Message', '')}"
        raise ArchiveError(_with_written(message.strip(), bucket, written)) from None
    except BotoCoreError as exc:
        raise ArchiveError(_with_written(f"cannot reach S3: {exc}", bucket, written)) from None
    manifest["manifestKey"] = keys[MANIFEST]
    manifest["manifestSha256"] = manifest_item.sha256
    return manifest


def _with_written(message: str, bucket: str, written: list[str]) -> str:
    if not written:
        return message + " (nothing was written)"
    listed = ", ".join(f"s3://{bucket}/{k}" for k in written)
    return f"{message}. Already written and locked, so left as they are: {listed}"
