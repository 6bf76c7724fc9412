"""pygeoapi's own debug log of execute requests, masked.

pygeoapi 0.24 (unpatched) logs every execute request's raw body and its ``inputs`` at DEBUG, before
any plugin sees them, so a secret a client sends (refused by ``inputs.py`` a moment later) would
land in the log. A filter on that logger rewrites those two records with the secret-looking values
masked (``inputs.mask``) and leaves every other record alone.
"""

from __future__ import annotations

import json
import logging

from flask import has_request_context, request

from .inputs import mask

PYGEOAPI_PROCESSES_LOGGER = "pygeoapi.api.processes"
UNREADABLE = "[execute request body not logged: not a JSON object]"


class ExecuteRequestMask(logging.Filter):
    """Masks the execute body (a string equal to the request's body) and the inputs (a dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName != "execute_process" or record.args:
            return True
        if isinstance(record.msg, dict):
            record.msg = mask(record.msg)
        elif (isinstance(record.msg, str) and has_request_context()
              and record.msg == request.get_data(as_text=True)):
            try:
                record.msg = json.dumps(mask(json.loads(record.msg)))
            except ValueError:
                record.msg = UNREADABLE
        return True


def install() -> None:
    """Once per process (idempotent: workers of a preloaded app would add it twice)."""
    logger = logging.getLogger(PYGEOAPI_PROCESSES_LOGGER)
    if not any(isinstance(f, ExecuteRequestMask) for f in logger.filters):
        logger.addFilter(ExecuteRequestMask())
