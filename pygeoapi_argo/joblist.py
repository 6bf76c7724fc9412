"""The OGC job list (``GET /jobs``, conformance class job-list): its query read into a ``JobFilter``
and a page, and the page written as a jobList document whose links keep the filters.

pygeoapi 0.24 reads only ``limit`` and ``offset`` and hands managers no filters, so ``web.py`` serves
``/jobs`` with this module. Pure: data in, data out. A bad value raises ``InvalidParameterValue``
naming the parameter (an OGC 400), never a 500 further down (a huge number overflowing a date).

Query parameters (OGC 18-062r2 §11, `parameters/*.yaml`): ``status`` and ``processID`` repeat (or
take comma-separated values), ``type`` is ``process``, ``datetime`` is an RFC 3339 instant or an
interval ``a/b`` with ``..`` or nothing for an open end, ``minDuration``/``maxDuration`` are whole
seconds, ``limit`` is 1 to 1000, ``offset`` pages on (pygeoapi's paging).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from .errors import InvalidParameterValue
from .jobs import JobFilter

STATUSES = ("accepted", "running", "successful", "failed", "dismissed")
JOB_TYPES = ("process",)  # every job here is an OGC process job
MAX_LIMIT = 1000  # the maximum of the OGC ``limit`` parameter
MAX_OFFSET = 10**9
# ~31 years: beyond it "now - duration" leaves the calendar (and no job is that old).
MAX_DURATION = 10**9

_DATE_TIME = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d+)?)"
                        r"(?P<zone>[Zz]|[+ -]\d{2}:\d{2})")
_OPEN = ("", "..")
_FORMATS = {"json": "application/json", "html": "text/html"}


@dataclass(frozen=True)
class JobQuery:
    """A parsed job-list request: what to select, which page, and the filters as query pairs (in
    the client's own spelling) for the links to carry on."""

    where: JobFilter
    limit: int
    offset: int
    filters: tuple[tuple[str, str], ...] = ()


def parse(args: Mapping[str, Sequence[str]], *, default_limit: int, now: datetime) -> JobQuery:
    """``args`` maps each query parameter to all its values (``request.args.to_dict(flat=False)``);
    ``now`` is the instant running jobs' durations are measured to. Other parameters (``f``,
    ``lang``) are pygeoapi's and pass untouched."""
    status = _values(args, "status")
    for value in status:
        if value not in STATUSES:
            raise InvalidParameterValue(f"status {value!r} is not one of {', '.join(STATUSES)}",
                                        name="status")
    process_ids = _values(args, "processID")
    for value in _values(args, "type"):
        if value not in JOB_TYPES:
            raise InvalidParameterValue(f"type {value!r} is not one of {', '.join(JOB_TYPES)}", name="type")
    text = _single(args, "datetime")
    created_from, created_to = _interval(text) if text is not None else (None, None)
    low = _integer(args, "minDuration", 0, MAX_DURATION)
    high = _integer(args, "maxDuration", 0, MAX_DURATION)
    if low is not None and high is not None and low > high:
        raise InvalidParameterValue(f"minDuration {low} is greater than maxDuration {high}",
                                    name="minDuration")
    limit = _integer(args, "limit", 1, MAX_LIMIT)
    offset = _integer(args, "offset", 0, MAX_OFFSET)
    where = JobFilter(status=tuple(dict.fromkeys(status)), process_ids=tuple(dict.fromkeys(process_ids)),
                      created_from=created_from, created_to=created_to, min_duration=low, max_duration=high,
                      now=now)
    filters = tuple((name, value) for name in ("status", "processID", "type", "datetime", "minDuration",
                                               "maxDuration") for value in args.get(name, ()))
    return JobQuery(where=where, limit=min(default_limit, MAX_LIMIT) if limit is None else limit,
                    offset=offset or 0, filters=filters)


def _values(args: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A repeatable parameter: ``?status=a&status=b`` and ``?status=a,b`` alike; no empty items."""
    values = [item.strip() for value in args.get(name, ()) for item in value.split(",")]
    if "" in values:
        raise InvalidParameterValue(f"{name} has an empty value", name=name)
    if any("\x00" in value for value in values):  # PostgreSQL cannot even compare such a string
        raise InvalidParameterValue(f"{name} holds a NUL character", name=name)
    return values


def _single(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name, ())
    if len(values) > 1:
        raise InvalidParameterValue(f"{name} is given {len(values)} times; give it once", name=name)
    return values[0] if values else None


def _integer(args: Mapping[str, Sequence[str]], name: str, low: int, high: int) -> int | None:
    text = _single(args, name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        raise InvalidParameterValue(f"{name} must be a whole number from {low} to {high}, not {text!r}",
                                    name=name)
    value = int(text)
    if not low <= value <= high:
        raise InvalidParameterValue(f"{name} must be from {low} to {high}, not {value}", name=name)
    return value


def _interval(text: str) -> tuple[datetime | None, datetime | None]:
    """An instant (both ends the same) or an interval with at most one open end."""
    if "/" not in text:
        instant = _date_time(text)
        return instant, instant
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidParameterValue(f"datetime {text!r} has more than one '/'", name="datetime")
    start, end = (None if part in _OPEN else _date_time(part) for part in parts)
    if start is None and end is None:
        raise InvalidParameterValue("datetime: an interval needs at least one end", name="datetime")
    if start is not None and end is not None and start > end:
        raise InvalidParameterValue(f"datetime {text!r} ends before it starts", name="datetime")
    return start, end


def _date_time(text: str) -> datetime:
    """RFC 3339 date-time, zone required. A space before the offset is a ``+`` that the URL's query
    encoding turned into a space (``?datetime=2025-03-01T12:00:00+02:00`` sent unescaped)."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise InvalidParameterValue(
            f"datetime {text!r} is not an RFC 3339 date-time such as 2025-03-01T12:00:00Z", name="datetime")
    zone = match["zone"].upper().replace(" ", "+").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{zone}")
    except ValueError as err:
        raise InvalidParameterValue(f"datetime {text!r}: {err}", name="datetime") from None


def document(jobs: list[dict], matched: int, query: JobQuery, *, jobs_url: str, fmt: str) -> dict:
    """pygeoapi's jobList for the manager's job dicts (``web.status_info`` completes each job), with
    ``self``/``alternate``/``next``/``prev`` links that keep the filters and the page size."""
    listed = [{
        "type": "process",
        "processID": job["process_id"],
        "jobID": job["identifier"],
        "status": job["status"],
        "message": job["message"],
        "progress": job["progress"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "updated": job["updated"],
    } for job in jobs]

    def href(offset: int, f: str) -> str:
        pairs = [*query.filters, ("limit", str(query.limit)), ("offset", str(offset)), ("f", f)]
        return f"{jobs_url}?{urlencode(pairs)}"

    links = [{"href": href(query.offset, f), "rel": "self" if f == fmt else "alternate", "type": media,
              "title": f"Jobs list as {f.upper()}"} for f, media in _FORMATS.items()]
    if query.offset + len(jobs) < matched:
        links.append({"href": href(query.offset + query.limit, fmt), "rel": "next", "type": _FORMATS[fmt],
                      "title": "Next page"})
    if query.offset > 0:
        links.append({"href": href(max(0, query.offset - query.limit), fmt), "rel": "prev",
                      "type": _FORMATS[fmt], "title": "Previous page"})
    return {"jobs": listed, "links": links, "numberMatched": matched, "numberReturned": len(listed)}
