"""Fault injection for tests: what a real Argo Server (or the network in front of it) does on a bad day.

Not Argo: a control endpoint outside ``/api``, so no Argo client can reach it by accident.

- ``POST /_emulator/faults`` arms one fault (JSON): ``operation`` is the name of the emulator's handler
  (``create_workflow``, ``get_workflow``, ``list_workflows``, ``workflow_logs``, ``watch_workflows``,
  ...; ``*`` for every ``/api`` request), ``path`` an optional regular expression the request path must
  contain, ``times`` how many requests it hits (``null``: until cleared). Then exactly one of
  ``status`` (answer that HTTP status with an Argo error body instead of handling the request),
  ``delay`` (seconds to wait before handling it normally) or ``drop_after`` (a streamed answer such as
  a log is cut off, the connection closed without its end, after that many lines). Answers the fault
  with its ``id``.
- ``GET /_emulator/faults``: the armed faults, each with ``hits`` (requests it has hit so far), so a
  test can prove its fault was met; ``DELETE /_emulator/faults`` clears them all.

The first armed fault that matches a request applies; faults that are used up are kept (``left: 0``)
for their ``hits`` until cleared.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

CONTROL_PATH = "/_emulator/faults"
# gRPC codes grpc-gateway answers with these HTTP statuses (Internal, Unavailable, DeadlineExceeded...)
_GRPC_CODES = {500: 13, 502: 14, 503: 14, 504: 4, 429: 8}


class FaultError(ValueError):
    """A control request that does not describe a fault."""


@dataclass
class Fault:
    id: int
    operation: str
    path: str | None = None
    times: int | None = 1
    status: int | None = None
    delay: float | None = None
    drop_after: int | None = None
    hits: int = 0

    @property
    def left(self) -> int | None:
        return None if self.times is None else max(self.times - self.hits, 0)

    def matches(self, operation: str, path: str) -> bool:
        return (self.left != 0 and self.operation in ("*", operation)
                and (self.path is None or re.search(self.path, path) is not None))

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "left": self.left}


def parse(data: object, fault_id: int) -> Fault:
    """A fault from a control request's JSON body; ``FaultError`` says what is wrong with it."""
    if not isinstance(data, dict):
        raise FaultError("a fault is a JSON object")
    unknown = set(data) - {"operation", "path", "times", "status", "delay", "drop_after"}
    if unknown:
        raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    operation = data.get("operation")
    if not isinstance(operation, str) or not operation:
        raise FaultError("'operation' (a handler name, or '*') is required")
    kinds = [k for k in ("status", "delay", "drop_after") if data.get(k) is not None]
    if len(kinds) != 1:
        raise FaultError("give exactly one of 'status', 'delay' or 'drop_after'")
    status, delay, drop_after = data.get("status"), data.get("delay"), data.get("drop_after")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultError("'status' must be an HTTP error status (400-599)")
    if delay is not None and (not isinstance(delay, int | float) or delay < 0):
        raise FaultError("'delay' must be a number of seconds")
    if drop_after is not None and (not isinstance(drop_after, int) or drop_after < 0):
        raise FaultError("'drop_after' must be a number of lines")
    times = data.get("times", 1)
    if times is not None and (not isinstance(times, int) or times < 1):
        raise FaultError("'times' must be a positive number, or null for a permanent fault")
    path = data.get("path")
    if path is not None:
        try:
            re.compile(path)
        except (re.error, TypeError) as error:
            raise FaultError(f"'path' is not a regular expression: {error}") from None
    return Fault(id=fault_id, operation=operation, path=path, times=times, status=status,
                 delay=None if delay is None else float(delay), drop_after=drop_after)


class Faults:
    """The armed faults of one emulator; shared by its request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    # --- control ----------------------------------------------------------------------------------

    def control(self, request: Request) -> Response:
        if request.method == "GET":
            with self._lock:
                return _json([f.as_json() for f in self._faults])
        if request.method == "DELETE":
            with self._lock:
                self._faults.clear()
            return _json({})
        if request.method != "POST":
            return _json({"message": f"{request.method} is not allowed here"}, 405)
        try:
            data = json.loads(request.get_data(cache=False) or b"null")
            with self._lock:
                fault = parse(data, self._next_id)
                self._next_id += 1
                self._faults.append(fault)
                return _json(fault.as_json())
        except (ValueError, UnicodeDecodeError) as error:  # FaultError included
            return _json({"message": str(error)}, 400)

    # --- applying ---------------------------------------------------------------------------------

    def take(self, operation: str, request: Request) -> Fault | None:
        """The fault that hits this request (counted as hit), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(operation, request.path):
                    fault.hits += 1
                    return fault
        return None

    @staticmethod
    def answer(fault: Fault | None) -> Response | None:
        """What the request gets instead of its handler's answer (after a delay it gets the real one)."""
        if fault is None:
            return None
        if fault.delay is not None:
            time.sleep(fault.delay)
        if fault.status is not None:
            body = {"code": _GRPC_CODES.get(fault.status, 2),
                    "message": f"injected fault {fault.id}: HTTP {fault.status}"}
            return _json(body, fault.status)
        return None

    def stream(self, fault: Fault | None, operation: str, request: Request, response: Response) -> Response:
        """A streamed answer (logs, watch) broken off by closing the connection without its final
        chunk, as when a proxy or a node goes: after ``drop_after`` lines, or at its next line once a
        status fault for its operation is armed (the server went down under an open stream)."""
        if not response.is_streamed:
            return response
        lines = fault.drop_after if fault is not None else None
        sock = request.environ.get("werkzeug.socket")
        down = lambda: self._down(operation, request.path)  # noqa: E731
        response.response = self._broken(response.response, lines, down, sock)
        return response

    def _down(self, operation: str, path: str) -> bool:
        with self._lock:
            return any(f.status is not None and f.matches(operation, path) for f in self._faults)

    @staticmethod
    def _broken(chunks: Iterable[bytes], lines: int | None, down: Callable[[], bool],
                sock: socket.socket | None) -> Iterator[bytes]:
        sent = 0
        for chunk in chunks:
            for line in chunk.splitlines(keepends=True) or [chunk]:
                if (lines is not None and sent >= lines) or down():
                    _close(sock)
                    return
                yield line
                sent += line.endswith(b"\n")
        if lines is not None:
            _close(sock)


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):  # the client went first
            sock.shutdown(socket.SHUT_RDWR)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")

