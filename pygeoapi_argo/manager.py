"""``ArgoManager``: pygeoapi's process manager, glue from pygeoapi's calls to our modules.

pygeoapi's ``BaseManager.execute_process`` records a job before it looks at the inputs and runs the
processor in a thread; neither fits a job that lives in Argo, so ``execute_process`` is replaced:
validate, record, submit, answer. Everything else is the job life cycle read back from Argo and kept
in the job store, which outlives Argo's garbage collection.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from hera.workflows.models import (
    Arguments,
    ObjectMeta,
    Parameter,
    Workflow,
    WorkflowSpec,
    WorkflowTemplateRef,
)
from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError, ProcessorExecuteError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedProcessExecutionMode, RequestedResponse

from . import callbacks, logs, metrics, owners, results, stac, status
from . import inputs as ogc_inputs
from .argo import ArgoClient
from .errors import (
    ArgoConflict,
    ArgoError,
    ArgoNotFound,
    ArgoPluginError,
    ArgoUnavailable,
    InvalidParameterValue,
    JobConflict,
    ResultsError,
    StorageError,
)
from .jobs import JobFilter, JobRecord, JobStore
from .outputs import prefix_url
from .processes import ProcessCatalog
from .processor import ArgoProcessor
from .settings import ManagerSettings, ProcessSettings
from .storage import Storage

LOGGER = logging.getLogger(__name__)

WORKFLOW_PREFIX = "pygeoapi-job-"
LABEL_JOB = "pygeoapi.io/job-id"
LABEL_PROCESS = "pygeoapi.io/process-id"
LABEL_SCHEDULE = "pygeoapi.io/schedule-id"  # on runs of a schedule (schedules.py)
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_REQUEST = "pygeoapi.io/request"
# uuid5 namespace of the job ids of adopted runs (scheduled runs): job id = uuid5(this, workflow uid)
ADOPTED_JOBS = uuid.UUID("0d7c5a3e-2f4b-5e8a-9c61-7f2b3d4e5a60")
FINAL = {JobStatus.successful.value, JobStatus.failed.value, JobStatus.dismissed.value}


def workflow_name(job_id: str) -> str:
    return f"{WORKFLOW_PREFIX}{job_id}"


def ogc_error(err: ArgoPluginError) -> ProcessorExecuteError:
    """Our exception as the one pygeoapi turns into an OGC exception response."""
    out = ProcessorExecuteError(user_msg=err.message)
    out.http_status_code = err.http_status
    out.ogc_exception_code = err.ogc_code
    return out


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


class ArgoManager(BaseManager):
    """Jobs are Argo Workflows; the job store remembers them after Argo forgets."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = True  # callbacks are sent by the reconciler (reconciler.py)
        self.settings = ManagerSettings.from_config(manager_def)
        self.process_settings: dict[str, ProcessSettings] = {
            pid: ProcessSettings.from_config(pid, conf) for pid, conf in self.processes.items()
        }
        # All cheap: pygeoapi builds managers while generating OpenAPI, with no cluster reachable.
        self.argo = ArgoClient(self.settings.argo)
        self.store = JobStore(self.settings.connection)
        self.storage = Storage(**self.settings.storage.boto_options())
        self.catalog = ProcessCatalog(self.argo, self.process_settings, ttl=self.settings.describe_ttl)
        self.base_url: str | None = None  # pygeoapi's public URL, set by web.create_app (STAC links)

    # --- processes -----------------------------------------------------------------------------

    def get_processor(self, process_id: str) -> ArgoProcessor:
        if process_id not in self.processes:
            return super().get_processor(process_id)  # raises UnknownProcessError
        description = self.catalog.describe_or_placeholder(process_id)
        return ArgoProcessor(self.processes[process_id]["processor"], copy.deepcopy(description))

    # --- execute -------------------------------------------------------------------------------

    def execute_process(
        self,
        process_id: str,
        data_dict: dict,
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, str | None, Any, JobStatus, dict[str, str] | None]:
        try:
            description = self.catalog.describe(process_id)
            entrypoint = self.catalog.entry_template(process_id)
            parameters = ogc_inputs.to_parameters(description, data_dict)
            selected = results.select_outputs(description, requested_outputs)
            response = requested_response or RequestedResponse.raw.value
            if response not in (RequestedResponse.raw.value, RequestedResponse.document.value):
                raise InvalidParameterValue(f"'response' must be raw or document, not {response!r}",
                                            name="response")
            subscriber_urls = callbacks.subscriber_document(
                subscriber, allow_internal=self.process_settings[process_id].allow_internal_requests)
        except ArgoPluginError as err:
            raise ogc_error(err) from err
        sync = self._runs_sync(description, execution_mode)
        conf = self.process_settings[process_id]

        job_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        masked = ogc_inputs.mask(data_dict)
        record = JobRecord(
            job_id=job_id, process_id=process_id, workflow_name=workflow_name(job_id),
            status=JobStatus.accepted.value, message="Job accepted: submitting the Argo workflow",
            progress=0, created=now, started=None, finished=None, updated=now,
            inputs=masked, requested_outputs=selected, response=response, subscriber=subscriber_urls,
            owner=owners.current(self.settings.isolation),
        )
        self.store.add(record)
        try:
            self._submit(record, conf, entrypoint, parameters)
        except ArgoError as err:
            failed_at = datetime.now(UTC)
            self.store.update(job_id, status=JobStatus.failed.value, finished=failed_at, updated=failed_at,
                              message=f"Argo refused or was unreachable at submit: {err.message}")
            raise ogc_error(err) from err

        async_headers = {"Preference-Applied": RequestedProcessExecutionMode.respond_async.value}
        if not sync:
            return job_id, "application/json", None, JobStatus.accepted, async_headers
        record = self._wait(record, conf.sync_timeout)
        if record.status not in FINAL:
            # The job goes on: pygeoapi answers 201, the Location header and a statusInfo say where to poll.
            return job_id, "application/json", None, JobStatus.accepted, async_headers
        headers = {"Preference-Applied": RequestedProcessExecutionMode.wait.value}
        if record.status != JobStatus.successful.value:
            body = {"type": "NoApplicableCode", "code": "NoApplicableCode",
                    "description": record.message or "the job failed"}
            return job_id, "application/json", body, JobStatus.failed, headers
        mimetype, content = self._result_content(record, raw=response == RequestedResponse.raw.value)
        return job_id, mimetype, content, JobStatus.successful, headers

    @staticmethod
    def _runs_sync(description: dict, mode: RequestedProcessExecutionMode | None) -> bool:
        """OGC 1.0 rules, with eodash's need: without ``Prefer``, async-only processes run async."""
        options = description.get("jobControlOptions", [])
        can_sync = "sync-execute" in options
        can_async = "async-execute" in options
        if mode == RequestedProcessExecutionMode.respond_async:
            return not can_async
        return can_sync

    def _submit(self, record: JobRecord, conf: ProcessSettings, entrypoint: str,
                parameters: dict[str, str]) -> None:
        workflow = Workflow(
            metadata=ObjectMeta(
                name=record.workflow_name,
                namespace=self.settings.argo.namespace,
                labels={LABEL_JOB: record.job_id, LABEL_PROCESS: record.process_id,
                        LABEL_MANAGED_BY: "pygeoapi-argo", **owners.labels(record.owner)},
                annotations={ANNOTATION_REQUEST: json.dumps(
                    {"inputs": record.inputs, "outputs": record.requested_outputs,
                     "response": record.response}, separators=(",", ":"))},
            ),
            spec=WorkflowSpec(
                workflow_template_ref=WorkflowTemplateRef(name=conf.workflow_template,
                                                          cluster_scope=conf.cluster_scope or None),
                entrypoint=entrypoint,
                arguments=Arguments(parameters=[Parameter(name=k, value=v) for k, v in parameters.items()]),
            ),
        )
        try:
            with metrics.SUBMIT_SECONDS.labels(record.process_id).time():
                self.argo.create_workflow(workflow)
        except ArgoConflict:
            LOGGER.info("workflow %s exists already: a retried submit, taken as success",
                        record.workflow_name)
        except ArgoUnavailable as err:
            # A create whose answer was lost may still have created the workflow: look before
            # recording the job failed while its workflow runs (not when it never left).
            if err.unsent:
                raise
            try:
                self.argo.get_workflow(record.workflow_name, fields="metadata.name")
            except ArgoNotFound:
                if err.status is not None:
                    raise err from None  # Argo answered (a 5xx): the create did not happen
                # Sent but unanswered, and not there yet: a slow Argo may still create it after we
                # gave up. Failing the job now could leave its workflow running unseen; it stays
                # accepted, and ``refresh`` fails it if no workflow appears within the submit window.
                LOGGER.warning("job %s: the create call of workflow %s got no answer (%s); the job "
                               "stays accepted until the workflow appears or the submit window ends",
                               record.job_id, record.workflow_name, err.message)
                return
            except ArgoError:
                raise err from None
            LOGGER.info("workflow %s was created although its create call failed", record.workflow_name)

    def _wait(self, record: JobRecord, timeout: float) -> JobRecord:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            record = self.refresh(record)
            if record.status in FINAL or time.monotonic() >= deadline:
                return record
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 2.0)

    # --- job state -----------------------------------------------------------------------------

    def refresh(self, record: JobRecord, workflow: Workflow | None = None, *,
                 listed: bool = False) -> JobRecord:
        """Bring a non-final record up to date from Argo; finished records never call Argo.

        ``listed`` means ``workflow`` came from a list call, so ``None`` there means it is gone.
        A successful job whose STAC Item failed to register is retried here (``stac.register``).
        """
        if record.status in FINAL:
            return stac.register(self, record, retry=True)
        if workflow is None and not listed:
            try:
                workflow = self.argo.get_workflow(record.workflow_name)
            except ArgoNotFound:
                workflow = None
            except ArgoError as err:
                LOGGER.warning("job %s: Argo unavailable, answering the stored state: %s", record.job_id, err)
                return record
        if workflow is None and record.status == JobStatus.accepted.value and self._may_be_submitting(record):
            return record  # its create call (in this worker or another) has not reached Argo yet
        state = status.vanished(record.workflow_name) if workflow is None else status.from_workflow(workflow)
        changes: dict[str, Any] = {
            # a failure message may end with the step's log (FallbackToLogsOnError): redacted as logs are
            "status": state.status, "progress": state.progress,
            "message": logs.redactor(self).text(state.message),
            "started": state.started or record.started, "finished": state.finished,
            "updated": state.updated or datetime.now(UTC),
        }
        if state.status == JobStatus.successful.value and workflow is not None:
            conf = self.process_settings[record.process_id]
            try:
                changes["results"] = results.collect(
                    workflow, list_urls=self.storage.list, parameter=conf.results_parameter,
                    default_bucket=self.settings.storage.bucket, rules=conf.output_rules,
                    prefix=conf.outputs_prefix and prefix_url(conf.outputs_prefix, job_id=record.job_id,
                                                              workflow_name=record.workflow_name))
            except StorageError as err:
                LOGGER.warning("job %s finished but S3 is unavailable; results collected later: %s",
                               record.job_id, err.message)
                # not final without its results, but no longer "accepted" either: say what it waits for
                changes.update(status=JobStatus.running.value, finished=None,
                               message=f"The workflow succeeded; its results are collected when S3 "
                                       f"answers again ({err.message})")
            except ResultsError as err:
                changes.update(status=JobStatus.failed.value, message=f"results unreadable: {err.message}")
        if changes["status"] in FINAL and workflow is not None:
            changes.update(metrics.usage(workflow))
            # before the job is final: whoever sees it final (and deletes its workflow) finds its logs kept
            logs.archive(self, record, workflow)
        try:
            record = self.store.update(record.job_id, **changes)
        except JobConflict:
            # Another request or replica moved the job on first (e.g. dismissed it): theirs stands.
            return self._record(record.job_id)
        return stac.register(self, record)

    def _may_be_submitting(self, record: JobRecord) -> bool:
        """The job is recorded before its workflow is created, so a poll or list (another thread or
        replica) can look for the workflow in between: an accepted job younger than the slowest
        submit (every retry timing out) has not lost its workflow, it may not have one yet."""
        window = self.settings.argo.timeout * (self.settings.argo.retries + 1)
        return (datetime.now(UTC) - record.created).total_seconds() < window

    def _record(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    def job(self, job_id: str) -> JobRecord:
        """The job as it is now (refreshed from Argo unless finished); ``JobNotFoundError`` if unknown,
        or another user's (``owners.py``)."""
        record = self._record(job_id)
        if not owners.visible(self.settings.isolation, record):
            raise JobNotFoundError(job_id)
        return self.refresh(record)

    def _job_dict(self, record: JobRecord) -> dict:
        """The job shape pygeoapi's API functions read."""
        return {
            "type": "process",
            "identifier": record.job_id,
            "process_id": record.process_id,
            "status": record.status,
            "message": record.message,
            "progress": record.progress,
            "created": iso(record.created),
            # pygeoapi sorts job lists by "started" and cannot compare None: an accepted job
            # that has not started yet sorts by its creation time.
            "started": iso(record.started or record.created),
            "finished": iso(record.finished),
            "updated": iso(record.updated),
            "mimetype": "application/json",
            "job_start_datetime": iso(record.started or record.created),
            "job_end_datetime": iso(record.finished),
        }

    def get_job(self, job_id: str) -> dict:
        return self._job_dict(self.job(job_id))

    def get_jobs(self, status: JobStatus | None = None, limit: int | None = None,
                 offset: int | None = None, where: JobFilter | None = None) -> dict:
        """A page of jobs; ``where`` holds the OGC job-list filters (pygeoapi itself passes none:
        ``web.py`` does). Filters select on the stored state; the page's unfinished jobs are then
        refreshed, so a job may show a newer status than the one it was selected by."""
        if where is None:
            where = JobFilter(status=(status.value,) if status else ())
        # new runs of schedules appear at the top: the first page adopts them before it is read
        scheduling = not offset and any(conf.schedules for conf in self.process_settings.values())
        runs = self.scheduled_runs() if scheduling else None
        records, total = self.store.list(limit=limit, offset=offset or 0, where=where)
        live = [r for r in records if r.status not in FINAL]
        if live:
            records = self._refresh_page(records, live, runs)
        return {"jobs": [self._job_dict(r) for r in records], "numberMatched": total}

    def _refresh_page(self, records: list[JobRecord], live: list[JobRecord],
                      runs: dict[str, Workflow] | None = None) -> list[JobRecord]:
        """One Argo list call for the page's unfinished jobs, not one call per job; runs of schedules
        (whose workflows carry no job label) come from ``runs``, listed once if not given."""
        submitted = [r for r in live if r.schedule_id is None]
        scheduled = [r for r in live if r.schedule_id is not None]
        by_name: dict[str, Workflow] = {}
        if submitted:
            selector = f"{LABEL_JOB} in ({','.join(r.job_id for r in submitted)})"
            try:
                listed = self.argo.list_workflows(label_selector=selector)
                by_name.update((wf.metadata.name, wf) for wf in listed.items or [])
            except ArgoError as err:
                LOGGER.warning("job list: Argo unavailable, answering stored states: %s", err)
                submitted = []
        if scheduled and runs is None:
            runs = self.scheduled_runs()
        if runs is None:
            scheduled = []  # Argo unavailable: the stored states stand
        else:
            by_name.update(runs)
        fresh = {r.job_id: self.refresh(r, by_name.get(r.workflow_name), listed=True)
                 for r in submitted + scheduled}
        return [fresh.get(r.job_id, r) for r in records]

    # --- runs of schedules (schedules.py) ------------------------------------------------------

    def scheduled_runs(self) -> dict[str, Workflow] | None:
        """Runs of our processes' schedules still in Argo, by name, each adopted (one list call);
        ``None`` if Argo is unavailable. Cheap enough per page: a CronWorkflow keeps only its last
        few finished runs (Argo's history limits: 3 successful, 1 failed) besides the active ones.
        Their workflows carry no job label: whoever refreshes jobs with ``schedule_id`` in bulk
        (``listed=True``) must look them up here, not by job label, or take them for vanished."""
        selector = f"{LABEL_SCHEDULE},{LABEL_PROCESS} in ({','.join(self.process_settings)})"
        try:
            listed = self.argo.list_workflows(label_selector=selector)
        except ArgoError as err:
            LOGGER.warning("job list: Argo unavailable, runs of schedules not looked up: %s", err)
            return None
        runs = {wf.metadata.name: wf for wf in listed.items or []}
        for workflow in runs.values():
            self.adopt(workflow)
        return runs

    def adopt(self, workflow: Workflow) -> JobRecord | None:
        """The job of a workflow that runs one of our processes but was not submitted as a job (a run of
        a schedule), recorded the first time it is seen and brought up to date from ``workflow``.

        ``None`` for workflows that are not such runs: no process of ours, or a job's own workflow
        (it has its job label). The job id derives from the workflow's uid, so every replica and the
        reconciler adopting the same run at once agree on one job; the loser of the insert reads it.
        """
        meta = workflow.metadata
        labels = meta.labels or {}
        process_id = labels.get(LABEL_PROCESS)
        if process_id not in self.process_settings or LABEL_JOB in labels or not meta.uid or not meta.name:
            return None
        job_id = str(uuid.uuid5(ADOPTED_JOBS, meta.uid))
        record = self.store.get(job_id)
        if record is None:
            try:
                request = json.loads((meta.annotations or {}).get(ANNOTATION_REQUEST) or "{}")
            except ValueError:
                request = None
            request = request if isinstance(request, dict) else {}
            now = datetime.now(UTC)
            schedule_id = labels.get(LABEL_SCHEDULE)
            record = JobRecord(
                job_id=job_id, process_id=process_id, workflow_name=meta.name,
                status=JobStatus.accepted.value,
                message=f"Run of schedule {schedule_id}" if schedule_id else "Run started outside pygeoapi",
                progress=0, created=meta.creation_timestamp.root if meta.creation_timestamp else now,
                updated=now, inputs=request.get("inputs"), requested_outputs=request.get("outputs"),
                response=request.get("response") or RequestedResponse.document.value, schedule_id=schedule_id)
            try:
                self.store.add(record)
            except JobConflict:
                record = self._record(job_id)
        return record if record.is_final else self.refresh(record, workflow)

    # --- results -------------------------------------------------------------------------------

    def get_job_result(self, job_id: str) -> tuple[str, Any]:
        record = self.job(job_id)
        if record.status != JobStatus.successful.value:
            raise JobResultNotFoundError(job_id)
        return self._result_content(record, raw=False)

    def _result_content(self, record: JobRecord, *, raw: bool) -> tuple[str, Any]:
        try:
            if raw:
                return results.raw_value(record.results, self.storage.read, record.requested_outputs)
            document = results.render(record.results, self.storage.presign, record.requested_outputs)
            if self.process_settings[record.process_id].results_format == "eodash-legacy":
                document = results.eodash_legacy(document)
            return "application/json", document
        except ArgoPluginError as err:
            raise ogc_error(err) from err

    # --- dismiss -------------------------------------------------------------------------------

    def delete_job(self, job_id: str) -> bool:
        record = self.job(job_id)
        if record.status == JobStatus.dismissed.value:
            return True
        dismiss = self.settings.dismiss
        try:
            if record.status not in FINAL:
                self._shutdown(record.workflow_name, dismiss.strategy)
            elif dismiss.delete_workflow:
                self.argo.delete_workflow(record.workflow_name)
        except ArgoNotFound:
            pass
        except ArgoError as err:
            raise ogc_error(err) from err
        if dismiss.delete_results and record.results:
            results.delete(record.results, self.storage.delete)
        now = datetime.now(UTC)
        self.store.update(job_id, status=JobStatus.dismissed.value, message="Job dismissed",
                          finished=record.finished or now, updated=now)
        return True

    def _shutdown(self, name: str, strategy: str) -> None:
        try:
            if strategy == "stop":
                self.argo.stop_workflow(name)
            else:
                self.argo.terminate_workflow(name)
        except ArgoError as err:
            # Argo answers 500 for stopping a workflow that finished in the meantime: nothing to stop.
            if err.status != 500:
                raise

    def __repr__(self) -> str:
        return f"<ArgoManager> {self.settings.argo.server}"


