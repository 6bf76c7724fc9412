"""results.py: manifests of every accepted shape and artifacts (plain Argo JSON), rendering against
OGC ``results.yaml``, and presigned URLs fetched from ``rclone serve s3``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import REFERENCE, S3Server
from hera.workflows.models import Workflow
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pygeoapi_argo import results
from pygeoapi_argo.errors import InvalidParameterValue, ResultsError, UnknownOutput
from pygeoapi_argo.storage import Storage

OGC = REFERENCE / "ogcapi-processes" / "schemas"


def _lenient(node: Any, parent: str | None = None) -> Any:
    """``oneOf`` → ``anyOf`` (quirk 1 of the schemas' README), except property names."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" and parent != "properties" else k): _lenient(v, k)
                for k, v in node.items()}
    return [_lenient(v) for v in node] if isinstance(node, list) else node


def _load(uri: str) -> Resource:
    contents = _lenient(yaml.safe_load(Path(uri.removeprefix("file://")).read_text()))
    return Resource.from_contents(contents, default_specification=DRAFT202012)


RESULTS_SCHEMA = Draft202012Validator({"$ref": f"file://{OGC}/results.yaml"},
                                       registry=Registry(retrieve=_load))


def workflow(*, parameters: list[dict] | None = None, artifacts: list[dict] | None = None,
             nodes: dict[str, dict] | None = None) -> dict:
    """A finished Workflow as Argo's API answers it (only the parts results read)."""
    outputs: dict[str, Any] = {}
    if parameters is not None:
        outputs["parameters"] = parameters
    if artifacts is not None:
        outputs["artifacts"] = artifacts
    status: dict[str, Any] = {"phase": "Succeeded", "nodes": nodes or {}}
    if outputs:
        status["outputs"] = outputs
    return {"metadata": {"name": "pygeoapi-job-1", "namespace": "argo"}, "spec": {}, "status": status}


def manifest(value: Any, name: str = "results") -> dict:
    text = value if isinstance(value, str) else json.dumps(value)
    return workflow(parameters=[{"name": "other", "value": "x"}, {"name": name, "value": text}])


def no_listing(url: str) -> list[str]:
    raise AssertionError(f"a manifest must not make collect list {url}")


def collect(wf: Any, **options: Any) -> dict:
    options.setdefault("list_urls", no_listing)
    options.setdefault("default_bucket", "results")
    return results.collect(wf, **options)


def fake_presign(url: str) -> str:
    return "https://signed.example/" + url.removeprefix("s3://") + "?X-Amz-Signature=abc"


# --- manifests ---------------------------------------------------------------------------------


def test_media_types() -> None:
    assert results.media_type("a/b/B04.TIF") == "image/tiff"
    assert results.media_type("x.tiff") == "image/tiff"
    assert results.media_type("out.geojson") == results.media_type("out.json") == "application/geo+json"
    assert results.media_type("out.fgb") == "application/vnd.flatgeobuf"
    assert results.media_type("t.csv") == "text/csv"
    assert results.media_type("p.png") == "image/png"
    assert results.media_type("a.zip") == "application/zip"
    assert results.media_type("https://h/x.png?sig=1.tif") == "image/png"
    assert results.media_type("no-extension") is None


def test_ogc_results_map() -> None:
    stored = collect(manifest({
        "raster": {"href": "s3://results/jobs/1/ndvi.tif", "type": "image/tiff; application=geotiff"},
        "vector": {"href": "jobs/1/buffer.geojson"},
        "stats": {"value": {"mean": 0.4}, "mediaType": "application/json"},
        "count": {"value": 7},
        "preview": "https://cdn.example.org/1/preview.png",
        "bands": ["s3://results/jobs/1/B08.tif", "s3://results/jobs/1/B04.tif"],
    }))
    assert stored == {
        "raster": {"urls": ["s3://results/jobs/1/ndvi.tif"], "mimetype": "image/tiff; application=geotiff"},
        "vector": {"urls": ["s3://results/jobs/1/buffer.geojson"], "mimetype": "application/geo+json"},
        "stats": {"value": {"mean": 0.4}, "mediaType": "application/json"},
        "count": {"value": 7, "mediaType": "application/json"},
        "preview": {"urls": ["https://cdn.example.org/1/preview.png"], "mimetype": "image/png"},
        "bands": {"urls": ["s3://results/jobs/1/B08.tif", "s3://results/jobs/1/B04.tif"],
                  "mimetype": "image/tiff"},
    }
    json.dumps(stored)  # the stored form is plain JSON


