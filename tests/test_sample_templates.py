"""The sample WorkflowTemplates in ``config/workflow-templates``: valid Argo objects that follow the
project's conventions, and each runs to its expected end in the emulator.

The runs go through the emulator's HTTP API with hera's real ``WorkflowsService`` (submit from the
template, poll ``get``), then look at what a client of a real cluster would look at: the phase,
``status.outputs`` (the ``results`` manifest), the node tree, the objects in the artifact
repository (``rclone serve s3``) and the failure message.
"""

from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path

import jsonschema
import pytest
import rasterio
import yaml
from argo_swagger import ArgoSession, stream_lines, swagger, validate
from hera.workflows import WorkflowsService
from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest, WorkflowTemplate
from shapely.geometry import Point, shape

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "config" / "workflow-templates"
WORKFLOW_TEMPLATE = "io.argoproj.workflow.v1alpha1.WorkflowTemplate"
NAMES = ("echo", "buffer", "raster", "two-step", "fail")
ARTIFACT_BUCKET = "artifacts"  # the emulator fixture's artifact repository is s3://artifacts
INPUT_TYPES = {"string", "number", "integer", "boolean", "date", "datetime", "bbox", "geometry"}
FINAL_PHASES = {"Succeeded", "Failed", "Error"}


def load(name: str) -> dict:
    return yaml.safe_load((TEMPLATE_DIR / f"{name}.yaml").read_text())


def strict_validator() -> jsonschema.Draft4Validator:
    """Argo's swagger schema for a WorkflowTemplate, with unknown fields refused.

    Argo (Go's JSON decoding) silently drops a field it does not know, so a misspelt field passes
    the swagger check and is then ignored on the cluster; closing every object that declares its
    properties catches it here instead.
    """
    definitions = copy.deepcopy(swagger()["definitions"])
    for definition in definitions.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return jsonschema.Draft4Validator({
        "$ref": f"#/definitions/{WORKFLOW_TEMPLATE}",
        "definitions": definitions,
    })


VALIDATOR = strict_validator()


# --- the templates as Argo objects --------------------------------------------------------------

def test_the_directory_holds_exactly_the_samples() -> None:
    assert sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_template_is_a_valid_argo_object(name: str) -> None:
    doc = load(name)
    validate(doc, WORKFLOW_TEMPLATE)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []
    model = WorkflowTemplate.model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def test_the_strict_check_refuses_a_misspelt_field() -> None:
    doc = load("fail")
    doc["spec"]["templates"][0]["script"]["terminationMesagePolicy"] = "File"
    assert not VALIDATOR.is_valid(doc)


@pytest.mark.parametrize("name", NAMES)
def test_template_follows_the_conventions(name: str) -> None:
    doc = load(name)
    meta = doc["metadata"]
    assert meta["name"] == name
    annotations = meta["annotations"]
    for key in ("workflows.argoproj.io/title", "workflows.argoproj.io/description",
                "pygeoapi.io/keywords", "pygeoapi.io/version"):
        assert annotations[key].strip(), key
    assert doc["spec"]["entrypoint"] == "execute"
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    inputs = templates["execute"]["inputs"]["parameters"]
    assert all(p.get("description") for p in inputs)
    assert all(p["default"] in p["enum"] for p in inputs if "enum" in p and "default" in p)

    typed = yaml.safe_load(annotations.get("pygeoapi.io/inputs", "{}"))
    assert set(typed) <= {p["name"] for p in inputs}
    for spec in typed.values():
        assert spec in INPUT_TYPES if isinstance(spec, str) else isinstance(spec["schema"], dict)

    for template in templates.values():
        if "script" not in template:
            continue
        script = template["script"]
        assert script["image"] == "python:3.12-slim"
        assert "{{" not in script["source"], "inputs reach scripts as env vars, not pasted into code"
        for artifact in template.get("outputs", {}).get("artifacts", []):
            assert artifact == {"name": "output", "path": "/output", "archive": {"none": {}},
                                "s3": {"key": "{{workflow.name}}/output"}}
    global_names = [p.get("globalName") for t in templates.values()
                    for p in t.get("outputs", {}).get("parameters", [])]
    assert global_names.count("results") == (0 if name == "fail" else 1)


