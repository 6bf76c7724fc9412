"""The six upstream Argo examples (tests/reference/argo/examples) run in the emulator as on a cluster."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml
from emulator_harness import log, nodes_by_name, run

from pygeoapi_argo.emulator.controller import Controller, ControllerSettings
from pygeoapi_argo.emulator.nodes import node_id, pod_name
from pygeoapi_argo.emulator.state import Cluster

EXAMPLES = Path(__file__).resolve().parent / "reference" / "argo" / "examples"


def example(name: str) -> list[dict]:
    return list(yaml.safe_load_all((EXAMPLES / f"{name}.yaml").read_text()))


@pytest.fixture
def engine(s3, monkeypatch: pytest.MonkeyPatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    cluster = Cluster()
    # output-artifact-s3 names the secret my-s3-credentials: here it holds the test S3's keys
    secrets = {"my-s3-credentials": {"accessKey": s3.access_key, "secretKey": s3.secret_key}}
    controller = Controller(
        cluster, ControllerSettings(artifacts="s3://artifacts", s3_endpoint=s3.endpoint_url, secrets=secrets)
    )
    yield cluster, controller
    controller.close()


def test_dag_diamond(engine) -> None:
    cluster, controller = engine
    wf = run(cluster, controller, example("dag-diamond")[0])
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded" and wf["status"]["progress"] == "4/4"
    nodes = nodes_by_name(wf)
    assert nodes[name]["type"] == "DAG" and nodes[name]["children"] == [node_id(name, f"{name}.A")]
    assert sorted(nodes[f"{name}.A"]["children"]) == sorted(node_id(name, f"{name}.{t}") for t in "BC")
    assert nodes[f"{name}.B"]["children"] == [node_id(name, f"{name}.D")]
    for task in "ABCD":
        assert nodes[f"{name}.{task}"]["displayName"] == task
        assert log(cluster, "argo", pod_name(name, f"{name}.{task}", "echo")) == [task]


def test_output_parameter(engine) -> None:
    cluster, controller = engine
    wf = run(cluster, controller, example("output-parameter")[0])
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    nodes = nodes_by_name(wf)
    generated = nodes[f"{name}[0].generate-parameter"]["outputs"]["parameters"][0]
    assert generated["value"] == "hello world"
    assert log(cluster, "argo", pod_name(name, f"{name}[1].consume-parameter", "print-message")) == [
        "hello world"
    ]


def test_exit_handlers(engine) -> None:
    cluster, controller = engine
    wf = run(cluster, controller, example("exit-handlers")[0])
    name = wf["metadata"]["name"]
    assert (wf["status"]["phase"], wf["status"]["message"]) == ("Failed", "Error (exit code 1)")
    nodes = nodes_by_name(wf)
    assert nodes[f"{name}.onExit"]["displayName"] == f"{name}.onExit"
    assert nodes[f"{name}.onExit[0].celebrate"]["phase"] == "Skipped"
    assert nodes[f"{name}.onExit[0].cry"]["phase"] == "Succeeded"
    assert log(cluster, "argo", pod_name(name, f"{name}.onExit[0].cry", "cry")) == ["boohoo!"]
    email = log(cluster, "argo", pod_name(name, f"{name}.onExit[0].notify", "send-email"))[0]
    assert email.startswith(f"send e-mail: {name} Failed ")


def test_global_outputs(engine, s3) -> None:
    cluster, controller = engine
    wf = run(cluster, controller, example("global-outputs")[0])
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    outputs = wf["status"]["outputs"]
    assert outputs["parameters"] == [{"name": "my-global-param", "value": "hello world"}]
    pod = pod_name(name, f"{name}[0].generate", "global-output")
    assert outputs["artifacts"] == [{"name": "my-global-art", "s3": {"key": f"{name}/{pod}/hello-art.tgz"}}]
    body = s3.client().get_object(Bucket="artifacts", Key=f"{name}/{pod}/hello-art.tgz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("hello_world.txt").read() == b"hello world"
    for prefix in (f"{name}[1].consume-globals[0]", f"{name}.onExit[0]"):
        assert log(
            cluster, "argo", pod_name(name, f"{prefix}.consume-global-param", "consume-global-param")
        ) == ["hello world"]
        assert log(cluster, "argo", pod_name(name, f"{prefix}.consume-global-art", "consume-global-art")) == [
            "hello world"
        ]


def test_output_artifact_s3(engine, s3) -> None:
    """The explicit location keeps bucket, key and secret credentials; the endpoint is the emulator's."""
    cluster, controller = engine
    client = s3.client()
    if "my-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="my-bucket")
    wf = run(cluster, controller, example("output-artifact-s3")[0])
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    artifact = wf["status"]["nodes"][wf["metadata"]["name"]]["outputs"]["artifacts"][0]
    assert artifact["s3"]["key"] == "path/in/bucket/hello_world.txt.tgz"
    assert artifact["s3"]["bucket"] == "my-bucket"
    body = client.get_object(Bucket="my-bucket", Key="path/in/bucket/hello_world.txt.tgz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("tmp/hello_world.txt").read() == b"hello world\n"


def test_workflow_templates(engine) -> None:
    cluster, controller = engine
    for template in example("workflow-template-templates"):
        cluster.workflow_templates[("argo", template["metadata"]["name"])] = template
    wf = run(
        cluster,
        controller,
        {
            "metadata": {"generateName": "submittable-"},
            "spec": {
                "workflowTemplateRef": {"name": "workflow-template-submittable"},
                "arguments": {"parameters": [{"name": "message", "value": "from submit"}]},
            },
        },
    )
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    assert wf["status"]["storedWorkflowTemplateSpec"]["entrypoint"] == "print-message"
    assert log(cluster, "argo", name) == ["from submit"]
    wf = run(
        cluster,
        controller,
        {
            "metadata": {"generateName": "refs-"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [
                                {
                                    "name": "steps",
                                    "templateRef": {
                                        "name": "workflow-template-inner-steps",
                                        "template": "inner-steps",
                                    },
                                },
                                {
                                    "name": "dag",
                                    "templateRef": {
                                        "name": "workflow-template-inner-dag",
                                        "template": "inner-diamond",
                                    },
                                },
                                {
                                    "name": "flaky",
                                    "templateRef": {
                                        "name": "workflow-template-random-fail-template",
                                        "template": "random-fail-template",
                                    },
                                },
                            ]
                        ],
                    }
                ],
            },
        },
    )
    name = wf["metadata"]["name"]
    nodes = nodes_by_name(wf)
    assert nodes[f"{name}[0].steps"]["phase"] == "Succeeded"
    assert nodes[f"{name}[0].dag"]["phase"] == "Succeeded"
    assert nodes[f"{name}[0].steps"]["templateRef"]["template"] == "inner-steps"
    inner = f"{name}[0].steps[1].inner-hello2a"
    assert log(cluster, "argo", pod_name(name, inner, "print-message")) == ["inner-hello2a"]
    flaky = nodes[f"{name}[0].flaky"]
    assert flaky["type"] == "Retry" and 1 <= len(flaky["children"]) <= 11
