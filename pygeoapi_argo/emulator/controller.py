"""Workflow lifecycle: the emulator's workflow controller.

The HTTP server stores a workflow with an empty status and calls ``start``; a ``Run`` (engine.py)
then drives it on its own thread. Stop/terminate/delete reach the run from the server's threads.
Timers (workflow deadlines, ``ttlStrategy``) live here so ``close`` can cancel them all.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .artifacts import Repository
from .engine import Run
from .executor import python_wrapper_dir, remove_tree
from .state import Cluster, Key


class WorkflowFinished(Exception):
    """Stop/terminate of a completed workflow: the Argo Server answers 500 for it."""


@dataclass
class ControllerSettings:
    namespace: str = "argo"
    artifacts: str | None = None  # s3://bucket[/key-prefix]: the artifact repository
    s3_endpoint: str | None = None  # endpoint URL; credentials from the AWS_* environment
    key_format: str = "{{workflow.name}}/{{pod.name}}"
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # secret name -> key -> value
    sandbox: Literal["bwrap", "none"] = "bwrap"


class Controller:
    def __init__(self, cluster: Cluster, settings: ControllerSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.repository = Repository.parse(settings.artifacts, settings.s3_endpoint)
        self.workdir = Path(tempfile.mkdtemp(prefix="argo-emulator-"))
        self.bin_dir = python_wrapper_dir(self.workdir)
        self._runs: dict[Key, Run] = {}
        self._threads: dict[Key, threading.Thread] = {}
        self._timers: dict[Key, list[threading.Timer]] = {}
        self._lock = threading.Lock()

    def start(self, key: Key) -> None:
        """Run the stored workflow ``key`` (metadata stamped, ``status`` empty) on a thread."""
        run = Run(self, key)
        thread = threading.Thread(target=run.run, name=f"workflow-{key[1]}", daemon=True)
        with self._lock:
            self._runs[key] = run
            self._threads[key] = thread
        thread.start()

    def stop(self, key: Key, strategy: Literal["Stop", "Terminate"]) -> None:
        """Set ``spec.shutdown``; raise WorkflowFinished if the workflow has completed."""
        with self.cluster.lock:
            wf = self.cluster.workflows.get(key)
            if wf is None:
                raise KeyError(key)
            labels = (wf.get("metadata") or {}).get("labels") or {}
            if labels.get("workflows.argoproj.io/completed") == "true":
                raise WorkflowFinished(
                    f"cannot shutdown a completed workflow: workflow: {key[1]}, namespace: {key[0]}"
                )
            wf.setdefault("spec", {})["shutdown"] = strategy
            self.cluster.touch(wf)
        with self._lock:
            run = self._runs.get(key)
        if run is not None:
            run.stop(strategy)

    def delete(self, key: Key) -> None:
        """End a running workflow silently and drop its pods; the server removes the object."""
        with self._lock:
            run = self._runs.pop(key, None)
            self._threads.pop(key, None)
            timers = self._timers.pop(key, [])
        for timer in timers:
            timer.cancel()
        if run is not None:
            run.abandon()
        with self.cluster.lock:
            for pod_key in [
                k for k, p in self.cluster.pods.items() if k[0] == key[0] and p.workflow == key[1]
            ]:
                self.cluster.pods.pop(pod_key).finish()

    def close(self) -> None:
        """Kill every running step: the emulator is shutting down."""
        with self._lock:
            runs = list(self._runs.values())
            threads = list(self._threads.values())
            timers = [t for ts in self._timers.values() for t in ts]
            self._runs.clear()
            self._threads.clear()
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        for run in runs:
            run.abandon()
        for thread in threads:
            thread.join(timeout=10)
        remove_tree(self.workdir)

    def wait(self, key: Key, timeout: float | None = None) -> bool:
        """Block until the run of ``key`` has ended (for callers that must not poll)."""
        with self._lock:
            thread = self._threads.get(key)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # --- used by runs -------------------------------------------------------------------------

    def schedule(self, key: Key, seconds: float, action) -> None:
        timer = threading.Timer(max(0.0, seconds), action)
        timer.daemon = True
        with self._lock:
            self._timers.setdefault(key, []).append(timer)
        timer.start()

    def delete_pod(self, namespace: str, name: str) -> None:
        """Pod garbage collection: the pod and its live log are gone, the workflow stays."""
        with self.cluster.lock:
            pod = self.cluster.pods.pop((namespace, name), None)
        if pod is not None:
            pod.finish()

    def expire(self, key: Key) -> None:
        """``ttlStrategy``: delete the completed workflow and its pods."""
        with self._lock:
            self._runs.pop(key, None)
            self._threads.pop(key, None)
            self._timers.pop(key, None)
        with self.cluster.lock:
            self.cluster.workflows.pop(key, None)
            for pod_key in [
                k for k, p in self.cluster.pods.items() if k[0] == key[0] and p.workflow == key[1]
            ]:
                self.cluster.pods.pop(pod_key).finish()