# --- runs in the emulator -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def session(emulator) -> ArgoSession:
    """Every response the tests receive is checked against Argo's swagger first."""
    return ArgoSession(emulator.headers())


@pytest.fixture(scope="module")
def argo(emulator, session) -> WorkflowsService:
    return WorkflowsService(host=emulator.url, namespace=emulator.namespace, session=session)


def submit(argo: WorkflowsService, template: str, **parameters: str) -> str:
    request = WorkflowSubmitRequest(
        resource_kind="WorkflowTemplate",
        resource_name=template,
        submit_options=SubmitOpts(parameters=[f"{k}={v}" for k, v in parameters.items()]),
    )
    return argo.submit_workflow(request).metadata.name


def wait(argo: WorkflowsService, name: str, timeout: float = 120) -> dict:
    """Poll the workflow until it reaches a final phase; answer it as Argo's JSON."""
    deadline = time.monotonic() + timeout
    while True:
        workflow = argo.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")
        if workflow.get("status", {}).get("phase") in FINAL_PHASES:
            return workflow
        assert time.monotonic() < deadline, f"{name} still {workflow.get('status', {}).get('phase')!r}"
        time.sleep(0.2)


def results(workflow: dict) -> object:
    """The ``results`` global output parameter, decoded."""
    parameters = {p["name"]: p["value"] for p in workflow["status"]["outputs"]["parameters"]}
    return json.loads(parameters["results"])


def only_pod_node(workflow: dict) -> dict:
    """A single-pod workflow: its one node is the root, named and identified like the workflow."""
    name = workflow["metadata"]["name"]
    nodes = workflow["status"]["nodes"]
    assert list(nodes) == [name]
    node = nodes[name]
    assert (node["type"], node["name"], node["displayName"], node["templateName"]) == (
        "Pod", name, name, "execute")
    return node


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def read_object(s3, key: str) -> bytes:
    return s3.client().get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read()


def test_echo_returns_the_message_as_parameter_and_manifest(argo) -> None:
    message = 'Hello, "Argo"\nsecond line'
    upper = submit(argo, "echo", message=message, case="upper")
    default = submit(argo, "echo", message=message)

    workflow = wait(argo, upper)
    assert workflow["status"]["phase"] == "Succeeded"
    assert results(workflow) == {"message": {"value": message.upper(), "mediaType": "text/plain"}}
    node = only_pod_node(workflow)
    assert node["phase"] == "Succeeded"
    outputs = {p["name"]: p["value"] for p in node["outputs"]["parameters"]}
    assert outputs["message"] == message.upper()

    workflow = wait(argo, default)
    assert workflow["status"]["phase"] == "Succeeded"
    assert results(workflow)["message"]["value"] == message  # case defaulted to "keep"


def test_buffer_writes_a_feature_collection_whose_area_grows_with_distance(argo, s3) -> None:
    point = {"type": "Point", "coordinates": [16.37, 48.21]}
    names = {d: submit(argo, "buffer", geometry=json.dumps(point, separators=(",", ":")), distance=d)
             for d in ("0.5", "1")}
    areas = {}
    for distance, name in names.items():
        workflow = wait(argo, name)
        assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
        node = only_pod_node(workflow)
        [artifact] = node["outputs"]["artifacts"]
        assert artifact["s3"]["key"] == f"{name}/output"
        key = f"{name}/output/buffer.geojson"
        assert results(workflow) == {"buffer": {"urls": [key], "mimetype": "application/geo+json"}}

        collection = json.loads(read_object(s3, key))
        assert collection["type"] == "FeatureCollection"
        [feature] = collection["features"]
        buffered = shape(feature["geometry"])
        assert buffered.geom_type == "Polygon" and buffered.contains(Point(point["coordinates"]))
        assert feature["properties"]["distance"] == float(distance)
        areas[distance] = buffered.area
    assert areas["1"] == pytest.approx(4 * areas["0.5"], rel=0.01)  # pi r^2


