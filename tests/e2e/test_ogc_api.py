"""OGC API - Processes end to end over real HTTP, as a client sees it (issue 3, part A).

pygeoapi served by gunicorn → ArgoManager → hera → the Argo emulator → steps run as local processes →
``rclone serve s3``; results fetched through their presigned URLs with plain ``requests``. Every OGC
document is validated against the official 1.0 schemas. Argo's side (workflow names, labels, the
request annotation, "nothing submitted") is checked through the emulator's own HTTP API.

Most tests use the session ``pygeoapi``; ``tuned`` is a second server on its own emulator with a
small body limit and one extra test-only template, ``e2e-slow`` (sleeps, then answers two outputs),
which the samples cannot provide: a job that stays running, a sync wait that times out, and an
``outputs`` selection that really drops something.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
import yaml
from conftest import TEMPLATES, Emulator
from ogc_schemas import assert_valid

JSON = {"Accept": "application/json"}
POLL_SECONDS = 0.2
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
SAMPLES = {"echo", "buffer", "raster", "two-step", "fail"}
FINAL = {"successful", "failed", "dismissed"}
STATUS_ORDER = {"accepted": 0, "running": 1, "successful": 2, "failed": 2, "dismissed": 2}

# What each sample job is run with, and what its results must hold.
SAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    "echo": {"message": "Hello Argo", "case": "upper"},
    "buffer": {"geometry": {"type": "Point", "coordinates": [16.37, 48.21]}, "distance": 0.1},
    "raster": {"bbox": {"bbox": [16.2, 48.1, 16.6, 48.3]}, "size": 128},
    "two-step": {"text": "the quick brown fox jumps over the lazy dog"},
    "fail": {"reason": "no good input"},
}

SLOW_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {
        "name": "e2e-slow",
        "annotations": {
            "workflows.argoproj.io/title": "Slow greeting",
            "pygeoapi.io/outputs": json.dumps({"greeting": "text/plain", "length": "application/json"}),
            "pygeoapi.io/job-control-options": "sync-execute,async-execute",
            "pygeoapi.io/inputs": "delay:\n  schema: {type: number, minimum: 0, maximum: 30}\n",
        },
    },
    "spec": {
        "entrypoint": "execute",
        "templates": [{
            "name": "execute",
            "inputs": {"parameters": [{"name": "name"}, {"name": "delay", "default": "0"}]},
            "outputs": {"parameters": [
                {"name": "results", "globalName": "results", "valueFrom": {"path": "/tmp/results.json"}}]},
            "script": {
                "image": "python:3.12-slim",
                "command": ["python"],
                "env": [{"name": "NAME", "value": "{{inputs.parameters.name}}"},
                        {"name": "DELAY", "value": "{{inputs.parameters.delay}}"}],
                "source": (
                    "import json, os, time\n"
                    "time.sleep(float(os.environ['DELAY']))\n"
                    "greeting = 'hello ' + os.environ['NAME']\n"
                    "with open('/tmp/results.json', 'w') as out:\n"
                    "    json.dump({'greeting': {'value': greeting, 'mediaType': 'text/plain'},\n"
                    "               'length': {'value': len(greeting),\n"
                    "                          'mediaType': 'application/json'}}, out)\n"
                ),
            },
        }],
    },
}


# --- helpers -----------------------------------------------------------------------------------


def get_json(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params or None, headers=JSON, timeout=30)


def execute(base: str, process_id: str, body: Any, *, prefer: str | None = None, path: str = "execution",
            headers: dict[str, str] | None = None) -> requests.Response:
    sent = {**JSON, "Content-Type": "application/json", **(headers or {})}
    if prefer:
        sent["Prefer"] = prefer
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(f"{base}/processes/{process_id}/{path}", data=data, headers=sent, timeout=60)


def created_job(response: requests.Response, base: str) -> tuple[str, str]:
    """``(job id, Location)`` of a 201 answer, checked: absolute Location, valid statusInfo."""
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location.startswith(f"{base}/jobs/"), location
    info = response.json()
    assert_valid("statusInfo.yaml", info)
    assert info["jobID"] == location.rsplit("/", 1)[1]
    assert info["status"] in ("accepted", "running")
    return info["jobID"], location


def timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Polled:
    final: dict[str, Any]
    seen: list[dict[str, Any]]


def poll(location: str, timeout: float = 45.0) -> Polled:
    """Poll a job's status to its end, checking every answer on the way."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while True:
        response = get_json(location)
        assert response.status_code == 200, response.text
        info = response.json()
        assert_valid("statusInfo.yaml", info)
        seen.append(info)
        if info["status"] in FINAL:
            return Polled(info, seen)
        assert time.monotonic() < deadline, f"job still {info['status']} after {timeout}s: {info}"
        time.sleep(POLL_SECONDS)


