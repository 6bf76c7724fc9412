"""Runs workflows in-process on a real Cluster + Controller (real processes, real S3), for engine tests."""

from __future__ import annotations

import copy
import time

from pygeoapi_argo.emulator.controller import Controller
from pygeoapi_argo.emulator.state import Cluster


def submit(
    cluster: Cluster, controller: Controller, workflow: dict, name: str | None = None, namespace: str = "argo"
) -> tuple[str, str]:
    """Store a workflow as the HTTP server does (stamped, empty status) and start it."""
    wf = copy.deepcopy(workflow)
    meta = wf.setdefault("metadata", {})
    meta["name"] = name or meta.pop("generateName", "wf-") + "x1y2z"
    meta.pop("generateName", None)
    wf["status"] = {}
    with cluster.lock:
        cluster.stamp(wf, namespace=namespace)
        cluster.workflows[(namespace, meta["name"])] = wf
    key = (namespace, meta["name"])
    controller.start(key)
    return key


def run(cluster: Cluster, controller: Controller, workflow: dict, timeout: float = 60, **kwargs) -> dict:
    key = submit(cluster, controller, workflow, **kwargs)
    assert controller.wait(key, timeout), "workflow did not finish"
    return cluster.snapshot(cluster.workflows[key])


def wait_phase(cluster: Cluster, key: tuple[str, str], phase: str, timeout: float = 20) -> dict:
    """Poll (briefly) until a node of the workflow reaches ``phase``; returns the workflow snapshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wf = cluster.snapshot(cluster.workflows[key])
        if any(n["phase"] == phase for n in (wf.get("status") or {}).get("nodes", {}).values()):
            return wf
        time.sleep(0.05)
    raise TimeoutError(f"no node reached {phase}")


def nodes_by_name(wf: dict) -> dict[str, dict]:
    return {n["name"]: n for n in wf["status"]["nodes"].values()}


def log(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    return [text for _, text in cluster.pods[(namespace, pod)].lines]
