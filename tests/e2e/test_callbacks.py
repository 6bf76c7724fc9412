"""Subscriber callbacks and the reconciler's lease, end to end over real HTTP.

pygeoapi (gunicorn, two workers) → reconciler → the Argo emulator's ``workflow-events`` stream; the
callbacks land on a real HTTP listener on 127.0.0.1 (the test processes allow internal requests).
Nobody polls the jobs while they run: whatever reaches the listener, the reconciler sent.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from conftest import Emulator, Pygeoapi, scripted_template

from pygeoapi_argo.jobs import JobStore
from pygeoapi_argo.reconciler import LEASE

DATA = '{"answer": 42}'
FAST = {"reconciler": {"lease_seconds": 3, "poll_seconds": 2}}




TEMPLATES = [
    scripted_template("cb-slow", {"sleep": 4, "outputs": {"/output/data.json": DATA}}),
    scripted_template("cb-quick", {"outputs": {"/output/data.json": DATA}}),
    scripted_template("cb-fail", {"sleep": 0.5, "exitCode": 3}),
]


def resource(name: str, **options) -> dict:
    return {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                             "workflow_template": name, **options}}


RESOURCES = {
    **{t["metadata"]["name"]: resource(t["metadata"]["name"], allow_internal_requests=True)
       for t in TEMPLATES},
    "cb-private": resource("cb-quick"),  # internal requests not allowed
}


class Listener:
    """A callback receiver: records every POST (path, JSON body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        calls, lock = self.calls, self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    calls.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscriber(self, job: str) -> dict:
        return {"successUri": f"{self.url}/{job}/success", "inProgressUri": f"{self.url}/{job}/progress",
                "failedUri": f"{self.url}/{job}/failed"}

    def received(self, path: str) -> list[object]:
        with self.lock:
            return [body for p, body in self.calls if p == path]

    def wait_for(self, path: str, timeout: float = 30) -> list[object]:
        deadline = time.monotonic() + timeout
        while not self.received(path):
            assert time.monotonic() < deadline, f"no callback to {path} within {timeout} s: {self.calls}"
            time.sleep(0.1)
        return self.received(path)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def cb_emulator(emulator: Emulator) -> Emulator:
    for body in TEMPLATES:
        resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                             json={"template": body}, headers=emulator.headers(), timeout=10)
        assert resp.status_code == 200 or "already exists" in resp.text, resp.text
    return emulator


def execute(server: Pygeoapi, process_id: str, subscriber: dict) -> requests.Response:
    return requests.post(f"{server.url}/processes/{process_id}/execution",
                         json={"inputs": {}, "subscriber": subscriber}, timeout=30)


def job_id_of(resp: requests.Response) -> str:
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def store_of(server: Pygeoapi) -> JobStore:
    config = yaml.safe_load(Path(server.config).read_text())
    return JobStore(config["server"]["manager"]["connection"])


def workflow_phase(emulator: Emulator, job_id: str) -> str | None:
    resp = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                        headers=emulator.headers(), timeout=10)
    return resp.json().get("status", {}).get("phase") if resp.ok else None


def workers(server: Pygeoapi) -> set[int]:
    """gunicorn's worker processes: the children of the served process (gunicorn's arbiter)."""
    pid = server.proc.pid
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def lease_pid(store: JobStore) -> int | None:
    holder = store.lease_holder(LEASE)
    return int(holder.split("-", 1)[0]) if holder else None


def test_success_callback_once_across_restarts(start_pygeoapi, cb_emulator: Emulator,
                                               listener: Listener) -> None:
    first = start_pygeoapi(cb_emulator, manager=FAST, resources=RESOURCES)
    job_id = job_id_of(execute(first, "cb-slow", listener.subscriber("restart")))
    first.stop()  # mid-job: the workflow ends while no pygeoapi runs
    deadline = time.monotonic() + 30
    while workflow_phase(cb_emulator, job_id) != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert listener.received("/restart/success") == []

    second = start_pygeoapi(cb_emulator, config=first.config)
    [document] = listener.wait_for("/restart/success")
    [output] = document.values()
    assert requests.get(output["href"], timeout=10).text == DATA  # the results document, presigned
    status = requests.get(f"{second.url}/jobs/{job_id}?f=json", timeout=10).json()
    assert status["status"] == "successful"

    second.stop()  # sent and recorded: a third start sends nothing again
    third = start_pygeoapi(cb_emulator, config=first.config)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        time.sleep(0.5)
    third.stop()
    assert len(listener.received("/restart/success")) == 1
    assert len(listener.received("/restart/progress")) <= 1
    assert listener.received("/restart/failed") == []
    tasks = store_of(first).job_tasks(job_id)
    assert tasks["successUri"].state == "done" and tasks["failedUri"].state == "skipped"


def test_failed_job_calls_failed_uri_once(start_pygeoapi, cb_emulator: Emulator, listener: Listener) -> None:
    server = start_pygeoapi(cb_emulator, manager=FAST, resources=RESOURCES)
    try:
        job_id = job_id_of(execute(server, "cb-fail", listener.subscriber("fail")))
        [body] = listener.wait_for("/fail/failed")
        assert body["jobID"] == job_id and body["type"] == "JobFailed" and body["detail"]
        time.sleep(3)  # a few more reconciler rounds: nothing else arrives
        assert len(listener.received("/fail/failed")) == 1
        assert listener.received("/fail/success") == []
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/cb", "http://10.1.2.3/cb", "http://[::1]/cb",
                                 "http://169.254.169.254/latest", "file:///etc/passwd"])
def test_private_subscriber_refused_at_execute(pygeoapi_cb: Pygeoapi, url: str) -> None:
    resp = execute(pygeoapi_cb, "cb-private", {"successUri": url})
    assert resp.status_code == 400, resp.text
    assert "subscriber" in resp.json()["description"]


def test_two_workers_one_lease_holder_and_takeover(pygeoapi_cb: Pygeoapi, cb_emulator: Emulator,
                                                   listener: Listener) -> None:
    store = store_of(pygeoapi_cb)
    deadline = time.monotonic() + 15
    while lease_pid(store) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pids = workers(pygeoapi_cb)
    assert len(pids) == 2
    holders = set()
    for _ in range(8):  # across several renewals (every second with a 3 s lease)
        holders.add(lease_pid(store))
        time.sleep(0.5)
    [holder] = holders
    assert holder in pids

    os.kill(holder, signal.SIGKILL)  # the leader dies without releasing its lease
    killed = time.monotonic()
    while lease_pid(store) in (holder, None):
        assert time.monotonic() - killed < 3 + 1 + 5, "no takeover"
        time.sleep(0.2)
    assert lease_pid(store) in workers(pygeoapi_cb) - {holder}
    job_id = job_id_of(execute(pygeoapi_cb, "cb-quick", listener.subscriber("takeover")))
    [document] = listener.wait_for("/takeover/success")
    assert len(document) == 1 and job_id


@pytest.fixture(scope="module")
def pygeoapi_cb(start_pygeoapi, cb_emulator: Emulator) -> Iterator[Pygeoapi]:
    server = start_pygeoapi(cb_emulator, manager=FAST, resources=RESOURCES)
    yield server
    server.stop()