def test_eodash_urls_keep_their_order_and_resolve_bare_keys() -> None:
    urls = ["s3://results/jobs/1/b10.tif", "jobs/1/b2.tif", "/jobs/1/b1.tif"]
    stored = collect(manifest({"urls": urls}, name="urls"), parameter="urls", output_id="ndvi")
    assert stored == {"ndvi": {"urls": ["s3://results/jobs/1/b10.tif", "s3://results/jobs/1/b2.tif",
                                        "s3://results/jobs/1/b1.tif"], "mimetype": "image/tiff"}}
    typed = collect(manifest({"urls": ["s3://b/k.bin"], "mimetype": "application/x-custom"}))
    assert typed == {"result": {"urls": ["s3://b/k.bin"], "mimetype": "application/x-custom"}}


def test_grouped_urls() -> None:
    stored = collect(manifest({
        "flood": {"urls": ["s3://results/1/a.tif", "s3://results/1/b.tif"], "mimetype": "image/tiff"},
        "area": {"urls": ["s3://results/1/area.fgb"]},
    }))
    assert stored == {
        "flood": {"urls": ["s3://results/1/a.tif", "s3://results/1/b.tif"], "mimetype": "image/tiff"},
        "area": {"urls": ["s3://results/1/area.fgb"], "mimetype": "application/vnd.flatgeobuf"},
    }


@pytest.mark.parametrize(("text", "expected"), [
    ("s3://results/jobs/1/out.tif", {"urls": ["s3://results/jobs/1/out.tif"], "mimetype": "image/tiff"}),
    ('"jobs/1/out.csv"', {"urls": ["s3://results/jobs/1/out.csv"], "mimetype": "text/csv"}),
    ('["jobs/1/a.zip", "https://h/b.zip"]',
     {"urls": ["s3://results/jobs/1/a.zip", "https://h/b.zip"], "mimetype": "application/zip"}),
    ('{"href": "https://h/x.json"}', {"urls": ["https://h/x.json"], "mimetype": "application/geo+json"}),
    ("https://h/data", {"urls": ["https://h/data"], "mimetype": "application/octet-stream"}),
    ('{"value": "hi", "mediaType": "text/markdown"}', {"value": "hi", "mediaType": "text/markdown"}),
])
def test_single_references(text: str, expected: dict) -> None:
    assert collect(manifest(text)) == {"result": expected}


@pytest.mark.parametrize("value", [
    {"data": [{"x": [1, 2], "y": [3, 4], "type": "bar"}], "layout": {"title": "NDVI"}},
    {"source": "https://h/x.png", "rows": 3},  # one link among plain data: data, not a map of outputs
    [1, 2, 3],
    42,
    True,
    "hello world",
    "out.tif is ready",
])
def test_any_other_json_is_one_value(value: Any) -> None:
    kind = "text/plain" if isinstance(value, str) else "application/json"
    assert collect(manifest(value)) == {"result": {"value": value, "mediaType": kind}}


def test_text_that_is_not_json_is_a_value() -> None:
    expected = {"result": {"value": "done: 3 tiles", "mediaType": "text/plain"}}
    assert collect(manifest("done: 3 tiles")) == expected


def test_empty_map_means_no_outputs() -> None:
    assert collect(manifest({})) == {}


@pytest.mark.parametrize(("value", "message"), [
    ({"urls": ["jobs/1/a.tif"]}, "no default bucket"),
    ({"out": {"href": "ftp://h/a.tif"}}, "only s3:// and http"),
    ({"out": {"href": "s3://results"}}, "names no object"),
    ({"out": {"urls": ["s3://results/a.tif", 3]}}, "non-empty strings"),
    ({"out": {"urls": []}}, "non-empty strings"),
])
def test_broken_references_are_results_errors(value: Any, message: str) -> None:
    with pytest.raises(ResultsError, match=message):
        collect(manifest(value), default_bucket=None)


