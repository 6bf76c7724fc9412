"""``logs.py`` over recorded Argo workflows: steps and their pods, step selection, tail, redaction.

The end-to-end behaviour (live, archived, after pod GC) is in ``tests/e2e/test_logs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hera.workflows.models import Workflow

from pygeoapi_argo import logs
from pygeoapi_argo.emulator.nodes import pod_name as emulator_pod_name
from pygeoapi_argo.errors import InvalidParameterValue
from pygeoapi_argo.logs import REDACTED, Redactor, Step

DATA = Path(__file__).parent / "data" / "argo"


def recorded(name: str) -> Workflow:
    return Workflow.model_validate(yaml.safe_load((DATA / name).read_text()))


def test_single_pod_workflow_is_one_step_named_after_its_template():
    workflow = recorded("workflow-succeeded.yaml")
    name = workflow.metadata.name
    assert logs.steps(workflow) == [Step(
        step="execute", template="execute", pod=name,
        url=f"s3:///{name}/{name}/main.log")]  # key-only main-logs: the default bucket comes later


def test_steps_in_run_order_with_argo_pod_names():
    workflow = recorded("workflow-failed.yaml")
    name = workflow.metadata.name
    found = logs.steps(workflow)
    assert [(s.step, s.template) for s in found] == [("prepare", "prepare"), ("fail", "fail")]
    # v2 pod names end with the hash that also ends the node id
    assert found[0].pod == f"{name}-prepare-3333955095"
    # Argo archived only the failed step's log, under a key that holds the pod's name
    assert [s.url for s in found] == [None, f"s3:///{name}/{found[1].pod}/main.log"]


def test_pod_names_match_the_emulators_and_argos_v1_format():
    workflow = recorded("workflow-failed.yaml")
    for node in workflow.status.nodes.values():
        if node.type == "Pod":
            assert logs.pod_name(workflow, node) == emulator_pod_name(
                workflow.metadata.name, node.name, node.template_name)
    workflow.metadata.annotations = {logs.POD_NAME_FORMAT: "v1"}
    assert [s.pod for s in logs.steps(workflow)] == [
        f"{workflow.metadata.name}-3333955095", f"{workflow.metadata.name}-2043870391"]


def test_equal_start_times_keep_the_node_tree_order():
    workflow = recorded("workflow-failed.yaml")
    for node in workflow.status.nodes.values():
        node.started_at = None
    assert [s.step for s in logs.steps(workflow)] == ["prepare", "fail"]


STEPS = [Step("prepare", "say", "p-1"), Step("report", "say", "p-2"), Step("clean", "tidy", "p-3")]


def test_select_by_display_name_template_name_or_all():
    assert logs.select(STEPS, None) == STEPS
    assert logs.select(STEPS, "report") == [STEPS[1]]
    assert logs.select(STEPS, "say") == STEPS[:2]
    assert logs.select([], "report") == []  # nothing started yet


def test_unknown_step_names_the_known_ones():
    with pytest.raises(InvalidParameterValue, match="steps: clean, prepare, report, say, tidy"):
        logs.select(STEPS, "nope")


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("0", 0), ("25", 25), ("100000", 100000)])
def test_tail(value, expected):
    assert logs.parse_tail(value) == expected


@pytest.mark.parametrize("value", ["", "-1", "1.5", "ten", "100001", "1e3", " 3"])
def test_bad_tail_is_refused(value):
    with pytest.raises(InvalidParameterValue):
        logs.parse_tail(value)


def test_redactor_replaces_whole_lines_with_a_secret():
    clean = Redactor(["s3cr3t-value", ""], scrub=lambda text: text.replace("tok3n", "***"))
    assert clean.line("all fine") == "all fine"
    assert clean.line("password=s3cr3t-value;") == REDACTED
    assert clean.line("Authorization: Bearer tok3n") == REDACTED
    assert Redactor([]).line("") == ""  # an unset secret (empty value) redacts nothing


def test_archive_file_names_are_safe_and_unique():
    found = [Step("fan(0:a b)", "t", "wf-t-11"), Step("fan(1:c)", "t", "wf-t-12"),
             Step("same", "t", "wf-t-13"), Step("same", "t", "wf-t-14"), Step("..", "t", "wf-t-15")]
    assert [name for _, name in logs._unique_files(found)] == [
        "fan_0_a_b", "fan_1_c", "same-13", "same-14", "step"]


def test_key_only_artifacts_take_the_default_bucket():
    assert logs._located("s3:///wf/pod/main.log", "artifacts") == "s3://artifacts/wf/pod/main.log"
    assert logs._located("s3:///wf/pod/main.log", None) is None
    assert logs._located("s3://logs/wf/main.log", "artifacts") == "s3://logs/wf/main.log"
