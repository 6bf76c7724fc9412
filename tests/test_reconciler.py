"""The reconciler's parts: the emulator's ``workflow-events`` stream read by ``ArgoClient``, the
lease and task rows of the job store (a real SQLite file), and the callback URL checks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import Emulator
from hera.workflows.models import ObjectMeta, Workflow, WorkflowSpec, WorkflowTemplateRef
from pygeoapi.util import Subscriber

from pygeoapi_argo import callbacks
from pygeoapi_argo.argo import ArgoClient
from pygeoapi_argo.errors import InvalidParameterValue
from pygeoapi_argo.jobs import JobRecord, JobStore
from pygeoapi_argo.settings import ArgoSettings

QUICK = {"metadata": {"name": "rc-quick"}, "spec": {"entrypoint": "main", "templates": [{
    "name": "main", "container": {"image": "alpine:3.20", "command": ["true"]},
    "metadata": {"annotations": {"emulator.pygeoapi-argo.io/scripted": '{"sleep": 0.3}'}}}]}}


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> ArgoClient:
    resp = requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                         json={"template": QUICK}, headers=emulator.headers(), timeout=10)
    assert resp.status_code == 200 or "already exists" in resp.text, resp.text
    return ArgoClient(ArgoSettings.from_config({"server": emulator.url, "namespace": emulator.namespace}, {}))


def submit(client: ArgoClient, name: str, label: str) -> None:
    client.create_workflow(Workflow(metadata=ObjectMeta(name=name, labels={"rc-test": label}),
                                    spec=WorkflowSpec(workflow_template_ref=WorkflowTemplateRef(name="rc-quick"))))


def watch(client: ArgoClient, events: list, **options) -> threading.Thread:
    def read() -> None:
        for event in client.watch_workflows(**options):
            events.append((event.type, event.workflow.metadata.name,
                           (event.workflow.status.phase if event.workflow.status else None),
                           event.workflow.metadata.resource_version))
        events.append("end")

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_watch_streams_changes_until_the_server_ends_it(client: ArgoClient) -> None:
    submit(client, "rc-before", "a")
    time.sleep(1.5)  # finished before the watch opens
    events: list = []
    thread = watch(client, events, label_selector="rc-test=a", timeout_seconds=4)
    time.sleep(0.5)
    submit(client, "rc-during", "a")
    submit(client, "rc-other", "b")  # not selected
    time.sleep(1.5)
    client.delete_workflow("rc-before")
    thread.join(10)
    assert events[-1] == "end"  # ended by timeoutSeconds, cleanly
    kinds = [(e[0], e[1]) for e in events[:-1]]
    assert kinds[0] == ("ADDED", "rc-before") and events[0][2] == "Succeeded"
    assert ("ADDED", "rc-during") in kinds and ("DELETED", "rc-before") in kinds
    assert [e for e in events[:-1] if e[1] == "rc-during"][-1][2] == "Succeeded"
    assert all(name != "rc-other" for _, name in kinds)
    versions = [int(e[3]) for e in events[:-1] if e[1] == "rc-during"]
    assert versions == sorted(versions)


def test_watch_resumes_after_a_resource_version(client: ArgoClient) -> None:
    submit(client, "rc-resume-1", "c")
    time.sleep(1.5)
    [first] = [e for e in client.watch_workflows(label_selector="rc-test=c", timeout_seconds=1)]
    assert first.type == "ADDED"
    events: list = []
    thread = watch(client, events, label_selector="rc-test=c", timeout_seconds=3,
                   resource_version=first.workflow.metadata.resource_version)
    time.sleep(0.3)
    submit(client, "rc-resume-2", "c")
    thread.join(10)
    assert {e[1] for e in events[:-1]} == {"rc-resume-2"}  # nothing sent again from before the version


def store_at(path: Path) -> JobStore:
    return JobStore(f"sqlite:///{path / 'jobs.db'}")


def test_lease_is_held_by_one_and_taken_over_after_expiry(tmp_path: Path) -> None:
    one, two = store_at(tmp_path), store_at(tmp_path)  # two processes' stores on one database
    assert one.hold_lease("test", "holder-1", ttl=1)
    assert not two.hold_lease("test", "holder-2", ttl=1)
    assert one.hold_lease("test", "holder-1", ttl=1)  # renewal
    assert two.lease_holder("test") == "holder-1"
    time.sleep(1.2)  # holder-1 stopped renewing
    assert two.lease_holder("test") is None
    assert two.hold_lease("test", "holder-2", ttl=30)
    assert not one.hold_lease("test", "holder-1", ttl=30)  # the old holder learns it lost it
    two.release_lease("test", "holder-2")
    assert one.hold_lease("test", "holder-1", ttl=30)  # released: free at once


def record(job_id: str, status: str, subscriber: dict | None) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(job_id=job_id, process_id="p", workflow_name=f"pygeoapi-job-{job_id}", status=status,
                     created=now, updated=now, subscriber=subscriber)


def test_tasks_are_due_when_their_job_gets_there(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.add(record("a", "accepted", {"successUri": "http://x/s", "inProgressUri": "http://x/p"}))
    store.add(record("b", "accepted", None))
    assert store.due_tasks() == []
    store.update("a", status="running")
    assert [(r.job_id, t.task) for r, t in store.due_tasks()] == [("a", "inProgressUri")]
    store.update("a", status="successful")
    store.update("b", status="failed")
    due = {(r.job_id, t.task) for r, t in store.due_tasks()}
    assert due == {("a", "inProgressUri"), ("a", "successUri"), ("a", "archive-logs"), ("b", "archive-logs")}
    store.retry_task("a", "successUri", 60, "the subscriber answered 503")
    store.settle_task("a", "inProgressUri", "skipped", "the job is successful")
    assert ("a", "successUri") not in {(r.job_id, t.task) for r, t in store.due_tasks()}
    tasks = store.job_tasks("a")
    assert tasks["successUri"].attempts == 1 and tasks["successUri"].state == "pending"
    assert tasks["inProgressUri"].state == "skipped"


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://10.0.0.1/x", "http://192.168.1.1/x",
                                 "http://[::1]:8080/x", "http://169.254.169.254/x", "http://0.0.0.0/x"])
def test_internal_addresses_refused_unless_allowed(url: str) -> None:
    with pytest.raises(callbacks.CallbackRefused):
        callbacks.check_url(url, allow_internal=False)
    callbacks.check_url(url, allow_internal=True)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "http:///x", "http://h:99999/"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(callbacks.CallbackRefused):
        callbacks.check_url(url, allow_internal=True)


def test_public_address_allowed_and_subscriber_stored_as_ogc_members() -> None:
    callbacks.check_url("https://8.8.8.8/hook", allow_internal=False)
    subscriber = Subscriber(success_uri="https://8.8.8.8/s", in_progress_uri=None, failed_uri="http://1.1.1.1/f")
    assert callbacks.subscriber_document(subscriber, allow_internal=False) == {
        "successUri": "https://8.8.8.8/s", "failedUri": "http://1.1.1.1/f"}
    with pytest.raises(InvalidParameterValue, match=r"subscriber\.failedUri"):
        callbacks.subscriber_document(Subscriber("https://8.8.8.8/s", None, "http://127.0.0.1/f"),
                                      allow_internal=False)


def test_callback_bodies() -> None:
    job = record("j", "failed", None)
    job = JobRecord(**{**job.__dict__, "message": "step main failed: exit code 3"})
    failed = callbacks.body("failedUri", job, job_url="http://api/jobs/j")
    assert failed["jobID"] == "j" and failed["detail"] == "step main failed: exit code 3"
    running = callbacks.body("inProgressUri", JobRecord(**{**job.__dict__, "status": "running"}),
                             job_url="http://api/jobs/j")
    assert running["status"] == "running" and running["links"][0]["href"] == "http://api/jobs/j"
    assert callbacks.body("successUri", job, job_url="u", results={"a": 1}) == {"a": 1}
    assert [callbacks.backoff(n) for n in (0, 1, 2, 20)] == [1, 2, 4, callbacks.MAX_BACKOFF]
