"""Settings from ``server.manager.argo`` and the Argo CLI's environment: plain data in, settings out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pygeoapi_argo.errors import ConfigurationError
from pygeoapi_argo.settings import ArgoSettings, Secret

MINIMAL = {"server": "https://argo-server.argo:2746", "namespace": "argo"}


def problems(config, env=None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        ArgoSettings.from_config(config, env or {})
    return caught.value.message


def test_minimal_config_and_defaults():
    s = ArgoSettings.from_config(MINIMAL, {})
    assert (s.server, s.base_href, s.base_url) == (
        "https://argo-server.argo:2746", "/", "https://argo-server.argo:2746/")
    assert s.namespace == "argo"
    assert (s.token, s.token_file, s.verify, s.ca_bundle) == (None, None, True, None)
    assert (s.timeout, s.retries) == (30.0, 3)


def test_everything_from_the_argo_cli_environment():
    s = ArgoSettings.from_config(None, {
        "ARGO_SERVER": "localhost:2746", "ARGO_NAMESPACE": "jobs", "ARGO_TOKEN": "Bearer v2:abc",
        "ARGO_INSECURE_SKIP_VERIFY": "true", "ARGO_BASE_HREF": "argo",
    })
    assert s.base_url == "https://localhost:2746/argo/"  # secure unless ARGO_SECURE=false, as the CLI
    assert s.namespace == "jobs"
    assert s.token == Secret("Bearer v2:abc")
    assert s.verify is False


@pytest.mark.parametrize(("secure", "scheme"), [(None, "https"), ("false", "http"), ("true", "https"),
                                                ("False", "https"), ("0", "https")])
def test_argo_secure_is_read_as_the_cli_reads_it(secure, scheme):
    env = {"ARGO_SERVER": "argo:2746", "ARGO_NAMESPACE": "argo"}
    if secure is not None:
        env["ARGO_SECURE"] = secure
    assert ArgoSettings.from_config({}, env).server == f"{scheme}://argo:2746"


@pytest.mark.parametrize(("value", "verify"), [("true", False), ("True", True), ("1", True), ("", True)])
def test_insecure_skip_verify_only_for_exactly_true(value, verify):
    env = {"ARGO_INSECURE_SKIP_VERIFY": value}
    assert ArgoSettings.from_config(MINIMAL, env).verify is verify


def test_a_scheme_in_argo_server_wins_over_argo_secure():
    env = {"ARGO_SERVER": "http://127.0.0.1:2746", "ARGO_NAMESPACE": "argo", "ARGO_SECURE": "true"}
    assert ArgoSettings.from_config({}, env).base_url == "http://127.0.0.1:2746/"


def test_config_overrides_environment():
    env = {"ARGO_SERVER": "env-host:1", "ARGO_NAMESPACE": "env-ns", "ARGO_BASE_HREF": "/env/",
           "ARGO_INSECURE_SKIP_VERIFY": "true", "ARGO_TOKEN": "from-env"}
    s = ArgoSettings.from_config({**MINIMAL, "base_href": "/argo", "verify": True,
                                  "token_file": "/var/run/secrets/argo/token"}, env)
    assert s.base_url == "https://argo-server.argo:2746/argo/"
    assert s.namespace == "argo"
    assert s.verify is True
    assert s.token is None  # the token file is the configured source; ARGO_TOKEN is only a default
    assert s.token_file == Path("/var/run/secrets/argo/token")


@pytest.mark.parametrize(("server", "base_url"), [
    ("https://h.example/argo", "https://h.example/argo/"),
    ("https://h.example/argo/", "https://h.example/argo/"),
    ("h.example:443/a/b", "https://h.example:443/a/b/"),
    ("[::1]:2746", "https://[::1]:2746/"),
    ("  http://H.example:80  ", "http://h.example:80/"),
])
def test_server_forms_and_path_prefix(server, base_url):
    assert ArgoSettings.from_config({**MINIMAL, "server": server}, {}).base_url == base_url


def test_base_href_may_repeat_the_server_path_but_not_contradict_it():
    ok = ArgoSettings.from_config({**MINIMAL, "server": "https://h/argo", "base_href": "argo/"}, {})
    assert ok.base_url == "https://h/argo/"
    assert "contradicts" in problems({**MINIMAL, "server": "https://h/argo", "base_href": "/other"})


def test_numbers_and_booleans_from_yaml_or_env_substitution():
    s = ArgoSettings.from_config({**MINIMAL, "timeout": "2.5", "retries": "0", "verify": "false"}, {})
    assert (s.timeout, s.retries, s.verify) == (2.5, 0, False)


def test_file_paths_are_not_opened_at_load():
    """pygeoapi builds managers for OpenAPI generation where the cluster's files do not exist."""
    s = ArgoSettings.from_config({**MINIMAL, "token_file": "~/nowhere/token", "ca_bundle": "/nowhere/ca.pem"},
                                 {})
    assert s.token_file == Path.home() / "nowhere" / "token"
    assert s.ca_bundle == Path("/nowhere/ca.pem")


