"""WorkflowTemplate → OGC process description, and the cache that keeps Argo off the request path.

Where a description comes from:

- **inputs**: the parameters a client may set, i.e. the workflow arguments ``spec.arguments.parameters``
  (which templates read as ``{{workflow.parameters.x}}``) together with the entry template's
  ``inputs.parameters`` (Argo hands the workflow arguments to the entry template, so both are set by the
  same submitted argument). For a name in both, the workflow argument wins field by field (its value
  is what Argo uses). ``enum`` → schema ``enum``; a ``value``/``default`` → ``minOccurs: 0`` and schema
  ``default`` (not shown when it is an expression such as ``{{workflow.uid}}``); ``description`` kept.
  Parameters set from the cluster (``valueFrom``) are not inputs.
- **types**: every input is a string unless the annotation ``pygeoapi.io/inputs`` or the process
  configuration ``inputs`` (which wins, per input) says otherwise: a mapping of input name to a type
  keyword (``string number integer boolean date datetime bbox geometry``) or to a full OGC input
  description with a ``schema``. Defaults and enums of the template are converted to the type.
- **metadata**: title and description from ``workflows.argoproj.io/title`` / ``…/description``,
  ``pygeoapi.io/keywords`` (comma-separated), ``pygeoapi.io/version`` (default ``1.0.0``).
- **outputs**: configuration ``outputs`` or the annotation ``pygeoapi.io/outputs`` (name → media type or
  OGC output description); default one JSON output ``results``.
- **job control**: configuration ``job_control_options`` or the annotation
  ``pygeoapi.io/job-control-options`` (comma-separated ``sync-execute``/``async-execute``); default
  async only, so a client that sends no ``Prefer`` (eodash) gets a job to poll.

Every input has ``maxOccurs: 1``: one input is one Argo parameter (many values: an array schema).
Schemas use OpenAPI 3.0 keywords only, as OGC's ``process.yaml`` requires.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from hera.workflows.models import Arguments, Inputs, Parameter
from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from .argo import Template
from .errors import ArgoPluginError, ArgoUnavailable, ConfigurationError

LOGGER = logging.getLogger(__name__)

DEFAULT_ENTRYPOINT = "execute"
DEFAULT_VERSION = "1.0.0"
DEFAULT_JOB_CONTROL = ("async-execute",)
ANNOTATION_TITLE = "workflows.argoproj.io/title"
ANNOTATION_DESCRIPTION = "workflows.argoproj.io/description"
ANNOTATION_KEYWORDS = "pygeoapi.io/keywords"
ANNOTATION_VERSION = "pygeoapi.io/version"
ANNOTATION_INPUTS = "pygeoapi.io/inputs"
ANNOTATION_OUTPUTS = "pygeoapi.io/outputs"
ANNOTATION_JOB_CONTROL = "pygeoapi.io/job-control-options"
JOB_CONTROL_OPTIONS = ("sync-execute", "async-execute")

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
GEOMETRY_TYPES = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection"]

# Type keywords → schemas. ``format`` tells inputs.py which extra checks a value gets.
TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    # also accepted by inputs.py: HTML datetime-local, YYYY-MM-DDThh:mm[:ss], taken as UTC
    "datetime": {"type": "string", "format": "date-time"},
    # OGC bbox.yaml, inlined: a description must stand alone
    "bbox": {
        "type": "object",
        "format": "ogc-bbox",
        "required": ["bbox"],
        "properties": {
            "bbox": {"type": "array", "items": {"type": "number"},
                     "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
            "crs": {"type": "string", "format": "uri", "enum": [CRS84, CRS84H], "default": CRS84},
        },
    },
    "geometry": {
        "type": "object",
        "format": "geojson-geometry",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": GEOMETRY_TYPES},
            "coordinates": {"type": "array"},
            "geometries": {"type": "array", "items": {"type": "object"}},
        },
    },
}
# The keywords of an OpenAPI 3.0 schema object, which OGC's schema.yaml allows and nothing else: a
# JSON-Schema 2019+ keyword (const, examples, $schema, ...) would make the whole description invalid.
OAS_KEYWORDS = frozenset({
    "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
    "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
    "required", "enum", "type", "not", "allOf", "oneOf", "anyOf", "items", "properties",
    "additionalProperties", "description", "format", "default", "nullable", "readOnly", "writeOnly",
    "example", "deprecated", "contentMediaType", "contentEncoding", "contentSchema", "$ref",
})
RESULTS_OUTPUT = {
    "results": {
        "title": "Results",
        "description": "The results of the job: links to its outputs.",
        "schema": {"type": "object", "contentMediaType": "application/json"},
    }
}


class ProcessOptions(Protocol):
    """The per-process configuration this module reads (``settings.ProcessSettings`` provides it)."""

    @property
    def workflow_template(self) -> str: ...
    @property
    def cluster_scope(self) -> bool: ...
    @property
    def entrypoint(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any] | None: ...
    @property
    def outputs(self) -> Mapping[str, Any] | None: ...
    @property
    def job_control_options(self) -> Sequence[str] | None: ...


class TemplateSource(Protocol):
    """Where templates come from: ``argo.ArgoClient``."""

    def get_workflow_template(self, name: str, *, cluster_scope: bool = False) -> Template: ...


# --- description -----------------------------------------------------------------------------------


def entrypoint(template: Template, configured: str | None = None) -> str:
    """The entry template's name: configured, else the template's ``spec.entrypoint``, else ``execute``."""
    return configured or template.spec.entrypoint or DEFAULT_ENTRYPOINT


def describe_template(process_id: str, template: Template, options: ProcessOptions) -> dict[str, Any]:
    """The OGC process description (pygeoapi's processor metadata shape) of one template.

    Raises ``ConfigurationError`` naming the template when its annotations or the configuration
    cannot describe it (unknown entry template, unparsable annotation, a default not of its type).
    """
    name = template.metadata.name or process_id
    annotations = template.metadata.annotations or {}
    where = f"template {name}"
    keywords = [k.strip() for k in annotations.get(ANNOTATION_KEYWORDS, "").split(",") if k.strip()]
    return {
        "version": annotations.get(ANNOTATION_VERSION, DEFAULT_VERSION),
        "id": process_id,
        "title": annotations.get(ANNOTATION_TITLE, name),
        "description": annotations.get(ANNOTATION_DESCRIPTION, f"Runs the Argo WorkflowTemplate {name}."),
        "keywords": keywords,
        "links": [],
        "inputs": _inputs(template, options, where),
        "outputs": _outputs(
            options.outputs or _annotation(annotations, ANNOTATION_OUTPUTS, where) or RESULTS_OUTPUT, where),
        "jobControlOptions": list(options.job_control_options or _job_control(annotations, where)),
        "outputTransmission": ["value", "reference"],
    }


def _job_control(annotations: Mapping[str, str], where: str) -> tuple[str, ...]:
    text = annotations.get(ANNOTATION_JOB_CONTROL)
    if text is None:
        return DEFAULT_JOB_CONTROL
    options = tuple(o.strip() for o in text.split(",") if o.strip())
    if not options or set(options) - set(JOB_CONTROL_OPTIONS):
        raise ConfigurationError(f"{where}: annotation {ANNOTATION_JOB_CONTROL} must list "
                                 f"{' and/or '.join(JOB_CONTROL_OPTIONS)}, not {text!r}")
    return options


def placeholder(process_id: str, options: ProcessOptions, reason: str) -> dict[str, Any]:
    """What pygeoapi lists for a process that cannot be described now (Argo unreachable at start).

    It keeps ``/processes`` and OpenAPI generation working; executing it still answers 503.
    """
    return {
        "version": DEFAULT_VERSION,
        "id": process_id,
        "title": process_id,
        "description": f"This process cannot be described now: {reason}",
        "keywords": [],
        "links": [],
        "inputs": {},
        "outputs": _outputs(options.outputs or RESULTS_OUTPUT, f"process {process_id}"),
        "jobControlOptions": list(options.job_control_options or DEFAULT_JOB_CONTROL),
        "outputTransmission": ["value", "reference"],
    }


def _inputs(template: Template, options: ProcessOptions, where: str) -> dict[str, Any]:
    entry_name = entrypoint(template, options.entrypoint)
    entry = next((t for t in template.spec.templates or () if t.name == entry_name), None)
    if entry is None:
        raise ConfigurationError(f"{where}: no entry template named {entry_name!r}")
    arguments = {p.name: p for p in _parameters(template.spec.arguments)}
    entry_inputs = {p.name: p for p in _parameters(entry.inputs)}

    described: dict[str, Any] = {}
    for param_name in [*arguments, *(n for n in entry_inputs if n not in arguments)]:
        sources = [p for p in (arguments.get(param_name), entry_inputs.get(param_name)) if p is not None]
        if any(p.value_from is not None for p in sources):
            continue  # set from the cluster (ConfigMap, ...), not by a client
        default = next((v for p in sources for v in (p.value, p.default) if v is not None), None)
        text = next((p.description for p in sources if p.description), None)
        enum = next((p.enum for p in sources if p.enum), None)
        spec: dict[str, Any] = {"title": param_name}
        if text:
            spec["description"] = text
        spec["schema"] = {"type": "string"}
        spec["minOccurs"] = 0 if default is not None else 1
        described[param_name] = {"spec": spec, "enum": enum, "default": default}

    annotated = _annotation(template.metadata.annotations or {}, ANNOTATION_INPUTS, where)
    typed = {**annotated, **(options.inputs or {})}
    for param_name in typed:
        if param_name not in described:
            raise ConfigurationError(f"{where}: typed input {param_name!r} is not a parameter of the "
                                     f"workflow or of its entry template {entry_name!r}")
    return {n: _input(n, d, typed.get(n), where) for n, d in described.items()}


def _input(name: str, found: Mapping[str, Any], typed: Any, where: str) -> dict[str, Any]:
    spec = dict(found["spec"])
    if isinstance(typed, str):
        if typed not in TYPE_SCHEMAS:
            raise ConfigurationError(f"{where}: input {name!r} has unknown type {typed!r} "
                                     f"(known: {', '.join(TYPE_SCHEMAS)})")
        spec["schema"] = copy.deepcopy(TYPE_SCHEMAS[typed])
    elif isinstance(typed, Mapping) and isinstance(typed.get("schema"), Mapping):
        spec.update(copy.deepcopy(dict(typed)))
    elif typed is not None:
        raise ConfigurationError(f"{where}: input {name!r} must be a type keyword or an OGC input "
                                 "description with a 'schema'")
    spec["maxOccurs"] = 1
    schema = spec["schema"]
    _check_schema(schema, f"{where}: the schema of input {name!r}")
    if found["enum"] and "enum" not in schema:
        schema["enum"] = [_typed_value(name, v, schema, where) for v in found["enum"]]
    default = found["default"]
    if default is not None and "{{" not in default and "default" not in schema:
        schema["default"] = _typed_value(name, default, schema, where)
    if "default" in schema:
        if not Draft4Validator(schema).is_valid(schema["default"]):
            raise ConfigurationError(f"{where}: the default of input {name!r} does not fit its schema")
        spec["minOccurs"] = 0
    return spec


def _typed_value(name: str, text: str, schema: Mapping[str, Any], where: str) -> Any:
    """A template's string (default or enum value) as a value of the input's type."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            return int(number) if number.is_integer() else number
        if kind == "boolean":
            if text.strip().lower() not in ("true", "false"):
                raise ValueError(text)
            return text.strip().lower() == "true"
        if kind in ("object", "array"):
            value = json.loads(text)
            bare_bbox = schema.get("format") == "ogc-bbox" and isinstance(value, list)
            return {"bbox": value, "crs": CRS84} if bare_bbox else value
    except ValueError:
        raise ConfigurationError(f"{where}: {text!r} (default or enum of input {name!r}) is not "
                                 f"a valid {schema.get('format') or kind}") from None
    return text


def _parameters(holder: Arguments | Inputs | None) -> list[Parameter]:
    return list((holder.parameters if holder else None) or ())


def _outputs(declared: Mapping[str, Any], where: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for name, value in declared.items():
        if isinstance(value, str):
            kind = "object" if value == "application/json" else "string"
            outputs[name] = {"title": name, "schema": {"type": kind, "contentMediaType": value}}
        elif isinstance(value, Mapping) and isinstance(value.get("schema"), Mapping):
            _check_schema(value["schema"], f"{where}: the schema of output {name!r}")
            outputs[name] = {"title": name, **copy.deepcopy(dict(value))}
        else:
            raise ConfigurationError(f"{where}: output {name!r} must be a media type or an OGC output "
                                     "description with a 'schema'")
    return outputs


def _check_schema(schema: Mapping[str, Any], what: str) -> None:
    try:
        Draft4Validator.check_schema(schema)
    except SchemaError as err:
        raise ConfigurationError(f"{what} is not valid: {err.message}") from None
    unknown = sorted(_keywords(schema) - OAS_KEYWORDS)
    if unknown:
        raise ConfigurationError(f"{what} uses {', '.join(unknown)}: OGC process descriptions allow "
                                 "OpenAPI 3.0 schema keywords only")


def _keywords(schema: Any) -> set[str]:
    """Every keyword used in a schema and its subschemas (property names are not keywords)."""
    if not isinstance(schema, Mapping):
        return set()
    found = set(schema)
    subschemas = [schema.get(k) for k in ("not", "items", "additionalProperties")]
    subschemas += [s for k in ("allOf", "oneOf", "anyOf") for s in schema.get(k) or ()]
    subschemas += list((schema.get("properties") or {}).values())
    for sub in subschemas:
        found |= _keywords(sub)
    return found


def _annotation(annotations: Mapping[str, str], key: str, where: str) -> dict[str, Any]:
    text = annotations.get(key)
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigurationError(f"{where}: annotation {key} is not YAML or JSON: {err}") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: annotation {key} must be a mapping of names")
    return dict(value)


# --- cache -----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    options: ProcessOptions
    lock: threading.Lock = field(default_factory=threading.Lock)
    description: dict[str, Any] | None = None
    entry_template: str | None = None
    error: ArgoPluginError | None = None
    next_load: float = float("-inf")


class ProcessCatalog:
    """Descriptions of the configured processes, loaded lazily and kept for ``ttl`` seconds.

    No network at construction (pygeoapi builds managers to write its OpenAPI document). Within the
    TTL nobody calls Argo; after it, one caller reloads while others keep answering the previous
    description. A failed load is not retried for ``retry_after`` seconds; meanwhile the last good
    description is served (with a warning logged), or ``ArgoUnavailable`` (503) if there is none.
    Callers get deep copies: pygeoapi edits processor metadata in place.
    """

    def __init__(self, argo: TemplateSource, processes: Mapping[str, ProcessOptions], *,
                 ttl: float = 60.0, retry_after: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._argo = argo
        self._entries = {pid: _Entry(options) for pid, options in processes.items()}
        self._ttl = ttl
        self._retry_after = min(retry_after, ttl)
        self._clock = clock

    def describe(self, process_id: str) -> dict[str, Any]:
        """The description of a configured process (``KeyError`` for one that is not configured)."""
        entry = self._entries[process_id]
        # with a description in hand, never wait for someone else's reload: answer the old one
        if self._clock() >= entry.next_load and entry.lock.acquire(blocking=entry.description is None):
            try:
                if self._clock() >= entry.next_load:
                    self._load(process_id, entry)
            finally:
                entry.lock.release()
        if entry.description is None:
            reason = entry.error.message if entry.error else "not loaded yet"
            raise ArgoUnavailable(f"process {process_id} cannot be described now: {reason}")
        return copy.deepcopy(entry.description)

    def entry_template(self, process_id: str) -> str:
        """The template a workflow of this process starts at: submit it as ``spec.entrypoint``, because
        a WorkflowTemplate without its own ``spec.entrypoint`` (the ``execute`` convention) fails in
        Argo otherwise. Raises ``ArgoUnavailable`` like ``describe``."""
        self.describe(process_id)
        return self._entries[process_id].entry_template or DEFAULT_ENTRYPOINT

    def describe_or_placeholder(self, process_id: str) -> dict[str, Any]:
        try:
            return self.describe(process_id)
        except ArgoUnavailable as err:
            return placeholder(process_id, self._entries[process_id].options, err.message)

    def _load(self, process_id: str, entry: _Entry) -> None:
        options = entry.options
        try:
            template = self._argo.get_workflow_template(options.workflow_template,
                                                        cluster_scope=options.cluster_scope)
            entry.description = describe_template(process_id, template, options)
            entry.entry_template = entrypoint(template, options.entrypoint)
            entry.error = None
            entry.next_load = self._clock() + self._ttl
        except ArgoPluginError as err:
            entry.error = err
            entry.next_load = self._clock() + self._retry_after
            kept = "keeping the last good description" if entry.description else "no description yet"
            LOGGER.warning("process %s: describing template %s failed (%s): %s", process_id,
                           options.workflow_template, kept, err.message)
