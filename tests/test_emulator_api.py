"""The emulator's HTTP API over real HTTP: every response checked against Argo's swagger and hera's models.

hera's own ``WorkflowsService`` drives the calls it has; raw requests cover what hera hides (error
bodies, streaming logs, bad input). Workflows are scripted steps (the executor's scripted mode), so
their logs and timing are exact.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator

import pytest
import requests
from argo_swagger import ArgoSession, stream_lines, validate
from hera.exceptions import AlreadyExists, NotFound
from hera.workflows.models import (
    ClusterWorkflowTemplate,
    ClusterWorkflowTemplateCreateRequest,
    ClusterWorkflowTemplateList,
    ClusterWorkflowTemplateUpdateRequest,
    InfoResponse,
    SubmitOpts,
    Version,
    Workflow,
    WorkflowCreateRequest,
    WorkflowList,
    WorkflowStopRequest,
    WorkflowSubmitRequest,
    WorkflowTemplate,
    WorkflowTemplateCreateRequest,
    WorkflowTemplateList,
    WorkflowTemplateUpdateRequest,
    WorkflowTerminateRequest,
)
from hera.workflows.service import WorkflowsService

SCRIPTED = "emulator.pygeoapi-argo.io/scripted"
FINISHED = ("Succeeded", "Failed", "Error")
_serial = itertools.count()


class Api:
    """Raw calls to one emulator through a validating session."""

    def __init__(self, url: str, namespace: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.ns = namespace
        self.session = ArgoSession(headers)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, **kwargs)

    def workflow(self, name: str, **params) -> dict:
        resp = self.call("GET", f"/api/v1/workflows/{self.ns}/{name}", params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def create(self, workflow: dict) -> dict:
        resp = self.call("POST", f"/api/v1/workflows/{self.ns}", json={"workflow": workflow})
        assert resp.status_code == 200, resp.text
        Workflow(**resp.json())
        return resp.json()

    def wait(self, name: str, phases: tuple[str, ...] = FINISHED, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            workflow = self.workflow(name)
            if workflow.get("status", {}).get("phase") in phases:
                return workflow
            assert time.monotonic() < deadline, f"{name} still {workflow.get('status', {}).get('phase')!r}"
            time.sleep(0.2)

    def logs(self, name: str, **params) -> list[dict]:
        resp = self.call("GET", f"/api/v1/workflows/{self.ns}/{name}/log", params=params, stream=True)
        assert resp.status_code == 200, resp.text
        return [line["result"] for line in stream_lines(resp)]


def error(resp: requests.Response, status: int, code: int, message: str | None = None) -> str:
    """Assert Argo's error body (the session already checked it against the swagger)."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body["message"]


def scripted(script: dict, *, name: str | None = None, labels: dict[str, str] | None = None, **spec) -> dict:
    """A one-step workflow whose step logs, sleeps, hangs or exits exactly as ``script`` says."""
    meta: dict = {"name": name} if name else {"generateName": "scripted-"}
    if labels:
        meta["labels"] = labels
    template = {"name": "main", "metadata": {"annotations": {SCRIPTED: json.dumps(script)}},
                "container": {"image": "alpine:3.20", "command": ["true"]}}
    return {"metadata": meta, "spec": {"entrypoint": "main", "templates": [template], **spec}}


def run_label() -> dict[str, str]:
    """A label unique to one test, so lists only see that test's workflows."""
    return {"test-run": f"r{next(_serial)}-{time.monotonic_ns() % 10**8}"}


@pytest.fixture(scope="module")
def api(emulator) -> Api:
    return Api(emulator.url, emulator.namespace, emulator.headers())


@pytest.fixture(scope="module")
def hera(emulator, api: Api) -> WorkflowsService:
    return WorkflowsService(host=emulator.url, namespace=emulator.namespace, token=emulator.token,
                            session=api.session)


