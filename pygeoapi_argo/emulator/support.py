"""The Argo fields the emulator implements, as explicit allow-lists per object level.

A workflow using anything else ends ``Error`` with a message naming the first such field: the
emulator refuses rather than running a workflow differently from a real cluster. Scheduling hints
(node selectors, tolerations, service accounts, resources, pull policies) are accepted: they change
where a pod would run on Kubernetes, not what it computes.
"""

from __future__ import annotations

from typing import Any

_SCHEDULING = {
    "nodeSelector",
    "tolerations",
    "affinity",
    "serviceAccountName",
    "priorityClassName",
    "schedulerName",
    "imagePullSecrets",
    "podPriorityClassName",
    "automountServiceAccountToken",
}

_PARAMETER = {"name", "value", "default", "enum", "description", "globalName", "valueFrom"}
_ARTIFACT = {"name", "path", "from", "raw", "s3", "archive", "optional", "globalName", "mode"}
_ARGUMENTS = {"parameters": _PARAMETER - {"valueFrom", "globalName"}, "artifacts": _ARTIFACT}

SPEC = {
    "entrypoint",
    "templates",
    "arguments",
    "onExit",
    "activeDeadlineSeconds",
    "podGC",
    "ttlStrategy",
    "volumeClaimTemplates",
    "volumes",
    "archiveLogs",
    "workflowTemplateRef",
    "shutdown",
    "podMetadata",
    *_SCHEDULING,
}
TEMPLATE = {
    "name",
    "inputs",
    "outputs",
    "container",
    "script",
    "steps",
    "dag",
    "metadata",
    "retryStrategy",
    "activeDeadlineSeconds",
    "archiveLocation",
    "volumes",
    *_SCHEDULING,
}
CONTAINER = {
    "image",
    "command",
    "args",
    "env",
    "volumeMounts",
    "imagePullPolicy",
    "resources",
    "name",
    "terminationMessagePolicy",
}
SCRIPT = CONTAINER | {"source"}
STEP = {"name", "template", "templateRef", "arguments", "when", "withItems", "withParam", "continueOn"}
TASK = STEP | {"depends", "dependencies"}
_NESTED: dict[str, set[str]] = {
    "podGC": {"strategy"},
    "ttlStrategy": {"secondsAfterCompletion", "secondsAfterSuccess", "secondsAfterFailure"},
    "workflowTemplateRef": {"name", "clusterScope"},
    "templateRef": {"name", "template", "clusterScope"},
    "retryStrategy": {"limit", "retryPolicy", "backoff"},
    "backoff": {"duration", "factor", "cap"},
    "archiveLocation": {"archiveLogs"},
    "metadata": {"annotations", "labels"},
    "podMetadata": {"annotations", "labels"},
    "continueOn": {"failed", "error"},
    "archive": {"none", "tar"},
    "raw": {"data"},
    "s3": {"endpoint", "bucket", "region", "key", "accessKeySecret", "secretKeySecret", "insecure"},
    "outputValueFrom": {"path", "default", "parameter"},
    "env": {"name", "value", "valueFrom"},
    "envValueFrom": {"secretKeyRef"},
    "secretKeyRef": {"name", "key", "optional"},
    "volumeMounts": {"name", "mountPath", "subPath", "readOnly"},
    "volumes": {"name", "emptyDir"},
    "volumeClaimTemplates": {"metadata", "spec", "apiVersion", "kind"},
}
_POD_GC = {"", "OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"}
_RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}


class Unsupported(Exception):
    """A field the emulator does not implement; the message names it."""


def check_spec(spec: dict) -> None:
    """Raise Unsupported for the first field outside the allow-lists."""
    _keys(spec, SPEC, "spec")
    for name in ("podGC", "ttlStrategy", "workflowTemplateRef", "podMetadata"):
        if name in spec:
            _keys(spec[name], _NESTED[name], f"spec.{name}")
    if (spec.get("podGC") or {}).get("strategy", "") not in _POD_GC:
        raise Unsupported(
            f"spec.podGC.strategy '{spec['podGC']['strategy']}' is not supported by the emulator"
        )
    _arguments(spec.get("arguments") or {}, "spec.arguments")
    _volumes(spec.get("volumes") or [], "spec.volumes")
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        _keys(claim, _NESTED["volumeClaimTemplates"], f"spec.volumeClaimTemplates[{i}]")
    for i, template in enumerate(spec.get("templates") or []):
        check_template(template, f"spec.templates[{i}]")


