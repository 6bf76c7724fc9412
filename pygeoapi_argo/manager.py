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

from . import inputs as ogc_inputs
from . import results, status
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
from .jobs import JobRecord, JobStore
from .processes import ProcessCatalog
from .processor import ArgoProcessor
from .settings import ManagerSettings, ProcessSettings
from .storage import Storage

LOGGER = logging.getLogger(__name__)

WORKFLOW_PREFIX = "pygeoapi-job-"
LABEL_JOB = "pygeoapi.io/job-id"
LABEL_PROCESS = "pygeoapi.io/process-id"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_REQUEST = "pygeoapi.io/request"
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
        self.settings = ManagerSettings.from_config(manager_def)
        self.process_settings: dict[str, ProcessSettings] = {
            pid: ProcessSettings.from_config(pid, conf) for pid, conf in self.processes.items()
        }
        # All cheap: pygeoapi builds managers while generating OpenAPI, with no cluster reachable.
        self.argo = ArgoClient(self.settings.argo)
        self.store = JobStore(self.settings.connection)
        self.storage = Storage(**self.settings.storage.boto_options())
        self.catalog = ProcessCatalog(self.argo, self.process_settings, ttl=self.settings.describe_ttl)

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
            inputs=masked, requested_outputs=selected, response=response,
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
                        LABEL_MANAGED_BY: "pygeoapi-argo"},
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
            self.argo.create_workflow(workflow)
        except ArgoConflict:
            LOGGER.info("workflow %s exists already: a retried submit, taken as success",
                        record.workflow_name)
        except ArgoUnavailable as err:
            # A create whose answer was lost may still have created the workflow: look before
            # recording the job failed while its workflow runs.
            try:
                self.argo.get_workflow(record.workflow_name, fields="metadata.name")
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
        """
        if record.status in FINAL:
            return record
        if workflow is None and not listed:
            try:
                workflow = self.argo.get_workflow(record.workflow_name)
            except ArgoNotFound:
                workflow = None
            except ArgoError as err:
                LOGGER.warning("job %s: Argo unavailable, answering the stored state: %s", record.job_id, err)
                return record
        state = status.vanished(record.workflow_name) if workflow is None else status.from_workflow(workflow)
        changes: dict[str, Any] = {
            "status": state.status, "progress": state.progress, "message": state.message,
            "started": state.started or record.started, "finished": state.finished,
            "updated": state.updated or datetime.now(UTC),
        }
        if state.status == JobStatus.successful.value and workflow is not None:
            conf = self.process_settings[record.process_id]
            try:
                changes["results"] = results.collect(
                    workflow, list_urls=self.storage.list, parameter=conf.results_parameter,
                    default_bucket=self.settings.storage.bucket)
            except StorageError as err:
                LOGGER.warning("job %s finished but S3 is unavailable; results collected later: %s",
                               record.job_id, err.message)
                return record
            except ResultsError as err:
                changes.update(status=JobStatus.failed.value, message=f"results unreadable: {err.message}")
        try:
            return self.store.update(record.job_id, **changes)
        except JobConflict:
            # Another request or replica moved the job on first (e.g. dismissed it): theirs stands.
            return self._record(record.job_id)

    def _record(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    def job(self, job_id: str) -> JobRecord:
        """The job as it is now (refreshed from Argo unless finished); ``JobNotFoundError`` if unknown."""
        return self.refresh(self._record(job_id))

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
                 offset: int | None = None) -> dict:
        records, total = self.store.list(limit=limit, offset=offset or 0,
                                         status=[status.value] if status else None)
        live = [r for r in records if r.status not in FINAL]
        if live:
            records = self._refresh_page(records, live)
        return {"jobs": [self._job_dict(r) for r in records], "numberMatched": total}

    def _refresh_page(self, records: list[JobRecord], live: list[JobRecord]) -> list[JobRecord]:
        """One Argo list call for the page's unfinished jobs, not one call per job."""
        selector = f"{LABEL_JOB} in ({','.join(r.job_id for r in live)})"
        try:
            listed = self.argo.list_workflows(label_selector=selector)
        except ArgoError as err:
            LOGGER.warning("job list: Argo unavailable, answering stored states: %s", err)
            return records
        by_name = {wf.metadata.name: wf for wf in listed.items or []}
        fresh = {r.job_id: self.refresh(r, by_name.get(r.workflow_name), listed=True) for r in live}
        return [fresh.get(r.job_id, r) for r in records]

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
            return "application/json", results.render(record.results, self.storage.presign,
                                                      record.requested_outputs)
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


