"""CronWorkflows: Argo's ``CronWorkflowService`` (HTTP) and its cron controller, which fires them.

The service checks bodies against the swagger and validates as Argo's ``ValidateCronWorkflow`` does
(``schedule`` and ``schedules`` exclusive, names of at most 52 characters so ``-<unix time>`` fits,
standard 5-field cron or a descriptor, the concurrency policy, and the workflow the CronWorkflow would
create). Kubernetes semantics hold: updates need the current ``resourceVersion``, the whole object is
replaced (CronWorkflows have no status subresource), and deleting a CronWorkflow deletes the workflows
it owns (garbage collection of ``ownerReferences``).

The controller fires each CronWorkflow as Argo's does: a run named ``<name>-<scheduled unix time>``
with the label ``workflows.argoproj.io/cron-workflow`` and the annotation
``workflows.argoproj.io/scheduled-time``, owned by the CronWorkflow; ``suspend`` skips runs; the
``concurrencyPolicy`` Forbid skips a run while one is active and Replace terminates the active ones
first; ``status.active``, ``lastScheduledTime``, ``succeeded``/``failed`` are kept, and finished runs
beyond ``successfulJobsHistoryLimit`` (3) / ``failedJobsHistoryLimit`` (1) are deleted. Schedules are
computed in ``timezone`` (UTC when unset).

Test aid, not Argo: ``--cron-tick SECONDS`` runs the cron clock fast, one cron minute every SECONDS
real seconds, so ``* * * * *`` fires every SECONDS. Scheduled times, run names and
``lastScheduledTime`` are then in that fast clock (they run ahead of the wall clock).
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from werkzeug.wrappers import Request

from .controller import Controller, WorkflowFinished
from .selectors import LabelSelector, ObjectFieldSelector, SelectorError
from .server import (
    _SUFFIX_ALPHABET,
    FINISHED,
    NAMESPACE_MISMATCH,
    ArgoError,
    ArgoServer,
    _page,
    check_metadata,
    invalid,
    not_found,
)
from .state import Cluster, Key

RESOURCE = "cronworkflows.argoproj.io"
LABEL_CRON_WORKFLOW = "workflows.argoproj.io/cron-workflow"
ANNOTATION_SCHEDULED_TIME = "workflows.argoproj.io/scheduled-time"
MAX_NAME = 52  # 63 less "-" and a 10-digit unix time
POLICIES = ("", "Allow", "Forbid", "Replace")
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# Labels of a CronWorkflow that Argo copies to its runs.
PROPAGATED_LABELS = ("workflows.argoproj.io/creator", "workflows.argoproj.io/creator-email",
                     "workflows.argoproj.io/creator-preferred-username")
HISTORY = {"Succeeded": ("successfulJobsHistoryLimit", 3), "Failed": ("failedJobsHistoryLimit", 1),
           "Error": ("failedJobsHistoryLimit", 1)}
MAX_SLEEP = 1.0  # real seconds between controller passes at most (status of finished runs)


def schedules_of(spec: dict) -> list[str]:
    """``spec.schedules`` (Argo >= 3.6), else the deprecated single ``spec.schedule``."""
    return list(spec.get("schedules") or []) or [spec.get("schedule") or ""]


def schedule_error(schedule: str) -> str | None:
    """Why robfig/cron's ``ParseStandard`` (Argo's parser) would refuse ``schedule``, or None."""
    text = schedule.strip()
    if not text:
        return "empty spec string"
    if text.startswith("@"):
        if text.startswith("@every"):
            return "the Argo emulator does not implement @every"
        return None if text in DESCRIPTORS else f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    return None if croniter.is_valid(text) else "a field is out of range or not a number, list or step"


def zone(spec: dict) -> ZoneInfo:
    """The CronWorkflow's ``timezone``; KeyError if it is not a known IANA zone."""
    name = spec.get("timezone") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KeyError(name) from None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_workflow(cron: dict, scheduled: datetime) -> dict:
    """Argo's ``ConvertCronWorkflowToWorkflowWithProperties``: the run scheduled at ``scheduled``."""
    meta = cron["metadata"]
    spec = cron["spec"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k in PROPAGATED_LABELS}
    labels[LABEL_CRON_WORKFLOW] = meta["name"]
    annotations = {ANNOTATION_SCHEDULED_TIME: scheduled.isoformat()}
    extra = spec.get("workflowMetadata") or {}
    labels.update(extra.get("labels") or {})
    annotations.update(extra.get("annotations") or {})
    run_meta: dict = {
        "name": f"{meta['name']}-{int(scheduled.timestamp())}",
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
                             "name": meta["name"], "uid": meta.get("uid", ""),
                             "controller": True, "blockOwnerDeletion": True}],
    }
    if extra.get("finalizers"):
        run_meta["finalizers"] = list(extra["finalizers"])
    return {"metadata": run_meta, "spec": copy.deepcopy(spec.get("workflowSpec") or {})}


