"""OGC execute inputs → Argo parameter strings, refusing anything that should not reach Argo.

Every input reaches Argo as one string parameter (design.md): strings as they are, booleans as
``true``/``false``, numbers in their shortest form (``3.0`` → ``3``, ``0.1`` → ``0.1``), objects and
arrays as compact JSON. In particular a bbox is the compact JSON array ``[minx,miny,maxx,maxy]``
(6 numbers with heights), a geometry the GeoJSON geometry object, a date-time RFC 3339 in UTC.
The order of the checks is part of the contract:

1. shape: a mapping of known input names; secret-looking names refused, even where a template declares
   them (secrets never travel as parameters: a template reads them with ``secretKeyRef``); missing
   required inputs (``minOccurs`` > 0, no default) refused; absent optional inputs are
   left out, so Argo applies the template's own default;
2. size of each value (and of all together), before any costly parsing;
3. unwrapping OGC forms: a qualified value ``{"value": …, "mediaType": …}`` gives its value; a link
   ``{"href": …}`` is accepted only where the schema is a plain string (or ``format: uri``) and is
   passed on as the URL (we never fetch it); a bbox input also takes a bare array; a GeoJSON
   ``Feature`` for a geometry input gives its geometry (a FeatureCollection is refused: one input
   is one geometry);
4. JSON-Schema validation against the described schema (OpenAPI 3.0 flavour, hence Draft 4);
5. meaning: bbox order and ranges, GeoJSON parsed and valid with shapely, dates and date-times;
   an HTML ``datetime-local`` value (``YYYY-MM-DDThh:mm``, no offset) is taken as UTC;
6. the final value: no secret-looking key in an object or array (it would travel as a parameter), and
   no ``{{`` in its string (Argo would evaluate it as a template expression).

Error messages name the input and never echo a value of a secret-looking input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from jsonschema import Draft4Validator, Draft6Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry import shape
from shapely.validation import explain_validity

from .errors import InvalidParameterValue, MissingParameterValue

MASK = "***"

_SECRET = re.compile(
    r"pass(word|wd|phrase)|secret|token|api[-_]?key|credential|private[-_]?key|access[-_]?key", re.IGNORECASE)
# OpenAPI 3.0 schemas are Draft 4 (boolean exclusiveMinimum), but 3.0 is an integer as in later drafts:
# JSON does not tell 3 from 3.0, and a client should not fail on how its library prints numbers.
SchemaValidator = validators.extend(Draft4Validator, type_checker=Draft6Validator.TYPE_CHECKER)
_QUALIFIED_KEYS = frozenset({"value", "mediaType", "encoding", "schema"})
_LINK_KEYS = frozenset({"href", "rel", "type", "hreflang", "title"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# HTML datetime-local (seconds optional) and RFC 3339 (fraction and offset optional here)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class Limits:
    """Byte limits on the Argo parameters: a workflow object must stay far below etcd's 1.5 MiB."""

    value_bytes: int = 64 * 1024
    total_bytes: int = 256 * 1024


