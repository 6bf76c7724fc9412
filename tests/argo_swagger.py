"""Check HTTP responses against the Argo Server's own swagger (v3.7.18), for any test module.

Import it as ``from argo_swagger import ArgoSession, validate, ...`` (pytest puts ``tests/`` on
``sys.path`` because ``tests/conftest.py`` lives there; ``tests`` is not a package).

- ``validate(instance, definition)``: one object against a swagger definition (Draft 4, ``$ref`` into
  ``#/definitions``), ``IntOrString`` and ``Quantity`` relaxed to accept numbers as Argo does.
- ``validate_response(resp)``: finds the operation by method and path, then checks the body against
  its response schema (the status's own, else ``default``: Argo's error body). Streaming responses
  (logs) are checked line by line against the swagger's ``Stream result of ...`` schema.
- ``ArgoSession``: a ``requests.Session`` that validates every response it receives; hand it to
  hera's ``WorkflowsService(session=...)`` so hera's calls are checked too. With ``stream=True``
  the caller reads the body with ``stream_lines(resp)``, which validates each line as it arrives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import requests

SWAGGER_PATH = Path(__file__).resolve().parent / "reference" / "argo" / "swagger.json"
ERROR_DEFINITION = "grpc.gateway.runtime.Error"


@cache
def swagger() -> dict[str, Any]:
    """The spec with the two relaxations Argo itself needs (see tests/reference/argo/README.md)."""
    spec = json.loads(SWAGGER_PATH.read_text())
    definitions = spec["definitions"]
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["string", "integer"]}
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"type": ["string", "number"]}
    return spec


def _validator(schema: dict) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({**schema, "definitions": swagger()["definitions"]})


@cache
def _definition_validator(definition: str) -> jsonschema.Draft4Validator:
    if definition not in swagger()["definitions"]:
        raise KeyError(f"no definition {definition!r} in the swagger")
    return _validator({"$ref": f"#/definitions/{definition}"})


def _check(validator: jsonschema.Draft4Validator, instance: object, what: str) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise AssertionError(f"{what}: at {where}: {error.message}")


def validate(instance: object, definition: str) -> None:
    """Assert ``instance`` is valid as swagger ``definition`` (``io.argoproj.workflow.v1alpha1.Workflow``)."""
    _check(_definition_validator(definition), instance, definition)


@cache
def _operations() -> list[tuple[re.Pattern, str, str, dict]]:
    """(path regex, method, template, operation), most literal segments first so /submit beats /{name}."""
    ops = []
    for template, item in swagger()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        literal = sum(1 for part in template.split("/") if part and not part.startswith("{"))
        for method, op in item.items():
            if method != "parameters":
                ops.append((literal, pattern, method.upper(), template, op))
    ops.sort(key=lambda op: -op[0])
    return [op[1:] for op in ops]


def operation(method: str, path: str) -> tuple[str, dict] | None:
    """The swagger path template and operation serving ``method path``, or None."""
    for pattern, op_method, template, op in _operations():
        if op_method == method.upper() and pattern.match(path):
            return template, op
    return None


def response_schema(method: str, path: str, status: int) -> dict:
    """The schema the swagger gives for this response (unknown paths: Argo's error body)."""
    found = operation(method, path)
    if found is None:
        assert status >= 400, f"{method} {path} is not in the swagger but answered {status}"
        return {"$ref": f"#/definitions/{ERROR_DEFINITION}"}
    responses = found[1]["responses"]
    return (responses.get(str(status)) or responses["default"])["schema"]


def is_stream(schema: dict) -> bool:
    return schema.get("title", "").startswith("Stream result of")


def validate_body(method: str, path: str, status: int, body: bytes) -> None:
    schema = response_schema(method, path, status)
    what = f"{method} {path} -> {status}"
    validator = _validator(schema)
    if is_stream(schema) and status == 200:
        for line in body.decode().splitlines():
            if line.strip():
                _check(validator, json.loads(line), what)
        return
    try:
        data = json.loads(body)
    except ValueError:
        raise AssertionError(f"{what}: body is not JSON: {body[:200]!r}") from None
    _check(validator, data, what)


def validate_response(resp: requests.Response) -> None:
    """Assert a complete (non-streamed) response matches the swagger, JSON content type included."""
    request = resp.request
    assert request.method is not None and request.url is not None
    content_type = resp.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"{request.method} {request.url}: {content_type}"
    validate_body(request.method, urlparse(request.url).path, resp.status_code, resp.content)


def stream_lines(resp: requests.Response) -> Iterator[dict]:
    """Read a streamed (NDJSON) response line by line, validating each against the stream schema."""
    request = resp.request
    assert request.method is not None and request.url is not None
    path = urlparse(request.url).path
    if resp.status_code != 200:
        validate_response(resp)
        return
    schema = response_schema(request.method, path, resp.status_code)
    assert is_stream(schema), f"{request.method} {path} is not a streaming operation"
    validator = _validator(schema)
    for line in resp.iter_lines():
        if line.strip():
            data = json.loads(line)
            _check(validator, data, f"{request.method} {path} stream line")
            yield data


class ArgoSession(requests.Session):
    """A session that checks every response against the swagger before the caller sees it."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.headers.update(headers or {})
        self.validated = 0  # lets a test show that validation really ran

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", 30)
        resp = super().request(method, url, *args, **kwargs)
        if not kwargs.get("stream"):
            validate_response(resp)
            self.validated += 1
        return resp
