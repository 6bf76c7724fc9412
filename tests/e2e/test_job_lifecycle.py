"""The job life cycle and its faults, end to end over real HTTP (issue 3, part B).

pygeoapi (gunicorn, ``pygeoapi-argo serve``) → ``ArgoManager`` → hera → the Argo emulator → scripted
steps → ``rclone serve s3``. Steps are the emulator's scripted mode (exact sleeps, hangs and output
files, no interpreter start-up), exposed as test-only processes ``lc-*`` whose WorkflowTemplates are
created through the emulator's HTTP API. Faults are real: emulator processes are stopped, workflows
deleted behind pygeoapi's back, pygeoapi restarted on its job store, and create answers lost or
doubled by a relay between pygeoapi and the emulator. Where a test is about what a request does
(its Argo calls), pygeoapi runs without the background reconciler, which would otherwise do the
same work on its own schedule.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import Emulator, Pygeoapi, S3Server, scripted_template
from ogc_schemas import assert_valid

JSON = {"Accept": "application/json"}
DATA = '{"answer": 42}'
VANISHED = re.compile(r"disappeared|vanished", re.IGNORECASE)


# --- test-only processes ---------------------------------------------------------------------------




TEMPLATES = [
    scripted_template("lc-quick", {"outputs": {"/output/data.json": DATA}}),
    scripted_template("lc-slow", {"sleep": 3, "outputs": {"/output/data.json": DATA}}),
    scripted_template("lc-hang", {"hang": True}),
    # Argo garbage-collects the workflow (and its pods) soon after it ends
    scripted_template("lc-gc", {"sleep": 0.5, "outputs": {"/output/data.json": DATA}},
                      ttlStrategy={"secondsAfterCompletion": 2}, podGC={"strategy": "OnPodCompletion"}),
]
RESOURCES = {
    t["metadata"]["name"]: {"type": "process",
                            "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                          "workflow_template": t["metadata"]["name"]}}
    for t in TEMPLATES
}


def add_templates(emulator: Emulator) -> None:
    for template in TEMPLATES:
        resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                             json={"template": template}, headers=emulator.headers(), timeout=10)
        assert resp.status_code == 200 or "already exists" in resp.text, resp.text


# --- talking to pygeoapi and to the emulator --------------------------------------------------------


def execute(server: Pygeoapi, process_id: str, timeout: float = 60) -> str:
    """Submit asynchronously (no ``Prefer``, as eodash does); the job id from ``Location``."""
    resp = requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": {}},
                         headers=JSON, timeout=timeout)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def stays(server: Pygeoapi, job_id: str, status: str, seconds: float = 1.5) -> None:
    """The job keeps ``status`` for a while: the background reconciler has seen the workflow's end too."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.job(job_id)["status"] == status
        time.sleep(0.3)


def results(server: Pygeoapi, job_id: str) -> dict:
    resp = requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_valid("results.yaml", body)
    return body


def fetch_output(document: dict) -> str:
    """The ``output`` file through its presigned URL: the bytes the step wrote."""
    resp = requests.get(document["output"]["href"], timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.text


def dismiss(server: Pygeoapi, job_id: str) -> requests.Response:
    return requests.delete(f"{server.url}/jobs/{job_id}", headers=JSON, timeout=60)


def workflow_of(emulator: Emulator, job_id: str) -> requests.Response:
    return requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                        headers=emulator.headers(), timeout=10)


def wait_workflow(emulator: Emulator, job_id: str, done: Callable[[requests.Response], bool],
                  timeout: float = 15) -> requests.Response:
    deadline = time.monotonic() + timeout
    while not done(resp := workflow_of(emulator, job_id)):
        assert time.monotonic() < deadline, f"workflow of job {job_id}: {resp.status_code} {resp.text[:300]}"
        time.sleep(0.2)
    return resp


def finished(resp: requests.Response) -> bool:
    return resp.ok and resp.json().get("status", {}).get("phase") in ("Succeeded", "Failed", "Error")


def output_key(job_id: str) -> str:
    return f"pygeoapi-job-{job_id}/output/data.json"


def in_s3(s3: S3Server, job_id: str) -> bool:
    return (s3.root / "artifacts" / output_key(job_id)).is_file()


