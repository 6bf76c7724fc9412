"""The fault matrix (issue 6): each fault injected for real, and the end it must come to.

pygeoapi (gunicorn) → ``ArgoManager`` → hera → the Argo emulator, whose faults are armed over its
control endpoint (``pygeoapi_argo/emulator/faults.py``: one-shot or permanent 5xx, slow answers, a
log stream cut off); the token the emulator wants is rotated in its ``--token-file``; S3 is a private
``rclone serve s3`` the test stops; the job store is locked by the test holding ``BEGIN EXCLUSIVE``.

Every test states the end: the job's status, a clear OGC exception (JSON, never a 500 or HTML) where a
client waits, nothing lost (outputs and logs readable afterwards), and no job left ``accepted`` or
``running`` once Argo answers again. Where the background reconciler is to bring a job up to date, the
test reads the job store itself, so no request of the test can have done it instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml
from conftest import Emulator, PrivateS3, Pygeoapi, scripted_template
from ogc_schemas import assert_valid

JSON = {"Accept": "application/json"}
DATA = '{"answer": 42}'
LOG_LINES = [f"line {i}" for i in range(1, 6)]
FINAL = ("successful", "failed", "dismissed")




TEMPLATES = [
    scripted_template("fm-quick", {"logs": LOG_LINES, "outputs": {"/output/data.json": DATA}}),
    scripted_template("fm-slow", {"logs": LOG_LINES, "sleep": 3, "outputs": {"/output/data.json": DATA}}),
    scripted_template("fm-hang", {"logs": LOG_LINES, "hang": True}),
]
RESOURCES = {
    t["metadata"]["name"]: {"type": "process",
                            "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                          "workflow_template": t["metadata"]["name"]}}
    for t in TEMPLATES
}
# Short Argo timeouts and a fast reconciler: faults show within seconds.
MANAGER = {"reconciler": {"poll_seconds": 1, "lease_seconds": 3}}


def argo_settings(emulator: Emulator, **extra) -> dict:
    return {"argo": {"server": emulator.url, "namespace": emulator.namespace, "timeout": 2, "retries": 1,
                     **extra}}


def add_templates(emulator: Emulator, headers: dict[str, str] | None = None) -> None:
    for template in TEMPLATES:
        resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                             json={"template": template}, headers=headers or emulator.headers(), timeout=10)
        assert resp.status_code == 200 or "already exists" in resp.text, resp.text


# --- the emulator's faults ----------------------------------------------------------------------------


def arm(emulator: Emulator, **fault) -> int:
    resp = requests.post(f"{emulator.url}/_emulator/faults", json=fault, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def hits(emulator: Emulator, fault_id: int) -> int:
    resp = requests.get(f"{emulator.url}/_emulator/faults", timeout=10)
    assert resp.status_code == 200, resp.text
    return next(f["hits"] for f in resp.json() if f["id"] == fault_id)


def clear(emulator: Emulator) -> None:
    assert requests.delete(f"{emulator.url}/_emulator/faults", timeout=10).status_code == 200


# --- talking to pygeoapi, the emulator and the job store ----------------------------------------------


def execute(server: Pygeoapi, process_id: str) -> requests.Response:
    """Asynchronously, without ``Prefer`` (as eodash does)."""
    return requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": {}}, headers=JSON,
                         timeout=60)


def job_id_of(resp: requests.Response) -> str:
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def ogc_exception(resp: requests.Response, status: int) -> dict:
    """A clear OGC exception: the status expected, JSON (never HTML), valid against the schema."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert_valid("exception.yaml", body)
    assert body["description"], body
    return body


def fetch_output(server: Pygeoapi, job_id: str) -> str:
    resp = requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert resp.status_code == 200, resp.text
    out = requests.get(resp.json()["output"]["href"], timeout=10)
    assert out.status_code == 200, out.text
    return out.text


def job_log(server: Pygeoapi, job_id: str) -> list[str]:
    resp = requests.get(f"{server.url}/jobs/{job_id}/logs", timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain"), resp.headers
    return resp.text.splitlines()


def workflow(emulator: Emulator, job_id: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                        headers=headers or emulator.headers(), timeout=10)


def wait_workflow(emulator: Emulator, job_id: str, *phases: str, timeout: float = 20,
                  headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        resp = workflow(emulator, job_id, headers)
        if resp.ok and resp.json().get("status", {}).get("phase") in phases:
            return
        assert time.monotonic() < deadline, f"workflow of {job_id}: {resp.status_code} {resp.text[:300]}"
        time.sleep(0.2)


def workflow_names(emulator: Emulator) -> set[str]:
    resp = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}",
                        params={"listOptions.labelSelector": "app.kubernetes.io/managed-by=pygeoapi-argo"},
                        headers=emulator.headers(), timeout=10)
    assert resp.status_code == 200, resp.text
    return {wf["metadata"]["name"] for wf in resp.json().get("items") or []}


