"""Reconciler lag: time from a workflow ending to its job being final in the job store (issue 5).

pygeoapi (gunicorn, 2 workers, one of them leading the reconciler) runs 20 jobs of a one-step scripted
template, one after another. Nobody asks pygeoapi about them: the job store is read directly (SQLite,
every 5 ms), so only the reconciler can make a job final. The moment a workflow ends is when its
final phase arrives on this script's own ``workflow-events`` watch of the emulator (the same stream
the reconciler reads, so both learn of the end at about the same time); the lag is the job's final
status appearing in the store minus that moment. The safety-net poll is set to 10 minutes, so every
job is made final by a watch event. Usage: ``.venv/bin/python bench/reconciler_lag.py [N]``.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import requests
import yaml
from common import FINAL_PHASES, servers, summary

from pygeoapi_argo.argo import ArgoClient
from pygeoapi_argo.errors import ArgoError
from pygeoapi_argo.jobs import JobStore
from pygeoapi_argo.reconciler import LEASE, SELECTOR
from pygeoapi_argo.settings import ArgoSettings

TEMPLATE = {"metadata": {"name": "lag-quick"}, "spec": {"entrypoint": "execute", "templates": [{
    "name": "execute", "container": {"image": "alpine:3.20", "command": ["true"]},
    "metadata": {"annotations": {"emulator.pygeoapi-argo.io/scripted":
                                 '{"sleep": 0.2, "outputs": {"/output/data.json": "{}"}}'}},
    "outputs": {"artifacts": [{"name": "output", "path": "/output", "archive": {"none": {}},
                               "s3": {"key": "{{workflow.name}}/output"}}]}}]}}
RESOURCES = {"lag-quick": {"type": "process", "processor": {"name": "pygeoapi_argo.ArgoProcessor",
                                                            "workflow_template": "lag-quick"}}}


def main(runs: int) -> None:
    with servers() as env:
        emulator = env.emulator
        requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                      json={"template": TEMPLATE}, timeout=10).raise_for_status()
        server = env.start_pygeoapi(emulator, resources=RESOURCES,
                                    manager={"reconciler": {"poll_seconds": 600}})
        store = JobStore(yaml.safe_load(Path(server.config).read_text())["server"]["manager"]["connection"])
        deadline = time.monotonic() + 30
        while store.lease_holder(LEASE) is None:  # a reconciler leads
            assert time.monotonic() < deadline, "no reconciler took the lease"
            time.sleep(0.1)

        ended: dict[str, float] = {}
        argo = ArgoClient(ArgoSettings.from_config({"server": emulator.url,
                                                    "namespace": emulator.namespace}, {}))

        def watch() -> None:
            try:
                for event in argo.watch_workflows(label_selector=SELECTOR):
                    status = event.workflow.status
                    if status and status.phase in FINAL_PHASES:
                        ended.setdefault(event.workflow.metadata.name, time.monotonic())
            except ArgoError:  # the emulator stopping at the end
                return

        threading.Thread(target=watch, daemon=True).start()
        lags = []
        for _ in range(runs):
            resp = requests.post(f"{server.url}/processes/lag-quick/execution", json={"inputs": {}},
                                 timeout=30)
            assert resp.status_code == 201, resp.text
            job_id = resp.headers["Location"].rsplit("/", 1)[-1]
            while True:
                record = store.get(job_id)
                if record.is_final:
                    final_at = time.monotonic()
                    break
                time.sleep(0.005)
            assert record.status == "successful", record
            while record.workflow_name not in ended:
                time.sleep(0.005)
            lags.append(final_at - ended[record.workflow_name])
        server.stop()
    print("reconciler lag (workflow end seen on the watch → job final in the store):")
    print("  " + summary(lags, with_p95=False))
    print("  samples (ms): " + ", ".join(f"{lag * 1000:.0f}" for lag in lags))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