def looks_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def _holds_secret_key(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(looks_secret(str(k)) or _holds_secret_key(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_secret_key(v) for v in value)


def mask(value: Any) -> Any:
    """A copy of ``value`` (the inputs) with values under secret-looking names replaced by ``***``.

    Nested mappings are masked too: this is what is stored, echoed and written into annotations.
    """
    if isinstance(value, Mapping):
        return {k: MASK if looks_secret(str(k)) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def to_parameters(description: Mapping[str, Any], inputs: Any, limits: Limits = Limits()) -> dict[str, str]:
    """Argo parameters for an execute request, or ``InvalidParameterValue`` and nothing submitted."""
    described: Mapping[str, Any] = description.get("inputs") or {}
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        raise InvalidParameterValue("'inputs' must be a JSON object mapping input names to values")
    for name in inputs:
        if looks_secret(str(name)):
            raise InvalidParameterValue(
                f"input '{name}' looks like a secret: secrets never travel as parameters (a template reads "
                "them with secretKeyRef)", name=str(name))
        if name not in described:
            known = ", ".join(sorted(described)) or "none"
            raise InvalidParameterValue(f"unknown input '{name}' (this process knows: {known})",
                                        name=str(name))
    for name, spec in described.items():
        if name not in inputs and spec.get("minOccurs", 1) > 0 and "default" not in spec.get("schema", {}):
            raise MissingParameterValue(f"input '{name}' is required", name=name)

    parameters = {name: _parameter(name, value, described[name], limits) for name, value in inputs.items()}
    total = sum(len(v.encode()) for v in parameters.values())
    if total > limits.total_bytes:
        raise InvalidParameterValue(f"the inputs together are {total} bytes, more than the limit of "
                                    f"{limits.total_bytes} bytes")
    return parameters


def _parameter(name: str, value: Any, spec: Mapping[str, Any], limits: Limits) -> str:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.value_bytes:
        raise InvalidParameterValue(f"input '{name}' is {size} bytes, more than the limit of "
                                    f"{limits.value_bytes} bytes", name=name)
    value = _value(name, value, spec.get("schema") or {})
    if _holds_secret_key(value):
        raise InvalidParameterValue(f"input '{name}' holds a key that looks like a secret: secrets never "
                                    "travel as parameters (a template reads them with secretKeyRef)",
                                    name=name)
    text = _encode(name, value)
    if "{{" in text:
        raise InvalidParameterValue(f"input '{name}' contains '{{{{', which Argo would evaluate as a "
                                    "template expression", name=name)
    return text


def _value(name: str, value: Any, schema: Mapping[str, Any]) -> Any:
    """One occurrence: unwrapped, schema-validated, checked for meaning; dates normalised."""
    value = _unwrap(name, value, schema)
    error = best_match(SchemaValidator(schema).iter_errors(value))
    if error is not None:
        raise InvalidParameterValue(f"input '{name}' {_explain(error)}", name=name)
    kind = schema.get("format")
    shape_needed = {"ogc-bbox": Mapping, "geojson-geometry": Mapping, "date": str, "date-time": str}.get(kind)
    if shape_needed is not None and not isinstance(value, shape_needed):  # a configured schema may be loose
        what = "a JSON object" if shape_needed is Mapping else "a string"
        raise InvalidParameterValue(f"input '{name}' must be {what} ({kind})", name=name)
    if kind == "ogc-bbox":
        return _bbox(name, value)
    elif kind == "geojson-geometry":
        _check_geometry(name, value)
    elif kind == "date":
        _check_date(name, value)
    elif kind == "date-time":
        return _datetime(name, value)
    return value


def _unwrap(name: str, value: Any, schema: Mapping[str, Any]) -> Any:
    qualified = isinstance(value, Mapping) and "value" in value and set(value) <= _QUALIFIED_KEYS
    if qualified and "value" not in (schema.get("properties") or {}):
        value = value["value"]
    if isinstance(value, Mapping) and "href" in value and set(value) <= _LINK_KEYS:
        if schema.get("type") != "string" or schema.get("format", "uri") not in ("uri", "url"):
            raise InvalidParameterValue(f"input '{name}' cannot be given by reference (href): "
                                        "send its value inline", name=name)
        return value["href"]
    if schema.get("format") == "ogc-bbox" and isinstance(value, list):
        return {"bbox": value}
    if schema.get("format") == "geojson-geometry" and isinstance(value, Mapping):
        if value.get("type") == "Feature":
            return value.get("geometry")
        if value.get("type") == "FeatureCollection":
            raise InvalidParameterValue(f"input '{name}' must be one GeoJSON geometry (or a Feature), "
                                        "not a FeatureCollection", name=name)
    return value


def _explain(error: ValidationError) -> str:
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return f"{where} is invalid: {message}".lstrip()


def _bbox(name: str, value: Mapping[str, Any]) -> list[float]:
    """The bare coordinate array, checked in the lon/lat order of CRS84.

    The schema allows only CRS84 (4 numbers) and CRS84h (6, with heights), so the array alone says
    everything and a step reads it with one ``json.loads``. ``minx > maxx`` is a box crossing the
    antimeridian (as in OGC API and STAC), so it is allowed.
    """
    box = value.get("bbox")
    if not isinstance(box, list) or len(box) not in (4, 6) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in box):
        raise InvalidParameterValue(f"input '{name}': bbox must be 4 or 6 numbers", name=name)
    half = len(box) // 2
    minx, miny, maxx, maxy = box[0], box[1], box[half], box[half + 1]
    if not all(math.isfinite(v) for v in box):
        raise InvalidParameterValue(f"input '{name}': bbox values must be finite numbers", name=name)
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise InvalidParameterValue(f"input '{name}': bbox longitudes must be within [-180, 180]", name=name)
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InvalidParameterValue(f"input '{name}': bbox latitudes must be within [-90, 90]", name=name)
    if miny > maxy:
        raise InvalidParameterValue(f"input '{name}': bbox minimum latitude {miny} is above the maximum "
                                    f"{maxy}", name=name)
    if half == 3 and box[2] > box[5]:
        raise InvalidParameterValue(f"input '{name}': bbox minimum height is above the maximum", name=name)
    return box


def _check_geometry(name: str, value: Mapping[str, Any]) -> None:
    try:
        geometry = shape(value)
    except (ShapelyError, GEOSException, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InvalidParameterValue(f"input '{name}' is not a well-formed GeoJSON {value.get('type')}: "
                                    f"{str(exc).strip()[:200]}", name=name) from None
    if geometry.is_empty:
        raise InvalidParameterValue(f"input '{name}' is an empty geometry", name=name)
    if not geometry.is_valid:
        raise InvalidParameterValue(f"input '{name}' is not a valid geometry: {explain_validity(geometry)}",
                                    name=name)
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidParameterValue(f"input '{name}' has coordinates outside longitude [-180, 180] / "
                                    "latitude [-90, 90] (GeoJSON is CRS84)", name=name)


def _check_date(name: str, value: str) -> None:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise InvalidParameterValue(f"input '{name}' must be a date YYYY-MM-DD, not {value!r}"[:300],
                                    name=name) from None


def _datetime(name: str, value: str) -> str:
    """RFC 3339 in UTC (``2025-06-01T10:30:00Z``); a time without offset (HTML) is taken as UTC."""
    try:
        if not _DATETIME.fullmatch(value):
            raise ValueError
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterValue(f"input '{name}' must be a date-time YYYY-MM-DDThh:mm[:ss] or RFC 3339, "
                                    f"not {value!r}"[:300], name=name) from None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _encode(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError
            return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN and Infinity are no JSON, and no number a step could use
        raise InvalidParameterValue(f"input '{name}' contains a number that is not finite",
                                    name=name) from None
