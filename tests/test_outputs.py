"""Outputs from an S3 prefix: grouping rules on plain data, and 1,500 files on ``rclone serve s3``
listed completely, grouped, signed and fetched; a URL past its TTL refused."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from pygeoapi_argo import outputs, results
from pygeoapi_argo.errors import ResultsError
from pygeoapi_argo.settings import Problems, ProcessSettings
from pygeoapi_argo.storage import Storage

PREFIX = "s3://results/outputs/wf/"


def rules(*entries: dict) -> tuple:
    problems = Problems("test")
    from pygeoapi_argo.settings import _output_rules

    found = _output_rules(problems, list(entries))
    problems.raise_if_any()
    return found


def test_prefix_url_fills_placeholders_and_ends_with_a_slash():
    assert outputs.prefix_url("s3://b/out/{workflow_name}/{job_id}", workflow_name="pygeoapi-job-1",
                              job_id="1") == "s3://b/out/pygeoapi-job-1/1/"


def test_without_rules_one_output_per_file_typed_by_extension():
    urls = [PREFIX + "b.tif", PREFIX + "a/map.geojson", PREFIX + "data.fgb", PREFIX + "notes.bin"]
    assert outputs.group(urls, PREFIX, (), results.media_type) == {
        "a/map.geojson": {"urls": [PREFIX + "a/map.geojson"], "mimetype": "application/geo+json"},
        "b.tif": {"urls": [PREFIX + "b.tif"], "mimetype": "image/tiff"},
        "data.fgb": {"urls": [PREFIX + "data.fgb"], "mimetype": "application/vnd.flatgeobuf"},
        "notes.bin": {"urls": [PREFIX + "notes.bin"], "mimetype": "application/octet-stream"},
    }


def test_rules_group_in_sorted_order_first_match_wins_unmatched_left_out():
    found = rules({"key": "bands", "regex": r"^band_\d+\.tif$"},
                  {"key": r"day-\g<day>", "regex": r"^(?P<day>\d{4}-\d\d-\d\d)/", "mimetype": "text/csv"},
                  {"key": "all-tifs", "regex": r"\.tif$"})
    urls = [PREFIX + n for n in ("band_10.tif", "band_02.tif", "2024-01-02/x.csv", "2024-01-01/y.txt",
                                 "2024-01-01/a.csv", "other.tif", "log.txt")]
    assert outputs.group(urls, PREFIX, found, results.media_type) == {
        "bands": {"urls": [PREFIX + "band_02.tif", PREFIX + "band_10.tif"], "mimetype": "image/tiff"},
        "day-2024-01-01": {"urls": [PREFIX + "2024-01-01/a.csv", PREFIX + "2024-01-01/y.txt"],
                           "mimetype": "text/csv"},
        "day-2024-01-02": {"urls": [PREFIX + "2024-01-02/x.csv"], "mimetype": "text/csv"},
        "all-tifs": {"urls": [PREFIX + "other.tif"], "mimetype": "image/tiff"},
    }


def test_a_rule_key_naming_a_missing_group_is_a_results_error():
    with pytest.raises(ResultsError, match="does not fit"):
        outputs.group([PREFIX + "a.tif"], PREFIX, rules({"key": r"\2", "regex": r"(a)"}), results.media_type)


@pytest.mark.parametrize(("processor", "problem"), [
    ({"outputs_prefix": "results/out/"}, "outputs_prefix: must be an s3://"),
    ({"outputs_prefix": "s3://b/{user}/"}, "outputs_prefix: must be an s3://"),
    ({"output_rules": [{"key": "a", "regex": "x"}]}, "set outputs_prefix too"),
    ({"outputs_prefix": "s3://b/o/", "output_rules": [{"key": "a", "regex": "("}]},
     "not a regular expression"),
    ({"outputs_prefix": "s3://b/o/", "output_rules": [{"regex": "x"}]}, "key: required"),
    ({"results_format": "csv"}, "must be ogc or eodash-legacy"),
    ({"stac": {"collection": "c"}}, "exactly one of catalog"),
    ({"stac": {"catalog": "s3://b/cat.json"}}, "catalog.json"),
])
def test_bad_settings_are_named(processor, problem):
    from pygeoapi_argo.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=problem):
        ProcessSettings.from_config("p", {"processor": {"workflow_template": "t", **processor}})


def test_collect_with_a_prefix_keeps_manifest_values_and_ignores_artifacts():
    workflow = {"status": {"outputs": {
        "parameters": [{"name": "results", "value": json.dumps(
            {"mean": {"value": 4.2, "mediaType": "application/json"}, "map": {"href": "s3://results/x/map.tif"}})}],
        "artifacts": [{"name": "output", "s3": {"bucket": "artifacts", "key": "k/output"}}]}}}
    listed = [PREFIX + "b.tif", PREFIX + "a.tif"]
    stored = results.collect(workflow, list_urls=lambda prefix: listed if prefix == PREFIX else [],
                             prefix=PREFIX, rules=rules({"key": "bands", "regex": r"\.tif$"}))
    assert stored == {"mean": {"value": 4.2, "mediaType": "application/json"},
                      "bands": {"urls": [PREFIX + "a.tif", PREFIX + "b.tif"], "mimetype": "image/tiff"}}
    document = results.render(stored, lambda url: "signed:" + url)
    assert document["mean"] == {"value": 4.2, "mediaType": "application/json"}  # an OGC qualified value
    assert results.eodash_legacy(document) == {"urls": [f"signed:{PREFIX}a.tif", f"signed:{PREFIX}b.tif"]}


def test_fifteen_hundred_files_listed_grouped_signed_and_fetched(s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    names = [f"tiles/tile_{n:04d}.tif" for n in range(1000)]
    names += [f"vectors/v_{n:03d}.geojson" for n in range(499)]
    names.append("report.csv")
    # through S3, not rclone's folder: rclone caches listings it made earlier in the session
    client = s3.client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: client.put_object(Bucket="results", Key=f"outputs/big/{name}",
                                                     Body=name.encode()), names))
    storage = Storage(endpoint_url=s3.endpoint_url, presign_ttl=600)
    prefix = "s3://results/outputs/big/"
    workflow = {"status": {}}
    stored = results.collect(workflow, list_urls=storage.list, prefix=prefix, rules=rules(
        {"key": "tiles", "regex": r"^tiles/"}, {"key": "vectors", "regex": r"^vectors/"},
        {"key": "report", "regex": r"\.csv$"}))
    assert [len(stored[k]["urls"]) for k in ("tiles", "vectors", "report")] == [1000, 499, 1]
    assert stored["tiles"]["urls"] == sorted(stored["tiles"]["urls"])
    assert stored["vectors"]["mimetype"] == "application/geo+json"
    document = results.render(stored, storage.presign)
    urls = [u for entry in document.values() for u in entry["urls"]]
    assert len(urls) == 1500
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda u: requests.get(u, timeout=10), urls))
    assert all(b.status_code == 200 for b in bodies)
    assert sorted(b.text for b in bodies) == sorted(names)

    # X-Amz-Date has whole seconds, so a 1 s URL lives between 0 and 1 s: sign again until one is
    # fetched inside its life (a loaded machine may miss a few)
    tile = random.choice(stored["tiles"]["urls"])
    for _ in range(20):
        expiring = storage.presign(tile, ttl=1)
        if requests.get(expiring, timeout=10).status_code == 200:
            break
    else:
        raise AssertionError("no 1 s URL was fetched within its life")
    time.sleep(2.5)
    refused = requests.get(expiring, timeout=10)
    # rclone answers 400 AccessDenied ("the request time ... exceeds the maximum allowed"), AWS 403
    assert refused.status_code in (400, 403) and "<Code>AccessDenied</Code>" in refused.text
