"""Artifacts in S3, named and packed as Argo's executor does.

Default repository: ``<prefix>/<keyFormat>/<file>``, the file being ``<artifact name>.tgz`` when the
path is tar+gzipped (Argo's default) or the path's base name with ``archive: {none: {}}``. An
explicit ``s3`` location keeps its bucket, key, region and secret-referenced credentials, but is
always written through the emulator's configured endpoint: the emulator cannot reach the cluster
endpoints such templates name (``s3.amazonaws.com``, an in-cluster MinIO).
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from .executor import PodError


@dataclass(frozen=True)
class Repository:
    bucket: str
    prefix: str
    endpoint: str | None

    @classmethod
    def parse(cls, url: str | None, endpoint: str | None) -> Repository | None:
        if not url:
            return None
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"artifact repository must be s3://bucket[/prefix], not {url!r}")
        return cls(parsed.netloc, parsed.path.strip("/"), endpoint)

    def client(self, access_key: str | None = None, secret_key: str | None = None, region: str | None = None):
        """boto3 against the configured endpoint; credentials from the AWS_* env unless given."""
        kwargs: dict = {
            "endpoint_url": self.endpoint,
            "config": Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        }
        if access_key is not None:
            kwargs.update(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        if region:
            kwargs["region_name"] = region
        elif not os.environ.get("AWS_DEFAULT_REGION") and not os.environ.get("AWS_REGION"):
            kwargs["region_name"] = "us-east-1"
        return boto3.client("s3", **kwargs)


def archived(artifact: dict) -> bool:
    return "none" not in (artifact.get("archive") or {})


def save(
    repo: Repository | None, artifact: dict, source: Path, key_prefix: str, secrets: dict[str, dict[str, str]]
) -> dict:
    """Upload an output artifact; the returned dict is what the node's outputs record."""
    recorded = copy.deepcopy(artifact)
    recorded.pop("from", None)
    explicit = artifact.get("s3")
    if repo is None:
        raise PodError("no artifact repository configured (start the emulator with --artifacts s3://bucket)")
    file_name = (
        f"{artifact['name']}.tgz" if archived(artifact) else os.path.basename(artifact["path"].rstrip("/"))
    )
    if explicit and explicit.get("key"):
        bucket = explicit.get("bucket") or repo.bucket
        key = explicit["key"]
        client = repo.client(*_credentials(explicit, secrets), region=explicit.get("region"))
    else:
        bucket = repo.bucket
        key = "/".join(p for p in (repo.prefix, key_prefix, file_name) if p)
        client = repo.client()
        recorded["s3"] = {"key": key}
    if archived(artifact):
        client.put_object(Bucket=bucket, Key=key, Body=_tgz(source))
    elif source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            client.upload_file(str(path), bucket, f"{key.rstrip('/')}/{path.relative_to(source).as_posix()}")
    else:
        client.upload_file(str(source), bucket, key)
    if explicit and explicit.get("key"):
        recorded["s3"] = copy.deepcopy(explicit)
    return recorded


def save_log(repo: Repository | None, lines: list[str], key_prefix: str) -> dict:
    """``archiveLogs``: the main container's log as ``main.log``, recorded as ``main-logs``."""
    if repo is None:
        raise PodError("archiveLogs needs an artifact repository (start the emulator with --artifacts)")
    key = "/".join(p for p in (repo.prefix, key_prefix, "main.log") if p)
    body = "".join(f"{line}\n" for line in lines).encode()
    repo.client().put_object(Bucket=repo.bucket, Key=key, Body=body)
    return {"name": "main-logs", "s3": {"key": key}}


def load(repo: Repository | None, artifact: dict, dest: Path, secrets: dict[str, dict[str, str]]) -> None:
    """Fetch an input artifact to ``dest`` (a file, or a directory for unpacked trees)."""
    if "raw" in artifact:
        dest.write_text(artifact["raw"].get("data", ""))
        return
    location = artifact.get("s3")
    if not location or not location.get("key"):
        raise PodError(f"input artifact '{artifact.get('name')}' has no location the emulator can read")
    if repo is None:
        raise PodError("no artifact repository configured (start the emulator with --artifacts s3://bucket)")
    explicit = "bucket" in location
    client = (
        repo.client(*_credentials(location, secrets), region=location.get("region"))
        if explicit
        else repo.client()
    )
    body = client.get_object(Bucket=location.get("bucket") or repo.bucket, Key=location["key"])["Body"].read()
    if body[:2] != b"\x1f\x8b":
        dest.write_bytes(body)
        return
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
        entries = list(Path(tmp).iterdir())
        if len(entries) == 1:
            shutil.move(str(entries[0]), dest)
        else:
            shutil.move(tmp, dest)


def _tgz(source: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=source.name)
    return buffer.getvalue()


def _credentials(location: dict, secrets: dict[str, dict[str, str]]) -> tuple[str | None, str | None]:
    """Keys from ``accessKeySecret``/``secretKeySecret``, or the emulator's own when none are named."""
    refs = (location.get("accessKeySecret"), location.get("secretKeySecret"))
    if not any(refs):
        return None, None
    values = []
    for ref in refs:
        values.append(secret_value(secrets, ref or {}, "default"))
    return values[0], values[1]


def secret_value(secrets: dict[str, dict[str, str]], ref: dict, namespace: str) -> str:
    """A ``secretKeyRef``; the messages are the kubelet's, as Argo shows them."""
    name, key = ref.get("name", ""), ref.get("key", "")
    if name not in secrets:
        raise PodError(
            f"Pod failed before main container starts due to CreateContainerConfigError: "
            f'secret "{name}" not found'
        )
    if key not in secrets[name]:
        raise PodError(
            f"Pod failed before main container starts due to CreateContainerConfigError: "
            f"couldn't find key {key} in Secret {namespace}/{name}"
        )
    return secrets[name][key]
