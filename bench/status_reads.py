"""Status reads: latency of ``GET /jobs/{id}`` for a finished and for a running job, and the Argo calls
and bytes behind each read, with and without a ``fields`` projection on a 50-node workflow (issue 6).

Run by hand:

    .venv/bin/python bench/status_reads.py

pygeoapi (``pygeoapi-argo serve``, gunicorn, 2 workers, the background reconciler off so every Argo
call is a read's own) reaches the emulator through a counting relay, which records each call and the
size of its answer body. Three jobs: ``sr-quick`` (finished), ``sr-hang`` (one step, running) and
``sr-fifty`` (a DAG of 50 tasks: 49 finished, one running; 51 nodes with the DAG's own).

The manager reads a non-final job with one unprojected ``get_workflow``. What a projection would save is
measured beside it by calling ``ArgoClient.get_workflow`` directly both ways on the 50-node workflow
(through the same relay); both answers are checked to give the same OGC status (``status.from_workflow``).
Reads are interleaved, N=30 each after untimed warm-ups.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from common import servers, summary

from pygeoapi_argo import status
from pygeoapi_argo.argo import ArgoClient
from pygeoapi_argo.settings import ArgoSettings

N = 30
WARM_UP = 4
TASKS = 50
# What the manager reads of a workflow (status.from_workflow, results.collect, metrics.usage, logs.archive):
# the list plus metadata.creationTimestamp, metadata.annotations and status.resourcesDuration.
PROJECTION = ("metadata.name,metadata.labels,metadata.annotations,metadata.creationTimestamp,spec.shutdown,"
              "status.phase,status.progress,status.message,status.startedAt,status.finishedAt,status.nodes,"
              "status.outputs,status.resourcesDuration")
SCRIPTED = "emulator.pygeoapi-argo.io/scripted"
JSON = {"Accept": "application/json"}


def step(name: str, script: dict, outputs: bool = False) -> dict:
    template = {"name": name, "container": {"image": "alpine:3.20", "command": ["true"]},
                "metadata": {"annotations": {SCRIPTED: json.dumps(script)}}}
    if outputs:
        template["outputs"] = {"artifacts": [{"name": "output", "path": "/output", "archive": {"none": {}},
                                              "s3": {"key": "{{workflow.name}}/output"}}]}
    return template


TEMPLATES = [
    {"metadata": {"name": "sr-quick"}, "spec": {"entrypoint": "execute", "templates": [
        step("execute", {"outputs": {"/output/data.json": '{"ok": true}'}}, outputs=True)]}},
    {"metadata": {"name": "sr-hang"}, "spec": {"entrypoint": "execute", "templates": [
        step("execute", {"hang": True})]}},
    {"metadata": {"name": "sr-fifty"}, "spec": {"entrypoint": "execute", "templates": [
        {"name": "execute", "dag": {"tasks": [
            {"name": f"task-{i:02d}", "template": "hang" if i == TASKS - 1 else "quick"}
            for i in range(TASKS)]}},
        step("quick", {"logs": ["tile done"]}),
        step("hang", {"hang": True})]}},
]
RESOURCES = {t["metadata"]["name"]: {"type": "process", "processor": {
    "name": "pygeoapi_argo.ArgoProcessor", "workflow_template": t["metadata"]["name"]}} for t in TEMPLATES}


@dataclass
class Relay:
    """HTTP relay to the emulator that counts calls and answer-body bytes."""

    upstream: str
    calls: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        relay = self
        session = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the plugin's pooled connection expects
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization", "accept")}
                if not hasattr(session, "http"):
                    session.http = requests.Session()
                answer = session.http.request(self.command, relay.upstream + self.path, data=body,
                                              headers=headers, timeout=60)
                with relay.lock:
                    relay.calls += 1
                    relay.bytes += len(answer.content)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def count(self) -> tuple[int, int]:
        with self.lock:
            return self.calls, self.bytes


@dataclass
class Reads:
    """Latency, Argo calls and answer bytes of one kind of read."""

    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (f"{summary(self.seconds, with_p95=True)}   Argo calls/read {statistics.mean(self.calls):.2f}"
                f"   bytes/read {statistics.mean(self.bytes):,.0f}")


def measured(relay: Relay, reads: Reads | None, read) -> object:
    calls, size = relay.count()
    start = time.perf_counter()
    answer = read()
    elapsed = time.perf_counter() - start
    after_calls, after_size = relay.count()
    if reads is not None:
        reads.seconds.append(elapsed)
        reads.calls.append(after_calls - calls)
        reads.bytes.append(after_size - size)
    return answer


def execute(url: str, process_id: str) -> str:
    response = requests.post(f"{url}/processes/{process_id}/execution", json={"inputs": {}},
                             headers={**JSON, "Prefer": "respond-async"}, timeout=30)
    response.raise_for_status()
    return response.headers["Location"].rsplit("/", 1)[-1]


def wait_for(read, done, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done(read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.1)


def main() -> None:
    with servers() as stack:
        emulator = stack.emulator
        for template in TEMPLATES:
            requests.post(f"{emulator.url}/api/v1/workflow-templates/{emulator.namespace}",
                          json={"template": template}, timeout=10).raise_for_status()
        relay = Relay(emulator.url)
        relay_url = relay.start()
        server = stack.start_pygeoapi(emulator, resources=RESOURCES, manager={
            "argo": {"server": relay_url, "namespace": emulator.namespace}, "reconciler": {"enabled": False}})
        api = requests.Session()

        def job(job_id: str) -> dict:
            response = api.get(f"{server.url}/jobs/{job_id}", headers=JSON, timeout=60)
            response.raise_for_status()
            return response.json()

        def workflow(job_id: str) -> dict:
            return requests.get(f"{emulator.url}/api/v1/workflows/{emulator.namespace}/pygeoapi-job-{job_id}",
                                timeout=30).json()

        jobs = {name: execute(server.url, name) for name in ("sr-quick", "sr-hang", "sr-fifty")}
        wait_for(lambda: job(jobs["sr-quick"]), lambda j: j["status"] == "successful", "sr-quick successful")
        wait_for(lambda: job(jobs["sr-hang"]), lambda j: j["status"] == "running", "sr-hang running")
        wait_for(lambda: workflow(jobs["sr-fifty"]),
                 lambda wf: sum(n["phase"] == "Succeeded" for n in (wf["status"].get("nodes") or {}).values())
                 == TASKS - 1, "sr-fifty: 49 tasks done")
        whole = workflow(jobs["sr-fifty"])
        nodes = len(whole["status"]["nodes"])
        sections = {f"{part}.{key}": len(json.dumps(value)) for part in ("metadata", "spec", "status")
                    for key, value in whole[part].items()}
        sections = dict(sorted(sections.items(), key=lambda kv: -kv[1])[:6])

        argo = ArgoClient(ArgoSettings.from_config({"server": relay_url, "namespace": emulator.namespace},
                                                   {}))
        fifty = f"pygeoapi-job-{jobs['sr-fifty']}"
        full_state = status.from_workflow(argo.get_workflow(fifty))
        projected_state = status.from_workflow(argo.get_workflow(fifty, fields=PROJECTION))
        if full_state != projected_state:
            raise RuntimeError(f"the projection changes the status: {full_state} != {projected_state}")

        kinds = {
            "GET /jobs/{id}, finished job": lambda: job(jobs["sr-quick"]),
            "GET /jobs/{id}, running job (1 node)": lambda: job(jobs["sr-hang"]),
            f"GET /jobs/{{id}}, running job ({nodes} nodes)": lambda: job(jobs["sr-fifty"]),
            f"ArgoClient.get_workflow, {nodes} nodes, no projection": lambda: argo.get_workflow(fifty),
            f"ArgoClient.get_workflow, {nodes} nodes, fields=…":
                lambda: argo.get_workflow(fifty, fields=PROJECTION),
        }
        reads = {name: Reads() for name in kinds}
        for round_ in range(WARM_UP + N):
            for name, read in kinds.items():
                measured(relay, reads[name] if round_ >= WARM_UP else None, read)
        for job_id in (jobs["sr-hang"], jobs["sr-fifty"]):
            api.delete(f"{server.url}/jobs/{job_id}", timeout=30)
        server.stop()
        relay.httpd.shutdown()

    print(f"status reads (N={N} each, interleaved; bytes are Argo answer bodies, uncompressed)")
    for name, result in reads.items():
        print(f"  {name:52} {result.line()}")
    full, projected = (reads[name] for name in list(kinds)[3:])
    share = statistics.mean(projected.bytes) / statistics.mean(full.bytes)
    print(f"  projection on the {nodes}-node workflow: bytes {share:.2f} of the full answer, latency "
          f"(medians) {statistics.median(projected.seconds) / statistics.median(full.seconds):.2f}x")
    print("  bytes of the full answer by section: " + ", ".join(f"{k} {v:,}" for k, v in sections.items()))
    print(f"  fields={PROJECTION}")


if __name__ == "__main__":
    main()
