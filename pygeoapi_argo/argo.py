"""``ArgoClient``: the only code that talks to the Argo Server.

Calls go through hera 7.1's ``WorkflowsService`` (models and paths), given an ``ArgoSession``
that makes up for what hera lacks and owns every transport concern in one place:

- a timeout on every request (hera sets none, so a hung server would block a worker forever);
- bounded retries with backoff (urllib3 ``Retry``) of idempotent methods (GET, PUT, DELETE) on
  connection errors, read errors and 429/502/503/504. POST (create) is retried only on errors
  *before* the request was sent (refused or timed-out connects), because a create whose answer was
  lost may have happened: a generated name would then run twice. Our workflows have fixed names,
  so the caller retries a create itself and takes ``ArgoConflict`` (409) as "already submitted";
- the bearer token on every request, from ``ARGO_TOKEN`` or a token file re-read when it changes;
  a 401 re-reads the file once and repeats the request if the token differs;
- TLS verification (on unless configured off; CA bundle allowed) on every request;
- every non-2xx answer and transport failure mapped to our exception types, with the token
  scrubbed from any message. hera's own error mapping is never reached.

hera bugs worked around here: no timeout (above); ``workflow_logs`` parses only a one-line answer
(we read the NDJSON stream ourselves); a ``fields=`` projection fails hera's models when it drops
``metadata``/``spec`` (projected reads parse leniently); an unset namespace becomes the literal
``None`` (the namespace is required by the settings); a host with a path prefix loses its last
segment in ``urljoin`` without a trailing slash (``ArgoSettings.base_url`` always ends with one).

Nothing here touches the network at construction: pygeoapi builds managers while generating its
OpenAPI document, with no cluster in reach.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3
from hera.workflows.models import (
    ClusterWorkflowTemplate,
    ClusterWorkflowTemplateCreateRequest,
    ClusterWorkflowTemplateUpdateRequest,
    CreateCronWorkflowRequest,
    CronWorkflow,
    CronWorkflowResumeRequest,
    CronWorkflowSuspendRequest,
    UpdateCronWorkflowRequest,
    Workflow,
    WorkflowCreateRequest,
    WorkflowList,
    WorkflowStopRequest,
    WorkflowTemplate,
    WorkflowTemplateCreateRequest,
    WorkflowTemplateUpdateRequest,
    WorkflowTerminateRequest,
)
from hera.workflows.service import WorkflowsService
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import metrics
from .errors import (
    ArgoConflict,
    ArgoError,
    ArgoNotFound,
    ArgoRejected,
    ArgoUnauthorized,
    ArgoUnavailable,
)
from .settings import ArgoSettings, Secret

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_FACTOR = 0.5  # urllib3: first retry at once, then 1 s, 2 s, 4 s ... capped by BACKOFF_MAX
BACKOFF_MAX = 10.0
# Argo answers a stop or terminate of a finished workflow with a 500 carrying this message.
_COMPLETED = "cannot shutdown a completed workflow"
# Kubernetes object names (DNS-1123 subdomain): anything else cannot exist, and must not reach a
# URL path where hera formats it in unquoted.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")

Template = WorkflowTemplate | ClusterWorkflowTemplate


@dataclass(frozen=True)
class LogEntry:
    """One line of a pod's log, as Argo's log stream carries it."""

    pod_name: str
    content: str


@dataclass(frozen=True)
class WorkflowEvent:
    """One change of a workflow, as Argo's ``workflow-events`` stream carries it."""

    type: str  # ADDED, MODIFIED or DELETED (Kubernetes watch event types)
    workflow: Workflow


