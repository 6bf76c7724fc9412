"""Outputs from an S3 prefix at scale, end to end (issue 4).

pygeoapi (gunicorn) → the Argo emulator → a sandboxed python step that writes 1,500 result files
(and a debug log) under ``/output`` → the S3 output artifact (``archive: none``) uploads them to
``s3://results/many/<workflow name>/`` on ``rclone serve s3`` → the process's ``outputs_prefix``
names that prefix and its ``output_rules`` group the files → ``/jobs/{id}/results`` answers every
file by a presigned URL, fetched here with plain ``requests``.

The test-only template ``e2e-many-files`` is created through the emulator's HTTP API. Its layout
(``layout`` below, shared with the step's source) for ``count`` files: Sentinel-2 style bands
``bands/B01.tif`` … ``B12.tif``, ``B8A.tif`` (key order puts ``B8A`` last, the order eodash reads
bands in), then PNG tiles spread over days ``days/2024-01-DD/tile_NNNN.png``, and ``debug.log``
that no rule selects. Each file holds its own path, so a fetched URL proves which object it named.
"""

from __future__ import annotations

import inspect
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import Emulator, Pygeoapi, S3Server
from ogc_schemas import assert_valid

JSON = {"Accept": "application/json"}
FINAL = {"successful", "failed", "dismissed"}
FILES = 1500
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
DAYS = 20


def layout(count: int) -> list[str]:
    """The result files of a job writing ``count`` of them, bands first (the step runs this too)."""
    bands = [f"bands/{band}.tif" for band in BANDS[:count]]
    tiles = [f"days/2024-01-{1 + n % DAYS:02d}/tile_{n:04d}.png" for n in range(count - len(bands))]
    return bands + tiles


# the step's source carries ``layout`` itself: the sandbox cannot import the tests
LAYOUT_SOURCE = f"BANDS = {BANDS!r}\nDAYS = {DAYS}\n\n" + inspect.getsource(layout)
STEP_SOURCE = LAYOUT_SOURCE + """
import json, os, random

names = layout(int(os.environ["COUNT"]))
random.shuffle(names)  # written in any order: the listing must sort them
for name in names + ["debug.log"]:
    path = os.path.join("/output", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(name)
tiles = sum(name.endswith(".png") for name in names)
with open("/tmp/results.json", "w") as out:
    json.dump({"tiles": {"value": tiles, "mediaType": "application/json"}}, out)
print(f"wrote {len(names)} result files")
"""

TEMPLATE = {
    "metadata": {"name": "e2e-many-files", "annotations": {
        "workflows.argoproj.io/title": "Many files",
        # bbox: unused by the step, the area of the job's STAC Item (bench/outputs_stac.py)
        "pygeoapi.io/inputs": "bbox: bbox\ncount:\n  schema: {type: integer, minimum: 1, maximum: 5000}\n",
    }},
    "spec": {"entrypoint": "execute", "templates": [{
        "name": "execute",
        "inputs": {"parameters": [{"name": "count", "default": str(FILES)},
                                  {"name": "bbox", "default": "[-180, -90, 180, 90]"}]},
        "outputs": {
            "parameters": [{"name": "results", "globalName": "results",
                            "valueFrom": {"path": "/tmp/results.json"}}],
            "artifacts": [{"name": "output", "path": "/output", "archive": {"none": {}},
                           "s3": {"bucket": "results", "key": "many/{{workflow.name}}"}}],
        },
        "script": {"image": "python:3.12-slim", "command": ["python"],
                   "env": [{"name": "COUNT", "value": "{{inputs.parameters.count}}"}],
                   "source": STEP_SOURCE},
    }]},
}
PREFIX = "s3://results/many/{workflow_name}/"
RULES = [
    {"key": "bands", "regex": r"^bands/B\w+\.tif$", "mimetype": "image/tiff"},
    {"key": r"day-\g<day>", "regex": r"^days/(?P<day>\d{4}-\d\d-\d\d)/"},
]


def resource(**options: Any) -> dict:
    return {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                             "workflow_template": "e2e-many-files",
                                             "outputs_prefix": PREFIX, **options}}


RESOURCES = {
    "many-files": resource(output_rules=RULES),
    "many-files-legacy": resource(output_rules=RULES, results_format="eodash-legacy"),
    "many-files-plain": resource(),  # no rules: one output per file
}


