"""One workflow's run: Argo's node tree (Pod, Steps/StepGroup, DAG/TaskGroup, Retry, Skipped, exit handler).

Where Argo's controller reconciles a workflow again and again, the emulator walks the template tree
once, on threads: parallel steps and ready DAG tasks each run on their own thread and block until
their node is fulfilled. Every change to the workflow goes through ``_init_node``/``_mark``, which
hold the cluster lock and bump the resourceVersion, so the HTTP server always serves a consistent
object. Names, ids, messages and the order of decisions follow workflow/controller/operator.go,
steps.go and dag.go (Argo v3.7).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import artifacts
from .executor import Execution, Mount, PodError, PodRequest, host_path, remove_tree
from .nodes import display_name, go_format, item_node_name, node_id, pod_name
from .state import Pod, now_rfc3339
from .support import Unsupported, check_spec, check_template
from .templating import (
    ExpressionError,
    depends_tasks,
    evaluate_depends,
    evaluate_when,
    substitute,
    unresolved,
)

if TYPE_CHECKING:
    from .controller import Controller

FULFILLED = {"Succeeded", "Failed", "Error", "Skipped", "Omitted"}
FAILED = {"Failed", "Error"}
_WORKFLOW_PHASE = {
    "Succeeded": "Succeeded",
    "Skipped": "Succeeded",
    "Omitted": "Succeeded",
    "Failed": "Failed",
    "Error": "Error",
}
LABEL_PHASE = "workflows.argoproj.io/phase"
LABEL_COMPLETED = "workflows.argoproj.io/completed"


class TemplateError(Exception):
    """Argo's ``executeTemplate`` returning an error: the node is marked Error with this message."""


@dataclass
class TemplateContext:
    """Where local template names resolve: the workflow, or the WorkflowTemplate a templateRef named."""

    templates: dict[str, dict]
    scope: str


