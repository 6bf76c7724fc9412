"""Per-user isolation, the parts that need no server: label values and the settings."""

from __future__ import annotations

import re

import pytest

from pygeoapi_argo.errors import ConfigurationError
from pygeoapi_argo.owners import label_value, labels
from pygeoapi_argo.settings import IsolationSettings, ManagerSettings

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
ARGO = {"server": "http://127.0.0.1:2746", "namespace": "argo"}


@pytest.mark.parametrize("owner", ["alice", "Bob.Smith_2", "a" * 63])
def test_an_owner_that_is_a_label_value_stays_as_it_is(owner: str) -> None:
    assert label_value(owner) == owner


@pytest.mark.parametrize("owner", ["alice@example.org", "CN=alice,O=eox", "a" * 64, "-x-", "日本", "@", " "])
def test_other_owners_become_distinct_valid_label_values(owner: str) -> None:
    value = label_value(owner)
    assert LABEL_VALUE.fullmatch(value) and 0 < len(value) <= 63, value
    assert value != label_value(owner + "x")


def test_similar_owners_never_share_a_label_value() -> None:
    assert label_value("alice@example.org") != label_value("alice-example.org")
    assert label_value("alice@example.org").startswith("alice-example.org-")


def test_a_job_without_owner_has_no_owner_label() -> None:
    assert labels(None) == {}
    assert labels("bob") == {"pygeoapi.io/owner": "bob"}


def test_isolation_is_off_unless_a_header_is_named() -> None:
    assert ManagerSettings.from_config({"argo": ARGO}).isolation == IsolationSettings()
    assert not ManagerSettings.from_config({"argo": ARGO}).isolation.enabled
    on = ManagerSettings.from_config({"argo": ARGO, "isolation": {"header": "X-Auth-Request-User"}})
    assert on.isolation.enabled and on.isolation.header == "X-Auth-Request-User"


@pytest.mark.parametrize(("isolation", "problem"), [
    ({"header": "X Forwarded User"}, "isolation.header: must be an HTTP header name"),
    ({"header": 7}, "isolation.header: must be an HTTP header name"),
    ({"user": "X-Forwarded-User"}, "isolation.user: unknown key"),
    ("X-Forwarded-User", "isolation: must be a mapping"),
])
def test_a_bad_isolation_section_is_reported(isolation: object, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        ManagerSettings.from_config({"argo": ARGO, "isolation": isolation})
