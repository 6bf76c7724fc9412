"""Per-user isolation over real HTTP (``owners.py``): two users behind a proxy header, each sees and
touches only their own jobs; a request without the header is refused."""

from __future__ import annotations

import sqlite3
import time

import pytest
import requests
from conftest import Emulator, Pygeoapi

from pygeoapi_argo.owners import LABEL_OWNER, label_value

HEADER = "X-Auth-User"  # a configured name, not the default
ALICE, BOB = "alice@example.org", "bob"
JSON = {"Accept": "application/json"}
NO_SUCH_JOB = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job"


def as_user(user: str | None) -> dict[str, str]:
    return {**JSON, **({HEADER: user} if user is not None else {})}


@pytest.fixture(scope="module")
def server(start_pygeoapi, emulator: Emulator) -> Pygeoapi:
    return start_pygeoapi(emulator, manager={"isolation": {"header": HEADER}})


def execute(server: Pygeoapi, user: str | None, message: str = "hi") -> requests.Response:
    return requests.post(f"{server.url}/processes/echo/execution", json={"inputs": {"message": message}},
                         headers={**as_user(user), "Prefer": "respond-async"}, timeout=60)


def successful(server: Pygeoapi, user: str, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        status = requests.get(f"{server.url}/jobs/{job_id}", headers=as_user(user), timeout=60)
        assert status.status_code == 200, status.text
        if status.json()["status"] == "successful":
            return status.json()
        assert time.monotonic() < deadline, status.json()
        time.sleep(0.2)


@pytest.fixture(scope="module")
def jobs(server: Pygeoapi) -> dict[str, str]:
    """One finished echo job each for alice and bob."""
    made = {}
    for user in (ALICE, BOB):
        resp = execute(server, user, f"hello {user}")
        assert resp.status_code == 201, resp.text
        made[user] = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        successful(server, user, made[user])
    return made


def test_a_job_is_stamped_with_its_owner(server: Pygeoapi, emulator: Emulator, jobs: dict[str, str]) -> None:
    for user, job_id in jobs.items():
        resp = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                            timeout=10)
        assert resp.json()["metadata"]["labels"][LABEL_OWNER] == label_value(user)
    with sqlite3.connect(server.config.parent / "jobs.db") as db:
        owners = dict(db.execute("SELECT job_id, owner FROM pygeoapi_argo_jobs WHERE job_id IN (?, ?)",
                                 list(jobs.values())).fetchall())
    assert owners == {jobs[ALICE]: ALICE, jobs[BOB]: BOB}


def test_each_user_lists_only_their_jobs(server: Pygeoapi, jobs: dict[str, str]) -> None:
    for user, job_id in jobs.items():
        for query in ("", "?status=successful", "?processID=echo&limit=1000"):
            listed = requests.get(f"{server.url}/jobs{query}", headers=as_user(user), timeout=60).json()
            assert [j["jobID"] for j in listed["jobs"]] == [job_id], (user, query)
            assert listed["numberMatched"] == 1


def test_a_job_of_someone_else_answers_as_a_job_that_does_not_exist(
        server: Pygeoapi, jobs: dict[str, str]) -> None:
    theirs, missing = jobs[ALICE], "0c3b0e8e-0000-4000-8000-000000000000"
    for method, path in (("GET", ""), ("GET", "/results"), ("GET", "/logs"), ("DELETE", "")):
        answers = [requests.request(method, f"{server.url}/jobs/{job}{path}", headers=as_user(BOB),
                                    timeout=60) for job in (theirs, missing)]
        assert [a.status_code for a in answers] == [404, 404], (method, path)
        assert answers[0].text.replace(theirs, missing) == answers[1].text, (method, path)
        if path != "/logs":
            assert answers[0].json()["type"] == NO_SUCH_JOB
    # bob's dismissal touched nothing: alice's job is still hers, successful, with its results
    assert successful(server, ALICE, theirs)["status"] == "successful"
    results = requests.get(f"{server.url}/jobs/{theirs}/results", headers=as_user(ALICE), timeout=60)
    assert results.status_code == 200 and results.json()["message"]["value"] == f"hello {ALICE}"
    logs = requests.get(f"{server.url}/jobs/{theirs}/logs", headers=as_user(ALICE), timeout=60)
    assert logs.status_code == 200 and f"hello {ALICE}" in logs.text


def test_the_owner_dismisses_their_job(server: Pygeoapi) -> None:
    resp = execute(server, BOB, "to dismiss")
    job_id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    refused = requests.delete(f"{server.url}/jobs/{job_id}", headers=as_user(ALICE), timeout=60)
    assert refused.status_code == 404
    dismissed = requests.delete(f"{server.url}/jobs/{job_id}", headers=as_user(BOB), timeout=60)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/jobs"), ("GET", "/jobs/{job}"), ("GET", "/jobs/{job}/results"), ("GET", "/jobs/{job}/logs"),
    ("DELETE", "/jobs/{job}"), ("POST", "/processes/echo/execution"), ("POST", "/processes/echo/jobs"),
])
@pytest.mark.parametrize("header", [None, ""], ids=["absent", "empty"])
def test_a_job_request_without_a_user_is_forbidden(server: Pygeoapi, emulator: Emulator, jobs: dict[str, str],
                                                    method: str, path: str, header: str | None) -> None:
    before = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}", timeout=10).json()
    resp = requests.request(method, f"{server.url}{path.format(job=jobs[ALICE])}", headers=as_user(header),
                            json={"inputs": {"message": "x"}} if method == "POST" else None, timeout=60)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "Forbidden" and HEADER in resp.json()["description"]
    after = requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}", timeout=10).json()
    assert len(after.get("items") or []) == len(before.get("items") or [])


def test_an_owner_too_long_to_store_is_refused(server: Pygeoapi) -> None:
    resp = execute(server, "u" * 256)
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameterValue"


def test_what_is_not_a_job_stays_open(server: Pygeoapi) -> None:
    for path in ("/", "/conformance", "/processes", "/processes/echo", "/openapi?f=json", "/metrics"):
        assert requests.get(f"{server.url}{path}", headers=JSON, timeout=60).status_code == 200, path
