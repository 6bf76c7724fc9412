"""Validate documents against the official OGC API - Processes 1.0 schemas (tests/reference/).

Import it from any test (``tests/`` is on ``sys.path`` through its ``conftest.py``)::

    from ogc_schemas import assert_valid
    assert_valid("process.yaml", description)      # also statusInfo.yaml, jobList.yaml, results.yaml, ...

Lenient where the standard's own schemas are broken (see the README there):

- quirk 1: ``oneOf`` whose branches overlap (``string`` and ``binaryInputValue``, ``number`` and
  ``integer``, ...) rejects plain values, so every ``oneOf`` keyword becomes ``anyOf``; a *property*
  named ``oneOf`` (``schema.yaml`` declares one) is left alone;
- the schemas are OpenAPI 3.0 flavoured (``exclusiveMinimum: true`` booleans), so they are read as
  JSON Schema Draft 4, which has exactly those semantics (quirk 4 stays strict: a description using
  ``const`` or ``$schema`` still fails, as it should).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OGC_ROOT = Path(__file__).resolve().parent / "reference" / "ogcapi-processes"


def _lenient(node: Any, *, under_properties: bool = False) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            name = "anyOf" if key == "oneOf" and not under_properties else key
            out[name] = _lenient(value, under_properties=key == "properties" and not under_properties)
        return out
    if isinstance(node, list):
        return [_lenient(item) for item in node]
    return node


def _retrieve(uri: str) -> Resource:
    path = Path(uri.removeprefix("file://"))
    return Resource.from_contents(_lenient(yaml.safe_load(path.read_text())), default_specification=DRAFT4)


@functools.cache
def validator(name: str) -> Draft4Validator:
    """A validator for ``schemas/<name>`` (e.g. ``process.yaml``), its ``$ref``s resolved in the folder."""
    path = OGC_ROOT / "schemas" / name
    if not path.is_file():
        raise FileNotFoundError(f"no OGC schema {path}")
    return Draft4Validator({"$ref": path.as_uri()}, registry=Registry(retrieve=_retrieve))


def errors(name: str, document: Any) -> list[str]:
    """Every violation, as ``path: message`` lines (empty when the document is valid)."""
    found = sorted(validator(name).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]


def assert_valid(name: str, document: Any) -> None:
    problems = errors(name, document)
    assert not problems, f"not a valid OGC {name}:\n" + "\n".join(problems)