def check_template(template: dict, where: str) -> None:
    _keys(template, TEMPLATE, where)
    kinds = [k for k in ("container", "script", "steps", "dag") if k in template]
    if len(kinds) != 1:
        raise Unsupported(
            f"{where} ({template.get('name')}): exactly one of container, script, steps, dag "
            "is supported by the emulator"
        )
    for name in ("metadata", "archiveLocation"):
        if name in template:
            _keys(template[name], _NESTED[name], f"{where}.{name}")
    _volumes(template.get("volumes") or [], f"{where}.volumes")
    if "retryStrategy" in template:
        retry = template["retryStrategy"]
        _keys(retry, _NESTED["retryStrategy"], f"{where}.retryStrategy")
        _keys(retry.get("backoff") or {}, _NESTED["backoff"], f"{where}.retryStrategy.backoff")
        if retry.get("retryPolicy", "OnFailure") not in _RETRY_POLICIES:
            raise Unsupported(f"{where}.retryStrategy.retryPolicy '{retry['retryPolicy']}' is not supported")
    inputs = template.get("inputs") or {}
    _keys(inputs, {"parameters", "artifacts"}, f"{where}.inputs")
    for i, param in enumerate(inputs.get("parameters") or []):
        _keys(param, _PARAMETER - {"valueFrom", "globalName"}, f"{where}.inputs.parameters[{i}]")
    for i, art in enumerate(inputs.get("artifacts") or []):
        _artifact(art, f"{where}.inputs.artifacts[{i}]")
    outputs = template.get("outputs") or {}
    _keys(outputs, {"parameters", "artifacts"}, f"{where}.outputs")
    for i, param in enumerate(outputs.get("parameters") or []):
        _keys(param, _PARAMETER, f"{where}.outputs.parameters[{i}]")
        _keys(
            param.get("valueFrom") or {},
            _NESTED["outputValueFrom"],
            f"{where}.outputs.parameters[{i}].valueFrom",
        )
    for i, art in enumerate(outputs.get("artifacts") or []):
        _artifact(art, f"{where}.outputs.artifacts[{i}]")
    for kind, allowed in (("container", CONTAINER), ("script", SCRIPT)):
        if kind in template:
            _container(template[kind], allowed, f"{where}.{kind}")
    for i, group in enumerate(template.get("steps") or []):
        for j, step in enumerate(group):
            _step(step, STEP, f"{where}.steps[{i}][{j}]")
    if "dag" in template:
        _keys(template["dag"], {"tasks"}, f"{where}.dag")
        for i, task in enumerate(template["dag"].get("tasks") or []):
            _step(task, TASK, f"{where}.dag.tasks[{i}]")


def _step(step: dict, allowed: set[str], where: str) -> None:
    _keys(step, allowed, where)
    for name in ("templateRef", "continueOn"):
        if name in step:
            _keys(step[name], _NESTED[name], f"{where}.{name}")
    _arguments(step.get("arguments") or {}, f"{where}.arguments")


def _container(container: dict, allowed: set[str], where: str) -> None:
    _keys(container, allowed, where)
    for i, env in enumerate(container.get("env") or []):
        _keys(env, _NESTED["env"], f"{where}.env[{i}]")
        if "valueFrom" in env:
            _keys(env["valueFrom"], _NESTED["envValueFrom"], f"{where}.env[{i}].valueFrom")
            _keys(
                env["valueFrom"]["secretKeyRef"],
                _NESTED["secretKeyRef"],
                f"{where}.env[{i}].valueFrom.secretKeyRef",
            )
    for i, mount in enumerate(container.get("volumeMounts") or []):
        _keys(mount, _NESTED["volumeMounts"], f"{where}.volumeMounts[{i}]")


def _arguments(arguments: dict, where: str) -> None:
    _keys(arguments, set(_ARGUMENTS), where)
    for kind, allowed in _ARGUMENTS.items():
        for i, item in enumerate(arguments.get(kind) or []):
            if kind == "artifacts":
                _artifact(item, f"{where}.artifacts[{i}]")
            else:
                _keys(item, allowed, f"{where}.{kind}[{i}]")


def _artifact(artifact: dict, where: str) -> None:
    _keys(artifact, _ARTIFACT, where)
    for name in ("archive", "raw", "s3"):
        if name in artifact:
            _keys(artifact[name], _NESTED[name], f"{where}.{name}")


def _volumes(volumes: list[dict], where: str) -> None:
    for i, volume in enumerate(volumes):
        _keys(volume, _NESTED["volumes"], f"{where}[{i}]")


def _keys(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        return
    for key in obj:
        if key not in allowed:
            raise Unsupported(f"{where}.{key} is not supported by the emulator")
