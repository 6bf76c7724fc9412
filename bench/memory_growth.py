"""Memory growth of the pygeoapi worker per 10,000 job records (issue 6).

Run by hand:

    .venv/bin/python bench/memory_growth.py [STEPS]

pygeoapi (``pygeoapi-argo serve``, gunicorn with ONE worker, so every request and the reconciler live
in the process measured) runs on a SQLite job store. Each step adds 10,000 finished jobs to the store
directly (one bulk insert), then makes the worker touch them: ``/jobs?limit=1000`` pages across the whole
store, ``/jobs?limit=50`` at spread offsets and with a status filter, and 500 status reads of random
jobs. The worker's resident set (``VmRSS`` of ``/proc``) is read after each step. Records live in the
database, so a worker that keeps nothing per job stays flat; growth per step is what it keeps.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from common import servers

from pygeoapi_argo.jobs import JobRecord, jobs, metadata

STEP = 10_000
T0 = datetime(2025, 1, 1, tzinfo=UTC)
JSON = {"Accept": "application/json"}


def seed(connection: str, start: int, count: int) -> None:
    from sqlalchemy import create_engine

    rows = []
    for i in range(start, start + count):
        created = T0 + timedelta(minutes=i)
        rows.append(dataclasses.asdict(JobRecord(
            job_id=f"{i:08d}-mem", process_id=("echo", "buffer", "raster")[i % 3],
            workflow_name=f"pygeoapi-job-{i:08d}-mem", status=("successful", "failed")[i % 2],
            created=created, updated=created + timedelta(seconds=60), started=created,
            finished=created + timedelta(seconds=60), progress=100, message="done",
            inputs={"message": f"job {i}"}, results={"output": {"value": {"n": i}}})))
    engine = create_engine(connection)
    metadata.create_all(engine)
    if rows:  # an empty list would insert one row of defaults
        with engine.begin() as conn:
            conn.execute(jobs.insert(), rows)
    engine.dispose()


def worker_rss_kib(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def touch(session: requests.Session, url: str, total: int, rng: random.Random) -> None:
    def get(path: str) -> None:
        response = session.get(url + path, headers=JSON, timeout=120)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

    for offset in range(0, total, 1000):
        get(f"/jobs?limit=1000&offset={offset}")
    for offset in range(0, total, total // 20):
        get(f"/jobs?limit=50&offset={offset}")
        get(f"/jobs?limit=50&offset={offset}&status=failed&processID=raster")
    for i in rng.sample(range(total), 500):
        get(f"/jobs/{i:08d}-mem")


def main(steps: int) -> None:
    rng = random.Random(10)
    with servers() as stack, tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        connection = f"sqlite:///{Path(tmp) / 'jobs.db'}"
        seed(connection, 0, 0)
        server = stack.start_pygeoapi(stack.emulator, manager={"connection": connection}, workers=1)
        session = requests.Session()
        for _ in range(3):  # warm: first requests import and cache what every later one uses
            session.get(f"{server.url}/jobs?limit=50", headers=JSON, timeout=60).raise_for_status()
            session.get(f"{server.url}/processes", headers=JSON, timeout=60).raise_for_status()
        rss = [worker_rss_kib(server.proc.pid)]
        print(f"worker RSS with 0 jobs (warm): {rss[0] / 1024:.1f} MiB")
        for step in range(1, steps + 1):
            seed(connection, (step - 1) * STEP, STEP)
            touch(session, server.url, step * STEP, rng)
            rss.append(worker_rss_kib(server.proc.pid))
            grew = (rss[-1] - rss[-2]) / 1024
            print(f"  {step * STEP:>6} jobs: RSS {rss[-1] / 1024:6.1f} MiB  ({grew:+5.1f} MiB this step)")
        server.stop()
    first, later = rss[1] - rss[0], (rss[-1] - rss[1]) / max(1, steps - 1)
    print(f"growth: first 10k {first / 1024:.1f} MiB (caches and pools filling), then "
          f"{later / 1024:.2f} MiB per 10k job records on average over {steps - 1} more steps")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
