"""processes.py: recorded WorkflowTemplates → OGC process descriptions, and the description cache."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import ClusterWorkflowTemplate, WorkflowTemplate
from ogc_schemas import assert_valid, errors

from pygeoapi_argo.argo import Template
from pygeoapi_argo.errors import ArgoNotFound, ArgoUnavailable, ConfigurationError
from pygeoapi_argo.processes import (
    TYPE_SCHEMAS,
    ProcessCatalog,
    describe_template,
    entrypoint,
    placeholder,
)

DATA = Path(__file__).parent / "data" / "argo"
SAMPLES = Path(__file__).resolve().parent.parent / "config" / "workflow-templates"


def load(name: str) -> Template:
    data = yaml.safe_load((DATA / name).read_text())
    model = ClusterWorkflowTemplate if data["kind"] == "ClusterWorkflowTemplate" else WorkflowTemplate
    return model.model_validate(data)


def with_annotations(template: Template, **changes: str) -> Template:
    data = template.model_dump(by_alias=True, exclude_none=True, mode="json")
    data["metadata"].setdefault("annotations", {}).update(changes)
    return type(template).model_validate(data)


@dataclass(frozen=True)
class Options:
    workflow_template: str = "echo"
    cluster_scope: bool = False
    entrypoint: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    job_control_options: list[str] | None = None


# --- descriptions ------------------------------------------------------------------------------------


def test_echo() -> None:
    description = describe_template("echo", load("workflowtemplate-echo.yaml"), Options())
    assert_valid("process.yaml", description)
    assert description == {
        "version": "1.0.0",
        "id": "echo",
        "title": "Echo",
        "description": "Returns the input message, optionally upper- or lower-cased.",
        "keywords": ["sample", "echo"],
        "links": [],
        "inputs": {
            "message": {"title": "Message", "description": "Text to echo back.",
                        "schema": {"type": "string", "maxLength": 1000}, "minOccurs": 1, "maxOccurs": 1},
            "case": {"title": "case", "description": "How to change the letter case of the message.",
                     "schema": {"type": "string", "enum": ["keep", "upper", "lower"], "default": "keep"},
                     "minOccurs": 0, "maxOccurs": 1},
        },
        "outputs": {"results": {
            "title": "Results", "description": "The results of the job: links to its outputs.",
            "schema": {"type": "object", "contentMediaType": "application/json"}}},
        "jobControlOptions": ["async-execute"],
        "outputTransmission": ["value", "reference"],
    }


def test_typed_template_with_workflow_arguments() -> None:
    description = describe_template("ndvi", load("workflowtemplate-typed.yaml"), Options())
    assert_valid("process.yaml", description)
    assert (description["title"], description["version"]) == ("NDVI composite", "2.1.0")
    assert description["keywords"] == ["ndvi", "raster", "sentinel-2"]
    inputs = description["inputs"]
    # workflow arguments first, then the entry template's own inputs; valueFrom parameters are no inputs
    assert list(inputs) == ["area", "start", "end", "cloud_cover", "collection", "run_id",
                            "bbox", "resolution", "mask_clouds"]
    assert inputs["area"]["schema"] == TYPE_SCHEMAS["geometry"]
    assert inputs["area"]["minOccurs"] == 1
    assert inputs["start"]["schema"] == {"type": "string", "format": "date", "default": "2025-06-01"}
    assert inputs["end"]["schema"] == {"type": "string", "format": "date-time"}
    assert inputs["end"]["minOccurs"] == 1
    assert inputs["cloud_cover"] == {
        "title": "Maximum cloud cover", "description": "Percent of the scene.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 100, "default": 20},
        "minOccurs": 0, "maxOccurs": 1}
    # in both places: the workflow argument wins (its value is what Argo uses)
    assert inputs["collection"]["description"] == "Which collection."
    assert inputs["collection"]["schema"] == {"type": "string", "enum": ["sentinel-2-l2a", "landsat-c2-l2"],
                                              "default": "sentinel-2-l2a"}
    # an expression default is optional but not shown
    assert inputs["run_id"]["minOccurs"] == 0 and "default" not in inputs["run_id"]["schema"]
    assert inputs["bbox"]["schema"]["default"] == {"bbox": [-180, -90, 180, 90],
                                                   "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    assert inputs["resolution"]["schema"] == {"type": "number", "default": 10}
    assert inputs["mask_clouds"]["schema"] == {"type": "boolean", "default": True}
    assert description["outputs"] == {
        "ndvi": {"title": "NDVI composite",
                 "schema": {"type": "string", "contentMediaType": "image/tiff; application=geotiff"}},
        "stats": {"title": "stats", "schema": {"type": "object", "contentMediaType": "application/json"}},
    }


def test_submittable_example_reads_the_argument_value() -> None:
    template = load("workflowtemplate-submittable.yaml")
    assert entrypoint(template) == "print-message"
    description = describe_template("hello", template, Options())
    assert_valid("process.yaml", description)
    assert description["title"] == "workflow-template-submittable"
    assert description["inputs"] == {"message": {"title": "message", "schema": {"type": "string",
                                                                              "default": "hello world"},
                                                 "minOccurs": 0, "maxOccurs": 1}}


def test_cluster_template_without_entrypoint_uses_execute() -> None:
    template = load("clusterworkflowtemplate-buffer.yaml")
    assert entrypoint(template) == "execute"
    options = Options(workflow_template="buffer", cluster_scope=True)
    description = describe_template("buffer", template, options)
    assert_valid("process.yaml", description)
    assert list(description["inputs"]) == ["geometry", "distance"]
    assert description["inputs"]["distance"]["schema"] == {"type": "string", "default": "0.01"}


def test_configuration_wins() -> None:
    options = Options(
        workflow_template="buffer",
        inputs={"geometry": "geometry", "distance": {"title": "Distance", "schema": {"type": "number",
                                                                                    "minimum": 0}}},
        outputs={"buffer": "application/geo+json"},
        job_control_options=["sync-execute", "async-execute"],
    )
    description = describe_template("buffer", load("clusterworkflowtemplate-buffer.yaml"), options)
    assert_valid("process.yaml", description)
    assert description["inputs"]["geometry"]["schema"]["format"] == "geojson-geometry"
    assert description["inputs"]["distance"]["schema"] == {"type": "number", "minimum": 0, "default": 0.01}
    assert description["inputs"]["distance"]["title"] == "Distance"
    assert description["outputs"] == {
        "buffer": {"title": "buffer",
                   "schema": {"type": "string", "contentMediaType": "application/geo+json"}}}
    assert description["jobControlOptions"] == ["sync-execute", "async-execute"]
    # configured inputs replace the annotation's, per input; an entrypoint from the configuration wins
    typed = Options(inputs={"cloud_cover": "number"})
    ndvi = describe_template("ndvi", load("workflowtemplate-typed.yaml"), typed)
    assert ndvi["inputs"]["cloud_cover"]["schema"] == {"type": "number", "default": 20}
    helper = describe_template("b", load("clusterworkflowtemplate-buffer.yaml"), Options(entrypoint="helper"))
    assert list(helper["inputs"]) == ["unused"]


BROKEN = [
    ({"pygeoapi.io/inputs": "message: [unclosed"}, "annotation pygeoapi.io/inputs is not YAML"),
    ({"pygeoapi.io/inputs": "- message"}, "must be a mapping"),
    ({"pygeoapi.io/inputs": "colour: string"}, "typed input 'colour' is not a parameter"),
    ({"pygeoapi.io/inputs": "message: text"}, "unknown type 'text'"),
    ({"pygeoapi.io/inputs": "message: {title: no schema}"}, "must be a type keyword or an OGC input"),
    ({"pygeoapi.io/inputs": "case: integer"},
     "'keep' (default or enum of input 'case') is not a valid integer"),
    ({"pygeoapi.io/inputs": "case: bbox"}, "is not a valid ogc-bbox"),
    ({"pygeoapi.io/inputs": "message: {schema: {type: strin}}"},
     "the schema of input 'message' is not valid"),
    ({"pygeoapi.io/inputs": "message: {schema: {type: string, const: x}}"}, "uses const: OGC process"),
    ({"pygeoapi.io/inputs": "message: {schema: {type: object, properties: {a: {examples: [1]}}}}"},
     "uses examples"),
    ({"pygeoapi.io/inputs": "case: {schema: {type: string, enum: [a, b]}}"},
     "default of input 'case' does not fit"),
    ({"pygeoapi.io/outputs": "out: 42"}, "output 'out' must be a media type"),
]


@pytest.mark.parametrize(("annotations", "message"), BROKEN, ids=[b[1][:40] for b in BROKEN])
def test_templates_that_cannot_be_described(annotations: dict[str, str], message: str) -> None:
    template = with_annotations(load("workflowtemplate-echo.yaml"), **annotations)
    with pytest.raises(ConfigurationError, match=r"^template echo: ") as err:
        describe_template("echo", template, Options())
    assert message in err.value.message


def test_unknown_entry_template() -> None:
    with pytest.raises(ConfigurationError, match="no entry template named 'main'"):
        describe_template("echo", load("workflowtemplate-echo.yaml"), Options(entrypoint="main"))


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_sample_templates_describe_validly(path: Path) -> None:
    template = WorkflowTemplate.model_validate(yaml.safe_load(path.read_text()))
    description = describe_template(path.stem, template, Options(workflow_template=path.stem))
    assert_valid("process.yaml", description)
    assert description["title"] != path.stem  # every sample carries its title annotation


def test_placeholder_is_a_valid_description() -> None:
    description = placeholder("echo", Options(), "Argo Server unreachable")
    assert_valid("process.yaml", description)
    assert "Argo Server unreachable" in description["description"]


def test_the_ogc_validator_can_fail() -> None:
    """tests/ogc_schemas.py is lenient only where the standard is broken (quirk 1), not on quirk 4."""
    description = describe_template("echo", load("workflowtemplate-echo.yaml"), Options())
    description["inputs"]["message"]["schema"]["const"] = "x"
    description["jobControlOptions"] = ["async"]
    del description["version"]
    found = "\n".join(errors("process.yaml", description))
    assert "'version' is a required property" in found
    assert "jobControlOptions/0" in found
    assert "inputs/message/schema" in found


# --- the catalog -------------------------------------------------------------------------------------


class RecordedTemplates:
    """A template source over recorded templates, as ``ArgoClient.get_workflow_template`` behaves."""

    def __init__(self, *templates: Template) -> None:
        self.templates = {(t.metadata.name, isinstance(t, ClusterWorkflowTemplate)): t for t in templates}
        self.calls: list[tuple[str, bool]] = []
        self.down = False
        self.gate: threading.Event | None = None

    def get_workflow_template(self, name: str, *, cluster_scope: bool = False) -> Template:
        self.calls.append((name, cluster_scope))
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.down:
            raise ArgoUnavailable("Argo Server unreachable: connection refused")
        try:
            return self.templates[(name, cluster_scope)]
        except KeyError:
            raise ArgoNotFound(f"workflow template {name} not found", status=404) from None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source() -> RecordedTemplates:
    return RecordedTemplates(load("workflowtemplate-echo.yaml"), load("clusterworkflowtemplate-buffer.yaml"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(source: RecordedTemplates, clock: Clock) -> ProcessCatalog:
    processes = {"echo": Options(), "buffer": Options(workflow_template="buffer", cluster_scope=True)}
    return ProcessCatalog(source, processes, ttl=60, retry_after=5, clock=clock)


def test_nothing_is_loaded_at_construction(catalog: ProcessCatalog, source: RecordedTemplates) -> None:
    assert source.calls == []


def test_entry_template_for_submission(catalog: ProcessCatalog, source: RecordedTemplates) -> None:
    assert catalog.entry_template("buffer") == "execute"  # none in the template: the convention
    source.templates[("workflow-template-submittable", False)] = load("workflowtemplate-submittable.yaml")
    processes = {"hello": Options(workflow_template="workflow-template-submittable"),
                 "configured": Options(workflow_template="workflow-template-submittable", entrypoint="x")}
    hello = ProcessCatalog(source, processes)
    assert hello.entry_template("hello") == "print-message"  # the template's spec.entrypoint
    with pytest.raises(ArgoUnavailable, match="no entry template named 'x'"):
        hello.entry_template("configured")
    source.down = True
    with pytest.raises(ArgoUnavailable):
        ProcessCatalog(source, processes).entry_template("hello")


def test_one_load_per_ttl(catalog: ProcessCatalog, source: RecordedTemplates, clock: Clock) -> None:
    first = catalog.describe("echo")
    assert_valid("process.yaml", first)
    for _ in range(5):
        clock.now += 11
        assert catalog.describe("echo") == first
    assert source.calls == [("echo", False)]
    clock.now += 6  # 61 s after the load
    catalog.describe("echo")
    assert source.calls == [("echo", False), ("echo", False)]
    assert catalog.describe("buffer")["id"] == "buffer"
    assert source.calls[-1] == ("buffer", True)


def test_callers_get_their_own_copy(catalog: ProcessCatalog) -> None:
    first = catalog.describe("echo")
    first["jobControlOptions"].append("sync-execute")  # as pygeoapi does to processor metadata
    first["inputs"].clear()
    again = catalog.describe("echo")
    assert again["jobControlOptions"] == ["async-execute"]
    assert "message" in again["inputs"]


def test_last_good_description_survives_an_outage(catalog: ProcessCatalog, source: RecordedTemplates,
                                                  clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    good = catalog.describe("echo")
    source.down = True
    clock.now += 61
    with caplog.at_level(logging.WARNING, logger="pygeoapi_argo.processes"):
        assert catalog.describe("echo") == good
    assert "keeping the last good description" in caplog.text
    assert "connection refused" in caplog.text
    calls = len(source.calls)
    clock.now += 4  # within retry_after: no new attempt
    assert catalog.describe("echo") == good
    assert len(source.calls) == calls
    source.down = False
    clock.now += 2
    assert catalog.describe("echo") == good
    assert len(source.calls) == calls + 1


def test_no_description_at_all_is_a_503(catalog: ProcessCatalog, source: RecordedTemplates,
                                        clock: Clock) -> None:
    source.down = True
    with pytest.raises(ArgoUnavailable) as err:
        catalog.describe("echo")
    assert err.value.http_status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "process echo cannot be described now: Argo Server unreachable" in err.value.message
    shown = catalog.describe_or_placeholder("echo")  # /processes and OpenAPI generation keep working
    assert_valid("process.yaml", shown)
    assert shown["inputs"] == {} and "Argo Server unreachable" in shown["description"]
    assert len(source.calls) == 1  # the failure is remembered for retry_after
    source.down = False
    clock.now += 5
    assert "message" in catalog.describe("echo")["inputs"]


def test_a_template_that_cannot_be_described_is_a_503(source: RecordedTemplates, clock: Clock) -> None:
    catalog = ProcessCatalog(source, {"echo": Options(entrypoint="nope")}, clock=clock)
    with pytest.raises(ArgoUnavailable, match="no entry template named 'nope'"):
        catalog.describe("echo")
    missing = ProcessCatalog(source, {"gone": Options(workflow_template="gone")}, clock=clock)
    with pytest.raises(ArgoUnavailable, match="workflow template gone not found"):
        missing.describe("gone")


def test_concurrent_callers_share_one_load(catalog: ProcessCatalog, source: RecordedTemplates,
                                           clock: Clock) -> None:
    source.gate = threading.Event()
    answers: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(catalog.describe("echo"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    source.gate.set()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 8 and all(a == answers[0] for a in answers)
    assert source.calls == [("echo", False)]


def test_a_reload_never_blocks_callers_that_have_a_description(
        catalog: ProcessCatalog, source: RecordedTemplates, clock: Clock) -> None:
    good = catalog.describe("echo")
    clock.now += 61
    source.gate = threading.Event()
    reloader = threading.Thread(target=catalog.describe, args=("echo",))
    reloader.start()
    for _ in range(1000):  # until the reload is in progress, held at the gate
        if len(source.calls) == 2:
            break
        threading.Event().wait(0.01)
    assert catalog.describe("echo") == good  # answered while the reload hangs
    source.gate.set()
    reloader.join(10)
    assert len(source.calls) == 2

