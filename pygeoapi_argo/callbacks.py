"""OGC ``subscriber`` callbacks: which URLs a job may call back, and what each call carries.

A client names up to three URIs when it executes (``successUri``, ``inProgressUri``, ``failedUri``);
the reconciler POSTs to them as the job moves on (``reconciler.py``; the job store records each one
sent, so none is repeated after a restart). The server makes these requests on a client's say-so,
so they are a way into the network it sits in: a URL whose host resolves to an address that is not
public (loopback, private, link-local, ...) is refused unless the process allows internal requests
(pygeoapi's ``allow_internal_requests`` of the process). The check runs at execute (an OGC 400) and
again before every call, since a host's DNS answer may change in between. Redirects are not
followed, for the same reason.

Bodies (OGC API - Processes 1.0, callbacks): ``successUri`` gets the results document, as
``GET /jobs/{id}/results`` answers it; ``inProgressUri`` the job's statusInfo; ``failedUri`` an OGC
exception naming the job and why it failed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import InvalidParameterValue
from .jobs import CALLBACKS, JobRecord

FAILED_TYPE = "JobFailed"
MAX_BACKOFF = 300.0


class CallbackRefused(Exception):
    """The URL may not be called at all (not http(s), or an internal address): retrying cannot help."""


def subscriber_document(subscriber: Any, *, allow_internal: bool) -> dict[str, str] | None:
    """pygeoapi's ``Subscriber`` as the stored ``{"successUri": ..., ...}``, every URL checked;
    ``InvalidParameterValue`` (an OGC 400) for a URL that may not be called."""
    if subscriber is None:
        return None
    given = {"successUri": subscriber.success_uri, "inProgressUri": subscriber.in_progress_uri,
             "failedUri": subscriber.failed_uri}
    document = {kind: url for kind, url in given.items() if url not in (None, "")}
    for kind, url in document.items():
        if not isinstance(url, str):
            raise InvalidParameterValue(f"subscriber.{kind} must be a URL string", name="subscriber")
        try:
            check_url(url, allow_internal=allow_internal)
        except CallbackRefused as err:
            raise InvalidParameterValue(f"subscriber.{kind} refused: {err}", name="subscriber") from None
        except OSError:
            raise InvalidParameterValue(f"subscriber.{kind} refused: its host cannot be resolved",
                                        name="subscriber") from None
    return document or None


def check_url(url: str, *, allow_internal: bool) -> None:
    """Raise CallbackRefused unless ``url`` may be called; OSError if its host does not resolve
    (perhaps for the moment only: a caller may try again later)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackRefused("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("only http and https URLs with a host can be called back")
    if allow_internal:
        return
    for *_, address in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
        if not ipaddress.ip_address(address[0].split("%", 1)[0]).is_global:
            raise CallbackRefused("its host is an internal address, and this process does not allow "
                                  "internal requests")


def body(kind: str, record: JobRecord, *, job_url: str, results: Any = None) -> dict[str, Any]:
    """What the ``kind`` callback of a job POSTs (``results``: the document, for ``successUri``)."""
    if kind not in CALLBACKS:
        raise ValueError(f"not a subscriber callback: {kind!r}")
    if kind == "successUri":
        return results
    if kind == "failedUri":
        return {"type": FAILED_TYPE, "title": "Job failed", "detail": record.message or "the job failed",
                "instance": job_url, "jobID": record.job_id, "processID": record.process_id}
    info = {"type": "process", "jobID": record.job_id, "processID": record.process_id,
            "status": record.status, "message": record.message, "progress": record.progress,
            "created": _iso(record.created), "started": _iso(record.started), "updated": _iso(record.updated),
            "links": [{"href": job_url, "rel": "status", "type": "application/json", "title": "Job status"}]}
    return {key: value for key, value in info.items() if value is not None}


def send(url: str, payload: Any, *, allow_internal: bool, timeout: float = 10.0) -> str | None:
    """POST ``payload`` as JSON; None when the subscriber took it (2xx), else a short reason (no URL:
    it may carry a token). Raises CallbackRefused if the URL may not be called at all."""
    try:
        check_url(url, allow_internal=allow_internal)
        response = requests.post(url, json=payload, timeout=timeout, allow_redirects=False)
    except OSError as err:  # DNS, connection and timeout errors (requests' included)
        return f"not delivered: {type(err).__name__}"
    with response:
        if 200 <= response.status_code < 300:
            return None
        return f"the subscriber answered {response.status_code}"


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: 1, 2, 4, ... up to five minutes."""
    return min(2.0 ** attempts, MAX_BACKOFF)


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None
