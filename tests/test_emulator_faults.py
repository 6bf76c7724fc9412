"""Fault descriptions of the emulator's control endpoint (``emulator/faults.py``), as plain data."""

from __future__ import annotations

import pytest

from pygeoapi_argo.emulator.faults import FaultError, parse


def test_a_fault_is_one_shot_unless_times_says_otherwise():
    fault = parse({"operation": "get_workflow", "status": 503}, 1)
    assert (fault.times, fault.left) == (1, 1)
    assert fault.matches("get_workflow", "/api/v1/workflows/argo/x")
    assert not fault.matches("list_workflows", "/api/v1/workflows/argo")
    fault.hits = 1
    assert fault.left == 0 and not fault.matches("get_workflow", "/api/v1/workflows/argo/x")

    permanent = parse({"operation": "*", "delay": 2, "times": None}, 2)
    permanent.hits = 100
    assert permanent.left is None and permanent.matches("create_workflow", "/api/v1/workflows/argo")


def test_path_narrows_a_fault_to_matching_requests():
    fault = parse({"operation": "workflow_logs", "drop_after": 2, "path": "pygeoapi-job-abc/"}, 1)
    assert fault.matches("workflow_logs", "/api/v1/workflows/argo/pygeoapi-job-abc/log")
    assert not fault.matches("workflow_logs", "/api/v1/workflows/argo/pygeoapi-job-xyz/log")


@pytest.mark.parametrize("data, problem", [
    ([], "JSON object"),
    ({"status": 500}, "'operation'"),
    ({"operation": "get_workflow"}, "exactly one"),
    ({"operation": "get_workflow", "status": 500, "delay": 1}, "exactly one"),
    ({"operation": "get_workflow", "status": 200}, "400-599"),
    ({"operation": "get_workflow", "delay": -1}, "seconds"),
    ({"operation": "get_workflow", "drop_after": "2"}, "lines"),
    ({"operation": "get_workflow", "status": 500, "times": 0}, "positive"),
    ({"operation": "get_workflow", "status": 500, "path": "("}, "regular expression"),
    ({"operation": "get_workflow", "status": 500, "colour": "red"}, "colour"),
])
def test_bad_fault_descriptions_are_refused_with_the_reason(data, problem):
    with pytest.raises(FaultError, match=problem):
        parse(data, 1)
