"""Schedules: their configuration, the CronWorkflows built from them (plain data), ``sync`` against the
emulator over real HTTP (and through the ``pygeoapi-argo schedules sync`` command), and
``ArgoManager.adopt`` recording runs of schedules in a real job store.

The CronWorkflows synced against the shared emulator fire once a year (``0 0 1 1 *``): nothing runs.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from hera.workflows.models import Workflow

from pygeoapi_argo import cli, schedules
from pygeoapi_argo.cli import pygeoapi_config, read_templates, resources_for
from pygeoapi_argo.errors import (
    ArgoUnavailable,
    ConfigurationError,
    InvalidParameterValue,
    MissingParameterValue,
)
from pygeoapi_argo.manager import ArgoManager
from pygeoapi_argo.settings import ProcessSettings, ScheduleSettings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "config" / "workflow-templates"
YEARLY = "0 0 1 1 *"
ECHO = {"inputs": {
    "message": {"title": "Message", "schema": {"type": "string", "maxLength": 1000}},
    "case": {"schema": {"type": "string", "enum": ["keep", "upper", "lower"], "default": "keep"},
             "minOccurs": 0},
    "api_key": {"schema": {"type": "string"}, "minOccurs": 0},
}}


def echo_settings(*entries: dict) -> ProcessSettings:
    return ProcessSettings.from_config("echo", {"processor": {"workflow_template": "echo",
                                                              "schedules": list(entries)}})


# --- configuration ---------------------------------------------------------------------------


def test_schedules_are_read_from_the_processor_section() -> None:
    conf = echo_settings({"id": "nightly", "cron": " 0 2 * * * ", "timezone": "Europe/Vienna",
                          "inputs": {"message": "hi"}},
                         {"id": "weekly", "cron": "@weekly", "suspend": "true"})
    assert conf.schedules == (
        ScheduleSettings(id="nightly", cron="0 2 * * *", timezone="Europe/Vienna", inputs={"message": "hi"}),
        ScheduleSettings(id="weekly", cron="@weekly", inputs={}, suspend=True))
    assert echo_settings().schedules == ()


def test_every_schedule_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        echo_settings({"id": "Nightly", "cron": "0 2 * *", "timezone": "Mars/Olympus", "inputs": [1],
                       "suspend": "maybe", "when": "now"},
                      "daily", {"id": "a", "cron": "@daily"}, {"id": "a", "cron": "@every 1h"})
    lines = caught.value.message.splitlines()[1:]
    where = "- resources.echo.processor.schedules"
    assert lines == [
        f"{where}[0].when: unknown key (known keys are id, cron, timezone, inputs, suspend)",
        f"{where}[0].id: required: lowercase letters, digits and '-', at most 30 characters, starting and "
        "ending alphanumeric (not 'Nightly')",
        f"{where}[0].cron: required: five cron fields such as '0 6 * * 1-5' or a descriptor such as @daily, "
        "not '0 2 * *'",
        f"{where}[0].timezone: not an IANA time zone such as Europe/Vienna: 'Mars/Olympus'",
        f"{where}[0].inputs: must be a mapping of input names to values, as in an execute request",
        f"{where}[0].suspend: must be true or false, not 'maybe'",
        f"{where}[1]: must be a mapping with id and cron",
        f"{where}[3].id: 'a' is used twice",
        f"{where}[3].cron: required: five cron fields such as '0 6 * * 1-5' or a descriptor such as @daily, "
        "not '@every 1h'",
    ]


# --- CronWorkflows from schedules (plain data) -----------------------------------------------


def test_cron_workflow_names_are_kubernetes_names_stable_per_schedule() -> None:
    assert schedules.cron_workflow_name("echo", "nightly") == "pygeoapi-echo-nightly"
    odd = schedules.cron_workflow_name("My_Process", "nightly")
    assert odd == schedules.cron_workflow_name("My_Process", "nightly")
    assert odd.startswith("pygeoapi-my-process-nightly-")
    assert len(odd) == len("pygeoapi-my-process-nightly-") + 8
    process = "a-very-long-process-identifier-indeed"
    long = schedules.cron_workflow_name(process, "every-weekday-morning")
    assert len(long) <= 52 and long.startswith("pygeoapi-a-very-long-process")
    assert long != schedules.cron_workflow_name(process, "every-weekday-evening")


def test_cron_workflow_runs_the_template_with_inputs_checked_like_an_execute_request() -> None:
    conf = echo_settings({"id": "nightly", "cron": "0 2 * * *", "timezone": "Europe/Vienna",
                          "inputs": {"message": "hi"}})
    cron = schedules.cron_workflow(conf, conf.schedules[0], description=ECHO, entrypoint="execute",
                                   namespace="argo")
    data = cron.model_dump(mode="json", by_alias=True, exclude_none=True)
    labels = {"pygeoapi.io/process-id": "echo", "pygeoapi.io/schedule-id": "nightly",
              "app.kubernetes.io/managed-by": "pygeoapi-argo"}
    assert data["metadata"] == {"name": "pygeoapi-echo-nightly", "namespace": "argo", "labels": labels}
    spec = data["spec"]
    assert spec["schedules"] == ["0 2 * * *"] and "schedule" not in spec
    assert spec["timezone"] == "Europe/Vienna" and "suspend" not in spec
    assert spec["workflowSpec"] == {
        "workflowTemplateRef": {"name": "echo"}, "entrypoint": "execute",
        "arguments": {"parameters": [{"name": "message", "value": "hi"}]}}
    assert spec["workflowMetadata"]["labels"] == labels
    request = json.loads(spec["workflowMetadata"]["annotations"]["pygeoapi.io/request"])
    assert request == {"inputs": {"message": "hi"}, "outputs": None, "response": "document"}


@pytest.mark.parametrize(("inputs", "error", "message"), [
    ({}, MissingParameterValue, "input 'message' is required"),
    ({"message": "hi", "colour": "red"}, InvalidParameterValue, "unknown input 'colour'"),
    ({"message": "hi", "case": "shout"}, InvalidParameterValue, "case"),
    ({"message": "{{workflow.name}}"}, InvalidParameterValue, "{{"),
    ({"message": "hi", "api_key": "s3cret"}, InvalidParameterValue, "input 'api_key' looks like a secret"),
])
def test_cron_workflow_refuses_inputs_an_execute_request_may_not_have(inputs, error, message) -> None:
    conf = echo_settings({"id": "nightly", "cron": YEARLY, "inputs": inputs})
    with pytest.raises(error) as caught:
        schedules.cron_workflow(conf, conf.schedules[0], description=ECHO, entrypoint="execute",
                                namespace="argo")
    assert message in caught.value.message


# --- sync against the emulator -----------------------------------------------------------------


def resources(schedule_config: dict[str, list[dict]]) -> dict:
    found = resources_for(read_templates(TEMPLATES))
    for process_id, entries in schedule_config.items():
        found[process_id]["processor"]["schedules"] = entries
    return found


def manager_def(emulator, tmp_path: Path) -> dict:
    return {"name": "pygeoapi_argo.ArgoManager", "connection": f"sqlite:///{tmp_path / 'jobs.db'}",
            "argo": {"server": emulator.url, "namespace": emulator.namespace}}


def manager_for(emulator, tmp_path: Path, schedule_config: dict[str, list[dict]]) -> ArgoManager:
    return ArgoManager({**manager_def(emulator, tmp_path), "processes": resources(schedule_config)})


def crons(emulator) -> dict[str, dict]:
    resp = requests.get(f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}", timeout=10)
    return {c["metadata"]["name"]: c for c in resp.json()["items"] or []}


def actions(changes: list[schedules.Change]) -> dict[str, str]:
    return {change.name: change.action for change in changes}


def test_sync_creates_updates_suspends_resumes_and_deletes_only_its_own(emulator, tmp_path) -> None:
    foreign = {"metadata": {"name": "someone-elses", "labels": {"pygeoapi.io/schedule-id": "x"}},
               "spec": {"schedules": [YEARLY], "workflowSpec": {"workflowTemplateRef": {"name": "echo"},
                        "arguments": {"parameters": [{"name": "message", "value": "theirs"}]}}}}
    resp = requests.post(f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}",
                         json={"cronWorkflow": foreign}, timeout=10)
    assert resp.status_code == 200, resp.text

    nightly = {"id": "nightly", "cron": YEARLY, "inputs": {"message": "a"}}
    weekly = {"id": "weekly", "cron": YEARLY, "timezone": "Europe/Vienna", "inputs": {"message": "b"},
              "suspend": True}
    first = manager_for(emulator, tmp_path, {"echo": [nightly, weekly]})
    assert actions(schedules.sync(first)) == {"pygeoapi-echo-nightly": "created",
                                              "pygeoapi-echo-weekly": "created"}
    stored = crons(emulator)
    assert stored["pygeoapi-echo-weekly"]["spec"]["suspend"] is True
    assert stored["pygeoapi-echo-weekly"]["spec"]["timezone"] == "Europe/Vienna"
    assert stored["pygeoapi-echo-nightly"]["spec"]["workflowSpec"]["arguments"]["parameters"] == [
        {"name": "message", "value": "a"}]
    assert actions(schedules.sync(first)) == {"pygeoapi-echo-nightly": "unchanged",
                                              "pygeoapi-echo-weekly": "unchanged"}

    changed = manager_for(emulator, tmp_path, {"echo": [
        {**nightly, "cron": "0 0 2 1 *", "inputs": {"message": "c", "case": "upper"}},
        {**weekly, "suspend": False},
        {"id": "broken", "cron": YEARLY, "inputs": {"nope": 1}}]})
    changes = schedules.sync(changed)
    assert actions(changes) == {"pygeoapi-echo-nightly": "updated", "pygeoapi-echo-weekly": "resumed",
                                "pygeoapi-echo-broken": "failed"}
    assert "unknown input 'nope'" in next(c.message for c in changes if c.action == "failed")
    stored = crons(emulator)
    assert "pygeoapi-echo-broken" not in stored
    assert stored["pygeoapi-echo-nightly"]["spec"]["schedules"] == ["0 0 2 1 *"]
    assert stored["pygeoapi-echo-nightly"]["metadata"]["generation"] == 2
    assert not stored["pygeoapi-echo-weekly"]["spec"].get("suspend")

    # nightly gone from the config: deleted; weekly's inputs now invalid: reported, left as it was
    last = manager_for(emulator, tmp_path, {"echo": [{**weekly, "inputs": {}}]})
    changes = schedules.sync(last)
    assert actions(changes) == {"pygeoapi-echo-weekly": "failed", "pygeoapi-echo-nightly": "deleted"}
    stored = crons(emulator)
    assert set(stored) == {"pygeoapi-echo-weekly", "someone-elses"}
    assert stored["pygeoapi-echo-weekly"]["spec"]["workflowSpec"]["arguments"]["parameters"] == [
        {"name": "message", "value": "b"}]

    assert actions(schedules.sync(manager_for(emulator, tmp_path, {}))) == {"pygeoapi-echo-weekly": "deleted"}
    assert set(crons(emulator)) == {"someone-elses"}
    requests.delete(f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}/someone-elses", timeout=10)


def test_sync_leaves_a_same_named_cron_workflow_it_does_not_manage(emulator, tmp_path) -> None:
    squatter = {"metadata": {"name": "pygeoapi-echo-squat"},
                "spec": {"schedules": [YEARLY], "workflowSpec": {"workflowTemplateRef": {"name": "echo"},
                         "arguments": {"parameters": [{"name": "message", "value": "theirs"}]}}}}
    requests.post(f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}",
                  json={"cronWorkflow": squatter}, timeout=10).raise_for_status()
    manager = manager_for(emulator, tmp_path, {"echo": [{"id": "squat", "cron": YEARLY,
                                                          "inputs": {"message": "ours"}}]})
    changes = schedules.sync(manager)
    assert [(c.action, c.message) for c in changes] == [
        ("failed", "pygeoapi-echo-squat exists and is not managed by pygeoapi-argo: left alone")]
    assert "app.kubernetes.io/managed-by" not in (crons(emulator)["pygeoapi-echo-squat"]["metadata"]
                                                  .get("labels") or {})
    requests.delete(f"{emulator.url}/api/v1/cron-workflows/{emulator.namespace}/pygeoapi-echo-squat",
                    timeout=10)


def test_replicas_syncing_at_once_make_one_cron_workflow(emulator, tmp_path) -> None:
    entries = {"echo": [{"id": "raced", "cron": YEARLY, "inputs": {"message": "r"}}]}
    managers = [manager_for(emulator, tmp_path / str(n), entries) for n in range(4)]
    results: list[list[schedules.Change]] = []
    threads = [threading.Thread(target=lambda m=m: results.append(schedules.sync(m))) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(change.action for changes in results for change in changes)
    assert outcomes.count("created") == 1 and set(outcomes) <= {"created", "unchanged"}, outcomes
    assert "pygeoapi-echo-raced" in crons(emulator)
    schedules.sync(manager_for(emulator, tmp_path, {}))
    assert "pygeoapi-echo-raced" not in crons(emulator)


def test_the_command_reports_each_cron_workflow_and_fails_on_a_failure(emulator, tmp_path, capsys) -> None:
    def write(entries: list[dict]) -> Path:
        config = tmp_path / "pygeoapi.yml"
        config.write_text(yaml.safe_dump(pygeoapi_config(
            url="http://127.0.0.1:5000", host="127.0.0.1", port=5000,
            manager=manager_def(emulator, tmp_path), resources=resources({"echo": entries}))))
        return config

    good = {"id": "cli", "cron": YEARLY, "inputs": {"message": "x"}}
    assert cli.main(["schedules", "sync", "--config", str(write([good]))]) == 0
    assert capsys.readouterr().out == "created   pygeoapi-echo-cli (process echo, schedule cli)\n"
    bad = {"id": "cli-bad", "cron": YEARLY, "inputs": {}}
    assert cli.main(["schedules", "sync", "--config", str(write([good, bad]))]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "failed    pygeoapi-echo-cli-bad (process echo, schedule cli-bad): input 'message' is required",
        "unchanged pygeoapi-echo-cli (process echo, schedule cli)"]
    assert cli.main(["schedules", "sync", "--config", str(write([]))]) == 0
    assert capsys.readouterr().out == "deleted   pygeoapi-echo-cli (process echo, schedule cli)\n"


def test_argo_down_fails_sync_loudly_and_start_up_sync_quietly(tmp_path, caplog) -> None:
    manager = ArgoManager({"name": "pygeoapi_argo.ArgoManager",
                           "connection": f"sqlite:///{tmp_path / 'j.db'}",
                           "argo": {"server": "http://127.0.0.1:9", "namespace": "argo", "retries": 0,
                                    "timeout": 2},
                           "processes": resources({"echo": [{"id": "n", "cron": YEARLY,
                                                             "inputs": {"message": "m"}}]})})
    with pytest.raises(ArgoUnavailable):
        schedules.sync(manager)
    schedules.sync_in_background(manager).join(timeout=30)
    assert "schedules not synchronised with Argo: Argo Server unreachable" in caplog.text


# --- adopting runs as jobs (a real job store) ------------------------------------------------


def run_of(name: str, *, uid: str | None = None, phase: str = "Running", labels: dict | None = None,
           request: dict | None = None) -> Workflow:
    default_labels = {"pygeoapi.io/process-id": "echo", "pygeoapi.io/schedule-id": "nightly",
                      "workflows.argoproj.io/cron-workflow": "pygeoapi-echo-nightly"}
    annotations = {"pygeoapi.io/request": json.dumps(request or {"inputs": {"message": "hi"}, "outputs": None,
                                                                 "response": "document"})}
    return Workflow.model_validate({
        "metadata": {"name": name, "namespace": "argo", "uid": uid or str(uuid.uuid4()),
                     "creationTimestamp": "2026-03-01T06:00:01Z",
                     "labels": default_labels if labels is None else labels, "annotations": annotations},
        "spec": {"workflowTemplateRef": {"name": "echo"}},
        "status": {"phase": phase, "startedAt": "2026-03-01T06:00:02Z", "progress": "0/1"},
    })


@pytest.fixture
def adopter(tmp_path) -> ArgoManager:
    return ArgoManager({"name": "pygeoapi_argo.ArgoManager",
                        "connection": f"sqlite:///{tmp_path / 'jobs.db'}",
                        "argo": {"server": "http://127.0.0.1:9", "namespace": "argo"},
                        "processes": resources({})})


def test_adopt_records_a_run_of_a_schedule_as_a_job_of_its_process(adopter) -> None:
    run = run_of("pygeoapi-echo-nightly-1772344800", uid="6f1c1d7e-0000-4000-8000-000000000001")
    record = adopter.adopt(run)
    assert record is not None
    assert record.job_id == str(uuid.uuid5(uuid.UUID("0d7c5a3e-2f4b-5e8a-9c61-7f2b3d4e5a60"),
                                           "6f1c1d7e-0000-4000-8000-000000000001"))
    assert (record.process_id, record.workflow_name, record.schedule_id, record.status) == (
        "echo", "pygeoapi-echo-nightly-1772344800", "nightly", "running")
    assert record.inputs == {"message": "hi"} and record.response == "document"
    assert record.created.isoformat() == "2026-03-01T06:00:01+00:00"
    assert adopter.adopt(run) == adopter.store.get(record.job_id)  # idempotent
    assert adopter.store.list(limit=10)[1] == 1


def test_adopt_is_idempotent_under_concurrency(adopter) -> None:
    run = run_of("pygeoapi-echo-nightly-1772344860")
    found: list = []
    threads = [threading.Thread(target=lambda: found.append(adopter.adopt(run))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({record.job_id for record in found}) == 1 and None not in found
    assert adopter.store.list(limit=10)[1] == 1


@pytest.mark.parametrize("labels", [
    {"pygeoapi.io/process-id": "echo", "pygeoapi.io/job-id": "abc"},  # a job's own workflow
    {"pygeoapi.io/process-id": "not-configured", "pygeoapi.io/schedule-id": "x"},
    {"workflows.argoproj.io/cron-workflow": "unrelated"},
])
def test_adopt_leaves_workflows_that_are_not_runs_of_our_processes(adopter, labels) -> None:
    assert adopter.adopt(run_of("some-workflow", labels=labels)) is None
    assert adopter.store.list(limit=10)[1] == 0
