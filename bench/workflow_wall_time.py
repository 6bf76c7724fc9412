"""Wall time of a workflow end to end on the emulator: from the create (or submit) call to phase Succeeded.

Issue 2 asks for the measured wall time of a 3-step workflow (median of 5). Run by hand:

    .venv/bin/python bench/workflow_wall_time.py

Two workflows, each run RUNS times one after the other against one emulator (rclone S3 as artifact
repository, started like the test fixtures), timed with hera's ``WorkflowsService``:
- ``three-step``: one Workflow of three sequential script steps (python); each writes an output parameter
  that the next step takes as input, so the steps really depend on each other;
- ``two-step``: the sample WorkflowTemplate (DAG, shared volume, S3 output artifact), submitted by name.
The phase is polled every 20 ms; each run's result is checked after the clock stops.
"""

from __future__ import annotations

import time
import uuid

from common import servers, summary, wait_phase
from hera.workflows import WorkflowsService
from hera.workflows.models import SubmitOpts, Workflow, WorkflowCreateRequest, WorkflowSubmitRequest

RUNS = 5
POLL = 0.02


def _script(name: str, expression: str) -> dict:
    """A python script template: reads input ``n``, writes ``expression`` as output ``value``."""
    source = f"import os\nn = int(os.environ['N'])\nopen('/tmp/value', 'w').write(str({expression}))\n"
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "n"}]},
        "outputs": {"parameters": [{"name": "value", "valueFrom": {"path": "/tmp/value"}}]},
        "script": {"image": "python:3.12-slim", "command": ["python"],
                   "env": [{"name": "N", "value": "{{inputs.parameters.n}}"}], "source": source},
    }


def _call(name: str, template: str, n: str) -> list[dict]:
    """A step group of one step: sequential steps are consecutive groups."""
    return [{"name": name, "template": template, "arguments": {"parameters": [{"name": "n", "value": n}]}}]


THREE_STEP = {
    "metadata": {"generateName": "bench-three-step-"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "start", "value": "20"}]},
        "templates": [
            {"name": "main", "steps": [
                _call("first", "add-one", "{{workflow.parameters.start}}"),
                _call("second", "double", "{{steps.first.outputs.parameters.value}}"),
                _call("third", "add-one", "{{steps.second.outputs.parameters.value}}"),
            ]},
            _script("add-one", "n + 1"),
            _script("double", "n * 2"),
        ],
    },
}


def run_three_step(argo: WorkflowsService) -> float:
    workflow = Workflow.model_validate(THREE_STEP)
    start = time.perf_counter()
    name = argo.create_workflow(WorkflowCreateRequest(workflow=workflow)).metadata.name
    wait_phase(argo, name, poll=POLL)
    elapsed = time.perf_counter() - start
    nodes = argo.get_workflow(name).status.nodes
    values = {n.display_name: n.outputs.parameters[0].value for n in nodes.values() if n.type == "Pod"}
    if values != {"first": "21", "second": "42", "third": "43"}:
        raise RuntimeError(f"{name}: the steps did not pass their values along: {values}")
    return elapsed


def run_two_step(argo: WorkflowsService) -> float:
    text = f"a benchmark run {uuid.uuid4().hex} of the two step sample"
    request = WorkflowSubmitRequest(resource_kind="WorkflowTemplate", resource_name="two-step",
                                    submit_options=SubmitOpts(parameters=[f"text={text}"]))
    start = time.perf_counter()
    name = argo.submit_workflow(request).metadata.name
    wait_phase(argo, name, poll=POLL)
    elapsed = time.perf_counter() - start
    outputs = argo.get_workflow(name).status.outputs
    if not any(p.name == "results" for p in (outputs.parameters if outputs else None) or []):
        raise RuntimeError(f"{name}: no global output parameter 'results': {outputs}")
    return elapsed


def main() -> None:
    with servers() as stack:
        argo = stack.hera()
        print(f"emulator {stack.emulator.url}   S3 {stack.s3.endpoint_url}   poll {POLL * 1000:.0f} ms")
        for label, run in (("three-step (3 sequential script steps)", run_three_step),
                           ("two-step sample template (DAG)", run_two_step)):
            times = []
            for i in range(RUNS):
                times.append(run(argo))
                print(f"  {label} run {i + 1}: {times[-1] * 1000:.0f} ms", flush=True)
            print(f"{label}: {summary(times, with_p95=False)}")


if __name__ == "__main__":
    main()
