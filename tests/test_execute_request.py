"""``execute_request.check``: raw execute bodies pygeoapi cannot take, refused before it reads them."""

from __future__ import annotations

import pytest

from pygeoapi_argo.errors import InvalidParameterValue, UnsupportedMediaType
from pygeoapi_argo.execute_request import MAX_DEPTH, check

GOOD = b'{"inputs": {"message": "caf\xc3\xa9 \\ud83d\\udca9 {x} $(id)"}, "subscriber": {"successUri": "http://a"}}'


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.ogc+json"])
def test_json_and_no_media_type_pass(content_type):
    check(GOOD, content_type)


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b", "application/xml", "text/json-ish"])
def test_other_media_types_are_415(content_type):
    with pytest.raises(UnsupportedMediaType) as caught:
        check(GOOD, content_type)
    assert caught.value.http_status == 415
    assert content_type.split(";")[0].lower() in caught.value.message


@pytest.mark.parametrize("body", [b"", b"  ", b"not json", b'{"inputs": '])
def test_what_is_no_json_is_left_to_pygeoapi(body):
    check(body, "application/json")


def nested(depth: int) -> bytes:
    """A body of ``depth`` levels in all (the outer object is level 1)."""
    return b'{"inputs": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize(("body", "words"), [
    ('{"inputs": {"message": "caf\u00e9"}}'.encode("latin-1"), "not UTF-8"),
    ('{"inputs": {}}'.encode("utf-16"), "not UTF-8"),
    (b"[1]", "JSON object"),
    (b"null", "JSON object"),
    (nested(100_000), "nested"),
    (nested(MAX_DEPTH + 1), "nested"),
    (b'{"inputs": {"message": "a\\u0000b"}}', "NUL"),
    (b'{"inputs": {"\\u0000": 1}}', "NUL"),
    (b'{"inputs": {"message": "\\ud800"}}', "surrogate"),
    (b'{"inputs": {"\\udfff": 1}}', "surrogate"),
    (b'{"subscriber": "http://a"}', "subscriber"),
    (b'{"subscriber": ["http://a"]}', "subscriber"),
    (b'{"subscriber": 5}', "subscriber"),
])
def test_bad_bodies_are_400(body, words):
    with pytest.raises(InvalidParameterValue) as caught:
        check(body, "application/json")
    assert words in caught.value.message
    assert caught.value.http_status == 400


def test_the_depth_limit_is_inclusive():
    check(nested(MAX_DEPTH), "application/json")


@pytest.mark.parametrize("subscriber", [b"null", b"{}", b'""', b"[]", b"0"])
def test_an_empty_subscriber_is_pygeoapis_no_subscriber(subscriber):
    check(b'{"inputs": {}, "subscriber": ' + subscriber + b"}", "application/json")
