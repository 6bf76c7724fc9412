"""Bad input and fuzzing (issue 6, item 3): whatever a client sends, the answer is a clean 4xx.

Part 1, a corpus of bad requests sent byte for byte (the path exactly as written, percent-escapes
and all; any body and header): wrong types, missing and unknown members, huge strings, deep JSON,
non-UTF-8, path tricks in ids, ``{{…}}`` and shell metacharacters, wrong media types, bad paging and
filters, wrong methods. Each must answer its 4xx as an OGC exception in JSON (``type``, ``code``,
``description``; never a 5xx, never HTML), create no workflow (listed through the emulator's API)
and record no job (``numberMatched`` of ``/jobs``). ``tests/e2e/test_ogc_api.py`` holds the
input-validation cases of issue 3 (``BAD_INPUTS``); these are the others. A few NUL cases also run
on the PostgreSQL job store, which cannot hold NUL at all.

Part 2, schemathesis over pygeoapi's own OpenAPI document (``/openapi?f=json``) with our plugin:
positive and negative examples for every operation, asserting ``not_a_server_error`` and that an
error answer is JSON unless HTML was asked (gunicorn's own 414/431 aside). The document is completed
where it falls short of what is served: its remote ``$ref``s to schemas.opengis.net are resolved
from the OGC schemas in ``tests/reference/`` (no network), ``GET /jobs`` gets the OGC job-list
parameters pygeoapi does not document, and our ``/jobs/{jobId}/logs`` and ``/metrics`` are added.
Excluded: ``POST /processes/fail/execution`` (its only input is optional, so nearly every generated
body is a valid request that starts a real workflow: load, which ``test_load.py`` covers, not
fuzzing), and ``/openapi`` (pygeoapi's static document, nothing of ours behind it).

Sizes: ``FUZZ_EXAMPLES`` examples in total (default 300 for CI); by hand::

    FUZZ_EXAMPLES=1000 .venv/bin/pytest tests/e2e/test_fuzz.py -k schemathesis -s -p no:warnings
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import Emulator, Pygeoapi
from ogc_schemas import OGC_ROOT, _lenient

from e2e.test_ogc_api import JSON, assert_ogc_exception, execute

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
ASYNC = {"Content-Type": "application/json", "Prefer": "respond-async"}
POINT = {"type": "Point", "coordinates": [16.37, 48.21]}


@dataclass(frozen=True)
class Bad:
    """One bad request: ``path`` is sent exactly as written (percent-escapes and all)."""

    method: str
    path: str
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def post(process_id: str, body: Any, status: int = 400, content_type: str = "application/json") -> Bad:
    """An execute request (async, so anything that slips through is a recorded job, not a wait)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Bad("POST", f"/processes/{process_id}/execution", status, data,
               {**ASYNC, "Content-Type": content_type})