def store_path(server: Pygeoapi) -> Path:
    connection = yaml.safe_load(server.config.read_text())["server"]["manager"]["connection"]
    return Path(connection.removeprefix("sqlite:///"))


def stored(server: Pygeoapi) -> dict[str, tuple[str, str]]:
    """Every job's (status, message) as the job store holds it: read without asking pygeoapi."""
    with sqlite3.connect(store_path(server), timeout=30) as db:
        return {row[0]: (row[1], row[2] or "")
                for row in db.execute("SELECT job_id, status, message FROM pygeoapi_argo_jobs")}


def wait_stored(server: Pygeoapi, job_ids: list[str], done: Callable[[str], bool],
                timeout: float = 30) -> None:
    """Until the job store has every job in a status ``done`` accepts, with no request to pygeoapi."""
    deadline = time.monotonic() + timeout
    while not all(done(stored(server)[j][0]) for j in job_ids):
        assert time.monotonic() < deadline, {j: stored(server)[j] for j in job_ids}
        time.sleep(0.3)


# --- servers -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def argo(start_emulator) -> Iterator[Emulator]:
    emulator = start_emulator()
    add_templates(emulator)
    yield emulator
    clear(emulator)


@pytest.fixture(scope="module")
def server(start_pygeoapi, argo: Emulator) -> Pygeoapi:
    return start_pygeoapi(argo, resources=RESOURCES, manager={**MANAGER, **argo_settings(argo)})


@pytest.fixture(autouse=True)
def no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "argo" in request.fixturenames:
        clear(request.getfixturevalue("argo"))


# --- 5xx -------------------------------------------------------------------------------------------------


def test_one_shot_5xx_on_create_fails_the_job_with_a_clear_503(server: Pygeoapi, argo: Emulator):
    """A create is not retried blindly (it may have happened): the client gets a 503 to retry, the
    job is recorded failed with the reason, never left accepted, and no workflow runs for it."""
    before = set(server.jobs(limit=1000))
    fault = arm(argo, operation="create_workflow", status=503)
    body = ogc_exception(execute(server, "fm-quick"), 503)
    assert "503" in body["description"], body
    assert hits(argo, fault) == 1

    [job_id] = set(server.jobs(limit=1000)) - before
    status, message = stored(server)[job_id]
    assert status == "failed" and "submit" in message, (status, message)
    assert f"pygeoapi-job-{job_id}" not in workflow_names(argo)
    assert job_id_of(execute(server, "fm-quick"))  # the fault was one-shot: the retry goes through


def test_one_shot_5xx_on_a_read_is_retried_unseen(server: Pygeoapi, argo: Emulator):
    job_id = job_id_of(execute(server, "fm-hang"))
    server.wait(job_id, "running")
    fault = arm(argo, operation="get_workflow", status=502, path=f"pygeoapi-job-{job_id}$")
    assert server.job(job_id)["status"] == "running"
    assert hits(argo, fault) == 1
    assert requests.delete(f"{server.url}/jobs/{job_id}", timeout=60).status_code == 200


def test_permanent_5xx_answers_stored_states_and_jobs_catch_up_after(server: Pygeoapi, argo: Emulator):
    """Argo answers 500 to everything for a while: reads answer the last stored state, an execute a
    503; once Argo answers again the reconciler finishes the job nobody polls."""
    done = job_id_of(execute(server, "fm-quick"))
    server.wait(done, "successful")
    live = job_id_of(execute(server, "fm-slow"))
    server.wait(live, "running")

    fault = arm(argo, operation="*", status=500, times=None)
    assert server.job(done)["status"] == "successful"
    assert server.job(live)["status"] == "running"
    listed = server.jobs(limit=1000)
    assert (listed[done]["status"], listed[live]["status"]) == ("successful", "running")
    assert fetch_output(server, done) == DATA
    ogc_exception(execute(server, "fm-quick"), 503)
    time.sleep(3.5)  # fm-slow's step ends meanwhile: its workflow succeeds while Argo answers 500
    assert stored(server)[live][0] == "running"
    assert hits(argo, fault) > 3

    clear(argo)
    wait_stored(server, [live], lambda s: s == "successful")  # the reconciler, not a request
    assert fetch_output(server, live) == DATA
    assert job_log(server, live) == [f"execute: {line}" for line in LOG_LINES]


