"""``metrics.py``: Argo call labels, usage from recorded workflows, the exposition over a real job store,
and the Argo call instrumentation through a real ``ArgoClient`` talking to the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hera.workflows.models import Workflow
from prometheus_client.parser import text_string_to_metric_families

from pygeoapi_argo import metrics
from pygeoapi_argo.argo import ArgoClient
from pygeoapi_argo.errors import ArgoNotFound
from pygeoapi_argo.jobs import JobRecord, JobStore
from pygeoapi_argo.settings import ArgoSettings

DATA = Path(__file__).parent / "data" / "argo"
BASE = "https://argo.example:2746/argo/api/v1"


@pytest.mark.parametrize(("url", "expected"), [
    (f"{BASE}/workflows/argo", "workflows"),
    (f"{BASE}/workflows/argo/pygeoapi-job-1?fields=status.phase", "workflows/{name}"),
    (f"{BASE}/workflows/argo/pygeoapi-job-1/terminate", "workflows/{name}/terminate"),
    (f"{BASE}/workflows/argo/pygeoapi-job-1/log", "workflows/{name}/log"),
    (f"{BASE}/workflows/argo/pygeoapi-job-1/pygeoapi-job-1-say-123/log", "workflows/{name}/{pod}/log"),
    (f"{BASE}/workflow-templates/argo/echo", "workflow-templates/{name}"),
    (f"{BASE}/cluster-workflow-templates/buffer", "cluster-workflow-templates/{name}"),
    (f"{BASE}/workflow-events/argo", "workflow-events"),
    (f"{BASE}/version", "version"),
    ("https://argo.example/healthz", "other"),
])
def test_operation_leaves_names_out(url, expected):
    assert metrics.operation(url) == expected


def test_usage_of_a_recorded_workflow():
    workflow = Workflow.model_validate(yaml.safe_load((DATA / "workflow-failed.yaml").read_text()))
    assert metrics.usage(workflow) == {"cpu_seconds": 2, "memory_seconds": 17}  # status.resourcesDuration
    assert metrics.usage(Workflow.model_validate({"metadata": {"name": "x"}, "spec": {}})) == {
        "cpu_seconds": None, "memory_seconds": None}


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_exposition_counts_jobs_and_sums_usage_from_the_store(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    finished = [("echo", "successful", 10, 2, 30), ("echo", "successful", 5, 1, 12),
                ("echo", "failed", 1, 1, 3), ("buffer", "successful", 2.5, None, None)]
    for i, (process, status, seconds, cpu, memory) in enumerate(finished):
        store.add(JobRecord(job_id=f"j{i}", process_id=process, workflow_name=f"w{i}", status=status,
                            created=start, updated=start, started=start,
                            finished=start + timedelta(seconds=seconds), cpu_seconds=cpu,
                            memory_seconds=memory))
    store.add(JobRecord(job_id="j9", process_id="echo", workflow_name="w9", status="running",
                        created=start, updated=start, started=start))
    body, content_type = metrics.exposition(store)
    assert content_type.startswith("text/plain")
    found = samples(body)

    def value(name: str, process: str, status: str) -> float:
        return found[(f"pygeoapi_argo_{name}", (("process", process), ("status", status)))]

    assert value("jobs", "echo", "successful") == 2
    assert value("jobs", "echo", "failed") == 1
    assert value("jobs", "echo", "running") == 1
    assert value("jobs", "buffer", "successful") == 1
    assert value("jobs_duration_seconds", "echo", "successful") == pytest.approx(15)
    assert value("jobs_duration_seconds", "echo", "running") == 0
    assert value("jobs_cpu_seconds", "echo", "successful") == 3
    assert value("jobs_memory_100mi_seconds", "echo", "successful") == 42
    assert value("jobs_cpu_seconds", "buffer", "successful") == 0
    store.dispose()


def test_argo_calls_are_timed_and_failures_counted(emulator):
    settings = ArgoSettings.from_config({"server": emulator.url, "namespace": emulator.namespace}, {})
    client = ArgoClient(settings)
    calls = ("pygeoapi_argo_argo_request_seconds_count", {"method": "GET", "operation": "workflows/{name}"})
    errors = ("pygeoapi_argo_argo_request_errors_total",
              {"method": "GET", "operation": "workflows/{name}", "error": "ArgoNotFound"})
    before = [metrics.EVENTS.get_sample_value(*m) or 0 for m in (calls, errors)]
    with pytest.raises(ArgoNotFound):
        client.get_workflow("no-such-workflow")
    client.version()
    after = [metrics.EVENTS.get_sample_value(*m) or 0 for m in (calls, errors)]
    assert after == [before[0] + 1, before[1] + 1]
    assert metrics.EVENTS.get_sample_value("pygeoapi_argo_argo_request_errors_total", {
        "method": "GET", "operation": "version", "error": "ArgoNotFound"}) is None
    client.close()


def test_reconciler_lag_is_a_histogram():
    name = "pygeoapi_argo_reconciler_lag_seconds"
    count = metrics.EVENTS.get_sample_value(f"{name}_count") or 0
    low = metrics.EVENTS.get_sample_value(f"{name}_bucket", {"le": "0.1"}) or 0
    metrics.observe_reconciler_lag(0.7)
    metrics.observe_reconciler_lag(-0.01)  # clocks differ a little: never a negative lag
    assert metrics.EVENTS.get_sample_value(f"{name}_count") == count + 2
    assert metrics.EVENTS.get_sample_value(f"{name}_bucket", {"le": "0.1"}) == low + 1
