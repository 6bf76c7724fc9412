"""The OGC job list over real HTTP with real jobs: filters, paging links, 400s, conformance, exception types.

pygeoapi (gunicorn) on its own emulator and SQLite job store, so no other test's jobs show up. The jobs
are real: echo (successful), fail (failed), an echo dismissed at once, and a ``filters-sleep`` job that
stays running. Every combination of filters is paged through by following ``next`` links and compared
with the brute force of ``test_joblist.py`` over the job store's own records (the ground truth: the
status JSON shows ``started`` = ``created`` for a job that never started, the store does not).
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from conftest import TEMPLATES
from ogc_schemas import assert_valid
from test_joblist import brute_force

from pygeoapi_argo.joblist import parse
from pygeoapi_argo.jobs import JobStore

JSON = {"Accept": "application/json"}
EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
SLEEP_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
    "metadata": {"name": "filters-sleep", "annotations": {
        "pygeoapi.io/inputs": "seconds:\n  schema: {type: number, minimum: 0, maximum: 120}\n"}},
    "spec": {"entrypoint": "execute", "templates": [{
        "name": "execute", "inputs": {"parameters": [{"name": "seconds"}]},
        "script": {"image": "python:3.12-slim", "command": ["python"],
                   "env": [{"name": "SECONDS", "value": "{{inputs.parameters.seconds}}"}],
                   "source": "import os, time\ntime.sleep(float(os.environ['SECONDS']))\n"}}]},
}


class Server:
    def __init__(self, url: str, store: JobStore) -> None:
        self.url, self.store = url, store
        self.running = ""  # the job that stays running

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.url}{path}", params=params, headers=JSON, timeout=30)


def submit(server: Server, process_id: str, inputs: dict) -> str:
    response = requests.post(f"{server.url}/processes/{process_id}/execution", json={"inputs": inputs},
                             headers={**JSON, "Prefer": "respond-async"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def wait(server: Server, job_id: str, statuses: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (status := server.get(f"/jobs/{job_id}").json()["status"]) not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(start_emulator, start_pygeoapi, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("filter-templates")
    for path in TEMPLATES.glob("*.yaml"):
        shutil.copy(path, folder)
    (folder / "filters-sleep.yaml").write_text(yaml.safe_dump(SLEEP_TEMPLATE))
    emulator = start_emulator(templates=folder)
    connection = f"sqlite:///{Path(tmp_path_factory.mktemp('filter-store')) / 'jobs.db'}"
    sleep = {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                              "workflow_template": "filters-sleep"}}
    started = start_pygeoapi(emulator, manager={"connection": connection}, resources={"filters-sleep": sleep})
    server = Server(started.url, JobStore(connection))
    done = [submit(server, "echo", {"message": f"m{i}"}) for i in range(3)]
    done += [submit(server, "fail", {"reason": f"r{i}"}) for i in range(2)]
    dismissed = submit(server, "echo", {"message": "dismiss me"})
    assert requests.delete(f"{server.url}/jobs/{dismissed}", timeout=30).status_code == 200
    running = submit(server, "filters-sleep", {"seconds": 120})
    done += [submit(server, "echo", {"message": "last"})]
    for job_id in done:
        wait(server, job_id, {"successful", "failed"})
    wait(server, running, {"running"})
    server.running = running
    yield server
    requests.delete(f"{server.url}/jobs/{running}", timeout=30)
    server.store.dispose()


def test_the_jobs_cover_the_cases(server: Server) -> None:
    records, total = server.store.list()
    assert total == 8
    assert {r.status for r in records} == {"successful", "failed", "dismissed", "running"}


def follow(server: Server, query: str) -> tuple[list[str], int]:
    """All pages of a filtered list, by its ``next`` links; each page checked against the schema and
    its links checked to keep the filters."""
    asked = parse_qs(query)
    url: str | None = f"{server.url}/jobs?{query}&limit=3" if query else f"{server.url}/jobs?limit=3"
    ids: list[str] = []
    matched = None
    while url:
        response = requests.get(url, headers=JSON, timeout=30)
        assert response.status_code == 200, response.text
        page = response.json()
        assert_valid("jobList.yaml", page)
        assert len(page["jobs"]) <= 3
        matched = page["numberMatched"] if matched is None else matched
        assert page["numberMatched"] == matched and page["numberReturned"] == len(page["jobs"])
        ids += [job["jobID"] for job in page["jobs"]]
        links = {link["rel"]: link["href"] for link in page["links"]}
        for rel in ("self", "alternate", "next", "prev"):
            if rel in links:
                kept = parse_qs(urlsplit(links[rel]).query)
                assert {k: kept[k] for k in asked} == asked and kept["limit"] == ["3"], (rel, links[rel])
        url = links.get("next")
    return ids, matched


def test_every_filter_combination_over_http(server: Server) -> None:
    records, _ = server.store.list()
    by_age = sorted(records, key=lambda r: r.created)
    instant = by_age[2].created.isoformat().replace("+00:00", "Z")
    interval = f"{by_age[1].created.isoformat()}/{by_age[5].created.isoformat()}".replace("+00:00", "Z")
    statuses = ["", "status=successful", "status=failed,dismissed&status=running"]
    processes = ["", "processID=echo", "processID=fail&processID=filters-sleep"]
    datetimes = ["", f"datetime={instant}", f"datetime={interval}"]
    # bounds far from every job's duration (sub-second, or the sleeper's few seconds)
    durations = ["", "minDuration=0", "maxDuration=0", "minDuration=100", "minDuration=0&maxDuration=1000"]
    non_empty = 0
    for parts in itertools.product(statuses, processes, datetimes, durations):
        query = "&".join(p for p in parts if p).replace("+", "%2B")
        where = parse(parse_qs(query), default_limit=10, now=datetime.now(UTC)).where
        expected = brute_force(records, where)
        non_empty += bool(expected)
        assert follow(server, query) == (expected, len(expected)), query
    assert non_empty > 40


def test_prev_link_and_html(server: Server) -> None:
    page = server.get("/jobs", status="successful", limit=1, offset=2).json()
    links = {link["rel"]: parse_qs(urlsplit(link["href"]).query) for link in page["links"]}
    assert links["prev"] == {"status": ["successful"], "limit": ["1"], "offset": ["1"], "f": ["json"]}
    assert links["alternate"]["f"] == ["html"]
    html = requests.get(f"{server.url}/jobs", params={"f": "html", "status": "running"}, timeout=30)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert server.running in html.text


@pytest.mark.parametrize("query", [
    "status=finished", "processID=", "type=workflow", "datetime=2025-01-01", "datetime=../..",
    "datetime=2025-01-02T00:00:00Z/2025-01-01T00:00:00Z", "minDuration=-1", "maxDuration=x",
    "minDuration=9&maxDuration=1", "limit=0", "limit=-3", "limit=1001", "limit=99999999999999999999",
    "offset=-1",
])
def test_bad_filter_values_are_ogc_400s(server: Server, query: str) -> None:
    response = requests.get(f"{server.url}/jobs?{query}", headers=JSON, timeout=30)
    assert response.status_code == 400, response.text
    body = response.json()
    assert_valid("exception.yaml", body)
    assert body["code"] == "InvalidParameterValue" and query.split("=")[0] in body["description"]


def test_conformance_declares_job_list_and_dismiss(server: Server) -> None:
    document = server.get("/conformance").json()
    assert_valid("confClasses.yaml", document)
    conf = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
    assert {f"{conf}job-list", f"{conf}dismiss", f"{conf}core"} <= set(document["conformsTo"])
    assert len(document["conformsTo"]) == len(set(document["conformsTo"]))


@pytest.mark.parametrize(("method", "path", "code", "kind"), [
    ("GET", "/jobs/no-such-job", "InvalidParameterValue", "no-such-job"),
    ("GET", "/jobs/no-such-job/results", "NoSuchJob", "no-such-job"),
    ("DELETE", "/jobs/no-such-job", "NoSuchJob", "no-such-job"),
    ("GET", "/processes/no-such-process", "NoSuchProcess", "no-such-process"),
    ("POST", "/processes/no-such-process/execution", "NoSuchProcess", "no-such-process"),
])
def test_exception_types_are_ogc_uris(server: Server, method: str, path: str, code: str, kind: str) -> None:
    response = requests.request(method, f"{server.url}{path}", headers=JSON, json={"inputs": {}}, timeout=30)
    assert response.status_code == 404, response.text
    body = response.json()
    assert_valid("exception.yaml", body)
    assert (body["type"], body["code"]) == (EXCEPTIONS + kind, code)


def test_results_of_a_running_job_are_not_ready(server: Server) -> None:
    body = server.get(f"/jobs/{server.running}/results").json()
    assert (body["type"], body["code"]) == (EXCEPTIONS + "result-not-ready", "ResultNotReady")
