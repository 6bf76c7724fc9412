"""Cron schedules of processes, kept in sync as Argo ``CronWorkflow``s; their runs become jobs.

A process's ``processor.schedules`` (``[{id, cron, timezone, inputs, suspend}]``) each become one
CronWorkflow ``pygeoapi-<process>-<id>`` labelled with the process, the schedule and
``app.kubernetes.io/managed-by=pygeoapi-argo``. Its runs start the process's WorkflowTemplate at the
process's entry template with the schedule's inputs, checked exactly as an execute request's are, and
carry the same labels, so ``ArgoManager.adopt`` can record each run as a job of its process.

``sync`` makes Argo match the configuration: it creates, updates, suspends/resumes and deletes. It
only ever deletes CronWorkflows carrying our managed-by and schedule labels, never others, and never
one whose schedule it could not build this time (Argo or the template unavailable, inputs invalid):
those are reported and left as they are. Several replicas may sync at once; a conflict is retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass

from hera.workflows.models import (
    Arguments,
    CronWorkflow,
    CronWorkflowSpec,
    ObjectMeta,
    Parameter,
    WorkflowSpec,
    WorkflowTemplateRef,
)

from . import inputs as ogc_inputs
from .errors import ArgoConflict, ArgoError, ArgoNotFound, ArgoPluginError
from .manager import ANNOTATION_REQUEST, LABEL_MANAGED_BY, LABEL_PROCESS, LABEL_SCHEDULE, ArgoManager
from .settings import ProcessSettings, ScheduleSettings

LOGGER = logging.getLogger(__name__)

MANAGED_BY = "pygeoapi-argo"
MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SCHEDULE}"  # label selector of our CronWorkflows
MAX_NAME = 52  # Argo's limit: the run name appends "-" and a 10-digit unix time
ATTEMPTS = 3  # per CronWorkflow, when another replica changes it at the same moment


@dataclass(frozen=True)
class Change:
    """What ``sync`` did to one CronWorkflow: created, updated, suspended, resumed, unchanged,
    deleted, or failed (``message`` says why; the CronWorkflow is left as it was)."""

    name: str
    process_id: str | None
    schedule_id: str | None
    action: str
    message: str = ""


def cron_workflow_name(process_id: str, schedule_id: str) -> str:
    """``pygeoapi-<process>-<id>``; when that is no Kubernetes name or too long, a readable prefix of
    it and a hash, so every (process, schedule) pair keeps one stable name."""
    plain = f"pygeoapi-{process_id}-{schedule_id}"
    if len(plain) <= MAX_NAME and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plain):
        return plain
    digest = hashlib.sha256(f"{process_id}\0{schedule_id}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", plain.lower())[:MAX_NAME - 9].strip("-")
    return f"{slug}-{digest}"


def cron_workflow(conf: ProcessSettings, schedule: ScheduleSettings, *, description: dict, entrypoint: str,
                  namespace: str) -> CronWorkflow:
    """The CronWorkflow of one schedule; ``InvalidParameterValue`` & co. if its inputs are not valid
    for the process, as an execute request with them would be refused."""
    parameters = ogc_inputs.to_parameters(description, schedule.inputs)
    labels = {LABEL_PROCESS: conf.process_id, LABEL_SCHEDULE: schedule.id, LABEL_MANAGED_BY: MANAGED_BY}
    request = {"inputs": ogc_inputs.mask(schedule.inputs), "outputs": None, "response": "document"}
    return CronWorkflow(
        metadata=ObjectMeta(name=cron_workflow_name(conf.process_id, schedule.id), namespace=namespace,
                            labels=labels),
        spec=CronWorkflowSpec(
            schedules=[schedule.cron],  # hera 7 writes the list (Argo >= 3.6), never ``schedule``
            timezone=schedule.timezone,
            suspend=True if schedule.suspend else None,  # Argo omits false
            workflow_metadata=ObjectMeta(labels=labels, annotations={
                ANNOTATION_REQUEST: json.dumps(request, separators=(",", ":"))}),
            workflow_spec=WorkflowSpec(
                workflow_template_ref=WorkflowTemplateRef(name=conf.workflow_template,
                                                          cluster_scope=conf.cluster_scope or None),
                entrypoint=entrypoint,
                arguments=Arguments(parameters=[Parameter(name=k, value=v) for k, v in parameters.items()]),
            ),
        ),
    )


def _spec(cron: CronWorkflow) -> dict:
    """The spec as compared: JSON as Argo stores it, ``suspend`` false and absent alike."""
    spec = cron.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    spec["suspend"] = bool(spec.get("suspend"))
    return spec


def _labels(cron: CronWorkflow) -> dict:
    return dict(cron.metadata.labels or {})


def desired(manager: ArgoManager) -> tuple[dict[str, CronWorkflow], list[Change]]:
    """The CronWorkflows the configuration asks for, and the schedules that could not be built."""
    wanted: dict[str, CronWorkflow] = {}
    failed: list[Change] = []
    for process_id, conf in manager.process_settings.items():
        for schedule in conf.schedules:
            name = cron_workflow_name(process_id, schedule.id)
            try:
                wanted[name] = cron_workflow(
                    conf, schedule, description=manager.catalog.describe(process_id),
                    entrypoint=manager.catalog.entry_template(process_id),
                    namespace=manager.settings.argo.namespace)
            except ArgoPluginError as err:
                failed.append(Change(name, process_id, schedule.id, "failed", err.message))
    return wanted, failed


def sync(manager: ArgoManager) -> list[Change]:
    """Make Argo's CronWorkflows match the configured schedules; one ``Change`` per CronWorkflow.

    Raises ``ArgoError`` only when Argo cannot even list them; a failure of one CronWorkflow is
    reported in its ``Change`` and the others go on.
    """
    argo = manager.argo
    current = {c.metadata.name: c for c in argo.list_cron_workflows(label_selector=MANAGED)}
    wanted, changes = desired(manager)
    keep = set(wanted) | {change.name for change in changes}
    for name, want in wanted.items():
        labels = _labels(want)
        change = _apply(manager, want, current.get(name))
        changes.append(Change(name, labels[LABEL_PROCESS], labels[LABEL_SCHEDULE], *change))
    for name, have in current.items():
        if name in keep:
            continue
        labels = _labels(have)
        try:
            argo.delete_cron_workflow(name)
            action = ("deleted", "")
        except ArgoNotFound:
            action = ("deleted", "deleted meanwhile")
        except ArgoError as err:
            action = ("failed", err.message)
        changes.append(Change(name, labels.get(LABEL_PROCESS), labels.get(LABEL_SCHEDULE), *action))
    return changes


def _apply(manager: ArgoManager, want: CronWorkflow, have: CronWorkflow | None) -> tuple[str, str]:
    """Create or change one CronWorkflow to ``want``: (action, message)."""
    argo = manager.argo
    name = want.metadata.name
    for _ in range(ATTEMPTS):
        try:
            if have is None:
                argo.create_cron_workflow(want)
                return "created", ""
            if _labels(have).get(LABEL_MANAGED_BY) != MANAGED_BY:
                return "failed", f"{name} exists and is not managed by pygeoapi-argo: left alone"
            have_spec, want_spec = _spec(have), _spec(want)
            if have_spec == want_spec and _labels(have) == _labels(want):
                return "unchanged", ""
            if {**have_spec, "suspend": None} == {**want_spec, "suspend": None} \
                    and _labels(have) == _labels(want):
                if want_spec["suspend"]:
                    argo.suspend_cron_workflow(name)
                    return "suspended", ""
                argo.resume_cron_workflow(name)
                return "resumed", ""
            update = want.model_copy(deep=True)
            update.metadata.resource_version = have.metadata.resource_version
            update.status = have.status  # no status subresource: an update without it would erase it
            argo.update_cron_workflow(update)
            return "updated", ""
        except ArgoConflict:
            pass  # created or changed by another replica meanwhile: look again
        except ArgoError as err:
            return "failed", err.message
        try:
            have = argo.get_cron_workflow(name)
        except ArgoNotFound:
            have = None
        except ArgoError as err:
            return "failed", err.message
    return "failed", f"changed concurrently {ATTEMPTS} times: try again"


def log_sync(manager: ArgoManager) -> None:
    """``sync``, its outcome logged; an unreachable Argo is logged too, never raised."""
    try:
        changes = sync(manager)
    except ArgoError as err:
        LOGGER.warning("schedules not synchronised with Argo: %s", err.message)
        return
    for change in changes:
        level = logging.WARNING if change.action == "failed" else logging.INFO
        LOGGER.log(level, "schedule %s of process %s: CronWorkflow %s %s%s", change.schedule_id,
                   change.process_id, change.name, change.action,
                   f": {change.message}" if change.message else "")


def sync_in_background(manager: ArgoManager) -> threading.Thread:
    """Start-up sync on its own thread: pygeoapi serves at once, even with Argo down or slow."""
    thread = threading.Thread(target=log_sync, args=(manager,), name="pygeoapi-argo-schedules", daemon=True)
    thread.start()
    return thread