class CronClock:
    """The time schedules are computed in: the wall clock, or one running ``60 / tick`` times faster."""

    def __init__(self, tick: float | None = None) -> None:
        self.origin = time.time()
        self.scale = 60.0 / tick if tick else 1.0

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.scale


class CronWorkflowService:
    """The Argo Server's ``/api/v1/cron-workflows`` paths, added to an ``ArgoServer``."""

    def __init__(self, server: ArgoServer, changed: Callable[[], None]) -> None:
        self.server = server
        self.cluster = server.cluster
        self.changed = changed

    def routes(self) -> list[tuple[str, str, Callable]]:
        base = "/api/v1/cron-workflows"
        return [
            (f"{base}/<ns>", "GET", self.list),
            (f"{base}/<ns>", "POST", self.create),
            (f"{base}/<ns>/lint", "POST", self.lint),
            (f"{base}/<ns>/<name>", "GET", self.get),
            (f"{base}/<ns>/<name>", "PUT", self.update),
            (f"{base}/<ns>/<name>", "DELETE", self.delete),
            (f"{base}/<ns>/<name>/suspend", "PUT", self.suspend),
            (f"{base}/<ns>/<name>/resume", "PUT", self.resume),
        ]

    # -- validation ------------------------------------------------------------------------------------

    def validate(self, cron: dict, ns: str) -> None:
        """Argo's ``ValidateCronWorkflow`` (400 for every problem, as its server answers)."""
        spec = cron.get("spec") or {}
        if spec.get("schedules") and spec.get("schedule"):
            raise invalid("cron workflow cant be configured with both Spec.Schedule and Spec.Schedules")
        name = cron["metadata"]["name"]
        if len(name) > MAX_NAME:
            raise invalid(f'cron workflow name "{name}" must not be more than {MAX_NAME} characters long '
                          f"(currently {len(name)})")
        for schedule in schedules_of(spec):
            if error := schedule_error(schedule):
                raise invalid(f"cron schedule {schedule} is malformed: {error}")
        policy = spec.get("concurrencyPolicy") or ""
        if policy not in POLICIES:
            raise invalid(f"'{policy}' is not a valid concurrencyPolicy")
        if (spec.get("startingDeadlineSeconds") or 0) < 0:
            raise invalid("startingDeadlineSeconds must be positive")
        try:
            self.server.check_workflow(to_workflow(cron, datetime.now(UTC)), ns)
        except ArgoError as error:
            raise invalid(f"cannot validate Workflow: {error.message}") from None

    def _cron(self, ns: str, name: str) -> dict:
        """The stored CronWorkflow (call with the lock held)."""
        cron = self.cluster.cron_workflows.get((ns, name))
        if cron is None:
            raise not_found(RESOURCE, name)
        return cron

    # -- handlers --------------------------------------------------------------------------------------

    def create(self, request: Request, ns: str) -> dict:
        body = self.server.body(request, "CreateCronWorkflowRequest")
        cron = self._body_from(body, ns)
        meta = cron["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        check_metadata("CronWorkflow", meta)
        self.validate(cron, ns)
        if "All" in ((body.get("createOptions") or {}).get("dryRun") or []):
            return cron
        with self.cluster.lock:
            if (ns, meta["name"]) in self.cluster.cron_workflows:
                raise ArgoError(6, f'{RESOURCE} "{meta["name"]}" already exists')
            self.cluster.stamp(cron, namespace=ns)
            self.cluster.cron_workflows[(ns, meta["name"])] = cron
            created = copy.deepcopy(cron)
        self.changed()
        return created

    def _body_from(self, body: dict, ns: str) -> dict:
        cron = body.get("cronWorkflow")
        if cron is None:
            raise invalid("cronWorkflow is not found in Request body")
        for key in ("apiVersion", "kind"):
            cron.pop(key, None)
        meta = cron.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise invalid(NAMESPACE_MISMATCH)
        cron.setdefault("spec", {})
        return cron

    def lint(self, request: Request, ns: str) -> dict:
        cron = self._body_from(self.server.body(request, "LintCronWorkflowRequest"), ns)
        check_metadata("CronWorkflow", cron["metadata"])
        self.validate(cron, ns)
        return cron

    def get(self, request: Request, ns: str, name: str) -> dict:
        with self.cluster.lock:
            return copy.deepcopy(self._cron(ns, name))

    def list(self, request: Request, ns: str) -> dict:
        try:
            labels = LabelSelector.parse(request.args.get("listOptions.labelSelector"))
            fields = ObjectFieldSelector.parse(request.args.get("listOptions.fieldSelector"))
        except SelectorError as error:
            raise invalid(str(error)) from None
        with self.cluster.lock:
            items = [copy.deepcopy(c) for (c_ns, _), c in sorted(self.cluster.cron_workflows.items())
                     if c_ns == ns and labels.matches(c["metadata"].get("labels")) and fields.matches(c)]
        page, meta, _ = _page(items, request)
        return {"metadata": meta, "items": page}

    def update(self, request: Request, ns: str, name: str) -> dict:
        cron = self._body_from(self.server.body(request, "UpdateCronWorkflowRequest"), ns)
        meta = cron["metadata"]
        name = meta.setdefault("name", name)  # Argo updates the object the body names
        check_metadata("CronWorkflow", meta)
        self.validate(cron, ns)
        with self.cluster.lock:
            current = self._cron(ns, name)
            version = meta.get("resourceVersion")
            if not version:
                raise invalid(f'CronWorkflow.argoproj.io "{name}" is invalid: metadata.resourceVersion: '
                              "Invalid value: 0x0: must be specified for an update")
            if version != current["metadata"]["resourceVersion"]:
                raise ArgoError(6, f'Operation cannot be fulfilled on {RESOURCE} "{name}": the object has '
                                   "been modified; please apply your changes to the latest version and try "
                                   "again")
            kept = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "generation")
                    if k in current["metadata"]}
            meta.update(kept)
            if cron.get("spec") != current.get("spec"):
                meta["generation"] = kept.get("generation", 1) + 1
            meta["namespace"] = ns
            self.cluster.touch(cron)
            self.cluster.cron_workflows[(ns, name)] = cron
            updated = copy.deepcopy(cron)
        self.changed()
        return updated

    def delete(self, request: Request, ns: str, name: str) -> dict:
        with self.cluster.lock:
            uid = self._cron(ns, name)["metadata"].get("uid")
            del self.cluster.cron_workflows[(ns, name)]
            owned = [wf_name for (wf_ns, wf_name), wf in self.cluster.workflows.items()
                     if wf_ns == ns and any(ref.get("uid") == uid and ref.get("kind") == "CronWorkflow"
                                            for ref in wf["metadata"].get("ownerReferences") or [])]
        for wf_name in owned:  # Kubernetes' garbage collector, background propagation
            with contextlib.suppress(ArgoError):  # deleted meanwhile
                self.server.delete_workflow(request, ns, wf_name)
        self.changed()
        return {}

    def _set_suspend(self, request: Request, ns: str, name: str, suspend: bool, definition: str) -> dict:
        self.server.body(request, definition)
        with self.cluster.lock:
            cron = self._cron(ns, name)
            cron["spec"]["suspend"] = suspend
            self.cluster.touch(cron)
            result = copy.deepcopy(cron)
        self.changed()
        return result

    def suspend(self, request: Request, ns: str, name: str) -> dict:
        return self._set_suspend(request, ns, name, True, "CronWorkflowSuspendRequest")

    def resume(self, request: Request, ns: str, name: str) -> dict:
        return self._set_suspend(request, ns, name, False, "CronWorkflowResumeRequest")