# --- servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lifecycle(start_pygeoapi, emulator: Emulator) -> Pygeoapi:
    """pygeoapi with the default dismiss settings (terminate; keep workflow and results)."""
    add_templates(emulator)
    return start_pygeoapi(emulator, resources=RESOURCES)


@pytest.fixture(scope="module")
def thorough(start_pygeoapi, emulator: Emulator) -> Pygeoapi:
    """pygeoapi that dismisses by stop and deletes a finished job's workflow and S3 results."""
    add_templates(emulator)
    return start_pygeoapi(emulator, resources=RESOURCES, manager={
        "dismiss": {"strategy": "stop", "delete_workflow": True, "delete_results": True}})


# --- dismiss ---------------------------------------------------------------------------------------


def test_dismiss_running_job_terminates_its_workflow(lifecycle: Pygeoapi, emulator: Emulator):
    job_id = execute(lifecycle, "lc-hang")
    lifecycle.wait(job_id, "running")

    resp = dismiss(lifecycle, job_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dismissed"
    assert resp.json()["jobID"] == job_id

    workflow = wait_workflow(emulator, job_id, finished).json()
    assert workflow["spec"]["shutdown"] == "Terminate"
    assert workflow["status"]["phase"] == "Failed"
    assert workflow["status"]["message"] == "Stopped with strategy 'Terminate'"

    # the Failed workflow never turns the dismissed job into a failed one
    stays(lifecycle, job_id, "dismissed")
    assert lifecycle.jobs()[job_id]["status"] == "dismissed"
    again = dismiss(lifecycle, job_id)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "dismissed"
    assert lifecycle.job(job_id)["status"] == "dismissed"


def test_dismiss_answer_is_an_ogc_status_info(lifecycle: Pygeoapi):
    job_id = execute(lifecycle, "lc-hang")
    resp = dismiss(lifecycle, job_id)
    assert resp.status_code == 200, resp.text
    assert_valid("statusInfo.yaml", resp.json())


def test_dismiss_with_the_stop_strategy(thorough: Pygeoapi, emulator: Emulator):
    job_id = execute(thorough, "lc-hang")
    thorough.wait(job_id, "running")
    resp = dismiss(thorough, job_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dismissed"

    workflow = wait_workflow(emulator, job_id, finished).json()
    assert workflow["spec"]["shutdown"] == "Stop"
    assert workflow["status"]["phase"] == "Failed"
    assert workflow["status"]["message"] == "Stopped with strategy 'Stop'"
    stays(thorough, job_id, "dismissed")


def test_dismiss_straight_after_submit(lifecycle: Pygeoapi, emulator: Emulator):
    """Dismissed before anyone polled it: the workflow ends, the job stays dismissed."""
    job_id = execute(lifecycle, "lc-hang")
    resp = dismiss(lifecycle, job_id)
    assert resp.status_code == 200, resp.text
    workflow = wait_workflow(emulator, job_id, finished).json()
    assert workflow["spec"]["shutdown"] == "Terminate"
    stays(lifecycle, job_id, "dismissed")


def test_dismiss_finished_job_keeps_workflow_and_results_by_default(lifecycle: Pygeoapi, emulator: Emulator,
                                                                    s3: S3Server):
    job_id = execute(lifecycle, "lc-quick")
    lifecycle.wait(job_id, "successful")
    assert in_s3(s3, job_id)

    resp = dismiss(lifecycle, job_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dismissed"
    assert lifecycle.job(job_id)["status"] == "dismissed"
    workflow = workflow_of(emulator, job_id)
    assert workflow.status_code == 200, workflow.text
    assert workflow.json()["status"]["phase"] == "Succeeded"  # nothing to stop: not touched
    assert "shutdown" not in workflow.json()["spec"]
    assert in_s3(s3, job_id)
    assert dismiss(lifecycle, job_id).status_code == 200


def test_dismiss_finished_job_deletes_workflow_and_results_when_configured(thorough: Pygeoapi,
                                                                          emulator: Emulator, s3: S3Server):
    job_id = execute(thorough, "lc-quick")
    thorough.wait(job_id, "successful")
    assert fetch_output(results(thorough, job_id)) == DATA
    assert in_s3(s3, job_id)

    resp = dismiss(thorough, job_id)
    assert resp.status_code == 200, resp.text
    assert workflow_of(emulator, job_id).status_code == 404
    assert not in_s3(s3, job_id)
    assert thorough.job(job_id)["status"] == "dismissed"
    assert dismiss(thorough, job_id).status_code == 200  # the workflow is gone: still idempotent


def test_dismiss_unknown_job_is_404(lifecycle: Pygeoapi):
    resp = dismiss(lifecycle, "00000000-0000-4000-8000-000000000000")
    assert resp.status_code == 404, resp.text
    assert_valid("exception.yaml", resp.json())


# --- workflows that Argo garbage-collects -----------------------------------------------------------


def test_job_record_outlives_workflow_garbage_collection(lifecycle: Pygeoapi, emulator: Emulator):
    job_id = execute(lifecycle, "lc-gc")
    lifecycle.wait(job_id, "successful", timeout=15)
    wait_workflow(emulator, job_id, lambda r: r.status_code == 404)  # ttlStrategy deleted it

    body = lifecycle.job(job_id)
    assert body["status"] == "successful"
    assert lifecycle.jobs()[job_id]["status"] == "successful"
    assert fetch_output(results(lifecycle, job_id)) == DATA


# --- pygeoapi restarted ------------------------------------------------------------------------------


def test_job_completes_across_a_pygeoapi_restart(start_pygeoapi, emulator: Emulator):
    add_templates(emulator)
    first = start_pygeoapi(emulator, resources=RESOURCES)
    job_id = execute(first, "lc-slow")
    first.stop()

    second = start_pygeoapi(emulator, config=first.config)
    body = second.wait(job_id, "successful", "failed", timeout=20)
    assert body["status"] == "successful", body
    assert fetch_output(results(second, job_id)) == DATA
    second.stop()


# --- Argo down ----------------------------------------------------------------------------------------


@dataclass
class DeadArgo:
    server: Pygeoapi
    done: str  # finished before Argo went down
    live: str  # running when Argo went down
    before: set[str]  # the jobs recorded before the refused submit
    submit: requests.Response  # the execute request sent while Argo was down
    submit_seconds: float


@pytest.fixture(scope="module")
def dead_argo(start_emulator, start_pygeoapi) -> DeadArgo:
    """pygeoapi whose emulator was stopped after one job finished and another started running, and
    which was then asked to execute a process whose description it had cached."""
    argo = start_emulator()
    add_templates(argo)
    server = start_pygeoapi(argo, resources=RESOURCES)
    done = execute(server, "lc-quick")
    live = execute(server, "lc-hang")
    server.wait(done, "successful")
    server.wait(live, "running")
    before = set(server.jobs())
    with requests.Session() as client:
        # Each gunicorn worker caches descriptions on its own, and a cold one rightly refuses an
        # execute before recording a job. The keep-alive connection sends the execute to the worker
        # that has just described the process.
        assert client.get(f"{server.url}/processes/echo", headers=JSON, timeout=30).status_code == 200
        argo.proc.kill()
        argo.proc.wait()
        started = time.monotonic()
        submit = client.post(f"{server.url}/processes/echo/execution", json={"inputs": {"message": "hi"}},
                             headers=JSON, timeout=60)
        seconds = time.monotonic() - started
    return DeadArgo(server, done, live, before, submit, seconds)


def test_finished_jobs_answer_from_the_job_store_without_argo(dead_argo: DeadArgo):
    server = dead_argo.server
    assert server.job(dead_argo.done)["status"] == "successful"
    assert fetch_output(results(server, dead_argo.done)) == DATA  # signed afresh, S3 is still up
    listed = server.jobs()
    assert listed[dead_argo.done]["status"] == "successful"


def test_running_job_answers_its_last_known_state_without_argo(dead_argo: DeadArgo):
    server = dead_argo.server
    assert server.job(dead_argo.live)["status"] == "running"
    assert server.jobs()[dead_argo.live]["status"] == "running"


def test_argo_down_at_submit_fails_the_job_not_leaves_it_accepted(dead_argo: DeadArgo):
    resp = dead_argo.submit
    assert resp.status_code == 503, resp.text
    assert_valid("exception.yaml", resp.json())
    assert "unreachable" in resp.json()["description"].lower(), resp.text
    assert dead_argo.submit_seconds < 20, "the submit was not bounded in time"

    new = {k: v for k, v in dead_argo.server.jobs().items() if k not in dead_argo.before}
    assert len(new) == 1, new
    [(job_id, listed)] = new.items()
    assert listed["status"] == "failed", listed
    assert "unreachable" in listed["message"].lower(), listed
    assert dead_argo.server.job(job_id)["status"] == "failed"


# --- the Argo calls of requests, seen by a relay --------------------------------------------------


class Relay:
    """An HTTP relay between pygeoapi and the emulator: it records every request, and can lose or
    double workflow creates.

    ``lose``: the create reaches the emulator, but the answer never reaches pygeoapi (connection
    closed). ``double``: the create is sent twice and pygeoapi gets the second answer, Argo's 409.
    """

    CREATE = re.compile(r"^/api/v1/workflows/[^/?]+/?(\?.*)?$")

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.creates = 0
        self.requests: list[str] = []  # "METHOD /path?query" of every request relayed
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization", "accept")}

                def send() -> requests.Response:
                    return requests.request(self.command, relay.upstream + self.path, data=body,
                                            headers=headers, timeout=30)

                relay.requests.append(f"{self.command} {self.path}")
                create = self.command == "POST" and relay.CREATE.match(self.path)
                if create:
                    relay.creates += 1
                answer = send()
                if create and relay.mode == "lose":
                    self.close_connection = True
                    return
                if create and relay.mode == "double":
                    answer = send()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = relay

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def relay(emulator: Emulator) -> Iterator[Relay]:
    proxy = Relay(emulator.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def relayed(start_pygeoapi, emulator: Emulator, relay: Relay) -> Pygeoapi:
    """pygeoapi that reaches the emulator through the relay, without the background reconciler:
    every Argo call it makes is a request's own, and the relay counts them."""
    add_templates(emulator)
    return start_pygeoapi(emulator, resources=RESOURCES, manager={
        "argo": {"server": relay.url, "namespace": emulator.namespace},
        "reconciler": {"enabled": False}})


@pytest.mark.parametrize("mode", ["lose", "double"])
def test_create_that_happened_counts_as_submitted(relayed: Pygeoapi, relay: Relay, emulator: Emulator,
                                                  mode: str):
    relay.mode, creates = mode, relay.creates
    try:
        job_id = execute(relayed, "lc-quick")
    finally:
        relay.mode = "pass"
    assert relay.creates == creates + 1  # one create call from pygeoapi, never resubmitted blindly
    assert workflow_of(emulator, job_id).status_code == 200
    body = relayed.wait(job_id, "successful", "failed")
    assert body["status"] == "successful", body
    assert fetch_output(results(relayed, job_id)) == DATA


def test_finished_jobs_make_no_argo_calls(relayed: Pygeoapi, relay: Relay):
    job_id = execute(relayed, "lc-quick")
    relayed.wait(job_id, "successful")
    seen = len(relay.requests)
    assert relayed.job(job_id)["status"] == "successful"
    assert fetch_output(results(relayed, job_id)) == DATA
    assert all(j["status"] == "successful" for j in relayed.jobs().values())
    assert relay.requests[seen:] == []


def test_job_list_refreshes_its_page_with_one_argo_call(relayed: Pygeoapi, relay: Relay):
    live = [execute(relayed, "lc-hang") for _ in range(3)]
    try:
        seen = len(relay.requests)
        listed = relayed.jobs()
        calls = relay.requests[seen:]
        assert len(calls) == 1 and calls[0].startswith("GET /api/v1/workflows/"), calls
        assert {listed[j]["status"] for j in live} <= {"accepted", "running"}
    finally:
        for job_id in live:
            assert dismiss(relayed, job_id).status_code == 200


def test_workflow_vanished_while_running_fails_the_job(relayed: Pygeoapi, emulator: Emulator):
    by_status, by_list = execute(relayed, "lc-hang"), execute(relayed, "lc-hang")
    relayed.wait(by_status, "running")
    relayed.wait(by_list, "running")
    for job_id in (by_status, by_list):
        resp = requests.delete(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                               headers=emulator.headers(), timeout=10)
        assert resp.status_code == 200, resp.text

    # one job noticed by its status request, the other by the list's single Argo call
    body = relayed.job(by_status)
    assert body["status"] == "failed"
    assert VANISHED.search(body["message"]), body
    listed = relayed.jobs()[by_list]
    assert listed["status"] == "failed"
    assert VANISHED.search(listed["message"]), listed
    assert relayed.job(by_list)["status"] == "failed"
