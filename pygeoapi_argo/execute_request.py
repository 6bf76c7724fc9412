"""The raw execute request body, checked before pygeoapi reads it.

pygeoapi 0.24 parses the body itself and answers a 500 (or runs the job) for bodies it does not
expect, so ``web.py`` calls ``check`` first and turns what it raises into an OGC exception:

- a media type other than JSON (``text/plain``, form data): 415, and nothing runs;
- not UTF-8, or JSON nested so deep that the parser gives up (``RecursionError``): 400;
- not a JSON object, or a ``subscriber`` that is not an object: 400;
- JSON nested deeper than ``MAX_DEPTH``, far beyond any GeoJSON, so no code further down (schema
  validation, masking, copies) can recurse into trouble: 400;
- a string (or key) holding U+0000 or an unpaired UTF-16 surrogate (``"\\ud800"``): valid JSON, but
  PostgreSQL text cannot store the one, UTF-8 cannot encode the other, and no Argo parameter or
  environment variable can carry either: 400.

A body that is no JSON at all passes: pygeoapi answers that one with its own 400. Pure: bytes in.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidParameterValue, UnsupportedMediaType

MAX_DEPTH = 64


def check(body: bytes, content_type: str | None) -> None:
    """Raise ``InvalidParameterValue`` or ``UnsupportedMediaType`` for a body pygeoapi cannot take."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"the execute request must be application/json, not {media_type[:100]!r}")
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidParameterValue("the request body is not UTF-8") from None
    except RecursionError:
        raise InvalidParameterValue(f"the request body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:
        return  # pygeoapi's own 400 for JSON it cannot parse
    if not isinstance(document, dict):
        raise InvalidParameterValue("the execute request must be a JSON object with 'inputs'")
    subscriber = document.get("subscriber")
    if subscriber and not isinstance(subscriber, dict):
        raise InvalidParameterValue("'subscriber' must be an object with 'successUri'", name="subscriber")
    _check_values(document)


def _check_values(document: dict[str, Any]) -> None:
    """Walk the document without recursion (its depth is what is being checked)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidParameterValue(f"the request body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidParameterValue("the request body holds a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameterValue("the request body holds an unpaired UTF-16 surrogate (such as \\ud800), "
                                    "which is no Unicode text") from None
