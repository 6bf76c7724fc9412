"""``GET /jobs/{id}/logs`` end to end: live from the emulator's log API while pods live, archived after.

The emulator runs with a token, so the Argo token really reaches pygeoapi (and must be redacted),
and pygeoapi is told to redact ``AWS_SECRET_ACCESS_KEY`` (the S3 secret in its environment). The
test-only templates are scripted steps (their log lines are exactly what the test says):

- ``logs-steps``: two steps (``prepare`` of template ``say-prepare``, ``report`` of ``say-report``),
  no ``archiveLogs``: pygeoapi copies the logs to S3 when the job ends;
- ``logs-gc``: ``podGC: OnPodCompletion`` and ``archiveLogs``: the pods (and their live logs) are gone
  before the job ends; the logs are read from Argo's ``main-logs`` artifacts;
- ``logs-live``: logs, then hangs: a running job.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from conftest import S3_SECRET_KEY, Emulator, Pygeoapi, S3Server
from ogc_schemas import assert_valid

from pygeoapi_argo.logs import REDACTED

SCRIPTED = "emulator.pygeoapi-argo.io/scripted"
TOKEN = "logs-test-token-5f1c9a"
JSON = {"Accept": "application/json"}
PREPARE = ["prepare 1", "prepare 2", "prepare 3"]
REPORT = ["report 1", f"the key is {S3_SECRET_KEY} here", f"Authorization: Bearer {TOKEN}", "report done"]


def scripted(name: str, script: dict) -> dict:
    return {"name": name, "metadata": {"annotations": {SCRIPTED: json.dumps(script)}},
            "container": {"image": "alpine:3.20", "command": ["true"]}}


TEMPLATES = [
    {"metadata": {"name": "logs-steps"}, "spec": {"entrypoint": "execute", "templates": [
        {"name": "execute", "steps": [[{"name": "prepare", "template": "say-prepare"}],
                                      [{"name": "report", "template": "say-report"}]]},
        scripted("say-prepare", {"logs": PREPARE}),
        scripted("say-report", {"logs": REPORT}),
    ]}},
    {"metadata": {"name": "logs-gc"}, "spec": {
        "entrypoint": "execute", "podGC": {"strategy": "OnPodCompletion"}, "archiveLogs": True,
        "templates": [scripted("execute", {"logs": ["collected 1", "collected 2"], "sleep": 0.3})]}},
    {"metadata": {"name": "logs-live"}, "spec": {"entrypoint": "execute", "templates": [
        scripted("execute", {"logs": ["started", "working"], "hang": True})]}},
]
RESOURCES = {t["metadata"]["name"]: {"type": "process", "processor": {
    "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": t["metadata"]["name"]}} for t in TEMPLATES}


@pytest.fixture(scope="module")
def argo(start_emulator) -> Emulator:
    emulator = start_emulator(token=TOKEN)
    for template in TEMPLATES:
        resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                             json={"template": template}, headers=emulator.headers(), timeout=10)
        assert resp.status_code == 200, resp.text
    return emulator


@pytest.fixture(scope="module")
def server(start_pygeoapi, argo: Emulator) -> Pygeoapi:
    return start_pygeoapi(argo, resources=RESOURCES,
                          manager={"logs": {"redact": ["AWS_SECRET_ACCESS_KEY"]}})


def execute(server: Pygeoapi, process_id: str) -> str:
    resp = requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": {}},
                         headers=JSON, timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def logs(server: Pygeoapi, job_id: str, **params) -> requests.Response:
    return requests.get(f"{server.url}/jobs/{job_id}/logs", params=params, timeout=60)


def text(server: Pygeoapi, job_id: str, **params) -> list[str]:
    resp = logs(server, job_id, **params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert S3_SECRET_KEY not in resp.text and TOKEN not in resp.text
    return resp.text.splitlines()


def argo_live_log(argo: Emulator, job_id: str) -> str:
    resp = requests.get(f"{argo.url}/api/v1/workflows/{argo.namespace}/pygeoapi-job-{job_id}/log",
                        params={"logOptions.container": "main"}, headers=argo.headers(), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.text


def delete_workflow(argo: Emulator, job_id: str) -> None:
    resp = requests.delete(f"{argo.url}/api/v1/workflows/{argo.namespace}/pygeoapi-job-{job_id}",
                           headers=argo.headers(), timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def steps_job(server: Pygeoapi, argo: Emulator) -> str:
    """A finished two-step job whose workflow (and pods) Argo has since deleted."""
    job_id = execute(server, "logs-steps")
    server.wait(job_id, "successful")
    delete_workflow(argo, job_id)
    return job_id


def test_status_links_the_logs(server: Pygeoapi, steps_job: str):
    body = server.wait(steps_job, "successful")
    assert_valid("statusInfo.yaml", body)
    link = next(link for link in body["links"] if link["rel"] == "logs")
    assert link == {"href": f"{server.url}/jobs/{steps_job}/logs", "rel": "logs", "type": "text/plain",
                    "title": "Job logs"}


def test_logs_archived_at_the_end_outlive_the_workflow(server: Pygeoapi, steps_job: str, s3: S3Server):
    lines = text(server, steps_job)
    expected = [f"prepare: {line}" for line in PREPARE] + [
        "report: report 1", f"report: {REDACTED}", f"report: {REDACTED}", "report: report done"]
    assert lines == expected
    archived = s3.root / "results" / "jobs" / "logs" / steps_job
    assert sorted(p.name for p in archived.iterdir()) == ["prepare.log", "report.log"]
    stored = (archived / "report.log").read_text()
    assert "report done" in stored and S3_SECRET_KEY not in stored and TOKEN not in stored


def test_step_by_display_name_or_template_name(server: Pygeoapi, steps_job: str):
    assert text(server, steps_job, step="prepare") == PREPARE
    assert text(server, steps_job, step="say-report") == ["report 1", REDACTED, REDACTED, "report done"]


def test_tail(server: Pygeoapi, steps_job: str):
    assert text(server, steps_job, tail="2") == [f"report: {REDACTED}", "report: report done"]
    assert text(server, steps_job, step="prepare", tail="1") == ["prepare 3"]
    assert text(server, steps_job, tail="0") == []


@pytest.mark.parametrize("params", [{"step": "nope"}, {"tail": "-1"}, {"tail": "many"}, {"tail": "1e3"}])
def test_bad_parameters_are_400(server: Pygeoapi, steps_job: str, params: dict):
    resp = logs(server, steps_job, **params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "InvalidParameterValue"


def test_unknown_job_is_404(server: Pygeoapi):
    resp = logs(server, "00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404, resp.text
    assert resp.json()["code"] == "NoSuchJob"


def test_logs_after_pod_gc_come_from_argos_log_artifacts(server: Pygeoapi, argo: Emulator, s3: S3Server):
    job_id = execute(server, "logs-gc")
    server.wait(job_id, "successful")
    assert argo_live_log(argo, job_id) == ""  # the emulator collected the pod: no live log left
    assert text(server, job_id, step="execute") == ["collected 1", "collected 2"]
    assert not (s3.root / "results" / "jobs" / "logs" / job_id).exists()  # Argo's copy, not ours
    delete_workflow(argo, job_id)
    assert text(server, job_id, tail="1") == ["execute: collected 2"]


def test_live_logs_of_a_running_job(server: Pygeoapi, argo: Emulator):
    job_id = execute(server, "logs-live")
    server.wait(job_id, "running")
    deadline = time.monotonic() + 10
    while (lines := text(server, job_id, step="execute")) != ["started", "working"]:
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)
    assert text(server, job_id, tail="1") == ["execute: working"]
    assert "started" in argo_live_log(argo, job_id)
    assert requests.delete(f"{server.url}/jobs/{job_id}", headers=JSON, timeout=60).status_code == 200
