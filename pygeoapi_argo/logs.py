"""Job logs: ``GET /jobs/{id}/logs`` as text, live from Argo while pods live, archived after.

Argo keeps a step's log only as long as its pod: pod garbage collection (``podGC``) or the
workflow's own deletion (``ttlStrategy``) takes it. So when a job ends, ``archive`` records where
each step's log will stay readable:

- a step whose template archives its logs (Argo's ``archiveLogs``) lists a ``main-logs`` artifact in
  its node's outputs: that S3 object is the log, nothing to copy;
- any other step's log is fetched from Argo's log API (``logOptions.container=main``) and written,
  redacted, to ``<logs.archive>logs/<jobID>/<step>.log`` (``logs.archive`` defaults to ``output_dir``).

The job record's ``logs`` holds the result, a list of ``{"step", "template", "pod", "url"}`` in the
order the steps started (``url`` is ``None`` when no copy could be kept); once set, ``archive`` does
nothing, so calling it again (the reconciler, ``refresh``, a logs request) costs one store read.

Every line served passes ``Redactor``: a line holding the value of an environment variable listed in
``logs.redact``, or the Argo token, is replaced whole, so a secret never leaves through a log.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hera.workflows.models import NodeStatus, Workflow

from .errors import ArgoError, ArgoNotFound, InvalidParameterValue, StorageError
from .jobs import JobRecord
from .storage import S3Url

if TYPE_CHECKING:
    from .manager import ArgoManager

LOGGER = logging.getLogger(__name__)

REDACTED = "[line redacted: it contained a secret]"
MAX_TAIL = 100_000
POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
_MAX_K8S_NAME = 253
_HASH_LENGTH = 10
_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Step:
    """One pod of a job, by the names a client picks it with (``?step=``), and where its log is."""

    step: str  # the node's display name
    template: str
    pod: str
    url: str | None = None  # s3:// URL of the archived log

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "template": self.template, "pod": self.pod, "url": self.url}


class Redactor:
    """Replaces every line that contains a secret value."""

    def __init__(self, values: Iterable[str], scrub: Callable[[str], str] | None = None) -> None:
        self.values = tuple(v for v in values if v)
        self.scrub = scrub  # ArgoClient.scrub: blanks the Argo token, current even when it rotates

    def line(self, text: str) -> str:
        if any(v in text for v in self.values) or (self.scrub is not None and self.scrub(text) != text):
            return REDACTED
        return text

    def text(self, text: str | None) -> str | None:
        """``text`` with each secret value blanked out as ``***``, the rest kept: a failure message
        (``Error (exit code 1): <log tail>``) stays readable."""
        if text is None:
            return None
        for value in self.values:
            text = text.replace(value, "***")
        return self.scrub(text) if self.scrub is not None else text


def redactor(manager: ArgoManager) -> Redactor:
    """The secrets of this process as configured: listed environment variables and the Argo token."""
    return Redactor((os.environ.get(name, "") for name in manager.settings.logs.redact), manager.argo.scrub)


# --- steps --------------------------------------------------------------------------------------


def fnv32a(text: str) -> int:
    """Go's ``hash/fnv.New32a``: Argo's node ids and pod names end with it."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_name(workflow: Workflow, node: NodeStatus) -> str:
    """Argo's ``GeneratePodName``: ``<workflow>-<template>-<fnv32a(node name)>`` (v2, the default
    since 3.2), or the node id where the workflow says ``pod-name-format: v1``."""
    name = workflow.metadata.name
    annotations = workflow.metadata.annotations or {}
    if annotations.get(POD_NAME_FORMAT) == "v1" or node.name == name:
        return node.id
    prefix = f"{name}-{template_name(node)}" if template_name(node) else name
    prefix = prefix[: _MAX_K8S_NAME - _HASH_LENGTH - 1]
    return f"{prefix}-{fnv32a(node.name)}"


def template_name(node: NodeStatus) -> str:
    if node.template_name:
        return node.template_name
    return node.template_ref.template if node.template_ref else ""


