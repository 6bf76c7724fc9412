"""STAC Items of jobs: geometry and time rules (plain data), core-schema validity (pystac's bundled
schemas, offline), and registration into a static catalog on ``rclone serve s3`` and into a real
STAC API (stac-fastapi-pgstac on PostgreSQL + PostGIS)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import requests
from jsonschema import Draft7Validator
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource
from shapely.geometry import shape

from pygeoapi_argo import stac
from pygeoapi_argo.jobs import JobRecord
from pygeoapi_argo.manager import ArgoManager

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)


def item_validator() -> Draft7Validator:
    """The STAC 1.1 core Item schema with its GeoJSON references, all from pystac's package data."""
    cache = get_local_schema_cache()
    registry = Registry().with_resources([(uri, Resource.from_contents(s)) for uri, s in cache.items()])
    schema = next(s for uri, s in cache.items() if uri.endswith("v1.1.0/item-spec/json-schema/item.json"))
    return Draft7Validator(schema, registry=registry)


def job(job_id: str = "job-1", inputs: dict | None = None, results: dict | None = None,
        process_id: str = "buffer") -> JobRecord:
    return JobRecord(job_id=job_id, process_id=process_id, workflow_name=f"pygeoapi-job-{job_id}",
                     status="successful", created=T0, updated=T1, started=T0, finished=T1,
                     inputs=inputs or {}, results=results or {}, message="Workflow succeeded")


# --- geometry and time -------------------------------------------------------------------------