def test_hera_workflow_model_is_accepted() -> None:
    model = Workflow.model_validate(manifest({"urls": ["s3://results/1/a.tif"]}))
    assert collect(model) == {"result": {"urls": ["s3://results/1/a.tif"], "mimetype": "image/tiff"}}


def test_empty_parameter_falls_back_to_artifacts() -> None:
    wf = workflow(parameters=[{"name": "results", "value": ""}],
                  artifacts=[{"name": "report", "path": "/tmp/r.pdf", "s3": {"key": "wf/pod/report.pdf"}}])
    expected = {"report": {"urls": ["s3://results/wf/pod/report.pdf"], "mimetype": "application/pdf"}}
    assert collect(wf) == expected


# --- artifacts ---------------------------------------------------------------------------------

FILES = {
    "s3://artifacts/pygeoapi-job-1/pod-1/output/": ["s3://artifacts/pygeoapi-job-1/pod-1/output/b2.tif",
                                                    "s3://artifacts/pygeoapi-job-1/pod-1/output/b1.tif"],
    "s3://artifacts/pygeoapi-job-1/pod-2/output/": ["s3://artifacts/pygeoapi-job-1/pod-2/output/area.geojson",
                                                    "s3://artifacts/pygeoapi-job-1/pod-2/output/quicklook.png"],
}


def listing(url: str) -> list[str]:
    return FILES.get(url, [])


def pod(node_id: str, started: str, *artifacts: dict) -> dict:
    return {"id": node_id, "type": "Pod", "phase": "Succeeded", "startedAt": started,
            "outputs": {"artifacts": list(artifacts), "exitCode": "0"}}


def directory(key: str) -> dict:
    """``/output`` saved unarchived to the artifact repository: Argo records only the key."""
    return {"name": "output", "path": "/output", "archive": {"none": {}}, "s3": {"key": key}}


LOGS = {"name": "main-logs", "s3": {"key": "pygeoapi-job-1/pod-1/main.log"}}


def test_key_only_directory_artifact_is_listed_sorted() -> None:
    wf = workflow(nodes={"pod-1": pod("pod-1", "2025-01-01T00:00:01Z", LOGS,
                                      directory("pygeoapi-job-1/pod-1/output"))})
    stored = collect(wf, default_bucket="artifacts", list_urls=listing)
    assert stored == {"output": {"urls": ["s3://artifacts/pygeoapi-job-1/pod-1/output/b1.tif",
                                          "s3://artifacts/pygeoapi-job-1/pod-1/output/b2.tif"],
                                 "mimetype": "image/tiff"}}


def test_mixed_directory_is_one_output_per_media_type() -> None:
    wf = workflow(nodes={"pod-2": pod("pod-2", "1", directory("pygeoapi-job-1/pod-2/output"))})
    stored = collect(wf, default_bucket="artifacts", list_urls=listing)
    assert stored == {
        "output.geojson": {"urls": ["s3://artifacts/pygeoapi-job-1/pod-2/output/area.geojson"],
                           "mimetype": "application/geo+json"},
        "output.png": {"urls": ["s3://artifacts/pygeoapi-job-1/pod-2/output/quicklook.png"],
                       "mimetype": "image/png"},
    }


def test_file_artifacts_explicit_bucket_tarball_and_type_from_path() -> None:
    wf = workflow(nodes={
        "pod-a": pod("pod-a", "2025-01-01T00:00:02Z",
                     {"name": "archive", "path": "/tmp/out",
                      "s3": {"bucket": "other", "key": "fixed/out.tgz"}}),
        "pod-b": pod("pod-b", "2025-01-01T00:00:01Z",
                     {"name": "cog", "path": "/tmp/cog.tif", "archive": {"none": {}},
                      "s3": {"key": "pygeoapi-job-1/pod-b/cog"}},
                     {"name": "repo", "path": "/src", "git": {"repo": "https://github.com/x/y"}}),
    })
    stored = collect(wf, default_bucket="artifacts", list_urls=listing)
    assert stored == {
        "cog": {"urls": ["s3://artifacts/pygeoapi-job-1/pod-b/cog"], "mimetype": "image/tiff"},
        "archive": {"urls": ["s3://other/fixed/out.tgz"], "mimetype": "application/gzip"},
    }
    assert list(stored) == ["cog", "archive"]  # node start order


