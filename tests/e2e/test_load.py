"""Load: many concurrent async executions and status pollers through gunicorn (4 workers) on the
PostgreSQL job store (issue 6, item 2).

Every execution must be accepted once (a 201 and its own job id), every job must have exactly one
workflow, every job must end, and no poll may fail while the server is under the submit burst.
The figures (throughput, p50/p95) are printed (``pytest -s``), never asserted: CI's 2 shared cores
make speed meaningless as a pass/fail criterion.

CI size: 40 executions, 5 pollers for 10 s. The issue's full size (200 executions, 20 pollers for
60 s) runs by hand::

    LOAD_FULL=1 .venv/bin/pytest tests/e2e/test_load.py -s -p no:warnings

Steps are the emulator's scripted mode (a 0.2 s sleep and one output file uploaded to S3), so the
load falls on pygeoapi, the job store, the reconciler and the emulator's API, not on process starts.
A dedicated emulator (over the sample templates) holds only this module's workflows, so "exactly N" can
be counted there.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
from conftest import Emulator, Pygeoapi

from pygeoapi_argo.jobs import JobStore

FULL = os.environ.get("LOAD_FULL") == "1"
EXECUTIONS = 200 if FULL else 40
POLLERS = 20 if FULL else 5
POLL_SECONDS = 60.0 if FULL else 10.0
SETTLE_SECONDS = 300.0 if FULL else 90.0  # after the pollers stop, for the last jobs to end
WORKERS = 4
PROCESS = "load-quick"
JSON = {"Accept": "application/json"}
OGC_STATUSES = {"accepted", "running", "successful", "failed", "dismissed"}
TEMPLATE = {"metadata": {"name": PROCESS}, "spec": {"entrypoint": "execute", "templates": [{
    "name": "execute", "container": {"image": "alpine:3.20", "command": ["true"]},
    "metadata": {"annotations": {"emulator.pygeoapi-argo.io/scripted": json.dumps(
        {"sleep": 0.2, "outputs": {"/output/data.json": '{"ok": true}'}})}},
    "outputs": {"artifacts": [{"name": "output", "path": "/output", "archive": {"none": {}},
                               "s3": {"key": "{{workflow.name}}/output"}}]}}]}}
RESOURCES = {PROCESS: {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                                        "workflow_template": PROCESS}}}


@dataclass
class Loaded:
    server: Pygeoapi
    emulator: Emulator
    connection: str


@pytest.fixture(scope="module")
def loaded(postgres, start_emulator, start_pygeoapi) -> Loaded:
    emulator = start_emulator()
    requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                  json={"template": TEMPLATE}, timeout=10).raise_for_status()
    connection = postgres.create_database("load")
    server = start_pygeoapi(emulator, resources=RESOURCES, workers=WORKERS,
                            manager={"connection": connection})
    return Loaded(server=server, emulator=emulator, connection=connection)


@dataclass
class Polls:
    """What the pollers saw: request latencies and every failure, shared by their threads."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, elapsed: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(elapsed)
            if error:
                self.errors.append(error)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(samples)
    return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def execute(url: str) -> tuple[str, float]:
    start = time.perf_counter()
    response = requests.post(f"{url}/processes/{PROCESS}/execution", json={"inputs": {}},
                             headers={**JSON, "Prefer": "respond-async"}, timeout=180)
    elapsed = time.perf_counter() - start
    assert response.status_code == 201, (response.status_code, response.text[:500])
    return response.headers["Location"].rsplit("/", 1)[-1], elapsed


def poll(url: str, job_ids: list[str], polls: Polls, until: float, seed: int) -> None:
    """One client on its own keep-alive connection: a random known job's status, and every tenth
    request the first page of ``/jobs`` (also before any job id is known)."""
    session, rng, n = requests.Session(), random.Random(seed), 0
    while time.monotonic() < until:
        n += 1
        known = list(job_ids)
        listing = not known or n % 10 == 0
        path = "/jobs?limit=50" if listing else f"/jobs/{rng.choice(known)}"
        start = time.perf_counter()
        error = None
        try:
            response = session.get(url + path, headers=JSON, timeout=60)
            body = response.json()
            if response.status_code != 200:
                error = f"{path}: {response.status_code} {response.text[:300]}"
            elif listing and not all(job["status"] in OGC_STATUSES for job in body["jobs"]):
                error = f"{path}: bad status in {body['jobs']}"
            elif not listing and body.get("status") not in OGC_STATUSES:
                error = f"{path}: {body}"
        except (requests.RequestException, ValueError, KeyError) as err:
            error = f"{path}: {err!r}"
        polls.record(time.perf_counter() - start, error)
        time.sleep(0.05)  # a client polling, not a busy loop


