"""Our additions to pygeoapi's Flask app: the eodash contract and answers pygeoapi gets wrong.

pygeoapi 0.24 must run unpatched, so everything it does not do for us is added around it here:
- ``POST /processes/{id}/jobs`` as an alias of ``/execution`` (OGC 1.0 drafts and some clients use it);
- job status JSON with ``job_start_datetime``/``job_end_datetime`` and the JSON results link at
  ``links[1]``, where eodash reads it;
- results of a failed job answer the failure reason instead of pygeoapi's bare "job failed";
- a process whose description cannot be read from Argo answers 503, not a stub description;
- execute bodies over the configured size, not UTF-8, or not a JSON object answer an OGC 400
  (pygeoapi answers Werkzeug's HTML 413 or a 500);
- results of a dismissed job answer 404.

CORS (with ``Location`` exposed) is pygeoapi's own ``server.cors: true`` (flask-cors).
pygeoapi reads ``PYGEOAPI_CONFIG``/``PYGEOAPI_OPENAPI`` when its Flask module is imported, so this
module does too: ``gunicorn pygeoapi_argo.web:app``.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Flask, Response, request
from pygeoapi.process.base import JobNotFoundError
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import ArgoPluginError


def _exception(status: int, code: str, description: str) -> Response:
    body = {"type": code, "code": code, "description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json")


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
        *others,
    ]


def _refuse_bad_body() -> Response | None:
    """pygeoapi answers 500 for an execute body that is not UTF-8 or not a JSON object."""
    try:
        body = json.loads(request.get_data().decode("utf-8"))
    except UnicodeDecodeError:
        return _exception(HTTPStatus.BAD_REQUEST, "InvalidParameterValue", "the request body is not UTF-8")
    except ValueError:
        return None  # pygeoapi's own 400 for JSON it cannot parse
    if not isinstance(body, dict):
        return _exception(HTTPStatus.BAD_REQUEST, "InvalidParameterValue",
                          "the execute request must be a JSON object with 'inputs'")
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
    app.config["MAX_CONTENT_LENGTH"] = manager.settings.max_request_bytes

    app.add_url_rule(f"{prefix}/processes/<process_id>/jobs", "execute_process_jobs_alias",
                     flask_app.execute_process_jobs, methods=["POST"])

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err: RequestEntityTooLarge) -> Response:
        return _exception(HTTPStatus.BAD_REQUEST, "InvalidParameterValue",
                          f"request body larger than {manager.settings.max_request_bytes} bytes")

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
        response.set_data(json.dumps(document))
        return response

    return app


app = create_app()
