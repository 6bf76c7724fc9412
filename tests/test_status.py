"""status.py over recorded Argo v3.7 workflows (tests/data/argo) in every phase."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import ClusterWorkflowTemplate, Workflow, WorkflowTemplate
from jsonschema import Draft4Validator
from pygeoapi.util import JobStatus as PygeoapiJobStatus

from pygeoapi_argo.status import JobStatus, from_workflow, vanished

DATA = Path(__file__).parent / "data" / "argo"
SWAGGER = Path(__file__).resolve().parent / "reference" / "argo" / "swagger.json"


def raw(name: str) -> dict[str, Any]:
    return yaml.safe_load((DATA / name).read_text())


def workflow(name: str) -> Workflow:
    return Workflow.model_validate(raw(name))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_status_words_are_pygeoapis() -> None:
    assert {s.value for s in JobStatus} == {s.value for s in PygeoapiJobStatus}
    assert JobStatus.running == "running"


def test_accepted_before_the_controller_saw_it() -> None:
    state = from_workflow(workflow("workflow-accepted.yaml"))
    assert state.status is JobStatus.accepted
    assert (state.progress, state.final) == (0, False)
    assert state.message == "Job accepted, waiting for Argo to start it"
    assert state.created == at("2025-11-20T10:00:00Z")
    assert state.started is None and state.finished is None
    assert state.updated == state.created


def test_pending_says_what_it_waits_for() -> None:
    state = from_workflow(workflow("workflow-pending.yaml"))
    assert state.status is JobStatus.accepted
    assert state.message.endswith("Waiting for argo/Mutex/echo lock. Lock status: 0/1")
    assert not state.final


def test_running_with_progress() -> None:
    state = from_workflow(workflow("workflow-running.yaml"))
    assert state.status is JobStatus.running
    assert state.progress == 50  # "1/2"
    assert state.message == "Job running"
    assert state.started == at("2025-11-20T10:00:01Z")
    assert state.finished is None
    assert state.updated == at("2025-11-20T10:00:09Z")  # the second step started last
    assert not state.final


def test_succeeded() -> None:
    state = from_workflow(workflow("workflow-succeeded.yaml"))
    assert state.status is JobStatus.successful
    assert (state.progress, state.final) == (100, True)
    assert state.message == "Job finished"
    assert state.finished == at("2025-11-20T10:00:08Z") == state.updated


def test_failed_reports_the_failing_pod_not_its_parents() -> None:
    state = from_workflow(workflow("workflow-failed.yaml"))
    assert state.status is JobStatus.failed
    assert state.final
    assert state.message == "Error (exit code 3): ERROR: input rejected: no data for this area (step 'fail')"
    assert "child '" not in state.message
    assert state.progress == 50
    assert state.finished == at("2025-11-20T10:00:12Z")


def test_failed_after_retries_reports_the_first_attempt() -> None:
    state = from_workflow(workflow("workflow-failed-retry.yaml"))
    assert state.status is JobStatus.failed
    assert state.message == "OOMKilled (exit code 137) (step 'render(0)')"
    assert state.progress == 0


def test_an_informative_workflow_message_is_added() -> None:
    data = raw("workflow-failed.yaml")
    data["status"]["message"] = "Step exceeded its deadline"
    state = from_workflow(Workflow.model_validate(data))
    assert state.message.startswith("Error (exit code 3)")
    assert state.message.endswith("; Step exceeded its deadline")


def test_failed_without_nodes_falls_back_to_the_workflow_message() -> None:
    data = raw("workflow-failed.yaml")
    del data["status"]["nodes"]  # e.g. offloaded node status
    state = from_workflow(Workflow.model_validate(data))
    assert state.status is JobStatus.failed
    assert state.message == data["status"]["message"]


def test_error_without_nodes_reports_the_workflow_message() -> None:
    state = from_workflow(workflow("workflow-error.yaml"))
    assert state.status is JobStatus.failed
    assert state.final
    assert state.message == 'workflowtemplates.argoproj.io "echo" not found'


def test_failed_without_any_reason_still_says_something() -> None:
    data = raw("workflow-error.yaml")
    data["status"]["phase"] = "Failed"
    del data["status"]["message"]
    state = from_workflow(Workflow.model_validate(data))
    assert state.message == "the Argo workflow failed without giving a reason"


@pytest.mark.parametrize(("name", "strategy"), [("workflow-stopped.yaml", "Stop"),
                                                ("workflow-terminated.yaml", "Terminate")])
def test_stopped_or_terminated_is_dismissed_not_failed(name: str, strategy: str) -> None:
    wf = workflow(name)
    assert wf.status.phase == "Failed"  # what Argo says
    state = from_workflow(wf)
    assert state.status is JobStatus.dismissed
    assert state.final
    assert state.message == f"Job dismissed (Stopped with strategy '{strategy}')"
    assert state.finished == at("2025-11-20T10:00:36Z")


def test_stopping_is_dismissed_but_not_final() -> None:
    state = from_workflow(workflow("workflow-stopping.yaml"))
    assert state.status is JobStatus.dismissed
    assert not state.final
    assert state.finished is None
    assert state.message == "Job dismissed"


def test_a_stop_that_came_too_late_leaves_success() -> None:
    data = raw("workflow-succeeded.yaml")
    data["spec"]["shutdown"] = "Stop"
    assert from_workflow(Workflow.model_validate(data)).status is JobStatus.successful


@pytest.mark.parametrize(("phase", "progress", "percent"), [
    ("Running", "1/3", 33), ("Running", "3/3", 99), ("Running", "0/0", 0), ("Running", None, 0),
    ("Running", "garbage", 0), ("Pending", "0/1", 0), ("Failed", "3/4", 75), ("Succeeded", "0/0", 100),
])
def test_progress_percent(phase: str, progress: str | None, percent: int) -> None:
    data = raw("workflow-running.yaml")
    data["status"]["phase"] = phase
    data["status"]["progress"] = progress
    assert from_workflow(Workflow.model_validate(data)).progress == percent


def test_timestamps_are_aware_utc() -> None:
    data = raw("workflow-succeeded.yaml")
    data["status"]["finishedAt"] = "2025-11-20T12:00:08+02:00"
    state = from_workflow(Workflow.model_validate(data))
    assert state.finished == at("2025-11-20T10:00:08Z")
    for moment in (state.created, state.started, state.finished, state.updated):
        assert moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0


def test_vanished_is_failed_and_says_so() -> None:
    moment = datetime(2025, 11, 20, 11, 0, tzinfo=UTC)
    state = vanished("pygeoapi-job-123", at=moment)
    assert state.status is JobStatus.failed
    assert state.final
    assert "pygeoapi-job-123" in state.message and "disappeared" in state.message
    assert state.finished == state.updated == moment


# --- the recorded objects themselves ----------------------------------------------------------------

MODELS = {"Workflow": Workflow, "WorkflowTemplate": WorkflowTemplate,
          "ClusterWorkflowTemplate": ClusterWorkflowTemplate}


def _without_nulls(value: Any) -> Any:
    """Argo writes an unset time as ``null``; its swagger says ``string``: the null means absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.yaml")))
def test_recorded_objects_are_argo_shaped(name: str) -> None:
    data = raw(name)
    model = MODELS[data["kind"]].model_validate(data)
    assert model.metadata.name
    definitions = json.loads(SWAGGER.read_text())["definitions"]
    schema = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{data['kind']}",
              "definitions": definitions}
    problems = [f"{list(e.absolute_path)}: {e.message}"
                for e in Draft4Validator(schema).iter_errors(_without_nulls(copy.deepcopy(data)))]
    assert not problems
