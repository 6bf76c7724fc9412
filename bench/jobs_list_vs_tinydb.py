"""``GET /jobs?limit=50`` at 1k, 10k and 100k jobs: our job store against pygeoapi's TinyDB manager.

Issue 6 asks for both at the same sizes, measured in one run. Run by hand:

    .venv/bin/python bench/jobs_list_vs_tinydb.py [SIZE ...]

- ours: ``pygeoapi-argo serve`` (gunicorn, 2 gthread workers) with ``ArgoManager`` on its default store
  (SQLite), seeded directly (one bulk insert) with finished jobs, so no page needs an Argo call;
- TinyDB: pygeoapi's own Flask app under gunicorn with the same worker settings, with
  ``pygeoapi.process.manager.tinydb_.TinyDBManager`` on a TinyDB file written directly with the same
  number of job documents, shaped as pygeoapi's ``BaseManager.execute_process`` writes them.

Each size is asked N times per server on a keep-alive connection after untimed warm-ups, the two
servers interleaved (one request each per round), so drift on the noisy machine hits both alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml
from common import ROOT, servers, summary
from pygeoapi.openapi import generate_openapi_document

from pygeoapi_argo.cli import free_port, pygeoapi_config, stop, wait_http
from pygeoapi_argo.jobs import JobRecord, jobs, metadata

SIZES = (1_000, 10_000, 100_000)
WARM_UP = 4  # at least one per gunicorn worker
PROCESSES = ("echo", "buffer", "raster", "two-step", "fail")
STATUSES = ("successful", "successful", "failed", "dismissed")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # pygeoapi.util.DATETIME_FORMAT


def samples_for(size: int) -> int:
    """Fewer rounds at 100k: a TinyDB request then reads the whole file (tens of MB) each time."""
    return 10 if size >= 100_000 else 30


def times(i: int) -> tuple[datetime, datetime, datetime]:
    created = T0 + timedelta(minutes=i)
    started = created + timedelta(seconds=i % 5)
    return created, started, started + timedelta(seconds=(30, 90, 600, 1800)[i % 4])


def seed_ours(connection: str, size: int) -> None:
    from sqlalchemy import create_engine

    rows = []
    for i in range(size):
        created, started, finished = times(i)
        rows.append(dataclasses.asdict(JobRecord(
            job_id=f"{i:08d}-bench", process_id=PROCESSES[i % len(PROCESSES)],
            workflow_name=f"pygeoapi-job-{i:08d}-bench", status=STATUSES[i % len(STATUSES)],
            created=created, updated=finished, started=started, finished=finished, progress=100,
            message="done")))
    engine = create_engine(connection)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(jobs.insert(), rows)
    engine.dispose()


def seed_tinydb(path: Path, size: int) -> None:
    """TinyDB's JSON layout (``{"_default": {"<doc id>": document}}``) written in one go."""
    documents = {}
    for i in range(size):
        created, started, finished = (t.strftime(DATETIME_FORMAT) for t in times(i))
        documents[str(i + 1)] = {
            "type": "process", "identifier": f"{i:08d}-bench", "process_id": PROCESSES[i % len(PROCESSES)],
            "created": created, "started": started, "updated": finished, "finished": finished,
            "status": STATUSES[i % len(STATUSES)], "location": f"/tmp/pygeoapi-jobs/{i:08d}-bench.json",
            "mimetype": "application/json", "message": "Job complete", "progress": 100,
        }
    path.write_text(json.dumps({"_default": documents}))


@contextlib.contextmanager
def tinydb_server(folder: Path, db: Path) -> Iterator[str]:
    """pygeoapi's own app with the TinyDB manager, under gunicorn as ``pygeoapi-argo serve`` runs ours."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    resources = {"hello-world": {"type": "process",
                                 "processor": {"name": "pygeoapi.process.hello_world.HelloWorldProcessor"}}}
    manager = {"name": "pygeoapi.process.manager.tinydb_.TinyDBManager", "connection": str(db),
               "output_dir": str(folder)}
    config = folder / "pygeoapi-tinydb.yml"
    config.write_text(yaml.safe_dump(pygeoapi_config(url=url, host="127.0.0.1", port=port, manager=manager,
                                                     resources=resources)))
    openapi = folder / "openapi-tinydb.yml"
    with config.open() as fh:
        openapi.write_text(generate_openapi_document(fh, "yaml"))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread", "--threads", "8",
         "--timeout", "120", "--bind", f"127.0.0.1:{port}", "pygeoapi.flask_app:APP"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(30):  # the master accepts before a worker has imported the app: a slow first answer
            with contextlib.suppress(requests.Timeout):
                wait_http(f"{url}/conformance", proc)
                break
        yield url
    finally:
        stop(proc)


def ask(session: requests.Session, url: str, size: int) -> float:
    start = time.perf_counter()
    response = session.get(f"{url}/jobs", params={"limit": 50, "f": "json"}, timeout=300)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    page = response.json()
    # pygeoapi's own list (TinyDB) leaves numberMatched out; ours must count them all
    if page.get("numberMatched", size) != size or len(page["jobs"]) != 50:
        raise RuntimeError(f"{url}: expected 50 of {size} jobs, got {len(page['jobs'])} of "
                           f"{page.get('numberMatched')}")
    return elapsed


def main(sizes: tuple[int, ...]) -> None:
    rows = []
    with servers() as stack:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-tinydb-") as tmp:
                folder = Path(tmp)
                connection = f"sqlite:///{folder / 'jobs.db'}"
                seed_ours(connection, size)
                seed_tinydb(folder / "jobs.tinydb.json", size)
                ours = stack.start_pygeoapi(stack.emulator, manager={"connection": connection})
                with tinydb_server(folder, folder / "jobs.tinydb.json") as tiny:
                    n = samples_for(size)
                    sessions = {ours.url: requests.Session(), tiny: requests.Session()}
                    timed: dict[str, list[float]] = {ours.url: [], tiny: []}
                    for round_ in range(WARM_UP + n):
                        for url, session in sessions.items():
                            elapsed = ask(session, url, size)
                            if round_ >= WARM_UP:
                                timed[url].append(elapsed)
                ours.stop()
            print(f"\n{size} jobs, GET /jobs?limit=50 (N={n} each, interleaved)")
            print(f"  ours (SQLite):  {summary(timed[ours.url], with_p95=n >= 20)}")
            print(f"  TinyDB:         {summary(timed[tiny], with_p95=n >= 20)}")
            ratio = statistics.median(timed[tiny]) / statistics.median(timed[ours.url])
            print(f"  ratio of medians TinyDB / ours: {ratio:.1f}x")
            rows.append((size, statistics.median(timed[ours.url]), statistics.median(timed[tiny]), ratio))
    print("\nsize      ours median   TinyDB median   TinyDB / ours")
    for size, ours_median, tiny_median, ratio in rows:
        print(f"{size:>7}   {ours_median * 1000:8.1f} ms   {tiny_median * 1000:10.1f} ms   {ratio:8.1f}x")


if __name__ == "__main__":
    main(tuple(int(arg) for arg in sys.argv[1:]) or SIZES)