def test_the_validator_rejects_what_argo_would_not_send():
    validate({"metadata": {}, "items": []}, "io.argoproj.workflow.v1alpha1.WorkflowList")
    validate({"retryStrategy": {"limit": 10}}, "io.argoproj.workflow.v1alpha1.Template")  # IntOrString
    with pytest.raises(AssertionError, match="items"):
        validate({"metadata": {}, "items": 5}, "io.argoproj.workflow.v1alpha1.WorkflowList")
    with pytest.raises(AssertionError, match="spec"):
        validate({"metadata": {"name": "x"}}, "io.argoproj.workflow.v1alpha1.Workflow")


def test_version_and_info(api: Api, hera: WorkflowsService):
    assert hera.get_version().version == "v3.7.18"
    assert isinstance(hera.get_info(), InfoResponse)
    resp = api.call("GET", "/api/v1/version")
    assert Version(**resp.json()).git_tag == "v3.7.18"
    assert api.session.validated > 0


def test_create_get_delete_through_hera(api: Api, hera: WorkflowsService):
    created = hera.create_workflow(WorkflowCreateRequest(workflow=Workflow(**scripted({"logs": ["hi"]}))))
    name = created.metadata.name
    assert re.fullmatch(r"scripted-[a-z0-9]{5}", name)
    assert created.metadata.namespace == api.ns
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert not (created.status and created.status.phase)  # the controller has not picked it up yet
    assert api.wait(name)["status"]["phase"] == "Succeeded"
    assert hera.get_workflow(name).status.phase == "Succeeded"
    hera.delete_workflow(name)
    with pytest.raises(NotFound):
        hera.get_workflow(name)
    error(api.call("GET", f"/api/v1/workflows/{api.ns}/{name}"), 404, 5,
          f'workflows.argoproj.io "{name}" not found')
    error(api.call("DELETE", f"/api/v1/workflows/{api.ns}/{name}"), 404, 5)


def test_create_refuses_bad_input(api: Api):
    path = f"/api/v1/workflows/{api.ns}"
    error(api.call("POST", path, data="{not json", headers={"Content-Type": "application/json"}), 400, 3)
    error(api.call("POST", path, json=["a list"]), 400, 3)
    error(api.call("POST", path, json={}), 400, 3, "workflow body not specified")
    wrong_type = scripted({}, name="wrong-type")
    wrong_type["spec"]["entrypoint"] = 5
    assert "entrypoint" in error(api.call("POST", path, json={"workflow": wrong_type}), 400, 3)
    no_entry = scripted({}, name="no-entry")
    del no_entry["spec"]["entrypoint"]
    error(api.call("POST", path, json={"workflow": no_entry}), 400, 3, "spec.entrypoint is required")
    bad_name = scripted({}, name="Bad_Name")
    assert "RFC 1123" in error(api.call("POST", path, json={"workflow": bad_name}), 400, 3)
    no_name = scripted({})
    del no_name["metadata"]["generateName"]
    resp = api.call("POST", path, json={"workflow": no_name})
    assert "name or generateName is required" in error(resp, 400, 3)
    error(api.call("POST", path, json={"workflow": scripted({}, name="x", labels={"bad key!": "v"})}), 400, 3)
    other_ns = scripted({}, name="other-ns")
    other_ns["metadata"]["namespace"] = "elsewhere"
    error(api.call("POST", path, json={"workflow": other_ns}), 400, 3)


def test_duplicate_names_conflict_and_unknown_fields_are_dropped(api: Api):
    workflow = scripted({}, name="dup-check")
    workflow["spec"]["notAnArgoField"] = True
    created = api.create(workflow)
    assert "notAnArgoField" not in created["spec"]
    resp = api.call("POST", f"/api/v1/workflows/{api.ns}", json={"workflow": scripted({}, name="dup-check")})
    error(resp, 409, 6, 'workflows.argoproj.io "dup-check" already exists')
    api.wait("dup-check")
    api.call("DELETE", f"/api/v1/workflows/{api.ns}/dup-check")


