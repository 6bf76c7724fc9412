"""``pygeoapi-argo``: run the OGC API over Argo (``serve``), try it with nothing installed (``demo``),
write pygeoapi resources for WorkflowTemplates (``config``), and keep the processes' cron schedules in
sync as Argo CronWorkflows (``schedules sync``)."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO_TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "workflow-templates"
PROCESSOR = "pygeoapi_argo.ArgoProcessor"


# --- config ----------------------------------------------------------------------------------


def read_templates(directory: Path) -> list[dict]:
    """Every WorkflowTemplate/ClusterWorkflowTemplate document in the YAML files of ``directory``."""
    docs = []
    for path in sorted(directory.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate"):
                docs.append(doc)
    return docs


def resources_for(templates: list[dict]) -> dict[str, dict]:
    """pygeoapi ``resources`` for templates: one process each, named after the template; the rest
    of the description (types, outputs, job control) comes from the template's annotations."""
    resources: dict[str, dict] = {}
    for doc in templates:
        meta = doc.get("metadata", {})
        processor: dict[str, Any] = {"name": PROCESSOR, "workflow_template": meta["name"]}
        if doc["kind"] == "ClusterWorkflowTemplate":
            processor["cluster_scope"] = True
        resources[meta["name"]] = {"type": "process", "processor": processor}
    return resources


def pygeoapi_config(*, url: str, host: str, port: int, manager: dict, resources: dict,
                    logfile: Path | None = None) -> dict:
    """A complete pygeoapi configuration around our manager (logging to stdout unless ``logfile``)."""
    return {
        "server": {
            "bind": {"host": host, "port": port},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "cors": True,
            "pretty_print": False,
            "limits": {"default_items": 20, "max_items": 1000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "&copy; OpenStreetMap contributors"},
            "manager": manager,
        },
        "logging": {"level": "WARNING", **({"logfile": str(logfile)} if logfile else {})},
        "metadata": {
            "identification": {
                "title": "pygeoapi-argo", "description": "OGC API - Processes over Argo Workflows",
                "keywords": ["processes", "argo"], "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": "https://github.com/geopython/pygeoapi",
            },
            "license": {"name": "CC-BY 4.0 license", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "pygeoapi-argo", "url": "https://pygeoapi.io"},
            "contact": {"name": "pygeoapi-argo", "position": "operator", "email": "ops@example.org",
                        "url": "https://pygeoapi.io", "role": "pointOfContact"},
        },
        "resources": resources,
    }


def cmd_config(args: argparse.Namespace) -> int:
    if args.argo:
        from .argo import ArgoClient
        from .settings import ArgoSettings

        client = ArgoClient(ArgoSettings.from_config({}, os.environ))
        templates = [t.dict(by_alias=True, exclude_none=True) | {"kind": "WorkflowTemplate"}
                     for t in client.list_workflow_templates()]
    else:
        templates = read_templates(Path(args.templates))
    yaml.safe_dump({"resources": resources_for(templates)}, sys.stdout, sort_keys=False)
    return 0


def cmd_schedules_sync(args: argparse.Namespace) -> int:
    """One line per CronWorkflow; exit 1 if any could not be synchronised, 2 for a bad config."""
    from pygeoapi.process.manager.base import get_manager
    from pygeoapi.util import yaml_load

    from .errors import ArgoError, ArgoPluginError
    from .manager import ArgoManager
    from .schedules import sync

    with Path(args.config).open() as fh:
        config = yaml_load(fh)
    try:
        manager = get_manager(config)
    except ArgoPluginError as err:
        print(f"pygeoapi-argo: {err.message}", file=sys.stderr)
        return 2
    if not isinstance(manager, ArgoManager):
        print("pygeoapi-argo: server.manager of this configuration is not pygeoapi_argo.ArgoManager",
              file=sys.stderr)
        return 2
    try:
        changes = sync(manager)
    except ArgoError as err:
        print(f"pygeoapi-argo: schedules not synchronised: {err.message}", file=sys.stderr)
        return 1
    for change in changes:
        detail = f": {change.message}" if change.message else ""
        print(f"{change.action:<9} {change.name} (process {change.process_id}, schedule {change.schedule_id})"
              f"{detail}")
    return 1 if any(change.action == "failed" for change in changes) else 0


# --- serve -----------------------------------------------------------------------------------


def serve(config: Path, *, host: str, port: int, workers: int, state_dir: Path) -> None:
    """pygeoapi with our manager under gunicorn: a real WSGI server, no debug reloader."""
    from gunicorn.app.base import BaseApplication
    from pygeoapi.openapi import generate_openapi_document

    prometheus_multiprocess_dir(state_dir)
    os.environ["PYGEOAPI_CONFIG"] = str(config.resolve())
    openapi = state_dir / "openapi.yml"
    with config.open() as fh:
        openapi.write_text(generate_openapi_document(fh, "yaml"))
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi.resolve())

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
                               "threads": 8, "timeout": 120, "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from .web import app

            return app

    Gunicorn().run()