def check_progression(polled: Polled) -> None:
    """Status only moves forward, progress never goes back."""
    ranks = [STATUS_ORDER[s["status"]] for s in polled.seen]
    assert ranks == sorted(ranks), [s["status"] for s in polled.seen]
    progress = [s.get("progress", 0) for s in polled.seen]
    assert progress == sorted(progress), progress


def results_document(location: str) -> dict[str, Any]:
    response = get_json(f"{location}/results")
    assert response.status_code == 200, response.text
    document = response.json()
    assert_valid("results.yaml", document)
    return document


def fetch(url: str) -> bytes:
    """A presigned URL fetched as any client would: no credentials, no S3 library."""
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, f"{response.status_code} for {url}: {response.text[:300]}"
    return response.content


def file_output(document: dict[str, Any], name: str, mimetype: str) -> list[bytes]:
    """The bytes of every URL of one file output, after checking its OGC link and eodash members."""
    output = document[name]
    assert output["type"] == output["mimetype"] == mimetype
    assert output["urls"] and output["href"] == output["urls"][0]
    for url in output["urls"]:
        assert "X-Amz-Signature=" in url, url
    return [fetch(url) for url in output["urls"]]


def tampered(url: str) -> str:
    """The same presigned URL with one hex digit of its signature changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    return urlunsplit(parts._replace(query=urlencode(query)))


def workflows(emulator: Emulator, process_id: str) -> list[dict[str, Any]]:
    """The emulator's workflows of one process, by the label the manager sets."""
    response = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}",
                            params={"listOptions.labelSelector": f"pygeoapi.io/process-id={process_id}"},
                            headers=emulator.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json().get("items") or []