def test_buffer_rejects_a_feature_where_a_geometry_belongs(argo) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {}}
    workflow = wait(argo, submit(argo, "buffer", geometry=json.dumps(feature), distance="1"))
    assert workflow["status"]["phase"] == "Failed"
    node = only_pod_node(workflow)
    assert "Error (exit code 2)" in node["message"]
    assert "ERROR: input rejected: geometry is not a GeoJSON geometry object" in node["message"]


def test_raster_writes_a_tiled_geotiff_with_overviews(argo, s3) -> None:
    bbox = {"bbox": [16.2, 48.1, 16.6, 48.3], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    name = submit(argo, "raster", bbox=json.dumps(bbox, separators=(",", ":")), size="256")
    workflow = wait(argo, name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    only_pod_node(workflow)
    key = f"{name}/output/raster.tif"
    assert results(workflow) == {"raster": {
        "urls": [key], "mimetype": "image/tiff; application=geotiff; profile=cloud-optimized"}}

    with rasterio.MemoryFile(io.BytesIO(read_object(s3, key))) as memfile, memfile.open() as raster:
        assert (raster.driver, raster.width, raster.height, raster.count) == ("GTiff", 256, 256, 1)
        assert raster.crs.to_epsg() == 4326
        assert list(raster.bounds) == pytest.approx(bbox["bbox"])
        assert raster.profile["tiled"] and raster.block_shapes == [(64, 64)]
        assert raster.overviews(1) == [2, 4]
        assert raster.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        data = raster.read(1)
        assert data.min() <= 1 and data[0, 0] == data[-1, -1] == 255  # the radial gradient


def test_two_step_passes_a_parameter_and_a_file_between_dag_tasks(argo, s3) -> None:
    text = "the quick brown fox jumps over the lazy dog"
    name = submit(argo, "two-step", text=text)
    workflow = wait(argo, name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")

    nodes = workflow["status"]["nodes"]
    split_id, report_id = (f"{name}-{fnv32a(f'{name}.{task}')}" for task in ("split", "report"))
    assert set(nodes) == {name, split_id, report_id}
    root, split, report = nodes[name], nodes[split_id], nodes[report_id]
    assert (root["type"], root["templateName"], root["children"], root["outboundNodes"]) == (
        "DAG", "execute", [split_id], [report_id])
    assert (split["type"], split["name"], split["displayName"], split["children"]) == (
        "Pod", f"{name}.split", "split", [report_id])
    assert (report["type"], report["displayName"], report.get("children", [])) == ("Pod", "report", [])
    assert [(p["name"], p["value"]) for p in split["outputs"]["parameters"]] == [("words", "9")]
    assert report["inputs"]["parameters"] == [{"name": "words", "value": "9"}]

    key = f"{name}/output/report.json"
    assert results(workflow) == {"report": {"urls": [key], "mimetype": "application/json"}}
    assert json.loads(read_object(s3, key)) == {"words": 9, "distinct": 8, "longest": "quick"}


def test_fail_ends_failed_with_the_reason_in_message_and_log(argo, emulator, session) -> None:
    name = submit(argo, "fail", reason="no cloud-free scene")
    workflow = wait(argo, name)
    status = workflow["status"]
    assert status["phase"] == "Failed"
    assert "outputs" not in status
    node = only_pod_node(workflow)
    assert node["phase"] == "Failed"
    assert node["message"].startswith("Error (exit code 3)")
    assert "ERROR: input rejected: no cloud-free scene" in node["message"]
    assert status["message"] == node["message"]

    response = session.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/{name}/log",
                           params={"logOptions.container": "main"}, stream=True)
    assert response.status_code == 200
    lines = [entry["result"]["content"] for entry in stream_lines(response)]
    assert "ERROR: input rejected: no cloud-free scene" in lines
