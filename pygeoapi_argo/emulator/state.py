"""The emulated cluster's objects, shared by the HTTP server and the controller.

Everything is plain Argo JSON (dicts exactly as the Argo Server returns them) held under one
re-entrant lock, so the server can answer a GET with a consistent snapshot while the controller
is in the middle of advancing a workflow. Pods are kept apart from workflows because Argo keeps
them apart: pod garbage collection removes a pod and its live logs while the workflow stays.
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

Key = tuple[str, str]  # (namespace, name); cluster-scoped objects use namespace ""


def now_rfc3339() -> str:
    """Kubernetes timestamps: second precision, UTC, trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_nano() -> str:
    """Log line timestamps as the Argo Server sends them (RFC 3339 with nanoseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@dataclass
class Pod:
    """A step's pod: its main container's log and whether it still runs.

    ``lines`` grows while the step runs; followers wait on ``changed``.
    """

    namespace: str
    name: str
    workflow: str
    node_id: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (timestamp, text)
    finished: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)

    def append(self, text: str) -> None:
        with self.changed:
            self.lines.append((now_rfc3339_nano(), text))
            self.changed.notify_all()

    def finish(self) -> None:
        with self.changed:
            self.finished = True
            self.changed.notify_all()


class Cluster:
    """All objects of the emulated cluster. Hold ``lock`` for every read or write of them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.workflows: dict[Key, dict] = {}
        self.workflow_templates: dict[Key, dict] = {}
        self.cluster_workflow_templates: dict[Key, dict] = {}
        self.cron_workflows: dict[Key, dict] = {}
        self.pods: dict[Key, Pod] = {}
        self._resource_version = 0
        # Woken on every change (``touch``) and workflow removal: watch streams wait on it.
        self.changed = threading.Condition(self.lock)

    def stamp(self, obj: dict, *, namespace: str | None) -> dict:
        """Fill the metadata Kubernetes sets on create: uid, creationTimestamp, resourceVersion."""
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            meta["namespace"] = namespace
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta.setdefault("generation", 1)
        self.touch(obj)
        return obj

    def touch(self, obj: dict) -> None:
        """Bump resourceVersion: every change of an object gets a new one, as in Kubernetes."""
        with self.lock:
            self._resource_version += 1
            obj.setdefault("metadata", {})["resourceVersion"] = str(self._resource_version)
            self.changed.notify_all()

    def snapshot(self, obj: dict) -> dict:
        """A deep copy taken under the lock, safe to serialise after the lock is released."""
        with self.lock:
            return copy.deepcopy(obj)
