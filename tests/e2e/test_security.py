"""No secret leaves: every configured secret value is looked for in everything a client, Argo or an
operator can read, after jobs that handle secrets ran through pygeoapi at log level DEBUG.

The secrets, each distinctive (random per run):
- the Argo token (emulator ``--token``, ``ARGO_TOKEN`` of pygeoapi);
- the S3 secret key (``AWS_SECRET_ACCESS_KEY`` of pygeoapi and the emulator);
- a Kubernetes secret in the emulator's secrets file, read by steps through ``secretKeyRef`` and
  printed: ``leak-print`` prints it and succeeds, ``leak-fail`` prints it to stderr and fails with
  ``FallbackToLogsOnError`` (so Argo's failure message carries it); pygeoapi has its value in
  ``LEAKY_SECRET``, listed in ``logs.redact``;
- a secret a client sends as an input (top level, and under a secret-looking key in an object).

Where they are looked for: every HTTP answer of the test (status, list, results, logs, errors,
/metrics, /openapi, /processes), the workflows' annotations, labels and parameters read from the
emulator's API, the raw bytes of the SQLite job store (with its WAL), every object on S3 (archived
log copies, results), pygeoapi's log file and stdout/stderr, and the emulator's stdout/stderr.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import S3_SECRET_KEY, Emulator, Pygeoapi, S3Server

from pygeoapi_argo.cli import stop
from pygeoapi_argo.logs import REDACTED

TOKEN = f"argo-token-{uuid.uuid4().hex}"
KREF = f"kref-secret-{uuid.uuid4().hex}"
CLIENT = f"client-secret-{uuid.uuid4().hex}"
SECRETS = {"Argo token": TOKEN, "secretKeyRef secret": KREF, "client secret": CLIENT,
           "S3 secret key": S3_SECRET_KEY}
JSON = {"Accept": "application/json"}


def step(name: str, source: str, **extra) -> dict:
    """A script step that reads the Kubernetes secret ``leaky/value`` through ``secretKeyRef``."""
    return {"name": name, "script": {
        "image": "python:3.12-slim", "command": ["python"], "source": source, **extra,
        "env": [{"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "leaky", "key": "value"}}}]}}


PRINT = """import json, os
print("working")
print("the secret is", os.environ["SECRET"])
with open("/tmp/results.json", "w") as out:
    json.dump({"message": {"value": "done", "mediaType": "text/plain"}}, out)
"""
FAIL = """import os, sys
print("failing with", os.environ["SECRET"], file=sys.stderr)
sys.exit(4)
"""
RESULTS = {"parameters": [{"name": "results", "globalName": "results",
                           "valueFrom": {"path": "/tmp/results.json"}}]}
TEMPLATES = [
    {"metadata": {"name": "leak-print", "annotations": {
        "pygeoapi.io/inputs": json.dumps({"options": {"title": "Options", "minOccurs": 0,
                                                      "schema": {"type": "object"}}}),
        "pygeoapi.io/outputs": json.dumps({"message": "text/plain"})}},
     "spec": {"entrypoint": "execute", "templates": [
          {**step("execute", PRINT), "inputs": {"parameters": [{"name": "options", "default": "{}"}]},
          "outputs": RESULTS}]}},
    {"metadata": {"name": "leak-fail"}, "spec": {"entrypoint": "execute", "templates": [
        step("execute", FAIL, terminationMessagePolicy="FallbackToLogsOnError")]}},
]
RESOURCES = {t["metadata"]["name"]: {"type": "process", "processor": {
    "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": t["metadata"]["name"]}} for t in TEMPLATES}


class Seen:
    """Every HTTP answer of the module, headers and body, for the final search."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.jobs: list[str] = []

    def __call__(self, method: str, url: str, **kwargs) -> requests.Response:
        resp = requests.request(method, url, timeout=60, **kwargs)
        self.answers.append(f"{method} {url} {resp.status_code}\n{dict(resp.headers)}\n{resp.text}")
        return resp


@pytest.fixture(scope="module")
def seen() -> Seen:
    return Seen()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security")


@pytest.fixture(scope="module")
def argo(start_emulator, files: Path) -> Emulator:
    secrets = files / "secrets.yaml"
    secrets.write_text(json.dumps({"leaky": {"value": KREF}}))
    emulator = start_emulator("--secrets", str(secrets), token=TOKEN, output=files / "emulator.err")
    for template in TEMPLATES:
        resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                             json={"template": template}, headers=emulator.headers(), timeout=10)
        assert resp.status_code == 200, resp.text
    return emulator


@pytest.fixture(scope="module")
def server(start_pygeoapi, argo: Emulator, files: Path) -> Pygeoapi:
    return start_pygeoapi(argo, resources=RESOURCES, env={"LEAKY_SECRET": KREF},
                          manager={"logs": {"redact": ["LEAKY_SECRET", "AWS_SECRET_ACCESS_KEY"]}},
                          logging={"level": "DEBUG", "logfile": str(files / "pygeoapi.log")},
                          output=files / "pygeoapi.out")


def execute(seen: Seen, server: Pygeoapi, process_id: str, inputs: dict) -> requests.Response:
    return seen("POST", f"{server.url}/processes/{process_id}/execution", json={"inputs": inputs},
                headers=JSON)


