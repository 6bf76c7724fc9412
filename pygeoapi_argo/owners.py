"""Per-user isolation: every job belongs to the user who submitted it, and only that user sees it.

pygeoapi authenticates nobody, so the user comes from a trusted reverse proxy (oauth2-proxy, an
ingress with external auth) that sets a request header, ``X-Forwarded-User`` by default name
(``server.manager.isolation.header``). Off unless that key is set. When it is on:

- the owner is stored in the job record (``owner``) and stamped on the workflow as the label
  ``pygeoapi.io/owner`` (sanitised to a Kubernetes label value, for operators' ``-l`` selectors);
- ``/jobs`` lists the caller's jobs only (a SQL filter); a job of someone else answers exactly as a
  job that does not exist (404, ``no-such-job``) on status, results, logs and dismiss, so job ids
  of others cannot even be confirmed;
- a job request without the header answers 403: it did not come through the proxy, and pygeoapi
  cannot challenge for credentials itself (a 401 would need a ``WWW-Authenticate`` scheme it does
  not have). Process descriptions, OpenAPI, ``/conformance`` and ``/metrics`` (aggregate counts)
  stay open.

Jobs without an owner (runs of cron schedules, jobs from before isolation was turned on) are shown
to nobody while isolation is on. The proxy must strip the header from client requests, or any
client can claim any user.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from http import HTTPStatus

from flask import Flask, Response, has_request_context, request

from .jobs import JobFilter, JobRecord
from .settings import IsolationSettings

LABEL_OWNER = "pygeoapi.io/owner"
MAX_OWNER = 255  # the job table's ``owner`` column
_LABEL_MAX = 63  # a Kubernetes label value
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def current(settings: IsolationSettings) -> str | None:
    """The calling user, or ``None`` when isolation is off or there is no request (the reconciler)."""
    if not settings.enabled or not has_request_context():
        return None
    return request.headers.get(settings.header, "").strip() or None


def visible(settings: IsolationSettings, record: JobRecord) -> bool:
    """Whether the caller may see (and touch) the job: always outside requests or with isolation off."""
    if not settings.enabled or not has_request_context():
        return True
    owner = current(settings)
    return owner is not None and record.owner == owner


def restrict(settings: IsolationSettings, where: JobFilter) -> JobFilter:
    """A job-list filter narrowed to the caller's jobs when isolation is on."""
    owner = current(settings)
    return dataclasses.replace(where, owner=owner) if owner is not None else where


def labels(owner: str | None) -> dict[str, str]:
    """The owner label of a job's workflow (none without an owner)."""
    return {LABEL_OWNER: label_value(owner)} if owner is not None else {}


def label_value(owner: str) -> str:
    """``owner`` as a label value (at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends). An
    owner that had to change (``alice@example.org``) gets a hash of the original appended, so two
    users never share a label value; the job record keeps the owner unchanged."""
    clean = _NOT_IN_LABEL.sub("-", owner).strip("-_.")
    if clean == owner and len(owner) <= _LABEL_MAX:
        return owner
    digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
    clean = clean[: _LABEL_MAX - len(digest) - 1].strip("-_.")
    return f"{clean}-{digest}" if clean else digest


def _is_job_request(prefix: str) -> bool:
    """Requests that create, list, read or dismiss jobs (CORS preflights excepted)."""
    rule = request.url_rule.rule if request.url_rule is not None else ""
    if request.method == "OPTIONS":
        return False
    if rule == f"{prefix}/jobs" or rule.startswith(f"{prefix}/jobs/"):
        return True
    return request.method == "POST" and rule in (f"{prefix}/processes/<process_id>/execution",
                                                 f"{prefix}/processes/<process_id>/jobs")


def _exception(status: int, code: str, description: str) -> Response:
    body = {"type": code, "code": code, "description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def install(app: Flask, settings: IsolationSettings, prefix: str) -> None:
    """Refuse job requests that carry no owner (403) or an owner too long to store (400)."""
    if not settings.enabled:
        return

    @app.before_request
    def require_owner() -> Response | None:
        if not _is_job_request(prefix):
            return None
        owner = request.headers.get(settings.header, "").strip()
        if not owner:
            return _exception(HTTPStatus.FORBIDDEN, "Forbidden",
                              f"jobs are per user here: the request lacks the {settings.header} header "
                              "that the authenticating proxy sets")
        if len(owner) > MAX_OWNER:
            return _exception(HTTPStatus.BAD_REQUEST, "InvalidParameterValue",
                              f"the {settings.header} header is longer than {MAX_OWNER} characters")
        return None
