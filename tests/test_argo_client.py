"""ArgoClient over real HTTP.

Exact faults (a hung server, one 503, a 401, a log stream cut off) come from ``FaultServer``: a real
``http.server`` on 127.0.0.1 that answers each request with the next scripted action and records
what it received. Everything else runs against the Argo emulator (``emulator`` fixture).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import free_port
from hera.workflows.models import ClusterWorkflowTemplate, Workflow, WorkflowTemplate

from pygeoapi_argo.argo import ArgoClient, LogEntry
from pygeoapi_argo.errors import (
    ArgoConflict,
    ArgoError,
    ArgoNotFound,
    ArgoRejected,
    ArgoUnauthorized,
    ArgoUnavailable,
)
from pygeoapi_argo.settings import ArgoSettings

# --- the fault-injecting server -------------------------------------------------------------------

Action = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FaultServer:
    """Answers the n-th request with the n-th scripted action; an unscripted request gets a 599."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.actions: deque[Action] = deque()
        self.seen: list[Seen] = []
        self.release = threading.Event()  # set at teardown: hung handlers return
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_owner = server  # lets ``hang`` find the release event

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (ConnectionError, ssl.SSLError):
                    self.close_connection = True

            def do_any(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.seen.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                        dict(self.headers.items()), body))
                unscripted = answer(599, {"message": "unscripted"})
                action = server.actions.popleft() if server.actions else unscripted
                action(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def script(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Action:
    def act(handler: BaseHTTPRequestHandler) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    return act


def hang(handler: BaseHTTPRequestHandler) -> None:
    """Accept the request and never answer (until the test ends)."""
    handler.server_owner.release.wait(30)  # type: ignore[attr-defined]
    handler.close_connection = True


def stream(*chunks: bytes, cut: bool = False, hang_after: bool = False) -> Action:
    """A chunked 200 stream; ``cut`` drops the connection without the final chunk."""
    def act(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for chunk in chunks:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
            time.sleep(0.02)  # separate TCP segments: the client sees lines split across reads
        if hang_after:
            hang(handler)
        if cut or hang_after:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(b"0\r\n\r\n")
    return act


def until_close(data: bytes) -> Action:
    """A 200 whose body ends when the connection closes (no length, not chunked): a cut is silent."""
    def act(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
        handler.close_connection = True
    return act


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.close()


def client_for(url: str, env: dict[str, str] | None = None, **config: object) -> ArgoClient:
    settings = ArgoSettings.from_config({"server": url, "namespace": "argo", "timeout": 2, "retries": 2,
                                         **config}, env or {})
    return ArgoClient(settings)


def log_line(content: str, pod: str = "p-1") -> bytes:
    return json.dumps({"result": {"content": content, "podName": pod}}).encode() + b"\n"


WORKFLOW = {"metadata": {"name": "wf-1", "namespace": "argo"}, "spec": {"entrypoint": "main"},
            "status": {"phase": "Running"}}


# --- construction, URLs, names --------------------------------------------------------------------


def test_construction_touches_nothing(fault, tmp_path):
    client = client_for(fault.url, token_file=str(tmp_path / "not-there-yet"), ca_bundle="/nowhere.pem")
    assert fault.seen == []
    assert "ArgoClient('http://127.0.0.1:" in repr(client)


def test_requests_go_under_the_base_href_and_namespace(fault):
    fault.script(answer(200, WORKFLOW))
    client = client_for(fault.url + "/argo", namespace="jobs")
    assert client.get_workflow("wf-1").metadata.name == "wf-1"
    assert fault.seen[0].path == "/argo/api/v1/workflows/jobs/wf-1"


@pytest.mark.parametrize("name", ["../secrets", "a/b", "wf?x=1", "", "UPPER", None])
def test_names_that_cannot_exist_are_not_found_without_a_request(fault, name):
    client = client_for(fault.url)
    with pytest.raises(ArgoNotFound, match="not a valid Kubernetes name"):
        client.get_workflow(name)
    with pytest.raises(ArgoNotFound):
        client.workflow_logs("wf-1", pod_name=name or "x/y")
    assert fault.seen == []


# --- timeouts and retries -------------------------------------------------------------------------


def test_a_hung_server_times_out(fault):
    fault.script(hang)
    client = client_for(fault.url, timeout=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(ArgoUnavailable, match=r"no answer within 0.5 s"):
        client.get_workflow("wf-1")
    assert time.monotonic() - started < 3
    assert len(fault.seen) == 1


def test_a_read_timeout_on_a_get_is_retried(fault):
    fault.script(hang, answer(200, WORKFLOW))
    assert client_for(fault.url, timeout=0.5).get_workflow("wf-1").status.phase == "Running"
    assert len(fault.seen) == 2


@pytest.mark.parametrize(("call", "method"), [
    (lambda client: client.get_workflow("wf-1"), "GET"),
    (lambda client: client.stop_workflow("wf-1"), "PUT"),
    (lambda client: client.delete_workflow("wf-1"), "DELETE"),
])
def test_one_503_is_retried_on_idempotent_calls(fault, call, method):
    fault.script(answer(503, {"code": 14, "message": "busy"}), answer(200, WORKFLOW))
    call(client_for(fault.url))
    assert [s.method for s in fault.seen] == [method, method]


def test_retries_are_bounded_and_the_last_answer_is_reported(fault):
    fault.script(*[answer(503, {"code": 14, "message": "still busy"})] * 3)
    with pytest.raises(ArgoUnavailable, match="Argo Server error 503: still busy") as caught:
        client_for(fault.url, retries=2).list_workflows()
    assert caught.value.status == 503
    assert len(fault.seen) == 3


def test_a_create_is_not_repeated_once_sent(fault):
    """A lost answer to a POST may hide a created workflow: only the caller may retry (409 = done)."""
    fault.script(answer(503, {"message": "busy"}), hang)
    client = client_for(fault.url, timeout=0.5, retries=3)
    workflow = Workflow.model_validate({"metadata": {"name": "wf-1"}, "spec": {"entrypoint": "main"}})
    with pytest.raises(ArgoUnavailable, match="503"):
        client.create_workflow(workflow)
    with pytest.raises(ArgoUnavailable, match="no answer within"):
        client.create_workflow(workflow)
    assert [s.method for s in fault.seen] == ["POST", "POST"]
    assert json.loads(fault.seen[0].body)["workflow"]["metadata"]["name"] == "wf-1"


def test_an_unreachable_server_is_unavailable_without_internal_details():
    client = client_for(f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(ArgoUnavailable) as caught:
        client.version()
    assert caught.value.message == "Argo Server unreachable: connection refused"


# --- answers mapped to our errors -----------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "error", "text"), [
    (404, {"code": 5, "message": 'workflows.argoproj.io "wf-1" not found'}, ArgoNotFound, "not found"),
    (409, {"code": 6, "message": "already exists"}, ArgoConflict, "already exists"),
    (500, {"code": 2, "message": 'cannot shutdown a completed workflow: workflow: "wf-1", namespace: "argo"'},
     ArgoConflict, "completed"),
    (500, {"code": 13, "message": "etcd on fire"}, ArgoUnavailable, "Argo Server error 500: etcd on fire"),
    (400, {"code": 3, "message": "spec.templates is required"}, ArgoRejected, "rejected the request"),
    (403, {"code": 7, "message": "forbidden"}, ArgoUnauthorized, r"refused the credentials \(403\)"),
    (418, "<html>teapot</html>", ArgoError, "unexpected answer 418"),
])
def test_statuses_map_to_our_errors(fault, status, body, error, text):
    fault.script(answer(status, body))
    with pytest.raises(error, match=text) as caught:
        client_for(fault.url).stop_workflow("wf-1", message="bye")
    assert type(caught.value) is error
    assert caught.value.status == status
    assert fault.seen[0].method == "PUT" and fault.seen[0].path.endswith("/wf-1/stop")
    assert json.loads(fault.seen[0].body) == {"name": "wf-1", "namespace": "argo", "message": "bye"}


def test_a_2xx_body_hera_cannot_parse_is_an_argo_error(fault):
    fault.script(answer(200, {"metadata": {"name": "wf-1"}}))  # no spec
    with pytest.raises(ArgoError, match="unexpected answer from the Argo Server"):
        client_for(fault.url).get_workflow("wf-1")


def test_projected_reads_parse_leniently(fault):
    fault.script(answer(200, {"status": {"phase": "Succeeded", "progress": "2/2"}}),
                 answer(200, {"items": [{"metadata": {"name": "a"}, "status": {"phase": "Failed"}}]}),
                 answer(200, {"metadata": {"continue": "20"}, "items": None}))
    client = client_for(fault.url)
    workflow = client.get_workflow("wf-1", fields="status.phase,status.progress")
    assert (workflow.status.phase, workflow.status.progress) == ("Succeeded", "2/2")
    assert workflow.metadata.name is None
    assert fault.seen[0].query == {"fields": ["status.phase,status.progress"]}
    page = client.list_workflows(label_selector="pygeoapi.io/job-id=x", fields="items.metadata.name",
                                 limit=5, continue_="10")
    assert [(w.metadata.name, w.status.phase) for w in page.items] == [("a", "Failed")]
    assert fault.seen[1].query == {"listOptions.labelSelector": ["pygeoapi.io/job-id=x"],
                                   "listOptions.limit": ["5"], "listOptions.continue": ["10"],
                                   "fields": ["items.metadata.name"]}
    empty = client.list_workflows(fields="metadata,items.metadata.name")
    assert empty.items == [] and empty.metadata.continue_ == "20"


# --- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "header"), [("abc", "Bearer abc"), ("Bearer abc", "Bearer abc"),
                                               ("  Bearer v2:x  ", "Bearer v2:x")])
def test_argo_token_with_or_without_bearer(fault, token, header):
    fault.script(answer(200, {"version": "v3.7.18"}))
    assert client_for(fault.url, env={"ARGO_TOKEN": token}).version() == {"version": "v3.7.18"}
    assert fault.seen[0].headers["Authorization"] == header


def test_no_token_no_header(fault):
    fault.script(answer(200, {}))
    client_for(fault.url).version()
    assert "Authorization" not in fault.seen[0].headers


def test_a_changed_token_file_is_read_before_the_next_request(fault, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    fault.script(answer(200, {}), answer(200, {}))
    client = client_for(fault.url, token_file=str(token_file))
    client.version()
    token_file.write_text("second-token\n")
    client.version()
    assert [s.headers["Authorization"] for s in fault.seen] == ["Bearer first", "Bearer second-token"]


def test_a_401_rereads_the_token_file_once_and_repeats(fault, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("old-1")
    fault.script(answer(200, {}), answer(401, {"code": 16, "message": "token expired"}),
                 answer(200, {"ok": 1}))
    client = client_for(fault.url, token_file=str(token_file))
    client.version()
    # a rotation that keeps inode, size and mtime: only the 401 can reveal it
    stat = token_file.stat()
    token_file.write_text("new-2")
    os.utime(token_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert client.version() == {"ok": 1}
    sent = [s.headers["Authorization"] for s in fault.seen]
    assert sent == ["Bearer old-1", "Bearer old-1", "Bearer new-2"]


def test_a_401_with_an_unchanged_token_is_unauthorized_and_never_shows_the_token(fault, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("sup3r-s3cret")
    fault.script(answer(401, {"code": 16, "message": "token Bearer sup3r-s3cret not valid"}))
    client = client_for(fault.url, token_file=str(token_file))
    with pytest.raises(ArgoUnauthorized) as caught:
        client.list_workflows()
    assert len(fault.seen) == 1
    text = f"{caught.value} {caught.value!r} {caught.value.message} {client!r} {client.settings!r}"
    assert "sup3r-s3cret" not in text
    assert "token Bearer *** not valid" in caught.value.message


def test_an_unreadable_token_file_is_unauthorized_naming_the_file(fault, tmp_path):
    client = client_for(fault.url, token_file=str(tmp_path / "missing"))
    with pytest.raises(ArgoUnauthorized, match=r"token file .*missing cannot be read"):
        client.version()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ArgoUnauthorized, match="is empty"):
        client_for(fault.url, token_file=str(tmp_path / "empty")).version()
    assert fault.seen == []


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_fault(certificate) -> Iterator[FaultServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = FaultServer(tls=context)
    yield server
    server.close()


def test_tls_is_verified_by_default(tls_fault, certificate):
    with pytest.raises(ArgoUnavailable, match="TLS handshake failed"):
        client_for(tls_fault.url, retries=0).version()
    tls_fault.script(answer(200, {"via": "ca"}), answer(200, {"via": "insecure"}))
    assert client_for(tls_fault.url, ca_bundle=str(certificate[0])).version() == {"via": "ca"}
    skip = client_for(tls_fault.url, env={"ARGO_INSECURE_SKIP_VERIFY": "true"})
    assert skip.version() == {"via": "insecure"}


# --- the log stream -------------------------------------------------------------------------------


def test_log_stream_lines_split_across_reads(fault):
    first, second = log_line("hello"), log_line("world", pod="p-2")
    fault.script(stream(first[:10], first[10:] + second[:5], second[5:], log_line("")))
    entries = list(client_for(fault.url).workflow_logs("wf-1", tail_lines=10, grep="o"))
    assert entries == [LogEntry("p-1", "hello"), LogEntry("p-2", "world"), LogEntry("p-1", "")]
    assert fault.seen[0].path == "/api/v1/workflows/argo/wf-1/log"
    assert fault.seen[0].query == {"logOptions.container": ["main"], "logOptions.tailLines": ["10"],
                                   "grep": ["o"]}


def test_a_last_line_without_newline_is_kept_when_whole(fault):
    fault.script(stream(log_line("a"), log_line("b").rstrip(b"\n")))
    assert [e.content for e in client_for(fault.url).workflow_logs("wf-1")] == ["a", "b"]


def test_a_log_stream_cut_between_lines_raises_after_what_arrived(fault):
    fault.script(stream(log_line("one"), log_line("two"), cut=True))
    entries = client_for(fault.url).workflow_logs("wf-1", pod_name="wf-1-main-123")
    assert next(entries).content == "one"
    assert next(entries).content == "two"
    with pytest.raises(ArgoUnavailable, match="the log stream broke off"):
        next(entries)
    assert fault.seen[0].query["podName"] == ["wf-1-main-123"]


def test_a_log_stream_cut_mid_line_raises(fault):
    fault.script(stream(log_line("one") + log_line("two")[:12], cut=True))
    with pytest.raises(ArgoUnavailable, match="the log stream broke off"):
        list(client_for(fault.url).workflow_logs("wf-1"))


def test_a_silent_cut_mid_line_is_not_taken_for_the_end(fault):
    fault.script(until_close(log_line("one") + log_line("two")[:12]))
    entries = client_for(fault.url).workflow_logs("wf-1")
    assert next(entries).content == "one"
    with pytest.raises(ArgoUnavailable, match="broke off in the middle of a line"):
        next(entries)


def test_a_stalled_log_stream_times_out(fault):
    fault.script(stream(log_line("one"), hang_after=True))
    entries = client_for(fault.url, timeout=0.5).workflow_logs("wf-1")
    assert next(entries).content == "one"
    with pytest.raises(ArgoUnavailable, match=r"no answer within 0\.5 s"):
        next(entries)


def test_an_error_inside_the_log_stream_is_mapped(fault):
    error = {"error": {"grpc_code": 5, "http_code": 404, "message": "pod deleted",
                       "http_status": "Not Found"}}
    fault.script(stream(log_line("one"), json.dumps(error).encode() + b"\n"))
    entries = client_for(fault.url).workflow_logs("wf-1")
    assert next(entries).content == "one"
    with pytest.raises(ArgoNotFound, match="pod deleted"):
        next(entries)


def test_a_log_request_that_fails_at_once_raises_before_iteration(fault):
    fault.script(answer(404, {"error": {"grpc_code": 5, "http_code": 404, "message": "wf-1 not found"}}))
    with pytest.raises(ArgoNotFound, match="wf-1 not found"):
        client_for(fault.url).workflow_logs("wf-1", follow=True)
    assert fault.seen[0].query["logOptions.follow"] == ["true"]


# --- against the emulator -------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def script_workflow(name: str, source: str, labels: dict[str, str] | None = None) -> Workflow:
    return Workflow.model_validate({
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"entrypoint": "main", "templates": [{
            "name": "main",
            "script": {"image": "python:3.12-slim", "command": ["python"], "source": source},
        }]},
    })


def wait_for(client: ArgoClient, name: str, phases: set[str], timeout: float = 30) -> Workflow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workflow = client.get_workflow(name)
        if workflow.status and workflow.status.phase in phases:
            return workflow
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {phases}")


@pytest.fixture(scope="module")
def argo(emulator) -> Iterator[ArgoClient]:
    client = client_for(emulator.url, namespace=emulator.namespace)
    yield client
    client.close()


def test_emulator_version(argo):
    assert argo.version()["version"].startswith("v3.7")


def test_emulator_create_get_list_logs_delete(argo):
    name = unique("client-ok")
    job = uuid.uuid4().hex
    created = argo.create_workflow(script_workflow(name, "print('hello')\nprint('world')",
                                                   {"pygeoapi.io/job-id": job}))
    assert created.metadata.name == name and created.metadata.uid
    with pytest.raises(ArgoConflict):
        argo.create_workflow(script_workflow(name, "print('again')"))
    done = wait_for(argo, name, {"Succeeded", "Failed", "Error"})
    assert done.status.phase == "Succeeded", done.status.message

    projected = argo.get_workflow(name, fields="metadata.name,status.phase")
    assert (projected.metadata.name, projected.status.phase) == (name, "Succeeded")
    assert projected.spec.templates is None
    page = argo.list_workflows(label_selector=f"pygeoapi.io/job-id={job}")
    assert [w.metadata.name for w in page.items] == [name]
    assert argo.list_workflows(label_selector="pygeoapi.io/job-id=nobody").items == []

    assert [e.content for e in argo.workflow_logs(name)] == ["hello", "world"]
    assert [e.content for e in argo.workflow_logs(name, tail_lines=1)] == ["world"]

    argo.delete_workflow(name)
    with pytest.raises(ArgoNotFound):
        argo.get_workflow(name)
    with pytest.raises(ArgoNotFound):
        argo.delete_workflow(name)


def test_emulator_stop_and_terminate(argo):
    stopped, terminated = unique("client-stop"), unique("client-term")
    for name in (stopped, terminated):
        argo.create_workflow(script_workflow(name, "import time\nprint('up', flush=True)\ntime.sleep(60)"))
        wait_for(argo, name, {"Running"})
    argo.stop_workflow(stopped, message="dismissed")
    argo.terminate_workflow(terminated)
    for name, strategy in ((stopped, "Stop"), (terminated, "Terminate")):
        workflow = wait_for(argo, name, {"Succeeded", "Failed", "Error"})
        assert workflow.spec.shutdown == strategy
        assert workflow.status.phase == "Failed"
        assert workflow.status.message == f"Stopped with strategy '{strategy}'"
    with pytest.raises(ArgoConflict, match="completed"):
        argo.stop_workflow(stopped)
    with pytest.raises(ArgoConflict, match="completed"):
        argo.terminate_workflow(terminated)
    with pytest.raises(ArgoNotFound):
        argo.stop_workflow(unique("client-none"))


def test_emulator_followed_log_ends_with_the_step(argo):
    name = unique("client-follow")
    argo.create_workflow(script_workflow(
        name, "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)"))
    wait_for(argo, name, {"Running", "Succeeded"})
    assert [e.content for e in argo.workflow_logs(name, follow=True)] == ["0", "1", "2"]


def test_emulator_templates(argo):
    name = unique("client-tpl")
    template = WorkflowTemplate.model_validate({
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "script": {
            "image": "python:3.12-slim", "command": ["python"], "source": "print(1)"}}]},
    })
    assert argo.create_workflow_template(template).metadata.name == name
    with pytest.raises(ArgoConflict):
        argo.create_workflow_template(template)
    assert name in [t.metadata.name for t in argo.list_workflow_templates()]
    template.spec.entrypoint = "main"
    template.metadata.annotations = {"pygeoapi.io/version": "2"}
    updated = argo.update_workflow_template(template)
    assert argo.get_workflow_template(name).metadata.annotations == updated.metadata.annotations
    assert updated.metadata.annotations == {"pygeoapi.io/version": "2"}
    argo.delete_workflow_template(name)
    with pytest.raises(ArgoNotFound):
        argo.get_workflow_template(name)
    assert argo.get_workflow_template("echo").spec.entrypoint == "execute"


def test_emulator_cluster_templates(argo):
    name = unique("client-ctpl")
    template = WorkflowTemplate.model_validate({
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "script": {
            "image": "python:3.12-slim", "command": ["python"], "source": "print(1)"}}]},
    })
    cluster = ClusterWorkflowTemplate.model_validate(template.model_dump(by_alias=True, exclude_none=True))
    argo.create_workflow_template(cluster, cluster_scope=True)
    assert name in [t.metadata.name for t in argo.list_workflow_templates(cluster_scope=True)]
    assert name not in [t.metadata.name for t in argo.list_workflow_templates()]
    assert argo.get_workflow_template(name, cluster_scope=True).metadata.name == name
    argo.delete_workflow_template(name, cluster_scope=True)
    with pytest.raises(ArgoNotFound):
        argo.get_workflow_template(name, cluster_scope=True)


def test_emulator_401_then_success_after_the_token_file_changes(start_emulator, tmp_path):
    emulator = start_emulator(token="right-token-123")
    token_file = tmp_path / "token"
    token_file.write_text("wrong")
    client = client_for(emulator.url, token_file=str(token_file))
    with pytest.raises(ArgoUnauthorized) as caught:
        client.list_workflows()
    assert "right-token-123" not in str(caught.value)
    token_file.write_text("right-token-123")
    assert client.list_workflows().items is not None
