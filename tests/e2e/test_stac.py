"""STAC Items of jobs, end to end (issue 4): pygeoapi (gunicorn) → the Argo emulator → the vector
(``buffer``) and raster (``raster``) sample processes → on success an Item registered in a real STAC
API (stac-fastapi-pgstac on PostgreSQL + PostGIS, the ``stac_api`` fixture) or in a static catalog
on ``rclone serve s3``, read back here with pystac.

The sample processes keep their ids and register into the API; ``buffer-catalog`` and
``raster-catalog`` run the same templates and register into ``s3://results/catalog.json``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pystac
import pytest
import requests
from conftest import Emulator, Pygeoapi, S3Server, StacApi
from ogc_schemas import assert_valid
from pystac.validation import validate_dict

JSON = {"Accept": "application/json"}
FINAL = {"successful", "failed", "dismissed"}
API_COLLECTION = "e2e-jobs"
CATALOG = "s3://results/catalog.json"
FAILED_NOTE = "STAC registration failed, retried later"
BUFFER = {"geometry": {"type": "Point", "coordinates": [16.37, 48.21]}, "distance": 0.1}
RASTER = {"bbox": {"bbox": [16.2, 48.1, 16.6, 48.3]}, "size": 64}
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


# --- helpers -----------------------------------------------------------------------------------


def status(server: Pygeoapi, job_id: str) -> dict[str, Any]:
    resp = requests.get(f"{server.url}/jobs/{job_id}", headers=JSON, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def execute(server: Pygeoapi, process_id: str, inputs: dict) -> str:
    resp = requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": inputs},
                         headers=JSON, timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.json()["jobID"]


def wait_final(server: Pygeoapi, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (info := status(server, job_id))["status"] not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {info['status']} after {timeout} s"
        time.sleep(0.3)
    assert info["status"] == "successful", info
    assert_valid("statusInfo.yaml", info)
    return info


def run_together(server: Pygeoapi, runs: list[tuple[str, dict]]) -> dict[str, dict[str, Any]]:
    """Submit all runs at once and poll them in parallel (each poll may meet another worker):
    final status by job id, in submission order."""
    job_ids = [execute(server, process_id, inputs) for process_id, inputs in runs]
    with ThreadPoolExecutor(len(job_ids)) as pool:
        return dict(zip(job_ids, pool.map(lambda j: wait_final(server, j), job_ids), strict=True))


def item_link(info: dict[str, Any]) -> dict[str, Any] | None:
    links = [link for link in info["links"] if link.get("rel") == "related"
             and link.get("type") == "application/geo+json"]
    assert len(links) <= 1, links
    return links[0] if links else None


def layers_only(server: Pygeoapi, job_id: str, output: str, media_type: str) -> None:
    """The results document holds the process's one output as an eodash layer, nothing else."""
    resp = requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=30)
    assert resp.status_code == 200, resp.text
    document = resp.json()
    assert_valid("results.yaml", document)
    assert list(document) == [output]
    assert set(document[output]) == {"href", "type", "urls", "mimetype"}
    assert document[output]["mimetype"] == media_type


def api_item(url: str) -> dict[str, Any]:
    """An Item as the STAC API answers it. pgstac's hydration drops ``"datetime": null`` (a known bug,
    stac-utils/pgstac#425; we send it, ``tests/test_stac.py`` checks that): put back before checking."""
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.text
    item = resp.json()
    if "start_datetime" in item["properties"]:
        item["properties"].setdefault("datetime", None)
    return item


def check_item(item: dict[str, Any], server: Pygeoapi, job_id: str, process_id: str, inputs: dict) -> None:
    validate_dict(item)  # the core STAC schemas bundled with pystac: offline
    assert item["id"] == job_id
    props = item["properties"]
    assert props["pygeoapi:process_id"] == process_id and props["pygeoapi:job_id"] == job_id
    assert props["pygeoapi:inputs"] == inputs
    # no date input: the Item spans the job's run (Argo's whole seconds: one instant if it took < 1 s)
    if props["datetime"] is None:
        assert props["start_datetime"] < props["end_datetime"]
    else:
        assert "start_datetime" not in props and "end_datetime" not in props
    via = [link["href"] for link in item["links"] if link["rel"] == "via"]
    assert via == [f"{server.url}/jobs/{job_id}"]
    [(key, asset)] = item["assets"].items()
    assert asset["href"].startswith(f"s3://artifacts/pygeoapi-job-{job_id}/output/")
    assert asset["roles"] == ["data"]
    if process_id.startswith("buffer"):
        assert key == "buffer" and asset["type"] == "application/geo+json"
        assert item["geometry"] == {"type": "Point", "coordinates": [16.37, 48.21]}  # a point stays one
        assert item["bbox"] == [16.37, 48.21, 16.37, 48.21]
    else:
        assert key == "raster" and asset["type"] == COG
        assert item["geometry"]["type"] == "Polygon"
        assert item["bbox"] == [16.2, 48.1, 16.6, 48.3]


def search(api: str, bbox: str) -> list[str]:
    resp = requests.get(f"{api}/search", params={"bbox": bbox, "collections": API_COLLECTION, "limit": 100},
                        timeout=30)
    assert resp.status_code == 200, resp.text
    return [feature["id"] for feature in resp.json()["features"]]


