"""The ``pygeoapi-argo`` command and pygeoapi's own tooling over our configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from conftest import ROOT, TEMPLATES, free_port, stop

from pygeoapi_argo.cli import pygeoapi_config, read_templates, resources_for

BIN = Path(sys.executable).parent


def test_config_command_writes_one_process_per_template() -> None:
    out = subprocess.run([BIN / "pygeoapi-argo", "config", "--templates", str(TEMPLATES)], check=True,
                         capture_output=True, text=True).stdout
    resources = yaml.safe_load(out)["resources"]
    assert set(resources) == {"echo", "buffer", "raster", "two-step", "fail"}
    assert resources["buffer"] == {"type": "process", "processor": {
        "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": "buffer"}}


def test_openapi_generate_needs_no_argo(tmp_path: Path) -> None:
    """pygeoapi builds the manager and every processor to write its OpenAPI document: with no Argo
    Server reachable the document is still written, with every process in it."""
    manager = {"name": "pygeoapi_argo.ArgoManager", "connection": f"sqlite:///{tmp_path / 'jobs.db'}",
               "output_dir": "s3://results/jobs/",
               "argo": {"server": f"http://127.0.0.1:{free_port()}", "namespace": "argo", "retries": 0}}
    config = tmp_path / "pygeoapi.yml"
    config.write_text(yaml.safe_dump(pygeoapi_config(
        url="http://127.0.0.1:5000", host="127.0.0.1", port=5000, manager=manager,
        resources=resources_for(read_templates(TEMPLATES)))))
    out = tmp_path / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(out)}
    subprocess.run([BIN / "pygeoapi", "openapi", "generate", str(config), "--output-file", str(out)],
                   check=True, env=env, capture_output=True, timeout=120)
    paths = yaml.safe_load(out.read_text())["paths"]
    for process in ("echo", "buffer", "raster", "two-step", "fail"):
        assert f"/processes/{process}/execution" in paths


def test_demo_serves_the_ogc_api_until_interrupted() -> None:
    """README's first command, minus the install: ``pygeoapi-argo demo`` prints ``ready URL``."""
    port = free_port()
    proc = subprocess.Popen([BIN / "pygeoapi-argo", "demo", "--port", str(port)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"ready http://127.0.0.1:{port}"
        processes = requests.get(f"http://127.0.0.1:{port}/processes?f=json", timeout=10).json()["processes"]
        assert {p["id"] for p in processes} >= {"echo", "buffer", "raster"}
        answer = requests.post(f"http://127.0.0.1:{port}/processes/echo/execution",
                               json={"inputs": {"message": "hello"}}, headers={"Prefer": "wait"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.text == "hello"
    finally:
        stop(proc)
    assert proc.returncode == 0
