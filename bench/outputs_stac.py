"""Listing and registering a 1,500-file job (issue 4).

The job is the one ``tests/e2e/test_outputs_prefix.py`` checks (its ``e2e-many-files`` template, its
``outputs_prefix`` and grouping rules): a sandboxed step writes 1,500 files (and a debug log) under
``/output``, uploaded to ``rclone serve s3``. Two processes run it: one registers each job's STAC Item
(1,500 assets) in a static catalog on S3, one in a STAC API (stac-fastapi-pgstac on PostgreSQL).

Per run, nobody asks pygeoapi about the job: the reconciler alone (led by one of the 2 gunicorn
workers, woken by the ``workflow-events`` watch) lists the prefix, stores the results and registers
the Item. The clock starts when the workflow's final phase arrives on this script's own watch of the
emulator and stops when the job store (read directly, every 5 ms) shows the job final with its results,
then with its Item. "Listing alone" is ``Storage.list`` + ``outputs.group`` of one job's prefix, run
in this process. Usage: ``.venv/bin/python bench/outputs_stac.py [RUNS]`` (default 3 per destination).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

import requests
import yaml
from common import FINAL_PHASES, servers, stac_api
from e2e.test_outputs_prefix import FILES, PREFIX, RULES, TEMPLATE

from pygeoapi_argo import outputs, results
from pygeoapi_argo.argo import ArgoClient
from pygeoapi_argo.errors import ArgoError
from pygeoapi_argo.jobs import JobStore
from pygeoapi_argo.reconciler import SELECTOR
from pygeoapi_argo.settings import ArgoSettings, ProcessSettings
from pygeoapi_argo.storage import Storage

BBOX = {"bbox": [16.2, 48.1, 16.6, 48.3]}  # the Item's area: pgstac refuses an Item without geometry


def resource(stac: dict) -> dict:
    return {"type": "process", "processor": {
        "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": TEMPLATE["metadata"]["name"],
        "outputs_prefix": PREFIX, "output_rules": RULES, "stac": stac}}


def watch_ends(emulator_url: str, namespace: str, ended: dict[str, float]) -> None:
    """Record when each workflow's final phase arrives (a daemon thread, until the emulator stops)."""
    argo = ArgoClient(ArgoSettings.from_config({"server": emulator_url, "namespace": namespace}, {}))

    def watch() -> None:
        try:
            for event in argo.watch_workflows(label_selector=SELECTOR):
                status = event.workflow.status
                if status and status.phase in FINAL_PHASES:
                    ended.setdefault(event.workflow.metadata.name, time.monotonic())
        except ArgoError:
            return

    threading.Thread(target=watch, daemon=True).start()


def ms(samples: list[float]) -> str:
    values = [s * 1000 for s in samples]
    return (f"median {statistics.median(values):8.1f} ms   min {min(values):8.1f} ms   "
            f"max {max(values):8.1f} ms   samples: {', '.join(f'{v:.0f}' for v in values)}")


def main(runs: int) -> None:
    with servers() as env, stac_api() as api:
        emulator = env.emulator
        os.environ.update(env.s3.env)  # the listing below reads S3 as the manager does
        requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                      json={"template": TEMPLATE}, timeout=10).raise_for_status()
        destinations = {
            "static catalog on S3": ("many-catalog", {"catalog": "s3://results/bench/catalog.json",
                                                      "collection": "many"}),
            "STAC API (pgstac)": ("many-api", {"api": api.url, "collection": "many"}),
        }
        server = env.start_pygeoapi(
            emulator, manager={"reconciler": {"poll_seconds": 600}},
            resources={pid: resource(stac) for pid, stac in destinations.values()})
        store = JobStore(yaml.safe_load(Path(server.config).read_text())["server"]["manager"]["connection"])
        storage = Storage(env.s3.endpoint_url)
        rules = ProcessSettings.from_config("many", resource({"api": api.url})).output_rules
        ended: dict[str, float] = {}
        watch_ends(emulator.url, emulator.namespace, ended)
        time.sleep(1)  # the watch is open before the first job

        figures: dict[str, tuple[list[float], list[float], list[float]]] = {}
        for label, (process_id, _) in destinations.items():
            to_final, to_item, listing = [], [], []
            for _ in range(runs):
                resp = requests.post(f"{server.url}/processes/{process_id}/execution",
                                     json={"inputs": {"count": FILES, "bbox": BBOX}}, timeout=30)
                assert resp.status_code == 201, resp.text
                job_id = resp.headers["Location"].rsplit("/", 1)[-1]
                final_at = None
                deadline = time.monotonic() + 300
                while True:
                    record = store.get(job_id)
                    now = time.monotonic()
                    if final_at is None and record.is_final:
                        final_at = now
                    if record.stac_item is not None:
                        item_at = now
                        break
                    assert time.monotonic() < deadline, f"job {job_id}: {record}"
                    time.sleep(0.005)
                assert record.status == "successful", record
                files = sum(len(out.get("urls", ())) for out in record.results.values())
                assert files == FILES, f"{files} files listed"
                while record.workflow_name not in ended:
                    time.sleep(0.005)
                to_final.append(final_at - ended[record.workflow_name])
                to_item.append(item_at - ended[record.workflow_name])

                prefix = outputs.prefix_url(PREFIX, workflow_name=record.workflow_name, job_id=job_id)
                started = time.monotonic()
                grouped = outputs.group(storage.list(prefix), prefix, rules, results.media_type)
                listing.append(time.monotonic() - started)
                assert sum(len(out["urls"]) for out in grouped.values()) == FILES
            figures[label] = (to_final, to_item, listing)
        server.stop()

    print(f"{FILES}-file job, {runs} runs per destination (clock starts at the workflow's end on a watch):")
    for label, (to_final, to_item, listing) in figures.items():
        print(f"  {label}:")
        print(f"    → job final with results:        {ms(to_final)}")
        print(f"    → ... and its Item registered:   {ms(to_item)}")
        print(f"    listing + grouping alone:          {ms(listing)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
