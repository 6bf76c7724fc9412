"""Outputs from an S3 prefix: the files a job left under ``outputs_prefix``, grouped into outputs.

A process that writes many files (tiles, bands, one file per date) declares where they go instead
of listing them in a manifest; the prefix is listed once, when the job succeeds, and the object
URLs are kept in the job record (``results.py`` signs them on every read).

Without rules every file is its own output, named by its path below the prefix, its media type
from the extension. With rules (the EOX ``process-s3-files --group`` idea) the first rule whose
``regex`` matches a file's path below the prefix puts it into output ``key``; files no rule
matches are not outputs (the rules choose, as an author's declared artifacts do). Files stay
sorted by key inside an output: eodash reads several TIFFs of one output as bands in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pygeoapi_argo.errors import ResultsError
from pygeoapi_argo.settings import OutputRule

OCTET_STREAM = "application/octet-stream"


def prefix_url(template: str, *, workflow_name: str, job_id: str) -> str:
    """The job's prefix, placeholders filled and ending in ``/`` (``out/1`` must not list ``out/10``)."""
    url = template.format(workflow_name=workflow_name, job_id=job_id)
    return url if url.endswith("/") else url + "/"


def group(urls: Iterable[str], prefix: str, rules: Sequence[OutputRule],
          media_type: Callable[[str], str | None]) -> dict[str, dict[str, Any]]:
    """Stored results (``results.py`` form) of the listed ``urls`` under ``prefix``.

    ``media_type`` maps a file name to its media type or ``None`` (``results.media_type``).
    """
    outputs: dict[str, dict[str, Any]] = {}
    for url in sorted(urls):
        if not url.startswith(prefix):
            raise ResultsError(f"{url} is not below the outputs prefix {prefix}")
        name = url[len(prefix):]
        key, kind = _output_of(name, rules)
        if key is None:
            continue
        entry = outputs.setdefault(key, {"urls": [], "mimetype": kind})
        entry["urls"].append(url)
    for entry in outputs.values():
        if entry["mimetype"] is None:
            entry["mimetype"] = media_type(entry["urls"][0]) or OCTET_STREAM
    return outputs


def _output_of(name: str, rules: Sequence[OutputRule]) -> tuple[str | None, str | None]:
    """The output a file belongs to and the rule's media type (``None``: from the extension)."""
    if not rules:
        return name, None
    for rule in rules:
        match = rule.regex.search(name)
        if match:
            try:
                return match.expand(rule.key), rule.mimetype
            except (IndexError, re.error) as exc:
                problem = f"output rule {rule.key!r} does not fit {rule.regex.pattern!r}: {exc}"
                raise ResultsError(problem) from None
    return None, None
