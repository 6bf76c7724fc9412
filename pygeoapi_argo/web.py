"""Our additions to pygeoapi's Flask app: the eodash contract and answers pygeoapi gets wrong.

pygeoapi 0.24 must run unpatched, so everything it does not do for us is added around it here:
- ``POST /processes/{id}/jobs`` as an alias of ``/execution`` (OGC 1.0 drafts and some clients use it);
- job status JSON with ``job_start_datetime``/``job_end_datetime`` and the JSON results link at
  ``links[1]``, where eodash reads it;
- results of a failed job answer the failure reason instead of pygeoapi's bare "job failed";
- a process whose description cannot be read from Argo answers 503, not a stub description;
- execute bodies over the configured size, not UTF-8, not a JSON object, too deep or holding NUL
  (``execute_request.py``) answer an OGC 400, and a body that is not JSON a 415 (pygeoapi answers
  Werkzeug's HTML 413, a 500, or runs the job);
- Werkzeug's own errors (unknown route, method not allowed, 500) answer an OGC exception in JSON,
  not an HTML page, unless the client asked ``f=html``;
- results of a dismissed job answer 404;
- ``GET /jobs`` with the OGC job-list filters (``joblist.py``), applied in SQL by the job store;
- the ``job-list`` and ``dismiss`` conformance classes, and OGC exception ``type`` URIs for unknown
  processes and jobs and results not ready;
- the reconciler (``reconciler.py``: job refresh, subscriber callbacks), started in every worker;
- the processes' cron schedules synced to Argo CronWorkflows at start, in the background
  (``schedules.py``), and ``scheduleID`` on the status of a job that is a run of one;
- per-user jobs behind a trusted proxy's user header (``owners.py``), and secret-looking inputs
  masked in pygeoapi's own debug log (``log_masking.py``);
- ``GET /jobs/{id}/logs`` (``logs.py``) with a ``logs`` link in the job status, a finished job's
  ``duration`` and ``resourcesDuration`` there, and ``GET /metrics`` (``metrics.py``).

CORS (with ``Location`` exposed) is pygeoapi's own ``server.cors: true`` (flask-cors).
pygeoapi reads ``PYGEOAPI_CONFIG``/``PYGEOAPI_OPENAPI`` when its Flask module is imported, so this
module does too: ``gunicorn pygeoapi_argo.web:app``.
"""

from __future__ import annotations

import atexit
import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, request, stream_with_context
from pygeoapi.api import API, SYSTEM_LOCALE, APIRequest
from pygeoapi.formats import F_HTML
from pygeoapi.process.base import JobNotFoundError
from pygeoapi.util import DATETIME_FORMAT, render_j2_template, to_json
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import execute_request, joblist, log_masking, logs, metrics, owners, reconciler, schedules, stac
from .errors import ArgoPluginError, InvalidParameterValue

# No registry names a relation for a job's log; clients look for this one (text/plain).
LOGS_REL = "logs"
# OGC 18-062r2 conformance classes served on top of pygeoapi's: the job list filters (``joblist.py``)
# and DELETE /jobs/{id} (the manager's dismiss).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback",
)
# OGC exception ``type`` URIs for pygeoapi's codes; the ``code`` member stays as pygeoapi writes it.
EXCEPTION_TYPES = {
    "NoSuchProcess": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process",
    "NoSuchJob": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job",
    "ResultNotReady": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready",
}