# --- helpers -----------------------------------------------------------------------------------


def run_job(server: Pygeoapi, process_id: str, count: int, timeout: float = 240) -> str:
    """Execute, poll to the end, insist on success; the job id."""
    resp = requests.post(f"{server.url}/processes/{process_id}/execution",
                         json={"inputs": {"count": count}}, headers=JSON, timeout=60)
    assert resp.status_code == 201, resp.text
    location = resp.headers["Location"]
    deadline = time.monotonic() + timeout
    while (info := requests.get(location, headers=JSON, timeout=60).json())["status"] not in FINAL:
        assert time.monotonic() < deadline, f"job still {info['status']} after {timeout} s"
        time.sleep(0.5)
    assert info["status"] == "successful", info
    return info["jobID"]


def results(server: Pygeoapi, job_id: str) -> dict:
    resp = requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def key_of(url: str, job_id: str) -> str:
    """The object's path below the job's prefix, from a presigned path-style URL."""
    path = urlsplit(url).path
    match = re.fullmatch(rf"/results/many/pygeoapi-job-{job_id}/(.+)", path)
    assert match, url
    return match.group(1)


def fetch_all(urls: list[str]) -> list[tuple[int, bytes]]:
    """GET every URL (4 at a time, one keep-alive session per thread), as a dashboard would."""
    def get(chunk: list[str]) -> list[tuple[int, bytes]]:
        with requests.Session() as session:
            return [(r.status_code, r.content) for r in (session.get(u, timeout=30) for u in chunk)]

    chunks = [urls[i::4] for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(get, chunks))
    # back into the order of ``urls``
    ordered: list[tuple[int, bytes]] = [(0, b"")] * len(urls)
    for i, chunk in enumerate(answers):
        for j, answer in enumerate(chunk):
            ordered[i + 4 * j] = answer
    return ordered


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(emulator: Emulator) -> None:
    resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                         json={"template": TEMPLATE}, headers=emulator.headers(), timeout=10)
    assert resp.status_code == 200 or "already exists" in resp.text, resp.text


@pytest.fixture(scope="module")
def server(start_pygeoapi, emulator: Emulator, template) -> Pygeoapi:
    return start_pygeoapi(emulator, resources=RESOURCES)


@pytest.fixture(scope="module")
def big_job(server: Pygeoapi) -> str:
    return run_job(server, "many-files", FILES)


# --- tests -------------------------------------------------------------------------------------


def test_all_files_are_listed_and_grouped_by_the_rules(server, big_job):
    document = results(server, big_job)
    assert_valid("results.yaml", document)
    expected = layout(FILES)
    days = sorted({name.split("/")[1] for name in expected if name.startswith("days/")})
    assert len(days) == DAYS
    # every selected file once; the debug log no rule selects is no output
    assert set(document) == {"tiles", "bands", *(f"day-{day}" for day in days)}
    files = [key_of(url, big_job) for name, out in document.items() if name != "tiles" for url in out["urls"]]
    assert len(files) == FILES and sorted(files) == sorted(expected)
    # the bands in key order (B8A after B12), as eodash reads bands
    bands = document["bands"]
    assert [key_of(url, big_job) for url in bands["urls"]] == [f"bands/{b}.tif" for b in sorted(BANDS)]
    assert bands["urls"][-1].split("?")[0].endswith("/bands/B8A.tif")
    assert bands["type"] == bands["mimetype"] == "image/tiff" and bands["href"] == bands["urls"][0]
    for day in days:
        output = document[f"day-{day}"]
        keys = [key_of(url, big_job) for url in output["urls"]]
        assert keys == sorted(name for name in expected if name.startswith(f"days/{day}/"))
        assert output["mimetype"] == output["type"] == "image/png"  # from the extension
    # the manifest's inline value stays an OGC qualified value
    assert document["tiles"] == {"value": FILES - len(BANDS), "mediaType": "application/json"}


def test_every_presigned_url_is_fetchable(server, big_job):
    document = results(server, big_job)
    urls = [url for out in document.values() for url in out.get("urls", ())]
    assert len(urls) == FILES
    for url in urls:
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    started = time.monotonic()
    answers = fetch_all(urls)
    took = time.monotonic() - started
    assert [code for code, _ in answers] == [200] * FILES
    assert [body.decode() for _, body in answers] == [key_of(url, big_job) for url in urls]
    assert took < 120, f"fetching {FILES} URLs took {took:.1f} s"


