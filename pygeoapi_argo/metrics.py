"""Prometheus metrics, served at ``/metrics`` in the text exposition format.

Two kinds, aggregated the way each needs:

- **Events** counted where they happen: submit latency (around the Argo create), Argo Server call
  latency and errors, and the reconciler's lag (``observe_reconciler_lag``). gunicorn runs several
  worker processes, each counting its own; with ``PROMETHEUS_MULTIPROC_DIR`` set (``pygeoapi-argo
  serve`` creates and empties one per start) every process writes its counts there and a scrape of
  any worker sums them all (prometheus-client's multiprocess mode). Without it (one process, e.g.
  ``flask run``) they are plain in-process metrics. The variable must be set before
  prometheus-client is first imported: a gunicorn started by hand must export it itself.
- **Job state** read from the job store at scrape time: jobs by process and status, and per process
  the summed duration and Argo ``resourcesDuration`` (CPU core-seconds, memory in 100Mi-seconds) of
  their jobs. The store is shared by every worker and replica, so these are exact whichever worker
  answers; several replicas export the same numbers (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from hera.workflows.models import Workflow

    from .jobs import JobStore

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "pygeoapi_argo"
# Path segments after a workflow's name that name an action, not an object: labels stay few.
_ACTIONS = frozenset({"log", "stop", "terminate", "suspend", "resume", "retry", "resubmit", "set", "lint"})
_CLUSTER_SCOPED = ("cluster-workflow-templates", "version", "info", "userinfo")

EVENTS = CollectorRegistry(auto_describe=True)
SUBMIT_SECONDS = Histogram(f"{PREFIX}_submit_seconds", "Time to create a job's Argo workflow",
                           ["process"], registry=EVENTS)
ARGO_REQUEST_SECONDS = Histogram(f"{PREFIX}_argo_request_seconds",
                                 "Argo Server calls: time to the answer's headers (retries included)",
                                 ["method", "operation"], registry=EVENTS)
ARGO_REQUEST_ERRORS = Counter(f"{PREFIX}_argo_request_errors", "Argo Server calls that failed, by error",
                              ["method", "operation", "error"], registry=EVENTS)
RECONCILER_LAG_SECONDS = Histogram(
    f"{PREFIX}_reconciler_lag_seconds", "Time from a workflow ending to its job being final in the store",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf")), registry=EVENTS)


def observe_reconciler_lag(seconds: float) -> None:
    """The reconciler reports each job it made final: how long after the workflow's ``finishedAt``."""
    RECONCILER_LAG_SECONDS.observe(max(0.0, seconds))


def usage(workflow: Workflow) -> dict[str, int | None]:
    """A finished workflow's ``status.resourcesDuration`` as job record fields (``None``: not reported)."""
    spent = (workflow.status.resources_duration if workflow.status else None) or {}
    return {"cpu_seconds": spent.get("cpu"), "memory_seconds": spent.get("memory")}


def operation(url: str) -> str:
    """An Argo API path with names left out (``workflows/{name}/log``): a label of few values."""
    _, found, rest = urlsplit(url).path.partition("/api/v1/")
    parts = [p for p in rest.split("/") if p]
    if not found or not parts:
        return "other"
    resource, names = parts[0], parts[1:]
    if resource not in _CLUSTER_SCOPED:
        names = names[1:]  # the namespace
    if not names:
        return resource
    tail = ["{name}", *(part if part in _ACTIONS else "{pod}" for part in names[1:])]
    return "/".join([resource, *tail])


def timed_argo_request(send: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps ``ArgoSession.request``: every call to the Argo Server timed, every failure counted."""

    @functools.wraps(send)
    def timed(session: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        labels = (method.upper(), operation(url))
        started = time.perf_counter()
        try:
            return send(session, method, url, *args, **kwargs)
        except Exception as exc:
            ARGO_REQUEST_ERRORS.labels(*labels, type(exc).__name__).inc()
            raise
        finally:
            ARGO_REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    return timed


class _JobStoreCollector:
    """Job counts and usage totals, one database query per scrape."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        labels = ["process", "status"]
        count = GaugeMetricFamily(f"{PREFIX}_jobs", "Jobs in the job store", labels=labels)
        took = GaugeMetricFamily(f"{PREFIX}_jobs_duration_seconds",
                                 "Summed run time (finished - started) of finished jobs", labels=labels)
        cpu = GaugeMetricFamily(f"{PREFIX}_jobs_cpu_seconds",
                                "Summed Argo resourcesDuration cpu (core-seconds) of finished jobs",
                                labels=labels)
        memory = GaugeMetricFamily(f"{PREFIX}_jobs_memory_100mi_seconds",
                                   "Summed Argo resourcesDuration memory ((100Mi)-seconds) of finished jobs",
                                   labels=labels)
        for process_id, status, jobs, seconds, cpu_seconds, memory_seconds in self.store.usage():
            count.add_metric([process_id, status], jobs)
            took.add_metric([process_id, status], seconds)
            cpu.add_metric([process_id, status], cpu_seconds)
            memory.add_metric([process_id, status], memory_seconds)
        yield from (count, took, cpu, memory)


class _Events:
    """This process's event metrics, for a scrape without multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        yield from EVENTS.collect()


def exposition(store: JobStore, accept: str = "") -> tuple[bytes, str]:
    """The ``/metrics`` body and its content type, in the format the scraper's ``Accept`` asks for
    (OpenMetrics, or Prometheus text 0.0.4 by default) as prometheus-client's own server does."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_JobStoreCollector(store))
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Events())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
