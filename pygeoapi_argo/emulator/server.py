"""The Argo Server HTTP API (v3.7) over the emulated cluster: what grpc-gateway and Argo's servers do.

The server owns requests: it checks bodies against Argo's swagger (and drops fields Argo's Go structs
would not keep), names and stamps new objects, answers with Argo's error bodies
(``{"code": <gRPC code>, "message": ...}``, HTTP status from the gRPC code as grpc-gateway maps it)
and streams logs as newline-delimited ``{"result": LogEntry}`` chunks. Running workflows is the
controller's job: the server stores a new workflow with an empty ``status`` and hands its key over.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .controller import Controller, WorkflowFinished
from .faults import CONTROL_PATH, Faults
from .selectors import (
    Fields,
    LabelSelector,
    ObjectFieldSelector,
    SelectorError,
    WorkflowFieldSelector,
    label_key_error,
    label_value_error,
)
from .state import Cluster, Key, Pod

V1 = "io.argoproj.workflow.v1alpha1."
VERSION = {
    "version": "v3.7.18", "buildDate": "2026-08-14T00:00:00Z",
    "gitCommit": "66e32e5cc367f223e2ecf4fbe852b95eaed83034", "gitTag": "v3.7.18", "gitTreeState": "clean",
    "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64",
}
# grpc-gateway's HTTPStatusFromCode for the codes the server uses
HTTP_STATUS = {3: 400, 5: 404, 6: 409, 12: 501, 13: 500, 16: 401}
FINISHED = ("Succeeded", "Failed", "Error")
NAMESPACE_MISMATCH = "the namespace of the provided object does not match the namespace sent on the request"
TOKEN_INVALID = "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/"
LABEL_WORKFLOW_TEMPLATE = "workflows.argoproj.io/workflow-template"
LABEL_CLUSTER_WORKFLOW_TEMPLATE = "workflows.argoproj.io/cluster-workflow-template"
WORKFLOW_TEMPLATE_KINDS = ("WorkflowTemplate", "workflowtemplate", "workflowtemplates", "wftmpl")
CLUSTER_TEMPLATE_KINDS = ("ClusterWorkflowTemplate", "clusterworkflowtemplate", "clusterworkflowtemplates",
                          "cwftmpl")
UNSUPPORTED_LOG_OPTIONS = ("logOptions.previous", "logOptions.sinceSeconds", "logOptions.sinceTime.seconds",
                           "logOptions.sinceTime.nanos", "logOptions.limitBytes", "logOptions.stream",
                           "selector")
CRON_KINDS = ("CronWorkflow", "cronworkflow", "cronworkflows", "cwf", "cronwf")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


class ArgoError(Exception):
    """An error the Argo Server returns: gRPC ``code`` and ``message``, HTTP status from the code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def not_found(resource: str, name: str) -> ArgoError:
    return ArgoError(5, f'{resource} "{name}" not found')


def invalid(message: str) -> ArgoError:
    return ArgoError(3, message)


@dataclass(frozen=True)
class TemplateKind:
    """What differs between WorkflowTemplates and ClusterWorkflowTemplates."""

    kind: str
    resource: str  # Kubernetes resource name, as in its error messages
    store: str  # attribute of Cluster
    namespaced: bool


WORKFLOW_TEMPLATE = TemplateKind(
    "WorkflowTemplate", "workflowtemplates.argoproj.io", "workflow_templates", True)
CLUSTER_WORKFLOW_TEMPLATE = TemplateKind(
    "ClusterWorkflowTemplate", "clusterworkflowtemplates.argoproj.io", "cluster_workflow_templates", False)


@cache
def _definitions() -> dict[str, Any]:
    """The swagger definitions request bodies are checked against, IntOrString/Quantity relaxed.

    Argo declares both as strings but accepts numbers (``retryStrategy.limit: 10``).
    """
    data = json.loads(Path(__file__).with_name("argo-swagger.json").read_text())
    definitions = data["definitions"]
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["string", "integer"]}
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"type": ["string", "number"]}
    return definitions


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = _definitions()[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def check_body(data: object, definition: str) -> dict:
    """Validate ``data`` as swagger ``definition`` and drop the fields Argo's Go structs have no place for."""
    if not isinstance(data, dict):
        raise invalid(f"request body must be a JSON object, not {type(data).__name__}")
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _definitions()}
    error = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(schema).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise invalid(f"json: cannot unmarshal {where or 'body'}: {error.message}")
    _prune(data, {"$ref": f"#/definitions/{definition}"})
    return data