def test_workflow_template_ref_to_a_missing_template_is_not_found(api: Api):
    path = f"/api/v1/workflows/{api.ns}"
    ref = {"metadata": {"generateName": "ref-"}, "spec": {"workflowTemplateRef": {"name": "nope"}}}
    error(api.call("POST", path, json={"workflow": ref}), 404, 5,
          'workflowtemplates.argoproj.io "nope" not found')
    ref["spec"]["workflowTemplateRef"]["clusterScope"] = True
    error(api.call("POST", path, json={"workflow": ref}), 404, 5,
          'clusterworkflowtemplates.argoproj.io "nope" not found')
    both = {"metadata": {"generateName": "ref-"},
            "spec": {"workflowTemplateRef": {"name": "echo"}, "templates": scripted({})["spec"]["templates"]}}
    error(api.call("POST", path, json={"workflow": both}), 400, 3,
          "Templates is invalid field in spec if workflow referred WorkflowTemplate reference")


def test_submit_from_a_workflow_template(api: Api, hera: WorkflowsService):
    opts = SubmitOpts(parameters=["message=hello"], labels="team=geo,tier=test", annotations="note=yes")
    submitted = hera.submit_workflow(WorkflowSubmitRequest(
        resource_kind="WorkflowTemplate", resource_name="echo", submit_options=opts))
    name = submitted.metadata.name
    assert name.startswith("echo-") and submitted.metadata.generate_name == "echo-"
    assert submitted.metadata.labels == {"workflows.argoproj.io/workflow-template": "echo", "team": "geo",
                                         "tier": "test"}
    assert submitted.metadata.annotations == {"note": "yes"}
    raw = api.workflow(name)
    assert raw["spec"]["workflowTemplateRef"] == {"name": "echo"}
    assert raw["spec"]["arguments"] == {"parameters": [{"name": "message", "value": "hello"}]}
    named = hera.submit_workflow(WorkflowSubmitRequest(
        resource_kind="WorkflowTemplate", resource_name="echo",
        submit_options=SubmitOpts(name="echo-by-name", entry_point="execute", parameters=["message=x"])))
    assert named.metadata.name == "echo-by-name" and named.spec.entrypoint == "execute"
    for workflow in (name, "echo-by-name"):
        api.wait(workflow)
        hera.delete_workflow(workflow)


def test_submit_refuses_what_argo_refuses(api: Api):
    path = f"/api/v1/workflows/{api.ns}/submit"
    missing = {"resourceKind": "WorkflowTemplate", "resourceName": "missing"}
    error(api.call("POST", path, json=missing), 404, 5, 'workflowtemplates.argoproj.io "missing" not found')
    error(api.call("POST", path, json={"resourceKind": "Pod", "resourceName": "echo"}), 400, 3,
          "Resource kind 'Pod' is not supported for submitting")
    error(api.call("POST", path, json={"resourceKind": "WorkflowTemplate", "resourceName": "echo"}), 400, 3,
          "templates.execute inputs.parameters.message was not supplied")
    bad_param = {"resourceKind": "WorkflowTemplate", "resourceName": "echo",
                 "submitOptions": {"parameters": ["no-equals-sign"]}}
    error(api.call("POST", path, json=bad_param), 400, 3,
          "expected parameter of the form: NAME=VALUE. Received: no-equals-sign")
    dry = {"resourceKind": "WorkflowTemplate", "resourceName": "echo",
           "submitOptions": {"parameters": ["message=m"], "dryRun": True}}
    before = len(api.call("GET", f"/api/v1/workflows/{api.ns}").json()["items"])
    assert api.call("POST", path, json=dry).json()["metadata"]["generateName"] == "echo-"
    assert len(api.call("GET", f"/api/v1/workflows/{api.ns}").json()["items"]) == before


