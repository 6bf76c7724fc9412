"""A process's cron schedule end to end over real HTTP: pygeoapi syncs it to an Argo CronWorkflow at
start, the emulator fires it (``--cron-tick 2``: one cron minute every 2 s, so ``* * * * *`` fires
every 2 s), the real ``echo`` step runs, and ``/jobs`` lists each run as a job of the process carrying
the schedule id, with its results.

pygeoapi runs without the background reconciler: the runs must reach ``/jobs`` through the job list's
own look-up (``ArgoManager.scheduled_runs``/``adopt``), not through the reconciler's watch.
"""

from __future__ import annotations

import time

import requests

from pygeoapi_argo.cli import stop

JSON = {"Accept": "application/json"}
CRON = "pygeoapi-echo-often"


def test_a_schedule_fires_twice_and_both_runs_are_jobs_of_its_process(start_emulator, start_pygeoapi) -> None:
    emulator = start_emulator("--cron-tick", "2")
    crons = f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}"
    api = start_pygeoapi(emulator, manager={"reconciler": {"enabled": False}}, processes={"echo": {
        "schedules": [{"id": "often", "cron": "* * * * *", "inputs": {"message": "tick"}}]}})
    try:
        deadline = time.monotonic() + 20
        while requests.get(f"{crons}/{CRON}", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the start-up sync did not create the CronWorkflow"
            time.sleep(0.2)

        deadline = time.monotonic() + 90
        while True:
            listed = requests.get(f"{api.url}/jobs", params={"f": "json", "limit": 50}, headers=JSON,
                                  timeout=30)
            assert listed.status_code == 200, listed.text
            runs = [job for job in listed.json()["jobs"] if job.get("scheduleID") == "often"]
            done = [job for job in runs if job["status"] == "successful"]
            if len(done) >= 2:
                break
            assert all(job["status"] in ("accepted", "running", "successful") for job in runs), runs
            assert time.monotonic() < deadline, runs
            time.sleep(0.5)

        assert all(job["processID"] == "echo" for job in runs)
        assert len({job["jobID"] for job in runs}) == len(runs)
        for job in done[:2]:
            status = requests.get(f"{api.url}/jobs/{job['jobID']}", params={"f": "json"}, headers=JSON,
                                  timeout=30).json()
            assert (status["processID"], status["status"]) == ("echo", "successful")
            assert status["scheduleID"] == "often"
            results = requests.get(f"{api.url}/jobs/{job['jobID']}/results", params={"f": "json"},
                                   headers=JSON, timeout=30)
            assert results.status_code == 200, results.text
            assert results.json()["message"]["value"] == "tick"
        # each job is one real run of the CronWorkflow, named by Argo's rule
        names = {item["metadata"]["name"] for item in requests.get(
            f"{emulator.url}/api/v1/workflows/{emulator.namespace}",
            params={"listOptions.labelSelector": f"workflows.argoproj.io/cron-workflow={CRON}"},
            timeout=10).json()["items"] or []}
        assert all(name.startswith(f"{CRON}-") and name.rsplit("-", 1)[1].isdigit() for name in names)
    finally:
        requests.delete(f"{crons}/{CRON}", timeout=10)
        api.stop()
        stop(emulator.proc)