def test_global_artifacts_win_and_duplicates_and_fan_out_merge() -> None:
    shared = {"name": "result", "s3": {"key": "k/result.csv"}}
    wf = workflow(
        artifacts=[LOGS, {"name": "final", "path": "/o/f.fgb", "s3": {"key": "k/final.fgb"}}],
        nodes={"p1": pod("p1", "1", {"name": "tmp", "s3": {"key": "k/tmp.csv"}})})
    expected = {"final": {"urls": ["s3://results/k/final.fgb"], "mimetype": "application/vnd.flatgeobuf"}}
    assert collect(wf) == expected

    wf = workflow(nodes={
        "steps": {"id": "steps", "type": "Steps", "startedAt": "0", "outputs": {"artifacts": [shared]}},
        "p1": pod("p1", "1", shared),
        "p2": pod("p2", "2", {"name": "tile", "s3": {"key": "k/t2.tif"}}),
        "p3": pod("p3", "3", {"name": "tile", "s3": {"key": "k/t1.tif"}}),
    })
    assert collect(wf) == {
        "result": {"urls": ["s3://results/k/result.csv"], "mimetype": "text/csv"},
        "tile": {"urls": ["s3://results/k/t1.tif", "s3://results/k/t2.tif"], "mimetype": "image/tiff"},
    }


def test_manifest_wins_over_artifacts() -> None:
    wf = manifest({"urls": ["s3://results/1/a.tif"]})
    wf["status"]["nodes"] = {"p": pod("p", "1", {"name": "output", "s3": {"key": "k/a.tif"}})}
    assert list(collect(wf)) == ["result"]


def test_key_only_artifact_needs_a_bucket() -> None:
    wf = workflow(nodes={"p": pod("p", "1", {"name": "output", "s3": {"key": "k/a.tif"}})})
    with pytest.raises(ResultsError, match=r"artifact 'output'.*no default bucket"):
        collect(wf, default_bucket=None)
    assert collect(workflow()) == {}


# --- render, raw, selection ---------------------------------------------------------------------

STORED = {
    "bands": {"urls": ["s3://results/1/b2.tif", "s3://results/1/b1.tif"], "mimetype": "image/tiff"},
    "external": {"urls": ["https://cdn.example.org/x.png"], "mimetype": "image/png"},
    "stats": {"value": {"mean": 0.4}, "mediaType": "application/json"},
    "label": {"value": "ok", "mediaType": "text/plain"},
    "count": {"value": 3, "mediaType": "application/json"},
}


def test_render_document_is_ogc_and_eodash() -> None:
    document = results.render(STORED, fake_presign)
    assert document["bands"] == {
        "href": "https://signed.example/results/1/b2.tif?X-Amz-Signature=abc", "type": "image/tiff",
        "urls": ["https://signed.example/results/1/b2.tif?X-Amz-Signature=abc",
                 "https://signed.example/results/1/b1.tif?X-Amz-Signature=abc"],
        "mimetype": "image/tiff"}
    assert document["external"]["urls"] == ["https://cdn.example.org/x.png"]
    assert document["stats"] == {"value": {"mean": 0.4}, "mediaType": "application/json"}
    errors = [e.message for e in RESULTS_SCHEMA.iter_errors(document)]
    assert errors == []
    json.dumps(document)


def test_the_schema_check_can_fail() -> None:
    assert not RESULTS_SCHEMA.is_valid({"out": {"urls": ["x"]}})  # neither link nor qualified value


def test_render_signs_on_every_read() -> None:
    calls: list[str] = []

    def presign(url: str) -> str:
        calls.append(url)
        return f"https://s/{len(calls)}"

    first = results.render(STORED, presign)["bands"]["href"]
    second = results.render(STORED, presign)["bands"]["href"]
    assert first != second and calls.count("s3://results/1/b2.tif") == 2
    assert not any(url.startswith("https://cdn") for url in calls)


def test_render_selection() -> None:
    document = results.render(STORED, fake_presign, {"count": {}, "stats": {"transmissionMode": "value"}})
    assert list(document) == ["count", "stats"]
    assert results.render(STORED, fake_presign, {}) == results.render(STORED, fake_presign)
    with pytest.raises(UnknownOutput, match="no output 'nope'") as err:
        results.render(STORED, fake_presign, {"nope": {}})
    assert err.value.http_status == 400 and err.value.name == "nope"
    assert results.render(None, fake_presign) == {}


