"""Latency of an async execute through pygeoapi against a raw hera submit, same emulator, same run.

Issue 3 asks for both medians measured together. Run by hand:

    .venv/bin/python bench/execute_latency.py

- ``pygeoapi``: ``POST /processes/echo/execution`` without ``Prefer`` until its 201 arrives. pygeoapi is
  served like the tests serve it (``pygeoapi-argo serve``: gunicorn, 2 workers); ``echo`` is configured
  async-only, as eodash's processes are, so no ``Prefer`` means async. The 201 comes after validation,
  the job record and the Workflow create: the whole OGC path in front of Argo.
- ``hera``: ``WorkflowsService.create_workflow`` of the Workflow the manager creates (``workflowTemplateRef``
  to ``echo``, entry template, parameter), until Argo's answer arrives.
Samples are interleaved (one of each per round) so drift on a noisy machine hits both alike, and each
workflow is waited for (untimed) before the next sample, so every call meets an idle emulator. A few
untimed warm-up rounds first: they fill the per-worker description cache and the connection pools.
"""

from __future__ import annotations

import statistics
import time
import uuid

import requests
from common import servers, summary, wait_phase
from hera.workflows import WorkflowsService
from hera.workflows.models import (
    Arguments,
    ObjectMeta,
    Parameter,
    Workflow,
    WorkflowCreateRequest,
    WorkflowSpec,
    WorkflowTemplateRef,
)

N = 30
WARM_UP = 4  # at least one per gunicorn worker, whichever worker the connection lands on
POLL = 0.02


def via_pygeoapi(api: requests.Session, url: str, argo: WorkflowsService) -> float:
    body = {"inputs": {"message": f"bench {uuid.uuid4().hex}"}}
    start = time.perf_counter()
    response = api.post(f"{url}/processes/echo/execution", json=body, timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        raise RuntimeError(f"expected 201 from pygeoapi, got {response.status_code}: {response.text[:300]}")
    job_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    wait_phase(argo, f"pygeoapi-job-{job_id}", poll=POLL)
    return elapsed


def via_hera(argo: WorkflowsService) -> float:
    workflow = Workflow(
        metadata=ObjectMeta(name=f"bench-hera-{uuid.uuid4().hex[:12]}",
                            labels={"app.kubernetes.io/managed-by": "pygeoapi-argo-bench"}),
        spec=WorkflowSpec(workflow_template_ref=WorkflowTemplateRef(name="echo"), entrypoint="execute",
                          arguments=Arguments(parameters=[Parameter(name="message",
                                                                    value=f"bench {uuid.uuid4().hex}")])),
    )
    start = time.perf_counter()
    name = argo.create_workflow(WorkflowCreateRequest(workflow=workflow)).metadata.name
    elapsed = time.perf_counter() - start
    wait_phase(argo, name, poll=POLL)
    return elapsed


def main() -> None:
    with servers() as stack:
        argo = stack.hera()
        pygeoapi = stack.start_pygeoapi(stack.emulator,
                                        processes={"echo": {"job_control_options": ["async-execute"]}})
        api = requests.Session()
        print(f"emulator {stack.emulator.url}   pygeoapi {pygeoapi.url}   N={N} each, interleaved")
        for _ in range(WARM_UP):
            via_pygeoapi(api, pygeoapi.url, argo)
            via_hera(argo)
        through_pygeoapi: list[float] = []
        raw_hera: list[float] = []
        for _ in range(N):
            through_pygeoapi.append(via_pygeoapi(api, pygeoapi.url, argo))
            raw_hera.append(via_hera(argo))
        print(f"async execute via pygeoapi (201): {summary(through_pygeoapi, with_p95=True)}")
        print(f"raw hera create_workflow:        {summary(raw_hera, with_p95=True)}")
        ratio = statistics.median(through_pygeoapi) / statistics.median(raw_hera)
        print(f"ratio of medians pygeoapi / hera: {ratio:.1f}x")


if __name__ == "__main__":
    main()
