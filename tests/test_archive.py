"""Issue 6: archiving audit evidence to S3 under Object Lock, against moto's S3 server over real HTTP."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.audit_support import FIXTURES
from tools.audit import report as audit
from tools.audit.archive import ArchiveError, Item, archive, parse_s3_url, retain_until

NOW = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
CLEAN = FIXTURES / "minimal-clean.json"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in a thread on a free loopback port: boto3 talks HTTP to it as to AWS."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


def new_bucket(s3: Any, lock: bool = True) -> str:
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def audit_with_archive(tmp_path: Path, s3_endpoint: str, url: str, *extra: str, export: Path = CLEAN) -> int:
    return audit.main(
        [
            "--export",
            str(export),
            "--out",
            str(tmp_path / "r"),
            "--archive",
            url,
            "--s3-endpoint-url",
            s3_endpoint,
            *extra,
        ],
        now=NOW,
    )


def test_archive_uploads_locks_and_verifies(tmp_path: Path, s3_endpoint: str, s3: Any) -> None:
    bucket = new_bucket(s3)
    assert audit_with_archive(tmp_path, s3_endpoint, f"s3://{bucket}/audits", "--retention-years", "7") == 0

    prefix = "audits/prod/20261125T090000Z"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        f"{prefix}/{n}" for n in ("audit-report.json", "audit-report.md", "manifest.json", "stack-export.json")
    ]

    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    local = json.loads((tmp_path / "r" / "archive-manifest.json").read_text())
    assert local["files"] == manifest["files"]
    assert manifest["retention"] == {"mode": "COMPLIANCE", "until": "2033-11-25T09:00:00Z"}
    # The archived export is byte for byte the file audited, and each digest matches what S3 holds.
    exported = next(f for f in manifest["files"] if f["key"].endswith("stack-export.json"))
    assert exported["sha256"] == hashlib.sha256(CLEAN.read_bytes()).hexdigest()
    for f in manifest["files"]:
        body = s3.get_object(Bucket=bucket, Key=f["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == f["sha256"]
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/audit-report.json")["Body"].read())
    assert report["export"]["sha256"] == exported["sha256"]

    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"].year == 2033
        # Compliance mode: not even the owner can delete the locked version.
        with pytest.raises(s3.exceptions.ClientError):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])


def test_missing_bucket_is_refused(tmp_path: Path, s3_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_with_archive(tmp_path, s3_endpoint, "s3://no-such-bucket-here/a") == 2
    err = capsys.readouterr().err
    assert "bucket no-such-bucket-here does not exist" in err and "nothing was written" in err
    assert "Traceback" not in err


def test_bucket_without_object_lock_is_refused(
    tmp_path: Path, s3_endpoint: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = new_bucket(s3, lock=False)
    assert audit_with_archive(tmp_path, s3_endpoint, f"s3://{bucket}/a") == 2
    assert "has no Object Lock" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_existing_key_is_never_replaced(
    tmp_path: Path, s3_endpoint: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = new_bucket(s3)
    url = f"s3://{bucket}/a"
    assert audit_with_archive(tmp_path, s3_endpoint, url) == 0
    before = {o["Key"]: o["ETag"] for o in s3.list_object_versions(Bucket=bucket)["Versions"]}
    # Same stack, same second: the keys exist already.
    assert audit_with_archive(tmp_path, s3_endpoint, url) == 2
    assert "already exists" in capsys.readouterr().err
    after = {o["Key"]: o["ETag"] for o in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert after == before


def test_show_secrets_export_is_never_archived(tmp_path: Path, s3_endpoint: str, s3: Any) -> None:
    bucket = new_bucket(s3)
    assert audit_with_archive(tmp_path, s3_endpoint, f"s3://{bucket}/a", export=FIXTURES / "show-secrets.json") == 2
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_violations_are_archived_too(tmp_path: Path, s3_endpoint: str, s3: Any) -> None:
    """Evidence of a failed audit is evidence all the same: archived, and the exit status still says 1."""
    bucket = new_bucket(s3)
    assert audit_with_archive(tmp_path, s3_endpoint, f"s3://{bucket}/a", export=FIXTURES / "public-service.json") == 1
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 4


def test_unreachable_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_with_archive(tmp_path, "http://127.0.0.1:9", "s3://b/a") == 2
    err = capsys.readouterr().err
    assert "archive failed" in err and "Traceback" not in err


class TamperingClient:
    """Stores what it is given, but hands back something else: the read-back must notice."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_object(self, **kw: Any) -> Any:
        got = self.real.get_object(**kw)
        body = got["Body"].read() + b" "
        return {**got, "Body": _Body(body)}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_read_back_detects_a_changed_copy(s3: Any) -> None:
    bucket = new_bucket(s3)
    with pytest.raises(ArchiveError, match="SHA-256 mismatch") as err:
        archive(
            [Item("a.json", b"{}", "application/json")],
            f"s3://{bucket}/p",
            stack="dev",
            now=NOW,
            client=TamperingClient(s3),
        )
    assert "Already written and locked" in str(err.value)


def test_locations_and_dates() -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    for bad in ("https://bucket/a", "s3:///a"):
        with pytest.raises(ArchiveError):
            parse_s3_url(bad)
    assert retain_until(datetime(2028, 2, 29, tzinfo=UTC), 5) == datetime(2033, 2, 28, tzinfo=UTC)
    with pytest.raises(ArchiveError):
        retain_until(NOW, 0)


@pytest.mark.parametrize(
    ("url", "years"), [("https://bucket/x", "5"), ("s3://bucket/x", "0"), ("s3://bucket/x", "101")]
)
def test_bad_location_or_retention_is_refused_before_anything(
    url: str, years: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    status = audit.main(["--export", str(CLEAN), "--out", str(out), "--archive", url, "--retention-years", years])
    assert status == 2 and not out.exists()
    assert "archive refused" in capsys.readouterr().err