class S3StacIO(pystac.StacIO):
    """pystac reading ``s3://`` hrefs with boto3: the static catalog as a STAC client sees it."""

    def __init__(self, s3: S3Server) -> None:
        super().__init__()
        self.client = s3.client()

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        url = urlsplit(str(source))
        assert url.scheme == "s3", source
        return self.client.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read().decode()

    def write_text(self, dest: Any, txt: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the test only reads the catalog")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(start_pygeoapi, emulator: Emulator, stac_api: StacApi) -> Pygeoapi:
    to_api = {"stac": {"api": stac_api.url, "collection": API_COLLECTION, "retry_after": 1, "timeout": 5}}

    def to_catalog(template: str, collection: str) -> dict:
        return {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                                 "workflow_template": template,
                                                 "stac": {"catalog": CATALOG, "collection": collection}}}

    # the reconciler retries failed registrations on each poll: every 2 s here
    return start_pygeoapi(emulator, manager={"reconciler": {"poll_seconds": 2}},
                          processes={"buffer": to_api, "raster": to_api},
                          resources={"buffer-catalog": to_catalog("buffer", "e2e-buffers"),
                                     "raster-catalog": to_catalog("raster", "e2e-rasters")})


# --- tests -------------------------------------------------------------------------------------


def test_vector_and_raster_items_in_the_stac_api(server, stac_api):
    finals = run_together(server, [("buffer", BUFFER), ("raster", RASTER)])
    (vector, vector_info), (raster, raster_info) = finals.items()
    for job_id, info, process_id, inputs in ((vector, vector_info, "buffer", BUFFER),
                                             (raster, raster_info, "raster", RASTER)):
        link = item_link(info)
        assert link is not None, info
        assert link["href"] == f"{stac_api.url}/collections/{API_COLLECTION}/items/{job_id}"
        assert FAILED_NOTE not in (info.get("message") or "")
        check_item(api_item(link["href"]), server, job_id, process_id, inputs)
    layers_only(server, vector, "buffer", "application/geo+json")
    layers_only(server, raster, "raster", COG)
    # found by a bbox search: both over Vienna, neither elsewhere
    assert {vector, raster} <= set(search(stac_api.url, "16.0,48.0,17.0,49.0"))
    assert {vector, raster}.isdisjoint(search(stac_api.url, "0,0,1,1"))
    # a box inside the raster's footprint that misses the buffer's point finds the raster alone
    found = set(search(stac_api.url, "16.5,48.25,16.55,48.29"))
    assert raster in found and vector not in found


def test_items_land_in_the_static_catalog_when_jobs_finish_together(server, s3):
    runs = [("buffer-catalog", BUFFER)] * 3 + [("raster-catalog", RASTER)] * 2
    finals = run_together(server, runs)
    by_process = {job_id: process_id for job_id, (process_id, _) in zip(finals, runs, strict=True)}
    for job_id, info in finals.items():
        collection = "e2e-buffers" if by_process[job_id] == "buffer-catalog" else "e2e-rasters"
        link = item_link(info)
        assert link is not None, info
        # a presigned URL of the Item's object in the catalog
        assert urlsplit(link["href"]).path == f"/results/{collection}/{job_id}/{job_id}.json"
        resp = requests.get(link["href"], timeout=30)
        assert resp.status_code == 200, resp.text
        inputs = BUFFER if collection == "e2e-buffers" else RASTER
        check_item(resp.json(), server, job_id, by_process[job_id], inputs)
    layers_only(server, next(iter(finals)), "buffer", "application/geo+json")

    catalog = pystac.Catalog.from_file(CATALOG, stac_io=S3StacIO(s3))
    collections = {child.id: child for child in catalog.get_children()}
    assert set(collections) == {"e2e-buffers", "e2e-rasters"}
    for collection_id, process_id in (("e2e-buffers", "buffer-catalog"), ("e2e-rasters", "raster-catalog")):
        collection = collections[collection_id]
        assert isinstance(collection, pystac.Collection)
        items = list(collection.get_items())
        # every job landed once, though they finished together
        assert sorted(item.id for item in items) == sorted(j for j, p in by_process.items()
                                                           if p == process_id)
        for item in items:
            assert item.get_root().id == catalog.id and item.collection_id == collection_id
            validate_dict(item.to_dict(include_self_link=False, transform_hrefs=False))
        vienna = [16.37, 48.21, 16.37, 48.21] if collection_id == "e2e-buffers" else [16.2, 48.1, 16.6, 48.3]
        assert collection.extent.spatial.bboxes == [vienna]
    catalog.validate_all()


def test_a_stac_api_outage_does_not_fail_the_job_and_the_item_lands_later(server, stac_api):
    stac_api.stop()
    try:
        job_id = execute(server, "buffer", BUFFER)
        info = wait_final(server, job_id)
        assert FAILED_NOTE in info["message"], info
        assert item_link(info) is None
        time.sleep(1.5)  # past retry_after: the next read tries again, and fails again
        info = status(server, job_id)
        assert info["status"] == "successful" and FAILED_NOTE in info["message"]
        assert item_link(info) is None
        resp = requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=30)
        assert resp.status_code == 200 and list(resp.json()) == ["buffer"]
    finally:
        stac_api.start()
    # nobody reads the job now: the reconciler registers the Item once the API is back
    item_url = f"{stac_api.url}/collections/{API_COLLECTION}/items/{job_id}"
    deadline = time.monotonic() + 60
    while requests.get(item_url, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"Item of {job_id} not registered after the API came back"
        time.sleep(0.5)
    check_item(api_item(item_url), server, job_id, "buffer", BUFFER)
    assert job_id in search(stac_api.url, "16.0,48.0,17.0,49.0")
    info = status(server, job_id)
    assert info["status"] == "successful" and FAILED_NOTE not in (info.get("message") or "")
    assert item_link(info)["href"] == item_url