# --- slow answers ------------------------------------------------------------------------------------


def test_slow_reads_are_bounded_and_answer_the_stored_state(server: Pygeoapi, argo: Emulator):
    job_id = job_id_of(execute(server, "fm-hang"))
    server.wait(job_id, "running")
    fault = arm(argo, operation="get_workflow", delay=5, times=None, path=f"pygeoapi-job-{job_id}$")
    started = time.monotonic()
    assert server.job(job_id)["status"] == "running"
    # timeout 2 s, one retry: the client is answered in about 4 s, not held for the slow server
    assert time.monotonic() - started < 8
    assert hits(argo, fault) == 2
    clear(argo)
    assert requests.delete(f"{server.url}/jobs/{job_id}", timeout=60).status_code == 200
    server.wait(job_id, "dismissed")


def test_slow_create_that_lands_after_the_timeout_still_makes_the_job(server: Pygeoapi, argo: Emulator):
    """The create's answer comes after pygeoapi gave up, but Argo creates the workflow: the job must
    follow that workflow to its end, not be recorded failed while it runs unseen."""
    fault = arm(argo, operation="create_workflow", delay=3)
    resp = execute(server, "fm-quick")
    assert hits(argo, fault) == 1
    job_id = job_id_of(resp)
    wait_workflow(argo, job_id, "Succeeded")
    assert server.wait(job_id, *FINAL)["status"] == "successful"
    assert fetch_output(server, job_id) == DATA


# --- the log stream cut off ----------------------------------------------------------------------------


def test_log_stream_dropped_mid_way_says_so(server: Pygeoapi, argo: Emulator):
    job_id = job_id_of(execute(server, "fm-hang"))
    server.wait(job_id, "running")
    fault = arm(argo, operation="workflow_logs", drop_after=2, path=f"pygeoapi-job-{job_id}/")
    lines = job_log(server, job_id)
    assert hits(argo, fault) == 1
    assert lines[:2] == [f"execute: {line}" for line in LOG_LINES[:2]]
    assert len(lines) == 3 and "broke off" in lines[2], lines  # never a silently shortened log
    assert job_log(server, job_id) == [f"execute: {line}" for line in LOG_LINES]
    assert requests.delete(f"{server.url}/jobs/{job_id}", timeout=60).status_code == 200


def test_log_archive_cut_off_is_retried_and_nothing_is_lost(server: Pygeoapi, argo: Emulator):
    job_id = job_id_of(execute(server, "fm-slow"))
    fault = arm(argo, operation="workflow_logs", drop_after=1, times=None, path=f"pygeoapi-job-{job_id}/")
    server.wait(job_id, "successful", timeout=30)
    assert hits(argo, fault) >= 1  # the archive copy was cut off: the job is final, its log not kept yet
    clear(argo)
    deadline = time.monotonic() + 20
    while (lines := job_log(server, job_id)) != [f"execute: {line}" for line in LOG_LINES]:
        assert time.monotonic() < deadline, lines
        time.sleep(0.5)


# --- workflow deleted behind our back ---------------------------------------------------------------


def test_workflow_deleted_behind_our_back_fails_the_job_nobody_polls(server: Pygeoapi, argo: Emulator):
    job_id = job_id_of(execute(server, "fm-hang"))
    server.wait(job_id, "running")
    resp = requests.delete(f"{argo.url}/api/v1/workflows/{argo.namespace}/pygeoapi-job-{job_id}",
                           headers=argo.headers(), timeout=10)
    assert resp.status_code == 200, resp.text
    wait_stored(server, [job_id], lambda s: s == "failed")
    assert "disappeared" in stored(server)[job_id][1]
    body = ogc_exception(requests.get(f"{server.url}/jobs/{job_id}/results", headers=JSON, timeout=60), 400)
    assert "disappeared" in body["description"]


# --- the job store briefly locked -------------------------------------------------------------------