def _exception(status: int, code: str, description: str) -> Response:
    body = {"type": code, "code": code, "description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def add_operations_routes(app: Flask, manager: Any, prefix: str) -> None:
    """``GET /jobs/{id}/logs`` (``logs.py``) and ``GET /metrics`` (``metrics.py``)."""

    @app.route(f"{prefix}/jobs/<job_id>/logs", methods=["GET"])
    def job_logs(job_id: str) -> Response:
        try:
            record = manager.job(job_id)
        except JobNotFoundError:
            return _exception(HTTPStatus.NOT_FOUND, "NoSuchJob", f"no job {job_id}")
        try:
            tail = logs.parse_tail(request.args.get("tail"))
            if record.is_final and record.logs is None:
                logs.archive(manager, record, None)  # a job that ended unseen, or an earlier try failed
                record = manager.store.get(job_id) or record
            lines = logs.job_log(manager, record, step=request.args.get("step"), tail=tail)
        except ArgoPluginError as err:
            return _exception(err.http_status, err.ogc_code, err.message)
        return Response(stream_with_context(lines), mimetype="text/plain")

    @app.route(f"{prefix}/metrics", methods=["GET"])
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition(manager.store, request.headers.get("Accept", ""))
        return Response(body, content_type=content_type)


def _is_json(response: Response) -> bool:
    # pygeoapi replaces the headers with a plain dict, so ``response.mimetype`` is None
    return str(response.headers.get("Content-Type", "")).startswith("application/json")


def status_info(job: dict, job_url: str) -> None:
    """pygeoapi's job JSON made a valid OGC statusInfo that eodash can read, in place.

    OGC: no ``null`` members (``finished`` of a running job is absent, not null). eodash: the
    start and end under its own names, and the JSON results link at ``links[1]``.
    """
    job["job_start_datetime"] = job.get("started")
    job["job_end_datetime"] = job.get("finished")
    for key in [k for k, v in job.items() if v is None and not k.startswith("job_")]:
        del job[key]
    others = [link for link in job.get("links", [])
              if link.get("rel") not in ("self", "http://www.opengis.net/def/rel/ogc/1.0/results")]
    job["links"] = [
        {"href": f"{job_url}?f=json", "rel": "self", "type": "application/json", "title": "Job status"},
        {"href": f"{job_url}/results?f=json", "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
         "type": "application/json", "title": "Job results as JSON"},
        *[link for link in others if link.get("rel") != LOGS_REL],
        {"href": f"{job_url}/logs", "rel": LOGS_REL, "type": "text/plain", "title": "Job logs"},
    ]


def usage_members(manager: Any, jobs: list[dict]) -> None:
    """A finished job's ``duration`` (seconds, finished - started) and Argo's ``resourcesDuration``
    (``cpu`` core-seconds, ``memory`` (100Mi)-seconds) added to its status, from the job store."""
    records = manager.store.get_many([job["jobID"] for job in jobs])
    for job in jobs:
        record = records.get(job["jobID"])
        if record is None or not record.is_final:
            continue
        if record.started and record.finished:
            job["duration"] = round((record.finished - record.started).total_seconds(), 3)
        if record.cpu_seconds is not None or record.memory_seconds is not None:
            job["resourcesDuration"] = {k: v for k, v in (("cpu", record.cpu_seconds),
                                                          ("memory", record.memory_seconds)) if v is not None}


def schedule_members(manager: Any, jobs: list[dict]) -> None:
    """A run of a schedule (``schedules.py``) names it: ``scheduleID``."""
    records = manager.store.get_many([job["jobID"] for job in jobs])
    for job in jobs:
        record = records.get(job["jobID"])
        if record is not None and record.schedule_id is not None:
            job["scheduleID"] = record.schedule_id


def stac_links(manager: Any, jobs: list[dict]) -> None:
    """A registered job's status links to its STAC Item (after eodash's two links); the results
    document stays layers-only, as eodash reads every key of it as a layer."""
    records = manager.store.get_many([job["jobID"] for job in jobs])
    for job in jobs:
        record = records.get(job["jobID"])
        link = stac.item_link(record, manager.storage.presign) if record is not None else None
        if link is not None:
            job["links"].append(link)


def _refuse_bad_body() -> Response | None:
    """pygeoapi answers 500 (or runs the job) for execute bodies ``execute_request`` refuses."""
    try:
        execute_request.check(request.get_data(), request.headers.get("Content-Type"))
    except ArgoPluginError as err:
        return _exception(err.http_status, err.ogc_code, err.message)
    return None


def create_app() -> Flask:
    from pygeoapi import flask_app

    from .manager import ArgoManager

    app = flask_app.APP
    manager = flask_app.api_.manager
    if not isinstance(manager, ArgoManager):
        return app
    prefix = flask_app.BLUEPRINT.url_prefix or ""
    base_url = flask_app.api_.base_url
    manager.base_url = base_url
    app.config["MAX_CONTENT_LENGTH"] = manager.settings.max_request_bytes
    owners.install(app, manager.settings.isolation, prefix)  # first: no owner, no look at the request
    log_masking.install()  # pygeoapi logs execute bodies at DEBUG: secrets masked

    app.add_url_rule(f"{prefix}/processes/<process_id>/jobs", "execute_process_jobs_alias",
                     flask_app.execute_process_jobs, methods=["POST"])

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err: RequestEntityTooLarge) -> Response:
        return _exception(HTTPStatus.BAD_REQUEST, "InvalidParameterValue",
                          f"request body larger than {manager.settings.max_request_bytes} bytes")

    @app.errorhandler(OperationalError)
    def job_store_unavailable(_err: OperationalError) -> Response:
        # e.g. SQLite locked for longer than its busy timeout, or PostgreSQL restarting
        return _exception(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable",
                          "the job store is unavailable right now; try again shortly")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response | HTTPException:
        if request.args.get("f") == F_HTML:
            return err
        return _exception(err.code or HTTPStatus.INTERNAL_SERVER_ERROR, err.name.replace(" ", ""),
                          err.description or err.name)

    @app.before_request
    def check_process_request() -> Response | None:
        args = request.view_args or {}
        process_id = args.get("process_id")
        if process_id not in manager.processes:
            return None
        if request.method == "POST":
            return _refuse_bad_body()
        if request.method != "GET":
            return None
        try:
            manager.catalog.describe(process_id)
        except ArgoPluginError as err:
            return _exception(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable",
                              err.message)
        return None

    original_results = app.view_functions["pygeoapi.get_job_result"]

    def job_results(job_id: str) -> Response:
        try:
            record = manager.job(job_id)
        except JobNotFoundError:
            return original_results(job_id=job_id)  # pygeoapi's 404
        if record.status == "failed":
            return _exception(HTTPStatus.BAD_REQUEST, "JobFailed",
                              f"job {job_id} failed: {record.message or 'no reason recorded'}")
        if record.status == "dismissed":
            return _exception(HTTPStatus.NOT_FOUND, "NoSuchJob", f"job {job_id} was dismissed")
        return original_results(job_id=job_id)

    app.view_functions["pygeoapi.get_job_result"] = job_results

    default_limit = flask_app.api_.config["server"].get("limits", {}).get("default_items", 10)

    def job_list(api: API, api_request: APIRequest) -> tuple[dict, int, str]:
        """pygeoapi's ``get_jobs`` for the list, with the OGC filters read and applied in SQL."""
        headers = api_request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
        try:
            query = joblist.parse(request.args.to_dict(flat=False), default_limit=default_limit,
                                  now=datetime.now(UTC))
        except InvalidParameterValue as err:
            return api.get_exception(HTTPStatus.BAD_REQUEST, headers, api_request.format,
                                     "InvalidParameterValue", err.message)
        page = manager.get_jobs(limit=query.limit, offset=query.offset,
                                where=owners.restrict(manager.settings.isolation, query.where))
        fmt = "html" if api_request.format == F_HTML else "json"
        document = joblist.document(page["jobs"], page["numberMatched"], query,
                                    jobs_url=f"{base_url}/jobs", fmt=fmt)
        if fmt == "json":
            return headers, HTTPStatus.OK, to_json(document, api.pretty_print)
        data = {"jobs": document, "offset": query.offset, "now": datetime.now(UTC).strftime(DATETIME_FORMAT)}
        return headers, HTTPStatus.OK, render_j2_template(
            api.tpl_config, api.config["server"]["templates"], "jobs/index.html", data, api_request.locale)

    original_jobs = app.view_functions["pygeoapi.get_jobs"]

    def jobs(job_id: str | None = None) -> Response:
        if job_id is not None:
            return original_jobs(job_id=job_id)  # a job's status or its dismissal: pygeoapi's
        return flask_app.execute_from_flask(job_list, request)

    app.view_functions["pygeoapi.get_jobs"] = jobs

    @app.after_request
    def conformance_classes(response: Response) -> Response:
        if (request.endpoint != "pygeoapi.conformance" or response.status_code != HTTPStatus.OK
                or not _is_json(response)):
            return response
        document = json.loads(response.get_data())
        document["conformsTo"] += [c for c in CONFORMANCE if c not in document["conformsTo"]]
        response.set_data(json.dumps(document))
        return response

    @app.after_request
    def exception_types(response: Response) -> Response:
        if response.status_code != HTTPStatus.NOT_FOUND or not _is_json(response):
            return response
        document = json.loads(response.get_data())
        code = document.get("code") if isinstance(document, dict) else None
        # pygeoapi answers an unknown job's status with code InvalidParameterValue
        if request.endpoint == "pygeoapi.get_jobs" and (request.view_args or {}).get("job_id"):
            code = "NoSuchJob"
        if code in EXCEPTION_TYPES:
            document["type"] = EXCEPTION_TYPES[code]
            response.set_data(json.dumps(document))
        return response

    @app.after_request
    def job_status_documents(response: Response) -> Response:
        if (request.endpoint != "pygeoapi.get_jobs" or request.method != "GET"
                or response.status_code != HTTPStatus.OK
                # pygeoapi replaces the headers with a plain dict, so ``response.mimetype`` is None
                or not str(response.headers.get("Content-Type", "")).startswith("application/json")):
            return response
        document = json.loads(response.get_data())
        for job in document.get("jobs", [document]):
            status_info(job, f"{base_url}/jobs/{job['jobID']}")
        stac_links(manager, document.get("jobs", [document]))
        usage_members(manager, document.get("jobs", [document]))
        schedule_members(manager, document.get("jobs", [document]))
        response.set_data(json.dumps(document))
        return response

    @app.after_request
    def dismiss_document(response: Response) -> Response:
        """pygeoapi's dismiss answer lacks the statusInfo's required ``type`` and any Content-Type."""
        if (request.endpoint != "pygeoapi.get_jobs" or request.method != "DELETE"
                or response.status_code != HTTPStatus.OK):
            return response
        document = json.loads(response.get_data())
        document["type"] = "process"
        response.set_data(json.dumps(document))
        response.headers["Content-Type"] = "application/json"
        return response

    add_operations_routes(app, manager, prefix)
    # Every worker process runs one; the job store's lease lets exactly one of them work.
    running = reconciler.start(manager, base_url)
    if running is not None:
        atexit.register(running.stop)
        app.extensions["pygeoapi_argo.reconciler"] = running
    schedules.sync_in_background(manager)  # best effort: Argo down must not keep pygeoapi from starting
    return app


app = create_app()