def get(path: str, status: int = 400) -> Bad:
    return Bad("GET", path, status)


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of objects around ``leaf``."""
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


CORPUS: dict[str, Bad] = {
    # --- types ---------------------------------------------------------------------------------
    "string input as number": post("echo", {"inputs": {"message": 42}}),
    "string input as object": post("echo", {"inputs": {"message": {"text": "x"}}}),
    "string input as array": post("echo", {"inputs": {"message": ["x"]}}),
    "string input as null": post("echo", {"inputs": {"message": None}}),
    "string input as boolean": post("echo", {"inputs": {"message": True}}),
    "integer input as fraction": post("raster", {"inputs": {"bbox": [0, 0, 1, 1], "size": 100.5}}),
    "integer input as numeric string": post("raster", {"inputs": {"bbox": [0, 0, 1, 1], "size": "128"}}),
    "integer input of 31 digits": post("raster", {"inputs": {"bbox": [0, 0, 1, 1], "size": 10**30}}),
    "number beyond float range": post("buffer", b'{"inputs": {"geometry": {"type": "Point", '
                                                b'"coordinates": [1, 2]}, "distance": 1e400}}'),
    "NaN token": post("buffer", b'{"inputs": {"geometry": {"type": "Point", "coordinates": [1, 2]}, '
                                b'"distance": NaN}}'),
    "NaN in a bbox": post("raster", b'{"inputs": {"bbox": [0, 0, NaN, 1]}}'),
    "enum input with shell metacharacters": post("echo", {"inputs": {"message": "x",
                                                                      "case": "upper; rm -rf /"}}),
    # --- missing and unknown -------------------------------------------------------------------
    "empty object": post("echo", {}),
    "inputs null": post("echo", {"inputs": None}),
    "inputs a string": post("echo", {"inputs": "message=hello"}),
    "empty body": post("echo", b""),
    "whitespace body": post("echo", b"   \n"),
    "JSON string body": post("echo", b'"inputs"'),
    "unknown input named like a command": post("echo", {"inputs": {"message": "x", "$(id)": "y"}}),
    "unknown input with a 10k name": post("echo", {"inputs": {"message": "x", "n" * 10_000: 1}}),
    "outputs a list": post("echo", {"inputs": {"message": "x"}, "outputs": ["message"]}),
    "unknown output named as a template": post("echo", {"inputs": {"message": "x"},
                                                        "outputs": {"{{workflow.name}}": {}}}),
    "response a number": post("echo", {"inputs": {"message": "x"}, "response": 5}),
    "subscriber a string": post("echo", {"inputs": {"message": "x"}, "subscriber": "http://example.org"}),
    "subscriber a list": post("echo", {"inputs": {"message": "x"}, "subscriber": ["http://example.org"]}),
    "subscriber without successUri": post("echo", {"inputs": {"message": "x"},
                                                   "subscriber": {"failedUri": "http://example.org/f"}}),
    "subscriber to a file URL": post("echo", {"inputs": {"message": "x"},
                                              "subscriber": {"successUri": "file:///etc/passwd"}}),
    # --- huge ----------------------------------------------------------------------------------
    "100k-character string": post("echo", {"inputs": {"message": "x" * 100_000}}),
    "input over the 64 KiB parameter limit": post("two-step", {"inputs": {"text": "word " * 14_000}}),
    "geometry of 40k points": post("buffer", {"inputs": {"geometry": {
        "type": "MultiPoint", "coordinates": [[i % 180, (i % 160) - 80] for i in range(40_000)]}}}),
    # --- deep ----------------------------------------------------------------------------------
    "100k nested arrays": post("echo", b'{"inputs": {"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"),
    "900 nested arrays": post("echo", b'{"inputs": {"message": ' + b"[" * 900 + b"]" * 900 + b"}}"),
    "70 nested objects in a geometry": post("buffer", {"inputs": {"geometry": {**POINT, "x": nested(70)}}}),
    "70 nested objects as an unknown member": post("echo", {"inputs": {"message": "x"}, "extra": nested(70)}),
    # --- encodings -----------------------------------------------------------------------------
    "UTF-16 body": post("echo", '{"inputs": {"message": "x"}}'.encode("utf-16")),
    "overlong UTF-8": post("echo", b'{"inputs": {"message": "a\xc0\xafb"}}'),
    "unpaired surrogate escape": post("echo", b'{"inputs": {"message": "a\\ud800b"}}'),
    "NUL escape in a value": post("echo", b'{"inputs": {"message": "a\\u0000b"}}'),
    "NUL escape in an input name": post("echo", b'{"inputs": {"message": "x", "m\\u0000": "y"}}'),
    # --- Argo template expressions -------------------------------------------------------------
    "sprig expression": post("two-step", {"inputs": {"text": "{{=sprig.env('ARGO_TOKEN')}}"}}),
    "expression in a qualified value": post("echo", {"inputs": {"message": {
        "value": "{{inputs.parameters.message}}", "mediaType": "text/plain"}}}),
    "expression as a bbox crs": post("raster", {"inputs": {"bbox": {"bbox": [0, 0, 1, 1],
                                                                    "crs": "{{workflow.name}}"}}}),
    # --- media types ---------------------------------------------------------------------------
    "JSON sent as text/plain": post("echo", {"inputs": {"message": "x"}}, 415, "text/plain"),
    "form data": post("echo", b"inputs=%7B%22message%22%3A%22x%22%7D", 415,
                      "application/x-www-form-urlencoded"),
    "multipart form": post("echo", b'--b\r\nContent-Disposition: form-data; name="inputs"\r\n\r\n{}\r\n'
                                   b"--b--\r\n", 415, "multipart/form-data; boundary=b"),
    "XML": post("echo", b"<Execute><Input id='message'>x</Input></Execute>", 415,
                "application/xml"),
    # --- ids and paths -------------------------------------------------------------------------
    "job id ..%2F..": get("/jobs/..%2F..", 404),
    "job id climbing to a process": get("/jobs/..%2F..%2Fprocesses%2Fecho", 404),
    "job id NUL": get("/jobs/%00", 404),
    "job id not UTF-8": get("/jobs/%FF%FE", 404),
    "job id of 3000 characters": get("/jobs/" + "a" * 3000, 404),
    "job id an emoji": get("/jobs/%F0%9F%92%A9", 404),
    "job id with a right-to-left override": get("/jobs/abc%E2%80%AEdef/results", 404),
    "job id SQL injection": get("/jobs/x'%20OR%20'1'%3D'1", 404),
    "job id label-selector injection": get("/jobs/a,app.kubernetes.io%2Fmanaged-by%3Dpygeoapi-argo/results",
                                           404),
    "job id template expression": get("/jobs/%7B%7Bworkflow.name%7D%7D", 404),
    "job id with shell metacharacters": get("/jobs/%24(reboot)%3B%60id%60", 404),
    "logs of ../../etc/passwd": get("/jobs/..%2F..%2Fetc%2Fpasswd/logs", 404),
    "logs of job id NUL": get("/jobs/%00/logs", 404),
    "dismiss ..%2F..": Bad("DELETE", "/jobs/..%2F..", 404),
    "dismiss NUL": Bad("DELETE", "/jobs/%00", 404),
    "process id ..": Bad("POST", "/processes/%2e%2e/execution", 404, b'{"inputs": {}}', ASYNC),
    "process id with NUL": Bad("POST", "/processes/echo%00/execution", 404, b'{"inputs": {}}', ASYNC),
    "process id with shell metacharacters": Bad("POST", "/processes/echo%3Bid/execution", 404,
                                                b'{"inputs": {"message": "x"}}', ASYNC),
    "process id ..%2Fjobs (routed as the POST-only alias)": get("/processes/..%2Fjobs", 405),
    # --- paging and filters --------------------------------------------------------------------
    "limit negative": get("/jobs?limit=-1"),
    "limit zero": get("/jobs?limit=0"),
    "limit over the maximum": get("/jobs?limit=1001"),
    "limit of 23 digits": get("/jobs?limit=99999999999999999999999"),
    "limit not a number": get("/jobs?limit=abc"),
    "limit a fraction": get("/jobs?limit=1.5"),
    "limit empty": get("/jobs?limit="),
    "limit twice": get("/jobs?limit=1&limit=2"),
    "limit in full-width digits": get("/jobs?limit=%EF%BC%91"),
    "offset negative": get("/jobs?offset=-5"),
    "offset in exponent notation": get("/jobs?offset=1e3"),
    "offset of 31 digits": get("/jobs?offset=" + "9" * 31),
    "process list limit negative": get("/processes?limit=-1"),
    "process list limit not a number": get("/processes?limit=abc"),
    "status unknown": get("/jobs?status=bogus"),
    "status NUL": get("/jobs?status=%00"),
    "processID NUL": get("/jobs?processID=%00"),
    "type unknown": get("/jobs?type=batch"),
    "datetime garbage": get("/jobs?datetime=yesterday"),
    "datetime month 13": get("/jobs?datetime=2020-13-45T00:00:00Z"),
    "datetime three parts": get("/jobs?datetime=2020-01-01T00:00:00Z/../.."),
    "datetime both ends open": get("/jobs?datetime=../.."),
    "datetime year 99999": get("/jobs?datetime=99999-01-01T00:00:00Z"),
    "minDuration negative": get("/jobs?minDuration=-1"),
    "maxDuration not a number": get("/jobs?maxDuration=abc"),
    "minDuration above maxDuration": get("/jobs?minDuration=10&maxDuration=5"),
    "format unknown": get("/jobs?f=xml"),
    # --- methods and routes --------------------------------------------------------------------
    "PUT a job": Bad("PUT", "/jobs/abc", 405, b"{}", {"Content-Type": "application/json"}),
    "PATCH an execution": Bad("PATCH", "/processes/echo/execution", 405),
    "GET an execution": get("/processes/echo/execution", 405),
    "POST the job list": Bad("POST", "/jobs", 405, b'{"inputs": {}}', ASYNC),
    "unknown route": get("/no/such/route", 404),
}


def send(base: str, bad: Bad) -> requests.Response:
    """``bad`` as it is: the prepared URL is replaced after ``requests`` has quoted it."""
    with requests.Session() as session:
        prepared = session.prepare_request(
            requests.Request(bad.method, base, data=bad.body, headers={**JSON, **bad.headers}))
        prepared.url = f"{base}{bad.path}"
        return session.send(prepared, timeout=60)


def workflow_names(emulator: Emulator) -> set[str]:
    """Every workflow in the namespace (names: one garbage-collected meanwhile cannot hide a new one)."""
    response = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}",
                            headers=emulator.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return {item["metadata"]["name"] for item in response.json().get("items") or []}


def job_count(base: str) -> int:
    response = requests.get(f"{base}/jobs", params={"limit": 1}, headers=JSON, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["numberMatched"]


def assert_exception(response: requests.Response, status: int) -> None:
    document = assert_ogc_exception(response, status)
    assert isinstance(document.get("description"), str) and document["description"], document


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_request_is_a_4xx_ogc_exception_and_starts_nothing(pygeoapi: Pygeoapi, emulator: Emulator,
                                                               case: str):
    bad = CORPUS[case]
    workflows, jobs = workflow_names(emulator), job_count(pygeoapi.url)
    assert_exception(send(pygeoapi.url, bad), bad.status)
    assert not workflow_names(emulator) - workflows, "a workflow was created"
    assert job_count(pygeoapi.url) == jobs, "a job was recorded"


def test_html_only_when_asked(pygeoapi: Pygeoapi):
    response = send(pygeoapi.url, get("/jobs/..%2F..?f=html", 404))
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text.lower()


@pytest.mark.parametrize("prefer", ["wait=abc", "respond-async; wait=99999999999999999999",
                                    ", ,;;==,respond-sync", "handling=lenient, return=minimal"])
def test_an_unreadable_prefer_is_ignored(pygeoapi: Pygeoapi, prefer: str):
    """RFC 7240: a preference the server does not understand is ignored, so the process runs as it
    would without one (echo: synchronously, answering its value)."""
    response = execute(pygeoapi.url, "echo", {"inputs": {"message": "plain"}}, headers={"Prefer": prefer})
    assert response.status_code == 200, response.text
    assert response.text == "plain"


def test_shell_metacharacters_in_a_free_text_value_travel_as_text(pygeoapi: Pygeoapi, tmp_path: Path):
    """A string input is data: it reaches the step as it is, and nothing in it runs."""
    marker = tmp_path / "ran"
    message = f"$(touch {marker}); `touch {marker}` | touch {marker} && echo '\"' \\ %s *"
    response = execute(pygeoapi.url, "echo", {"inputs": {"message": message}}, prefer="wait")
    assert response.status_code == 200, response.text
    assert response.text == message
    assert not marker.exists()


NUL_REQUESTS = [get("/jobs/%00", 404), get("/jobs/%00/results", 404), get("/jobs/%00/logs", 404),
                Bad("DELETE", "/jobs/%00", 404), get("/jobs?processID=%00"),
                post("echo", b'{"inputs": {"message": "a\\u0000b"}}')]


def test_nul_on_the_postgresql_job_store(postgres, start_pygeoapi, emulator: Emulator):
    """PostgreSQL refuses even to compare a string holding NUL: every such request is still a 4xx."""
    server = start_pygeoapi(emulator, manager={"connection": postgres.create_database("fuzz")})
    try:
        for bad in NUL_REQUESTS:
            assert_exception(send(server.url, bad), bad.status)
        assert job_count(server.url) == 0
    finally:
        server.stop()


# --- schemathesis --------------------------------------------------------------------------------

OGC_REMOTE = "https://schemas.opengis.net/ogcapi/processes/part1/1.0/openapi/"
EXCLUDED = ("POST /processes/fail/execution", "GET /openapi")
GUNICORN_LIMITS = (414, 431)


def bundled(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every remote ``$ref`` resolved offline: OGC schemas from
    ``tests/reference/`` into ``components/schemas`` (``oneOf`` read as ``anyOf``, as
    ``ogc_schemas`` does: the standard's branches overlap), responses as bare descriptions (only
    status codes are checked here)."""
    schemas: dict[str, Any] = {}  # the OGC schemas taken in, by their new name

    def schema_ref(name: str) -> dict[str, str]:
        key = f"ogc-{name.removesuffix('.yaml')}"
        if key not in schemas:
            schemas[key] = {}  # taken before reading: the schemas refer to each other
            schemas[key] = rewrite(_lenient(yaml.safe_load((OGC_ROOT / "schemas" / name).read_text())))
        return {"$ref": f"#/components/schemas/{key}"}

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            name = ref.rsplit("/", 1)[-1]
            if ref.startswith(f"{OGC_REMOTE}schemas/") or (ref.endswith(".yaml") and "responses" not in ref):
                return schema_ref(name)
            return {"description": name}
        return {key: rewrite(value) for key, value in node.items()}

    result = rewrite(document)
    result.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
    return result


