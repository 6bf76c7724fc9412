"""Our exception types, each mapped once to an OGC exception code and an HTTP status.

Modules raise these; the manager turns them into pygeoapi's ``ProcessorExecuteError`` (or the
job errors pygeoapi knows) at its edge, so the mapping to HTTP lives here and nowhere else.
"""

from __future__ import annotations

from http import HTTPStatus


class ArgoPluginError(Exception):
    """Base: ``message`` is safe to show a client (no secrets, no internal URLs with tokens)."""

    ogc_code = "NoApplicableCode"
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValue(ArgoPluginError):
    """An execute input (or query parameter) is malformed: nothing was submitted."""

    ogc_code = "InvalidParameterValue"
    http_status = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class MissingParameterValue(InvalidParameterValue):
    ogc_code = "MissingParameterValue"


class UnsupportedMediaType(ArgoPluginError):
    """A request body in a media type we do not read (the execute request is JSON): nothing ran."""

    ogc_code = "UnsupportedMediaType"
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class ConfigurationError(ArgoPluginError):
    """Settings or process configuration that cannot work; raised at start-up."""


# --- Argo Server answers, mapped by ArgoClient -------------------------------------------------


class ArgoError(ArgoPluginError):
    """Any failed conversation with the Argo Server."""

    ogc_code = "ServiceUnavailable"
    http_status = HTTPStatus.BAD_GATEWAY

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ArgoNotFound(ArgoError):
    ogc_code = "NotFound"
    http_status = HTTPStatus.NOT_FOUND


class ArgoConflict(ArgoError):
    """409: the object exists already (a retried create of the same workflow is success)."""

    ogc_code = "Conflict"
    http_status = HTTPStatus.CONFLICT


class ArgoUnauthorized(ArgoError):
    """401/403: the token is missing, wrong or lacks rights. Never carries the token."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class ArgoUnavailable(ArgoError):
    """Unreachable, timed out, or a 5xx after the retries: the client may try again later.

    ``unsent`` is true when no connection was made, so the request cannot have had an effect.
    """

    http_status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, message: str, *, status: int | None = None, unsent: bool = False) -> None:
        super().__init__(message, status=status)
        self.unsent = unsent


class ArgoRejected(ArgoError):
    """400/422: Argo refused what we sent (e.g. a template that does not validate)."""

    http_status = HTTPStatus.BAD_GATEWAY


# --- storage -----------------------------------------------------------------------------------


class StorageError(ArgoPluginError):
    """S3 unreachable or refusing: results cannot be listed or signed right now."""

    ogc_code = "ServiceUnavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


# --- job store and results ---------------------------------------------------------------------


class JobNotFound(ArgoPluginError):
    """No job with this id in the job store."""

    ogc_code = "NoSuchJob"
    http_status = HTTPStatus.NOT_FOUND


class JobConflict(ArgoPluginError):
    """A job store write refused: the id exists already, or a status change would take a job back
    (e.g. a dismissed job becoming successful). The job's stored state is unchanged."""

    ogc_code = "Conflict"
    http_status = HTTPStatus.CONFLICT


class UnknownOutput(InvalidParameterValue):
    """The execute request's ``outputs`` names an output the process (or the job's results) lacks."""


class ResultsError(ArgoPluginError):
    """A finished workflow's outputs cannot be read as results (e.g. a manifest naming a bare key
    with no bucket to put it in). The job is recorded failed with this message."""

    http_status = HTTPStatus.BAD_GATEWAY


class StacError(ArgoPluginError):
    """A STAC Item could not be registered (catalog or API unreachable or refusing). Never fails the
    job: the job's status message says so and the registration is retried later."""

    ogc_code = "ServiceUnavailable"
    http_status = HTTPStatus.BAD_GATEWAY


class StacUnavailable(StacError):
    """The STAC destination did not answer (unreachable, timed out, or a 5xx), as opposed to refusing
    one Item: the other Items bound for it would wait just as long, so a round of retries stops."""