def workflow(emulator: Emulator, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                            headers=emulator.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def assert_ogc_exception(response: requests.Response, status: int, *mentions: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert_valid("exception.yaml", body)
    assert body["type"] and body["code"], body
    for text in mentions:
        assert text in body["description"], body
    return body


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class SampleJob:
    process_id: str
    job_id: str
    location: str
    polled: Polled


@pytest.fixture(scope="module")
def sample_jobs(pygeoapi) -> dict[str, SampleJob]:
    """Every sample executed async at once (so they overlap in Argo), each polled to its end."""
    started = {}
    for process_id, inputs in SAMPLE_INPUTS.items():
        response = execute(pygeoapi.url, process_id, {"inputs": inputs}, prefer="respond-async")
        assert response.headers.get("Preference-Applied") == "respond-async"
        started[process_id] = created_job(response, pygeoapi.url)
    return {pid: SampleJob(pid, job_id, location, poll(location))
            for pid, (job_id, location) in started.items()}


@dataclass
class Tuned:
    url: str
    emulator: Emulator


@pytest.fixture(scope="module")
def tuned(start_emulator, start_pygeoapi, tmp_path_factory) -> Tuned:
    """A second pygeoapi on its own emulator: 2 KiB body limit, ``e2e-slow`` with a 1 s sync wait."""
    folder = tmp_path_factory.mktemp("templates")
    for path in TEMPLATES.glob("*.yaml"):
        shutil.copy(path, folder)
    (folder / "e2e-slow.yaml").write_text(yaml.safe_dump(SLOW_TEMPLATE))
    emulator = start_emulator(templates=folder)
    slow = {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                             "workflow_template": "e2e-slow", "sync_timeout": 1}}
    server = start_pygeoapi(emulator, manager={"max_request_bytes": 2048}, resources={"e2e-slow": slow})
    return Tuned(server.url, emulator)


# --- describe ----------------------------------------------------------------------------------


def test_process_list_holds_the_five_samples(pygeoapi):
    response = get_json(f"{pygeoapi.url}/processes")
    assert response.status_code == 200
    document = response.json()
    assert_valid("processList.yaml", document)
    summaries = {p["id"]: p for p in document["processes"]}
    assert set(summaries) == SAMPLES
    for summary in summaries.values():
        assert_valid("processSummary.yaml", summary)
    assert summaries["buffer"]["title"] == "Buffer a geometry"


@pytest.mark.parametrize("process_id", sorted(SAMPLES))
def test_each_description_is_valid_and_from_the_template(pygeoapi, process_id):
    response = get_json(f"{pygeoapi.url}/processes/{process_id}")
    assert response.status_code == 200
    description = response.json()
    assert_valid("process.yaml", description)
    assert description["id"] == process_id
    assert description["version"] == "1.0.0"
    assert "sample" in description["keywords"]
    assert description["description"]
    for spec in description["inputs"].values():
        assert spec["maxOccurs"] == 1
    expected_control = {"echo": ["sync-execute", "async-execute"]}.get(process_id, ["async-execute"])
    assert description["jobControlOptions"] == expected_control
    assert any(link["rel"].endswith("/execute") for link in description["links"])


def test_typed_inputs_appear_as_the_templates_declare(pygeoapi):
    described = {pid: get_json(f"{pygeoapi.url}/processes/{pid}").json() for pid in SAMPLES}

    buffer = described["buffer"]["inputs"]
    assert buffer["geometry"]["schema"]["type"] == "object"
    assert buffer["geometry"]["schema"]["format"] == "geojson-geometry"
    assert "Polygon" in buffer["geometry"]["schema"]["properties"]["type"]["enum"]
    assert buffer["geometry"]["minOccurs"] == 1
    assert buffer["distance"]["schema"] == {"type": "number", "minimum": 0, "default": 0.01}
    assert buffer["distance"]["minOccurs"] == 0
    assert buffer["distance"]["title"] == "Buffer distance"
    assert described["buffer"]["outputs"]["buffer"]["schema"]["contentMediaType"] == "application/geo+json"

    raster = described["raster"]["inputs"]
    assert raster["bbox"]["schema"]["format"] == "ogc-bbox"
    assert raster["bbox"]["schema"]["required"] == ["bbox"]
    assert raster["bbox"]["minOccurs"] == 1
    assert raster["size"]["schema"] == {"type": "integer", "minimum": 64, "maximum": 4096, "default": 256}
    assert raster["size"]["minOccurs"] == 0
    assert described["raster"]["outputs"]["raster"]["schema"]["contentMediaType"] == COG_TYPE

    echo = described["echo"]["inputs"]
    assert echo["case"]["schema"] == {"type": "string", "enum": ["keep", "upper", "lower"], "default": "keep"}
    assert echo["case"]["minOccurs"] == 0
    assert echo["case"]["description"] == "How to change the letter case of the message."
    assert echo["message"]["schema"] == {"type": "string", "maxLength": 1000}
    assert echo["message"]["minOccurs"] == 1

    assert described["two-step"]["inputs"]["text"]["schema"] == {"type": "string", "minLength": 1,
                                                                  "maxLength": 10000}
    assert described["fail"]["inputs"]["reason"]["minOccurs"] == 0
    assert described["fail"]["inputs"]["reason"]["schema"]["default"] == "this process rejects every input"


def test_unknown_process_is_404(pygeoapi):
    assert_ogc_exception(get_json(f"{pygeoapi.url}/processes/no-such-process"), 404)
    assert_ogc_exception(execute(pygeoapi.url, "no-such-process", {"inputs": {}}), 404)


# --- execute async -----------------------------------------------------------------------------


@pytest.mark.parametrize("process_id", ["echo", "buffer", "raster", "two-step"])
def test_async_job_succeeds_with_full_progress(sample_jobs, process_id):
    job = sample_jobs[process_id]
    final = job.polled.final
    assert final["status"] == "successful", final
    assert final["progress"] == 100
    assert final["processID"] == process_id
    check_progression(job.polled)
    started, finished = timestamp(final["started"]), timestamp(final["finished"])
    assert started <= finished <= timestamp(final["updated"])
    assert final["job_start_datetime"] == final["started"]
    assert final["job_end_datetime"] == final["finished"]


def test_async_failing_job_reports_its_reason(sample_jobs):
    job = sample_jobs["fail"]
    final = job.polled.final
    assert final["status"] == "failed", final
    assert "ERROR: input rejected: no good input" in final["message"]
    assert "exit code 3" in final["message"]
    check_progression(job.polled)
    assert "finished" in final


def test_results_of_a_failed_job_answer_the_reason(sample_jobs):
    response = get_json(f"{sample_jobs['fail'].location}/results")
    assert_ogc_exception(response, 400, "no good input")


def test_results_first_read_after_an_unseen_failure_answer_the_reason(pygeoapi, emulator):
    """The client asks for results before any status poll has seen the failure."""
    job_id, location = created_job(
        execute(pygeoapi.url, "fail", {"inputs": {"reason": "unseen"}}, prefer="respond-async"), pygeoapi.url)
    deadline = time.monotonic() + 45
    while workflow(emulator, job_id).get("status", {}).get("phase") not in ("Failed", "Error"):
        assert time.monotonic() < deadline, "the workflow did not fail"
        time.sleep(POLL_SECONDS)
    assert_ogc_exception(get_json(f"{location}/results"), 400, "unseen")


def test_echo_results_document_holds_the_value(sample_jobs):
    document = results_document(sample_jobs["echo"].location)
    assert document == {"message": {"value": "HELLO ARGO", "mediaType": "text/plain"}}


def test_buffer_results_are_a_presigned_geojson(sample_jobs):
    from shapely.geometry import Point, shape

    document = results_document(sample_jobs["buffer"].location)
    assert set(document) == {"buffer"}
    [content] = file_output(document, "buffer", "application/geo+json")
    collection = json.loads(content)
    assert collection["type"] == "FeatureCollection"
    [feature] = collection["features"]
    assert feature["properties"]["distance"] == 0.1
    polygon = shape(feature["geometry"])
    assert polygon.geom_type == "Polygon"
    assert polygon.contains(Point(16.37, 48.21))
    assert math.isclose(polygon.area, math.pi * 0.1**2, rel_tol=0.01)
    assert math.isclose(feature["properties"]["area"], polygon.area, rel_tol=1e-9)


def test_raster_results_are_a_presigned_cog(sample_jobs):
    from rasterio.io import MemoryFile

    document = results_document(sample_jobs["raster"].location)
    assert set(document) == {"raster"}
    [content] = file_output(document, "raster", COG_TYPE)
    with MemoryFile(content) as memory, memory.open() as dataset:
        assert (dataset.width, dataset.height, dataset.count) == (128, 128, 1)
        assert dataset.dtypes == ("uint8",)
        assert dataset.crs is not None
        for got, want in zip(dataset.bounds, (16.2, 48.1, 16.6, 48.3), strict=True):
            assert math.isclose(got, want, abs_tol=1e-9)
        assert dataset.block_shapes == [(32, 32)]
        assert dataset.overviews(1), "a COG has internal overviews"
        data = dataset.read(1)
    # the radial gradient: 255 at the corners, 0 around the centre
    assert data[0, 0] == data[-1, -1] == 255
    assert data[63:65, 63:65].max() <= 3


def test_two_step_results_are_the_report(sample_jobs):
    document = results_document(sample_jobs["two-step"].location)
    [content] = file_output(document, "report", "application/json")
    assert json.loads(content) == {"words": 9, "distinct": 8, "longest": "quick"}


@pytest.mark.parametrize("process_id", ["buffer", "raster", "two-step"])
def test_tampered_presigned_url_is_refused_by_s3(sample_jobs, process_id):
    document = results_document(sample_jobs[process_id].location)
    [output] = document.values()
    response = requests.get(tampered(output["href"]), timeout=30)
    assert response.status_code == 403, response.text[:300]
    assert b"SignatureDoesNotMatch" in response.content
    fetch(output["href"])  # the genuine URL still works: only the signature was wrong


@pytest.mark.parametrize("process_id", sorted(SAMPLES))
def test_each_job_is_a_labelled_workflow_with_the_request(sample_jobs, emulator, process_id):
    job = sample_jobs[process_id]
    found = workflow(emulator, job.job_id)
    meta = found["metadata"]
    assert meta["name"] == f"pygeoapi-job-{job.job_id}"
    assert meta["labels"]["pygeoapi.io/job-id"] == job.job_id
    assert meta["labels"]["pygeoapi.io/process-id"] == process_id
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "pygeoapi-argo"
    request = json.loads(meta["annotations"]["pygeoapi.io/request"])
    assert request["inputs"] == SAMPLE_INPUTS[process_id]
    assert found["spec"]["workflowTemplateRef"]["name"] == process_id
    phase = {"fail": "Failed"}.get(process_id, "Succeeded")
    assert found["status"]["phase"] == phase


def test_results_of_a_running_job_are_not_ready(tuned):
    _, location = created_job(
        execute(tuned.url, "e2e-slow", {"inputs": {"name": "slow", "delay": 3}}, prefer="respond-async"),
        tuned.url)
    response = get_json(f"{location}/results")
    body = assert_ogc_exception(response, 404)
    assert body["code"] == "ResultNotReady"
    assert body["type"] == "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"
    assert get_json(location).json()["status"] in ("accepted", "running")
    polled = poll(location)
    assert polled.final["status"] == "successful"
    assert results_document(location)["greeting"] == {"value": "hello slow", "mediaType": "text/plain"}


# --- execute sync ------------------------------------------------------------------------------


def test_sync_raw_answers_the_value_with_its_media_type(pygeoapi):
    body = {"inputs": {"message": "Hello", "case": "upper"}, "response": "raw"}
    response = execute(pygeoapi.url, "echo", body, prefer="wait")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "HELLO"
    assert response.headers.get("Preference-Applied") == "wait"


def test_sync_document_answers_the_results_document(pygeoapi):
    body = {"inputs": {"message": "Hello", "case": "lower"}, "response": "document"}
    response = execute(pygeoapi.url, "echo", body, prefer="wait")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    assert_valid("results.yaml", document)
    assert document == {"message": {"value": "hello", "mediaType": "text/plain"}}


def test_sync_is_what_a_sync_capable_process_does_without_prefer(pygeoapi):
    response = execute(pygeoapi.url, "echo", {"inputs": {"message": "plain"}})
    assert response.status_code == 200, response.text
    assert response.text == "plain"


def test_sync_outputs_selection_filters_the_document(tuned):
    body = {"inputs": {"name": "ann"}, "response": "document", "outputs": {"length": {}}}
    response = execute(tuned.url, "e2e-slow", body, prefer="wait")
    assert response.status_code == 200, response.text
    document = response.json()
    assert_valid("results.yaml", document)
    assert document == {"length": {"value": 9, "mediaType": "application/json"}}

    body["outputs"] = {}
    full = execute(tuned.url, "e2e-slow", body, prefer="wait").json()
    assert set(full) == {"greeting", "length"}


def test_async_outputs_selection_filters_the_results(tuned):
    body = {"inputs": {"name": "bo"}, "outputs": {"greeting": {}}}
    _, location = created_job(execute(tuned.url, "e2e-slow", body, prefer="respond-async"), tuned.url)
    assert poll(location).final["status"] == "successful"
    assert results_document(location) == {"greeting": {"value": "hello bo", "mediaType": "text/plain"}}


def test_sync_wait_longer_than_sync_timeout_answers_201_and_the_job_goes_on(tuned):
    body = {"inputs": {"name": "patient", "delay": 4}, "response": "raw"}
    began = time.monotonic()
    response = execute(tuned.url, "e2e-slow", body, prefer="wait")
    waited = time.monotonic() - began
    _, location = created_job(response, tuned.url)
    assert waited >= 0.9, f"answered after {waited:.2f}s: the sync wait (1 s) was not tried"
    assert get_json(location).json()["status"] in ("accepted", "running")
    polled = poll(location)
    assert polled.final["status"] == "successful"
    assert polled.final["progress"] == 100
    assert results_document(location)["greeting"]["value"] == "hello patient"


# --- job list ----------------------------------------------------------------------------------


def test_job_list_newest_first_with_paging(pygeoapi, sample_jobs):
    response = get_json(f"{pygeoapi.url}/jobs", limit=1000)
    assert response.status_code == 200
    everything = response.json()
    assert_valid("jobList.yaml", everything)
    jobs = everything["jobs"]
    ids = [job["jobID"] for job in jobs]
    assert len(ids) == len(set(ids))
    assert {job.job_id for job in sample_jobs.values()} <= set(ids)
    created = [timestamp(job["created"]) for job in jobs]
    assert created == sorted(created, reverse=True), "not newest first"
    for job in jobs:
        assert job["links"][1]["rel"] == RESULTS_REL

    # walk the pages by their next links: the same jobs, in the same order
    limit, paged, url, pages = 3, [], f"{pygeoapi.url}/jobs?limit=3", 0
    while url:
        page = get_json(url).json()
        assert_valid("jobList.yaml", page)
        assert len(page["jobs"]) <= limit
        paged += [job["jobID"] for job in page["jobs"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
        assert pages <= len(ids) // limit + 2, "next links do not end"
    assert paged == ids

    middle = get_json(f"{pygeoapi.url}/jobs", limit=2, offset=1).json()
    assert [job["jobID"] for job in middle["jobs"]] == ids[1:3]
    assert any(link["rel"] == "prev" for link in middle["links"])


# --- bad input ---------------------------------------------------------------------------------

GEOMETRY = {"type": "Point", "coordinates": [16.37, 48.21]}
LINE_AS_POLYGON = {"type": "Polygon", "coordinates": [[0, 0], [1, 1]]}  # a ring level is missing
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}

BAD_INPUTS = {
    # name: (process, body, words the description must contain)
    "missing required": ("echo", {"inputs": {"case": "upper"}}, ["message"]),
    "wrong type": ("raster", {"inputs": {"bbox": [0, 0, 1, 1], "size": "big"}}, ["size"]),
    "integer out of range": ("raster", {"inputs": {"bbox": [0, 0, 1, 1], "size": 10}}, ["size"]),
    "unknown input": ("echo", {"inputs": {"message": "x", "colour": "red"}}, ["colour"]),
    "enum violation": ("echo", {"inputs": {"message": "x", "case": "title"}}, ["case"]),
    "string too long": ("echo", {"inputs": {"message": "x" * 1001}}, ["message"]),
    "geometry not an object": ("buffer", {"inputs": {"geometry": "POINT (1 2)"}}, ["geometry"]),
    "geometry of unknown type": ("buffer", {"inputs": {"geometry": {"type": "Blob", "coordinates": []}}},
                                 ["geometry"]),
    "malformed GeoJSON": ("buffer", {"inputs": {"geometry": LINE_AS_POLYGON}}, ["geometry"]),
    "self-intersecting polygon": ("buffer", {"inputs": {"geometry": BOWTIE}},
                                  ["geometry", "Self-intersection"]),
    "geometry outside CRS84": ("buffer", {"inputs": {"geometry": {"type": "Point", "coordinates": [200, 0]}}},
                               ["geometry"]),
    "negative distance": ("buffer", {"inputs": {"geometry": GEOMETRY, "distance": -1}}, ["distance"]),
    "bbox of 3 numbers": ("raster", {"inputs": {"bbox": [0, 0, 1]}}, ["bbox"]),
    "bbox of strings": ("raster", {"inputs": {"bbox": ["a", "b", "c", "d"]}}, ["bbox"]),
    "bbox miny above maxy": ("raster", {"inputs": {"bbox": {"bbox": [0, 2, 1, 1]}}}, ["bbox"]),
    "bbox latitude out of range": ("raster", {"inputs": {"bbox": [0, 0, 1, 100]}}, ["bbox"]),
    "bbox in an unknown crs": ("raster", {"inputs": {"bbox": {"bbox": [0, 0, 1, 1], "crs": "EPSG:99999"}}},
                               ["bbox"]),
    "template expression": ("echo", {"inputs": {"message": "a {{workflow.name}} b"}}, ["message", "{{"]),
    "template expression in geometry": (
        "buffer", {"inputs": {"geometry": {"type": "Point", "coordinates": [1, 2], "x": "{{pod.name}}"}}},
        ["geometry"]),
    "secret-looking input": ("echo", {"inputs": {"message": "x", "api_token": "abc"}}, ["api_token"]),
    "inputs not an object": ("echo", {"inputs": ["message"]}, ["inputs"]),
    "unknown output": ("echo", {"inputs": {"message": "x"}, "outputs": {"nope": {}}}, ["nope"]),
    "unknown response": ("echo", {"inputs": {"message": "x"}, "response": "bogus"}, ["response"]),
    "not JSON": ("echo", b"inputs: message", []),
    "JSON but not an object": ("echo", b'[{"inputs": {"message": "x"}}]', []),
    "JSON null": ("echo", b"null", []),
    "not UTF-8": ("echo", '{"inputs": {"message": "caf\u00e9"}}'.encode("latin-1"), []),
}


def newest_job(base: str) -> str | None:
    jobs = get_json(f"{base}/jobs", limit=1).json()["jobs"]
    return jobs[0]["jobID"] if jobs else None


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_400_and_submits_nothing(pygeoapi, emulator, case):
    process_id, body, mentions = BAD_INPUTS[case]
    before = len(workflows(emulator, process_id))
    newest = newest_job(pygeoapi.url)
    response = execute(pygeoapi.url, process_id, body, prefer="respond-async")
    assert_ogc_exception(response, 400, *mentions)
    assert len(workflows(emulator, process_id)) == before, "a workflow was created"
    assert newest_job(pygeoapi.url) == newest, "a job was recorded"


def test_bad_input_on_the_jobs_alias_is_400_too(pygeoapi, emulator):
    before = len(workflows(emulator, "echo"))
    response = execute(pygeoapi.url, "echo", {"inputs": {"case": "upper"}}, path="jobs")
    assert_ogc_exception(response, 400, "message")
    assert len(workflows(emulator, "echo")) == before


def test_body_over_the_configured_size_is_400(tuned):
    before = len(workflows(tuned.emulator, "echo"))
    body = {"inputs": {"message": "x" * 900, "case": "keep"}, "padding": "y" * 2000}
    response = execute(tuned.url, "echo", body, prefer="respond-async")
    assert_ogc_exception(response, 400, "2048 bytes")
    assert len(workflows(tuned.emulator, "echo")) == before
    # just under the limit still runs
    _, location = created_job(execute(tuned.url, "echo", {"inputs": {"message": "x" * 900}},
                                      prefer="respond-async"), tuned.url)
    assert poll(location).final["status"] == "successful"


def test_body_over_one_mebibyte_is_400_by_default(pygeoapi, emulator):
    before = len(workflows(emulator, "echo"))
    body = {"inputs": {"message": "x"}, "padding": "y" * (1024 * 1024)}
    response = execute(pygeoapi.url, "echo", body, prefer="respond-async")
    assert_ogc_exception(response, 400, "1048576 bytes")
    assert len(workflows(emulator, "echo")) == before


# --- eodash ------------------------------------------------------------------------------------

EODASH_ORIGIN = "https://eodash.example.org"
# what the widget's fetch sends: no Prefer, the browser's Origin
EODASH_HEADERS = {"Accept": "application/json, text/plain, */*", "Origin": EODASH_ORIGIN}


def assert_cors(response: requests.Response) -> None:
    allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed in ("*", EODASH_ORIGIN), response.headers
    exposed = response.headers.get("Access-Control-Expose-Headers", "")
    exposed = [name.strip().lower() for name in exposed.split(",")]
    assert "*" in exposed or "location" in exposed, response.headers


def eodash_run(base: str, process_id: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's conversation: POST, follow Location, poll ``status``, fetch ``links[1].href``."""
    response = requests.post(f"{base}/processes/{process_id}/execution", json={"inputs": inputs},
                             headers=EODASH_HEADERS, timeout=60)
    assert response.status_code == 201, response.text
    assert_cors(response)
    location = response.headers["Location"]
    assert location.startswith(("http://", "https://")), location
    deadline = time.monotonic() + 45
    while True:
        status = requests.get(location, headers=EODASH_HEADERS, timeout=30)
        assert status.status_code == 200
        assert_cors(status)
        job = status.json()
        assert_valid("statusInfo.yaml", job)
        timestamp(job["job_start_datetime"])  # the widget sorts its job list by it
        if job["status"] in FINAL:
            break
        assert time.monotonic() < deadline, job
        time.sleep(POLL_SECONDS)
    assert job["status"] == "successful", job
    timestamp(job["job_end_datetime"])
    assert job["links"][1]["rel"] == RESULTS_REL and job["links"][1]["type"] == "application/json"
    results = requests.get(job["links"][1]["href"], headers=EODASH_HEADERS, timeout=30)
    assert results.status_code == 200, results.text
    assert_cors(results)
    document = results.json()
    assert_valid("results.yaml", document)
    for key, output in document.items():
        assert output["urls"] and output["mimetype"], key
    return job, document


def test_eodash_runs_the_vector_process(pygeoapi):
    _, document = eodash_run(pygeoapi.url, "buffer", {"geometry": GEOMETRY, "distance": 0.05})
    assert document["buffer"]["mimetype"] == "application/geo+json"
    collection = json.loads(fetch(document["buffer"]["urls"][0]))
    assert collection["features"][0]["geometry"]["type"] == "Polygon"


def test_eodash_runs_the_raster_process(pygeoapi):
    from rasterio.io import MemoryFile

    _, document = eodash_run(pygeoapi.url, "raster", {"bbox": [10.0, 45.0, 11.0, 46.0], "size": 64})
    assert document["raster"]["mimetype"] == COG_TYPE
    with MemoryFile(fetch(document["raster"]["urls"][0])) as memory, memory.open() as dataset:
        assert (dataset.width, dataset.height) == (64, 64)
        assert math.isclose(dataset.bounds.left, 10.0) and math.isclose(dataset.bounds.top, 46.0)


def test_cors_preflight_allows_the_widget(pygeoapi):
    response = requests.options(f"{pygeoapi.url}/processes/buffer/execution", timeout=30, headers={
        "Origin": EODASH_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code in (200, 204)
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", EODASH_ORIGIN)
    assert "POST" in response.headers.get("Access-Control-Allow-Methods", "")
    assert "content-type" in response.headers.get("Access-Control-Allow-Headers", "").lower()


def test_jobs_alias_executes_like_execution(pygeoapi, emulator):
    response = execute(pygeoapi.url, "echo", {"inputs": {"message": "via alias"}}, path="jobs",
                       prefer="respond-async")
    job_id, location = created_job(response, pygeoapi.url)
    assert poll(location).final["status"] == "successful"
    assert results_document(location) == {"message": {"value": "via alias", "mediaType": "text/plain"}}
    assert workflow(emulator, job_id)["metadata"]["labels"]["pygeoapi.io/process-id"] == "echo"