def test_submit_from_a_cluster_workflow_template(api: Api, hera: WorkflowsService):
    spec = scripted({"logs": ["from the cluster"]})["spec"]
    hera.create_cluster_workflow_template(ClusterWorkflowTemplateCreateRequest(
        template=ClusterWorkflowTemplate(metadata={"name": "cluster-scripted"}, spec=spec)))
    submitted = hera.submit_workflow(WorkflowSubmitRequest(resource_kind="ClusterWorkflowTemplate",
                                                           resource_name="cluster-scripted"))
    label = "workflows.argoproj.io/cluster-workflow-template"
    assert submitted.metadata.labels == {label: "cluster-scripted"}
    assert api.workflow(submitted.metadata.name)["spec"]["workflowTemplateRef"] == {
        "name": "cluster-scripted", "clusterScope": True}
    assert api.wait(submitted.metadata.name)["status"]["phase"] == "Succeeded"
    hera.delete_workflow(submitted.metadata.name)
    hera.delete_cluster_workflow_template("cluster-scripted")


@pytest.fixture(scope="module")
def labelled(api: Api) -> Iterator[tuple[str, list[str]]]:
    """Five hanging workflows with labels, created in order; deleted afterwards."""
    run = run_label()["test-run"]
    labels = [{"colour": "red", "size": "1"}, {"colour": "red", "size": "2"}, {"colour": "blue", "size": "3"},
              {"colour": "green"}, {"size": "5"}]
    names = []
    for i, extra in enumerate(labels):
        names.append(api.create(scripted({"hang": True}, name=f"{run}-{i}", labels={"test-run": run, **extra})
                                )["metadata"]["name"])
    yield run, names
    for name in names:
        api.call("DELETE", f"/api/v1/workflows/{api.ns}/{name}")


@pytest.mark.parametrize(("selector", "expected"), [
    ("colour=red", [0, 1]),
    ("colour==red", [0, 1]),
    ("colour!=red", [2, 3, 4]),
    ("colour in (red,blue)", [0, 1, 2]),
    ("colour notin (red, blue)", [3, 4]),
    ("colour", [0, 1, 2, 3]),
    ("!colour", [4]),
    ("colour=red,size=2", [1]),
    ("size>2", [2, 4]),
    ("size<2", [0]),
])
def test_list_label_selectors(hera: WorkflowsService, labelled, selector: str, expected: list[int]):
    run, names = labelled
    listed = hera.list_workflows(label_selector=f"test-run={run},{selector}")
    assert isinstance(listed, WorkflowList)
    assert sorted(wf.metadata.name for wf in listed.items or []) == [names[i] for i in expected]


@pytest.mark.parametrize("selector", ["colour=", "colour in red", "colour in (red", "=red", "colour=a b",
                                      "size>x", "a,", "bad key=1"])
def test_list_refuses_broken_label_selectors(api: Api, selector: str):
    resp = api.call("GET", f"/api/v1/workflows/{api.ns}", params={"listOptions.labelSelector": selector})
    if selector == "colour=":  # an empty value is valid Kubernetes syntax
        assert resp.status_code == 200
    else:
        error(resp, 400, 3)


