"""``GET /jobs?limit=50`` latency through pygeoapi at 10,000 jobs, with and without the OGC filters.

Issue 5 asks for the figure. Run by hand:

    .venv/bin/python bench/jobs_list_latency.py

The job store is seeded directly (one bulk insert) with 10,000 finished jobs over 5 processes and 3
final statuses, created one a minute with durations of 1 s to 2 h, so no page needs an Argo call; then
pygeoapi is started on it (``pygeoapi-argo serve``, gunicorn, 2 workers) and each query is asked
N times on a keep-alive connection after a few untimed warm-ups, the queries interleaved. Once on
SQLite, and once on PostgreSQL when Debian's postgresql-15 is installed (the test fixture's cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from common import _fixture, conftest, servers, summary

from pygeoapi_argo.jobs import JobRecord, jobs, metadata

JOBS = 10_000
N = 30
WARM_UP = 4
PROCESSES = ("echo", "buffer", "raster", "two-step", "fail")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
QUERIES = {
    "no filter": "limit=50",
    "status": "limit=50&status=successful",
    "status+processID": "limit=50&status=failed&status=dismissed&processID=raster",
    "datetime interval": "limit=50&datetime=2025-01-03T00:00:00Z/2025-01-05T00:00:00Z",
    "duration": "limit=50&minDuration=600&maxDuration=3600",
    "all filters": ("limit=50&status=successful&processID=echo&processID=buffer"
                    "&datetime=2025-01-02T00:00:00Z/..&minDuration=60"),
    "deep page (offset 9000)": "limit=50&offset=9000&status=successful",
}


def seed(connection: str) -> None:
    from sqlalchemy import create_engine

    rng = random.Random(5)
    records = []
    for i in range(JOBS):
        created = T0 + timedelta(minutes=i)
        started = created + timedelta(seconds=rng.randint(0, 5))
        finished = started + timedelta(seconds=rng.choice((1, 30, 90, 600, 1800, 7200)))
        records.append(dataclasses.asdict(JobRecord(
            job_id=f"{i:08d}-bench", process_id=PROCESSES[i % len(PROCESSES)],
            workflow_name=f"pygeoapi-job-{i:08d}-bench",
            status=rng.choice(("successful", "successful", "failed", "dismissed")), created=created,
            updated=finished, started=started, finished=finished, progress=100, message="done")))
    engine = create_engine(connection)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(jobs.insert(), records)
    engine.dispose()


def measure(label: str, url: str) -> None:
    session = requests.Session()
    samples: dict[str, list[float]] = {name: [] for name in QUERIES}
    matched: dict[str, int] = {}
    for round_ in range(WARM_UP + N):
        for name, query in QUERIES.items():
            start = time.perf_counter()
            response = session.get(f"{url}/jobs?{query}", headers={"Accept": "application/json"}, timeout=60)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
            matched[name] = response.json()["numberMatched"]
            if round_ >= WARM_UP:
                samples[name].append(elapsed)
    print(f"\n{label}: {JOBS} jobs, GET /jobs (N={N} each, interleaved)")
    for name, query in QUERIES.items():
        print(f"  {name:24} {summary(samples[name], with_p95=True)}   matched {matched[name]:5}   ?{query}")


def main() -> None:
    with servers() as stack, contextlib.ExitStack() as cleanup:
        folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-jobs-")))
        sqlite = f"sqlite:///{folder / 'jobs.db'}"
        seed(sqlite)
        server = stack.start_pygeoapi(stack.emulator, manager={"connection": sqlite})
        measure("SQLite", server.url)
        server.stop()
        if not (conftest.PG_BIN / "pg_ctl").exists():
            print("\nPostgreSQL: not installed (apt install postgresql-15), skipped")
            return
        postgres = cleanup.enter_context(_fixture(conftest.postgres))
        connection = postgres.create_database("bench")
        seed(connection)
        server = stack.start_pygeoapi(stack.emulator, manager={"connection": connection})
        measure("PostgreSQL 15", server.url)
        server.stop()


if __name__ == "__main__":
    main()