def steps(workflow: Workflow) -> list[Step]:
    """The workflow's pods in the order they started, with their ``main-logs`` artifact if any.

    Start times have whole seconds only, so ties are broken by the node tree (steps and DAG tasks
    are children of the ones before them).
    """
    tree = (workflow.status.nodes if workflow.status else None) or {}
    position: dict[str, int] = {}
    pending = [workflow.metadata.name, *tree]
    while pending:
        node_id = pending.pop(0)
        if node_id in tree and node_id not in position:
            position[node_id] = len(position)
            pending[:0] = tree[node_id].children or []
    nodes = [n for n in tree.values() if n.type == "Pod"]
    nodes.sort(key=lambda n: (n.started_at.root.isoformat() if n.started_at else "~", position[n.id]))
    return [Step(step=_step_name(workflow, n), template=template_name(n), pod=pod_name(workflow, n),
                 url=_main_logs(n)) for n in nodes]


def _step_name(workflow: Workflow, node: NodeStatus) -> str:
    """The node's display name; a workflow that is a single pod is named after its template, not
    after the workflow (``pygeoapi-job-<id>`` means nothing to an OGC client)."""
    if node.name == workflow.metadata.name:
        return template_name(node) or node.name
    return node.display_name or node.name


def _main_logs(node: NodeStatus) -> str | None:
    """``s3://bucket/key`` of Argo's archived log; a key-only artifact keeps ``s3:///key`` until the
    default bucket is known (``_located``)."""
    for artifact in (node.outputs.artifacts if node.outputs else None) or []:
        if artifact.name == "main-logs" and artifact.s3 and artifact.s3.key:
            return f"s3://{artifact.s3.bucket or ''}/{artifact.s3.key}"
    return None


def _located(url: str | None, default_bucket: str | None) -> str | None:
    if url is None or not url.startswith("s3:///"):
        return url
    return f"s3://{default_bucket}/{url.removeprefix('s3:///')}" if default_bucket else None


def select(available: list[Step], step: str | None) -> list[Step]:
    """The steps a client named (display name or template name); all when it named none."""
    if step is None:
        return available
    chosen = [s for s in available if step in (s.step, s.template)]
    if not chosen and available:
        names = sorted({s.step for s in available} | {s.template for s in available})
        raise InvalidParameterValue(f"no step {step!r} in this job (steps: {', '.join(names)})", name="step")
    return chosen


