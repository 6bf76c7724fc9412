"""The emulator's CronWorkflows over real HTTP: the service (responses checked against Argo's swagger and
hera's models, hera's own client driving it) and the cron controller firing runs on a fast clock.

The emulator runs with ``--cron-tick 1``: one cron minute per real second, so ``* * * * *`` fires every
second. Steps are scripted (exact and fast), as in test_emulator_api.py.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime

import pytest
import requests
from argo_swagger import ArgoSession
from hera.exceptions import NotFound
from hera.workflows.models import (
    CreateCronWorkflowRequest,
    CronWorkflow,
    CronWorkflowList,
    CronWorkflowResumeRequest,
    CronWorkflowSuspendRequest,
    UpdateCronWorkflowRequest,
    Workflow,
)
from hera.workflows.service import WorkflowsService

from pygeoapi_argo.emulator.cron import CronController

SCRIPTED = "emulator.pygeoapi-argo.io/scripted"
LABEL_CRON = "workflows.argoproj.io/cron-workflow"
TICK = 1.0
FINISHED = ("Succeeded", "Failed", "Error")
_serial = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}-{time.monotonic_ns() % 10**6}"


def scripted_spec(script: dict | None = None) -> dict:
    annotations = {SCRIPTED: json.dumps(script or {"logs": ["run"]})}
    template = {"name": "main", "metadata": {"annotations": annotations},
                "container": {"image": "alpine:3.20", "command": ["true"]}}
    return {"entrypoint": "main", "templates": [template]}


def cron(name: str, schedule: str = "* * * * *", script: dict | None = None, **spec) -> dict:
    return {"metadata": {"name": name, "labels": {"test": name}},
            "spec": {"schedules": [schedule], "workflowSpec": scripted_spec(script), **spec}}


class Api:
    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.ns = url, namespace
        self.session = ArgoSession()
        self.hera = WorkflowsService(host=url + "/", namespace=namespace, session=self.session)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.url}/api/v1/cron-workflows/{self.ns}{path}", **kwargs)

    def create(self, body: dict) -> dict:
        resp = self.call("POST", "", json={"cronWorkflow": body})
        assert resp.status_code == 200, resp.text
        CronWorkflow(**resp.json())
        return resp.json()

    def get(self, name: str) -> dict:
        resp = self.call("GET", f"/{name}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def runs(self, name: str) -> list[dict]:
        resp = self.session.get(f"{self.url}/api/v1/workflows/{self.ns}",
                                params={"listOptions.labelSelector": f"{LABEL_CRON}={name}"})
        assert resp.status_code == 200, resp.text
        return resp.json().get("items") or []

    def wait_runs(self, name: str, count: int, *, finished: bool = False, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(name)
            done = [r for r in runs if (r.get("status") or {}).get("phase") in FINISHED]
            if len(done if finished else runs) >= count:
                return runs
            assert time.monotonic() < deadline, f"{name}: {len(runs)} runs, {len(done)} finished"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def api(start_emulator) -> Api:
    emulator = start_emulator("--cron-tick", str(TICK), "--sandbox", "none")
    return Api(emulator.url, emulator.namespace)


def error(resp: requests.Response, status: int, message: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == {400: 3, 404: 5, 409: 6}[status]
    assert message in resp.json()["message"], resp.json()["message"]


# --- the service ---------------------------------------------------------------------------------


def test_hera_drives_create_get_list_update_suspend_resume_delete(api: Api) -> None:
    name = unique("crud")
    body = cron(name, "0 0 1 1 *", timezone="Europe/Vienna")
    created = api.hera.create_cron_workflow(
        CreateCronWorkflowRequest(cron_workflow=CronWorkflow(**body), namespace=api.ns))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.spec.schedules == ["0 0 1 1 *"] and created.spec.timezone == "Europe/Vienna"

    got = api.hera.get_cron_workflow(name)
    assert got.metadata.uid == created.metadata.uid
    listed = api.hera.list_cron_workflows(label_selector=f"test={name}")
    assert isinstance(listed, CronWorkflowList) and [c.metadata.name for c in listed.items] == [name]

    got.spec.schedules = ["30 6 * * 1-5"]
    request = UpdateCronWorkflowRequest(cron_workflow=got, namespace=api.ns)
    updated = api.hera.update_cron_workflow(name, request)
    assert updated.spec.schedules == ["30 6 * * 1-5"]
    assert updated.metadata.generation == 2 and updated.metadata.uid == created.metadata.uid
    # the old resourceVersion no longer fits: Kubernetes' optimistic concurrency
    stale = api.call("PUT", f"/{name}", json={"cronWorkflow": {**body, "metadata": {
        "name": name, "resourceVersion": created.metadata.resource_version}}})
    error(stale, 409, "the object has been modified")
    unversioned = api.call("PUT", f"/{name}", json={"cronWorkflow": body})
    error(unversioned, 400, "metadata.resourceVersion")

    suspended = api.hera.suspend_cron_workflow(name, CronWorkflowSuspendRequest(name=name, namespace=api.ns))
    assert suspended.spec.suspend is True
    resumed = api.hera.resume_cron_workflow(name, CronWorkflowResumeRequest(name=name, namespace=api.ns))
    assert resumed.spec.suspend is False

    api.hera.delete_cron_workflow(name)
    with pytest.raises(NotFound):
        api.hera.get_cron_workflow(name)
    error(api.call("DELETE", f"/{name}"), 404, f'cronworkflows.argoproj.io "{name}" not found')


def test_create_refuses_what_argo_refuses(api: Api) -> None:
    name = unique("bad")
    both = cron(name)
    both["spec"]["schedule"] = "* * * * *"
    error(api.call("POST", "", json={"cronWorkflow": both}), 400,
          "cron workflow cant be configured with both Spec.Schedule and Spec.Schedules")
    error(api.call("POST", "", json={"cronWorkflow": cron(name, "* * * * * *")}), 400,
          "cron schedule * * * * * * is malformed: expected exactly 5 fields, found 6")
    error(api.call("POST", "", json={"cronWorkflow": cron(name, "61 * * * *")}), 400,
          "cron schedule 61 * * * * is malformed")
    error(api.call("POST", "", json={"cronWorkflow": cron(name, concurrencyPolicy="Sometimes")}), 400,
          "'Sometimes' is not a valid concurrencyPolicy")
    error(api.call("POST", "", json={"cronWorkflow": cron("x" * 53)}), 400,
          "must not be more than 52 characters long (currently 53)")
    missing = {"metadata": {"name": name}, "spec": {"schedules": ["@daily"], "workflowSpec": {
        "workflowTemplateRef": {"name": "echo"}}}}
    error(api.call("POST", "", json={"cronWorkflow": missing}), 400,
          "cannot validate Workflow: templates.execute inputs.parameters.message was not supplied")
    error(api.call("POST", "", json={"cronWorkflow": {"metadata": {"name": name}, "spec": {"schedules": 5}}}),
          400, "cannot unmarshal")
    error(api.call("POST", "", json={}), 400, "cronWorkflow is not found in Request body")
    assert api.call("GET", f"/{name}").status_code == 404  # nothing was stored

    created = api.create(cron(name, "@hourly"))
    error(api.call("POST", "", json={"cronWorkflow": cron(name, "@hourly")}), 409, "already exists")
    linted = api.call("POST", "/lint", json={"cronWorkflow": cron(unique("lint"), "bad")})
    error(linted, 400, "cron schedule bad is malformed")
    api.call("DELETE", f"/{created['metadata']['name']}")


# --- the controller ------------------------------------------------------------------------------


def test_runs_are_named_labelled_and_owned_like_argo_and_status_follows(api: Api) -> None:
    name = unique("fire")
    created = api.create(cron(name, successfulJobsHistoryLimit=5,
                              workflowMetadata={"labels": {"team": "geo"}, "annotations": {"note": "n"}}))
    runs = api.wait_runs(name, 2, finished=True)
    for run in runs:
        Workflow(**run)
        meta = run["metadata"]
        stamp = int(meta["name"].rsplit("-", 1)[1])
        assert meta["name"] == f"{name}-{stamp}" and stamp % 60 == 0  # "<cron>-<unix time>" of a minute
        assert meta["labels"][LABEL_CRON] == name and meta["labels"]["team"] == "geo"
        assert meta["annotations"]["note"] == "n"
        scheduled = datetime.fromisoformat(meta["annotations"]["workflows.argoproj.io/scheduled-time"])
        assert scheduled.timestamp() == stamp
        assert meta["ownerReferences"] == [{
            "apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "name": name,
            "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert len({r["metadata"]["name"] for r in runs}) == len(runs)
    deadline = time.monotonic() + 10
    while True:
        status = api.get(name).get("status") or {}
        if status.get("succeeded", 0) >= 2:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    newest = max(int(r["metadata"]["name"].rsplit("-", 1)[1]) for r in api.runs(name))
    last = datetime.fromisoformat(status["lastScheduledTime"].replace("Z", "+00:00")).timestamp()
    assert last >= newest - 60
    api.call("DELETE", f"/{name}")


def test_the_deprecated_single_schedule_fires_too(api: Api) -> None:
    name = unique("single")
    body = cron(name)
    body["spec"]["schedule"] = body["spec"].pop("schedules")[0]
    resp = api.call("POST", "", json={"cronWorkflow": body})  # hera 7's model requires ``schedules``
    assert resp.status_code == 200 and resp.json()["spec"]["schedule"] == "* * * * *", resp.text
    api.wait_runs(name, 1)
    api.call("DELETE", f"/{name}")


def test_suspend_stops_runs_and_resume_starts_them_again(api: Api) -> None:
    name = unique("suspend")
    api.create(cron(name))
    api.wait_runs(name, 1)
    api.call("PUT", f"/{name}/suspend", json={})
    time.sleep(TICK * 0.5)  # a run being submitted at this very moment may still land
    before = len(api.runs(name))
    time.sleep(TICK * 3)
    assert len(api.runs(name)) == before
    api.call("PUT", f"/{name}/resume", json={})
    api.wait_runs(name, before + 1)
    api.call("DELETE", f"/{name}")


def test_forbid_skips_runs_while_one_is_active(api: Api) -> None:
    name = unique("forbid")
    api.create(cron(name, script={"hang": True}, concurrencyPolicy="Forbid"))
    api.wait_runs(name, 1)
    time.sleep(TICK * 3)
    runs = api.runs(name)
    assert len(runs) == 1
    assert [ref["name"] for ref in api.get(name)["status"]["active"]] == [runs[0]["metadata"]["name"]]
    api.call("DELETE", f"/{name}")


def test_replace_terminates_the_active_run_before_the_next(api: Api) -> None:
    name = unique("replace")
    api.create(cron(name, script={"hang": True}, concurrencyPolicy="Replace"))
    runs = api.wait_runs(name, 2)
    oldest = min(runs, key=lambda r: r["metadata"]["name"])
    deadline = time.monotonic() + 10
    while (oldest.get("status") or {}).get("phase") not in ("Failed", "Error"):
        assert time.monotonic() < deadline, oldest.get("status")
        time.sleep(0.2)
        oldest = next(r for r in api.runs(name) if r["metadata"]["name"] == oldest["metadata"]["name"])
    assert oldest["spec"]["shutdown"] == "Terminate"
    api.call("DELETE", f"/{name}")


def test_history_limit_deletes_old_finished_runs(api: Api) -> None:
    name = unique("history")
    api.create(cron(name, successfulJobsHistoryLimit=1))
    deadline = time.monotonic() + 20
    while (api.get(name).get("status") or {}).get("succeeded", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # the controller trims on its next pass, as Argo's does: a run that just finished may wait for it.
    # Suspended, no new run finishes meanwhile, so the trimmed history is there to be seen however
    # loaded the machine is (suspension stops firing, not trimming).
    api.call("PUT", f"/{name}/suspend", json={"name": name, "namespace": api.ns}).raise_for_status()
    deadline = time.monotonic() + 20
    while True:
        succeeded = [r for r in api.runs(name) if r["status"].get("phase") == "Succeeded"]
        if len(succeeded) == 1:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.call("DELETE", f"/{name}")


def test_deleting_a_cron_workflow_deletes_its_runs(api: Api) -> None:
    name = unique("cascade")
    api.create(cron(name, script={"hang": True}))
    api.wait_runs(name, 1)
    assert api.call("DELETE", f"/{name}").json() == {}
    assert api.runs(name) == []


def test_schedules_follow_the_timezone() -> None:
    """Plain data: 09:00 in Tokyo is midnight UTC; without a timezone, UTC."""
    after = datetime(2026, 1, 1, 0, 30, tzinfo=UTC).timestamp()
    tokyo = CronController._following({"schedules": ["0 9 * * *"], "timezone": "Asia/Tokyo"}, after)
    assert datetime.fromtimestamp(tokyo, UTC) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    utc = CronController._following({"schedule": "0 9 * * *"}, after)
    assert datetime.fromtimestamp(utc, UTC) == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    both = CronController._following({"schedules": ["0 9 * * *", "0 3 * * *"]}, after)
    assert datetime.fromtimestamp(both, UTC) == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