def served_but_undocumented(document: dict[str, Any]) -> None:
    """What we serve that pygeoapi's document leaves out: the OGC job-list parameters (the
    standard's own parameter files), a job's logs, and the metrics."""
    names = ("limit", "status", "processIdQueryParam", "type", "datetime", "minDuration", "maxDuration")
    parameters = [yaml.safe_load((OGC_ROOT / "parameters" / f"{name}.yaml").read_text()) for name in names]
    parameters.append({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}})
    document["paths"]["/jobs"]["get"].setdefault("parameters", []).extend(parameters)
    job_id = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}
    document["paths"]["/jobs/{jobId}/logs"] = {"get": {"operationId": "getJobLogs", "parameters": [
        job_id, {"name": "tail", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "step", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the job's log, text/plain"}}}}
    document["paths"]["/metrics"] = {"get": {"operationId": "getMetrics",
                                             "responses": {"200": {"description": "Prometheus"}}}}


def error_answers_are_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """An error answer is an OGC exception in JSON (or JSON-LD, ``f=jsonld``) unless the client asked
    for HTML. gunicorn refuses a request line over 4094 bytes (414) or a header field over 8190 (431)
    with its own HTML page before any of the app sees the request."""
    if (response.status_code < 400 or response.status_code in GUNICORN_LIMITS
            or (case.query or {}).get("f") == "html"):
        return None
    content_type = response.headers.get("Content-Type", response.headers.get("content-type", [""]))
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    media_type = content_type.split(";")[0].strip()
    assert media_type == "application/json" or media_type.endswith("+json"), \
        f"{response.status_code} answered as {content_type}"
    return True


def fuzz(operation: Any, mode: Any, examples: int, base_url: str, session: requests.Session) -> int:
    """Up to ``examples`` cases of one operation sent and checked; answers how many were sent (fewer
    when the operation has no more distinct cases, none when nothing in it can be made invalid)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error

    sent = 0

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(base_url=base_url, session=session, timeout=60,
                               checks=[not_a_server_error, error_answers_are_json])

    with contextlib.suppress(Unsatisfiable):
        run()
    return sent


def test_schemathesis_finds_no_server_error(pygeoapi: Pygeoapi):
    """``FUZZ_EXAMPLES`` shared out over every operation in both modes; what an operation cannot use
    (it runs out of distinct cases) goes to the others in a next round."""
    import schemathesis
    from schemathesis import GenerationMode

    document = bundled(requests.get(f"{pygeoapi.url}/openapi", params={"f": "json"}, timeout=30).json())
    served_but_undocumented(document)
    operations = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
    operations = [op for op in operations if op.label not in EXCLUDED]
    assert len(operations) >= 15, [op.label for op in operations]
    pending = [(f"{op.label} ({mode.value})", op, mode)
               for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    session = requests.Session()
    sent: dict[str, int] = {}
    failures: dict[str, str] = {}
    began = time.monotonic()
    while pending and sum(sent.values()) < FUZZ_EXAMPLES:
        share = math.ceil((FUZZ_EXAMPLES - sum(sent.values())) / len(pending))
        still_open = []
        for label, operation, mode in pending:
            try:
                count = fuzz(operation, mode, share, pygeoapi.url, session)
            except Exception as err:  # every operation gets its run; all failures are reported together
                failures[label] = f"{type(err).__name__}: {str(err)[:3000]}"
                continue
            sent[label] = sent.get(label, 0) + count
            if count >= share:
                still_open.append((label, operation, mode))
        pending = still_open
    seconds = time.monotonic() - began
    total = sum(sent.values())
    print(f"\nschemathesis: {total} examples over {len(operations)} operations in {seconds:.1f} s "
          f"({total / seconds:.0f}/s); FUZZ_EXAMPLES={FUZZ_EXAMPLES}; per operation and mode: {sent}")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert total >= FUZZ_EXAMPLES, sent