class CronController:
    """Fires stored CronWorkflows on their schedules, on one thread, and keeps their status."""

    def __init__(self, cluster: Cluster, server: ArgoServer, controller: Controller,
                 clock: CronClock) -> None:
        self.cluster = cluster
        self.server = server
        self.controller = controller
        self.clock = clock
        self._wake = threading.Event()
        self._closed = False
        self._next: dict[Key, tuple[tuple, float]] = {}  # key -> (schedule signature, next fire time)
        self._thread = threading.Thread(target=self._loop, name="cron-controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A CronWorkflow changed: look again now rather than at the next pass."""
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._closed:
            wait = self.run_once()
            self._wake.wait(timeout=min(MAX_SLEEP, max(0.01, self.clock.real_seconds(wait))))
            self._wake.clear()

    def run_once(self) -> float:
        """One pass over every CronWorkflow; the cron-clock seconds until the next run is due."""
        with self.cluster.lock:
            keys = list(self.cluster.cron_workflows)
        for gone in set(self._next) - set(keys):
            del self._next[gone]
        wait = 60.0
        for key in keys:
            self._reconcile(key)
            due = self._due(key)
            if due is None:
                continue
            now = self.clock.now()
            if due <= now:
                self._fire(key, due)
                due = self._advance(key, due)
            wait = min(wait, due - now)
        return max(wait, 0.0)

    # -- schedule ------------------------------------------------------------------------------------

    def _due(self, key: Key) -> float | None:
        """The next fire time of ``key``, recomputed from now when its schedules changed."""
        with self.cluster.lock:
            cron = self.cluster.cron_workflows.get(key)
            if cron is None:
                return None
            spec = cron["spec"]
            signature = (cron["metadata"].get("uid"), tuple(schedules_of(spec)), spec.get("timezone"))
        known = self._next.get(key)
        if known is not None and known[0] == signature:
            return known[1]
        try:
            due = self._following(spec, self.clock.now())
        except KeyError as error:
            self._condition(key, "SpecError", f"invalid timezone '{error.args[0]}'")
            return None
        self._next[key] = (signature, due)
        return due

    def _advance(self, key: Key, fired: float) -> float:
        """The fire time after ``fired``; missed times are skipped (as a controller that was down)."""
        signature, _ = self._next[key]
        with self.cluster.lock:
            spec = copy.deepcopy(self.cluster.cron_workflows[key]["spec"])
        due = self._following(spec, max(fired, self.clock.now()))
        self._next[key] = (signature, due)
        return due

    @staticmethod
    def _following(spec: dict, after: float) -> float:
        """The earliest time after ``after`` that any schedule of ``spec`` names, in its timezone."""
        start = datetime.fromtimestamp(after, zone(spec))
        return min(croniter(s, start).get_next(float) for s in schedules_of(spec))

    # -- runs ----------------------------------------------------------------------------------------

    def _fire(self, key: Key, due: float) -> None:
        ns = key[0]
        with self.cluster.lock:
            cron = self.cluster.cron_workflows.get(key)
            if cron is None or cron["spec"].get("suspend"):
                return
            policy = cron["spec"].get("concurrencyPolicy") or "Allow"
            active = [ref["name"] for ref in (cron.get("status") or {}).get("active") or []]
            if policy == "Forbid" and active:
                return
            workflow = to_workflow(cron, datetime.fromtimestamp(due, zone(cron["spec"])))
        if policy == "Replace":
            for run in active:
                with contextlib.suppress(WorkflowFinished, KeyError):  # finished or deleted meanwhile
                    self.controller.stop((ns, run), "Terminate")
        try:
            self.server.check_workflow(workflow, ns)
            created = self.server.store_workflow(workflow, ns)
        except ArgoError as error:
            if error.code != 6:  # 6: a run of that name exists already: a duplicate firing
                self._condition(key, "SubmissionError", f"Failed to submit Workflow: {error.message}")
            return
        with self.cluster.lock:
            cron = self.cluster.cron_workflows.get(key)
            if cron is None:
                return
            status = cron.setdefault("status", {})
            status.setdefault("active", []).append({
                "kind": "Workflow", "apiVersion": "argoproj.io/v1alpha1", "name": created["metadata"]["name"],
                "namespace": ns, "uid": created["metadata"]["uid"],
                "resourceVersion": created["metadata"]["resourceVersion"]})
            status["lastScheduledTime"] = rfc3339(datetime.fromtimestamp(due, UTC))
            status["phase"] = "Active"
            conditions = [c for c in status.pop("conditions", []) if c.get("type") != "SubmissionError"]
            if conditions:
                status["conditions"] = conditions
            self.cluster.touch(cron)

    def _reconcile(self, key: Key) -> None:
        """Drop finished or vanished runs from ``status.active`` (counting outcomes); enforce history."""
        ns = key[0]
        with self.cluster.lock:
            cron = self.cluster.cron_workflows.get(key)
            if cron is None:
                return
            status = cron.setdefault("status", {})
            still, changed = [], False
            for ref in status.get("active") or []:
                workflow = self.cluster.workflows.get((ns, ref["name"]))
                phase = ((workflow or {}).get("status") or {}).get("phase")
                if workflow is not None and workflow["metadata"].get("uid") == ref.get("uid") \
                        and phase not in FINISHED:
                    still.append(ref)
                    continue
                changed = True
                if phase == "Succeeded":
                    status["succeeded"] = status.get("succeeded", 0) + 1
                elif phase in FINISHED:
                    status["failed"] = status.get("failed", 0) + 1
            if changed:
                status["active"] = still
                self.cluster.touch(cron)
            expired = self._beyond_history(cron, ns)
        for run in expired:
            self.controller.expire((ns, run))

    def _beyond_history(self, cron: dict, ns: str) -> list[str]:
        """Finished runs beyond the history limits, oldest first out (call with the lock held)."""
        spec, name = cron["spec"], cron["metadata"]["name"]
        runs: dict[str, list[tuple[str, str]]] = {}
        for (wf_ns, wf_name), wf in self.cluster.workflows.items():
            status = wf.get("status") or {}
            if wf_ns == ns and (wf["metadata"].get("labels") or {}).get(LABEL_CRON_WORKFLOW) == name \
                    and status.get("phase") in HISTORY and status.get("finishedAt"):
                limit_key = HISTORY[status["phase"]][0]
                runs.setdefault(limit_key, []).append((status["finishedAt"], wf_name))
        expired = []
        for limit_key, finished in runs.items():
            limit = spec.get(limit_key)
            keep = limit if isinstance(limit, int) and limit >= 0 else dict(HISTORY.values())[limit_key]
            finished.sort(reverse=True)
            expired += [wf_name for _, wf_name in finished[keep:]]
        return expired

    def _condition(self, key: Key, kind: str, message: str) -> None:
        with self.cluster.lock:
            cron = self.cluster.cron_workflows.get(key)
            if cron is None:
                return
            status = cron.setdefault("status", {})
            others = [c for c in status.get("conditions") or [] if c.get("type") != kind]
            condition = {"type": kind, "status": "True", "message": message}
            if condition not in (status.get("conditions") or []):
                status["conditions"] = [*others, condition]
                self.cluster.touch(cron)
