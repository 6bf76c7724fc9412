"""Argo Workflow → OGC job status: pure functions over hera's ``Workflow`` model, no I/O.

The mapping (design.md): phase ``""``/``Pending`` → accepted, ``Running`` → running, ``Succeeded`` →
successful, ``Failed``/``Error`` → failed; a workflow with ``spec.shutdown`` set (stopped or
terminated, on our dismiss) → dismissed, because Argo itself only says ``Failed`` with the message
``Stopped with strategy '…'`` and a client that dismissed a job must not read "failed".

Timestamps are timezone-aware ``datetime`` objects in UTC (what hera's models carry), never
strings: the job store orders and filters by them, and the manager formats them once at its edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from hera.workflows.models import NodeStatus, Time, Workflow

# Node types that run something (a pod or a plugin call): the places where a failure really happens.
_LEAF_TYPES = frozenset({"Pod", "Container", "HTTP", "Plugin"})
_FAILED_PHASES = frozenset({"Failed", "Error"})
_FINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
# Parent nodes only pass their child's failure on: such a workflow message tells a client nothing.
_PASSED_ON = re.compile(r"child '[^']*' (failed|errored)")
_PROGRESS = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class JobStatus(StrEnum):
    """OGC API - Processes ``statusCode`` values; equal to the plain strings pygeoapi uses."""

    accepted = "accepted"
    running = "running"
    successful = "successful"
    failed = "failed"
    dismissed = "dismissed"


@dataclass(frozen=True)
class JobState:
    """What a job looks like right now, read from its workflow.

    ``final`` means Argo will not change the workflow any more (its phase is Succeeded, Failed or
    Error). A dismissed job whose workflow still runs its exit handler is ``dismissed`` but not
    final yet: its ``finished`` time is still to come.
    """

    status: JobStatus
    progress: int
    message: str
    created: datetime | None
    started: datetime | None
    finished: datetime | None
    updated: datetime | None
    final: bool


def from_workflow(workflow: Workflow) -> JobState:
    status = workflow.status
    phase = (status.phase if status else None) or ""
    dismissed = bool(workflow.spec.shutdown) and phase != "Succeeded"
    if dismissed:
        job_status = JobStatus.dismissed
    elif phase == "Running":
        job_status = JobStatus.running
    elif phase == "Succeeded":
        job_status = JobStatus.successful
    elif phase in _FAILED_PHASES:
        job_status = JobStatus.failed
    else:  # "", "Pending"
        job_status = JobStatus.accepted

    created = _time(workflow.metadata.creation_timestamp)
    started = _time(status.started_at) if status else None
    finished = _time(status.finished_at) if status else None
    nodes = list((status.nodes or {}).values()) if status else []
    moments = [t for t in (created, started, finished) if t]
    moments += [t for node in nodes for t in (_time(node.started_at), _time(node.finished_at)) if t]
    return JobState(
        status=job_status,
        progress=_progress(job_status, status.progress if status else None),
        message=_message(job_status, (status.message if status else None) or "", nodes),
        created=created,
        started=started,
        finished=finished,
        updated=max(moments, default=None),
        final=phase in _FINAL_PHASES,
    )


def vanished(workflow_name: str, *, at: datetime | None = None) -> JobState:
    """The state of a job whose workflow Argo no longer has although the job had not finished.

    Someone deleted it, or Argo's garbage collection removed it before we saw the end: its outcome
    is unknown, so the job is failed, and the message says why rather than inventing a reason.
    """
    now = at or datetime.now(UTC)
    return JobState(
        status=JobStatus.failed,
        progress=0,
        message=f"the Argo workflow {workflow_name} disappeared before the job finished "
        "(deleted or garbage-collected): its outcome is unknown",
        created=None,
        started=None,
        finished=now,
        updated=now,
        final=True,
    )


def _time(value: Time | None) -> datetime | None:
    return value.root.astimezone(UTC) if value is not None else None


def _progress(job_status: JobStatus, progress: str | None) -> int:
    """Percent of Argo's "done/total" pod count; 100 only for a successful job."""
    if job_status is JobStatus.successful:
        return 100
    match = _PROGRESS.fullmatch(progress or "")
    if not match or int(match[2]) == 0:
        return 0
    percent = min(100, int(match[1]) * 100 // int(match[2]))
    # all pods done but the workflow not yet ended (exit handler, outputs): not 100 until it has
    return min(percent, 99) if job_status in (JobStatus.accepted, JobStatus.running) else percent


def _message(job_status: JobStatus, workflow_message: str, nodes: list[NodeStatus]) -> str:
    if job_status is JobStatus.failed:
        return _failure(workflow_message, nodes)
    if job_status is JobStatus.dismissed:
        return f"Job dismissed ({workflow_message})" if workflow_message else "Job dismissed"
    text = {
        JobStatus.accepted: "Job accepted, waiting for Argo to start it",
        JobStatus.running: "Job running",
        JobStatus.successful: "Job finished",
    }[job_status]
    # e.g. Pending "Waiting for argo/Mutex/x lock. Lock status: 0/1" explains a long wait
    return f"{text}: {workflow_message}" if workflow_message else text


def _failure(workflow_message: str, nodes: list[NodeStatus]) -> str:
    """The reason of the first pod that failed, and the workflow's own message if it adds anything.

    The first failure is the cause; pods that fail later are often its consequences. Parent nodes
    (Steps, DAG, Retry) and the workflow only pass it on as ``child '…' failed``: that is shown only
    when no node says more (nodes left out of a list answer, or offloaded).
    """
    failed = [n for n in nodes if n.type in _LEAF_TYPES and n.phase in _FAILED_PHASES]
    if not failed:
        return workflow_message or "the Argo workflow failed without giving a reason"
    first = min(failed, key=lambda n: _time(n.finished_at) or datetime.max.replace(tzinfo=UTC))
    reason = f"{first.message or first.phase} (step '{first.display_name or first.name}')"
    if workflow_message and not _PASSED_ON.fullmatch(workflow_message) and workflow_message not in reason:
        reason += f"; {workflow_message}"
    return reason