def test_urls_are_signed_afresh_on_every_read(server, big_job):
    first, second = results(server, big_job), results(server, big_job)
    # the same objects in the same order; the stored keys are signed per request
    assert [key_of(u, big_job) for u in first["bands"]["urls"]] == [key_of(u, big_job)
                                                                    for u in second["bands"]["urls"]]
    time.sleep(1.1)  # SigV4 signs with a whole-second X-Amz-Date
    third = results(server, big_job)
    assert parse_qs(urlsplit(third["bands"]["href"]).query)["X-Amz-Date"] != parse_qs(
        urlsplit(first["bands"]["href"]).query)["X-Amz-Date"]


def test_eodash_legacy_answers_the_urls_alone(server):
    count = 100
    job_id = run_job(server, "many-files-legacy", count)
    document = results(server, job_id)
    assert list(document) == ["urls"]
    # bands, then the days in date order, each sorted; no inline value, no unselected file
    expected = [f"bands/{b}.tif" for b in sorted(BANDS)] + sorted(n for n in layout(count)
                                                                  if n.startswith("days/"))
    assert [key_of(url, job_id) for url in document["urls"]] == expected
    answers = fetch_all(document["urls"][::7])
    assert [code for code, _ in answers] == [200] * len(answers)


def test_without_rules_every_file_is_an_output_typed_by_its_extension(server):
    count = 20
    job_id = run_job(server, "many-files-plain", count)
    document = results(server, job_id)
    assert_valid("results.yaml", document)
    files = {name: out for name, out in document.items() if "urls" in out}
    assert sorted(files) == sorted([*layout(count), "debug.log"])
    assert {name: out["mimetype"] for name, out in files.items() if not name.startswith("days/")} == {
        **{f"bands/{b}.tif": "image/tiff" for b in BANDS}, "debug.log": "text/plain"}
    assert {out["mimetype"] for name, out in files.items() if name.startswith("days/")} == {"image/png"}
    assert all(len(out["urls"]) == 1 and key_of(out["href"], job_id) == name for name, out in files.items())
    assert document["tiles"]["value"] == count - len(BANDS)


def test_a_url_signed_with_a_short_ttl_is_refused_once_expired(start_pygeoapi, emulator, s3: S3Server,
                                                                 template):
    server = start_pygeoapi(emulator, resources=RESOURCES, manager={
        "storage": {"endpoint_url": s3.endpoint_url, "bucket": "artifacts", "presign_ttl": 1}})
    try:
        job_id = run_job(server, "many-files", 20)
        # within its second of life the URL works (X-Amz-Date has whole seconds: a few tries may
        # be needed to read and fetch inside the same second)
        for _ in range(20):
            url = results(server, job_id)["bands"]["href"]
            answer = requests.get(url, timeout=10)
            if answer.status_code == 200:
                break
        assert answer.status_code == 200 and answer.content == b"bands/B01.tif", answer.text
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["1"]
        # the control: the same object signed at the same moment for ten minutes
        control = s3.client().generate_presigned_url("get_object", ExpiresIn=600, Params={
            "Bucket": "results", "Key": f"many/pygeoapi-job-{job_id}/bands/B01.tif"})
        time.sleep(2.5)
        refused = requests.get(url, timeout=10)
        # rclone answers 400 AccessDenied for an expired request, AWS 403 AccessDenied
        assert refused.status_code in (400, 403), refused.text
        assert "<Code>AccessDenied</Code>" in refused.text, refused.text
        assert requests.get(control, timeout=10).status_code == 200
    finally:
        server.stop()


def test_results_are_listed_once_when_the_job_completes(server, big_job, s3: S3Server):
    """A file added under the prefix after completion is not an output: the listing was stored."""
    s3.client().put_object(Bucket="results", Key=f"many/pygeoapi-job-{big_job}/bands/B99.tif", Body=b"late")
    try:
        document = results(server, big_job)
        assert len(document["bands"]["urls"]) == len(BANDS)
    finally:
        s3.client().delete_object(Bucket="results", Key=f"many/pygeoapi-job-{big_job}/bands/B99.tif")