def parse_tail(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_TAIL:
        raise InvalidParameterValue(f"'tail' must be a whole number from 0 to {MAX_TAIL}, not {value[:50]!r}",
                                    name="tail")
    return int(value)


# --- archive ------------------------------------------------------------------------------------


def archive_prefix(manager: ArgoManager) -> str | None:
    return manager.settings.logs.archive or manager.settings.output_dir


def archive(manager: ArgoManager, record: JobRecord, workflow: Workflow | None) -> None:
    """Keep the logs of a finished job where they outlive its pods, and record where (module doc).

    ``refresh`` calls it when it sees the workflow finished, before it records the job final, so a
    client that sees the job final finds its logs kept. Idempotent and cheap once done. When Argo or
    S3 is unavailable nothing is recorded, so a later call tries again; a workflow that is gone
    records an empty list (its logs are gone with it).
    """
    if record.logs is not None:
        return
    current = manager.store.get(record.job_id)
    if current is None or current.logs is not None:
        return
    try:
        if workflow is None:
            workflow = manager.argo.get_workflow(record.workflow_name)
        kept = [_keep(manager, record, step) for step in _unique_files(steps(workflow))]
    except ArgoNotFound:
        kept = []
    except (ArgoError, StorageError) as err:
        LOGGER.warning("job %s: logs not archived yet: %s", record.job_id, err.message)
        return
    manager.store.update(record.job_id, logs=[s.as_json() for s in kept])


def _unique_files(found: list[Step]) -> list[tuple[Step, str]]:
    """Each step with its archive file name: the display name, made unique by the pod's hash."""
    counts: dict[str, int] = {}
    for s in found:
        counts[s.step] = counts.get(s.step, 0) + 1
    named = []
    for s in found:
        base = _FILE_NAME.sub("_", s.step).strip("._") or "step"
        named.append((s, f"{base}-{s.pod.rsplit('-', 1)[-1]}" if counts[s.step] > 1 else base))
    return named


def _keep(manager: ArgoManager, record: JobRecord, named: tuple[Step, str]) -> Step:
    step, file_name = named
    url = _located(step.url, manager.settings.storage.bucket)
    if url is not None:
        return Step(step.step, step.template, step.pod, url)
    prefix = archive_prefix(manager)
    if prefix is None:
        return Step(step.step, step.template, step.pod, None)
    clean = redactor(manager)
    try:
        lines = [clean.line(entry.content)
                 for entry in manager.argo.workflow_logs(record.workflow_name, pod_name=step.pod)]
    except ArgoNotFound:  # the workflow went in the meantime, and its logs with it
        return Step(step.step, step.template, step.pod, None)
    url = str(S3Url.parse(prefix.rstrip("/") + "/")) + f"logs/{record.job_id}/{file_name}.log"
    manager.storage.write(url, "".join(f"{line}\n" for line in lines).encode(), "text/plain; charset=utf-8")
    return Step(step.step, step.template, step.pod, url)


# --- reading ------------------------------------------------------------------------------------


def job_log(manager: ArgoManager, record: JobRecord, *, step: str | None = None,
            tail: int | None = None) -> Iterator[str]:
    """The job's log as lines of text (each ending in a newline), ready to stream.

    Without ``step`` each line starts with its step's name (as ``argo logs`` prefixes pods). Errors
    that can still be answered as HTTP errors (unknown job or step, Argo or S3 unavailable) are
    raised before the first line.
    """
    clean = redactor(manager)
    if record.is_final and record.logs is not None:
        pairs = _archived(manager, select([Step(**s) for s in record.logs], step))
    else:
        pairs = _live(manager, record, step, tail)
    lines = (f"{name}: {clean.line(text)}" if step is None and name else clean.line(text)
             for name, text in pairs)
    if tail is not None:
        lines = iter(deque(lines, maxlen=tail))
    return (line + "\n" for line in lines)


def _archived(manager: ArgoManager, chosen: list[Step]) -> Iterator[tuple[str, str]]:
    """``(step, line)`` of archived logs, all read before the first is answered: an S3 failure must
    be an HTTP error, not a cut-off answer."""
    texts = []
    for s in chosen:
        if s.url is not None:
            texts.append((s.step, manager.storage.read(s.url).decode("utf-8", errors="replace").splitlines()))
        else:
            texts.append((s.step, [f"[the log of step {s.step} was not kept: its pod was gone before the "
                                   "job ended and the template does not archive logs]"]))
    return ((name, text) for name, lines in texts for text in lines)


def _live(manager: ArgoManager, record: JobRecord, step: str | None,
          tail: int | None) -> Iterator[tuple[str, str]]:
    """``(step, line)`` from Argo's log API: one merged stream, or one per chosen step's pod."""
    try:
        workflow = manager.argo.get_workflow(record.workflow_name)
    except ArgoNotFound:
        raise ArgoNotFound(f"the logs of job {record.job_id} are gone: its workflow was deleted "
                           "before they were archived") from None
    available = steps(workflow)
    chosen = select(available, step)
    if step is not None and not chosen:
        return iter(())  # the step has not started yet
    pods = [None] if step is None else [s.pod for s in chosen]
    streams = [manager.argo.workflow_logs(record.workflow_name, pod_name=pod, tail_lines=tail)
               for pod in pods]
    return _entries(streams, {s.pod: s.step for s in available})


def _entries(streams: list[Iterator[Any]], names: dict[str, str]) -> Iterator[tuple[str, str]]:
    for stream in streams:
        try:
            for entry in stream:
                yield names.get(entry.pod_name, entry.pod_name), entry.content
        except ArgoError as err:  # the answer has begun: say so in the text rather than end silently
            yield "", f"[the log stream broke off: {err.message}]"
            return
