"""S3 access for results: list, read, write, delete, presign. The only module that imports boto3.

Any S3 works (AWS, MinIO, OTC, rclone): the endpoint and region come from our settings, the
credentials only the boto3 way (environment, profile, instance or pod role), so they never sit in
our configuration and never appear in a message or a log. Signatures are always SigV4: SigV2
presigned URLs are refused by several servers (rclone among them) and deprecated on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from pygeoapi_argo.errors import StorageError

MAX_PRESIGN_TTL = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer than a week


@dataclass(frozen=True)
class S3Url:
    """``s3://bucket/key``: how results are named everywhere in the plugin (keys, never signed URLs)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Url:
        """Split an ``s3://bucket[/key]`` URL; anything else is a ``ValueError`` naming the URL."""
        scheme, sep, rest = url.partition("://")
        bucket, _, key = rest.partition("/")
        if not sep or scheme.lower() != "s3" or not bucket:
            raise ValueError(f"not an s3://bucket/key URL: {url!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Storage:
    """One S3 endpoint. Builds its boto3 client on first use (no network, no credential lookup at
    construction: pygeoapi builds managers while generating OpenAPI) and shares it between threads
    (boto3 clients are thread-safe once built; building them is not)."""

    def __init__(self, endpoint_url: str | None = None, region: str | None = None, *,
                 presign_ttl: int = 3600, addressing_style: str = "path", profile: str | None = None,
                 connect_timeout: float = 5, read_timeout: float = 30, max_attempts: int = 3) -> None:
        if not 1 <= presign_ttl <= MAX_PRESIGN_TTL:
            raise ValueError(f"presign_ttl must be 1..{MAX_PRESIGN_TTL} seconds, got {presign_ttl}")
        if addressing_style not in ("path", "virtual", "auto"):
            raise ValueError(f"addressing_style must be path, virtual or auto, got {addressing_style!r}")
        self.endpoint_url = endpoint_url
        self.region = region
        self.presign_ttl = presign_ttl
        self.profile = profile
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
                    self._client = session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
        return self._client

    def list(self, prefix_url: str) -> Iterator[str]:
        """URLs of all objects under a prefix, sorted by key (eodash reads several TIFFs as bands in
        that order). Pages through any number of keys; a missing prefix is simply empty."""
        prefix = S3Url.parse(prefix_url)
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.key)
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("list", prefix, exc) from None
        return (str(S3Url(prefix.bucket, key)) for key in sorted(keys))

    def read(self, url: str) -> bytes:
        location = _object(url)
        try:
            return self.client.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("read", location, exc) from None

    def write(self, url: str, data: bytes, content_type: str) -> None:
        location = _object(url)
        try:
            self.client.put_object(Bucket=location.bucket, Key=location.key, Body=data,
                                   ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("write", location, exc) from None

    def delete(self, url: str) -> None:
        """Remove one object (deleting a missing object succeeds, as in S3)."""
        location = _object(url)
        try:
            self.client.delete_object(Bucket=location.bucket, Key=location.key)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("delete", location, exc) from None

    def presign(self, url: str, ttl: int | None = None) -> str:
        """A GET URL anyone can fetch for ``ttl`` seconds. Signed locally (no network), so it is
        cheap enough to do on every results read; the URL carries a signature, so never log it."""
        location = _object(url)
        ttl = self.presign_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_PRESIGN_TTL:
            raise ValueError(f"ttl must be 1..{MAX_PRESIGN_TTL} seconds, got {ttl}")
        try:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=ttl)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("sign", location, exc) from None


def _object(url: str) -> S3Url:
    location = S3Url.parse(url)
    if not location.key or location.key.endswith("/"):
        raise ValueError(f"not an object URL (no key): {url!r}")
    return location


def _storage_error(action: str, location: S3Url, exc: Exception) -> StorageError:
    """Name what failed and where, with S3's error code; botocore's own text may quote the
    request, so it is left out, and no credential ever reaches the message."""
    if isinstance(exc, NoCredentialsError):
        reason = "no S3 credentials found (environment, profile or role)"
    elif isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        reason = f"{error.get('Code') or 'error'} (HTTP {status})"
    else:
        reason = type(exc).__name__
    return StorageError(f"S3 {action} of {location} failed: {reason}")