def _prune(value: object, schema: dict) -> None:
    schema = _resolve(schema)
    if isinstance(value, dict) and "properties" in schema:
        for key in list(value):
            if key in schema["properties"]:
                _prune(value[key], schema["properties"][key])
            elif isinstance(schema.get("additionalProperties"), dict):
                _prune(value[key], schema["additionalProperties"])
            else:
                del value[key]
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for item in value.values():
            _prune(item, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _prune(item, schema["items"])


def check_metadata(kind: str, meta: dict) -> None:
    """What the Kubernetes API server refuses on create (422, which Argo answers as 400)."""
    name = meta.get("name", "")
    prefix = f'{kind}.argoproj.io "{name}" is invalid: '
    if not name:
        raise invalid(prefix + "metadata.name: Required value: name or generateName is required")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid(
            prefix + f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character")
    for key, value in (meta.get("labels") or {}).items():
        if error := label_key_error(key) or label_value_error(value):
            raise invalid(prefix + f'metadata.labels: Invalid value: "{key}": {error}')


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``k=v,k2=v2`` as Argo's ``cmdutil.ParseLabels`` reads submit options."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise invalid(f"expected {what} of the form: NAME1=VALUE2,NAME2=VALUE2. Received: {text}: "
                          f"invalid label spec: {part}")
        pairs[key.strip()] = value.strip()
    return pairs


def apply_submit_opts(workflow: dict, opts: dict) -> None:
    """Argo's ``util.ApplySubmitOpts`` on a plain Workflow dict."""
    spec, meta = workflow["spec"], workflow["metadata"]
    if opts.get("entryPoint"):
        spec["entrypoint"] = opts["entryPoint"]
    if opts.get("serviceAccount"):
        spec["serviceAccountName"] = opts["serviceAccount"]
    if opts.get("podPriorityClassName"):
        spec["podPriorityClassName"] = opts["podPriorityClassName"]
    if opts.get("priority") is not None:
        spec["priority"] = opts["priority"]
    if opts.get("labels"):
        meta.setdefault("labels", {}).update(parse_pairs(opts["labels"], "labels"))
    if opts.get("annotations"):
        meta.setdefault("annotations", {}).update(parse_pairs(opts["annotations"], "Annotations"))
    if opts.get("parameters"):
        given: list[dict] = []
        for text in opts["parameters"]:
            name, sep, value = text.partition("=")
            if not sep:
                raise invalid(f"expected parameter of the form: NAME=VALUE. Received: {text}")
            given.append({"name": name, "value": value})
        names = {p["name"] for p in given}
        old = spec.get("arguments", {}).get("parameters", [])
        spec.setdefault("arguments", {})["parameters"] = given + [p for p in old if p["name"] not in names]
    if opts.get("generateName"):
        meta["generateName"] = opts["generateName"]
    if opts.get("name"):
        meta["name"] = opts["name"]
    if opts.get("ownerReference"):
        meta.setdefault("ownerReferences", []).append(opts["ownerReference"])


def check_arguments(parameters: list[dict]) -> None:
    """Argo's ``validateArgumentsValues``: every workflow parameter needs a value, enums must hold it."""
    for param in parameters:
        name, value, enum = param.get("name", ""), param.get("value"), param.get("enum")
        if value is None and param.get("valueFrom") is None:
            raise invalid(f"spec.arguments.{name}.value is required")
        if enum is not None:
            if not enum:
                raise invalid(f"spec.arguments.{name}.enum should contain at least one value")
            if str(value) not in [str(e) for e in enum]:
                raise invalid(
                    f"spec.arguments.{name}.value should be present in spec.arguments.{name}.enum list")


def _int_arg(request: Request, name: str, default: int | None = None) -> int | None:
    text = request.args.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise invalid(f'type mismatch, parameter: {name}, error: strconv.ParseInt: parsing "{text}": '
                      "invalid syntax") from None


def _bool_arg(request: Request, name: str) -> bool:
    text = (request.args.get(name) or "false").lower()
    if text not in ("true", "false", "1", "0", "t", "f"):
        raise invalid(f'type mismatch, parameter: {name}, error: strconv.ParseBool: parsing "{text}": '
                      "invalid syntax")
    return text in ("true", "1", "t")


def _page(items: list[dict], request: Request) -> tuple[list[dict], dict, int]:
    """``listOptions.limit`` and the integer offset Argo uses as ``listOptions.continue``."""
    limit = _int_arg(request, "listOptions.limit", 0) or 0
    text = request.args.get("listOptions.continue") or "0"
    try:
        offset = int(text)
    except ValueError:
        raise invalid("listOptions.continue must be int") from None
    if offset < 0:
        raise invalid("listOptions.continue must >= 0")
    page = items[offset:offset + limit] if limit > 0 else items[offset:]
    meta: dict = {}
    remaining = len(items) - offset - len(page)
    if remaining > 0:
        meta["continue"] = str(offset + len(page))
    return page, meta, max(remaining, 0)


def _running_first(workflows: list[dict]) -> list[dict]:
    """Argo sorts each page: unfinished first (newest first), then by finishedAt, latest first."""
    running = [wf for wf in workflows if not wf.get("status", {}).get("finishedAt")]
    finished = [wf for wf in workflows if wf.get("status", {}).get("finishedAt")]
    finished.sort(key=lambda wf: wf["status"]["finishedAt"], reverse=True)
    return running + finished


def _with_struct_keys(obj: dict, keys: tuple[str, ...]) -> dict:
    """After ``fields``, Argo re-marshals a Go struct: fields without omitempty come back empty."""
    for key in keys:
        obj.setdefault(key, {})
    return obj


class ArgoServer:
    """The WSGI application: Argo Server paths over one ``Cluster`` and its ``Controller``."""

    def __init__(self, cluster: Cluster, controller: Controller, *, token: str | None = None,
                 namespace: str = "argo", token_file: Path | None = None) -> None:
        self.cluster = cluster
        self.controller = controller
        self.token = token
        self.token_file = token_file  # re-read on every request: tests rotate it (faults.py)
        self.namespace = namespace
        self.faults = Faults()
        wf, wft = "/api/v1/workflows", "/api/v1/workflow-templates"
        cwft = "/api/v1/cluster-workflow-templates"
        rules = [
            ("/api/v1/version", "GET", self.version),
            ("/api/v1/info", "GET", self.info),
            (f"{wf}/<ns>", "GET", self.list_workflows),
            (f"{wf}/<ns>", "POST", self.create_workflow),
            (f"{wf}/<ns>/submit", "POST", self.submit_workflow),
            (f"{wf}/<ns>/<name>", "GET", self.get_workflow),
            (f"{wf}/<ns>/<name>", "DELETE", self.delete_workflow),
            (f"{wf}/<ns>/<name>/stop", "PUT", self.stop_workflow),
            (f"{wf}/<ns>/<name>/terminate", "PUT", self.terminate_workflow),
            (f"{wf}/<ns>/<name>/log", "GET", self.workflow_logs),
            (f"{wf}/<ns>/<name>/<pod>/log", "GET", self.workflow_logs),
            ("/api/v1/workflow-events/<ns>", "GET", self.watch_workflows),
            (f"{wft}/<ns>", "GET", self.list_templates),
            (f"{wft}/<ns>", "POST", self.create_template),
            (f"{wft}/<ns>/<name>", "GET", self.get_template),
            (f"{wft}/<ns>/<name>", "PUT", self.update_template),
            (f"{wft}/<ns>/<name>", "DELETE", self.delete_template),
            (cwft, "GET", self.list_templates),
            (cwft, "POST", self.create_template),
            (f"{cwft}/<name>", "GET", self.get_template),
            (f"{cwft}/<name>", "PUT", self.update_template),
            (f"{cwft}/<name>", "DELETE", self.delete_template),
        ]
        self.handlers: dict[str, Callable[..., Any]] = {}
        url_rules = []
        for i, (path, method, handler) in enumerate(rules):
            endpoint = f"{handler.__name__}:{i}"
            self.handlers[endpoint] = handler
            url_rules.append(Rule(path, methods=[method], endpoint=endpoint))
        self.url_map = Map(url_rules, strict_slashes=False, merge_slashes=False)

    def add_routes(self, rules: list[tuple[str, str, Callable[..., Any]]]) -> None:
        """Serve more paths (``(path, method, handler)``), e.g. the CronWorkflow service of cron.py."""
        for path, method, handler in rules:
            endpoint = f"{handler.__name__}:{len(self.handlers)}"
            self.handlers[endpoint] = handler
            self.url_map.add(Rule(path, methods=[method], endpoint=endpoint))

    # -- WSGI ------------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ArgoError as error:
            response = self.json({"code": error.code, "message": error.message}, error.status)
        except Exception:  # a bug in the emulator: say so in Argo's shape, details on stderr only
            traceback.print_exc(file=sys.stderr)
            response = self.json({"code": 13, "message": "internal error in the Argo emulator"}, 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path == CONTROL_PATH:  # test aid, not Argo (faults.py)
            return self.faults.control(request)
        try:
            endpoint, args = self.url_map.bind_to_environ(request.environ).match()
        except HTTPException:  # unknown path or method: Argo's gateway never serves HTML for /api
            raise ArgoError(5, "Not Found") from None
        handler = self.handlers[endpoint]
        fault = self.faults.take(handler.__name__, request)
        if (injected := self.faults.answer(fault)) is not None:
            return injected
        if self.token is not None or self.token_file is not None:
            self.authenticate(request)
        if request.path.startswith("/api/v1/cluster-workflow-templates"):
            args["kind"] = CLUSTER_WORKFLOW_TEMPLATE
        elif request.path.startswith("/api/v1/workflow-templates"):
            args["kind"] = WORKFLOW_TEMPLATE
        result = handler(request, **args)
        response = result if isinstance(result, Response) else self.json(result)
        return self.faults.stream(fault, handler.__name__, request, response)

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = self.token_file.read_text().strip() if self.token_file is not None else self.token
        assert expected is not None
        if scheme != "Bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise ArgoError(16, TOKEN_INVALID)

    @staticmethod
    def json(body: object, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @staticmethod
    def body(request: Request, definition: str) -> dict:
        raw = request.get_data(cache=False)
        if not raw.strip():
            return {}  # grpc-gateway treats an empty body as an empty message
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid(f"request body is not valid JSON: {error}") from None
        return check_body(data, V1 + definition)

    # -- info ------------------------------------------------------------------------------------------

    def version(self, request: Request) -> dict:
        return dict(VERSION)

    def info(self, request: Request) -> dict:
        return {"managedNamespace": self.namespace}

    # -- workflows -------------------------------------------------------------------------------------

    def _workflow(self, ns: str, name: str) -> dict:
        """The stored workflow (call with the lock held)."""
        workflow = self.cluster.workflows.get((ns, name))
        if workflow is None:
            raise not_found("workflows.argoproj.io", name)
        return workflow

    def create_workflow(self, request: Request, ns: str) -> dict:
        body = self.body(request, "WorkflowCreateRequest")
        workflow = body.get("workflow")
        if workflow is None:
            raise invalid("workflow body not specified")
        meta = workflow.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise invalid(NAMESPACE_MISMATCH)
        self.check_workflow(workflow, ns)
        if (body.get("createOptions") or {}).get("dryRun"):
            return workflow
        return self.store_workflow(workflow, ns, dry_run=bool(body.get("serverDryRun")))

    def submit_workflow(self, request: Request, ns: str) -> dict:
        body = self.body(request, "WorkflowSubmitRequest")
        kind, name = body.get("resourceKind", ""), body.get("resourceName", "")
        if kind in CRON_KINDS:
            raise ArgoError(12, "the Argo emulator does not implement submitting from a CronWorkflow")
        if kind not in WORKFLOW_TEMPLATE_KINDS + CLUSTER_TEMPLATE_KINDS:
            raise invalid(f"Resource kind '{kind}' is not supported for submitting")
        cluster_scope = kind in CLUSTER_TEMPLATE_KINDS
        label = LABEL_CLUSTER_WORKFLOW_TEMPLATE if cluster_scope else LABEL_WORKFLOW_TEMPLATE
        ref: dict = {"name": name, "clusterScope": True} if cluster_scope else {"name": name}
        workflow = {"metadata": {"generateName": f"{name}-", "labels": {label: name}},
                    "spec": {"workflowTemplateRef": ref}}
        opts = body.get("submitOptions") or {}
        apply_submit_opts(workflow, opts)
        self.check_workflow(workflow, ns)
        if opts.get("dryRun"):
            return workflow
        return self.store_workflow(workflow, ns, dry_run=bool(opts.get("serverDryRun")))

    def check_workflow(self, workflow: dict, ns: str) -> None:
        """The part of Argo's ``ValidateWorkflow`` a client can trip over before anything runs."""
        spec = workflow.get("spec", {})
        templates = spec.get("templates") or []
        parameters = list((spec.get("arguments") or {}).get("parameters") or [])
        entrypoint = spec.get("entrypoint", "")
        if (ref := spec.get("workflowTemplateRef")) is not None:
            if templates:
                raise invalid(
                    "Templates is invalid field in spec if workflow referred WorkflowTemplate reference")
            kind = CLUSTER_WORKFLOW_TEMPLATE if ref.get("clusterScope") else WORKFLOW_TEMPLATE
            with self.cluster.lock:
                template = getattr(self.cluster, kind.store).get(("" if ref.get("clusterScope") else ns,
                                                                  ref.get("name", "")))
                if template is None:
                    raise not_found(kind.resource, ref.get("name", ""))
                tspec = copy.deepcopy(template.get("spec", {}))
            entrypoint = entrypoint or tspec.get("entrypoint", "")
            templates = tspec.get("templates") or []
            given = {p.get("name") for p in parameters}
            parameters += [p for p in (tspec.get("arguments") or {}).get("parameters") or []
                           if p.get("name") not in given]
        if not entrypoint:
            raise invalid("spec.entrypoint is required")
        entry = next((t for t in templates if t.get("name") == entrypoint), None)
        if entry is None:
            raise invalid(f"spec.entrypoint template '{entrypoint}' not found")
        check_arguments(parameters)
        supplied = {p.get("name") for p in parameters}
        for param in (entry.get("inputs") or {}).get("parameters") or []:
            if param.get("name") not in supplied and all(
                    param.get(k) is None for k in ("value", "default", "valueFrom")):
                name = param.get("name")
                raise invalid(f"templates.{entrypoint} inputs.parameters.{name} was not supplied")

    def store_workflow(self, workflow: dict, ns: str, *, dry_run: bool = False) -> dict:
        """Name, stamp and store a new workflow, then hand it to the controller."""
        for key in ("apiVersion", "kind"):  # client-go drops the type of typed objects it returns
            workflow.pop(key, None)
        meta = workflow["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        check_metadata("Workflow", meta)
        workflow["status"] = {}
        key = (ns, meta["name"])
        with self.cluster.lock:
            if key in self.cluster.workflows:
                raise ArgoError(6, f'workflows.argoproj.io "{meta["name"]}" already exists')
            self.cluster.stamp(workflow, namespace=ns)
            created = copy.deepcopy(workflow)
            if dry_run:
                return created
            self.cluster.workflows[key] = workflow
        self.controller.start(key)
        return created

    def get_workflow(self, request: Request, ns: str, name: str) -> dict:
        with self.cluster.lock:
            workflow = self._workflow(ns, name)
            uid = request.args.get("uid")
            if uid and workflow["metadata"].get("uid") != uid:
                raise not_found("workflows.argoproj.io", name)
            snapshot = copy.deepcopy(workflow)
        fields = Fields(request.args.get("fields"))
        return _with_struct_keys(fields.clean(snapshot), ("metadata", "spec")) if fields else snapshot

    def list_workflows(self, request: Request, ns: str) -> dict:
        try:
            labels = LabelSelector.parse(request.args.get("listOptions.labelSelector"))
            selector = WorkflowFieldSelector.parse(
                request.args.get("listOptions.fieldSelector"), ns, request.args.get("nameFilter") or "")
        except SelectorError as error:
            raise invalid(str(error)) from None
        created_after = self._time_arg(request, "createdAfter")
        finished_before = self._time_arg(request, "finishedBefore")
        with self.cluster.lock:
            # dicts keep insertion order, which is creation order: newest first is its reverse
            matching = [
                copy.deepcopy(wf) for (wf_ns, _), wf in reversed(self.cluster.workflows.items())
                if (not selector.namespace or wf_ns == selector.namespace)
                and labels.matches(wf["metadata"].get("labels")) and selector.matches(wf)
                and (created_after is None or wf["metadata"].get("creationTimestamp", "") > created_after)
                and (finished_before is None
                     or "" < wf.get("status", {}).get("finishedAt", "") < finished_before)
            ]
        page, meta, remaining = _page(matching, request)
        if selector.show_remaining_item_count:
            meta["remainingItemCount"] = remaining
        result = {"metadata": meta, "items": _running_first(page)}
        fields = Fields(request.args.get("fields"))
        if not fields:
            return result
        result = _with_struct_keys(fields.clean(result), ("metadata",))
        result["items"] = [_with_struct_keys(i, ("metadata", "spec")) for i in result.get("items") or []]
        return result

    @staticmethod
    def _time_arg(request: Request, name: str) -> str | None:
        """An RFC 3339 query parameter, normalised to the emulator's timestamp format for comparison."""
        text = request.args.get(name)
        if not text:
            return None
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise invalid(f'parsing time "{text}" as RFC 3339: invalid timestamp') from None

    def _shutdown(self, request: Request, ns: str, name: str, strategy: str, definition: str) -> dict:
        body = self.body(request, definition)
        if body.get("nodeFieldSelector"):
            raise invalid("currently, set only targets suspend nodes: no suspend nodes matching "
                          f"nodeFieldSelector: {body['nodeFieldSelector']}")
        with self.cluster.lock:
            self._workflow(ns, name)
        try:
            self.controller.stop((ns, name), strategy)  # type: ignore[arg-type]
        except WorkflowFinished:
            raise ArgoError(13, f'cannot shutdown a completed workflow: workflow: "{name}", '
                                f'namespace: "{ns}"') from None
        except KeyError:  # deleted meanwhile
            raise not_found("workflows.argoproj.io", name) from None
        with self.cluster.lock:
            return copy.deepcopy(self._workflow(ns, name))

    def stop_workflow(self, request: Request, ns: str, name: str) -> dict:
        return self._shutdown(request, ns, name, "Stop", "WorkflowStopRequest")

    def terminate_workflow(self, request: Request, ns: str, name: str) -> dict:
        return self._shutdown(request, ns, name, "Terminate", "WorkflowTerminateRequest")

    def delete_workflow(self, request: Request, ns: str, name: str) -> dict:
        with self.cluster.lock:
            self._workflow(ns, name)
        self.controller.delete((ns, name))
        with self.cluster.lock:
            self.cluster.workflows.pop((ns, name), None)
            pods = [k for k, pod in self.cluster.pods.items() if (pod.namespace, pod.workflow) == (ns, name)]
            removed = [self.cluster.pods.pop(key) for key in pods]
            self.cluster.changed.notify_all()  # watchers send DELETED
        for pod in removed:
            pod.finish()  # wake log followers: the pod is gone
        return {}

    # -- logs ------------------------------------------------------------------------------------------

    def workflow_logs(self, request: Request, ns: str, name: str, pod: str | None = None) -> Response:
        with self.cluster.lock:
            self._workflow(ns, name)
        unsupported = [p for p in UNSUPPORTED_LOG_OPTIONS if request.args.get(p) not in (None, "", "false")]
        if unsupported:
            raise invalid(f"the Argo emulator does not implement {', '.join(unsupported)}")
        tail = _int_arg(request, "logOptions.tailLines")
        grep = request.args.get("grep") or ""
        try:
            pattern = re.compile(grep) if grep else None
        except re.error as error:
            raise invalid(f"error parsing regexp: {error}") from None
        stream = LogStream(
            cluster=self.cluster, key=(ns, name), pod=pod or request.args.get("podName") or None,
            main=(request.args.get("logOptions.container") or "main") == "main",
            follow=_bool_arg(request, "logOptions.follow"),
            timestamps=_bool_arg(request, "logOptions.timestamps"), tail=tail, pattern=pattern)
        return Response(stream.chunks(), mimetype="application/json", direct_passthrough=True)

    # -- watch -----------------------------------------------------------------------------------------

    def watch_workflows(self, request: Request, ns: str) -> Response:
        """``workflow-events``: Kubernetes watch semantics, as Argo passes them on (WorkflowEvents)."""
        try:
            labels = LabelSelector.parse(request.args.get("listOptions.labelSelector"))
            selector = WorkflowFieldSelector.parse(request.args.get("listOptions.fieldSelector"), ns)
        except SelectorError as error:
            raise invalid(str(error)) from None
        if request.args.get("fields"):
            raise invalid("the Argo emulator does not implement fields on workflow-events")
        stream = WorkflowEvents(
            cluster=self.cluster,
            matches=lambda key, wf: ((not selector.namespace or key[0] == selector.namespace)
                                     and labels.matches(wf["metadata"].get("labels"))
                                     and selector.matches(wf)),
            since=_int_arg(request, "listOptions.resourceVersion"),
            timeout=_int_arg(request, "listOptions.timeoutSeconds"))
        return Response(stream.chunks(), mimetype="application/json", direct_passthrough=True)

    # -- workflow templates and cluster workflow templates ----------------------------------------------

    def load_template(self, document: dict, namespace: str) -> dict:
        """Store a template read from a file at start-up, checked like one created over HTTP."""
        kinds = {"WorkflowTemplate": WORKFLOW_TEMPLATE, "ClusterWorkflowTemplate": CLUSTER_WORKFLOW_TEMPLATE}
        kind = kinds.get(document.get("kind", ""))
        if kind is None:
            raise invalid(f"unsupported kind {document.get('kind')!r}: only WorkflowTemplate and "
                          "ClusterWorkflowTemplate can be loaded")
        return self.store_template(kind, namespace, check_body(document, V1 + kind.kind))

    def store_template(self, kind: TemplateKind, ns: str, template: dict) -> dict:
        for key in ("apiVersion", "kind"):
            template.pop(key, None)
        meta = template.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        check_metadata(kind.kind, meta)
        key = (ns if kind.namespaced else "", meta["name"])
        with self.cluster.lock:
            store = getattr(self.cluster, kind.store)
            if key in store:
                raise ArgoError(6, f'{kind.resource} "{meta["name"]}" already exists')
            self.cluster.stamp(template, namespace=ns if kind.namespaced else None)
            store[key] = template
            return copy.deepcopy(template)

    def create_template(self, request: Request, kind: TemplateKind, ns: str = "") -> dict:
        body = self.body(request, f"{kind.kind}CreateRequest")
        template = body.get("template")
        if template is None:
            raise invalid(f"{kind.kind} was not found in the request body")
        if kind.namespaced and template.setdefault("metadata", {}).get("namespace", ns) != ns:
            raise invalid(NAMESPACE_MISMATCH)
        return self.store_template(kind, ns, template)

    def _template(self, kind: TemplateKind, ns: str, name: str) -> dict:
        template = getattr(self.cluster, kind.store).get((ns, name))
        if template is None:
            raise not_found(kind.resource, name)
        return template

    def get_template(self, request: Request, kind: TemplateKind, name: str, ns: str = "") -> dict:
        with self.cluster.lock:
            return copy.deepcopy(self._template(kind, ns, name))

    def update_template(self, request: Request, kind: TemplateKind, name: str, ns: str = "") -> dict:
        body = self.body(request, f"{kind.kind}UpdateRequest")
        template = body.get("template")
        if template is None:
            raise invalid(f"{kind.kind} is not found in Request body")
        for key in ("apiVersion", "kind"):
            template.pop(key, None)
        meta = template.setdefault("metadata", {})
        name = meta.setdefault("name", name)  # Argo updates the object the body names
        with self.cluster.lock:
            current = self._template(kind, ns, name)
            version = meta.get("resourceVersion")
            if not version:
                raise invalid(f'{kind.kind}.argoproj.io "{name}" is invalid: metadata.resourceVersion: '
                              "Invalid value: 0x0: must be specified for an update")
            if version != current["metadata"]["resourceVersion"]:
                raise ArgoError(6, f'Operation cannot be fulfilled on {kind.resource} "{name}": the object '
                                   "has been modified; please apply your changes to the latest version and "
                                   "try again")
            check_metadata(kind.kind, meta)
            kept = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "generation")
                    if k in current["metadata"]}
            meta.update(kept)
            if template.get("spec") != current.get("spec"):
                meta["generation"] = kept.get("generation", 1) + 1
            if kind.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            self.cluster.touch(template)
            getattr(self.cluster, kind.store)[(ns, name)] = template
            return copy.deepcopy(template)

    def delete_template(self, request: Request, kind: TemplateKind, name: str, ns: str = "") -> dict:
        with self.cluster.lock:
            self._template(kind, ns, name)
            del getattr(self.cluster, kind.store)[(ns, name)]
        return {}

    def list_templates(self, request: Request, kind: TemplateKind, ns: str = "") -> dict:
        try:
            labels = LabelSelector.parse(request.args.get("listOptions.labelSelector"))
            fields = ObjectFieldSelector.parse(request.args.get("listOptions.fieldSelector"))
        except SelectorError as error:
            raise invalid(str(error)) from None
        pattern = request.args.get("namePattern") or ""
        with self.cluster.lock:
            items = [copy.deepcopy(t) for (t_ns, name), t in sorted(getattr(self.cluster, kind.store).items())
                     if t_ns == ns and pattern in name
                     and labels.matches(t["metadata"].get("labels")) and fields.matches(t)]
        page, meta, _ = _page(items, request)
        return {"metadata": meta, "items": page}


@dataclass
class LogStream:
    """One log request: the main container's lines of the selected pods as Argo's NDJSON chunks.

    Without ``follow`` it sends what the pods have logged so far, merged by timestamp. With
    ``follow`` it keeps sending, also from pods started later, until the workflow has finished
    and its pods have ended (or, for one pod, until that pod has ended).
    """

    cluster: Cluster
    key: Key
    pod: str | None
    main: bool
    follow: bool
    timestamps: bool
    tail: int | None
    pattern: re.Pattern | None

    def pods(self) -> list[Pod]:
        with self.cluster.lock:
            return [p for p in self.cluster.pods.values()
                    if (p.namespace, p.workflow) == self.key and (self.pod is None or p.name == self.pod)]

    def chunk(self, pod: Pod, stamp: str, text: str) -> bytes | None:
        content = f"{stamp} {text}" if self.timestamps else text
        if self.pattern is not None and not self.pattern.search(content):
            return None
        return json.dumps({"result": {"content": content, "podName": pod.name}}).encode() + b"\n"

    def chunks(self) -> Iterator[bytes]:
        if not self.main:
            return  # only the main container has logs in the emulator; init and wait stay empty
        sent: dict[str, int] = {}
        first = True
        while True:
            pods = self.pods()
            lines: list[tuple[str, Pod, str]] = []
            for pod in pods:
                with pod.changed:
                    start = sent.get(pod.name, 0)
                    new = pod.lines[start:]
                    if first and self.tail is not None:
                        new = new[-self.tail:] if self.tail > 0 else []
                    sent[pod.name] = len(pod.lines)
                lines += [(stamp, pod, text) for stamp, text in new]
            first = False
            lines.sort(key=lambda line: line[0])
            for stamp, pod, text in lines:
                if (data := self.chunk(pod, stamp, text)) is not None:
                    yield data
            if not self.follow or self.done(pods, sent):
                return
            self.wait(pods, sent)

    def done(self, pods: list[Pod], sent: dict[str, int]) -> bool:
        with self.cluster.lock:
            workflow = self.cluster.workflows.get(self.key)
            finished = workflow is None or workflow.get("status", {}).get("phase") in FINISHED
        pods_done = all(p.finished and sent[p.name] >= len(p.lines) for p in pods)
        if self.pod is not None:
            return pods_done and (bool(pods) or finished)
        return finished and pods_done

    @staticmethod
    def wait(pods: list[Pod], sent: dict[str, int]) -> None:
        """Sleep until a running pod logs more (or half a second passes: new pods, phase changes)."""
        running = [p for p in pods if not p.finished]
        if not running:
            time.sleep(0.2)
            return
        pod = running[-1]
        with pod.changed:
            if len(pod.lines) <= sent[pod.name] and not pod.finished:
                pod.changed.wait(timeout=0.5)


@dataclass
class WorkflowEvents:
    """One ``workflow-events`` request: ``{"result": {"type", "object"}}`` lines as workflows change.

    Kubernetes watch semantics: without ``since`` (``listOptions.resourceVersion``) every matching
    workflow is first sent as ADDED; with it, only what changed after that version (as MODIFIED: the
    emulator keeps no event history, so deletions before the request are not replayed). A workflow
    that stops matching (deleted, or relabelled) is sent as DELETED with its last state. Changes in
    quick succession may arrive as one event carrying the latest state, as a slow Kubernetes watcher
    sees them too. ``timeout`` (``listOptions.timeoutSeconds``) ends the stream cleanly.
    """

    cluster: Cluster
    matches: Callable[[Key, dict], bool]
    since: int | None
    timeout: int | None

    def chunks(self) -> Iterator[bytes]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        known: dict[Key, tuple[str, dict]] = {}  # key -> (resourceVersion, last state sent)
        first = True
        yield b""  # the headers at once, as Argo's SendHeader: the client learns the watch is open
        while deadline is None or time.monotonic() < deadline:
            with self.cluster.lock:
                events = self.changes(known, first)
                first = False
                if not events:
                    # touch() and deletes notify; the timeout also catches removals that do not
                    self.cluster.changed.wait(timeout=1.0)
                    continue
            for kind, obj in events:
                yield json.dumps({"result": {"type": kind, "object": obj}}).encode() + b"\n"

    def changes(self, known: dict[Key, tuple[str, dict]], first: bool) -> list[tuple[str, dict]]:
        """What changed since the last look (call with the lock held); updates ``known``."""
        events: list[tuple[str, dict]] = []
        current = {key: wf for key, wf in self.cluster.workflows.items() if self.matches(key, wf)}
        for key, wf in current.items():
            version = wf["metadata"].get("resourceVersion", "")
            if key in known and known[key][0] == version:
                continue
            obj = copy.deepcopy(wf)
            baseline = first and self.since is not None
            if baseline and int(version or 0) <= self.since:
                known[key] = (version, obj)
                continue
            events.append(("MODIFIED" if key in known or baseline else "ADDED", obj))
            known[key] = (version, obj)
        for key in [k for k in known if k not in current]:
            events.append(("DELETED", known.pop(key)[1]))
        return events
