"""Workflow outputs → OGC results, in two stages.

``collect`` runs once, when a job succeeds: it reads the workflow's results manifest (a global
output parameter) or, without one, its S3 output artifacts, and returns the *stored* form kept in
the job record: object URLs (``s3://bucket/key``) and inline values, never presigned URLs (they
expire). ``render`` runs on every read and turns the stored form into the results document, signing
``s3://`` URLs afresh each time.

Stored form (JSON), one entry per output id::

    {"<output>": {"urls": ["s3://b/k1.tif", "https://…"], "mimetype": "image/tiff"}}   # files
    {"<output>": {"value": <any JSON>, "mediaType": "application/json"}}                # a value

Results document (design.md): files as OGC links that also carry eodash's ``urls``/``mimetype``;
values as OGC qualified values ``{"value": …, "mediaType": …}``. The qualified form is the only
one OGC 1.0 ``results.yaml`` allows for object values (``inputValueNoObject`` excludes objects),
keeps the media type, and is what pygeoapi's own processors answer for ``document``; sync chart
processes are read with ``response=raw``, which answers the bare value (``raw_value``).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pygeoapi_argo import outputs
from pygeoapi_argo.errors import InvalidParameterValue, ResultsError, UnknownOutput
from pygeoapi_argo.settings import OutputRule
from pygeoapi_argo.storage import S3Url

MEDIA_TYPES = {
    ".tif": "image/tiff", ".tiff": "image/tiff",
    ".geojson": "application/geo+json", ".json": "application/geo+json",
    ".fgb": "application/vnd.flatgeobuf",
    ".csv": "text/csv", ".txt": "text/plain", ".log": "text/plain", ".html": "text/html",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".zip": "application/zip", ".tgz": "application/gzip", ".gz": "application/gzip",
    ".nc": "application/x-netcdf", ".parquet": "application/vnd.apache.parquet",
    ".gpkg": "application/geopackage+sqlite3", ".pdf": "application/pdf", ".xml": "application/xml",
}
OCTET_STREAM = "application/octet-stream"
LOG_ARTIFACT = "main-logs"  # Argo's archiveLogs artifact: a log, not a result
DEFAULT_OUTPUT = "result"

Stored = dict[str, dict[str, Any]]


def media_type(name: str) -> str | None:
    """The media type of a file name or key by its extension, ``None`` when unknown."""
    return MEDIA_TYPES.get(posixpath.splitext(name.split("?", 1)[0])[1].lower())


# --- collect: at completion --------------------------------------------------------------------


def collect(workflow: Any, *, list_urls: Callable[[str], Iterable[str]], parameter: str = "results",
            default_bucket: str | None = None, output_id: str = DEFAULT_OUTPUT, prefix: str | None = None,
            rules: Sequence[OutputRule] = ()) -> Stored:
    """The stored results of a finished workflow (Argo JSON, or a hera ``Workflow``).

    With an outputs ``prefix`` (``outputs.prefix_url``) the files under it, grouped by ``rules``,
    are the file outputs; a manifest then adds only its inline values (its file entries name the
    files the prefix lists already), and artifacts are not looked at.

    The global output parameter ``parameter`` (EOX's workflows call theirs ``urls``) wins when
    present: it usually lists the very files the ``/output`` artifact uploaded, so adding both would
    name every file twice. Without it, the S3 output artifacts are the results.

    ``list_urls`` lists an ``s3://`` prefix (``Storage.list``): an artifact saved with ``archive:
    none`` from a directory is one object per file under its key. ``default_bucket`` holds bare keys
    and key-only artifacts (the artifact repository's bucket). Results that are not a map of outputs
    (eodash's ``{"urls": […]}``, a URL, a chart's JSON) become the single output ``output_id``.
    """
    status = _as_json(workflow).get("status") or {}
    manifest = next((p["value"] for p in (status.get("outputs") or {}).get("parameters") or ()
                     if p.get("name") == parameter and p.get("value") not in (None, "")), None)
    if prefix is not None:
        files = outputs.group(list_urls(prefix), prefix, rules, media_type)
        values = _from_manifest(manifest, default_bucket, output_id) if manifest is not None else {}
        return {**{k: v for k, v in values.items() if "value" in v and k not in files}, **files}
    if manifest is not None:
        return _from_manifest(manifest, default_bucket, output_id)
    return _from_artifacts(status, default_bucket, list_urls)


def _as_json(workflow: Any) -> Mapping[str, Any]:
    if isinstance(workflow, Mapping):
        return workflow
    return workflow.model_dump(by_alias=True, exclude_none=True, mode="json")


def _from_manifest(text: str, bucket: str | None, output_id: str) -> Stored:
    try:
        doc = json.loads(text)
    except ValueError:
        doc = text  # a plain string parameter: a URL, a key or just text
    if isinstance(doc, dict) and not _is_single(doc) and all(_is_output(v) for v in doc.values()):
        return {name: _output(value, bucket, f"output {name!r}") for name, value in doc.items()}
    return {output_id: _output(doc, bucket, "the results manifest")}


def _is_single(doc: dict[str, Any]) -> bool:
    """eodash's ``{"urls": […]}``, one link or one qualified value: a single output, not a map."""
    return (isinstance(doc.get("urls"), list) or isinstance(doc.get("href"), str)
            or ("value" in doc and set(doc) <= {"value", "mediaType", "encoding", "schema"}))


def _is_output(value: Any) -> bool:
    """Whether a manifest map value reads as one OGC/eodash output rather than plain data."""
    if isinstance(value, dict):
        return "href" in value or "value" in value or isinstance(value.get("urls"), list)
    if isinstance(value, str):
        return _is_url(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and _is_url(v) for v in value)


def _output(value: Any, bucket: str | None, where: str) -> dict[str, Any]:
    """One output in stored form. In ``href`` and ``urls`` every string is a file reference; at
    the top of a manifest a string is one only if it looks like a URL or a file key."""
    if isinstance(value, dict) and "href" in value:
        return _files([value["href"]], value.get("type") or value.get("mediaType"), bucket, where)
    if isinstance(value, dict) and isinstance(value.get("urls"), list):
        kind = value.get("mimetype") or value.get("mediaType") or value.get("type")
        return _files(value["urls"], kind, bucket, where)
    if isinstance(value, dict) and "value" in value:
        return _value(value["value"], value.get("mediaType"))
    if isinstance(value, str) and _is_reference(value):
        return _files([value], None, bucket, where)
    if isinstance(value, list) and value and all(isinstance(v, str) and _is_reference(v) for v in value):
        return _files(value, None, bucket, where)
    return _value(value, None)


def _value(value: Any, kind: str | None) -> dict[str, Any]:
    kind = kind or ("text/plain" if isinstance(value, str) else "application/json")
    return {"value": value, "mediaType": kind}


def _files(refs: list[Any], kind: str | None, bucket: str | None, where: str) -> dict[str, Any]:
    """Manifest order is kept: the author's band order (eodash reads several TIFFs as bands)."""
    if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        raise ResultsError(f"{where}: file references must be non-empty strings")
    urls = [_url(ref.strip(), bucket, where) for ref in refs]
    return {"urls": urls, "mimetype": kind or media_type(urls[0]) or OCTET_STREAM}


def _url(ref: str, bucket: str | None, where: str) -> str:
    if ref.lower().startswith(("http://", "https://")):
        return ref
    if ref.lower().startswith("s3://"):
        try:
            location = S3Url.parse(ref)
        except ValueError as exc:
            raise ResultsError(f"{where}: {exc}") from None
        if location.key:
            return str(location)
        raise ResultsError(f"{where}: {ref!r} names no object")
    if "://" in ref:
        raise ResultsError(f"{where}: {ref!r}: only s3:// and http(s):// URLs are results")
    if bucket is None:
        raise ResultsError(f"{where}: bare key {ref!r}, but no default bucket is configured")
    return str(S3Url(bucket, ref.lstrip("/")))


def _is_url(text: str) -> bool:
    return text.lower().startswith(("s3://", "http://", "https://"))


def _is_reference(text: str) -> bool:
    """A URL, or a bare key: one word with a known file extension (``jobs/1/out.tif``)."""
    return _is_url(text) or (not any(c.isspace() for c in text) and media_type(text) is not None)


def _from_artifacts(status: Mapping[str, Any], bucket: str | None,
                    list_urls: Callable[[str], Iterable[str]]) -> Stored:
    """Workflow-level artifacts (``globalName``) when the template declares any: those are the
    outputs its author chose; otherwise every node's S3 artifacts (deduplicated: a steps or DAG
    node re-exporting a child's artifact names the same object)."""
    declared = [a for a in (status.get("outputs") or {}).get("artifacts") or ()
                if a.get("name") != LOG_ARTIFACT]
    if not declared:
        nodes = sorted((status.get("nodes") or {}).values(),
                       key=lambda n: (n.get("startedAt") or "", n.get("id") or ""))
        declared = [a for node in nodes for a in (node.get("outputs") or {}).get("artifacts") or ()
                    if a.get("name") != LOG_ARTIFACT]
    stored: Stored = {}
    seen: set[str] = set()
    for artifact in declared:
        s3 = artifact.get("s3") or {}
        if not s3.get("key"):
            continue  # not in S3 (git, http, …): nothing we can sign
        where = f"artifact {artifact.get('name')!r}"
        if not (s3.get("bucket") or bucket):
            raise ResultsError(f"{where}: key-only artifact, but no default bucket is configured")
        location = str(S3Url(s3.get("bucket") or bucket, s3["key"].strip("/")))
        if location in seen:
            continue
        seen.add(location)
        for name, entry in _artifact_outputs(artifact, location, list_urls).items():
            if name in stored:  # the same artifact name from several pods (fan-out): one output
                entry = {**stored[name], "urls": sorted({*stored[name]["urls"], *entry["urls"]})}
            stored[name] = entry
    return stored


def _artifact_outputs(artifact: Mapping[str, Any], location: str,
                      list_urls: Callable[[str], Iterable[str]]) -> Stored:
    """An unarchived directory is one object per file under the key: one output per media type
    (``output``, or ``output.tif`` and ``output.png`` when they differ), files sorted by key."""
    name = artifact["name"]
    files = sorted(list_urls(location + "/")) if "none" in (artifact.get("archive") or {}) else []
    if not files:
        kind = media_type(location) or media_type(artifact.get("path") or "") or OCTET_STREAM
        return {name: {"urls": [location], "mimetype": kind}}
    groups: dict[str, list[str]] = {}
    for url in files:
        groups.setdefault(media_type(url) or OCTET_STREAM, []).append(url)
    if len(groups) == 1:
        [(kind, urls)] = groups.items()
        return {name: {"urls": urls, "mimetype": kind}}
    return {f"{name}{posixpath.splitext(urls[0])[1]}": {"urls": urls, "mimetype": kind}
            for kind, urls in groups.items()}


# --- on every read -----------------------------------------------------------------------------


def select_outputs(description: Mapping[str, Any], requested: Any) -> dict[str, Any] | None:
    """Check an execute request's ``outputs`` against the process description before anything is
    submitted; ``None`` (or ``{}``) selects every output."""
    if requested in (None, {}):
        return None
    if not isinstance(requested, dict):
        raise InvalidParameterValue("'outputs' must be an object keyed by output id", name="outputs")
    known = description.get("outputs") or {}
    for output_id in requested:
        if known and output_id not in known:
            raise UnknownOutput(f"unknown output {output_id!r}; this process has: {', '.join(sorted(known))}",
                                name=output_id)
    return dict(requested)


def _selected(stored: Stored, requested: Mapping[str, Any] | None) -> list[str]:
    if not requested:
        return list(stored)
    missing = [o for o in requested if o not in stored]
    if missing:
        have = ", ".join(sorted(stored)) or "none"
        raise UnknownOutput(f"the job has no output {missing[0]!r}; its outputs: {have}", name=missing[0])
    return list(requested)


def render(stored: Stored | None, presign: Callable[[str], str],
           requested_outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The results document, ``s3://`` URLs freshly signed, http(s) URLs as they are."""
    stored = stored or {}
    document: dict[str, Any] = {}
    for output_id in _selected(stored, requested_outputs):
        entry = stored[output_id]
        if "urls" in entry:
            urls = [url if not url.startswith("s3://") else presign(url) for url in entry["urls"]]
            kind = entry["mimetype"]
            document[output_id] = {"href": urls[0], "type": kind, "urls": urls, "mimetype": kind}
        else:
            document[output_id] = {"value": entry["value"], "mediaType": entry["mediaType"]}
    return document


def eodash_legacy(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """``results_format: eodash-legacy``: every file URL of the document in output order, the
    one shape older dashboards read; inline values have no place in it."""
    return {"urls": [url for entry in document.values() for url in entry.get("urls", ())]}


def raw_value(stored: Stored | None, read: Callable[[str], bytes],
              requested_outputs: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """The one selected output as ``(media type, content)`` for ``response=raw``: a value as is,
    a single S3 file's bytes. Several outputs, several files or an external link have no single
    raw form (OGC would need multipart): the client is told to ask for ``document``."""
    stored = stored or {}
    selected = _selected(stored, requested_outputs)
    if len(selected) != 1:
        raise InvalidParameterValue(
            f"a raw response holds one output, this job has {len(selected)}: select one in 'outputs' "
            "or ask for response=document", name="outputs")
    entry = stored[selected[0]]
    if "value" in entry:
        return entry["mediaType"], entry["value"]
    if len(entry["urls"]) != 1 or not entry["urls"][0].startswith("s3://"):
        raise InvalidParameterValue(
            f"output {selected[0]!r} is {len(entry['urls'])} file(s) by link: ask for response=document",
            name="outputs")
    return entry["mimetype"], read(entry["urls"][0])


def delete(stored: Stored | None, remove: Callable[[str], None]) -> None:
    """Remove a job's S3 objects (``Storage.delete``); external http(s) links are not ours."""
    for entry in (stored or {}).values():
        for url in entry.get("urls", ()):
            if url.startswith("s3://"):
                remove(url)