def test_raw_value() -> None:
    def read(url: str) -> bytes:
        return f"bytes of {url}".encode()

    assert results.raw_value(STORED, read, {"stats": {}}) == ("application/json", {"mean": 0.4})
    assert results.raw_value({"label": STORED["label"]}, read) == ("text/plain", "ok")
    single = {"cog": {"urls": ["s3://results/1/cog.tif"], "mimetype": "image/tiff"}}
    assert results.raw_value(single, read) == ("image/tiff", b"bytes of s3://results/1/cog.tif")
    for selection, message in ((None, "holds one output, this job has 5"), ({"bands": {}}, "2 file"),
                               ({"external": {}}, "1 file")):
        with pytest.raises(InvalidParameterValue, match=message):
            results.raw_value(STORED, read, selection)
    with pytest.raises(UnknownOutput):
        results.raw_value(STORED, read, {"nope": {}})


def test_select_outputs_at_execute() -> None:
    description = {"outputs": {"result": {"schema": {}}, "preview": {"schema": {}}}}
    assert results.select_outputs(description, None) is None
    assert results.select_outputs(description, {}) is None
    assert results.select_outputs(description, {"preview": {"transmissionMode": "reference"}}) == {
        "preview": {"transmissionMode": "reference"}}
    with pytest.raises(UnknownOutput, match="unknown output 'x'; this process has: preview, result"):
        results.select_outputs(description, {"x": {}})
    with pytest.raises(InvalidParameterValue, match="object"):
        results.select_outputs(description, ["result"])
    assert results.select_outputs({"outputs": {}}, {"any": {}}) == {"any": {}}


def test_delete_removes_only_our_objects() -> None:
    removed: list[str] = []
    results.delete(STORED, removed.append)
    assert removed == ["s3://results/1/b2.tif", "s3://results/1/b1.tif"]
    results.delete(None, removed.append)


# --- against a real S3 ---------------------------------------------------------------------------


@pytest.fixture
def storage(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Storage:
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return Storage(endpoint_url=s3.endpoint_url, region="us-east-1", presign_ttl=300)


def test_collected_and_rendered_urls_fetch_from_s3(storage: Storage) -> None:
    job = f"pygeoapi-job-{uuid.uuid4().hex}"
    folder = f"s3://artifacts/{job}/{job}-1/output/"
    contents = {"b2.tif": b"II*\x00band2", "b1.tif": b"II*\x00band1", "area.geojson": b'{"type":"Feature"}'}
    for name, data in contents.items():
        storage.write(folder + name, data, results.media_type(name))
    storage.write(f"s3://results/{job}/chart.csv", b"x,y\n1,2\n", "text/csv")
    wf = workflow(nodes={f"{job}-1": pod(f"{job}-1", "1", directory(f"{job}/{job}-1/output"))})

    stored = results.collect(wf, default_bucket="artifacts", list_urls=storage.list)
    assert stored["output.tif"]["urls"] == [folder + "b1.tif", folder + "b2.tif"]
    document = results.render(stored, storage.presign)
    assert RESULTS_SCHEMA.is_valid(document)
    fetched = [requests.get(url, timeout=10) for url in document["output.tif"]["urls"]]
    assert [(r.status_code, r.content) for r in fetched] == [(200, contents[n]) for n in ("b1.tif", "b2.tif")]
    geojson = requests.get(document["output.geojson"]["href"], timeout=10)
    assert geojson.status_code == 200 and geojson.json() == {"type": "Feature"}
    tampered = document["output.tif"]["href"].replace("b1.tif", "b2.tif")
    assert requests.get(tampered, timeout=10).status_code == 403

    from_manifest = results.collect(manifest({"urls": [f"{job}/chart.csv"]}), default_bucket="results",
                                    list_urls=storage.list)
    assert results.raw_value(from_manifest, storage.read) == ("text/csv", b"x,y\n1,2\n")
    results.delete(stored, storage.delete)
    assert list(storage.list(folder)) == []