def prometheus_multiprocess_dir(state_dir: Path) -> None:
    """The workers' shared metric files (see ``metrics.py``): set before prometheus-client is first
    imported, emptied at each start as its multiprocess mode requires. An operator's own
    ``PROMETHEUS_MULTIPROC_DIR`` is used if set."""
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or state_dir / "prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())


def cmd_serve(args: argparse.Namespace) -> int:
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="pygeoapi-argo-"))
    state.mkdir(parents=True, exist_ok=True)
    serve(Path(args.config), host=args.host, port=args.port, workers=args.workers, state_dir=state)
    return 0


# --- demo ------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for servers that cannot report the one they bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Wait until something answers HTTP at ``url`` (any status), or ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing answered at {url} within {timeout:g} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    """Emulator + rclone S3 + pygeoapi on one machine, until Ctrl-C."""
    state = Path(tempfile.mkdtemp(prefix="pygeoapi-argo-demo-"))
    s3_root = state / "s3"
    for bucket in ("artifacts", "results"):
        (s3_root / bucket).mkdir(parents=True)
    access, secret = secrets.token_hex(8), secrets.token_hex(16)
    s3_url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}
    bindir = Path(sys.executable).parent
    rclone = shutil.which("rclone", path=str(bindir)) or shutil.which("rclone") or "rclone"
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], **kw: Any) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=env, **kw)
        procs.append(proc)
        return proc

    try:
        s3 = start([rclone, "serve", "s3", "--auth-key", f"{access},{secret}", "--addr", s3_url[7:],
                    str(s3_root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(s3_url, s3)
        secrets_file = state / "secrets.yaml"
        secrets_file.write_text("demo-credentials:\n  api-token: demo-token\n")
        emulator = start([sys.executable, "-m", "pygeoapi_argo.emulator", "--host", "127.0.0.1",
                          "--port", "0",
                          "--namespace", "argo", "--templates", str(args.templates), "--artifacts",
                          "s3://artifacts", "--s3-endpoint", s3_url, "--secrets", str(secrets_file)],
                         stdout=subprocess.PIPE, text=True)
        argo_url = emulator.stdout.readline().split()[-1]
        wait_http(f"{argo_url}/api/v1/version", emulator)
        url = f"http://127.0.0.1:{args.port}"
        manager = {
            "name": "pygeoapi_argo.ArgoManager",
            "connection": f"sqlite:///{state / 'jobs.db'}",
            "output_dir": "s3://results/jobs/",
            "argo": {"server": argo_url, "namespace": "argo"},
            "storage": {"endpoint_url": s3_url, "bucket": "artifacts", "presign_ttl": 3600},
        }
        config = state / "pygeoapi.yml"
        resources = resources_for(read_templates(Path(args.templates)))
        config.write_text(yaml.safe_dump(pygeoapi_config(url=url, host="127.0.0.1", port=args.port,
                                                         manager=manager, resources=resources,
                                                         logfile=state / "pygeoapi.log")))
        api = start([sys.executable, "-m", "pygeoapi_argo.cli", "serve", "--config", str(config),
                     "--port", str(args.port), "--state-dir", str(state)])
        wait_http(f"{url}/processes", api)
        print(f"ready {url}", flush=True)
        print(f"""
Try it (or open {url} in a browser):
  curl -s '{url}/processes?f=json'
  curl -s -X POST {url}/processes/echo/execution -H 'Content-Type: application/json' \\
       -d '{{"inputs": {{"message": "hello Argo"}}}}'      # echo may run sync: 200, the value
  curl -si -X POST {url}/processes/buffer/execution -H 'Content-Type: application/json' \\
       -d '{{"inputs": {{"geometry": {{"type": "Point", "coordinates": [16.37, 48.21]}}, "distance": 0.01}}}}'
                                     # async only: 201, Location: {url}/jobs/<id>
  curl -s '{url}/jobs/<id>?f=json'           # status
  curl -s '{url}/jobs/<id>/results?f=json'   # results: signed S3 URLs
Argo emulator: {argo_url}   S3: {s3_url}   state and logs: {state}
Ctrl-C stops everything.""", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        api.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            stop(proc)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pygeoapi-argo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="emulator + S3 + pygeoapi on this machine, until Ctrl-C")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--templates", default=str(REPO_TEMPLATES))
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve pygeoapi with this manager under gunicorn")
    p.add_argument("--config", required=True, help="pygeoapi configuration file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--state-dir", help="where the generated OpenAPI document goes")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("config", help="pygeoapi resources for WorkflowTemplates")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--templates", help="folder of WorkflowTemplate YAML files")
    src.add_argument("--argo", action="store_true", help="the templates of the Argo Server (ARGO_* env)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("schedules", help="the processes' cron schedules as Argo CronWorkflows")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("sync", help="create, update, suspend, delete CronWorkflows to match the config")
    q.add_argument("--config", required=True, help="pygeoapi configuration file")
    q.set_defaults(func=cmd_schedules_sync)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