def finished(seen: Seen, server: Pygeoapi, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        resp = seen("GET", f"{server.url}/jobs/{job_id}", headers=JSON)
        assert resp.status_code == 200, resp.text
        if resp.json()["status"] in ("successful", "failed", "dismissed"):
            return resp.json()
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.2)


def job_id(resp: requests.Response) -> str:
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def submitted(seen: Seen, resp: requests.Response) -> str:
    seen.jobs.append(job_id(resp))
    return seen.jobs[-1]


def test_a_step_that_prints_a_secret_has_it_redacted_from_its_logs(seen: Seen, server: Pygeoapi) -> None:
    job = submitted(seen, execute(seen, server, "leak-print", {"options": {"mode": "fast"}}))
    assert finished(seen, server, job)["status"] == "successful"
    results = seen("GET", f"{server.url}/jobs/{job}/results", headers=JSON)
    assert results.status_code == 200 and results.json()["message"]["value"] == "done"
    logs = seen("GET", f"{server.url}/jobs/{job}/logs")
    assert logs.status_code == 200
    assert logs.text.splitlines() == ["execute: working", f"execute: {REDACTED}"]
    assert seen("GET", f"{server.url}/jobs/{job}/logs", params={"tail": "1"}).text == f"execute: {REDACTED}\n"


def test_a_failure_message_carrying_a_secret_is_redacted(seen: Seen, server: Pygeoapi) -> None:
    job = submitted(seen, execute(seen, server, "leak-fail", {}))
    status = finished(seen, server, job)
    assert status["status"] == "failed"
    assert status["message"].startswith("Error (exit code 4): failing with *** (step ")
    results = seen("GET", f"{server.url}/jobs/{job}/results", headers=JSON)
    assert results.status_code == 400 and "failing with ***" in results.json()["description"]


@pytest.mark.parametrize("inputs", [
    {"api_token": CLIENT},  # not an input of the process
    {"options": {"mode": "x", "auth": {"password": CLIENT}}},  # under a secret-looking key of a value
], ids=["top-level", "nested"])
def test_a_secret_sent_as_an_input_is_refused_unechoed_and_never_submitted(
        seen: Seen, server: Pygeoapi, argo: Emulator, inputs: dict) -> None:
    before = workflows(argo)
    resp = execute(seen, server, "leak-print", inputs)
    assert resp.status_code == 400, resp.text
    assert "looks like a secret" in resp.json()["description"]
    assert CLIENT not in resp.text
    assert workflows(argo) == before


def test_the_documents_a_client_reads_hold_no_secret(seen: Seen, server: Pygeoapi) -> None:
    for path in ("/", "/openapi?f=json", "/conformance", "/processes", "/processes/leak-print", "/jobs",
                 "/jobs?limit=1000", "/metrics", "/jobs/no-such-job", "/jobs/no-such-job/logs",
                 "/jobs/no-such-job/results", "/processes/leak-print/jobs", "/jobs?status=bogus"):
        resp = seen("GET", f"{server.url}{path}", headers=JSON)
        assert resp.status_code < 500, (path, resp.status_code)
    bad = seen("POST", f"{server.url}/processes/leak-print/execution", data=b"\xff{", headers=JSON)
    assert bad.status_code == 400


def workflows(argo: Emulator) -> list[dict]:
    resp = requests.get(f"{argo.url}/api/v1/workflows/{argo.namespace}", headers=argo.headers(), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json().get("items") or []


def test_no_secret_anywhere(seen: Seen, server: Pygeoapi, argo: Emulator, s3: S3Server, files: Path) -> None:
    """Runs last: every place a secret could have reached, after the jobs above."""
    submitted = workflows(argo)
    assert len(submitted) == 2
    places = {f"answer {i}": text for i, text in enumerate(seen.answers)}
    for wf in submitted:
        meta, spec = wf["metadata"], wf["spec"]
        places[f"workflow {meta['name']}"] = json.dumps(
            [meta.get("annotations"), meta.get("labels"), spec.get("arguments")])
    store = server.config.parent
    for path in store.glob("jobs.db*"):  # the file, its WAL and shared memory
        places[str(path)] = path.read_bytes().decode("latin-1")
    for path in s3.root.rglob("*"):  # this module's objects (the S3 server is shared by the session)
        if path.is_file() and any(job in str(path) for job in seen.jobs):
            places[str(path)] = path.read_bytes().decode("latin-1")
    assert any("/logs/" in name for name in places), "no archived log copy on S3 was checked"
    server.stop()
    stop(argo.proc)
    places["pygeoapi log file"] = (files / "pygeoapi.log").read_text(errors="replace")
    places["pygeoapi stdout/stderr"] = (files / "pygeoapi.out").read_text(errors="replace")
    places["emulator stderr"] = (files / "emulator.err").read_text(errors="replace")
    places["emulator stdout"] = argo.proc.stdout.read()
    assert "DEBUG" in places["pygeoapi log file"] and "urllib3" in places["pygeoapi log file"]
    assert '"api_token": "***"' in places["pygeoapi log file"]  # pygeoapi's body log, masked
    leaks = [f"{what} in {where}" for where, text in places.items() for what, value in SECRETS.items()
             if value in text]
    assert not leaks, leaks