class Run:
    """Runs the workflow stored under ``key`` to completion on the calling thread."""

    def __init__(self, controller: Controller, key: tuple[str, str]) -> None:
        self.controller = controller
        self.cluster = controller.cluster
        self.settings = controller.settings
        self.key = key
        self.namespace, self.name = key
        self.wf: dict = self.cluster.workflows[key]
        self.spec: dict = {}
        self.workdir = controller.workdir / self.namespace / self.name
        self.shutdown = ""
        self.deadline_hit = False
        self.deleted = False
        self.globals: dict[str, str] = {}
        self.global_artifacts: dict[str, dict] = {}
        self.running: dict[str, tuple[Execution, bool]] = {}
        self.pods: list[tuple[str, str, bool]] = []  # (pod name, node id, succeeded) for podGC
        self.wants_result = False
        self._started = 0.0

    # --- lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            ctx = self._begin()
        except (Unsupported, TemplateError) as exc:
            self._finish("Error", str(exc))
            return
        try:
            root = self.execute(
                self.name,
                {"template": self.spec.get("entrypoint", "")},
                ctx,
                self.spec.get("arguments") or {},
                None,
                False,
                [],
            )
        except TemplateError as exc:
            self._finish("Error", f"error in entry template execution: {exc}")
            return
        phase = _WORKFLOW_PHASE.get(root["phase"], "Error")
        self._set_exit_globals(phase)
        exit_node = None
        if self.spec.get("onExit") and self.shutdown != "Terminate":
            try:
                exit_node = self.execute(
                    f"{self.name}.onExit", {"template": self.spec["onExit"]}, ctx, {}, None, True, []
                )
            except TemplateError as exc:
                self._finish("Error", f"error in exit template execution : {exc}")
                return
        message = root.get("message", "")
        if root["phase"] in FAILED and self.shutdown:
            message = f"Stopped with strategy '{self.shutdown}'"
        if phase == "Succeeded" and exit_node is not None and exit_node["phase"] in FAILED:
            phase, message = exit_node["phase"], exit_node.get("message", "")
        self._finish(phase, message)

    def stop(self, strategy: str) -> None:
        """Shut down: kill running pods (exit-handler pods survive a Stop); no new pods start."""
        self.shutdown = strategy
        self._kill(
            lambda on_exit: strategy == "Terminate" or not on_exit, f"Stopped with strategy '{strategy}'"
        )

    def abandon(self) -> None:
        """The workflow was deleted: kill everything and stop writing to the cluster."""
        self.deleted = True
        self.shutdown = self.shutdown or "Terminate"
        self._kill(lambda _on_exit: True, "Stopped with strategy 'Terminate'")

    def _deadline(self) -> None:
        self.deadline_hit = True
        self._kill(lambda on_exit: not on_exit, "Step exceeded its deadline")

    def _kill(self, select: Callable[[bool], bool], message: str) -> None:
        with self.cluster.lock:
            victims = [execution for execution, on_exit in self.running.values() if select(on_exit)]
        for execution in victims:
            execution.kill(message)

    def _begin(self) -> TemplateContext:
        with self.cluster.lock:
            spec = self.wf.get("spec") or {}
            status = self.wf.setdefault("status", {})
            if spec.get("workflowTemplateRef"):
                spec = self._join_template(spec)
                status["storedWorkflowTemplateSpec"] = copy.deepcopy(spec)
            self.spec = spec
            meta = self.wf.setdefault("metadata", {})
            meta.setdefault("labels", {})[LABEL_PHASE] = "Running"
            meta["labels"][LABEL_COMPLETED] = "false"
            meta.setdefault("annotations", {})["workflows.argoproj.io/pod-name-format"] = "v2"
            status.update(phase="Running", startedAt=now_rfc3339(), progress="0/0")
            status.setdefault("nodes", {})
            self.cluster.touch(self.wf)
        self._started = time.monotonic()
        check_spec(spec)
        self._set_globals()
        self.wants_result = "outputs.result" in json.dumps(spec)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            self.controller.schedule(self.key, float(deadline), self._deadline)
        templates = {t["name"]: t for t in spec.get("templates") or []}
        return TemplateContext(templates, f"local/{self.name}")

    def _join_template(self, spec: dict) -> dict:
        """``JoinWorkflowSpec``: the workflow's fields over the template's; parameters merged by name."""
        ref = spec["workflowTemplateRef"]
        source = self._lookup_template(ref.get("name", ""), bool(ref.get("clusterScope")))
        merged = copy.deepcopy(source.get("spec") or {})
        for key, value in spec.items():
            if key == "arguments":
                args = merged.setdefault("arguments", {})
                for kind in ("parameters", "artifacts"):
                    by_name = {p["name"]: p for p in args.get(kind) or []}
                    for item in value.get(kind) or []:
                        by_name[item["name"]] = {**by_name.get(item["name"], {}), **item}
                    if by_name:
                        args[kind] = list(by_name.values())
            elif key == "templates":
                by_name = {t["name"]: t for t in merged.get("templates") or []}
                by_name.update({t["name"]: t for t in value})
                merged["templates"] = list(by_name.values())
            else:
                merged[key] = copy.deepcopy(value)
        return merged

    def _lookup_template(self, name: str, cluster_scope: bool) -> dict:
        with self.cluster.lock:
            if cluster_scope:
                found = self.cluster.cluster_workflow_templates.get(("", name))
                kind = "ClusterWorkflowTemplate"
            else:
                found = self.cluster.workflow_templates.get((self.namespace, name))
                kind = "WorkflowTemplate"
            if found is None:
                where = "" if cluster_scope else f" in namespace {self.namespace}"
                raise TemplateError(f'{kind} "{name}" not found{where}')
            return copy.deepcopy(found)

    def _set_globals(self) -> None:
        meta = self.wf.get("metadata") or {}
        g = self.globals
        g.update(
            {
                "workflow.name": self.name,
                "workflow.namespace": self.namespace,
                "workflow.uid": meta.get("uid", ""),
                "workflow.mainEntrypoint": self.spec.get("entrypoint", ""),
                "workflow.serviceAccountName": self.spec.get("serviceAccountName", ""),
                "workflow.creationTimestamp": meta.get("creationTimestamp", ""),
            }
        )
        params = (self.spec.get("arguments") or {}).get("parameters") or []
        g["workflow.parameters"] = json.dumps(params, separators=(",", ":"))
        for param in params:
            if "value" not in param:
                raise TemplateError(
                    "either value or valueFrom must be specified in order to set global "
                    f"parameter {param.get('name')}"
                )
            value = go_format(param["value"])
            if param.get("enum") and value not in [go_format(v) for v in param["enum"]]:
                raise TemplateError(
                    f"spec.arguments.{param['name']}.value should be present in "
                    f"spec.arguments.{param['name']}.enum list"
                )
            g[f"workflow.parameters.{param['name']}"] = value
        for kind in ("labels", "annotations"):
            for k, v in (meta.get(kind) or {}).items():
                g[f"workflow.{kind}.{k}"] = v

    def _set_exit_globals(self, phase: str) -> None:
        with self.cluster.lock:
            failures = [
                {
                    "displayName": n.get("displayName"),
                    "message": n.get("message", ""),
                    "templateName": n.get("templateName", ""),
                    "phase": n["phase"],
                    "podName": pod_name(self.name, n["name"], n.get("templateName", "")),
                    "finishedAt": n.get("finishedAt"),
                }
                for n in self.wf["status"]["nodes"].values()
                if n["phase"] in FAILED
            ]
        self.globals["workflow.status"] = phase
        self.globals["workflow.failures"] = json.dumps(json.dumps(failures, separators=(",", ":")))
        self.globals["workflow.duration"] = f"{time.monotonic() - self._started:f}"

    def _finish(self, phase: str, message: str) -> None:
        with self.cluster.lock:
            if self.deleted:
                return
            status = self.wf.setdefault("status", {})
            status.setdefault("startedAt", now_rfc3339())
            status.update(phase=phase, finishedAt=now_rfc3339())
            if message:
                status["message"] = message
            status["conditions"] = [
                {"type": "PodRunning", "status": "False"},
                {"type": "Completed", "status": "True"},
            ]
            labels = self.wf.setdefault("metadata", {}).setdefault("labels", {})
            labels[LABEL_PHASE] = phase
            labels[LABEL_COMPLETED] = "true"
            self._progress()
            self.cluster.touch(self.wf)
        strategy = (self.spec.get("podGC") or {}).get("strategy", "")
        if strategy == "OnWorkflowCompletion" or (strategy == "OnWorkflowSuccess" and phase == "Succeeded"):
            for name, _, _ in self.pods:
                self.controller.delete_pod(self.namespace, name)
        remove_tree(self.workdir)
        ttl = self.spec.get("ttlStrategy") or {}
        seconds = ttl.get(
            "secondsAfterSuccess" if phase == "Succeeded" else "secondsAfterFailure",
            ttl.get("secondsAfterCompletion"),
        )
        if seconds is not None:
            self.controller.schedule(self.key, float(seconds), lambda: self.controller.expire(self.key))

    # --- nodes --------------------------------------------------------------------------------

    def _init_node(
        self,
        name: str,
        type_: str,
        boundary_id: str | None,
        phase: str,
        parents: list[str],
        holder: dict | None = None,
        scope: str = "",
        message: str = "",
        inputs: dict | None = None,
    ) -> dict:
        with self.cluster.lock:
            nodes = self.wf["status"]["nodes"]
            boundary = nodes.get(boundary_id) if boundary_id else None
            node: dict[str, Any] = {
                "id": node_id(self.name, name),
                "name": name,
                "displayName": display_name(name, boundary["name"] if boundary else None),
                "type": type_,
            }
            if holder and holder.get("templateRef"):
                node["templateRef"] = copy.deepcopy(holder["templateRef"])
            elif holder and holder.get("template"):
                node["templateName"] = holder["template"]
            if scope:
                node["templateScope"] = scope
            node.update(phase=phase, startedAt=now_rfc3339())
            if boundary_id:
                node["boundaryID"] = boundary_id
            if message:
                node["message"] = message
            if inputs:
                node["inputs"] = inputs
            if phase in FULFILLED:
                node["finishedAt"] = node["startedAt"]
            if type_ == "Pod":
                node["progress"] = "0/1"
            nodes[node["id"]] = node
            for parent in parents:
                children = nodes[parent].setdefault("children", [])
                if node["id"] not in children:
                    children.append(node["id"])
            self._progress()
            self.cluster.touch(self.wf)
            return node

    def _mark(self, node: dict, phase: str, message: str = "", **fields: Any) -> dict:
        with self.cluster.lock:
            node["phase"] = phase
            if message:
                node["message"] = message
            node.update(fields)
            if "resourcesDuration" in fields:  # the workflow's is the sum of its pods'
                total = self.wf["status"].setdefault("resourcesDuration", {})
                for resource, seconds in fields["resourcesDuration"].items():
                    total[resource] = total.get(resource, 0) + seconds
            if phase in FULFILLED:
                node.setdefault("finishedAt", now_rfc3339())
                if node["type"] == "Pod" and phase == "Succeeded":
                    node["progress"] = "1/1"
            self._progress()
            self.cluster.touch(self.wf)
            return node

    def _progress(self) -> None:
        """``progress.UpdateProgress``: pod nodes count; others sum the pods beneath them."""
        nodes = self.wf["status"]["nodes"]

        def pods_under(node_id_: str, seen: set[str]) -> tuple[int, int]:
            done = total = 0
            for child in nodes.get(node_id_, {}).get("children", []):
                if child in seen or child not in nodes:
                    continue
                seen.add(child)
                node = nodes[child]
                if node["type"] == "Pod":
                    a, b = (int(x) for x in node.get("progress", "0/1").split("/"))
                else:
                    a, b = pods_under(child, seen)
                done, total = done + a, total + b
            return done, total

        done = total = 0
        for node in nodes.values():
            if node["type"] == "Pod":
                a, b = (int(x) for x in node.get("progress", "0/1").split("/"))
                done, total = done + a, total + b
        self.wf["status"]["progress"] = f"{done}/{total}"
        for node in nodes.values():
            if node["type"] != "Pod":
                a, b = pods_under(node["id"], set())
                if b:
                    node["progress"] = f"{a}/{b}"

    def _outbound(self, node_id_: str) -> list[str]:
        """``getOutboundNodes``: the nodes a following step or task hangs from."""
        with self.cluster.lock:
            node = self.wf["status"]["nodes"][node_id_]
            if node["type"] in ("Pod", "Skipped"):
                return [node_id_]
            if node["type"] == "Retry":
                return node.get("children", [])[-1:] or [node_id_]
            if node["type"] == "TaskGroup":
                children = node.get("children", [])
                return [o for c in children for o in self._outbound(c)] if children else [node_id_]
            return [o for c in node.get("outboundNodes", []) for o in self._outbound(c)]

    # --- templates ----------------------------------------------------------------------------

    def execute(
        self,
        name: str,
        holder: dict,
        ctx: TemplateContext,
        args: dict,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
    ) -> dict:
        """``executeTemplate``: resolve, bind arguments, and run with retries; returns the final node."""
        try:
            template, ctx = self._resolve(holder, ctx)
            template = self._process_args(template, args)
        except TemplateError as exc:
            self._init_node(name, "Skipped", boundary_id, "Error", parents, holder, ctx.scope, str(exc))
            raise
        if "retryStrategy" in template:
            return self._execute_retry(name, holder, template, ctx, boundary_id, on_exit, parents)
        return self._execute_body(name, holder, template, ctx, boundary_id, on_exit, parents, {})

    def _resolve(self, holder: dict, ctx: TemplateContext) -> tuple[dict, TemplateContext]:
        ref = holder.get("templateRef")
        if ref:
            source = self._lookup_template(ref.get("name", ""), bool(ref.get("clusterScope")))
            templates = {t["name"]: t for t in (source.get("spec") or {}).get("templates") or []}
            kind = "cluster" if ref.get("clusterScope") else "namespaced"
            ctx = TemplateContext(templates, f"{kind}/{ref.get('name')}")
            name = ref.get("template", "")
        else:
            name = holder.get("template", "")
        if name not in ctx.templates:
            raise TemplateError(f"template {name} not found")
        template = copy.deepcopy(ctx.templates[name])
        if ref:
            try:
                check_template(template, f"{ctx.scope}.templates.{name}")
            except Unsupported as exc:
                raise TemplateError(str(exc)) from None
        return template, ctx

    def _process_args(self, template: dict, args: dict) -> dict:
        """``common.ProcessArgs``: input values (template value, argument, default), enum, substitution."""
        inputs = copy.deepcopy(template.get("inputs") or {})
        given = {p["name"]: p for p in args.get("parameters") or []}
        scope = dict(self.globals)
        for param in inputs.get("parameters") or []:
            name = param["name"]
            if "value" in param:
                value = param["value"]
            elif "value" in given.get(name, {}):
                value = given[name]["value"]
            elif "default" in param:
                value = param["default"]
            else:
                raise TemplateError(f"inputs.parameters.{name} was not supplied")
            value = substitute(go_format(value), self.globals)
            enum = [go_format(v) for v in param.get("enum") or []]
            if enum and value not in enum:
                raise TemplateError(
                    f"inputs.parameters.{name}.value should be present in inputs.parameters.{name}.enum list"
                )
            param["value"] = value
            scope[f"inputs.parameters.{name}"] = value
        if inputs.get("parameters"):
            scope["inputs.parameters"] = json.dumps(inputs["parameters"], separators=(",", ":"))
        given_arts = {a["name"]: a for a in args.get("artifacts") or []}
        for art in inputs.get("artifacts") or []:
            source = given_arts.get(art["name"], {})
            for location in ("s3", "raw"):
                if location in source:
                    art[location] = copy.deepcopy(source[location])
            if not any(k in art for k in ("s3", "raw")) and not art.get("optional"):
                raise TemplateError(f"inputs.artifacts.{art['name']} was not supplied")
            if "path" in art:
                scope[f"inputs.artifacts.{art['name']}.path"] = art["path"]
        body = substitute({k: v for k, v in template.items() if k != "inputs"}, scope)
        if inputs:
            body["inputs"] = inputs
        return body

    def _execute_body(
        self,
        name: str,
        holder: dict,
        template: dict,
        ctx: TemplateContext,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
        extra: dict[str, str],
    ) -> dict:
        if "steps" in template:
            return self._execute_steps(name, holder, template, ctx, boundary_id, on_exit, parents)
        if "dag" in template:
            return self._execute_dag(name, holder, template, ctx, boundary_id, on_exit, parents)
        return self._execute_pod(name, holder, template, ctx, boundary_id, on_exit, parents, extra)

    def _execute_retry(
        self,
        name: str,
        holder: dict,
        template: dict,
        ctx: TemplateContext,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
    ) -> dict:
        strategy = template["retryStrategy"]
        node = self._init_node(
            name, "Retry", boundary_id, "Running", parents, holder, ctx.scope, inputs=template.get("inputs")
        )
        limit = int(strategy["limit"]) if strategy.get("limit") is not None else None
        policy = strategy.get("retryPolicy", "OnFailure")
        backoff = strategy.get("backoff") or {}
        attempt = 0
        while True:
            child = self._execute_body(
                f"{name}({attempt})",
                holder,
                template,
                ctx,
                boundary_id,
                on_exit,
                [node["id"]],
                {"retries": str(attempt)},
            )
            if child["phase"] == "Succeeded":
                return self._mark(node, "Succeeded", outputs=copy.deepcopy(child.get("outputs", {})))
            if self.shutdown or (self.deadline_hit and not on_exit):
                stopped = (
                    f"Stopped with strategy '{self.shutdown}'" if self.shutdown else child.get("message", "")
                )
                return self._mark(node, child["phase"], stopped)
            retry = {
                "Always": True,
                "OnFailure": child["phase"] == "Failed",
                "OnError": child["phase"] == "Error",
                "OnTransientError": False,
            }[policy]
            if not retry:
                return self._mark(node, child["phase"], child.get("message", ""))
            if limit is not None and attempt + 1 > limit:
                return self._mark(node, child["phase"], "No more retries left")
            if backoff.get("duration"):
                wait = _seconds(backoff["duration"]) * float(backoff.get("factor") or 1) ** attempt
                if backoff.get("cap"):
                    wait = min(wait, _seconds(backoff["cap"]))
                end = time.monotonic() + wait
                while time.monotonic() < end and not self.shutdown and not self.deadline_hit:
                    time.sleep(min(0.2, max(0.0, end - time.monotonic())))
            attempt += 1

    # --- pods ---------------------------------------------------------------------------------

    def _execute_pod(
        self,
        name: str,
        holder: dict,
        template: dict,
        ctx: TemplateContext,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
        extra: dict[str, str],
    ) -> dict:
        pod = pod_name(self.name, name, template["name"])
        template = substitute(template, {**self.globals, **extra, "pod.name": pod, "node.name": name})
        node = self._init_node(
            name, "Pod", boundary_id, "Pending", parents, holder, ctx.scope, inputs=template.get("inputs")
        )
        left = unresolved({k: v for k, v in template.items() if k not in ("metadata",)})
        if left:
            return self._mark(node, "Error", f"failed to resolve {left[0]}")
        if self.shutdown and (self.shutdown == "Terminate" or not on_exit):
            return self._mark(node, "Failed", f"Stopped with strategy '{self.shutdown}'")
        if self.deadline_hit and not on_exit:
            return self._mark(node, "Failed", "Step exceeded its deadline")
        root = self.workdir / "pods" / pod
        kind = "script" if "script" in template else "container"
        try:
            mounts = self._mounts(template, kind, root)
            request = PodRequest(
                pod,
                template,
                kind,
                self._env(template[kind]),
                mounts,
                root,
                self.controller.bin_dir,
                self._pod_deadline(template),
            )
        except PodError as exc:
            remove_tree(root)
            return self._mark(node, "Error", str(exc))
        live = Pod(self.namespace, pod, self.name, node["id"])
        with self.cluster.lock:
            if self.deleted:
                return node
            self.cluster.pods[(self.namespace, pod)] = live
            execution = Execution(request, live, self.settings.sandbox)
            self.running[node["id"]] = (execution, on_exit)
            if self.shutdown and (self.shutdown == "Terminate" or not on_exit):
                execution.kill(f"Stopped with strategy '{self.shutdown}'")
            elif self.deadline_hit and not on_exit:
                execution.kill("Step exceeded its deadline")
        self._mark(node, "Running", hostNodeName="emulator")
        self._set_pod_running(True)
        try:
            result = execution.run()
            error = ""
        except PodError as exc:
            result, error = None, str(exc)
        finally:
            with self.cluster.lock:
                self.running.pop(node["id"], None)
            self._set_pod_running(False)
        outputs: dict[str, Any] = {}
        phase, message = "Error", error
        if result is not None:
            if result.exit_code is not None:
                outputs["exitCode"] = str(result.exit_code)
            if result.exit_code is None:
                phase, message = "Failed", result.message
            else:
                phase = "Succeeded" if result.exit_code == 0 else "Failed"
                message = (
                    "" if result.exit_code == 0 else _exit_message(result.exit_code, template[kind], live)
                )
                try:
                    outputs.update(self._collect(template, kind, mounts, result.stdout, pod))
                except PodError as exc:
                    if phase == "Succeeded":
                        phase, message = "Error", str(exc)
                except Exception as exc:  # an S3 failure must fail the node, never the controller
                    phase, message = "Error", f"failed to save outputs: {exc}"
        if self._archive_logs(template):
            try:
                log = artifacts.save_log(
                    self.controller.repository, [t for _, t in live.lines], self._key_prefix(pod)
                )
                outputs.setdefault("artifacts", []).append(log)
            except Exception as exc:
                phase, message = "Error", f"failed to save logs: {exc}"
        live.finish()
        remove_tree(root)
        fields: dict[str, Any] = {"outputs": outputs} if outputs else {}
        if result is not None:
            fields["resourcesDuration"] = result.resources_duration
        self._mark(node, phase, message, **fields)
        if phase == "Succeeded":
            self._publish_globals(outputs)
        self.pods.append((pod, node["id"], phase == "Succeeded"))
        strategy = (self.spec.get("podGC") or {}).get("strategy", "")
        if strategy == "OnPodCompletion" or (strategy == "OnPodSuccess" and phase == "Succeeded"):
            self.controller.delete_pod(self.namespace, pod)
        return node

    def _set_pod_running(self, running: bool) -> None:
        with self.cluster.lock:
            status = self.wf["status"]
            value = "True" if running or self.running else "False"
            status["conditions"] = [{"type": "PodRunning", "status": value}]
            self.cluster.touch(self.wf)

    def _pod_deadline(self, template: dict) -> float | None:
        seconds = template.get("activeDeadlineSeconds")
        return None if seconds is None else time.monotonic() + float(seconds)

    def _archive_logs(self, template: dict) -> bool:
        location = template.get("archiveLocation") or {}
        if "archiveLogs" in location:
            return bool(location["archiveLogs"])
        return bool(self.spec.get("archiveLogs"))

    def _key_prefix(self, pod: str) -> str:
        return substitute(self.settings.key_format, {**self.globals, "pod.name": pod})

    def _env(self, container: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                try:
                    env[var["name"]] = artifacts.secret_value(self.settings.secrets, ref, self.namespace)
                except PodError:
                    if not ref.get("optional"):
                        raise
            else:
                env[var["name"]] = go_format(var.get("value", ""))
        return env

    def _mounts(self, template: dict, kind: str, root: Path) -> list[Mount]:
        """The pod's private paths: /tmp, /output, volumes, input artifacts and declared output paths."""
        for sub in ("tmp", "output", "inputs", "paths", "volumes"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        mounts = [Mount("/tmp", root / "tmp"), Mount("/output", root / "output")]
        volumes: dict[str, Path] = {}
        for claim in self.spec.get("volumeClaimTemplates") or []:
            claim_name = (claim.get("metadata") or {}).get("name", "")
            volumes[claim_name] = self.workdir / "claims" / claim_name
        for volume in [*(self.spec.get("volumes") or []), *(template.get("volumes") or [])]:
            volumes[volume["name"]] = root / "volumes" / volume["name"]
        for mount in template[kind].get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise PodError(f'volume "{mount["name"]}" not found')
            source = volumes[mount["name"]] / mount.get("subPath", "")
            source.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(mount["mountPath"], source, not mount.get("readOnly", False)))
        for art in (template.get("inputs") or {}).get("artifacts") or []:
            if not any(k in art for k in ("s3", "raw")):
                continue
            dest = host_path(mounts, art["path"])
            if dest is None:
                dest = root / "inputs" / art["name"]
                mounts.append(Mount(art["path"], dest))
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                artifacts.load(self.controller.repository, art, dest, self.settings.secrets)
            except PodError:
                raise
            except Exception as exc:
                raise PodError(f"failed to load artifacts: {exc}") from exc
        outputs = template.get("outputs") or {}
        declared = [
            p["valueFrom"]["path"]
            for p in outputs.get("parameters") or []
            if "path" in (p.get("valueFrom") or {})
        ]
        declared += [a["path"] for a in outputs.get("artifacts") or [] if a.get("path")]
        for path in declared:
            if host_path(mounts, path) is None:
                parent = os.path.dirname(path.rstrip("/"))
                target = parent if parent != "/" else path
                source = root / "paths" / target.strip("/").replace("/", "__")
                source.mkdir(parents=True, exist_ok=True)
                mounts.append(Mount(target, source))
        return mounts

    def _collect(self, template: dict, kind: str, mounts: list[Mount], stdout: str, pod: str) -> dict:
        """What Argo's wait container saves: output parameters, artifacts and the script result."""
        outputs: dict[str, Any] = {}
        declared = template.get("outputs") or {}
        params = []
        for param in declared.get("parameters") or []:
            source = param.get("valueFrom") or {}
            recorded = copy.deepcopy(param)
            if "path" in source:
                host = host_path(mounts, source["path"])
                try:
                    recorded["value"] = host.read_text().strip() if host else _missing(source["path"])
                except (OSError, PodError):
                    if "default" not in source:
                        raise PodError(f"open {source['path']}: no such file or directory") from None
                    recorded["value"] = go_format(source["default"])
            elif "value" not in param:
                raise PodError(f"outputs.parameters.{param['name']}: valueFrom.path is required for a pod")
            params.append(recorded)
        if params:
            outputs["parameters"] = params
        saved = []
        for art in declared.get("artifacts") or []:
            host = host_path(mounts, art["path"])
            if host is None or not host.exists():
                if art.get("optional"):
                    continue
                raise PodError(f"failed to save outputs: open {art['path']}: no such file or directory")
            saved.append(
                artifacts.save(
                    self.controller.repository, art, host, self._key_prefix(pod), self.settings.secrets
                )
            )
        if saved:
            outputs["artifacts"] = saved
        if kind == "script" or self.wants_result:
            outputs["result"] = stdout.strip()
        return outputs

    def _publish_globals(self, outputs: dict) -> None:
        """``addOutputsToGlobalScope``: globalName outputs into status.outputs and workflow.outputs.*."""
        with self.cluster.lock:
            status_outputs = self.wf["status"].setdefault("outputs", {})
            for kind in ("parameters", "artifacts"):
                for item in outputs.get(kind) or []:
                    global_name = item.get("globalName")
                    if not global_name:
                        continue
                    entry = {k: v for k, v in item.items() if k not in ("globalName", "path", "valueFrom")}
                    entry["name"] = global_name
                    existing = status_outputs.setdefault(kind, [])
                    existing[:] = [e for e in existing if e["name"] != global_name] + [entry]
                    if kind == "parameters":
                        self.globals[f"workflow.outputs.parameters.{global_name}"] = entry.get("value", "")
                    else:
                        self.global_artifacts[f"workflow.outputs.artifacts.{global_name}"] = entry
            self.cluster.touch(self.wf)

    # --- steps --------------------------------------------------------------------------------

    def _execute_steps(
        self,
        name: str,
        holder: dict,
        template: dict,
        ctx: TemplateContext,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
    ) -> dict:
        node = self._init_node(
            name, "Steps", boundary_id, "Running", parents, holder, ctx.scope, inputs=template.get("inputs")
        )
        scope: dict[str, str] = {}
        art_scope: dict[str, dict] = {}
        group_node: dict | None = None
        for i, group in enumerate(template["steps"]):
            if i == 0:
                group_parents = [node["id"]]
            else:
                children = group_node.get("children", [])
                group_parents = [o for c in children for o in self._outbound(c)] or [group_node["id"]]
            group_node = self._init_node(
                f"{name}[{i}]",
                "StepGroup",
                node["id"],
                "Running",
                group_parents,
                {"template": template["name"]},
                ctx.scope,
            )
            self._execute_group(group_node, group, scope, art_scope, ctx, node["id"], on_exit)
            if group_node["phase"] in FAILED:
                self._set_outbound(node, group_node)
                return self._mark(node, "Failed", group_node.get("message", ""))
        self._set_outbound(node, group_node)
        outputs = self._template_outputs(template, scope, art_scope)
        fields = {"outputs": outputs} if outputs else {}
        node = self._mark(node, "Succeeded", **fields)
        self._publish_globals(outputs)
        return node

    def _set_outbound(self, node: dict, last_group: dict | None) -> None:
        if last_group is None:
            return
        outbound = [o for c in last_group.get("children", []) for o in self._outbound(c)]
        with self.cluster.lock:
            node["outboundNodes"] = outbound
            self.cluster.touch(self.wf)

    def _execute_group(
        self,
        group_node: dict,
        steps: list[dict],
        scope: dict[str, str],
        art_scope: dict[str, dict],
        ctx: TemplateContext,
        boundary_id: str,
        on_exit: bool,
    ) -> None:
        try:
            expanded = [s for step in steps for s in self._expand(self._resolve_step(step, scope, art_scope))]
        except TemplateError as exc:
            self._mark(group_node, "Error", str(exc))
            return
        for step in steps:
            fanned = step.get("withItems") is not None or step.get("withParam") is not None
            if fanned and not any(s["name"].startswith(f"{step['name']}(") for s in expanded):
                self._init_node(
                    f"{group_node['name']}.{step['name']}",
                    "Skipped",
                    boundary_id,
                    "Skipped",
                    [group_node["id"]],
                    step,
                    ctx.scope,
                    "Skipped, empty params",
                )
        runs: list[tuple[dict, _Outcome]] = []
        for step in expanded:
            child_name = f"{group_node['name']}.{step['name']}"
            try:
                proceed = evaluate_when(step.get("when", ""))
            except ExpressionError as exc:
                self._init_node(
                    child_name, "Skipped", boundary_id, "Error", [group_node["id"]], step, ctx.scope, str(exc)
                )
                self._mark(group_node, "Error", str(exc))
                return
            if not proceed:
                self._init_node(
                    child_name,
                    "Skipped",
                    boundary_id,
                    "Skipped",
                    [group_node["id"]],
                    step,
                    ctx.scope,
                    f"when '{step['when']}' evaluated false",
                )
                continue
            outcome = _Outcome()
            runs.append((step, outcome))
            outcome.start(
                lambda s=step, n=child_name: self.execute(
                    n, s, ctx, s.get("arguments") or {}, boundary_id, on_exit, [group_node["id"]]
                )
            )
        for _, outcome in runs:
            outcome.join()
        for step, outcome in runs:
            if outcome.error is not None:
                child = f"{group_node['name']}.{step['name']}"
                self._mark(
                    group_node,
                    "Error",
                    f"step group deemed errored due to child {child} error: {outcome.error}",
                )
                return
        for step, outcome in runs:
            node = outcome.node
            continue_on = step.get("continueOn") or {}
            if node["phase"] in FAILED and not continue_on.get(
                {"Failed": "failed", "Error": "error"}[node["phase"]]
            ):
                self._mark(group_node, "Failed", f"child '{node['id']}' failed")
                break
        else:
            self._mark(group_node, "Succeeded")
        for step in steps:
            self._scope_from(
                f"steps.{step['name']}", f"{group_node['name']}.{step['name']}", scope, art_scope
            )

    def _resolve_step(self, step: dict, scope: dict[str, str], art_scope: dict[str, dict]) -> dict:
        """``resolveReferences``: substitute outputs of earlier steps/tasks and resolve artifact ``from``."""
        resolved = substitute(step, {**self.globals, **scope})
        for art in (resolved.get("arguments") or {}).get("artifacts") or []:
            if "from" in art:
                ref = art.pop("from").strip()[2:-2].strip()
                found = art_scope.get(ref) or self.global_artifacts.get(ref)
                if found is None:
                    if art.get("optional"):
                        continue
                    raise TemplateError(f"unable to resolve references: Unable to resolve: {{{{{ref}}}}}")
                art.update({k: copy.deepcopy(v) for k, v in found.items() if k in ("s3", "raw", "archive")})
        return resolved

    def _expand(self, step: dict) -> list[dict]:
        """``expandStep``: withItems/withParam fan-out, ``{{item}}`` substituted per copy."""
        if step.get("withItems") is not None:
            items = step["withItems"]
        elif step.get("withParam") is not None:
            raw = step["withParam"]
            try:
                items = json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError:
                items = None
            if not isinstance(items, list):
                raise TemplateError(f"withParam value could not be parsed as a JSON list: {str(raw).strip()}")
        else:
            return [step]
        base = {k: v for k, v in step.items() if k not in ("withItems", "withParam")}
        expanded = []
        for index, item in enumerate(items):
            if isinstance(item, dict):
                values = {f"item.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in item.items()}
                values["item"] = json.dumps(item, separators=(",", ":"))
            elif isinstance(item, list):
                values = {"item": json.dumps(item, separators=(",", ":"))}
            else:
                values = {"item": go_format(item)}
            copy_ = substitute(base, values)
            copy_["name"] = item_node_name(step["name"], index, item)
            expanded.append(copy_)
        return expanded

    def _scope_from(
        self, prefix: str, node_name: str, scope: dict[str, str], art_scope: dict[str, dict]
    ) -> None:
        """``buildLocalScope``, or ``processAggregateNodeOutputs`` for fanned-out steps and tasks."""
        with self.cluster.lock:
            nodes = self.wf["status"]["nodes"]
            node = nodes.get(node_id(self.name, node_name))
            if node is not None and node["type"] != "TaskGroup":
                scope[f"{prefix}.id"] = node["id"]
                scope[f"{prefix}.status"] = node["phase"]
                for key in ("startedAt", "finishedAt"):
                    if key in node:
                        scope[f"{prefix}.{key}"] = node[key]
                outputs = node.get("outputs") or {}
                if "result" in outputs:
                    scope[f"{prefix}.outputs.result"] = outputs["result"]
                if "exitCode" in outputs:
                    scope[f"{prefix}.exitCode"] = outputs["exitCode"]
                for param in outputs.get("parameters") or []:
                    scope[f"{prefix}.outputs.parameters.{param['name']}"] = param.get("value", "")
                for art in outputs.get("artifacts") or []:
                    art_scope[f"{prefix}.outputs.artifacts.{art['name']}"] = art
                return
            items = [
                n for n in nodes.values() if n["name"].startswith(f"{node_name}(") and n["type"] != "Skipped"
            ]
        if node is not None:
            scope[f"{prefix}.status"] = node["phase"]
        items.sort(key=lambda n: int(n["name"][len(node_name) + 1 :].split(":", 1)[0]))
        results = [(n.get("outputs") or {}).get("result") for n in items]
        if any(r is not None for r in results):
            scope[f"{prefix}.outputs.result"] = _aggregate([r for r in results if r is not None])
        per_name: dict[str, list[str]] = {}
        param_list = []
        for n in items:
            params = (n.get("outputs") or {}).get("parameters") or []
            param_list.append({p["name"]: p.get("value", "") for p in params})
            for p in params:
                per_name.setdefault(p["name"], []).append(p.get("value", ""))
        for name, values in per_name.items():
            scope[f"{prefix}.outputs.parameters.{name}"] = _aggregate(values)
        if items:
            scope[f"{prefix}.outputs.parameters"] = json.dumps(param_list, separators=(",", ":"))

    def _template_outputs(self, template: dict, scope: dict[str, str], art_scope: dict[str, dict]) -> dict:
        """``getTemplateOutputsFromScope``: a steps/DAG template's outputs from its children's."""
        declared = template.get("outputs") or {}
        outputs: dict[str, Any] = {}
        for param in declared.get("parameters") or []:
            source = (param.get("valueFrom") or {}).get("parameter")
            recorded = copy.deepcopy(param)
            if source is not None:
                value = substitute(source, scope)
                if unresolved(value):
                    if "default" not in param["valueFrom"]:
                        raise TemplateError(f"unable to resolve outputs from scope: {source}")
                    value = go_format(param["valueFrom"]["default"])
                recorded["value"] = value
            outputs.setdefault("parameters", []).append(recorded)
        for art in declared.get("artifacts") or []:
            ref = (art.get("from") or "").strip()[2:-2].strip()
            found = art_scope.get(ref) or self.global_artifacts.get(ref)
            if found is None:
                if art.get("optional"):
                    continue
                raise TemplateError(f"unable to resolve outputs from scope: {art.get('from')}")
            recorded = {**copy.deepcopy(found), "name": art["name"]}
            if art.get("globalName"):
                recorded["globalName"] = art["globalName"]
            outputs.setdefault("artifacts", []).append(recorded)
        return outputs

    # --- DAG ----------------------------------------------------------------------------------

    def _execute_dag(
        self,
        name: str,
        holder: dict,
        template: dict,
        ctx: TemplateContext,
        boundary_id: str | None,
        on_exit: bool,
        parents: list[str],
    ) -> dict:
        node = self._init_node(
            name, "DAG", boundary_id, "Running", parents, holder, ctx.scope, inputs=template.get("inputs")
        )
        tasks = {t["name"]: t for t in template["dag"].get("tasks") or []}
        deps = {
            n: depends_tasks(t["depends"]) if "depends" in t else list(t.get("dependencies") or [])
            for n, t in tasks.items()
        }
        logic = {n: t.get("depends") or " && ".join(deps[n]) for n, t in tasks.items()}
        for task, needed in deps.items():
            for dep in needed:
                if dep not in tasks:
                    self._mark(
                        node,
                        "Error",
                        f"templates.{template['name']}.tasks.{task} dependency '{dep}' not defined",
                    )
                    return node
        targets = sorted(n for n in tasks if not any(n in deps[m] for m in tasks))
        scope: dict[str, str] = {}
        art_scope: dict[str, dict] = {}
        done: dict[str, dict] = {}
        running: dict[str, _Outcome] = {}
        errors: list[str] = []
        wake = threading.Condition()

        while True:
            with wake:
                for task, outcome in list(running.items()):
                    if outcome.finished.is_set():
                        del running[task]
                        if outcome.error is not None:
                            errors.append(f"task '{name}.{task}' errored: {outcome.error}")
                        with self.cluster.lock:
                            found = self.wf["status"]["nodes"].get(node_id(self.name, f"{name}.{task}"))
                        done[task] = found or self._init_node(
                            f"{name}.{task}",
                            "Skipped",
                            node["id"],
                            "Error",
                            outcome.parents,
                            tasks[task],
                            ctx.scope,
                            outcome.error or "task did not run",
                        )
                        self._scope_from(f"tasks.{task}", f"{name}.{task}", scope, art_scope)
                ready = [
                    t for t in tasks if t not in done and t not in running and all(d in done for d in deps[t])
                ]
                for task in ready:
                    task_parents = [o for d in deps[task] for o in self._outbound(done[d]["id"])] or [
                        node["id"]
                    ]
                    if logic[task]:
                        try:
                            go = evaluate_depends(
                                logic[task], {d: _results(done[d], self) for d in deps[task]}
                            )
                        except ExpressionError as exc:
                            done[task] = self._init_node(
                                f"{name}.{task}",
                                "Skipped",
                                node["id"],
                                "Error",
                                task_parents,
                                tasks[task],
                                ctx.scope,
                                str(exc),
                            )
                            continue
                        if not go:
                            done[task] = self._init_node(
                                f"{name}.{task}",
                                "Skipped",
                                node["id"],
                                "Omitted",
                                task_parents,
                                tasks[task],
                                ctx.scope,
                                "omitted: depends condition not met",
                            )
                            continue
                    outcome = _Outcome(wake)
                    outcome.parents = task_parents
                    running[task] = outcome
                    outcome.start(
                        lambda t=task, p=task_parents: self._run_task(
                            name, tasks[t], p, scope, art_scope, ctx, node["id"], on_exit
                        )
                    )
                if not running:
                    break
                wake.wait(1.0)
        if errors:
            return self._mark(node, "Error", errors[0])

        def branch(task: str) -> str:
            phase = done[task]["phase"]
            if phase in ("Succeeded", "Failed", "Error"):
                return phase
            inherited = [branch(d) for d in deps[task]]
            return next((p for p in inherited if p in FAILED), "Succeeded")

        phase = "Succeeded"
        for task in targets:
            result = branch(task)
            continue_on = tasks[task].get("continueOn") or {}
            if result in FAILED and not continue_on.get({"Failed": "failed", "Error": "error"}[result]):
                phase = result
                break
        outbound = [o for t in targets for o in self._outbound(done[t]["id"])]
        with self.cluster.lock:
            node["outboundNodes"] = outbound
        if phase != "Succeeded":
            return self._mark(node, phase)
        outputs = self._template_outputs(template, scope, art_scope)
        fields = {"outputs": outputs} if outputs else {}
        node = self._mark(node, "Succeeded", **fields)
        self._publish_globals(outputs)
        return node

    def _run_task(
        self,
        dag_name: str,
        task: dict,
        parents: list[str],
        scope: dict[str, str],
        art_scope: dict[str, dict],
        ctx: TemplateContext,
        dag_id: str,
        on_exit: bool,
    ) -> dict:
        node_name = f"{dag_name}.{task['name']}"
        resolved = self._resolve_step(task, scope, art_scope)
        try:
            expanded = self._expand(resolved)
        except TemplateError as exc:
            return self._init_node(node_name, "Skipped", dag_id, "Error", parents, task, ctx.scope, str(exc))
        fanned = task.get("withItems") is not None or task.get("withParam") is not None
        if fanned and not expanded:
            return self._init_node(
                node_name, "Skipped", dag_id, "Skipped", parents, task, ctx.scope, "Skipped, empty params"
            )
        group = (
            self._init_node(node_name, "TaskGroup", dag_id, "Running", parents, task, ctx.scope)
            if fanned
            else None
        )
        runs = []
        for item in expanded:
            item_name = f"{dag_name}.{item['name']}"
            item_parents = [group["id"]] if group else parents
            try:
                proceed = evaluate_when(item.get("when", ""))
            except ExpressionError as exc:
                self._init_node(
                    item_name, "Skipped", dag_id, "Error", item_parents, item, ctx.scope, str(exc)
                )
                continue
            if not proceed:
                self._init_node(
                    item_name,
                    "Skipped",
                    dag_id,
                    "Skipped",
                    item_parents,
                    item,
                    ctx.scope,
                    f"when '{item['when']}' evaluated false",
                )
                continue
            outcome = _Outcome()
            runs.append(outcome)
            outcome.start(
                lambda i=item, n=item_name, p=item_parents: self.execute(
                    n, i, ctx, i.get("arguments") or {}, dag_id, on_exit, p
                )
            )
        for outcome in runs:
            outcome.join()
        for outcome in runs:
            if outcome.error is not None:
                raise TemplateError(outcome.error)
        if group is None:
            with self.cluster.lock:
                return self.wf["status"]["nodes"][node_id(self.name, node_name)]
        with self.cluster.lock:
            nodes = self.wf["status"]["nodes"]
            phases = [nodes[c]["phase"] for c in group.get("children", [])]
        phase = next((p for p in reversed(phases) if p in FAILED), "Succeeded")
        return self._mark(group, phase)


class _Outcome:
    """A child node run on its own thread; exceptions are kept for the parent to turn into Error."""

    def __init__(self, wake: threading.Condition | None = None) -> None:
        self.node: dict = {}
        self.parents: list[str] = []
        self.error: str | None = None
        self.finished = threading.Event()
        self._wake = wake
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[[], dict]) -> None:
        def body() -> None:
            try:
                self.node = work()
            except TemplateError as exc:
                self.error = str(exc)
            except Exception as exc:  # a bug must surface as an Error node, not a stuck workflow
                self.error = f"internal emulator error: {exc!r}"
            finally:
                self.finished.set()
                if self._wake is not None:
                    with self._wake:
                        self._wake.notify_all()

        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join()


def _results(node: dict, run: Run) -> dict[str, bool]:
    """The ``depends`` results of one task node."""
    phase = node["phase"]
    flags = {
        "Succeeded": phase == "Succeeded",
        "Failed": phase == "Failed",
        "Errored": phase == "Error",
        "Skipped": phase == "Skipped",
        "Omitted": phase == "Omitted",
        "Daemoned": False,
    }
    if node["type"] == "TaskGroup":
        with run.cluster.lock:
            phases = [run.wf["status"]["nodes"][c]["phase"] for c in node.get("children", [])]
        flags["AnySucceeded"] = "Succeeded" in phases
        flags["AllFailed"] = bool(phases) and all(p == "Failed" for p in phases)
    else:
        flags["AnySucceeded"] = flags["AllFailed"] = False
    return flags


def _aggregate(values: list[str]) -> str:
    """``aggregatedJSONValueList``: a JSON list, of parsed values when every value is JSON."""
    try:
        return json.dumps([json.loads(v) for v in values], separators=(",", ":"))
    except (json.JSONDecodeError, TypeError):
        return json.dumps(values, separators=(",", ":"))


def _exit_message(code: int, container: dict, pod: Pod) -> str:
    """``inferFailedReason``; with ``FallbackToLogsOnError`` the kubelet's termination message is the
    log's tail (at most 80 lines and 2048 bytes), which Argo appends."""
    message = f"Error (exit code {code})"
    if container.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        return message
    tail = "\n".join(text for _, text in pod.lines[-80:]).encode()[-2048:].decode(errors="ignore").strip()
    return f"{message}: {tail}" if tail else message


def _missing(path: str) -> str:
    raise PodError(f"open {path}: no such file or directory")


def _seconds(duration: Any) -> float:
    """Argo durations: an integer number of seconds or a Go duration like ``30s``, ``2m``, ``1h``."""
    text = str(duration).strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)