def test_the_token_never_shows():
    s = ArgoSettings.from_config(MINIMAL, {"ARGO_TOKEN": "Bearer sup3r-s3cret"})
    assert s.token.reveal() == "Bearer sup3r-s3cret"
    for text in (repr(s), str(s), repr(s.token), str(s.token), f"{s.token}"):
        assert "sup3r-s3cret" not in text


def test_a_token_in_the_config_file_is_refused_without_echoing_it():
    message = problems({**MINIMAL, "token": "sup3r-s3cret"})
    assert "server.manager.argo.token: unknown key" in message
    assert "ARGO_TOKEN" in message
    assert "sup3r-s3cret" not in message


def test_every_problem_is_reported_at_once():
    message = problems({"verify": "maybe", "timeout": 0, "retries": 2.5, "colour": "blue"})
    lines = message.splitlines()[1:]
    assert lines == [
        "- server.manager.argo.colour: unknown key (known keys are base_href, ca_bundle, namespace, "
        "retries, server, timeout, token_file, verify)",
        "- server.manager.argo.server: no Argo Server given: set it here or in ARGO_SERVER (host:port)",
        "- server.manager.argo.namespace: required: set it here or in ARGO_NAMESPACE",
        "- server.manager.argo.verify: must be true or false, not 'maybe'",
        "- server.manager.argo.timeout: must be between 0.1 and 3600, not 0",
        "- server.manager.argo.retries: must be an integer, not 2.5",
    ]


@pytest.mark.parametrize(("config", "expected"), [
    ({"namespace": "None"}, "namespace: must be a Kubernetes namespace (DNS-1123 label), not 'None'"),
    ({"namespace": "Argo_NS"}, "must be a Kubernetes namespace"),
    ({"namespace": 7}, "must be a Kubernetes namespace"),
    ({"server": "ftp://h"}, "server: scheme must be http or https, not 'ftp'"),
    ({"server": "h:99999"}, "server: not a valid URL or host:port"),
    ({"server": "https://h/x?y=1"}, "must not have a query or fragment"),
    ({"server": "https://"}, "server: no host in"),
    ({"server": ["h"]}, "server: must be a URL or host:port"),
    ({"server": "https://h/{x}"}, "server: must not contain braces"),
    ({"base_href": "/a/../b"}, "base_href: must be a URL path such as /argo/"),
    ({"base_href": "/a?b"}, "base_href: must be a URL path"),
    ({"timeout": "soon"}, "timeout: must be a number, not 'soon'"),
    ({"retries": -1}, "retries: must be between 0 and 10, not -1"),
    ({"retries": True}, "retries: must be an integer, not True"),
    ({"token_file": ""}, "token_file: must be a file path"),
    ({"verify": False, "ca_bundle": "/etc/ca.pem"}, "ca_bundle: is set but certificate verification is off"),
])
def test_invalid_values(config, expected):
    assert expected in problems({**MINIMAL, **config})


def test_credentials_in_the_server_url_are_refused_without_echoing_them():
    message = problems({**MINIMAL, "server": "https://admin:pa55word@h.example"})
    assert "must not carry credentials" in message
    assert "pa55word" not in message


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigurationError, match=r"server\.manager\.argo must be a mapping, not str"):
        ArgoSettings.from_config("https://h", {})
