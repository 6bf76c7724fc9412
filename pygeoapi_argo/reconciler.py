"""The reconciler: one background loop per deployment that keeps the job store in step with Argo.

Requests refresh a job only when someone asks for it. The reconciler does it as things happen, so a
job ends in the store, and its callbacks and log archive happen, even when nobody polls:

- **One leader.** Every gunicorn worker of every replica runs a ``Reconciler`` (``web.create_app``
  starts it; never the manager's constructor, which pygeoapi also calls to write its OpenAPI
  document). They compete for a lease row in the job store (``JobStore.hold_lease``), renewed every
  third of its life; only the holder works. If its process dies, another takes over once the lease
  has run out: within ``lease_seconds`` plus a third of it. A clean stop releases it at once.
- **The watch.** Argo's ``workflow-events`` stream of our workflows (label
  ``app.kubernetes.io/managed-by=pygeoapi-argo``), read on its own thread, resumed from the last
  ``resourceVersion`` seen and reopened with backoff when it breaks. Each event refreshes the job of
  its workflow (``manager.refresh``); a workflow deleted behind our back fails its job.
- **The poll**, every ``poll_seconds``: the store's non-final jobs, looked up in Argo with one list
  call per hundred, in case events were lost while the stream was down.
- **Tasks** each job owes once (``JobStore.due_tasks``): subscriber callbacks (``callbacks.py``) and
  the log archive, tried with backoff, recorded when done, so a restart neither loses nor repeats
  them (at-least-once: a crash between a call and its record repeats that one call).

All job work happens on the leader's thread, one thing at a time; the watch thread only reads.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hera.workflows.models import Workflow

from . import callbacks, logs, metrics, stac
from .argo import ArgoClient, WorkflowEvent
from .errors import ArgoError, ArgoPluginError
from .jobs import ARCHIVE_LOGS, DONE, GAVE_UP, SKIPPED, JobRecord, JobTask
from .settings import ReconcilerSettings

if TYPE_CHECKING:
    from .manager import ArgoManager

LOGGER = logging.getLogger(__name__)

LEASE = "reconciler"
SELECTOR = "app.kubernetes.io/managed-by=pygeoapi-argo"
LABEL_JOB = "pygeoapi.io/job-id"
LABEL_PROCESS = "pygeoapi.io/process-id"
WATCH_SECONDS = 300  # the server ends each watch after this; it is resumed at once
LIST_CHUNK = 100  # job ids per label selector of the poll's list calls
# A job whose workflow is missing from a list this soon after it was recorded may still be being
# submitted (the record is written first): it is not taken for deleted.
SUBMIT_GRACE = timedelta(minutes=2)
TICK = 1.0  # the longest the leader sleeps: due tasks are looked for at least this often


class Reconciler:
    """The loop of one process; ``start`` it once, ``stop`` it at exit."""

    def __init__(self, manager: ArgoManager, *, base_url: str, settings: ReconcilerSettings) -> None:
        self.manager = manager
        self.store = manager.store
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        # the lease row names the holder: its pid (for people) and a random part (pids repeat across hosts)
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex}"[:32]
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def renew_every(self) -> float:
        return self.settings.lease_seconds / 3

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pygeoapi-argo-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop and release the lease, so another process takes over without waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.store.release_lease(LEASE, self.holder)
        except Exception as err:  # at exit, with the database perhaps gone: the lease expires anyway
            LOGGER.warning("reconciler %s: could not release the lease: %s", self.name, err)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.store.hold_lease(LEASE, self.holder, self.settings.lease_seconds):
                    LOGGER.info("reconciler %s leads", self.name)
                    self._lead()
            except Exception:  # a database hiccup must not end the loop for the process's life
                LOGGER.exception("reconciler %s: unexpected error; going on", self.name)
            self._stop.wait(self.renew_every)

    # --- leading -------------------------------------------------------------------------------

    def _lead(self) -> None:
        events: queue.Queue[WorkflowEvent] = queue.Queue()
        watch = _Watch(self.manager.argo, events)
        watch.start()
        renew_at = time.monotonic() + self.renew_every
        poll_at = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= renew_at:
                    if not self.store.hold_lease(LEASE, self.holder, self.settings.lease_seconds):
                        LOGGER.warning("reconciler %s lost its lease; another process leads", self.name)
                        return
                    renew_at = now + self.renew_every
                if now >= poll_at:
                    self.poll()
                    poll_at = time.monotonic() + self.settings.poll_seconds
                self.run_tasks()
                wait = max(0.0, min(TICK, renew_at - time.monotonic(), poll_at - time.monotonic()))
                try:
                    event = events.get(timeout=wait)
                except queue.Empty:
                    continue
                self.handle(event)
                while not events.empty():
                    self.handle(events.get_nowait())
        finally:
            watch.stop()

    def handle(self, event: WorkflowEvent) -> None:
        """Refresh the job of one workflow event (and run its due tasks while the pods are fresh)."""
        workflow = event.workflow
        labels = workflow.metadata.labels or {}
        job_id = labels.get(LABEL_JOB)
        record = self.store.get(job_id) if job_id else None
        if record is None:
            adopt = getattr(self.manager, "adopt", None)  # scheduled runs (cron) have no job until adopted
            if adopt is None or LABEL_PROCESS not in labels or event.type == "DELETED":
                return
            record = adopt(workflow)
            if record is None:
                return
        deleted = event.type == "DELETED"
        self._refresh(record, None if deleted else workflow, listed=deleted)

    def poll(self) -> None:
        """The safety net: every non-final job looked up in Argo, a hundred per list call; and the STAC
        Items still owed (a failed registration, retried here even if nobody reads the job again)."""
        stac.register_pending(self.manager)
        live = self.store.non_final()
        scheduled = [r for r in live if r.schedule_id]
        if scheduled:
            # runs of schedules carry no job label: looked up among the schedules' runs instead
            runs = self.manager.scheduled_runs()
            for record in scheduled if runs is not None else ():
                self._refresh(record, runs.get(record.workflow_name), listed=True)
        live = [r for r in live if not r.schedule_id]
        for start in range(0, len(live), LIST_CHUNK):
            chunk = live[start:start + LIST_CHUNK]
            selector = f"{LABEL_JOB} in ({','.join(r.job_id for r in chunk)})"
            try:
                listed = self.manager.argo.list_workflows(label_selector=selector)
            except ArgoError as err:
                LOGGER.warning("reconciler poll: Argo unavailable: %s", err.message)
                return
            by_name = {wf.metadata.name: wf for wf in listed.items}
            young = datetime.now(UTC) - SUBMIT_GRACE
            for record in chunk:
                workflow = by_name.get(record.workflow_name)
                if workflow is not None or record.created < young:
                    self._refresh(record, workflow, listed=True)

    def _refresh(self, record: JobRecord, workflow: Workflow | None, *, listed: bool) -> None:
        if record.is_final:
            return
        try:
            fresh = self.manager.refresh(record, workflow, listed=listed)
        except ArgoPluginError as err:
            LOGGER.warning("reconciler: job %s not refreshed: %s", record.job_id, err.message)
            return
        if fresh.is_final and workflow is not None and fresh.finished is not None:
            # ``finished`` is the workflow's finishedAt: whole seconds in Kubernetes, so up to 1 s high
            metrics.observe_reconciler_lag((datetime.now(UTC) - fresh.finished).total_seconds())

    # --- tasks ---------------------------------------------------------------------------------

    def run_tasks(self) -> None:
        for record, task in self.store.due_tasks():
            if self._stop.is_set():
                return
            if task.task == ARCHIVE_LOGS:
                self._archive(record, task)
            else:
                self._callback(record, task)

    def _archive(self, record: JobRecord, task: JobTask) -> None:
        """``logs.archive`` records where the logs went (``record.logs``); until it has, it is tried
        again (``refresh`` already tries once when it makes a job final)."""
        if record.logs is None:
            logs.archive(self.manager, record, None)
            record = self.store.get(record.job_id) or record
        if record.logs is not None:
            self.store.settle_task(record.job_id, ARCHIVE_LOGS, DONE)
        elif task.attempts + 1 >= self.settings.callback_attempts:
            self.store.settle_task(record.job_id, ARCHIVE_LOGS, GAVE_UP, "Argo or S3 unavailable")
        else:
            self.store.retry_task(record.job_id, ARCHIVE_LOGS, callbacks.backoff(task.attempts),
                                  "Argo or S3 unavailable")

    def _callback(self, record: JobRecord, task: JobTask) -> None:
        kind = task.task
        wanted = {"inProgressUri": "running", "successUri": "successful", "failedUri": "failed"}[kind]
        if record.status != wanted:
            self.store.settle_task(record.job_id, kind, SKIPPED, f"the job is {record.status}")
            return
        url = (record.subscriber or {}).get(kind)
        conf = self.manager.process_settings.get(record.process_id)
        allow_internal = bool(conf and conf.allow_internal_requests)
        job_url = f"{self.base_url}/jobs/{record.job_id}"
        try:
            results = self.manager.get_job_result(record.job_id)[1] if kind == "successUri" else None
            failure = callbacks.send(url, callbacks.body(kind, record, job_url=job_url, results=results),
                                     allow_internal=allow_internal)
        except callbacks.CallbackRefused as err:
            self.store.settle_task(record.job_id, kind, GAVE_UP, str(err))
            return
        except Exception as err:  # results unreadable (S3 down): like a failed delivery, tried again
            failure = f"not sent: {err}"
        if failure is None:
            self.store.settle_task(record.job_id, kind, DONE)
            LOGGER.info("job %s: %s callback delivered", record.job_id, kind)
        elif task.attempts + 1 >= self.settings.callback_attempts:
            self.store.settle_task(record.job_id, kind, GAVE_UP, failure)
            LOGGER.warning("job %s: %s callback given up after %d attempts: %s", record.job_id, kind,
                           task.attempts + 1, failure)
        else:
            self.store.retry_task(record.job_id, kind, callbacks.backoff(task.attempts), failure)
            LOGGER.info("job %s: %s callback failed (%s); tried again later", record.job_id, kind, failure)


class _Watch:
    """Reads the ``workflow-events`` stream into a queue on its own thread, reopening it with backoff.

    A stream the server ends (``WATCH_SECONDS``) is resumed at once from the last ``resourceVersion``
    seen; after an error the next one starts afresh (every workflow sent again as ADDED), since the
    version may be too old to resume from.
    """

    def __init__(self, argo: ArgoClient, events: queue.Queue[WorkflowEvent]) -> None:
        self.argo = argo
        self.events = events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pygeoapi-argo-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The thread ends at its next event or when the server ends the watch (it is a daemon)."""
        self._stop.set()

    def _run(self) -> None:
        version: str | None = None
        delay = 1.0
        while not self._stop.is_set():
            try:
                stream = self.argo.watch_workflows(label_selector=SELECTOR, resource_version=version,
                                                   timeout_seconds=WATCH_SECONDS)
                delay = 1.0
                for event in stream:
                    if self._stop.is_set():
                        return
                    version = event.workflow.metadata.resource_version or version
                    self.events.put(event)
                continue
            except ArgoError as err:
                LOGGER.warning("workflow watch: %s; reopened in %.0f s", err.message, delay)
            version = None
            self._stop.wait(delay)
            delay = min(delay * 2, 60.0)


def start(manager: ArgoManager, base_url: str) -> Reconciler | None:
    """This process's reconciler, running (None when the configuration turns it off)."""
    settings = manager.settings.reconciler
    if not settings.enabled:
        return None
    reconciler = Reconciler(manager, base_url=base_url, settings=settings)
    reconciler.start()
    return reconciler