class _Token:
    """The ``Authorization`` header value, fixed (``ARGO_TOKEN``) or read from a token file.

    The file is stat-ed on every request and re-read when its inode, mtime or size changes, so a
    rotated Kubernetes service-account token is picked up without a restart; ``reread`` forces a
    read after a 401 in case a rewrite kept all three.
    """

    def __init__(self, token: Secret | None, token_file: Path | None) -> None:
        self._file = token_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._raw: str | None = token.reveal() if token is not None else None

    def __repr__(self) -> str:
        return f"<token from {self._file}>" if self._file else "<token from ARGO_TOKEN>"

    def header(self) -> str | None:
        if self._file is not None:
            with self._lock:
                stamp = self._stat()
                if stamp != self._stamp:
                    self._read(stamp)
        return _bearer(self._raw) if self._raw else None

    def reread(self) -> bool:
        """Read the token file whatever its stamp; True if the token changed."""
        if self._file is None:
            return False
        with self._lock:
            before = self._raw
            self._read(self._stat())
            return self._raw != before

    def scrub(self, text: str) -> str:
        """``text`` with the token blanked out: servers have been known to echo a bad one."""
        raw = self._raw
        if raw:
            text = text.replace(_bearer(raw).split(None, 1)[-1], "***").replace(raw, "***")
        return text

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = self._file.stat()
        except OSError as exc:
            raise ArgoUnauthorized(f"token file {self._file} cannot be read: {exc.strerror}") from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read(self, stamp: tuple[int, int, int]) -> None:
        try:
            raw = self._file.read_text().strip()
        except OSError as exc:
            raise ArgoUnauthorized(f"token file {self._file} cannot be read: {exc.strerror}") from None
        if not raw:
            raise ArgoUnauthorized(f"token file {self._file} is empty")
        self._raw, self._stamp = raw, stamp


def _bearer(token: str) -> str:
    """``Bearer <token>`` unless the token already names its scheme (``ARGO_TOKEN`` usually does)."""
    return token if len(token.split()) > 1 else f"Bearer {token}"


class _BearerAuth(requests.auth.AuthBase):
    """Sets the header at send time, so each request carries the token current at that moment."""

    def __init__(self, token: _Token) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        header = self.token.header()
        if header:
            request.headers["Authorization"] = header
        return request


