"""Storage against ``rclone serve s3``, which checks SigV4 signatures and presigned-URL expiry."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import S3Server, free_port

from pygeoapi_argo.errors import StorageError
from pygeoapi_argo.storage import S3Url, Storage


@pytest.fixture
def storage(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Storage:
    """Credentials the boto3 way: from the environment, never from our arguments."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return Storage(endpoint_url=s3.endpoint_url, region="us-east-1", presign_ttl=600)


def prefix() -> str:
    return f"s3://results/test-storage/{uuid.uuid4().hex}/"


def test_s3_url_parse() -> None:
    assert S3Url.parse("s3://results/jobs/a/out.tif") == S3Url("results", "jobs/a/out.tif")
    assert S3Url.parse("s3://results") == S3Url("results", "")
    assert str(S3Url("results", "jobs/a b.tif")) == "s3://results/jobs/a b.tif"
    for bad in ("results/out.tif", "http://host/out.tif", "s3://", "s3:///key"):
        with pytest.raises(ValueError, match="s3://bucket/key"):
            S3Url.parse(bad)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="presign_ttl"):
        Storage(presign_ttl=8 * 24 * 3600)
    with pytest.raises(ValueError, match="addressing_style"):
        Storage(addressing_style="sideways")


def test_write_read_and_missing_object(storage: Storage, s3: S3Server) -> None:
    url = prefix() + "band 1.tif"
    storage.write(url, b"II*\x00data", "image/tiff")
    assert storage.read(url) == b"II*\x00data"
    head = s3.client().head_object(Bucket="results", Key=S3Url.parse(url).key)
    assert head["ContentType"] == "image/tiff"
    missing = prefix() + "nothing.tif"
    with pytest.raises(StorageError) as err:
        storage.read(missing)
    assert missing in err.value.message and "NoSuchKey" in err.value.message
    assert s3.secret_key not in err.value.message and s3.access_key not in err.value.message


def test_object_urls_need_a_key(storage: Storage) -> None:
    for bad in ("s3://results", "s3://results/folder/"):
        with pytest.raises(ValueError, match="no key"):
            storage.read(bad)


def test_list_pages_through_more_than_a_thousand_keys_sorted(storage: Storage, s3: S3Server) -> None:
    base = prefix()
    names = [f"k{i:05d}.txt" for i in range(1105)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: storage.write(base + name, b"x", "text/plain"), reversed(names)))
    first = s3.client().list_objects_v2(Bucket="results", Prefix=S3Url.parse(base).key)
    assert first["IsTruncated"] and first["KeyCount"] == 1000  # so one page would not be enough
    assert list(storage.list(base)) == [base + name for name in names]
    assert list(storage.list(base + "k0110")) == [base + f"k{i:05d}.txt" for i in range(1100, 1105)]
    assert list(storage.list(prefix())) == []


def test_presigned_url_is_fetchable_and_tamper_proof(storage: Storage) -> None:
    url = prefix() + "out.geojson"
    storage.write(url, b'{"type": "FeatureCollection", "features": []}', "application/geo+json")
    signed = storage.presign(url)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in signed and "X-Amz-Expires=600" in signed
    answer = requests.get(signed, timeout=10)
    assert answer.status_code == 200 and answer.json()["type"] == "FeatureCollection"

    other = prefix() + "secret.geojson"
    storage.write(other, b"{}", "application/geo+json")
    tampered = signed.replace(S3Url.parse(url).key, S3Url.parse(other).key)
    assert tampered != signed
    assert requests.get(tampered, timeout=10).status_code == 403
    sig_at = signed.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = signed[:sig_at] + ("0" if signed[sig_at] != "0" else "1") + signed[sig_at + 1:]
    assert requests.get(flipped, timeout=10).status_code == 403
    assert requests.get(signed.split("?")[0], timeout=10).status_code in (400, 403)  # unsigned


def test_expired_presigned_url_is_refused(storage: Storage) -> None:
    url = prefix() + "short.txt"
    storage.write(url, b"soon gone", "text/plain")
    signed = storage.presign(url, ttl=2)
    assert "X-Amz-Expires=2&" in signed
    assert requests.get(signed, timeout=10).status_code == 200
    time.sleep(3.5)
    expired = requests.get(signed, timeout=10)
    # AWS answers 403, rclone 400; both with S3's AccessDenied code
    assert expired.status_code in (400, 403) and "<Code>AccessDenied</Code>" in expired.text
    with pytest.raises(ValueError, match="ttl"):
        storage.presign(url, ttl=0)


def test_wrong_credentials_map_to_storage_error(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
    storage = Storage(endpoint_url=s3.endpoint_url, region="us-east-1")
    with pytest.raises(StorageError) as err:
        list(storage.list("s3://results/any/"))
    assert "s3://results/any/" in err.value.message and "HTTP 403" in err.value.message
    assert "wrong-secret-value-123" not in err.value.message
    assert err.value.http_status == 503


def test_no_network_at_construction_and_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-for-nothing")
    storage = Storage(endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1",
                      connect_timeout=1, max_attempts=1)
    assert storage.presign("s3://results/a.tif").startswith(storage.endpoint_url)  # signing is local
    with pytest.raises(StorageError, match=r"read of s3://results/a\.tif failed: EndpointConnectionError"):
        storage.read("s3://results/a.tif")
