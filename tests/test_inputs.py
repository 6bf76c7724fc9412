"""inputs.py: execute inputs → Argo parameters, against the description of a recorded template."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import WorkflowTemplate

from pygeoapi_argo.errors import InvalidParameterValue, MissingParameterValue
from pygeoapi_argo.inputs import MASK, Limits, looks_secret, mask, to_parameters
from pygeoapi_argo.processes import describe_template

DATA = Path(__file__).parent / "data" / "argo"
SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}


@dataclass(frozen=True)
class Options:
    workflow_template: str = "ndvi"
    cluster_scope: bool = False
    entrypoint: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    job_control_options: list[str] | None = None


@pytest.fixture(scope="module")
def ndvi() -> dict[str, Any]:
    """Typed inputs: geometry, bbox, date, datetime, integer, number, boolean, enum, plain string."""
    data = yaml.safe_load((DATA / "workflowtemplate-typed.yaml").read_text())
    template = WorkflowTemplate.model_validate(data)
    return describe_template("ndvi", template, Options())


def params(description: dict[str, Any], **inputs: Any) -> dict[str, str]:
    return to_parameters(description, {"area": SQUARE, "end": "2025-06-30T12:00", **inputs})


def test_every_type_becomes_its_string(ndvi: dict[str, Any]) -> None:
    out = params(ndvi, bbox=[10, 50, 11, 51.5], start="2025-06-01", cloud_cover=30.0, resolution=2.5,
                 mask_clouds=False, collection="landsat-c2-l2", run_id="run 7")
    assert out == {
        "area": json.dumps(SQUARE, separators=(",", ":")),
        "end": "2025-06-30T12:00:00Z",
        "bbox": "[10,50,11,51.5]",
        "start": "2025-06-01",
        "cloud_cover": "30",  # 30.0 from a client library is the integer 30
        "resolution": "2.5",
        "mask_clouds": "false",
        "collection": "landsat-c2-l2",
        "run_id": "run 7",
    }


def test_absent_optional_inputs_are_left_to_argo(ndvi: dict[str, Any]) -> None:
    assert set(params(ndvi)) == {"area", "end"}


def test_numbers_keep_their_shortest_form(ndvi: dict[str, Any]) -> None:
    assert params(ndvi, resolution=10.0)["resolution"] == "10"
    assert params(ndvi, resolution=0.1)["resolution"] == "0.1"
    assert params(ndvi, resolution=1e-7)["resolution"] == "1e-07"
    assert params(ndvi, resolution=3)["resolution"] == "3"
    assert params(ndvi, mask_clouds=True)["mask_clouds"] == "true"


@pytest.mark.parametrize(("given", "expected"), [
    ("2025-06-30T12:00", "2025-06-30T12:00:00Z"),            # HTML datetime-local, taken as UTC
    ("2025-06-30T12:00:05", "2025-06-30T12:00:05Z"),
    ("2025-06-30T14:00:00+02:00", "2025-06-30T12:00:00Z"),   # RFC 3339, normalised to UTC
    ("2025-06-30t12:00:00.5z", "2025-06-30T12:00:00.500000Z"),
])
def test_datetimes_become_rfc3339_utc(ndvi: dict[str, Any], given: str, expected: str) -> None:
    assert params(ndvi, end=given)["end"] == expected


def test_ogc_forms_are_unwrapped(ndvi: dict[str, Any]) -> None:
    out = params(
        ndvi,
        area={"type": "Feature", "properties": {"name": "x"}, "geometry": SQUARE},
        start={"value": "2025-06-02", "mediaType": "text/plain"},
        bbox={"bbox": [170, -10, -170, 10], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
    )
    assert json.loads(out["area"]) == SQUARE
    assert out["start"] == "2025-06-02"
    assert out["bbox"] == "[170,-10,-170,10]"  # crossing the antimeridian is allowed
    heights = {"bbox": [1, 2, -5, 3, 4, 10], "crs": "http://www.opengis.net/def/crs/OGC/0/CRS84h"}
    assert params(ndvi, bbox=heights)["bbox"] == "[1,2,-5,3,4,10]"


def test_a_link_is_passed_as_its_url_only_for_string_inputs() -> None:
    description = {"inputs": {
        "source": {"title": "source", "schema": {"type": "string", "format": "uri"}, "minOccurs": 1},
        "area": {"title": "area", "schema": {"type": "object", "format": "geojson-geometry"}, "minOccurs": 0},
    }}
    url = "https://example.org/scene.tif"
    assert to_parameters(description, {"source": {"href": url, "type": "image/tiff"}}) == {"source": url}
    with pytest.raises(InvalidParameterValue, match="by reference") as err:
        to_parameters(description, {"source": url, "area": {"href": "https://example.org/area.geojson"}})
    assert err.value.name == "area"


# Each bad input → InvalidParameterValue naming that input, with a message that says what is wrong.
BAD = [
    ({"colour": "red"}, "colour", "unknown input 'colour'"),
    ({"cloud_cover": "many"}, "cloud_cover", "is not of type 'integer'"),
    ({"cloud_cover": True}, "cloud_cover", "is not of type 'integer'"),
    ({"cloud_cover": 101}, "cloud_cover", "maximum of 100"),
    ({"collection": "modis"}, "collection", "is not one of"),
    ({"mask_clouds": "yes"}, "mask_clouds", "is not of type 'boolean'"),
    ({"resolution": None}, "resolution", "is not of type 'number'"),
    ({"resolution": float("nan")}, "resolution", "not finite"),
    ({"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}, "area", "not a well-formed GeoJSON"),
    ({"area": {"type": "Point", "coordinates": "here"}}, "area", "['coordinates'] is invalid"),
    ({"area": {"type": "MultiPolygon", "coordinates": [[[1, 2]]]}}, "area", "not a well-formed GeoJSON"),
    ({"area": {"type": "GeometryCollection", "geometries": [{"type": "Point"}]}}, "area", "well-formed"),
    ({"area": BOWTIE}, "area", "not a valid geometry: Self-intersection"),
    ({"area": {"type": "Polygon", "coordinates": []}}, "area", "empty geometry"),
    ({"area": {"type": "Circle", "coordinates": [0, 0]}}, "area", "is not one of"),
    ({"area": {"type": "Point", "coordinates": [200, 0]}}, "area", "outside longitude"),
    ({"area": {"type": "FeatureCollection", "features": []}}, "area", "not a FeatureCollection"),
    ({"area": "POLYGON((0 0, 1 1, 1 0, 0 0))"}, "area", "is not of type 'object'"),
    ({"bbox": [1, 2, 3]}, "bbox", "bbox"),
    ({"bbox": [1, 2, 3, "4"]}, "bbox", "is not of type 'number'"),
    ({"bbox": [0, 10, 1, 5]}, "bbox", "minimum latitude 10 is above the maximum 5"),
    ({"bbox": [0, -95, 1, 5]}, "bbox", "latitudes must be within [-90, 90]"),
    ({"bbox": [0, 0, 181, 5]}, "bbox", "longitudes must be within [-180, 180]"),
    ({"bbox": {"bbox": [0, 0, 1, 1], "crs": "EPSG:4326"}}, "bbox", "is not one of"),
    ({"bbox": [0, 0, 0, 1, 1, -1]}, "bbox", "minimum height"),
    ({"start": "2025-13-01"}, "start", "must be a date YYYY-MM-DD"),
    ({"start": "01.06.2025"}, "start", "must be a date YYYY-MM-DD"),
    ({"start": "2025-6-1"}, "start", "must be a date YYYY-MM-DD"),
    ({"end": "2025-06-30"}, "end", "must be a date-time"),
    ({"end": "2025-06-30T25:00"}, "end", "must be a date-time"),
    ({"end": "yesterday"}, "end", "must be a date-time"),
    ({"run_id": "{{workflow.name}}"}, "run_id", "contains '{{'"),
    ({"run_id": "a {{=sprig.env('X')}} b"}, "run_id", "template expression"),
    ({"run_id": "x" * (64 * 1024 + 1)}, "run_id", "more than the limit of 65536 bytes"),
    ({"password": "hunter2"}, "password", "looks like a secret"),
    ({"AWS_SECRET_ACCESS_KEY": "abc"}, "AWS_SECRET_ACCESS_KEY", "looks like a secret"),
]


@pytest.mark.parametrize(("inputs", "name", "fragment"), BAD, ids=[f"{b[1]}:{b[2][:30]}" for b in BAD])
def test_bad_input_is_refused_naming_it(ndvi: dict[str, Any], inputs: dict[str, Any], name: str,
                                        fragment: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        params(ndvi, **inputs)
    assert type(err.value) is InvalidParameterValue
    assert err.value.name == name
    assert err.value.http_status == HTTPStatus.BAD_REQUEST
    assert f"'{name}'" in err.value.message
    assert fragment in err.value.message


def test_a_loose_configured_schema_still_gets_the_format_checks() -> None:
    loose = {"inputs": {name: {"schema": {"format": kind}, "minOccurs": 0} for name, kind in
                        [("box", "ogc-bbox"), ("day", "date"), ("area", "geojson-geometry")]}}
    for inputs, message in [({"box": {"bbox": [1, 2]}}, "bbox must be 4 or 6 numbers"),
                            ({"box": {"bbox": [1, 2, True, 4]}}, "bbox must be 4 or 6 numbers"),
                            ({"day": 20250601}, "must be a string (date)"),
                            ({"area": "POINT (1 2)"}, "must be a JSON object (geojson-geometry)")]:
        with pytest.raises(InvalidParameterValue, match=re.escape(message)) as err:
            to_parameters(loose, inputs)
        assert err.value.name == next(iter(inputs))


def test_missing_required_input(ndvi: dict[str, Any]) -> None:
    with pytest.raises(MissingParameterValue) as err:
        to_parameters(ndvi, {"end": "2025-06-30T12:00"})
    assert err.value.name == "area"
    assert err.value.ogc_code == "MissingParameterValue"
    assert "input 'area' is required" in err.value.message


@pytest.mark.parametrize("inputs", [["area"], "area", 3])
def test_inputs_must_be_an_object(ndvi: dict[str, Any], inputs: Any) -> None:
    with pytest.raises(InvalidParameterValue, match="must be a JSON object"):
        to_parameters(ndvi, inputs)


def test_the_inputs_together_have_a_limit(ndvi: dict[str, Any]) -> None:
    limits = Limits(value_bytes=300, total_bytes=320)
    inputs = {"area": SQUARE, "end": "2025-06-30T12:00", "run_id": "r" * 250}
    with pytest.raises(InvalidParameterValue, match="the inputs together are"):
        to_parameters(ndvi, inputs, limits)
    assert to_parameters(ndvi, {**inputs, "run_id": "r" * 10}, limits)["run_id"] == "r" * 10


def test_a_declared_secret_input_is_refused_and_never_echoed() -> None:
    """Secrets never travel as parameters, even where a template declares one: it uses secretKeyRef."""
    description = {"inputs": {"api_token": {"title": "t", "schema": {"type": "string", "maxLength": 8},
                                            "minOccurs": 1}}}
    for value in ("s3cr3t", "supersecretvalue"):
        with pytest.raises(InvalidParameterValue, match="looks like a secret") as err:
            to_parameters(description, {"api_token": value})
        assert err.value.name == "api_token"
        assert value not in err.value.message


def test_a_secret_looking_key_inside_a_value_is_refused_and_never_echoed() -> None:
    description = {"inputs": {"options": {"title": "o", "schema": {"type": "object"}, "minOccurs": 0},
                              "layers": {"title": "l", "schema": {"type": "array"}, "minOccurs": 0}}}
    for inputs in ({"options": {"mode": "x", "auth": {"password": "hunter2"}}},
                   {"layers": [{"name": "a"}, {"api_key": "hunter2"}]}):
        with pytest.raises(InvalidParameterValue, match="looks like a secret") as err:
            to_parameters(description, inputs)
        assert "hunter2" not in err.value.message
    assert to_parameters(description, {"options": {"mode": "x"}}) == {"options": '{"mode":"x"}'}


def test_an_undeclared_secret_is_never_echoed(ndvi: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        params(ndvi, client_secret="hunter2")
    assert "hunter2" not in err.value.message


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("db_passwd", True), ("GITHUB_TOKEN", True), ("apikey", True), ("api-key", True),
    ("Api_Key", True), ("aws_access_key_id", True), ("credentials", True), ("private_key", True),
    ("client_secret", True), ("passphrase", True),
    ("message", False), ("area", False), ("bbox", False), ("keyword", False), ("author", False),
])
def test_looks_secret(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_mask_hides_secret_values_at_any_depth() -> None:
    inputs = {"message": "hi", "password": "hunter2",
              "options": {"token": "abc", "nested": [{"api_key": 1, "n": 2}]}}
    masked = mask(inputs)
    assert masked == {"message": "hi", "password": MASK,
                      "options": {"token": MASK, "nested": [{"api_key": MASK, "n": 2}]}}
    assert inputs["password"] == "hunter2"  # a copy: the request itself is untouched