def test_list_field_selectors_and_name_filter(api: Api, hera: WorkflowsService, labelled):
    run, names = labelled

    def listed(**params) -> list[str]:
        resp = api.call("GET", f"/api/v1/workflows/{api.ns}",
                        params={"listOptions.labelSelector": f"test-run={run}", **params})
        assert resp.status_code == 200, resp.text
        return sorted(wf["metadata"]["name"] for wf in resp.json()["items"])

    assert listed(**{"listOptions.fieldSelector": f"metadata.name={names[2]}"}) == [names[2]]
    assert listed(**{"listOptions.fieldSelector": f"metadata.name=={names[2]}"}) == [names[2]]
    others = sorted(set(names) - {names[2]})
    assert listed(**{"listOptions.fieldSelector": f"metadata.name!={names[2]}"}) == others
    assert listed(**{"listOptions.fieldSelector": f"metadata.namespace={api.ns}"}) == sorted(names)
    prefix = {"listOptions.fieldSelector": f"metadata.name={run}", "nameFilter": "Prefix"}
    assert listed(**prefix) == sorted(names)
    contains = {"listOptions.fieldSelector": f"metadata.name={run}-3", "nameFilter": "Contains"}
    assert listed(**contains) == [names[3]]
    path = f"/api/v1/workflows/{api.ns}"
    error(api.call("GET", path, params={"listOptions.fieldSelector": "spec.entrypoint=x"}),
          400, 3, "unsupported requirement spec.entrypoint=x")
    resp = api.call("GET", path, params={"listOptions.fieldSelector": "metadata.namespace=other"})
    assert "contradict" in error(resp, 400, 3)
    assert hera.list_workflows(namespace="no-such-namespace").items in (None, [])


def test_list_pages_newest_first(api: Api, labelled):
    run, names = labelled
    seen: list[str] = []
    cont = None
    for _ in range(10):
        params = {"listOptions.labelSelector": f"test-run={run}", "listOptions.limit": "2"}
        if cont:
            params["listOptions.continue"] = cont
        page = WorkflowList(**api.call("GET", f"/api/v1/workflows/{api.ns}", params=params).json())
        seen += [wf.metadata.name for wf in page.items or []]
        cont = page.metadata.continue_
        if not cont:
            break
        assert cont == str(len(seen))
    assert seen == names[::-1]
    remaining = api.call("GET", f"/api/v1/workflows/{api.ns}", params={
        "listOptions.labelSelector": f"test-run={run}", "listOptions.limit": "2",
        "listOptions.fieldSelector": "ext.showRemainingItemCount=true"}).json()
    assert remaining["metadata"]["remainingItemCount"] == 3
    for bad, message in (("x", "listOptions.continue must be int"), ("-1", "listOptions.continue must >= 0")):
        resp = api.call("GET", f"/api/v1/workflows/{api.ns}", params={"listOptions.continue": bad})
        error(resp, 400, 3, message)
    error(api.call("GET", f"/api/v1/workflows/{api.ns}", params={"listOptions.limit": "many"}), 400, 3)


def test_fields_projection_and_exclusion(api: Api, hera: WorkflowsService, labelled):
    run, names = labelled
    only = api.workflow(names[0], fields="metadata.name,status.phase")
    assert only == {"metadata": {"name": names[0]}, "spec": {}, "status": {"phase": "Running"}}
    Workflow(**only)
    without = api.workflow(names[0], fields="-status,metadata.managedFields")
    assert "status" not in without
    assert without["metadata"]["name"] == names[0] and without["spec"]["templates"]
    assert hera.get_workflow(names[0], fields="metadata.name").metadata.name == names[0]
    listed = api.call("GET", f"/api/v1/workflows/{api.ns}", params={
        "listOptions.labelSelector": f"test-run={run}", "listOptions.limit": "1",
        "fields": "metadata.continue,items.metadata.name"}).json()
    assert listed == {"metadata": {"continue": "1"}, "items": [{"metadata": {"name": names[-1]}, "spec": {}}]}
    WorkflowList(**listed)
    excluded = api.call("GET", f"/api/v1/workflows/{api.ns}", params={
        "listOptions.labelSelector": f"test-run={run}", "fields": "-items.spec,items.status"}).json()
    assert all(set(item) == {"metadata", "spec"} and item["spec"] == {} for item in excluded["items"])


