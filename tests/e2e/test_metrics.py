"""``/metrics`` end to end: pygeoapi under gunicorn with two workers (``pygeoapi-argo serve`` sets up
prometheus-client's multiprocess mode), jobs run by the emulator, the exposition parsed with
prometheus-client's own parser and checked against the job list, and each job's usage in its status.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime

import pytest
import requests
from conftest import Emulator, Pygeoapi
from ogc_schemas import assert_valid
from prometheus_client.parser import text_string_to_metric_families

JSON = {"Accept": "application/json"}
ASYNC = {**JSON, "Prefer": "respond-async"}
FINAL = {"successful", "failed", "dismissed"}
HANG = {"metadata": {"name": "metrics-hang"}, "spec": {"entrypoint": "execute", "templates": [{
    "name": "execute", "container": {"image": "alpine:3.20", "command": ["true"]},
    "metadata": {"annotations": {"emulator.pygeoapi-argo.io/scripted": json.dumps({"hang": True})}}}]}}
RUNS = [("echo", {"message": "count me", "case": "upper"})] * 3 + [("fail", {"reason": "on purpose"}),
                                                                   ("metrics-hang", {})]


def execute(server: Pygeoapi, process_id: str, inputs: dict) -> str:
    resp = requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": inputs},
                         headers=ASYNC, timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def status(server: Pygeoapi, job_id: str) -> dict:
    resp = requests.get(f"{server.url}/jobs/{job_id}", headers=JSON, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_final(server: Pygeoapi, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (body := status(server, job_id))["status"] not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {body['status']}"
        time.sleep(0.3)
    return body


@pytest.fixture(scope="module")
def run(start_pygeoapi, emulator: Emulator) -> tuple[Pygeoapi, dict[str, str]]:
    """A server of its own (its own job store) after five jobs: three echo, one fail, and one whose
    workflow was deleted behind our back while it ran (Argo answers 404 for it)."""
    resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                         json={"template": HANG}, headers=emulator.headers(), timeout=10)
    assert resp.status_code == 200 or "already exists" in resp.text, resp.text
    server = start_pygeoapi(emulator, resources={"metrics-hang": {"type": "process", "processor": {
        "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": "metrics-hang"}}})
    jobs = {execute(server, process_id, inputs): process_id for process_id, inputs in RUNS}
    hang = next(job_id for job_id, process_id in jobs.items() if process_id == "metrics-hang")
    resp = requests.delete(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{hang}",
                           headers=emulator.headers(), timeout=10)
    assert resp.status_code == 200, resp.text
    for job_id in jobs:
        wait_final(server, job_id)
    return server, jobs


def scrape(server: Pygeoapi) -> dict[str, dict[tuple, float]]:
    resp = requests.get(f"{server.url}/metrics", timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_job_counts_match_the_job_list(run):
    server, jobs = run
    resp = requests.get(f"{server.url}/jobs", params={"limit": 100}, headers=JSON, timeout=60)
    listed = resp.json()["jobs"]
    assert {j["jobID"] for j in listed} == set(jobs)
    expected = Counter((j["processID"], j["status"]) for j in listed)
    assert expected[("echo", "successful")] == 3 and expected[("fail", "failed")] == 1
    counted = {(dict(labels)["process"], dict(labels)["status"]): value
               for labels, value in scrape(server)["pygeoapi_argo_jobs"].items()}
    assert counted == expected


def test_counts_of_every_worker_add_up(run):
    """Two gunicorn workers took the submits; whichever answers a scrape counts all five."""
    server, _ = run
    for _ in range(6):
        found = scrape(server)
        submits = {dict(labels)["process"]: value
                   for labels, value in found["pygeoapi_argo_submit_seconds_count"].items()}
        assert submits == {"echo": 3, "fail": 1, "metrics-hang": 1}
        creates = found["pygeoapi_argo_argo_request_seconds_count"][
            (("method", "POST"), ("operation", "workflows"))]
        assert creates == 5
        # the workflow deleted behind our back: Argo answered 404 when the job was refreshed
        assert found["pygeoapi_argo_argo_request_errors_total"][
            (("error", "ArgoNotFound"), ("method", "GET"), ("operation", "workflows/{name}"))] >= 1
        assert "pygeoapi_argo_reconciler_lag_seconds_count" in found


def test_finished_job_status_carries_duration_and_resources(run, emulator: Emulator):
    server, jobs = run
    cpu, durations = 0, 0.0
    for job_id in (j for j, p in jobs.items() if p == "echo"):
        body = status(server, job_id)
        assert_valid("statusInfo.yaml", body)
        took = datetime.fromisoformat(body["finished"]) - datetime.fromisoformat(body["started"])
        assert body["duration"] == pytest.approx(took.total_seconds()) and 0 <= body["duration"] < 60
        usage = body["resourcesDuration"]
        assert usage["cpu"] >= 1 and usage["memory"] >= 1  # a real python process ran
        workflow = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                                headers=emulator.headers(), timeout=10).json()
        assert workflow["status"]["resourcesDuration"] == usage
        pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
        assert sum(n["resourcesDuration"]["cpu"] for n in pods) == usage["cpu"]
        cpu += usage["cpu"]
        durations += body["duration"]
    found = scrape(server)
    assert found["pygeoapi_argo_jobs_cpu_seconds"][(("process", "echo"), ("status", "successful"))] == cpu
    assert found["pygeoapi_argo_jobs_duration_seconds"][(("process", "echo"), ("status", "successful"))] == \
        pytest.approx(durations)


def test_running_job_has_no_usage_members(run):
    server, jobs = run
    hang = next(j for j, p in jobs.items() if p == "metrics-hang")
    body = status(server, hang)
    assert body["status"] == "failed"  # its workflow vanished: no resourcesDuration to report
    assert "resourcesDuration" not in body
