"""The emulator's engine in-process: node tree, names, substitution, lifecycle, executor sandbox."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from emulator_harness import log, nodes_by_name, run, submit, wait_phase

from pygeoapi_argo.emulator.controller import Controller, ControllerSettings, WorkflowFinished
from pygeoapi_argo.emulator.nodes import display_name, fnv32a, item_node_name, node_id, pod_name
from pygeoapi_argo.emulator.state import Cluster
from pygeoapi_argo.emulator.templating import ExpressionError, evaluate_depends, evaluate_when

SCRIPTED = "emulator.pygeoapi-argo.io/scripted"


def scripted(name: str, **behaviour) -> dict:
    return {
        "name": name,
        "metadata": {"annotations": {SCRIPTED: json.dumps(behaviour)}},
        "container": {"image": "busybox", "command": ["false"]},
    }


def workflow(entrypoint: str, *templates: dict, **spec) -> dict:
    return {
        "metadata": {"generateName": "t-"},
        "spec": {"entrypoint": entrypoint, "templates": list(templates), **spec},
    }


@pytest.fixture
def engine(s3, monkeypatch: pytest.MonkeyPatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    cluster = Cluster()
    controller = Controller(
        cluster,
        ControllerSettings(
            artifacts="s3://artifacts/runs",
            s3_endpoint=s3.endpoint_url,
            secrets={"demo-credentials": {"api-token": "s3cr3t"}},
        ),
    )
    yield cluster, controller
    controller.close()


def test_names_match_argo() -> None:
    # recorded from a real controller log (argo-workflows issue 9883): node id and pod name of a retry child
    name = "credcase-e2e-pr-14-8kx9w(0).init-metadata"
    assert node_id("credcase-e2e-pr-14-8kx9w", name) == "credcase-e2e-pr-14-8kx9w-1851513782"
    assert (
        pod_name("credcase-e2e-pr-14-8kx9w", name, "init-metadata")
        == "credcase-e2e-pr-14-8kx9w-init-metadata-1851513782"
    )
    assert fnv32a("") == 2166136261
    assert node_id("wf", "wf") == "wf" and pod_name("wf", "wf", "main") == "wf"
    assert len(pod_name("w" * 250, "w" * 250 + ".a", "tmpl")) == 242 + 1 + len(str(fnv32a("w" * 250 + ".a")))
    assert display_name("wf[0].step(1)", "wf") == "step(1)"
    assert display_name("wf[1]", "wf") == "[1]"
    assert display_name("wf.task", "wf") == "task"
    assert display_name("wf.onExit", None) == "wf.onExit"
    assert item_node_name("s", 1, {"b": 2, "a": "x"}) == "s(1:a:x,b:2)"
    assert item_node_name("s", 0, 3) == "s(0:3)"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("Succeeded == Succeeded", True),
        ("Failed != Succeeded", True),
        ("5 > 3 && 2 <= 2", True),
        ("'a b' == 'a b'", True),
        ("heads == tails || 1 >= 2", False),
        ("(1 < 2) && !(2 < 1)", True),
        ("", True),
        ("10 > 9", True),
    ],
)
def test_when(when: str, expected: bool) -> None:
    assert evaluate_when(when) is expected


def test_when_refuses_non_boolean() -> None:
    with pytest.raises(ExpressionError, match="Expected boolean"):
        evaluate_when("hello")


def test_depends() -> None:
    ok = {
        "Succeeded": True,
        "Failed": False,
        "Errored": False,
        "Skipped": False,
        "Omitted": False,
        "Daemoned": False,
        "AnySucceeded": False,
        "AllFailed": False,
    }
    failed = {**ok, "Succeeded": False, "Failed": True}
    assert evaluate_depends("A && B", {"A": ok, "B": ok})
    assert not evaluate_depends("A && B", {"A": ok, "B": failed})
    assert evaluate_depends("A && (B.Failed || B.Errored)", {"A": ok, "B": failed})
    assert evaluate_depends("A.Succeeded || B.Succeeded", {"A": failed, "B": ok})


def test_steps_items_param_when_and_results(engine) -> None:
    cluster, controller = engine
    wf = run(
        cluster,
        controller,
        workflow(
            "main",
            {
                "name": "main",
                "steps": [
                    [{"name": "gen", "template": "gen"}],
                    [
                        {
                            "name": "each",
                            "template": "echo",
                            "withParam": "{{steps.gen.outputs.result}}",
                            "arguments": {"parameters": [{"name": "msg", "value": "{{item}}"}]},
                        },
                        {
                            "name": "fixed",
                            "template": "echo",
                            "withItems": [{"k": "v1"}, {"k": "v2"}],
                            "arguments": {"parameters": [{"name": "msg", "value": "{{item.k}}"}]},
                        },
                        {
                            "name": "never",
                            "template": "echo",
                            "when": "{{steps.gen.status}} == Failed",
                            "arguments": {"parameters": [{"name": "msg", "value": "x"}]},
                        },
                    ],
                    [
                        {
                            "name": "last",
                            "template": "echo",
                            "arguments": {
                                "parameters": [
                                    {"name": "msg", "value": "{{steps.each.outputs.parameters.out}}"}
                                ]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "gen",
                "script": {
                    "image": "python:3",
                    "command": ["python"],
                    "source": "import json\nprint(json.dumps(['a', 'b']))",
                },
            },
            {
                "name": "echo",
                "inputs": {
                    "parameters": [{"name": "msg"}, {"name": "mode", "default": "x", "enum": ["x", "y"]}]
                },
                "script": {
                    "image": "alpine",
                    "command": ["sh"],
                    "source": "echo {{inputs.parameters.msg}} | tee /tmp/out",
                },
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}]},
            },
        ),
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    nodes = nodes_by_name(wf)
    name = wf["metadata"]["name"]
    assert nodes[f"{name}[0].gen"]["outputs"]["result"] == '["a", "b"]'
    assert nodes[f"{name}[1].each(0:a)"]["outputs"]["parameters"][0]["value"] == "a"
    assert nodes[f"{name}[1].each(1:b)"]["displayName"] == "each(1:b)"
    assert nodes[f"{name}[1].fixed(1:k:v2)"]["outputs"]["parameters"][0]["value"] == "v2"
    skipped = nodes[f"{name}[1].never"]
    assert (skipped["type"], skipped["phase"]) == ("Skipped", "Skipped")
    assert skipped["message"] == "when 'Succeeded == Failed' evaluated false"
    assert nodes[f"{name}[2].last"]["inputs"]["parameters"][0]["value"] == '["a","b"]'
    assert wf["status"]["progress"] == "6/6"
    group = nodes[f"{name}[1]"]
    assert sorted(nodes[f"{name}[0].gen"]["children"]) == [group["id"]]


def test_enum_violation_is_an_error(engine) -> None:
    cluster, controller = engine
    wf = run(
        cluster,
        controller,
        workflow(
            "main",
            {
                "name": "main",
                "inputs": {"parameters": [{"name": "m", "enum": ["a", "b"]}]},
                "container": {"image": "x", "command": ["true"]},
            },
            arguments={"parameters": [{"name": "m", "value": "c"}]},
        ),
    )
    assert wf["status"]["phase"] == "Error"
    assert "inputs.parameters.m" in wf["status"]["message"] and "enum" in wf["status"]["message"]


def test_unsupported_field_is_named(engine) -> None:
    cluster, controller = engine
    wf = run(
        cluster,
        controller,
        workflow(
            "main", {"name": "main", "container": {"image": "x", "command": ["true"], "securityContext": {}}}
        ),
    )
    assert wf["status"]["phase"] == "Error"
    assert (
        wf["status"]["message"]
        == "spec.templates[0].container.securityContext is not supported by the emulator"
    )
    wf = run(cluster, controller, workflow("main", {"name": "main", "suspend": {}}, parallelism=2))
    assert wf["status"]["phase"] == "Error" and "spec.parallelism" in wf["status"]["message"]


@pytest.mark.parametrize("strategy", ["Stop", "Terminate"])
def test_stop_and_terminate(engine, strategy: str) -> None:
    cluster, controller = engine
    key = submit(
        cluster,
        controller,
        workflow(
            "main",
            {
                "name": "main",
                "steps": [[{"name": "hang", "template": "hang"}], [{"name": "n", "template": "ok"}]],
            },
            scripted("hang", hang=True, logs=["started"]),
            scripted("ok"),
            onExit="ok",
        ),
    )
    wait_phase(cluster, key, "Running")
    controller.stop(key, strategy)
    assert controller.wait(key, 30)
    wf = cluster.snapshot(cluster.workflows[key])
    assert wf["spec"]["shutdown"] == strategy
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == f"Stopped with strategy '{strategy}'"
    nodes = nodes_by_name(wf)
    name = key[1]
    assert nodes[f"{name}[0].hang"]["message"] == f"Stopped with strategy '{strategy}'"
    assert f"{name}[1]" not in nodes
    assert (f"{name}.onExit" in nodes) is (strategy == "Stop")
    if strategy == "Stop":
        assert nodes[f"{name}.onExit"]["phase"] == "Succeeded"
    with pytest.raises(WorkflowFinished):
        controller.stop(key, strategy)


def test_deadlines_and_retry(engine) -> None:
    cluster, controller = engine
    wf = run(cluster, controller, workflow("main", scripted("main", hang=True), activeDeadlineSeconds=1))
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["nodes"][wf["metadata"]["name"]]["message"] == "Step exceeded its deadline"
    template = scripted("main", sleep=30)
    template["activeDeadlineSeconds"] = 1
    wf = run(cluster, controller, workflow("main", template))
    assert (wf["status"]["phase"], wf["status"]["message"]) == ("Failed", "Step exceeded its deadline")
    retried = scripted("main", exitCode=3, logs=["no"])
    retried["retryStrategy"] = {"limit": 2}
    wf = run(cluster, controller, workflow("main", retried))
    name = wf["metadata"]["name"]
    nodes = nodes_by_name(wf)
    assert nodes[name]["type"] == "Retry" and nodes[name]["message"] == "No more retries left"
    assert [nodes[f"{name}({i})"]["message"] for i in range(3)] == ["Error (exit code 3)"] * 3
    assert nodes[name]["children"] == [node_id(name, f"{name}({i})") for i in range(3)]
    assert wf["status"]["progress"] == "0/3"


def test_pod_gc_and_ttl(engine) -> None:
    cluster, controller = engine
    spec = workflow(
        "main",
        {"name": "main", "script": {"image": "a", "command": ["sh"], "source": "echo hi"}},
        podGC={"strategy": "OnPodCompletion"},
    )
    key = submit(cluster, controller, spec)
    controller.wait(key, 30)
    assert cluster.workflows[key]["status"]["phase"] == "Succeeded"
    assert not [k for k in cluster.pods if k[0] == key[0]]
    spec = workflow("main", scripted("main", logs=["x"]), ttlStrategy={"secondsAfterCompletion": 0.2})
    key = submit(cluster, controller, spec)
    controller.wait(key, 30)
    for _ in range(50):
        if key not in cluster.workflows:
            break
        import time

        time.sleep(0.1)
    assert key not in cluster.workflows


def test_secret_env(engine) -> None:
    cluster, controller = engine
    container = {
        "image": "a",
        "command": ["sh", "-c", "echo token=$TOKEN"],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "demo-credentials", "key": "api-token"}}}
        ],
    }
    wf = run(cluster, controller, workflow("main", {"name": "main", "container": container}))
    assert log(cluster, "argo", wf["metadata"]["name"]) == ["token=s3cr3t"]
    container["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "missing"
    wf = run(cluster, controller, workflow("main", {"name": "main", "container": container}))
    assert wf["status"]["phase"] == "Error"
    assert wf["status"]["message"].endswith('secret "missing" not found')


def test_sandbox_keeps_the_host_clean(engine) -> None:
    cluster, controller = engine
    marker = f"emulator-{uuid.uuid4().hex}"
    source = (
        f"echo out > /output/x; echo tmp > /tmp/{marker}; mkdir -p /data; echo d > /data/{marker}; "
        f"echo root > /{marker} ; cat /output/x"
    )
    wf = run(
        cluster,
        controller,
        workflow(
            "main",
            {
                "name": "main",
                "script": {"image": "a", "command": ["sh"], "source": source},
                "outputs": {"parameters": [{"name": "x", "valueFrom": {"path": "/output/x"}}]},
            },
        ),
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert wf["status"]["nodes"][wf["metadata"]["name"]]["outputs"]["parameters"][0]["value"] == "out"
    assert not Path("/output").exists() and not Path("/data").exists()
    assert not Path(f"/tmp/{marker}").exists() and not Path(f"/{marker}").exists()
    assert not os.listdir(controller.workdir / "argo") or not any((controller.workdir / "argo").rglob(marker))


def test_artifacts_logs_and_shared_volume(engine, s3) -> None:
    cluster, controller = engine
    wf = run(
        cluster,
        controller,
        workflow(
            "main",
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "write", "template": "write"},
                        {"name": "read", "template": "read", "depends": "write.Succeeded"},
                    ]
                },
            },
            {
                "name": "write",
                "archiveLocation": {"archiveLogs": True},
                "script": {
                    "image": "a",
                    "command": ["python3"],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                    "source": "import shapely, pathlib\n"
                    "pathlib.Path('/work/f.txt').write_text(shapely.__version__)\n"
                    "pathlib.Path('/output/a').mkdir(parents=True)\n"
                    "pathlib.Path('/output/a/r.json').write_text('{}')\nprint('wrote')",
                },
                "outputs": {
                    "artifacts": [
                        {"name": "packed", "path": "/output/a"},
                        {"name": "plain", "path": "/output/a/r.json", "archive": {"none": {}}},
                    ]
                },
            },
            {
                "name": "read",
                "container": {
                    "image": "a",
                    "command": ["cat", "/work/f.txt"],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                },
            },
            volumeClaimTemplates=[{"metadata": {"name": "work"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
        ),
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    name = wf["metadata"]["name"]
    nodes = nodes_by_name(wf)
    write_pod = pod_name(name, f"{name}.write", "write")
    arts = {a["name"]: a for a in nodes[f"{name}.write"]["outputs"]["artifacts"]}
    prefix = f"runs/{name}/{write_pod}"
    assert arts["packed"]["s3"] == {"key": f"{prefix}/packed.tgz"}
    assert arts["plain"]["s3"] == {"key": f"{prefix}/r.json"}
    assert arts["main-logs"] == {"name": "main-logs", "s3": {"key": f"{prefix}/main.log"}}
    client = s3.client()
    assert client.get_object(Bucket="artifacts", Key=f"{prefix}/main.log")["Body"].read() == b"wrote\n"
    assert client.get_object(Bucket="artifacts", Key=f"{prefix}/r.json")["Body"].read() == b"{}"
    packed = client.get_object(Bucket="artifacts", Key=f"{prefix}/packed.tgz")["Body"].read()
    assert packed[:2] == b"\x1f\x8b"
    import shapely

    assert log(cluster, "argo", pod_name(name, f"{name}.read", "read")) == [shapely.__version__]
