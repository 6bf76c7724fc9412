"""Two pygeoapi worker processes (gunicorn ``--workers 2``) sharing a PostgreSQL job store under
concurrent executes and polls: no job is duplicated, lost, or seen going back (stale).

Each client thread submits echo jobs and polls them on fresh connections, so requests land on both
workers; one refreshes a job from Argo while the other answers from the store. Afterwards the store,
``/jobs`` and the emulator's workflows must agree one to one.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from pygeoapi_argo.jobs import JobFilter, JobStore

JSON = {"Accept": "application/json"}
ORDER = {"accepted": 0, "running": 1, "successful": 2, "failed": 2, "dismissed": 3}
THREADS, JOBS_PER_THREAD = 6, 4


def run_client(url: str, n: int) -> dict[str, list[str]]:
    """Submit ``JOBS_PER_THREAD`` jobs, poll each to its end and a few times after; the statuses seen."""
    seen: dict[str, list[str]] = {}
    for i in range(JOBS_PER_THREAD):
        response = requests.post(f"{url}/processes/echo/execution", json={"inputs": {"message": f"{n}-{i}"}},
                                 headers={**JSON, "Prefer": "respond-async"}, timeout=30)
        assert response.status_code == 201, response.text
        job_id = response.headers["Location"].rsplit("/", 1)[-1]
        assert job_id not in seen
        statuses = seen[job_id] = []
        deadline = time.monotonic() + 60
        after_final = 0
        while after_final < 4:
            status = requests.get(f"{url}/jobs/{job_id}", headers=JSON, timeout=30).json()["status"]
            statuses.append(status)
            if status in ("successful", "failed"):
                after_final += 1
            else:
                assert time.monotonic() < deadline, f"job {job_id} still {status}"
                time.sleep(0.05)
            # the list, too, is read while other jobs change
            listed = requests.get(f"{url}/jobs", params={"limit": 5}, headers=JSON, timeout=30)
            assert listed.status_code == 200, listed.text
    return seen


def test_two_workers_share_a_postgresql_job_store(postgres, emulator, start_pygeoapi) -> None:
    connection = postgres.create_database("e2e")
    server = start_pygeoapi(emulator, manager={"connection": connection})  # gunicorn --workers 2
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda n: run_client(server.url, n), range(THREADS)))
    seen = {job_id: statuses for result in results for job_id, statuses in result.items()}
    assert len(seen) == THREADS * JOBS_PER_THREAD  # no id handed out twice

    for job_id, statuses in seen.items():
        ranks = [ORDER[s] for s in statuses]
        assert ranks == sorted(ranks), f"job {job_id} went back: {statuses}"  # never stale
        assert statuses[-4:] == ["successful"] * 4, (statuses, requests.get(f"{server.url}/jobs/{job_id}",
                                                                              timeout=30).text)

    store = JobStore(connection)
    try:
        records, total = store.list()
        assert total == len(seen) and {r.job_id for r in records} == set(seen)  # none lost, none extra
        assert all(r.status == "successful" and r.results and r.finished for r in records)
        assert store.list(where=JobFilter(status=("successful",), process_ids=("echo",)))[1] == len(seen)
    finally:
        store.dispose()

    listed = requests.get(f"{server.url}/jobs", params={"limit": 1000}, headers=JSON, timeout=30).json()
    assert sorted(job["jobID"] for job in listed["jobs"]) == sorted(seen)
    assert {job["status"] for job in listed["jobs"]} == {"successful"}

    workflows = requests.get(
        f"{emulator.url}/api/v1/workflows/{emulator.namespace}",
        params={"listOptions.labelSelector": "pygeoapi.io/process-id=echo"}, timeout=30).json()["items"] or []
    names = [wf["metadata"]["name"] for wf in workflows
             if wf["metadata"]["labels"]["pygeoapi.io/job-id"] in seen]
    assert sorted(names) == sorted(f"pygeoapi-job-{job_id}" for job_id in seen)  # one workflow per job
    server.stop()