def test_stop_and_terminate(api: Api, hera: WorkflowsService):
    for strategy, call, request in (("Stop", hera.stop_workflow, WorkflowStopRequest()),
                                    ("Terminate", hera.terminate_workflow, WorkflowTerminateRequest())):
        name = api.create(scripted({"hang": True}))["metadata"]["name"]
        api.wait(name, ("Running",))
        answered = call(name, request)
        assert answered.spec.shutdown == strategy
        finished = api.wait(name)
        assert finished["status"]["phase"] == "Failed"
        assert finished["status"]["message"] == f"Stopped with strategy '{strategy}'"
        path = f"/api/v1/workflows/{api.ns}/{name}/{strategy.lower()}"
        error(api.call("PUT", path, json={}), 500, 13,
              f'cannot shutdown a completed workflow: workflow: "{name}", namespace: "{api.ns}"')
        hera.delete_workflow(name)
    error(api.call("PUT", f"/api/v1/workflows/{api.ns}/nothing-here/stop", json={}), 404, 5)
    error(api.call("PUT", f"/api/v1/workflows/{api.ns}/nothing-here/terminate"), 404, 5)


def test_logs(api: Api):
    name = api.create(scripted({"logs": ["alpha", "beta matches", "gamma"]}))["metadata"]["name"]
    api.wait(name)
    lines = api.logs(name, **{"logOptions.container": "main"})
    assert [line["content"] for line in lines] == ["alpha", "beta matches", "gamma"]
    pod = lines[0]["podName"]
    assert {line["podName"] for line in lines} == {pod} and pod.startswith(name)
    assert [line["content"] for line in api.logs(name, grep="match")] == ["beta matches"]
    assert [line["content"] for line in api.logs(name, **{"logOptions.tailLines": "1"})] == ["gamma"]
    stamped = api.logs(name, **{"logOptions.timestamps": "true"})[0]["content"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z alpha", stamped)
    assert api.logs(name, podName=pod) == lines
    assert api.logs(name, podName="not-a-pod") == []
    assert api.logs(name, **{"logOptions.container": "wait"}) == []
    resp = api.call("GET", f"/api/v1/workflows/{api.ns}/{name}/{pod}/log", stream=True)
    assert [line["result"] for line in stream_lines(resp)] == lines
    error(api.call("GET", f"/api/v1/workflows/{api.ns}/no-such-workflow/log"), 404, 5)
    error(api.call("GET", f"/api/v1/workflows/{api.ns}/{name}/log", params={"grep": "("}), 400, 3)
    api.call("DELETE", f"/api/v1/workflows/{api.ns}/{name}")


def test_follow_streams_until_the_workflow_ends(api: Api):
    name = api.create(scripted({"logs": ["first", "second"], "sleep": 1.5}))["metadata"]["name"]
    resp = api.call("GET", f"/api/v1/workflows/{api.ns}/{name}/log",
                    params={"logOptions.follow": "true", "logOptions.container": "main"}, stream=True)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert [line["result"]["content"] for line in stream_lines(resp)] == ["first", "second"]
    assert api.workflow(name)["status"]["phase"] == "Succeeded"  # the stream ended with the workflow
    api.call("DELETE", f"/api/v1/workflows/{api.ns}/{name}")


def test_a_workflow_without_pods_has_an_empty_log(api: Api):
    name = api.create(scripted({"logs": ["gone soon"]}, podGC={"strategy": "OnWorkflowCompletion"}))
    name = name["metadata"]["name"]
    api.wait(name)
    deadline = time.monotonic() + 10
    while api.logs(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api.logs(name) == []
    api.call("DELETE", f"/api/v1/workflows/{api.ns}/{name}")


def test_workflow_templates_crud(api: Api, hera: WorkflowsService):
    spec = scripted({})["spec"]
    template = WorkflowTemplate(metadata={"name": "crud-demo", "labels": {"kind": "demo"}}, spec=spec)
    created = hera.create_workflow_template(WorkflowTemplateCreateRequest(template=template))
    assert created.metadata.namespace == api.ns and created.metadata.resource_version
    with pytest.raises(AlreadyExists):
        hera.create_workflow_template(WorkflowTemplateCreateRequest(template=template))
    got = hera.get_workflow_template("crud-demo")
    assert got.spec.entrypoint == "main"
    listed = hera.list_workflow_templates(label_selector="kind=demo")
    assert isinstance(listed, WorkflowTemplateList)
    assert [t.metadata.name for t in listed.items] == ["crud-demo"]
    names = [t["metadata"]["name"] for t in api.call(
        "GET", f"/api/v1/workflow-templates/{api.ns}", params={"namePattern": "ech"}).json()["items"]]
    assert names == ["echo"]
    got.spec.entrypoint = "main"
    got.metadata.annotations = {"changed": "yes"}
    updated = hera.update_workflow_template("crud-demo", WorkflowTemplateUpdateRequest(template=got))
    assert updated.metadata.annotations == {"changed": "yes"}
    assert updated.metadata.resource_version != got.metadata.resource_version
    stale = api.call("PUT", f"/api/v1/workflow-templates/{api.ns}/crud-demo",
                     json={"template": got.model_dump(mode="json", by_alias=True, exclude_none=True)})
    assert "the object has been modified" in error(stale, 409, 6)
    hera.delete_workflow_template("crud-demo")
    with pytest.raises(NotFound):
        hera.get_workflow_template("crud-demo")
    error(api.call("DELETE", f"/api/v1/workflow-templates/{api.ns}/crud-demo"), 404, 5,
          'workflowtemplates.argoproj.io "crud-demo" not found')


def test_cluster_workflow_templates_crud(api: Api, hera: WorkflowsService):
    template = ClusterWorkflowTemplate(metadata={"name": "crud-cluster"}, spec=scripted({})["spec"])
    created = hera.create_cluster_workflow_template(ClusterWorkflowTemplateCreateRequest(template=template))
    assert created.metadata.namespace is None
    again = {"template": template.model_dump(mode="json", by_alias=True, exclude_none=True)}
    error(api.call("POST", "/api/v1/cluster-workflow-templates", json=again), 409, 6,
          'clusterworkflowtemplates.argoproj.io "crud-cluster" already exists')
    listed = hera.list_cluster_workflow_templates()
    assert isinstance(listed, ClusterWorkflowTemplateList)
    assert "crud-cluster" in [t.metadata.name for t in listed.items]
    got = hera.get_cluster_workflow_template("crud-cluster")
    got.metadata.labels = {"updated": "true"}
    updated = hera.update_cluster_workflow_template(
        "crud-cluster", ClusterWorkflowTemplateUpdateRequest(template=got))
    assert updated.metadata.labels == {"updated": "true"}
    hera.delete_cluster_workflow_template("crud-cluster")
    error(api.call("GET", "/api/v1/cluster-workflow-templates/crud-cluster"), 404, 5,
          'clusterworkflowtemplates.argoproj.io "crud-cluster" not found')


def test_unknown_paths_are_json_404s(api: Api):
    for method, path in (("GET", "/api/v1/nothing"), ("GET", "/"), ("POST", "/api/v1/version"),
                         ("GET", f"/api/v1/workflows/{api.ns}/a/b/c/d")):
        error(api.call(method, path), 404, 5)


def test_bearer_token(start_emulator):
    emulator = start_emulator(token="t0ken-for-tests", templates=None)
    anonymous = Api(emulator.url, emulator.namespace)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "t0ken-for-tests"}):
        resp = anonymous.call("GET", "/api/v1/version", headers=headers)
        assert "token not valid" in error(resp, 401, 16)
    error(anonymous.call("GET", f"/api/v1/workflows/{emulator.namespace}"), 401, 16)
    error(anonymous.call("GET", "/api/v1/nothing"), 404, 5)  # routing comes first, as in Argo's gateway
    hera = WorkflowsService(host=emulator.url, namespace=emulator.namespace, token=emulator.token,
                            session=ArgoSession())
    assert hera.get_version().version == "v3.7.18"
    assert hera.list_workflow_templates().items in (None, [])