@pytest.mark.parametrize(("inputs", "kind", "bbox"), [
    ({"bbox": {"bbox": [10, 40, 12, 42]}}, "Polygon", [10, 40, 12, 42]),
    ({"aoi": [10, 40, 0, 12, 42, 100]}, "Polygon", [10, 40, 12, 42]),
    ({"bbox": [5, 6, 5, 6]}, "Point", [5, 6, 5, 6]),
    ({"area": json.dumps({"type": "Point", "coordinates": [1, 2]})}, "Point", [1, 2, 1, 2]),
    ({"lon": "16.3", "lat": 48.2}, "Point", [16.3, 48.2, 16.3, 48.2]),
    ({"feature": {"type": "Feature", "properties": {},
                  "geometry": {"type": "LineString", "coordinates": [[0, 0], [2, 1]]}}},
     "LineString", [0, 0, 2, 1]),
    ({"features": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 5]]]}},
    ]}}, "MultiPolygon", [0, 0, 6, 6]),
    ({"region": {"value": {"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]}}},
     "Polygon", [0, 0, 3, 3]),
])
def test_area_from_inputs(inputs, kind, bbox):
    geometry, found = stac.area(inputs)
    assert geometry.geom_type == kind and geometry.is_valid
    assert found == pytest.approx(bbox)


def test_a_bbox_across_the_antimeridian_is_split_and_keeps_west_greater_than_east():
    geometry, bbox = stac.area({"bbox": [170, -10, -170, 10]})
    assert geometry.geom_type == "MultiPolygon" and len(geometry.geoms) == 2
    assert bbox == [170, -10, -170, 10]
    assert geometry.area == pytest.approx(20 * 20)


def test_a_polygon_across_the_antimeridian_is_split_there():
    polygon = {"type": "Polygon", "coordinates": [[[175, 0], [-175, 0], [-175, 5], [175, 5], [175, 0]]]}
    geometry, bbox = stac.area({"geometry": polygon})
    assert geometry.geom_type == "MultiPolygon"
    assert geometry.area == pytest.approx(10 * 5)  # the short way round, not 350 degrees wide
    assert sorted(round(g.bounds[0]) for g in geometry.geoms) == [-180, 175]
    assert bbox == pytest.approx([175, 0, -175, 5])


def test_an_invalid_polygon_is_repaired():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    assert not shape(bowtie).is_valid
    geometry, bbox = stac.area({"aoi": bowtie})
    assert geometry.is_valid and geometry.geom_type == "MultiPolygon" and geometry.area == pytest.approx(2)
    assert bbox == [0, 0, 2, 2]


def test_no_area_input_gives_no_geometry():
    assert stac.area({"distance": 5, "name": "x"}) is None
    assert stac.area({"bbox": "not a box"}) is None


@pytest.mark.parametrize(("inputs", "names", "start", "end"), [
    ({"datetime": "2024-01-01T12:00:00Z"}, (), "2024-01-01T12:00:00+00:00", "2024-01-01T12:00:00+00:00"),
    ({"datetime": "2024-01-01/2024-01-31"}, (), "2024-01-01T00:00:00+00:00", "2024-01-31T23:59:59+00:00"),
    ({"start_date": "2024-02-01", "end_date": "2024-02-03T06:00:00"}, (),
     "2024-02-01T00:00:00+00:00", "2024-02-03T06:00:00+00:00"),
    ({"when": ["2024-03-01", ".."]}, ("when",), "2024-03-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
])
def test_times_from_date_inputs(inputs, names, start, end):
    found = stac.times(inputs, names)
    assert [t.isoformat() for t in found] == [start, end]


def test_no_date_inputs_give_no_times():
    assert stac.times({"distance": 3}) == (None, None)


# --- Items -------------------------------------------------------------------------------------


def raster_job() -> JobRecord:
    return job("raster-1", inputs={"bbox": [10, 40, 12, 42], "datetime": "2024-01-01/2024-01-31",
                                   "api_token": "***"},
               results={"bands": {"urls": ["s3://results/r/b1.tif", "s3://results/r/b2.tif"],
                                  "mimetype": "image/tiff"},
                        "preview": {"urls": ["s3://results/r/preview.png"], "mimetype": "image/png"},
                        "mean": {"value": 3.5, "mediaType": "application/json"}})


def vector_job() -> JobRecord:
    return job("vector-1", inputs={"geometry": {"type": "Point", "coordinates": [16.37, 48.21]},
                                   "distance": 100},
               results={"result": {"urls": ["s3://results/v/buffer.geojson"],
                                   "mimetype": "application/geo+json"}})


@pytest.mark.parametrize("record", [raster_job(), vector_job()], ids=["raster", "vector"])
def test_items_validate_against_the_core_schema(record):
    settings = stac_settings()
    item = stac.build_item(record, settings, "http://example.org/jobs/" + record.job_id)
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    errors = sorted(e.message for e in item_validator().iter_errors(document))
    assert errors == []
    assert document["id"] == record.job_id and document["collection"] == "results"
    assert document["properties"]["pygeoapi:process_id"] == record.process_id
    assert {"rel": "via", "href": f"http://example.org/jobs/{record.job_id}", "type": "application/json",
            "title": "OGC API - Processes job"} in document["links"]


def test_item_assets_times_and_masked_inputs():
    item = stac.build_item(raster_job(), stac_settings(), None)
    assert list(item.assets) == ["bands_1", "bands_2", "preview"]  # one per file, band order kept
    assert item.assets["bands_2"].href == "s3://results/r/b2.tif"
    assert item.assets["bands_1"].media_type == "image/tiff" and item.assets["bands_1"].roles == ["data"]
    assert item.assets["preview"].roles == ["overview"]
    assert item.datetime is None
    assert item.common_metadata.start_datetime == datetime(2024, 1, 1, tzinfo=UTC)
    assert item.properties["pygeoapi:inputs"]["api_token"] == "***"
    assert not [link for link in item.links if link.rel == "via"]


def test_without_date_inputs_the_item_spans_the_job():
    item = stac.build_item(vector_job(), stac_settings(), None)
    assert item.common_metadata.start_datetime == T0 and item.common_metadata.end_datetime == T1
    assert item.geometry == {"type": "Point", "coordinates": [16.37, 48.21]}


def stac_settings(**options):
    from pygeoapi_argo.settings import Problems, StacSettings

    problems = Problems("test")
    settings = StacSettings.from_config(problems, {"api": "http://127.0.0.1:9", "collection": "results",
                                                   **options})
    problems.raise_if_any()
    return settings


# --- registration ------------------------------------------------------------------------------


def manager_for(tmp_path, s3, monkeypatch, stac_conf: dict) -> ArgoManager:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    manager = ArgoManager({
        "name": "pygeoapi_argo.ArgoManager", "connection": f"sqlite:///{tmp_path / 'jobs.db'}",
        "argo": {"server": "http://127.0.0.1:9", "namespace": "argo"},
        "storage": {"endpoint_url": s3.endpoint_url, "presign_ttl": 600},
        "processes": {"buffer": {"type": "process", "processor": {
            "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": "buffer", "stac": stac_conf}}},
    })
    manager.base_url = "http://pygeoapi.example"
    return manager


def test_static_catalog_two_jobs_finishing_together_both_land(tmp_path, s3, monkeypatch):
    catalog = f"s3://results/stac-{tmp_path.name}/catalog.json"
    manager = manager_for(tmp_path, s3, monkeypatch, {"catalog": catalog, "collection": "buffers"})
    records = [job(f"job-{n}", inputs={"bbox": [n, n, n + 1, n + 1]}) for n in range(6)]
    for record in records:
        manager.store.add(record)
    done: list[JobRecord] = []
    threads = [threading.Thread(target=lambda r=r: done.append(stac.register(manager, r))) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.stac_item for r in done) == sorted(
        f"s3://results/stac-{tmp_path.name}/buffers/{r.job_id}/{r.job_id}.json" for r in records)
    base = s3.root / "results" / f"stac-{tmp_path.name}"
    root = json.loads((base / "catalog.json").read_text())
    assert [link["href"] for link in root["links"] if link["rel"] == "child"] == ["./buffers/collection.json"]
    collection = json.loads((base / "buffers" / "collection.json").read_text())
    assert sorted(link["href"] for link in collection["links"] if link["rel"] == "item") == sorted(
        f"./{r.job_id}/{r.job_id}.json" for r in records)
    assert collection["extent"]["spatial"]["bbox"] == [[0, 0, 6, 6]]
    item = json.loads((base / "buffers" / "job-3" / "job-3.json").read_text())
    assert item_validator().is_valid(item)
    assert {link["rel"]: link["href"] for link in item["links"]}["root"] == "../../catalog.json"
    assert stac.register(manager, manager.store.get("job-3")).stac_item == done[0].stac_item.rsplit(
        "/", 3)[0] + "/buffers/job-3/job-3.json"  # registered once: nothing more to do


def test_stac_api_register_search_and_outage(tmp_path, s3, monkeypatch, stac_api):
    manager = manager_for(tmp_path, s3, monkeypatch, {"api": stac_api.url, "collection": "jobs-api",
                                                      "retry_after": 0, "timeout": 5})
    raster, vector = raster_job(), vector_job()
    for record in (raster, vector):
        manager.store.add(record)
        registered = stac.register(manager, record).stac_item
        assert registered == f"{stac_api.url}/collections/jobs-api/items/{record.job_id}"
    found = requests.get(f"{stac_api.url}/search", params={"bbox": "9,39,13,43", "collections": "jobs-api"},
                         timeout=10).json()
    assert [f["id"] for f in found["features"]] == ["raster-1"]
    found = requests.get(f"{stac_api.url}/search", params={"bbox": "16,48,17,49", "collections": "jobs-api"},
                         timeout=10).json()
    assert [f["id"] for f in found["features"]] == ["vector-1"]
    # registering again (a retry after a lost answer) updates the one Item
    manager.store.update("raster-1", stac_item=None)
    assert stac.register(manager, manager.store.get("raster-1")).stac_item is not None
    items = requests.get(f"{stac_api.url}/collections/jobs-api/items", timeout=10).json()["features"]
    assert sorted(f["id"] for f in items) == ["raster-1", "vector-1"]

    late = job("late-1", inputs={"bbox": [1, 1, 2, 2]})
    manager.store.add(late)
    stac_api.stop()
    try:
        record = stac.register(manager, late)
        assert record.status == "successful" and record.stac_item is None
        assert "STAC registration failed, retried later" in record.message and record.stac_error
    finally:
        stac_api.start()
    assert stac.register_pending(manager) == 1
    record = manager.store.get("late-1")
    assert record.stac_item.endswith("/items/late-1") and record.stac_error is None
    assert record.message == "Workflow succeeded"
    assert requests.get(record.stac_item, timeout=10).json()["bbox"] == [1, 1, 2, 2]


def test_a_catalog_document_edited_by_hand_is_a_registration_failure_not_a_crash(tmp_path, s3, monkeypatch):
    catalog = f"s3://results/bad-{tmp_path.name}/catalog.json"
    manager = manager_for(tmp_path, s3, monkeypatch, {"catalog": catalog, "collection": "c"})
    s3.client().put_object(Bucket="results", Key=f"bad-{tmp_path.name}/c/collection.json", Body=b"<html>")
    record = job("hand-1", inputs={"bbox": [1, 1, 2, 2]})
    manager.store.add(record)
    record = stac.register(manager, record)
    assert record.status == "successful" and record.stac_item is None
    assert "is not a STAC document we can update (JSONDecodeError" in record.stac_error
    assert record.message.startswith("Workflow succeeded (STAC registration failed, retried later: ")


def test_register_pending_tries_a_failing_destination_once_per_round(tmp_path, s3, monkeypatch):
    manager = manager_for(tmp_path, s3, monkeypatch, {"api": "http://127.0.0.1:9", "retry_after": 0})
    for n in range(3):
        manager.store.add(job(f"down-{n}", inputs={"bbox": [n, n, n + 1, n + 1]}))
    assert stac.register_pending(manager) == 0
    tried = [r.job_id for r in (manager.store.get(f"down-{n}") for n in range(3)) if r.stac_error]
    assert len(tried) == 1 and "STAC API unreachable" in manager.store.get(tried[0]).stac_error


def test_an_item_the_api_refuses_does_not_hold_up_the_others(tmp_path, s3, monkeypatch, stac_api):
    """pgstac refuses an Item without geometry (a job without an area input) with a 400: that job
    keeps its error and goes to the back of the queue; the round goes on to the next job."""
    manager = manager_for(tmp_path, s3, monkeypatch, {"api": stac_api.url, "collection": "refusals",
                                                      "retry_after": 0})
    manager.store.add(job("no-area", inputs={"distance": 5}))
    manager.store.add(job("with-area", inputs={"bbox": [3, 3, 4, 4]}))
    manager.store.update("with-area", updated=T1.replace(minute=30))  # tried later than "no-area"
    assert stac.register_pending(manager) == 1
    refused = manager.store.get("no-area")
    assert refused.stac_item is None and "STAC API answered 400" in refused.stac_error
    assert manager.store.get("with-area").stac_item.endswith("/collections/refusals/items/with-area")
    # the refused job was tried last, so it now comes after any other job still pending
    assert [r.job_id for r in manager.store.stac_pending(["buffer"])] == ["no-area"]