def wait_all_final(store: JobStore, expected: int, timeout: float) -> None:
    """Until every job in the store is final (or the timeout): watched while the pollers poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records, total = store.list()
        if total == expected and all(r.is_final for r in records):
            return
        time.sleep(0.25)


@pytest.mark.timeout(900 if FULL else 240)
def test_concurrent_executions_under_polling_all_end_exactly_once(loaded: Loaded) -> None:
    url = loaded.server.url
    job_ids: list[str] = []  # appended by the submit threads, read by the pollers
    polls = Polls()
    until = time.monotonic() + POLL_SECONDS
    pollers = [threading.Thread(target=poll, args=(url, job_ids, polls, until, n), daemon=True)
               for n in range(POLLERS)]
    for thread in pollers:
        thread.start()

    def submit(_: int) -> float:
        job_id, elapsed = execute(url)
        job_ids.append(job_id)
        return elapsed

    burst_start = time.perf_counter()
    with ThreadPoolExecutor(EXECUTIONS) as pool:
        submit_latencies = list(pool.map(submit, range(EXECUTIONS)))
    burst = time.perf_counter() - burst_start
    store = JobStore(loaded.connection)
    try:
        wait_all_final(store, EXECUTIONS, POLL_SECONDS + SETTLE_SECONDS)
        all_final = time.perf_counter() - burst_start
        for thread in pollers:
            thread.join(POLL_SECONDS + 120)
        assert not any(thread.is_alive() for thread in pollers)
        records, total = store.list()
    finally:
        store.dispose()

    print(f"\nload: {EXECUTIONS} concurrent async executions, gunicorn {WORKERS} workers, PostgreSQL store")
    print(f"  submit burst: {burst:.2f} s, {EXECUTIONS / burst:.1f} executions/s; 201 latency "
          f"p50 {percentile(submit_latencies, 0.5):.0f} ms, p95 {percentile(submit_latencies, 0.95):.0f} ms, "
          f"max {1000 * max(submit_latencies):.0f} ms")
    print(f"  all jobs final {all_final:.1f} s after the first submit ({EXECUTIONS / all_final:.1f} jobs/s "
          "end to end)")
    if polls.latencies:
        lat = polls.latencies
        print(f"  {POLLERS} pollers x {POLL_SECONDS:.0f} s: {len(lat)} requests "
              f"({len(lat) / POLL_SECONDS:.1f}/s), "
              f"p50 {percentile(lat, 0.5):.0f} ms, p95 {percentile(lat, 0.95):.0f} ms, "
              f"max {1000 * max(lat):.0f} ms, errors {len(polls.errors)}")

    assert not polls.errors, polls.errors[:5]
    assert len(polls.latencies) >= 3 * POLLERS  # the pollers did poll
    assert len(job_ids) == len(set(job_ids)) == EXECUTIONS  # one job per execute, no id twice

    # the store: exactly these jobs, all ended, successfully (the step cannot fail)
    assert total == EXECUTIONS and {r.job_id for r in records} == set(job_ids)
    unfinished = [(r.job_id, r.status) for r in records if not r.is_final]
    assert not unfinished, f"{len(unfinished)} jobs not final after {all_final:.0f} s: {unfinished[:5]}"
    assert {r.status for r in records} == {"successful"}, [(r.job_id, r.status, r.message) for r in records
                                                           if r.status != "successful"][:5]
    assert all(r.results for r in records)

    # Argo: exactly one workflow per job, and nothing else
    workflows = requests.get(f"{loaded.emulator.url}/api/v1/workflows/{loaded.emulator.namespace}",
                             timeout=60).json()["items"] or []
    names = sorted(wf["metadata"]["name"] for wf in workflows)
    assert names == sorted(f"pygeoapi-job-{job_id}" for job_id in job_ids)
    assert {wf["status"]["phase"] for wf in workflows} == {"Succeeded"}

    # the API agrees with the store
    listed = requests.get(f"{url}/jobs", params={"limit": 1000}, headers=JSON, timeout=60).json()
    assert listed["numberMatched"] == EXECUTIONS
    assert sorted(job["jobID"] for job in listed["jobs"]) == sorted(job_ids)
    assert {job["status"] for job in listed["jobs"]} == {"successful"}