def test_job_store_locked_for_a_few_seconds_loses_nothing(server: Pygeoapi, argo: Emulator):
    """Another writer holds the SQLite store exclusively for 3 s: requests wait for it (busy
    timeout) instead of failing, and every job made meanwhile runs to its end."""
    before = set(server.jobs(limit=1000))
    answers: list[requests.Response] = []
    locked = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(store_path(server), timeout=30, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(3)
        db.execute("COMMIT")
        db.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    started = time.monotonic()
    clients = [threading.Thread(target=lambda: answers.append(execute(server, "fm-quick"))) for _ in range(4)]
    clients.append(threading.Thread(
        target=lambda: answers.append(requests.get(f"{server.url}/jobs", headers=JSON, timeout=60))))
    for client in clients:
        client.start()
    for client in clients:
        client.join(60)
    holder.join()
    assert time.monotonic() - started >= 2.5  # they did meet the lock
    assert sorted(r.status_code for r in answers) == [200, 201, 201, 201, 201], [r.text for r in answers]

    new = [job_id_of(r) for r in answers if r.status_code == 201]
    assert set(server.jobs(limit=1000)) - before == set(new)
    assert {f"pygeoapi-job-{j}" for j in new} <= workflow_names(argo)
    wait_stored(server, new, lambda s: s == "successful")


# --- 401 until the token file changes --------------------------------------------------------------


def test_rotated_token_answers_503_until_pygeoapi_reads_the_new_one(start_emulator, start_pygeoapi,
                                                                    tmp_path: Path):
    """The Argo Server's token rotates before pygeoapi's token file does: meanwhile reads answer the
    stored state and an execute a 503 naming the credentials (never the token); once the file holds
    the new token, without a restart, everything goes on and the running job finishes."""
    server_token, client_token = tmp_path / "argo-token", tmp_path / "client-token"
    server_token.write_text("token-one\n")
    client_token.write_text("token-one\n")
    argo = start_emulator("--token-file", str(server_token))
    one = {"Authorization": "Bearer token-one"}
    add_templates(argo, one)
    pygeoapi = start_pygeoapi(argo, resources=RESOURCES,
                              manager={**MANAGER, **argo_settings(argo, token_file=str(client_token))})
    live = job_id_of(execute(pygeoapi, "fm-slow"))
    pygeoapi.wait(live, "running")
    client = requests.Session()  # keep-alive: the worker that describes fm-quick gets its execute
    assert client.get(f"{pygeoapi.url}/processes/fm-quick", headers=JSON, timeout=30).status_code == 200

    server_token.write_text("token-two\n")
    assert workflow(argo, live, one).status_code == 401
    assert pygeoapi.job(live)["status"] == "running"
    before = set(pygeoapi.jobs(limit=1000))
    with client:
        body = ogc_exception(client.post(f"{pygeoapi.url}/processes/fm-quick/execution", json={"inputs": {}},
                                         headers=JSON, timeout=60), 503)
    assert "credentials" in body["description"] and "token-" not in body["description"], body
    [refused] = set(pygeoapi.jobs(limit=1000)) - before
    assert stored(pygeoapi)[refused][0] == "failed"

    client_token.write_text("token-two\n")
    assert pygeoapi.wait(live, *FINAL)["status"] == "successful"
    assert fetch_output(pygeoapi, live) == DATA
    ok = job_id_of(execute(pygeoapi, "fm-quick"))
    wait_stored(pygeoapi, [ok], lambda s: s == "successful")


# --- S3 down ------------------------------------------------------------------------------------------


def test_s3_down_when_a_job_ends_keeps_it_open_until_its_results_are_read(start_emulator, start_pygeoapi,
                                                                           private_s3: PrivateS3):
    """S3 stops after the workflow succeeded and before pygeoapi saw it (no reconciler here): the job
    cannot collect its results, so it is not final yet and says why; results answer an OGC 404. When
    S3 is back, the next read finishes the job: outputs and logs all there."""
    env = {**private_s3.env, "AWS_ENDPOINT_URL": private_s3.endpoint_url}
    argo = start_emulator("--s3-endpoint", private_s3.endpoint_url, env=env)
    add_templates(argo)
    pygeoapi = start_pygeoapi(argo, resources=RESOURCES, manager={
        **argo_settings(argo), "reconciler": {"enabled": False},
        "storage": {"endpoint_url": private_s3.endpoint_url, "bucket": "artifacts", "presign_ttl": 600}})
    job_id = job_id_of(execute(pygeoapi, "fm-quick"))
    wait_workflow(argo, job_id, "Succeeded")
    private_s3.stop()
    try:
        body = pygeoapi.job(job_id)
        assert body["status"] == "running" and "S3" in body["message"], body
        resp = requests.get(f"{pygeoapi.url}/jobs/{job_id}/results", headers=JSON, timeout=60)
        ogc_exception(resp, 404)
        assert job_log(pygeoapi, job_id) == [f"execute: {line}" for line in LOG_LINES]  # live from Argo
    finally:
        private_s3.start()
    assert pygeoapi.job(job_id)["status"] == "successful"
    assert fetch_output(pygeoapi, job_id) == DATA
    assert job_log(pygeoapi, job_id) == [f"execute: {line}" for line in LOG_LINES]
    assert (private_s3.root / "artifacts" / f"pygeoapi-job-{job_id}" / "output" / "data.json").is_file()