class ArgoSession(requests.Session):
    """The session hera sends through: timeout, retries, TLS, token and error mapping (module doc)."""

    def __init__(self, settings: ArgoSettings) -> None:
        super().__init__()
        self.timeout = settings.timeout
        self._verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else settings.verify
        self._token = _Token(settings.token, settings.token_file)
        self.auth = _BearerAuth(self._token)  # also keeps requests from taking credentials from ~/.netrc
        retry = Retry(
            total=settings.retries,
            allowed_methods=IDEMPOTENT_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=BACKOFF_FACTOR,
            backoff_max=BACKOFF_MAX,
            raise_on_status=False,  # the last answer is mapped below, with Argo's message
            respect_retry_after_header=False,  # keeps the worst case bounded by our own backoff
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    @metrics.timed_argo_request
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        """Send with our timeout and verification; answer 2xx or raise one of our errors."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["verify"] = self._verify
        try:
            response = super().request(method, url, *args, **kwargs)
            if response.status_code == 401 and self._token.reread():
                response.close()
                response = super().request(method, url, *args, **kwargs)
        except OSError as exc:  # requests' exceptions included
            log.warning("Argo Server request %s %s failed: %s", method.upper(), url,
                        self._token.scrub(str(exc)))
            unsent = isinstance(exc, requests.ConnectionError) and _never_connected(exc)
            raise ArgoUnavailable(f"Argo Server unreachable: {_describe(exc, kwargs['timeout'])}",
                                  unsent=unsent) from None
        if not response.ok:
            with response:
                raise _error_for(response.status_code, self._token.scrub(_error_message(response)))
        return response

    def scrub(self, text: str) -> str:
        return self._token.scrub(text)


def _chain(exc: BaseException) -> list[BaseException]:
    """requests wraps urllib3's errors (a read timeout after retries arrives as a ``ConnectionError``
    around a ``MaxRetryError`` around a ``ReadTimeoutError``): the whole chain, outermost first."""
    chain = [exc]
    while len(chain) < 10:
        inner = getattr(chain[-1], "reason", None)
        if not isinstance(inner, BaseException):
            args = chain[-1].args
            inner = args[0] if args and isinstance(args[0], BaseException) else None
        if inner is None:
            break
        chain.append(inner)
    return chain


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made: the request cannot have reached the server."""
    return any(isinstance(e, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
               for e in _chain(exc))


def _describe(exc: BaseException, timeout: Any) -> str:
    """A short reason without hosts or paths: the message may reach an OGC client."""
    kinds = tuple(type(e) for e in _chain(exc))
    if any(issubclass(k, urllib3.exceptions.NewConnectionError) for k in kinds):
        found = _ERRNO.search(str(exc))
        return found.group(1).strip().lower() if found else "connection failed"
    if any(issubclass(k, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError) for k in kinds):
        return "connecting timed out"
    if any(issubclass(k, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError)
           for k in kinds):
        return f"no answer within {timeout[-1] if isinstance(timeout, tuple) else timeout} s"
    if any(issubclass(k, requests.exceptions.SSLError | urllib3.exceptions.SSLError) for k in kinds):
        return "TLS handshake failed (is the certificate trusted? see verify and ca_bundle)"
    if any(issubclass(k, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError)
           for k in kinds):
        return "the connection broke off in the middle of the answer"
    found = _ERRNO.search(str(exc))
    if found:
        return found.group(1).strip().lower()
    return "connection failed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__


def _error_message(response: requests.Response) -> str:
    """Argo's ``{code, message}``, or the ``{"error": {...}}`` of a stream that failed at once."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason or ""
    if isinstance(body, dict):
        error = body.get("error")
        message = body.get("message") or (error.get("message") if isinstance(error, dict) else error)
        if message:
            return str(message)[:500]
    return json.dumps(body)[:300]


def _error_for(status: int, message: str) -> ArgoError:
    if status in (401, 403):
        return ArgoUnauthorized(f"Argo Server refused the credentials ({status}): {message}", status=status)
    if status == 404:
        return ArgoNotFound(message, status=status)
    if status == 409 or (status == 500 and _COMPLETED in message):
        return ArgoConflict(message, status=status)
    if status in (400, 422):
        return ArgoRejected(f"Argo Server rejected the request: {message}", status=status)
    if status == 429 or status >= 500:
        return ArgoUnavailable(f"Argo Server error {status}: {message}", status=status)
    return ArgoError(f"unexpected answer {status} from the Argo Server: {message}", status=status)


def _parsed[T](call: Callable[[], T]) -> T:
    """Run a hera call; a 2xx body hera's models refuse is an Argo error, not our crash."""
    try:
        return call()
    except ValueError as exc:  # pydantic's ValidationError and json's JSONDecodeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArgoError(f"unexpected answer from the Argo Server: {first}") from exc


def _with_objects(data: Any, *keys: str) -> dict:
    """``data`` with ``{}`` where a projection dropped objects hera's models require."""
    if not isinstance(data, dict):
        raise ArgoError(f"unexpected answer from the Argo Server: {type(data).__name__}, not an object")
    return {**data, **{key: {} for key in keys if data.get(key) is None}}


def _name(name: Any, kind: str) -> str:
    """A valid Kubernetes name, else ArgoNotFound: no such object can exist."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ArgoNotFound(f"no {kind} named {str(name)[:100]!r}: not a valid Kubernetes name")
    return name


class ArgoClient:
    """Workflows, templates and logs of one namespace of one Argo Server.

    All methods return hera models (``hera.workflows.models``) unless noted, and raise only our
    ``ArgoError`` subclasses: ``ArgoNotFound``, ``ArgoConflict`` (409, and stop/terminate of a
    finished workflow), ``ArgoUnauthorized``, ``ArgoRejected`` (400/422), ``ArgoUnavailable``
    (unreachable, timed out, 429/5xx after the retries) and ``ArgoError`` for anything else.
    """

    def __init__(self, settings: ArgoSettings) -> None:
        self.settings = settings
        self.namespace = settings.namespace
        self._session = ArgoSession(settings)
        self._service = WorkflowsService(host=settings.base_url, namespace=settings.namespace,
                                         session=self._session)

    def __repr__(self) -> str:
        return f"ArgoClient({self.settings.base_url!r}, namespace={self.namespace!r})"

    def close(self) -> None:
        self._session.close()

    def scrub(self, text: str) -> str:
        """``text`` with the Argo token blanked out (job logs must never show it)."""
        return self._session.scrub(text)

    # --- server ----------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """Argo's version document as JSON (hera's model would refuse a server omitting a field)."""
        return self._get_json("version", {})

    # --- workflows -------------------------------------------------------------------------------

    def create_workflow(self, workflow: Workflow) -> Workflow:
        """Submit; 409 (a workflow of that name exists) raises ArgoConflict. Not retried once sent."""
        request = WorkflowCreateRequest(workflow=workflow, namespace=self.namespace)
        return _parsed(lambda: self._service.create_workflow(request))

    def get_workflow(self, name: str, fields: str | None = None) -> Workflow:
        """The workflow; with Argo's ``fields`` projection (e.g. ``metadata.name,status.phase``)
        parsed leniently: what the projection dropped is ``None`` (or empty ``metadata``/``spec``).
        """
        name = _name(name, "workflow")
        if fields is None:
            return _parsed(lambda: self._service.get_workflow(name))
        data = self._get_json(f"workflows/{self.namespace}/{name}", {"fields": fields})
        return _parsed(lambda: Workflow.model_validate(_with_objects(data, "metadata", "spec")))

    def list_workflows(self, *, label_selector: str | None = None, field_selector: str | None = None,
                       fields: str | None = None, limit: int | None = None,
                       continue_: str | None = None) -> WorkflowList:
        """One page, newest first; ``items`` is a list (Argo sends ``null`` for none).

        With ``fields``, name the item paths (``items.metadata.name,items.status.phase``) and keep
        ``metadata`` to get ``metadata.continue`` for the next page.
        """
        if fields is None:
            page = _parsed(lambda: self._service.list_workflows(
                label_selector=label_selector, field_selector=field_selector,
                limit=None if limit is None else str(limit), continue_=continue_))
        else:
            data = _with_objects(self._get_json(f"workflows/{self.namespace}", {
                "listOptions.labelSelector": label_selector, "listOptions.fieldSelector": field_selector,
                "listOptions.limit": limit, "listOptions.continue": continue_, "fields": fields,
            }), "metadata")
            data["items"] = [_with_objects(item, "metadata", "spec") for item in data.get("items") or []]
            page = _parsed(lambda: WorkflowList.model_validate(data))
        if page.items is None:
            page.items = []
        return page

    def stop_workflow(self, name: str, message: str | None = None) -> Workflow:
        """Stop (exit handlers run); a finished workflow raises ArgoConflict."""
        name = _name(name, "workflow")
        request = WorkflowStopRequest(name=name, namespace=self.namespace, message=message)
        return _parsed(lambda: self._service.stop_workflow(name, request))

    def terminate_workflow(self, name: str) -> Workflow:
        """Terminate (no exit handlers); a finished workflow raises ArgoConflict."""
        name = _name(name, "workflow")
        request = WorkflowTerminateRequest(name=name, namespace=self.namespace)
        return _parsed(lambda: self._service.terminate_workflow(name, request))

    def delete_workflow(self, name: str) -> None:
        """Delete. A retry whose first attempt already deleted it raises ArgoNotFound: gone either way."""
        name = _name(name, "workflow")
        _parsed(lambda: self._service.delete_workflow(name))

    def workflow_logs(self, name: str, *, pod_name: str | None = None, container: str = "main",
                      tail_lines: int | None = None, grep: str | None = None,
                      follow: bool = False) -> Iterator[LogEntry]:
        """The workflow's pod logs, streamed (hera's reader breaks on more than one line).

        The request is made here, so a missing workflow raises at once, before any iteration. The
        iterator raises ArgoUnavailable if the stream breaks off: it never ends early as if complete.
        A followed log has no read timeout (a step may be silent for long): close the iterator to
        stop following.
        """
        name = _name(name, "workflow")
        params = {
            "podName": None if pod_name is None else _name(pod_name, "pod"),
            "logOptions.container": container,
            "logOptions.follow": "true" if follow else None,
            "logOptions.tailLines": tail_lines,
            "grep": grep,
        }
        timeout = (self.settings.timeout, None) if follow else self.settings.timeout
        response = self._session.get(self._url(f"workflows/{self.namespace}/{name}/log"), params=params,
                                     stream=True, timeout=timeout)
        return self._log_entries(response, timeout)

    def watch_workflows(self, *, label_selector: str | None = None, resource_version: str | None = None,
                        timeout_seconds: int | None = None) -> Iterator[WorkflowEvent]:
        """The namespace's workflows as they change (``workflow-events``, Kubernetes watch semantics:
        without ``resource_version`` every current workflow first arrives as ``ADDED``; with the
        ``metadata.resourceVersion`` of the last event seen, only what came after it).

        The request is made here, so a refused watch raises at once. The iterator ends when the
        server ends the watch (after ``timeout_seconds``), raises ArgoUnavailable if the stream
        breaks off or stays silent longer than that plus the client timeout (a dead connection must
        not look like a quiet cluster), and raises the error Argo sends inside the stream (such as
        a resource version too old to resume from) as our exception.
        """
        params = {"listOptions.labelSelector": label_selector,
                  "listOptions.resourceVersion": resource_version,
                  "listOptions.timeoutSeconds": timeout_seconds}
        timeout = (self.settings.timeout,
                   None if timeout_seconds is None else timeout_seconds + self.settings.timeout)
        response = self._session.get(self._url(f"workflow-events/{self.namespace}"), params=params,
                                     stream=True, timeout=timeout)
        return self._workflow_events(response, timeout)

    # --- templates -------------------------------------------------------------------------------

    def get_workflow_template(self, name: str, *, cluster_scope: bool = False) -> Template:
        name = _name(name, "workflow template")
        if cluster_scope:
            return _parsed(lambda: self._service.get_cluster_workflow_template(name))
        return _parsed(lambda: self._service.get_workflow_template(name))

    def list_workflow_templates(self, *, cluster_scope: bool = False) -> list[Template]:
        if cluster_scope:
            page = _parsed(self._service.list_cluster_workflow_templates)
        else:
            page = _parsed(self._service.list_workflow_templates)
        return list(page.items or [])

    def create_workflow_template(self, template: Template, *, cluster_scope: bool = False) -> Template:
        """Create; an existing one of that name raises ArgoConflict (then use update)."""
        if cluster_scope:
            request = ClusterWorkflowTemplateCreateRequest(template=template)
            return _parsed(lambda: self._service.create_cluster_workflow_template(request))
        request = WorkflowTemplateCreateRequest(template=template, namespace=self.namespace)
        return _parsed(lambda: self._service.create_workflow_template(request))

    def update_workflow_template(self, template: Template, *, cluster_scope: bool = False) -> Template:
        """Replace the template of the same name. Without ``metadata.resourceVersion`` the current
        one is fetched first (last write wins), as ``kubectl apply`` does for a whole object.
        """
        name = _name(template.metadata.name, "workflow template")
        if template.metadata.resource_version is None:
            current = self.get_workflow_template(name, cluster_scope=cluster_scope)
            template = template.model_copy(deep=True)
            template.metadata.resource_version = current.metadata.resource_version
        if cluster_scope:
            request = ClusterWorkflowTemplateUpdateRequest(name=name, template=template)
            return _parsed(lambda: self._service.update_cluster_workflow_template(name, request))
        request = WorkflowTemplateUpdateRequest(name=name, namespace=self.namespace, template=template)
        return _parsed(lambda: self._service.update_workflow_template(name, request))

    def delete_workflow_template(self, name: str, *, cluster_scope: bool = False) -> None:
        name = _name(name, "workflow template")
        if cluster_scope:
            _parsed(lambda: self._service.delete_cluster_workflow_template(name))
        else:
            _parsed(lambda: self._service.delete_workflow_template(name))

    # --- cron workflows --------------------------------------------------------------------------

    def list_cron_workflows(self, *, label_selector: str | None = None) -> list[CronWorkflow]:
        page = _parsed(lambda: self._service.list_cron_workflows(label_selector=label_selector))
        return list(page.items or [])

    def get_cron_workflow(self, name: str) -> CronWorkflow:
        name = _name(name, "cron workflow")
        return _parsed(lambda: self._service.get_cron_workflow(name))

    def create_cron_workflow(self, cron: CronWorkflow) -> CronWorkflow:
        """Create; an existing one of that name raises ArgoConflict (then use update)."""
        request = CreateCronWorkflowRequest(cron_workflow=cron, namespace=self.namespace)
        return _parsed(lambda: self._service.create_cron_workflow(request))

    def update_cron_workflow(self, cron: CronWorkflow) -> CronWorkflow:
        """Replace the CronWorkflow of the same name. Without ``metadata.resourceVersion`` the current
        one is fetched first, and its ``status`` carried over: a CronWorkflow has no status
        subresource, so an update without it would erase what the cron controller recorded.
        """
        name = _name(cron.metadata.name, "cron workflow")
        if cron.metadata.resource_version is None:
            current = self.get_cron_workflow(name)
            cron = cron.model_copy(deep=True)
            cron.metadata.resource_version = current.metadata.resource_version
            cron.status = current.status
        request = UpdateCronWorkflowRequest(cron_workflow=cron, namespace=self.namespace)
        return _parsed(lambda: self._service.update_cron_workflow(name, request))

    def delete_cron_workflow(self, name: str) -> None:
        """Delete; Kubernetes then deletes the workflows it owns (its runs still in the cluster)."""
        name = _name(name, "cron workflow")
        _parsed(lambda: self._service.delete_cron_workflow(name))

    def suspend_cron_workflow(self, name: str) -> CronWorkflow:
        name = _name(name, "cron workflow")
        request = CronWorkflowSuspendRequest(name=name, namespace=self.namespace)
        return _parsed(lambda: self._service.suspend_cron_workflow(name, request))

    def resume_cron_workflow(self, name: str) -> CronWorkflow:
        name = _name(name, "cron workflow")
        request = CronWorkflowResumeRequest(name=name, namespace=self.namespace)
        return _parsed(lambda: self._service.resume_cron_workflow(name, request))

    # --- plumbing --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}api/v1/{path}"

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        response = self._session.get(self._url(path), params=params)
        try:
            return response.json()
        except ValueError:
            raise ArgoError("unexpected answer from the Argo Server: not JSON") from None

    def _log_entries(self, response: requests.Response, timeout: Any) -> Iterator[LogEntry]:
        """Argo's NDJSON log stream: ``{"result": LogEntry}`` or ``{"error": ...}`` per line."""
        for line in _ndjson(response, timeout, "log"):
            message = self._message(line, "log")
            result = message.get("result")
            if not isinstance(result, dict):
                raise ArgoError("unexpected message in the Argo log stream")
            yield LogEntry(pod_name=str(result.get("podName") or ""),
                           content=str(result.get("content") or ""))

    def _workflow_events(self, response: requests.Response, timeout: Any) -> Iterator[WorkflowEvent]:
        """The NDJSON watch stream: ``{"result": {"type", "object"}}`` or ``{"error": ...}`` lines."""
        for line in _ndjson(response, timeout, "watch"):
            result = self._message(line, "watch").get("result")
            if not (isinstance(result, dict) and isinstance(result.get("object"), dict)):
                raise ArgoError("unexpected message in the Argo watch stream")
            workflow = _parsed(lambda result=result: Workflow.model_validate(result["object"]))
            yield WorkflowEvent(type=str(result.get("type") or ""), workflow=workflow)

    def _message(self, line: bytes, what: str) -> dict:
        """One line of a stream as a JSON object; an ``{"error": ...}`` line raised as our error."""
        try:
            message = json.loads(line)
        except ValueError:
            raise ArgoError(f"unexpected line in the Argo {what} stream: not JSON") from None
        if not isinstance(message, dict):
            raise ArgoError(f"unexpected message in the Argo {what} stream")
        error = message.get("error")
        if isinstance(error, dict):
            status = str(error.get("http_code") or error.get("httpCode") or "")
            raise _error_for(int(status) if status.isdigit() else 500,
                             self._session.scrub(str(error.get("message") or "")))
        return message


def _ndjson(response: requests.Response, timeout: Any, what: str) -> Iterator[bytes]:
    """The lines of a streamed NDJSON answer (a last line without its newline counts if it is whole
    JSON). A stream that breaks off, or ends in the middle of a line, raises ``ArgoUnavailable``: a cut
    stream never passes for a complete one."""
    with response:
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=None):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (line for line in lines if line.strip())
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise ArgoUnavailable(f"the {what} stream broke off: {_describe(exc, timeout)}") from None
        if pending.strip():
            try:
                json.loads(pending)
            except ValueError:
                raise ArgoUnavailable(f"the {what} stream broke off in the middle of a line") from None
            yield pending
